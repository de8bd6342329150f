"""The registry sink: audit entries in the same transaction as the change they record.

Invariants:

* :func:`append_in_session` runs inside the caller's ``Registry.transaction()``; the
  entry commits with the change or not at all (fail closed: any audit failure raises
  :class:`~sandi.errors.AuditError`, which rolls the caller's transaction back);
* writers are serialised by the database: the single ``audit_head`` row (id 1) is
  locked with ``SELECT ... FOR UPDATE`` (SQLite: every registry transaction starts
  with ``BEGIN IMMEDIATE``, so there is one writer at a time anyway);
* ``audit_head`` always equals ``(seq, hash)`` of the last entry; it is created lazily,
  from the last entry if there is one (so a missing head never restarts the chain),
  and a concurrent creator loses on the primary key inside a savepoint and re-reads;
* entries are never updated or deleted by sandi.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from sandi.audit.checkpoint import Checkpoint, Signer, sign_checkpoint
from sandi.audit.entry import GENESIS_HASH, AuditEntry, canonical_json, make_entry
from sandi.audit.events import AuditEvent
from sandi.errors import AuditError, FormatError, SandiError
from sandi.formats.bounded import load_json
from sandi.i18n import N_, _
from sandi.registry.models import AuditCheckpointRow, AuditEntryRow, AuditHeadRow

HEAD_ID = 1


_NOT_CARRIED_OUT = N_("the operation was not carried out: its audit entry could not be written")

#: details are at most 16 KiB when written; a row far larger was not written by sandi
MAX_STORED_DETAILS_BYTES = 1024 * 1024


def _db_failure(session: Session, what: str, exc: Exception, *, writing: bool = False) -> SandiError:
    """The error for a database failure while appending: an AuditError (fail closed)
    whose hint says what the database reported (unreachable, locked...), or, when the
    database aborted the transaction for a concurrent one, ConcurrentUpdate, so that
    ``Registry.run`` runs the whole change, audit entry included, again."""
    from sandi.registry.db import ConcurrentUpdate, database_error

    url = session.get_bind().engine.url.render_as_string(hide_password=False)
    described = database_error(url, exc, _(what))
    if isinstance(described, ConcurrentUpdate):
        return described
    return AuditError(described.message,
                      hint=f"{_(_NOT_CARRIED_OUT)}; {described.hint}" if writing else described.hint)


def _locked_head(session: Session) -> AuditHeadRow:
    stmt = select(AuditHeadRow).where(AuditHeadRow.id == HEAD_ID).with_for_update()
    head = session.execute(stmt).scalar_one_or_none()
    if head is not None:
        return head
    # First append ever (or the head row is missing): start from the last entry, if
    # any, so the chain continues rather than restarting at 1.
    last = session.execute(
        select(AuditEntryRow.seq, AuditEntryRow.hash).order_by(AuditEntryRow.seq.desc()).limit(1)
    ).first()
    seq, hash_ = (int(last[0]), str(last[1])) if last is not None else (0, GENESIS_HASH)
    try:
        with session.begin_nested():
            session.add(AuditHeadRow(id=HEAD_ID, seq=seq, hash=hash_))
            session.flush()
    except IntegrityError:
        pass  # a concurrent writer created it first; lock theirs
    head = session.execute(stmt).scalar_one_or_none()
    if head is None:
        raise AuditError(_("the audit head row could not be created"))
    return head


def append_in_session(
    session: Session, event: AuditEvent, *, when: datetime | None = None
) -> AuditEntry:
    """Append ``event`` to the registry chain inside the caller's open transaction.

    Raises AuditError on any failure (bad event, database error); the caller lets it
    propagate so that the transaction, with its change, rolls back.
    """
    # The caller's own pending changes are flushed first so that their errors (a
    # duplicate, say) surface as theirs, not as an audit failure.
    session.flush()
    try:
        head = _locked_head(session)
        entry = make_entry(event, prev_seq=int(head.seq), prev_hash=str(head.hash), when=when)
        session.add(
            AuditEntryRow(
                seq=entry.seq,
                time=entry.time,
                actor=entry.actor,
                action=entry.action,
                subject=entry.subject,
                outcome=entry.outcome,
                details=canonical_json(entry.details).decode("utf-8"),
                prev_hash=entry.prev_hash,
                hash=entry.hash,
            )
        )
        head.seq = entry.seq
        head.hash = entry.hash
        session.flush()
    except SandiError:
        raise
    except SQLAlchemyError as exc:
        raise _db_failure(session, N_("writing the audit entry to the registry failed"), exc,
                          writing=True) from None
    return entry


_ENTRY_COLUMNS = (
    AuditEntryRow.seq,
    AuditEntryRow.time,
    AuditEntryRow.actor,
    AuditEntryRow.action,
    AuditEntryRow.subject,
    AuditEntryRow.outcome,
    AuditEntryRow.details,
    AuditEntryRow.prev_hash,
    AuditEntryRow.hash,
)


def _entry_from_row(row: Any) -> AuditEntry:
    seq, time, actor, action, subject, outcome, details_text, prev_hash, hash_ = row
    # Stored details that no longer parse are kept visible (and will not hash to the
    # stored value), so verify reports the entry as edited instead of crashing.
    try:
        details = load_json(details_text, max_bytes=MAX_STORED_DETAILS_BYTES, error=FormatError)
    except FormatError:
        details = {"<unparseable details>": details_text}
    if not isinstance(details, dict):
        details = {"<details not an object>": details}
    return AuditEntry(
        seq=int(seq), time=time, actor=actor, action=action, subject=subject,
        outcome=outcome, details=details, prev_hash=prev_hash, hash=hash_,
    )


def iter_entries(session: Session, *, batch: int = 5000, since_seq: int = 0) -> Iterator[AuditEntry]:
    """Every entry after ``since_seq`` in seq order, streamed (keyset pagination)."""
    last = since_seq
    try:
        while True:
            rows = session.execute(
                select(*_ENTRY_COLUMNS)
                .where(AuditEntryRow.seq > last)
                .order_by(AuditEntryRow.seq)
                .limit(batch)
            ).all()
            if not rows:
                return
            for row in rows:
                yield _entry_from_row(row)
            last = int(rows[-1][0])
    except SQLAlchemyError as exc:
        raise _db_failure(session, N_("reading the audit entries failed"), exc) from None


def read_head(session: Session) -> tuple[int, str] | None:
    """``(seq, hash)`` of the head row, or None if nothing was ever appended."""
    try:
        head = session.get(AuditHeadRow, HEAD_ID)
    except SQLAlchemyError as exc:
        raise _db_failure(session, N_("reading the audit head failed"), exc) from None
    return None if head is None else (int(head.seq), str(head.hash))


def read_checkpoints(session: Session) -> list[Checkpoint]:
    try:
        rows = session.execute(
            select(AuditCheckpointRow).order_by(AuditCheckpointRow.seq, AuditCheckpointRow.id)
        ).scalars()
        return [
            Checkpoint(
                seq=int(r.seq), head_hash=r.head_hash, time=r.time, signer=r.signer,
                signature=r.signature,
            )
            for r in rows
        ]
    except SQLAlchemyError as exc:
        raise _db_failure(session, N_("reading the audit checkpoints failed"), exc) from None


def add_checkpoint(session: Session, checkpoint: Checkpoint) -> None:
    try:
        session.add(
            AuditCheckpointRow(
                seq=checkpoint.seq,
                head_hash=checkpoint.head_hash,
                time=checkpoint.time,
                signer=checkpoint.signer,
                signature=checkpoint.signature,
            )
        )
        session.flush()
    except SQLAlchemyError as exc:
        raise _db_failure(session, N_("writing the audit checkpoint failed"), exc, writing=True) from None


def checkpoint_in_session(
    session: Session, signer: Signer, *, only_if_due: int | None = None,
    when: datetime | None = None,
) -> Checkpoint | None:
    """Sign the current head and store the checkpoint (inside the caller's transaction).

    With ``only_if_due=N``, do it only if N or more entries came after the last
    checkpoint (returns None otherwise). The head row is locked, so no entry can
    slip in between reading the head and storing its checkpoint.
    """
    try:
        head = _locked_head(session)
        seq, head_hash = int(head.seq), str(head.hash)
        if only_if_due is not None:
            last = session.execute(select(func.max(AuditCheckpointRow.seq))).scalar()
            if seq - int(last or 0) < only_if_due:
                return None
    except SQLAlchemyError as exc:
        raise _db_failure(session, N_("reading the audit head failed"), exc) from None
    checkpoint = sign_checkpoint(signer, seq, head_hash, when=when)
    add_checkpoint(session, checkpoint)
    return checkpoint


def count_entries(session: Session) -> int:
    try:
        return int(session.execute(select(func.count()).select_from(AuditEntryRow)).scalar() or 0)
    except SQLAlchemyError as exc:
        raise _db_failure(session, N_("counting the audit entries failed"), exc) from None
