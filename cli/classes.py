"""``--class``: a classification by code or by name, completed from the policy's levels.

The option takes the text as typed; each command resolves it against the levels of
the policy it applies (:func:`sandi.policy.classification.resolve_level`), so a
policy with its own labels is honoured. Completion offers the codes of the policy in
force on this home (read from its directory), else the default ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from sandi.i18n import _

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

    from sandi.policy.model import Level

# Built when a command module is imported, i.e. after the language was chosen.
CLASS_HELP = _(
    "Classification, by code or name: SR (Sangat Rahasia), R (Rahasia), T (Terbatas), B (Biasa)."
)


class ClassificationType(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.5
    """Accepts any non-empty text; the command resolves it against its policy's levels."""

    name = "class"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "CLASS"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip()
        if not text:
            self.fail(_("the classification is empty"), param, ctx)
        return text

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[CompletionItem]:
        from click.shell_completion import CompletionItem

        from sandi.policy.classification import level_codes

        levels = _home_levels(ctx)
        return [CompletionItem(code, help=next(lv.name for lv in levels if lv.code == code))
                for code in level_codes(levels) if code.lower().startswith(incomplete.lower())]


CLASSIFICATION = ClassificationType()


def resolve_class(text: str, levels: Sequence[Level] | None = None) -> str:
    """The code ``text`` names among ``levels`` (the default levels if None)."""
    from sandi.policy.classification import DEFAULT_LEVEL_OBJECTS, resolve_level

    return resolve_level(text, DEFAULT_LEVEL_OBJECTS if levels is None else levels).code


def class_label(code: str, levels: Sequence[Level] | None = None) -> str:
    """``Rahasia (R)``: how a classification is shown to a person."""
    from sandi.policy.classification import DEFAULT_LEVEL_OBJECTS, level_label

    return level_label(code, DEFAULT_LEVEL_OBJECTS if levels is None else levels)


def _home_levels(ctx: click.Context) -> Sequence[Level]:
    """The levels of the policy in force on the home a completion runs for.

    A suggestion only: any failure (no home, no directory, an unverifiable one)
    falls back to the default levels; the command itself verifies everything.
    """
    from sandi.policy.classification import DEFAULT_LEVEL_OBJECTS

    try:
        from sandi.directory.local import installed_snapshot
        from sandi.documents.policygate import DirectoryPolicy
        from sandi.home import Home, resolve_home

        home_option = ctx.find_root().params.get("home")
        home = Home(resolve_home(home_option if isinstance(home_option, str) else None))
        if not home.directory_path.is_file():
            return DEFAULT_LEVEL_OBJECTS
        now = datetime.now(UTC)
        return DirectoryPolicy(installed_snapshot(home, now=now)).levels(now)
    except Exception:  # completion must never fail or print
        return DEFAULT_LEVEL_OBJECTS
