"""``sandi db status`` and ``sandi db upgrade`` on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from sandi.errors import EXIT_ERROR
from sandi.registry import Registry
from sandi.registry import db as registry_db
from tests import test_authority_support as support
from tests.conftest import RunSandi
from tests.test_registry_schema import _later_migrations, _snapshot

fast_env = support.fast_env


def _status(run_sandi: RunSandi, url: str) -> dict[str, object]:
    r = run_sandi("--json", "--database-url", url, "db", "status")
    assert r.code == 0, r
    data = json.loads(r.stdout)
    assert isinstance(data, dict)
    return data


def _password(url: str) -> str | None:
    pw = sa.engine.make_url(url).password
    return None if pw is None else str(pw)


def test_status_and_upgrade_from_empty(run_sandi: RunSandi, registry_url: str) -> None:
    head = Registry(registry_url).head_revision()
    dialect = "postgresql" if registry_url.startswith("postgresql") else "sqlite"
    data = _status(run_sandi, registry_url)
    assert data == {"status": "empty", "revision": None, "head": head, "dialect": dialect,
                    "url": sa.engine.make_url(registry_url).render_as_string(hide_password=True)}

    r = run_sandi("--database-url", registry_url, "db", "upgrade")
    assert r.code == 0, r
    assert f"from empty to {head}" in r.stdout

    assert _status(run_sandi, registry_url)["status"] == "current"
    r = run_sandi("--database-url", registry_url, "db", "status")
    assert r.code == 0
    assert "status:   current" in r.stdout
    assert f"({dialect})" in r.stdout

    r = run_sandi("--json", "--database-url", registry_url, "db", "upgrade")
    assert r.code == 0, r
    assert json.loads(r.stdout)["changed"] is False

    pw = _password(registry_url)
    if pw:  # PostgreSQL: the password never reaches the terminal
        for args in (("db", "status"), ("--json", "db", "status"), ("db", "upgrade")):
            out = run_sandi("--database-url", registry_url, *args)
            assert pw not in out.stdout + out.stderr
            assert "***" in out.stdout


def test_older_schema_status_then_upgrade(
    run_sandi: RunSandi, registry_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Registry(registry_url).upgrade()
    monkeypatch.setattr(registry_db, "MIGRATIONS_DIR", _later_migrations(tmp_path))
    data = _status(run_sandi, registry_url)
    assert (data["status"], data["head"]) == ("older", "9001")
    human = run_sandi("--database-url", registry_url, "db", "status")
    assert "sandi db upgrade" in human.stdout
    r = run_sandi("--json", "--database-url", registry_url, "db", "upgrade")
    assert r.code == 0, r
    assert json.loads(r.stdout)["to"] == "9001"
    assert _status(run_sandi, registry_url)["status"] == "current"


def test_newer_schema_status_and_refused_upgrade(run_sandi: RunSandi, registry_url: str) -> None:
    reg = Registry(registry_url)
    reg.upgrade()
    with reg.transaction() as s:
        s.execute(sa.text("UPDATE alembic_version SET version_num = 'ffff0000ffff'"))
    reg.dispose()
    before = _snapshot(registry_url)
    data = _status(run_sandi, registry_url)
    assert (data["status"], data["revision"]) == ("newer", "ffff0000ffff")
    r = run_sandi("--database-url", registry_url, "db", "upgrade")
    assert r.code == EXIT_ERROR
    assert "error: the registry schema is newer than this sandi" in r.stderr
    assert "hint: upgrade sandi" in r.stderr
    assert _snapshot(registry_url) == before


def test_status_of_a_home_registry(run_sandi: RunSandi, home_dir: Path, fast_env: None) -> None:
    assert run_sandi("--home", home_dir, "init").code == 0
    r = run_sandi("--home", home_dir, "--json", "db", "status")
    assert r.code == 0, r
    data = json.loads(r.stdout)
    assert data["status"] == "current"
    assert data["url"] == f"sqlite:///{home_dir / 'registry.db'}"


def test_status_without_a_home_or_url_is_a_config_error(run_sandi: RunSandi, tmp_path: Path) -> None:
    r = run_sandi("--home", tmp_path / "none", "db", "status")
    assert r.code == 2
    assert "no sandi home" in r.stderr


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("db", "--help"), ["status", "upgrade", "Example:", "docs/operations.md"]),
        (("db", "status", "--help"), ["current", "older", "newer", "empty", "Example:"]),
        (("db", "upgrade", "--help"), ["makes no backup", "pg_dump", "one transaction", "Example:"]),
    ],
)
def test_help(run_sandi: RunSandi, args: tuple[str, ...], needles: list[str]) -> None:
    r = run_sandi(*args)
    assert r.code == 0
    for needle in needles:
        assert needle in r.stdout, needle
