"""Shared helpers for the keys / authority / agency tests (no tests of its own)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandi.keystore.filestore import forget_unlocked
from tests.conftest import RunSandi, invoke

PASSPHRASE = "correct horse battery staple"
EXPORT_PASSPHRASE = "export-passphrase-123"


@pytest.fixture
def fast_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Cheap scrypt and passphrases from the environment, as in CI."""
    monkeypatch.setenv("SANDI_SCRYPT_WORK_FACTOR", "10")
    monkeypatch.setenv("SANDI_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("SANDI_EXPORT_PASSPHRASE", EXPORT_PASSPHRASE)
    monkeypatch.setenv("SANDI_OPERATOR", "operator-test")
    forget_unlocked()
    yield
    forget_unlocked()


@pytest.fixture
def authority(fast_env: None, tmp_path: Path) -> Path:
    """A fresh authority home made by `sandi init`."""
    home = tmp_path / "authority"
    r = invoke("--home", home, "init", "--province", "Provinsi Banten")
    assert r.code == 0, r
    return home


def ok(run: RunSandi, *args: Any, **kw: Any) -> str:
    r = run(*args, **kw)
    assert r.code == 0, r
    return r.stdout


def db_rows(home: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table: compared before and after a refused command."""
    conn = sqlite3.connect(home / "registry.db")
    try:
        tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}
    finally:
        conn.close()


def tree(home: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(home)): p.read_bytes()
        for p in sorted(home.rglob("*"))
        if p.is_file() and not p.name.startswith("registry.db")
    }
