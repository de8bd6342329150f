"""Options shared by the commands that make a key request (agency keys, a PDF signing key,
an official's keys): where the request goes."""

from __future__ import annotations

from pathlib import Path

import click

from sandi.i18n import _

from .context import CliContext


def request_destination(obj: CliContext, token: str | None, server: str | None,
                        output: Path | None) -> str | None:
    """Where a key request goes: the authority's server (its base URL, with --token) or the
    file -o names (None); the same option rules for agency, PDF and officials' requests."""
    if token is None and output is None:
        raise click.UsageError(_("give -o FILE, or --token TOKEN to enrol online"))
    if token is None and server is not None:
        raise click.UsageError(_("--server goes with --token"))
    if output is not None and output.exists():
        raise click.UsageError(_("{path} exists already").format(path=output))
    if token is None:
        return None
    from sandi.authority.certs import check_base_url
    from sandi.directory.online import server_url

    base = check_base_url(server) if server else server_url(obj.home)
    if base is None:
        raise click.UsageError(_("--token needs the authority's server: --server URL"))
    return base
