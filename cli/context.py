"""What every command gets: the resolved home, output mode, and lazy handles."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from sandi.home import Home, HomeConfig, resolve_home

if TYPE_CHECKING:
    from sandi.registry import Registry


@dataclass
class CliContext:
    home_option: str | None
    database_url: str | None
    json_output: bool
    debug: bool
    _registry: Registry | None = field(default=None, repr=False)

    @property
    def home(self) -> Home:
        return Home(resolve_home(self.home_option))

    def config(self) -> HomeConfig:
        return self.home.load_config()

    def registry(self, *, require_current: bool = True) -> Registry:
        """The registry of this home (authority homes only); imports SQLAlchemy."""
        if self._registry is None:
            from sandi.registry import Registry

            self._registry = Registry(self.home.database_url(self.database_url))
            if require_current:
                self._registry.require_current()
        return self._registry

    # -- output ------------------------------------------------------------------------

    def emit(self, data: Any, human: str | list[str] | None = None) -> None:
        """Print ``data`` as JSON with --json, else the human text."""
        if self.json_output:
            click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
            return
        if human is None:
            return
        lines = [human] if isinstance(human, str) else human
        for line in lines:
            click.echo(line)

    def note(self, message: str) -> None:
        """A remark for the person at the terminal (stderr, never in JSON output)."""
        click.echo(message, err=True)


def get_ctx() -> CliContext:
    obj = click.get_current_context().find_object(CliContext)
    assert obj is not None, "CliContext missing: commands run under the sandi group"
    return obj


pass_cli = click.make_pass_decorator(CliContext)
