"""Clear errors for a registry that cannot be used: unreachable, wrong credentials, no such
database, a dead connection; the password never shows, the CLI exits 1."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from sandi.errors import EXIT_ERROR, RegistryConflict, RegistryError
from sandi.registry import Registry
from sandi.registry import db as registry_db
from tests.conftest import RunSandi
from tests.pg import PgSource, free_port, with_database

SECRET = "Sup3r-s3cret-pw"


def _with(url: str, **parts: object) -> str:
    return sa.engine.make_url(url).set(**parts).render_as_string(hide_password=False)  # type: ignore[arg-type]


@pytest.fixture
def bad_urls(pg_source: PgSource, pg_url: str) -> dict[str, str]:
    return {
        "wrong port": _with(pg_url, port=free_port(), password=SECRET),
        "wrong password": _with(pg_url, password=SECRET),
        "unknown role": _with(pg_url, username="nobody_here", password=SECRET),
        "no such database": with_database(pg_url, "no_such_db"),  # the right password
    }


def _secrets(url: str) -> set[str]:
    return {SECRET, str(sa.engine.make_url(url).password)}


CASES = [
    ("wrong port", "cannot reach the registry database", "running and reachable"),
    ("wrong password", "refused the credentials", "user name and password"),
    ("unknown role", "refused the credentials", "user name and password"),
    ("no such database", "does not exist", "db upgrade"),
]


@pytest.mark.postgres
@pytest.mark.parametrize(("case", "message", "hint"), CASES, ids=[c[0] for c in CASES])
def test_library_error_is_clear_and_redacted(
    bad_urls: dict[str, str], case: str, message: str, hint: str
) -> None:
    reg = Registry(bad_urls[case])
    assert SECRET not in repr(reg)
    for call in (reg.schema_status, reg.require_current, reg.upgrade):
        with pytest.raises(RegistryError) as info:
            call()
        err = info.value
        assert message in str(err)
        assert hint in err.hint
        for secret in _secrets(bad_urls[case]):
            assert secret not in str(err) and secret not in err.hint
        assert "***" in str(err)
    with pytest.raises(RegistryError, match=message), reg.transaction() as s:
        s.execute(sa.text("SELECT 1"))


@pytest.mark.postgres
@pytest.mark.parametrize(("case", "message", "hint"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("command", [("db", "status"), ("db", "upgrade")])
def test_cli_exits_1_and_never_prints_the_password(
    run_sandi: RunSandi, bad_urls: dict[str, str], case: str, message: str, hint: str,
    command: tuple[str, ...],
) -> None:
    for args, env in (
        (("--database-url", bad_urls[case], *command), None),
        (command, {"SANDI_DATABASE_URL": bad_urls[case]}),
    ):
        r = run_sandi(*args, env=env)
        assert r.code == EXIT_ERROR, r
        assert r.stderr.startswith("error: ")
        assert message in r.stderr
        assert "hint: " in r.stderr
        for secret in _secrets(bad_urls[case]):
            assert secret not in r.stdout + r.stderr
        assert "Traceback" not in r.stderr


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a hung server, a firewall)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield int(s.getsockname()[1])


def test_hung_server_fails_within_the_connect_timeout(
    silent_listener: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry_db, "CONNECT_TIMEOUT", 2)  # libpq's minimum
    reg = Registry(f"postgresql+psycopg://sandi:{SECRET}@127.0.0.1:{silent_listener}/sandi")
    start = time.monotonic()
    with pytest.raises(RegistryError, match="cannot reach") as info:
        reg.schema_status()
    assert time.monotonic() - start < 10
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("nosuchdialect://x/y", "cannot use database URL"),
        ("postgresql+nosuchdriver://u:{pw}@h/d", "cannot use database URL"),
        ("sqlite:////nonexistent-dir/sub/registry.db", "cannot open the registry database"),
    ],
)
def test_unusable_urls(url: str, message: str) -> None:
    with pytest.raises(RegistryError, match=message) as info:
        Registry(url.format(pw=SECRET)).schema_status()
    assert SECRET not in str(info.value)


def test_unique_violation_is_a_conflict_with_nothing_changed(registry_url: str) -> None:
    reg = Registry(registry_url)
    reg.upgrade()
    insert = sa.text("INSERT INTO audit_head (id, seq, hash) VALUES (1, :seq, :h)")
    with reg.transaction() as s:
        s.execute(insert, {"seq": 0, "h": "0" * 64})
    with pytest.raises(RegistryConflict, match="conflicts with what is there") as info, \
            reg.transaction() as s:
        s.execute(sa.text("UPDATE audit_head SET seq = 5"))
        s.execute(insert, {"seq": 1, "h": "1" * 64})
    assert "nothing was changed" in info.value.hint
    with reg.transaction() as s:  # the UPDATE before the violation was rolled back too
        assert s.execute(sa.text("SELECT seq FROM audit_head")).scalar_one() == 0
    reg.dispose()


def test_missing_table_points_at_db_status(registry_url: str) -> None:
    reg = Registry(registry_url)
    with pytest.raises(RegistryError) as info, reg.transaction() as s:
        s.execute(sa.text("SELECT * FROM agencies"))
    assert "db status" in info.value.hint
    reg.dispose()


@pytest.mark.postgres
def test_server_restart_is_survived_by_a_pooled_registry(pg_server: object, tmp_path: Path) -> None:
    from tests.pg import PgServer, create_database

    assert isinstance(pg_server, PgServer)
    name = create_database(pg_server.admin_url(), "sandi")
    reg = Registry(pg_server.url(name))
    reg.upgrade()  # leaves a pooled connection behind
    pg_server.stop()
    with pytest.raises(RegistryError, match="cannot reach"):
        reg.schema_status()
    pg_server.restart()
    # pool_pre_ping replaces the dead pooled connection: no error after the restart.
    assert reg.schema_revision() == reg.head_revision()
    reg.dispose()
