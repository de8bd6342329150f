"""Publishing the directory from the registry (authority side; imports SQLAlchemy).

Invariants:

* the version comes from the registry (``directory_versions``), allocated in the
  same transaction that reads the data, so two operators publishing at once get
  two distinct, increasing versions;
* the snapshot is signed by the root key and verified again against the root
  fingerprint before it is written, then written atomically;
* the home's own ``directory.json`` is replaced only by a newer version (and its
  anchor raised with it, :func:`sandi.directory.local.install_verified`).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from sandi.directory import leaves as leaves_store
from sandi.directory import v2
from sandi.directory.archive import FILE_NAME as ARCHIVE_NAME
from sandi.directory.archive import archive_bytes, archive_path, replaceable_companion
from sandi.directory.leaves import agency_entry, refresh_leaves
from sandi.directory.snapshot import (
    AgencyEntry,
    DirectorySnapshot,
    Ed25519Signer,
    PolicyEntry,
    RevocationEntry,
    TsaEntry,
    _v2_parts,
    parse_envelope,
    sign_snapshot,
    sign_snapshot_v1,
    verify_header,
)
from sandi.errors import ConfigError, NotFoundError, RegistryError
from sandi.fsutil import atomic_write
from sandi.home import Home
from sandi.i18n import _
from sandi.registry import Registry

if TYPE_CHECKING:
    from sandi.authority.issuance import Issuer
    from sandi.authority.pdfroot import PdfIssuer
from sandi.registry.models import (
    AgencyRow,
    AuthorityRow,
    CertificateRow,
    DirectoryLeafRow,
    DirectoryRemovedRow,
    DirectoryVersionRow,
    OfficialRow,
    PolicyVersionRow,
)


def build_snapshot(
    session: Session,
    *,
    crl_pem: str | None,
    validity: timedelta,
    now: datetime | None = None,
    pdf_crl_pem: str | None = None,
    with_agencies: bool = True,
) -> DirectorySnapshot:
    """Read the registry and allocate the next directory version (in ``session``).
    ``with_agencies=False`` leaves the agencies out (the incremental publication takes
    them from the leaf store).

    The PDF root certificate comes from the registry; ``pdf_crl_pem`` is its CRL."""
    now = now or datetime.now(UTC)
    authority = session.get(AuthorityRow, 1)
    if authority is None:
        raise NotFoundError(_("this registry has no authority yet"), hint=_("run 'sandi init'"))
    # Lock-free and race-safe: the primary key makes a duplicate version fail the
    # transaction instead of publishing two snapshots under one number.
    latest = session.scalar(select(func.max(DirectoryVersionRow.version))) or 0
    version = latest + 1
    # The changed agencies' leaves (and only theirs) are brought up to date with every
    # publication, in its transaction (sandi.directory.leaves).
    refresh_leaves(session, version)

    agencies = session.scalars(
        select(AgencyRow).options(
            selectinload(AgencyRow.certificates).selectinload(CertificateRow.revocation)
        )
    ).all() if with_agencies else []
    by_id = {a.id: a.code for a in agencies}
    officials: dict[int, list[OfficialRow]] = {}
    for official in (session.scalars(select(OfficialRow).order_by(OfficialRow.nip)).all()
                     if with_agencies else []):
        officials.setdefault(official.agency_id, []).append(official)
    entries = [agency_entry(agency, by_id.get(agency.parent_id) if agency.parent_id else None,
                            officials.get(agency.id, ()))
               for agency in agencies]
    policies = _policy_entries(session)
    from sandi.authority.tsa import tsa_rows

    tsas = tuple(
        TsaEntry(serial=t.serial, not_before=t.not_before, not_after=t.not_after, pem=t.cert_pem,
                 revocation=None if t.revoked_at is None or t.revocation_reason is None
                 else RevocationEntry(reason=t.revocation_reason, revoked_at=t.revoked_at))
        for t in tsa_rows(session)
    )
    snapshot = DirectorySnapshot(
        version=version,
        issued_at=now,
        expires_at=now + validity,
        province=authority.province,
        root_cert_pem=authority.root_cert_pem,
        agencies=tuple(entries),
        crl_pem=crl_pem,
        policies=policies,
        pdf_root_cert_pem=authority.pdf_root_cert_pem,
        pdf_crl_pem=pdf_crl_pem if authority.pdf_root_cert_pem is not None else None,
        timestamp_authorities=tsas,
    )
    return snapshot


def _policy_entries(session: Session) -> tuple[PolicyEntry, ...]:
    return tuple(
        PolicyEntry(
            policy_id=p.policy_id,
            version=p.version,
            source=p.source,
            signature=p.signature,
            effective_from=p.effective_from,
            expires_at=p.expires_at,
            applied_at=p.applied_at,
            compiled=p.compiled,
            compiled_signature=None if p.compiled_signature is None else bytes(p.compiled_signature),
        )
        for p in session.scalars(select(PolicyVersionRow)).all()
    )


def publish(
    session: Session,
    signer: Ed25519Signer,
    *,
    crl_pem: str | None,
    validity: timedelta,
    now: datetime | None = None,
) -> tuple[DirectorySnapshot, bytes]:
    """Build, sign and record the next snapshot; returns it with its envelope bytes."""
    snapshot = build_snapshot(session, crl_pem=crl_pem, validity=validity, now=now)
    return sign_and_record(session, snapshot, signer)


def sign_and_record(
    session: Session, snapshot: DirectorySnapshot, signer: Ed25519Signer, *, format_version: int = 2
) -> tuple[DirectorySnapshot, bytes]:
    """Sign ``snapshot`` (as ``sandi-directory/v2``, or v1 on request: ``format_version``),
    check it as every reader will, and record its version."""
    envelope = sign_snapshot(snapshot, signer) if format_version == 2 else sign_snapshot_v1(snapshot, signer)
    # Check our own output the way every reader will, before anyone sees it.
    verified = parse_envelope(envelope, snapshot.root_fingerprint)
    if format_version == 2:
        decoded = v2.decode_envelope(json.loads(envelope))
        _record(session, snapshot, envelope, decoded.header, decoded.signature, decoded.members)
    else:  # a v1 publication: no header, so no delta starts from it
        _record(session, snapshot, envelope, None, None, None)
    return verified, envelope


def _record(session: Session, snapshot: DirectorySnapshot, envelope: bytes, header: bytes | None,
            signature: bytes | None, members: dict[str, Any] | None) -> None:
    """Record a publication. Only the newest keeps its whole envelope (``sandi serve``
    answers from it); older versions keep their header, signature and members, which is
    all a delta from them needs, so the registry grows with the changes, not with
    (versions x agencies)."""
    session.execute(update(DirectoryVersionRow).where(DirectoryVersionRow.version < snapshot.version,
                                                      DirectoryVersionRow.envelope.is_not(None))
                    .values(envelope=None))
    session.add(
        DirectoryVersionRow(
            version=snapshot.version,
            issued_at=snapshot.issued_at,
            expires_at=snapshot.expires_at,
            sha256=hashlib.sha256(envelope).hexdigest(),
            envelope=envelope,
            header=header,
            signature=signature,
            members=None if members is None else v2.canonical(members),
        )
    )
    session.flush()


class _StoredAgencies(Sequence[AgencyEntry]):
    """The published agencies as the leaf store gave them: parsed only when looked at."""

    def __init__(self, leaves: list[bytes]) -> None:
        self._leaves = leaves

    def __len__(self) -> int:
        return len(self._leaves)

    @overload
    def __getitem__(self, index: int) -> AgencyEntry: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[AgencyEntry]: ...

    def __getitem__(self, index: int | slice) -> AgencyEntry | Sequence[AgencyEntry]:
        if isinstance(index, slice):
            return [AgencyEntry.from_json(json.loads(leaf), "agency") for leaf in self._leaves[index]]
        return AgencyEntry.from_json(json.loads(self._leaves[index]), "agency")


def sign_incremental(
    session: Session, draft: DirectorySnapshot, signer: Ed25519Signer
) -> tuple[DirectorySnapshot, bytes]:
    """Sign and record the next v2 directory from the leaf store (``draft`` carries
    everything but the agencies; build_snapshot(with_agencies=False) refreshed the
    changed leaves). The header is computed from the stored leaf hashes and the envelope
    by joining the stored leaves, so no agency is loaded, parsed or re-encoded.

    Checked before anyone sees it: the header's signature against the root fingerprint,
    and the stored leaves against the stored hashes the header signs (a damaged store
    fails here, never reaches a reader)."""
    agencies_head, keys_head = leaves_store.agencies_head(session), leaves_store.keys_head(session)
    archived = leaves_store.archive_head(session)  # retired certificates (ADR 0019)
    draft = replace(draft, archive_head=archived if archived.count else None)
    _agencies, policies, members = _v2_parts(draft)
    header = v2.header_from_heads(
        version=draft.version, issued_at=draft.issued_at, expires_at=draft.expires_at,
        province=draft.province, root_certificate=draft.root_cert_pem, agencies_head=agencies_head,
        keys_head=keys_head, policies=policies, members=members,
        audit_checkpoint=None if draft.audit_checkpoint is None else draft.audit_checkpoint.to_dict())
    signature = signer.sign(v2.SIGNING_CONTEXT + header)
    verify_header(header, signature, draft.root_fingerprint)
    leaves = leaves_store.stored_leaves(session)
    if v2.tree_head(leaves)[0] != agencies_head:
        raise RegistryError(_("the registry's directory leaves do not match their hashes"),
                            hint=_("run 'sandi directory publish --rebuild' to recompute every leaf"))
    envelope = v2.joined_envelope_bytes(header, signature, leaves, policies, members)
    _record(session, draft, envelope, header, signature, members)
    return replace(draft, agencies=_StoredAgencies(leaves), body_sha256=v2.sha256_hex(header),
                   format=v2.FORMAT), envelope


def archive_file_bytes(session: Session) -> bytes:
    """``directory-archive.json`` of the newest publication: the stored archive leaves."""
    return archive_bytes(leaves_store.archive_leaves(session))


def delta_since(session: Session, base_version: int) -> bytes | None:
    """The newest publication as a ``sandi-directory-delta/v2`` from ``base_version``
    (docs/format.md §4.A.2): the leaves changed after it, the codes removed after it, the
    policies and side members the base did not have; None when the registry cannot make
    one (no such v2 version, or it is the newest) and the full directory is the answer."""
    base = session.get(DirectoryVersionRow, base_version)
    newest = session.scalars(select(DirectoryVersionRow).order_by(DirectoryVersionRow.version.desc())
                             .limit(1)).first()
    if (base is None or base.header is None or newest is None or newest.header is None
            or newest.signature is None or newest.members is None or newest.version <= base_version):
        return None
    base_header = v2.parse_header(bytes(base.header))
    new_header = v2.parse_header(bytes(newest.header))
    upsert = [json.loads(leaf) for _code, leaf in sorted(
        (code, bytes(leaf)) for code, leaf in session.execute(
            select(DirectoryLeafRow.code, DirectoryLeafRow.leaf)
            .where(DirectoryLeafRow.version > base_version)))]
    removed = sorted(session.scalars(select(DirectoryRemovedRow.code)
                                     .where(DirectoryRemovedRow.version > base_version)))
    known = {(d.policy_id, d.version, d.sha256, d.compiled_sha256) for d in base_header.policies}
    wanted = {(d.policy_id, d.version) for d in new_header.policies
              if (d.policy_id, d.version, d.sha256, d.compiled_sha256) not in known}
    policies = [p.to_json() for p in _policy_entries(session) if (p.policy_id, p.version) in wanted]
    members = json.loads(bytes(newest.members))
    changed_members = {name: value for name, value in members.items()
                       if base_header.members.get(name) != new_header.members.get(name)}
    return v2.canonical({
        "format": v2.DELTA_FORMAT,
        "base": {"version": base_version, "header_sha256": v2.sha256_hex(bytes(base.header))},
        "header": base64.b64encode(bytes(newest.header)).decode("ascii"),
        "signature": base64.b64encode(bytes(newest.signature)).decode("ascii"),
        "agencies": {"upsert": upsert, "remove": removed},
        "policies": sorted(policies, key=lambda p: (p["policy_id"], p["version"])),
        "members": changed_members,
    }) + b"\n"


@dataclass(frozen=True)
class Publication:
    """The newest directory the registry holds, as published (``sandi serve`` answers
    from it): the signed envelope, its SHA-256 (hex, the HTTP entity tag) and expiry."""

    version: int
    envelope: bytes
    sha256: str
    expires_at: datetime


def latest_publication(session: Session) -> Publication | None:
    """The newest publication that kept its envelope (none before migration 0003)."""
    row = session.scalars(
        select(DirectoryVersionRow)
        .where(DirectoryVersionRow.envelope.is_not(None))
        .order_by(DirectoryVersionRow.version.desc())
        .limit(1)
    ).first()
    if row is None or row.envelope is None:
        return None
    return Publication(version=row.version, envelope=bytes(row.envelope), sha256=row.sha256,
                       expires_at=row.expires_at)


def directory_format(value: object) -> int:
    """``directory_format`` in an authority's sandi.toml: 2 (the default, ADR 0015), or 1
    while workstations still run a release that reads only version 1 (format.md §5)."""
    if isinstance(value, bool) or not isinstance(value, int) or value not in (1, 2):
        from sandi.errors import ConfigError

        raise ConfigError(_("sandi.toml: directory_format must be 1 or 2"),
                          hint=_("2 unless some workstations run a release older than ADR 0015"))
    return value


def republish(
    home: Home,
    registry: Registry,
    issuer: Issuer,
    *,
    validity: timedelta | None = None,
    output: Path | None = None,
    overwrite_output: bool = False,
    now: datetime | None = None,
    pdf_issuer: PdfIssuer | None = None,
    rebuild: bool = False,
) -> DirectorySnapshot:
    """Publish the next snapshot with a fresh CRL (and, with ``pdf_issuer``, a fresh CRL of
    the PDF root); write both to the home (and ``output``,
    replaced only with ``overwrite_output``; with an archive of retired certificates, also
    ``directory-archive.json`` beside ``output``, replacing an earlier archive there).

    One transaction: the version, the CRL, the audit entry ``directory.publish``, a
    checkpoint of the registry's audit chain over that entry (carried in the snapshot,
    ADR 0010) and the snapshot's content are consistent. After the commit: the home's
    journal is checkpointed every 100 entries, both checkpoints become the home's audit
    anchors, and the files are written, each atomically; the home keeps the newest
    version if two operators race.
    """
    from sandi.audit.anchor import maybe_checkpoint, raise_anchor
    from sandi.audit.events import AuditEvent, current_operator
    from sandi.audit.journal import Journal
    from sandi.audit.registry_sink import append_in_session, checkpoint_in_session
    from sandi.authority.crl import CRL_NAME, build_crl

    config = home.load_config()
    days = config.directory_validity_days
    format_version = directory_format(config.extra.get("directory_format", 2))
    validity = validity or timedelta(days=days)
    now = now or datetime.now(UTC)
    with registry.transaction() as session:
        authority = session.get(AuthorityRow, 1)
        if pdf_issuer is None and authority is not None and authority.pdf_root_cert_pem is not None:
            # The PDF root's CRL must be as fresh as the root's: refuse rather than publish
            # a directory whose PDF certificates' revocations are missing.
            raise ConfigError(_("this authority has a PDF root: publishing needs its key for its CRL"))
        crl_pem, _n, _c = build_crl(session, issuer, now=now, next_update_days=validity.days or 1)
        pdf_crl = None
        if pdf_issuer is not None:
            pdf_crl_pem, _n, _c = build_crl(session, pdf_issuer, now=now, next_update_days=validity.days or 1)
            pdf_crl = pdf_crl_pem.decode("ascii")
        if rebuild:  # recompute every leaf from the registry (the full rebuild, ADR 0019)
            from sandi.registry.changes import mark_agencies

            mark_agencies(session, session.scalars(select(AgencyRow.id)))
        draft = build_snapshot(session, crl_pem=crl_pem.decode("ascii"), validity=validity, now=now,
                               pdf_crl_pem=pdf_crl, with_agencies=format_version != 2)
        previous = session.scalar(select(func.max(DirectoryVersionRow.version))
                                  .where(DirectoryVersionRow.header.is_not(None)))
        append_in_session(session, AuditEvent(
            actor=current_operator(), action="directory.publish", subject=f"v{draft.version}",
            details={"version": draft.version, "expires_at": draft.body_json()["expires_at"],
                     "agencies": leaves_store.leaf_count(session),
                     "policies": len(draft.policies)},
        ))
        # The root key is at hand: sign the registry chain's head, publication included,
        # so every copy of this directory witnesses the audit log up to here.
        checkpoint = checkpoint_in_session(session, issuer.key)
        if format_version == 2:
            snapshot, envelope = sign_incremental(
                session, replace(draft, audit_checkpoint=checkpoint), issuer.key)
            delta = None if previous is None else delta_since(session, previous)
        else:  # v1 on request (the transition): the whole body, signed as before
            snapshot, envelope = sign_and_record(session, replace(draft, audit_checkpoint=checkpoint),
                                                 issuer.key, format_version=format_version)
            delta = None
        archive = archive_file_bytes(session) if snapshot.archive_head is not None else None
    journal_checkpoint = maybe_checkpoint(Journal(home.journal_path), issuer.key)
    if archive is not None:  # before the directory that signs its head (a reader finds it ready)
        atomic_write(archive_path(home.path), archive, mode=0o644, overwrite=True)
    if _install(home, envelope, snapshot, delta):
        atomic_write(home.path / CRL_NAME, crl_pem, mode=0o644)
    if checkpoint is not None:
        raise_anchor(home.registry_audit_anchor_path, "registry", checkpoint)
    if journal_checkpoint is not None:
        raise_anchor(home.journal_audit_anchor_path, "journal", journal_checkpoint)
    if output is not None:
        companion = output.with_name(ARCHIVE_NAME)
        if archive is not None and output.name != ARCHIVE_NAME:  # its companion (ADR 0019)
            atomic_write(companion, archive, mode=0o644,
                         overwrite=overwrite_output or replaceable_companion(companion))
        atomic_write(output, envelope, mode=0o644, overwrite=overwrite_output)
    return snapshot


def _install(home: Home, envelope: bytes, snapshot: DirectorySnapshot, delta: bytes | None) -> bool:
    """Install the new publication in the authority's own home: by its delta when the
    home holds the version it starts from (work in proportion to the change), else the
    whole envelope (verified in full, as an import would)."""
    from sandi.directory.delta import DeltaNotApplicable, apply_delta
    from sandi.directory.local import install_verified

    if delta is not None:
        try:
            apply_delta(home, delta, expected_envelope=envelope)
            return True
        except DeltaNotApplicable:
            pass
    return install_verified(home, envelope, snapshot)
