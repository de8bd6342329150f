"""The package list in pyproject.toml covers every package folder; py.typed ships."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_every_package_is_listed() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "sandi").rglob("__init__.py")
    }
    assert found - listed == set(), "add these packages to pyproject.toml"
    assert "sandi_cli" in listed
    assert (ROOT / "sandi" / "py.typed").exists()
    assert (ROOT / "cli" / "py.typed").exists()


def test_cli_is_not_a_top_level_cli_module() -> None:
    import importlib.util

    assert importlib.util.find_spec("sandi_cli") is not None
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert config["tool"]["setuptools"]["package-dir"]["sandi_cli"] == "cli"
