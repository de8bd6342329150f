"""Which agencies a transaction changed, recorded for the directory's leaf store.

Invariants:

* every flush that inserts, updates or deletes an agency, one of its officials or
  certificates or a revocation of one adds the agency's id to ``directory_pending`` in the same
  transaction, so a committed change is never missing from the next publication
  (sandi.directory.leaves recomputes exactly the pending agencies' leaves);
* marking is idempotent and race-free: a second mark of the same agency (another
  operator's concurrent transaction on PostgreSQL) is an ``ON CONFLICT DO NOTHING``;
* the hook reads only what the flush holds (ids), never loads objects.

Changes made with Core statements that bypass the ORM are not seen: code that writes
agencies or certificates that way (the benchmarks' bulk fill) calls :func:`mark_agencies`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from sandi.registry.models import AgencyRow, CertificateRow, DirectoryPendingRow, OfficialRow, RevocationRow


def mark_agencies(session: Session, agency_ids: Iterable[int]) -> None:
    """Record ``agency_ids`` as changed (their leaves are recomputed at the next publication)."""
    ids = sorted({int(i) for i in agency_ids})
    if not ids:
        return
    connection = session.connection()
    rows = [{"agency_id": i} for i in ids]
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        connection.execute(pg_insert(DirectoryPendingRow).on_conflict_do_nothing(), rows)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        connection.execute(sqlite_insert(DirectoryPendingRow).on_conflict_do_nothing(), rows)


def _changed(session: Session) -> tuple[set[int], set[int]]:
    agencies: set[int] = set()
    certificates: set[int] = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, AgencyRow) and obj.id is not None:
            agencies.add(obj.id)
        elif isinstance(obj, CertificateRow | OfficialRow) and obj.agency_id is not None:
            agencies.add(obj.agency_id)
        elif isinstance(obj, RevocationRow) and obj.certificate_id is not None:
            certificates.add(obj.certificate_id)
    return agencies, certificates


_KEY = "sandi_directory_changes"
_TRACKED = (AgencyRow, CertificateRow, OfficialRow, RevocationRow)


def track_changes(sessions: sessionmaker[Session]) -> None:
    """Install the flush hook on the sessions of one :class:`~sandi.registry.Registry`."""

    @event.listens_for(sessions, "before_flush")
    def _before(session: Session, _context: Any, _instances: Any) -> None:
        # New rows have no id before the flush, and dirty or deleted ones leave
        # session.dirty/deleted with it: note both now, resolve the ids after.
        agencies, certificates = _changed(session)
        new = [o for o in session.new if isinstance(o, _TRACKED)]
        noted = session.info.setdefault(_KEY, (set(), set(), []))
        noted[0].update(agencies)
        noted[1].update(certificates)
        noted[2].extend(new)

    @event.listens_for(sessions, "after_flush")
    def _after(session: Session, _context: Any) -> None:
        agencies, certificates, new = session.info.pop(_KEY, (set(), set(), []))
        for obj in new:
            if isinstance(obj, AgencyRow):
                agencies.add(obj.id)
            elif isinstance(obj, CertificateRow | OfficialRow):
                agencies.add(obj.agency_id)
            elif isinstance(obj, RevocationRow):
                certificates.add(obj.certificate_id)
        if certificates:
            agencies.update(session.connection().scalars(
                select(CertificateRow.agency_id).where(CertificateRow.id.in_(sorted(certificates)))))
        mark_agencies(session, agencies)
