"""The directory's per-agency leaves, kept in the registry (authority side; issue 20).

A ``sandi-directory/v2`` header signs two Merkle roots (docs/format.md §4.A): one over
the agencies' leaves (the canonical JSON of each agency entry, sorted by code) and one
over the key leaves (``{code, key_fingerprint}`` per certificate, sorted by fingerprint
then code). Computing every leaf from the registry on every change is what made each
publication cost the whole registry. This module keeps each leaf and its hash in the
registry and recomputes only the leaves of agencies a transaction changed.

Invariants:

* a change to an agency, its certificates or their revocations marks the agency in
  ``directory_pending`` in the change's own transaction (sandi.registry.changes), and
  :func:`refresh_leaves` recomputes exactly the marked agencies' leaves and clears the
  marks in the publication's transaction: stored leaves are never older than a committed
  change once a publication has run;
* a stored leaf is byte for byte what :func:`leaf_of` computes from the registry now;
  :func:`stale_leaves` recomputes every leaf and names any that differ (the full
  rebuild is always possible and checkable, ``sandi directory publish --check``);
* the roots are computed from the stored leaf hashes only (32 bytes per leaf read,
  no entry parsed, no certificate touched).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session, selectinload

from sandi.directory import v2
from sandi.directory.archive import split_entry
from sandi.directory.snapshot import AgencyEntry, CertEntry, OfficialEntry, RevocationEntry, directory_purpose
from sandi.formats import merkle
from sandi.registry.models import (
    AgencyRow,
    CertificateRow,
    DirectoryArchiveLeafRow,
    DirectoryKeyLeafRow,
    DirectoryLeafRow,
    DirectoryPendingRow,
    DirectoryRemovedRow,
    OfficialRow,
)

canonical_json = v2.canonical
TreeHead = v2.TreeHead


def leaf_hash(leaf: bytes) -> bytes:
    return merkle.leaf_hash(leaf)


@dataclass(frozen=True)
class LeafChanges:
    """What one refresh changed: codes whose leaf is new or different, codes removed."""

    upserted: tuple[str, ...]
    removed: tuple[str, ...]


def _load(session: Session, agency_ids: Iterable[int]) -> list[AgencyRow]:
    ids = sorted(set(agency_ids))
    out: list[AgencyRow] = []
    for start in range(0, len(ids), 500):  # bounded IN lists
        out.extend(session.scalars(
            select(AgencyRow).where(AgencyRow.id.in_(ids[start:start + 500])).options(
                selectinload(AgencyRow.certificates).selectinload(CertificateRow.revocation))))
    return out


def _parent_codes(session: Session, agencies: Sequence[AgencyRow]) -> dict[int, str]:
    parent_ids = sorted({a.parent_id for a in agencies if a.parent_id is not None})
    if not parent_ids:
        return {}
    return {i: code for i, code in session.execute(
        select(AgencyRow.id, AgencyRow.code).where(AgencyRow.id.in_(parent_ids)))}


def _cert_entry(c: CertificateRow) -> CertEntry:
    return CertEntry(
        serial=c.serial,
        purpose=directory_purpose(c.purpose),
        state=c.state,
        key_fingerprint=c.key_fingerprint,
        not_before=c.not_before,
        not_after=c.not_after,
        pem=c.cert_pem,
        revocation=None
        if c.revocation is None
        else RevocationEntry(reason=c.revocation.reason, revoked_at=c.revocation.revoked_at),
    )


def agency_entry(agency: AgencyRow, parent_code: str | None,
                 officials: Sequence[OfficialRow] = ()) -> AgencyEntry:
    """An agency's directory entry from its row (certificates and revocations loaded) and
    its officials (ADR 0017: their certificates apart from the agency's own)."""
    ordered = sorted(agency.certificates, key=lambda c: (c.issued_at, c.serial))
    people = tuple(
        OfficialEntry(nip=o.nip, name=o.name, title=o.title, status=o.status,
                      certificates=tuple(_cert_entry(c) for c in ordered if c.official_id == o.id))
        for o in sorted(officials, key=lambda o: o.nip)
    )
    return AgencyEntry(code=agency.code, name=agency.name, kind=agency.kind, status=agency.status,
                       parent=parent_code, certificates=tuple(_cert_entry(c) for c in ordered
                                                              if c.official_id is None),
                       officials=people)


def _officials(session: Session, agency_ids: Sequence[int]) -> dict[int, list[OfficialRow]]:
    out: dict[int, list[OfficialRow]] = {}
    for start in range(0, len(agency_ids), 500):
        for official in session.scalars(select(OfficialRow).where(
                OfficialRow.agency_id.in_(agency_ids[start:start + 500]))):
            out.setdefault(official.agency_id, []).append(official)
    return out


def leaf_of(agency: AgencyRow, parent_code: str | None, officials: Sequence[OfficialRow] = ()) -> bytes:
    """The agency's leaf: the canonical JSON of its directory entry, without the
    certificates that went to the archive."""
    return leaves_of(agency, parent_code, officials)[0]


def leaves_of(agency: AgencyRow, parent_code: str | None,
              officials: Sequence[OfficialRow] = ()) -> tuple[bytes, dict[str, bytes]]:
    """The agency's leaf and its archive leaves by certificate serial (ADR 0019)."""
    entry, moved = split_entry(agency_entry(agency, parent_code, officials).to_json())
    return canonical_json(entry), {json.loads(leaf)["certificate"]["serial"]: leaf for leaf in moved}


def key_fingerprints(leaf: bytes) -> list[str]:
    """The key fingerprints the key tree takes from an agency leaf (its own certificates'
    and its officials', docs/format.md §4.A)."""
    return sorted({fp for fp, _code in v2.key_pairs([json.loads(leaf)])})


def _chunks(ids: Sequence[int], size: int = 500) -> Iterable[Sequence[int]]:
    return (ids[start:start + size] for start in range(0, len(ids), size))


def refresh_leaves(session: Session, version: int) -> LeafChanges:
    """Recompute the leaves of the agencies marked as changed; ``version`` is the
    directory version being published (recorded on each leaf it changes). Bulk
    statements: a first publication after migration computes every leaf at once."""
    pending = sorted(session.scalars(select(DirectoryPendingRow.agency_id)))
    if not pending:
        return LeafChanges((), ())
    agencies = _load(session, pending)
    parents = _parent_codes(session, agencies)
    officials = _officials(session, sorted(a.id for a in agencies))
    stored: dict[int, tuple[str, bytes]] = {}
    for chunk in _chunks(pending):
        stored.update({agency_id: (code, bytes(leaf)) for agency_id, code, leaf in session.execute(
            select(DirectoryLeafRow.agency_id, DirectoryLeafRow.code, DirectoryLeafRow.leaf)
            .where(DirectoryLeafRow.agency_id.in_(chunk)))})
    new_rows: list[dict[str, Any]] = []
    changed_rows: list[dict[str, Any]] = []
    key_rows: list[dict[str, Any]] = []
    upserted: list[str] = []
    archive_rows: list[dict[str, Any]] = []
    for agency in agencies:
        leaf, archived = leaves_of(agency, parents.get(agency.parent_id) if agency.parent_id else None,
                                   officials.get(agency.id, ()))
        archive_rows.extend({"serial": serial, "agency_id": agency.id, "leaf": moved,
                             "leaf_hash": leaf_hash(moved)} for serial, moved in archived.items())
        before = stored.pop(agency.id, None)
        if before is not None and before[1] == leaf:
            continue  # marked but unchanged (an update that wrote the same values)
        row = {"agency_id": agency.id, "code": agency.code, "leaf": leaf, "leaf_hash": leaf_hash(leaf),
               "version": version}
        (new_rows if before is None else changed_rows).append(row)
        key_rows.extend({"key_fingerprint": fp, "code": agency.code, "agency_id": agency.id,
                         "leaf_hash": leaf_hash(v2.key_leaf(fp, agency.code))}
                        for fp in key_fingerprints(leaf))
        upserted.append(agency.code)
    removed = sorted(code for code, _leaf in stored.values())  # marked, and the agency is gone
    rewritten = sorted([r["agency_id"] for r in (*new_rows, *changed_rows)] + list(stored))
    for chunk in _chunks(rewritten):
        session.execute(delete(DirectoryKeyLeafRow).where(DirectoryKeyLeafRow.agency_id.in_(chunk)))
    for chunk in _chunks(sorted(stored)):
        session.execute(delete(DirectoryLeafRow).where(DirectoryLeafRow.agency_id.in_(chunk)))
    if new_rows:
        session.execute(insert(DirectoryLeafRow), new_rows)
    if changed_rows:  # bulk UPDATE by primary key
        session.execute(update(DirectoryLeafRow), changed_rows)
    if key_rows:
        session.execute(insert(DirectoryKeyLeafRow), key_rows)
    for start in range(0, len(upserted), 500):  # a code back in the directory is no longer a removal
        session.execute(delete(DirectoryRemovedRow)
                        .where(DirectoryRemovedRow.code.in_(upserted[start:start + 500])))
    if removed:  # deltas from before this version must list the removal
        session.execute(insert(DirectoryRemovedRow), [{"code": c, "version": version} for c in removed])
    # The archive leaves of every marked agency, rewritten (cheap: a few per agency).
    for chunk in _chunks(pending):
        session.execute(delete(DirectoryArchiveLeafRow).where(DirectoryArchiveLeafRow.agency_id.in_(chunk)))
    if archive_rows:
        session.execute(insert(DirectoryArchiveLeafRow), archive_rows)
    for chunk in _chunks(pending):
        session.execute(delete(DirectoryPendingRow).where(DirectoryPendingRow.agency_id.in_(chunk)))
    return LeafChanges(tuple(sorted(upserted)), tuple(removed))


def leaf_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(DirectoryLeafRow)) or 0)


def agencies_head(session: Session) -> TreeHead:
    """The agency tree's head from the stored leaf hashes, in code order."""
    rows = sorted((code, h) for code, h in session.execute(
        select(DirectoryLeafRow.code, DirectoryLeafRow.leaf_hash)))
    return TreeHead(len(rows), merkle.root([h for _, h in rows]))


def keys_head(session: Session) -> TreeHead:
    """The key tree's head from the stored key leaf hashes, in (fingerprint, code) order."""
    rows = sorted((fp, code, h) for fp, code, h in session.execute(
        select(DirectoryKeyLeafRow.key_fingerprint, DirectoryKeyLeafRow.code, DirectoryKeyLeafRow.leaf_hash)))
    return TreeHead(len(rows), merkle.root([h for _, _, h in rows]))


def archive_head(session: Session) -> TreeHead:
    """The archive tree's head from the stored archive leaf hashes, in serial order."""
    rows = sorted((serial, h) for serial, h in session.execute(
        select(DirectoryArchiveLeafRow.serial, DirectoryArchiveLeafRow.leaf_hash)))
    return TreeHead(len(rows), merkle.root([h for _, h in rows]))


def archive_leaves(session: Session) -> list[bytes]:
    """The stored archive leaves in serial order."""
    return [bytes(leaf) for _, leaf in sorted((serial, bytes(leaf)) for serial, leaf in session.execute(
        select(DirectoryArchiveLeafRow.serial, DirectoryArchiveLeafRow.leaf)))]


def stored_leaves(session: Session, codes: Iterable[str] | None = None) -> list[bytes]:
    """Stored agency leaves in code order (all, or those of ``codes``)."""
    stmt = select(DirectoryLeafRow.code, DirectoryLeafRow.leaf)
    if codes is not None:
        stmt = stmt.where(DirectoryLeafRow.code.in_(sorted(set(codes))))
    return [leaf for _, leaf in sorted((code, leaf) for code, leaf in session.execute(stmt))]


def stale_leaves(session: Session) -> list[str]:
    """Recompute every agency's leaf from the registry and name those whose stored leaf
    (or key leaves) differ or are missing, and stored leaves of agencies that are gone.
    Empty when the store is exactly what a full rebuild would produce."""
    agencies = session.scalars(select(AgencyRow).options(
        selectinload(AgencyRow.certificates).selectinload(CertificateRow.revocation))).all()
    by_id = {a.id: a.code for a in agencies}
    officials = _officials(session, sorted(by_id))
    stored = {code: leaf for code, leaf in session.execute(
        select(DirectoryLeafRow.code, DirectoryLeafRow.leaf))}
    keys: dict[str, set[tuple[str, bytes]]] = {}
    for fp, code, h in session.execute(select(DirectoryKeyLeafRow.key_fingerprint, DirectoryKeyLeafRow.code,
                                              DirectoryKeyLeafRow.leaf_hash)):
        keys.setdefault(code, set()).add((fp, h))
    archived_stored: dict[str, set[tuple[str, bytes]]] = {}
    for serial, agency_id, archived_leaf in session.execute(select(
            DirectoryArchiveLeafRow.serial, DirectoryArchiveLeafRow.agency_id, DirectoryArchiveLeafRow.leaf)):
        owner = by_id.get(agency_id, f"#{agency_id}")
        archived_stored.setdefault(owner, set()).add((serial, bytes(archived_leaf)))
    bad = []
    for agency in agencies:
        leaf, archived = leaves_of(agency, by_id.get(agency.parent_id) if agency.parent_id else None,
                                   officials.get(agency.id, ()))
        if archived_stored.pop(agency.code, set()) != set(archived.items()):
            bad.append(agency.code)
        want_keys = {(fp, leaf_hash(v2.key_leaf(fp, agency.code))) for fp in key_fingerprints(leaf)}
        stored_leaf, stored_keys = stored.pop(agency.code, None), keys.pop(agency.code, set())
        if stored_leaf != leaf or stored_keys != want_keys:
            bad.append(agency.code)
    return sorted({*bad, *stored, *keys, *archived_stored})
