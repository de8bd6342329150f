"""A policy file argument: a path, or the name of a policy sandi ships.

``--from-policy banten`` works for a wheel user who has no ``policies/`` folder; a
path that exists always wins over a shipped name, so a local ``banten`` file is
never shadowed.
"""

from __future__ import annotations

from pathlib import Path

import click

from sandi.i18n import _

# sandi.policy.shipped is imported where a value is converted: importing it loads the
# whole policy package, which commands that merely declare a policy option (agency add,
# on every authority change) need not pay for.


class PolicyFileType(click.ParamType[Path]):
    name = "policy"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> Path:
        from sandi.policy.shipped import shipped_policy_names, shipped_policy_path

        candidate = value if isinstance(value, Path) else Path(str(value))
        if candidate.is_file():
            return candidate
        if candidate.exists():
            self.fail(_("{path} is not a file").format(path=candidate), param, ctx)
        shipped = shipped_policy_path(str(value))
        if shipped is not None:
            return shipped
        self.fail(
            _("{value} is neither a policy file nor a shipped policy ({names})").format(
                value=value, names=", ".join(shipped_policy_names())
            ),
            param,
            ctx,
        )

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[click.shell_completion.CompletionItem]:
        from click.shell_completion import CompletionItem

        from sandi.policy.shipped import shipped_policy_names

        shipped = [CompletionItem(n) for n in shipped_policy_names() if n.startswith(incomplete)]
        return [*shipped, CompletionItem(incomplete, type="file")]


POLICY_FILE = PolicyFileType()
