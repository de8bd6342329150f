"""An issuance interrupted half-way: by the database server dying, by the operator's
process dying, by a failing statement. The command fails cleanly (exit 1, a clear
error, no traceback, no password), no key is left behind, and afterwards the registry
holds either the whole issuance (both certificates and their audit entry) or none of it.
"""

from __future__ import annotations

import json
import multiprocessing as mp
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from sandi.audit.registry_sink import iter_entries, read_checkpoints, read_head
from sandi.audit.verify import verify_chain
from sandi.registry import Registry
from sandi.registry.models import AuditEntryRow, CertificateRow
from tests import test_authority_support as support
from tests.conftest import RunSandi, invoke
from tests.pg import DriverError, PgServer, create_database
from tests.test_registry_schema import _snapshot

fast_env = support.fast_env

# Where to interrupt: the first statement of each kind the issuance sends, or its COMMIT.
POINTS = ["INSERT INTO certificates", "INSERT INTO audit_entries", "UPDATE audit_head", "COMMIT"]


@contextmanager
def interrupt_at(point: str, action: Callable[[], None]) -> Iterator[list[str]]:
    """Run ``action`` once, just before the first ``point`` statement any engine sends
    (``COMMITTED``: just after the server committed the issuance)."""
    fired: list[str] = []
    if point == "COMMITTED":
        def committed() -> None:
            fired.append(point)
            action()

        with _after_the_issuance_commit(committed):
            yield fired
        return

    def before_statement(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not fired and statement.lstrip().upper().startswith(point.upper()):
            fired.append(point)
            action()

    def before_commit(conn: Any) -> None:
        # Only a commit that carries the issuance (certificates pending) counts.
        if not fired and conn.info.get("wrote_certificates"):
            fired.append(point)
            action()

    def note_writes(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO CERTIFICATES"):
            conn.info["wrote_certificates"] = True

    if point == "COMMIT":
        sa.event.listen(Engine, "before_cursor_execute", note_writes)
        sa.event.listen(Engine, "commit", before_commit)
    else:
        sa.event.listen(Engine, "before_cursor_execute", before_statement)
    try:
        yield fired
    finally:
        if point == "COMMIT":
            sa.event.remove(Engine, "before_cursor_execute", note_writes)
            sa.event.remove(Engine, "commit", before_commit)
        else:
            sa.event.remove(Engine, "before_cursor_execute", before_statement)


@contextmanager
def _after_the_issuance_commit(action: Callable[[], None]) -> Iterator[None]:
    done: list[bool] = []

    def after_commit(session: Session) -> None:
        if not done and session.info.get("issued"):
            done.append(True)
            action()

    def mark(session: Session, context: Any, instances: Any) -> None:
        if any(isinstance(o, CertificateRow) for o in session.new):
            session.info["issued"] = True

    sa.event.listen(Session, "before_flush", mark)
    sa.event.listen(Session, "after_commit", after_commit)
    try:
        yield
    finally:
        sa.event.remove(Session, "before_flush", mark)
        sa.event.remove(Session, "after_commit", after_commit)


def _authority(url: str, tmp_path: Path) -> Path:
    home = tmp_path / "authority"
    for args in (("init", "--province", "Provinsi Banten"), ("agency", "add", "DINKES", "--name", "Dinas Kesehatan")):
        r = invoke("--home", home, "--database-url", url, *args)
        assert r.code == 0, r
    return home


def _keys(home: Path) -> set[str]:
    return {str(p.relative_to(home)) for p in (home / "keys").rglob("*") if p.is_file()}


def _issuance_state(url: str) -> tuple[int, int]:
    """(certificates, key.issue audit entries); the chain must verify whatever they are."""
    reg = Registry(url)
    try:
        with reg.transaction() as s:
            certs = s.scalar(select(sa.func.count()).select_from(CertificateRow)) or 0
            issues = s.scalar(select(sa.func.count()).select_from(AuditEntryRow)
                              .where(AuditEntryRow.action == "key.issue")) or 0
            report = verify_chain(list(iter_entries(s)), read_checkpoints(s), None,
                                  expected_head=read_head(s))
        assert report.ok, report.problem
        return int(certs), int(issues)
    finally:
        reg.dispose()


def _assert_clean_failure(r: Any, url: str) -> None:
    assert r.code == 1, r
    assert r.stderr.startswith("error: ")
    assert "hint: " in r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
    pw = sa.engine.make_url(url).password
    assert not pw or pw not in r.stdout + r.stderr


@pytest.mark.postgres
@pytest.mark.parametrize("point", POINTS)
def test_server_killed_during_issuance(
    pg_server: PgServer, tmp_path: Path, fast_env: None, run_sandi: RunSandi, point: str
) -> None:
    url = pg_server.url(create_database(pg_server.admin_url(), "sandi"))
    home = _authority(url, tmp_path)
    keys_before = _keys(home)
    rows_before = _snapshot(url)

    with interrupt_at(point, pg_server.kill) as fired:
        r = run_sandi("--home", home, "--database-url", url, "keys", "issue", "DINKES")
    assert fired == [point]
    _assert_clean_failure(r, url)
    kept = 0
    if point == "COMMIT":
        # Lost during the COMMIT: from here nobody can tell whether the server committed,
        # so the new keys stay (a certificate whose private key was deleted is worse).
        assert "was lost while it committed the change" in r.stderr, r
        assert "new private keys were kept" in r.stderr, r
        kept = 2
    else:
        # The registry's own error, or the audit sink's when the connection died under it.
        assert ("cannot reach the registry database" in r.stderr
                or "server closed the connection" in r.stderr), r
    assert len(_keys(home)) == len(keys_before) + kept, "the failed issuance left keys in the store"

    pg_server.restart()
    assert _snapshot(url) == rows_before, "part of the issuance survived the crash"
    assert _issuance_state(url) == (0, 0)
    # After the restart the same command simply works, completely.
    r = run_sandi("--home", home, "--database-url", url, "keys", "issue", "DINKES")
    assert r.code == 0, r
    assert _issuance_state(url) == (2, 1)
    assert len(_keys(home)) == len(keys_before) + kept + 2


@pytest.mark.postgres
def test_server_killed_right_after_the_commit(
    pg_server: PgServer, tmp_path: Path, fast_env: None, run_sandi: RunSandi
) -> None:
    """The commit reached the server: after the restart the whole issuance is there."""
    url = pg_server.url(create_database(pg_server.admin_url(), "sandi"))
    home = _authority(url, tmp_path)
    with interrupt_at("COMMITTED", pg_server.kill) as fired:
        r = run_sandi("--home", home, "--database-url", url, "keys", "issue", "DINKES")
    assert fired == ["COMMITTED"]
    # Whatever the command did after its commit (publishing the directory...) may fail,
    # but only cleanly.
    if r.code != 0:
        _assert_clean_failure(r, url)
    pg_server.restart()
    assert _issuance_state(url) == (2, 1)


@pytest.mark.parametrize("landed", [False, True], ids=["before-the-server-committed", "after-it-committed"])
def test_connection_lost_during_the_commit_keeps_the_keys(
    registry_url: str, tmp_path: Path, fast_env: None, run_sandi: RunSandi, landed: bool
) -> None:
    """The driver reports a broken connection at COMMIT. Whether or not the server had
    committed, the command says the outcome is unknown and keeps the new private keys;
    when it had, the issued certificates are usable because their keys are still there."""
    home = _authority(registry_url, tmp_path)
    keys_before = _keys(home)

    def lose_the_connection() -> None:
        raise sa.exc.OperationalError("COMMIT", {}, DriverError("server closed the connection unexpectedly"))

    point = "COMMITTED" if landed else "COMMIT"
    with interrupt_at(point, lose_the_connection) as fired:
        r = run_sandi("--home", home, "--database-url", registry_url, "keys", "issue", "DINKES")
    assert fired == [point]
    _assert_clean_failure(r, registry_url)
    assert "the change may or may not have been saved" in r.stderr, r
    assert "'sandi keys list' does not show their certificates" in r.stderr, r
    kept = _keys(home) - keys_before
    assert len(kept) == 2, kept
    assert _issuance_state(registry_url) == ((2, 1) if landed else (0, 0))
    if landed:
        # the certificates the registry holds are exactly those of the kept keys
        listed = run_sandi("--home", home, "--database-url", registry_url, "--json", "keys", "list", "DINKES")
        fingerprints = {c["key_fingerprint"][:16] for c in json.loads(listed.stdout)}
        assert all(any(fp in k for fp in fingerprints) for k in kept), (kept, fingerprints)
    else:
        r = run_sandi("--home", home, "--database-url", registry_url, "keys", "issue", "DINKES")
        assert r.code == 0, r
        assert _issuance_state(registry_url) == (2, 1)


# (command after 'keys issue DINKES' set it up, statement the deadlock hits, audit action)
DEADLOCKS = [
    (["keys", "issue", "DINSOS"], "INSERT INTO certificates", "key.issue"),
    (["keys", "rotate", "--yes", "DINKES"], "INSERT INTO certificates", "key.rotate"),
    (["keys", "renew", "DINKES"], "INSERT INTO certificates", "key.renew"),
    (["keys", "revoke", "--yes", "DINKES", "--reason", "superseded"], "INSERT INTO revocations", "key.revoke"),
]


@pytest.mark.parametrize(("argv", "point", "action"), DEADLOCKS, ids=[d[2] for d in DEADLOCKS])
def test_a_deadlock_is_retried_and_done_once(
    registry_url: str, tmp_path: Path, fast_env: None, run_sandi: RunSandi, argv: list[str], point: str,
    action: str,
) -> None:
    """The database aborts the change for a concurrent one (PostgreSQL's deadlock): sandi
    runs it again from the start, and it is done once, with one audit entry and no stray key."""
    home = _authority(registry_url, tmp_path)
    for args in (["agency", "add", "DINSOS", "--name", "Dinas Sosial"], ["keys", "issue", "DINKES"]):
        assert run_sandi("--home", home, "--database-url", registry_url, *args).code == 0
    keys_before = _keys(home)

    def deadlock() -> None:
        raise sa.exc.OperationalError(point, {}, DriverError("deadlock detected", "40P01"))

    with interrupt_at(point, deadlock) as fired:
        r = run_sandi("--home", home, "--database-url", registry_url, *argv)
    assert fired == [point]
    assert r.code == 0, r
    new_keys = 2 if action in ("key.issue", "key.rotate") else 0
    assert len(_keys(home)) == len(keys_before) + new_keys
    reg = Registry(registry_url)
    try:
        with reg.reading() as s:
            actions = [e.action for e in iter_entries(s)]
            report = verify_chain(list(iter_entries(s)), read_checkpoints(s), None, expected_head=read_head(s))
    finally:
        reg.dispose()
    assert report.ok, report.problem
    assert actions.count(action) == (2 if action == "key.issue" else 1)  # DINKES's, then this one


def _issue_and_die(home: str, url: str, point: str) -> None:
    """In a child process: start 'keys issue' and die (no cleanup at all) at ``point``."""
    import os

    def die() -> None:
        os._exit(137)

    with interrupt_at(point, die):
        invoke("--home", home, "--database-url", url, "keys", "issue", "DINKES")
    os._exit(3)  # not reached if the interruption fired


@pytest.mark.parametrize("point", ["INSERT INTO audit_entries", "COMMIT"])
def test_operator_process_dies_during_issuance(
    registry_url: str, tmp_path: Path, fast_env: None, run_sandi: RunSandi, point: str
) -> None:
    """kill -9 of the operator's process mid-transaction (SQLite: the WAL rolls it back;
    PostgreSQL: the server aborts the dropped connection's transaction)."""
    home = _authority(registry_url, tmp_path)
    rows_before = _snapshot(registry_url)
    proc = mp.get_context("forkserver").Process(target=_issue_and_die, args=(str(home), registry_url, point))
    proc.start()
    proc.join(120)
    assert proc.exitcode == 137
    assert _snapshot(registry_url) == rows_before
    assert _issuance_state(registry_url) == (0, 0)
    r = run_sandi("--home", home, "--database-url", registry_url, "keys", "issue", "DINKES")
    assert r.code == 0, r
    assert _issuance_state(registry_url) == (2, 1)


@pytest.mark.parametrize("point", POINTS[:3])
def test_failing_statement_rolls_the_issuance_back(
    registry_url: str, tmp_path: Path, fast_env: None, run_sandi: RunSandi, point: str
) -> None:
    home = _authority(registry_url, tmp_path)
    keys_before = _keys(home)
    rows_before = _snapshot(registry_url)

    def fail() -> None:
        raise sa.exc.OperationalError(point, {}, Exception("simulated I/O error"))

    with interrupt_at(point, fail) as fired:
        r = run_sandi("--home", home, "--database-url", registry_url, "keys", "issue", "DINKES")
    assert fired == [point]
    _assert_clean_failure(r, registry_url)
    assert _keys(home) == keys_before
    assert _snapshot(registry_url) == rows_before
