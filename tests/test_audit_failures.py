"""Fail closed: when the audit entry cannot be written, the operation fails with nothing changed."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.exc import OperationalError

import sandi.audit.journal as journal_mod
from sandi.audit.events import AuditEvent
from sandi.audit.journal import Journal
from sandi.audit.registry_sink import append_in_session, iter_entries, read_head
from sandi.audit.verify import verify_journal, verify_registry
from sandi.errors import AuditError, RegistryConflict
from sandi.registry import Registry
from sandi.registry.base import utcnow
from sandi.registry.models import AgencyRow
from tests.pg import DriverError

EVENT = AuditEvent("operator", "document.seal", "surat.pdf", details={"to": ["BAPPEDA"]})
ROOT = os.geteuid() == 0


# -- journal ------------------------------------------------------------------------------


def _read_only_file(path: Path, mp: pytest.MonkeyPatch) -> None:
    path.chmod(0o400)


def _read_only_dir(path: Path, mp: pytest.MonkeyPatch) -> None:
    path.unlink()
    path.parent.chmod(0o500)


def _is_directory(path: Path, mp: pytest.MonkeyPatch) -> None:
    path.unlink()
    path.mkdir()


def _is_symlink(path: Path, mp: pytest.MonkeyPatch) -> None:
    # A link planted where the journal should be is refused (O_NOFOLLOW), not followed.
    target = path.with_name("elsewhere")
    path.rename(target)
    path.symlink_to(target)


def _read_only_filesystem(path: Path, mp: pytest.MonkeyPatch) -> None:
    real_open = os.open

    def fake_open(p: Any, flags: int, *args: Any, **kw: Any) -> int:
        if Path(p) == path and flags & os.O_WRONLY | flags & os.O_RDWR:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real_open(p, flags, *args, **kw)

    mp.setattr(journal_mod.os, "open", fake_open)


def _disk_full(path: Path, mp: pytest.MonkeyPatch) -> None:
    real_write = os.write

    def half_then_enospc(fd: int, data: Any) -> int:
        if len(data) > 10:
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    mp.setattr(journal_mod.os, "write", half_then_enospc)


def _fsync_fails(path: Path, mp: pytest.MonkeyPatch) -> None:
    def eio(fd: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    mp.setattr(journal_mod.os, "fsync", eio)


JOURNAL_FAILURES: list[tuple[str, Callable[[Path, pytest.MonkeyPatch], None], str, bool]] = [
    # (id, break it, message part, needs non-root)
    ("read-only-file", _read_only_file, "Permission denied", True),
    ("read-only-dir", _read_only_dir, "Permission denied", True),
    ("is-a-directory", _is_directory, "Is a directory", False),
    ("is-a-symlink", _is_symlink, "symbolic links", False),
    ("read-only-filesystem", _read_only_filesystem, "Read-only file system", False),
    ("disk-full-mid-line", _disk_full, "No space left", False),
    ("fsync-fails", _fsync_fails, "Input/output error", False),
]


@pytest.mark.parametrize(("breaker", "message", "needs_non_root"),
                         [c[1:] for c in JOURNAL_FAILURES], ids=[c[0] for c in JOURNAL_FAILURES])
def test_journal_write_failure_raises_and_leaves_the_chain_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    breaker: Callable[[Path, pytest.MonkeyPatch], None], message: str, needs_non_root: bool,
) -> None:
    if needs_non_root and ROOT:
        pytest.skip("root ignores file permissions; the read-only-filesystem case covers this as root")
    folder = tmp_path / "home"
    folder.mkdir()
    path = folder / "audit.journal"
    journal = Journal(path)
    journal.append(EVENT)
    journal.append(EVENT)
    before = path.read_bytes() if path.is_file() else b""
    breaker(path, monkeypatch)
    try:
        with pytest.raises(AuditError, match=message) as caught:
            journal.append(EVENT)
        assert "not carried out" in caught.value.hint
    finally:
        monkeypatch.undo()
        folder.chmod(0o700)
    if path.is_file() and not path.is_symlink():
        path.chmod(0o600)
        assert path.read_bytes() == before  # a partial line was cut back off
        assert journal.append(EVENT).seq == 3
        assert verify_journal(journal, None).ok


def test_journal_is_created_private(tmp_path: Path) -> None:
    path = tmp_path / "audit.journal"
    Journal(path).append(EVENT)
    assert path.stat().st_mode & 0o777 == 0o600


def test_incomplete_last_line_is_refused_not_extended(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "audit.journal")
    journal.append(EVENT)
    with journal.path.open("ab") as f:
        f.write(b'{"action":"document.op')  # a crash mid-write
    with pytest.raises(AuditError, match="incomplete line"):
        journal.append(EVENT)
    with pytest.raises(AuditError, match="incomplete last line"):
        list(journal.entries())


def test_bad_event_writes_nothing(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "audit.journal")
    journal.append(EVENT)
    before = journal.path.read_bytes()
    with pytest.raises(AuditError, match="secret"):
        journal.append(AuditEvent("op", "file.encrypt", "x", details={"passphrase": "hunter2"}))
    assert journal.path.read_bytes() == before
    assert b"hunter2" not in before


# -- registry ------------------------------------------------------------------------------


def _add_agency(session: Any, code: str) -> None:
    now = utcnow()
    session.add(AgencyRow(code=code, name=f"Dinas {code}", kind="agency", status="active",
                          created_at=now, updated_at=now))


def _drop_entries_table(reg: Registry) -> Callable[[], None]:
    with reg.engine.begin() as conn:
        conn.execute(text("DROP TABLE audit_entries"))
    return lambda: None


def _drop_head_table(reg: Registry) -> Callable[[], None]:
    with reg.engine.begin() as conn:
        conn.execute(text("DROP TABLE audit_head"))
    return lambda: None


def _fail_statements(reg: Registry, prefix: str, message: str, *, sqlstate: str | None = None,
                     times: int | None = None) -> Callable[[], None]:
    """Make the statements starting with ``prefix`` raise what the driver would (every
    one, or the first ``times``); returns the undo."""
    left = [times]

    def boom(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith(prefix) and left[0] != 0:
            if left[0] is not None:
                left[0] -= 1
            raise OperationalError(statement, None, DriverError(message, sqlstate))

    event.listen(reg.engine, "before_cursor_execute", boom)
    return lambda: event.remove(reg.engine, "before_cursor_execute", boom)


def _insert_fails(reg: Registry) -> Callable[[], None]:
    return _fail_statements(reg, "INSERT INTO AUDIT_ENTRIES", "injected: disk I/O error")


def _head_update_fails(reg: Registry) -> Callable[[], None]:
    return _fail_statements(reg, "UPDATE AUDIT_HEAD", "injected: lock lost")


def _duplicate_seq(reg: Registry) -> Callable[[], None]:
    # Someone wrote entry 3 behind the head's back: our entry 3 collides, we fail closed.
    with reg.engine.begin() as conn:
        conn.execute(text("INSERT INTO audit_entries (seq, time, actor, action, subject, outcome, "
                          "details, prev_hash, hash) VALUES (3, 't', 'a', 'x', 's', 'ok', '{}', "
                          "'p', 'h')"))
    return lambda: None


REGISTRY_FAILURES: list[tuple[str, Callable[[Registry], Callable[[], None]], bool]] = [
    # (id, inject the failure -> undo, the chain still verifies afterwards)
    ("table-dropped", _drop_entries_table, False),
    ("head-table-dropped", _drop_head_table, False),
    ("insert-raises", _insert_fails, True),
    ("head-update-raises", _head_update_fails, True),
    ("seq-collision", _duplicate_seq, False),
]


@pytest.mark.parametrize(("inject", "verifies_after"),
                         [c[1:] for c in REGISTRY_FAILURES], ids=[c[0] for c in REGISTRY_FAILURES])
def test_registry_audit_failure_rolls_back_the_change(
    registry: Registry, inject: Callable[[Registry], Callable[[], None]], verifies_after: bool
) -> None:
    for code in ("A1", "A2"):
        with registry.transaction() as session:
            _add_agency(session, code)
            append_in_session(session, AuditEvent("op", "agency.add", code))
    undo = inject(registry)
    try:
        with pytest.raises(AuditError) as caught, registry.transaction() as session:
            _add_agency(session, "VICTIM")
            append_in_session(session, AuditEvent("op", "agency.add", "VICTIM"))
        assert "not carried out" in caught.value.hint
    finally:
        undo()
    with registry.transaction() as session:
        codes = set(session.execute(select(AgencyRow.code)).scalars())
    assert codes == {"A1", "A2"}  # the caller's change went with the failed entry
    if verifies_after:
        with registry.transaction() as session:
            assert verify_registry(session, None).ok
            assert read_head(session) == (2, [e for e in iter_entries(session)][-1].hash)


def test_a_deadlock_while_appending_is_retried_as_a_whole(registry: Registry) -> None:
    """The database aborting the append for a concurrent transaction is not an audit
    failure: the whole change runs again (Registry.run) and is recorded once."""
    undo = _fail_statements(registry, "INSERT INTO AUDIT_ENTRIES", "deadlock detected", sqlstate="40P01", times=2)
    calls = []

    def work(session: Any) -> None:
        calls.append(1)
        _add_agency(session, "A1")
        append_in_session(session, AuditEvent("op", "agency.add", "A1"))

    try:
        registry.run(work)
    finally:
        undo()
    assert len(calls) == 3
    with registry.transaction() as session:
        assert list(session.execute(select(AgencyRow.code)).scalars()) == ["A1"]
        assert [e.subject for e in iter_entries(session)] == ["A1"]
        assert verify_registry(session, None).ok


def test_a_lost_connection_while_appending_says_so(registry: Registry) -> None:
    undo = _fail_statements(registry, "INSERT INTO AUDIT_ENTRIES", "server closed the connection unexpectedly",
                            sqlstate="08006", times=1)
    try:
        with pytest.raises(AuditError) as caught, registry.transaction() as session:
            _add_agency(session, "A1")
            append_in_session(session, AuditEvent("op", "agency.add", "A1"))
    finally:
        undo()
    assert "writing the audit entry to the registry failed" in caught.value.message
    assert "not carried out" in caught.value.hint
    assert "check that the database server is running and reachable" in caught.value.hint
    with registry.transaction() as session:
        assert session.execute(select(AgencyRow)).first() is None


def test_secret_in_details_rolls_back_the_change(registry: Registry) -> None:
    with pytest.raises(AuditError, match="secret"), registry.transaction() as session:
        _add_agency(session, "A1")
        append_in_session(session, AuditEvent("op", "key.export", "A1", details={"secret_key": "x"}))
    with registry.transaction() as session:
        assert session.execute(select(AgencyRow)).first() is None
        assert list(iter_entries(session)) == []


def test_callers_own_conflict_is_reported_as_theirs(registry: Registry) -> None:
    with registry.transaction() as session:
        _add_agency(session, "A1")
        append_in_session(session, AuditEvent("op", "agency.add", "A1"))
    with pytest.raises(RegistryConflict), registry.transaction() as session:
        _add_agency(session, "A1")  # duplicate code: the caller's error, not an audit failure
        append_in_session(session, AuditEvent("op", "agency.add", "A1"))
    with registry.transaction() as session:
        assert [e.seq for e in iter_entries(session)] == [1]


def test_missing_head_row_continues_the_chain(registry: Registry) -> None:
    for i in range(3):
        with registry.transaction() as session:
            append_in_session(session, AuditEvent("op", "agency.add", f"A{i}"))
    with registry.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_head"))
    with registry.transaction() as session:
        assert append_in_session(session, AuditEvent("op", "agency.add", "A3")).seq == 4
    with registry.transaction() as session:
        assert verify_registry(session, None).ok
