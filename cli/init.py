"""``sandi init``: create a home."""

from __future__ import annotations

import click

from sandi.home import HomeConfig

from .context import CliContext, pass_cli


@click.command("init")
@click.option("--province", default="Provinsi Banten", show_default=True,
              help="The province the authority serves (the root certificate's organisation).")
@click.option("--force", is_flag=True,
              help="Use an existing non-empty folder that holds no home yet. Never overwrites a home.")
@pass_cli
def init_cmd(obj: CliContext, province: str, force: bool) -> None:
    """Create a new authority home: configuration, registry, key folder.

    \b
    Example:
      sandi --home ./authority init --province "Provinsi Banten"
    """
    home = obj.home
    config = HomeConfig(role="authority", province=province)
    home.create(config, force=force)
    registry = obj.registry(require_current=False)
    registry.upgrade()
    obj.emit(
        {"home": str(home.path), "role": "authority", "province": province},
        [f"created authority home at {home.path}", f"province: {province}"],
    )
