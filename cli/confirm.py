"""Confirmations: commands that change keys or agencies show what will happen and ask.

One rule for every such command (``keys certify``, ``keys revoke``, ``keys rotate``,
``agency suspend``):

* the summary goes to standard error, then a yes/no question (default *no*);
* ``--yes`` answers for scripts, and the summary is still shown;
* without a terminal on standard input and without ``--yes`` the command stops with
  a usage error (exit 2) *before* changing anything, instead of waiting for input
  that never comes;
* "no" cancels: exit 1, nothing changed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import click

from sandi.errors import SandiError, UsageError
from sandi.i18n import _

F = TypeVar("F", bound=Callable[..., Any])


class Cancelled(SandiError):
    """The person at the terminal answered no."""


def yes_option(f: F) -> F:
    """``--yes``/``-y``: answer the confirmation for scripts."""
    return click.option(
        "-y", "--yes", "assume_yes", is_flag=True,
        help=_("Do not ask for confirmation (for scripts); the summary is still shown."),
    )(f)


def confirm_change(summary: Iterable[str], question: str, *, assume_yes: bool) -> None:
    """Show ``summary`` and ask ``question``; raise unless the answer is yes."""
    for line in summary:
        click.echo(line, err=True)
    if assume_yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(
            _("this command asks for confirmation and there is no terminal to ask on"),
            hint=_("run it in a terminal, or add --yes to confirm in a script"),
        )
    if not click.confirm(question, default=False, err=True):
        raise Cancelled(_("cancelled: nothing was changed"))
