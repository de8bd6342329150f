"""Shared fixtures: running the command line in-process, temporary homes."""

from __future__ import annotations

import importlib
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import click.testing
import pytest
from sandi_cli.main import COMMANDS, main

# PostgreSQL: a throwaway server per xdist worker, and `registry_url` on both backends.
from tests.pg import _pg_crash_server, pg_server, pg_source, pg_url, registry, registry_url  # noqa: F401

VECTORS = Path(__file__).parent / "vectors"

# Command modules build their help texts when imported, in the language of that moment.
# Import them all now, in English, so a test that runs a command in-process in Indonesian
# (--lang id) does not leave Indonesian help behind for the tests after it. Help pages in
# Indonesian are checked in a fresh interpreter (tests/test_i18n.py).
for _module, _attr, _help in COMMANDS.values():
    importlib.import_module(_module)


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str
    stdout_bytes: bytes

    def __repr__(self) -> str:  # shows up in assertion failures
        return f"CliResult(code={self.code}, stdout={self.stdout!r}, stderr={self.stderr!r})"


RunSandi = Callable[..., CliResult]


def invoke(
    *args: str | os.PathLike[str],
    input: bytes | str | None = None,
    env: dict[str, str | None] | None = None,
) -> CliResult:
    """Run ``sandi ARGS`` in-process through the real entry point (funnel included)."""
    runner = click.testing.CliRunner()
    argv = [os.fspath(a) for a in args]
    base_env: dict[str, str | None] = {"SANDI_HOME": None, "SANDI_DATABASE_URL": None}
    base_env.update(env or {})
    with runner.isolation(input=input, env=base_env) as (out, err, _):
        try:
            main(argv)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        stdout_bytes = out.getvalue()
        return CliResult(code, stdout_bytes.decode("utf-8", "replace"),
                         err.getvalue().decode("utf-8", "replace"), stdout_bytes)


@pytest.fixture
def run_sandi() -> RunSandi:
    return invoke


@pytest.fixture
def home_dir(tmp_path: Path) -> Path:
    """A path for a new home (not created yet)."""
    return tmp_path / "home"


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


@pytest.fixture(autouse=True)
def _no_ambient_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    # A test never touches the developer's real home or registry.
    monkeypatch.delenv("SANDI_HOME", raising=False)
    monkeypatch.delenv("SANDI_DATABASE_URL", raising=False)
    monkeypatch.delenv("SANDI_PASSPHRASE", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    # Key stores made by tests use a cheap scrypt work factor (the default is 18).
    monkeypatch.setenv("SANDI_SCRYPT_WORK_FACTOR", "10")
    yield
    # A command run in-process sets the process's language and zone (from --lang, the
    # home...): the next test starts from the defaults again.
    from sandi.i18n import set_language
    from sandi.timefmt import DEFAULT_ZONE, set_zone

    set_language("en")
    set_zone(DEFAULT_ZONE)
