"""Plain records of what the registry holds (no SQLAlchemy objects leave the authority).

Invariant: a record is a frozen snapshot taken inside a transaction; it carries only
public data (certificates, fingerprints, reasons), so it can be printed, logged,
compared and published.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sandi.authority import validity

if TYPE_CHECKING:
    from sandi.registry import Registry
    from sandi.registry.models import AgencyRow, CertificateRow, OfficialRow


@dataclass(frozen=True)
class RevocationInfo:
    reason: str
    revoked_at: datetime
    revoked_by: str


@dataclass(frozen=True)
class CertificateInfo:
    serial: str
    agency: str
    purpose: str
    key_fingerprint: str
    public_key: bytes
    not_before: datetime
    not_after: datetime
    issued_at: datetime
    state: str
    retired_at: datetime | None
    profile: str
    cert_pem: str
    revocation: RevocationInfo | None
    #: the NIP of the official this personal certificate names (None: the agency's own)
    official: str | None = None

    def status(self, at: datetime, *, overlap_days: int = 0) -> validity.CertStatus:
        return validity.status(self, self.revocation, at, overlap_days=overlap_days)

    def valid_for_signing(self, at: datetime) -> bool:
        return validity.is_valid_for_signing(self, self.revocation, at)

    def valid_for_encrypting_to(self, at: datetime) -> bool:
        return validity.is_valid_for_encrypting_to(self, self.revocation, at)

    def valid_for_opening(self, sealed_at: datetime) -> bool:
        return validity.is_valid_for_opening(self, self.revocation, sealed_at)

    def to_json(self, at: datetime, *, overlap_days: int = 0) -> dict[str, Any]:
        return {
            "serial": self.serial,
            "agency": self.agency,
            "purpose": self.purpose,
            "key_fingerprint": self.key_fingerprint,
            "state": self.state,
            "status": self.status(at, overlap_days=overlap_days).value,
            "not_before": _iso(self.not_before),
            "not_after": _iso(self.not_after),
            "issued_at": _iso(self.issued_at),
            "retired_at": _iso(self.retired_at) if self.retired_at else None,
            "profile": self.profile,
            **({"official": self.official} if self.official else {}),
            "revocation": None
            if self.revocation is None
            else {
                "reason": self.revocation.reason,
                "revoked_at": _iso(self.revocation.revoked_at),
                "revoked_by": self.revocation.revoked_by,
            },
        }


@dataclass(frozen=True)
class AgencyInfo:
    code: str
    name: str
    kind: str
    parent: str | None
    status: str
    created_at: datetime
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "kind": self.kind,
            "parent": self.parent,
            "status": self.status,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
        }


def cert_info(row: CertificateRow, agency_code: str | None = None) -> CertificateInfo:
    rev = row.revocation
    return CertificateInfo(
        serial=row.serial,
        agency=agency_code or row.agency.code,
        purpose=row.purpose,
        key_fingerprint=row.key_fingerprint,
        public_key=bytes(row.public_key),
        not_before=row.not_before,
        not_after=row.not_after,
        issued_at=row.issued_at,
        state=row.state,
        retired_at=row.retired_at,
        profile=row.profile,
        cert_pem=row.cert_pem,
        revocation=None if rev is None else RevocationInfo(rev.reason, rev.revoked_at, rev.revoked_by),
        official=None if row.official is None else row.official.nip,
    )


@dataclass(frozen=True)
class OfficialInfo:
    """A named official of an agency, with their personal certificates (oldest first)."""

    agency: str
    nip: str
    name: str
    title: str
    status: str
    created_at: datetime
    updated_at: datetime
    certificates: tuple[CertificateInfo, ...] = ()

    def to_json(self, at: datetime) -> dict[str, Any]:
        return {
            "agency": self.agency,
            "nip": self.nip,
            "name": self.name,
            "title": self.title,
            "status": self.status,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "certificates": [c.to_json(at) for c in self.certificates],
        }


def official_info(row: OfficialRow, agency_code: str, certificates: list[CertificateRow]) -> OfficialInfo:
    return OfficialInfo(agency_code, row.nip, row.name, row.title, row.status, row.created_at, row.updated_at,
                        tuple(cert_info(c, agency_code) for c in certificates))


def agency_info(row: AgencyRow, parent_code: str | None) -> AgencyInfo:
    return AgencyInfo(row.code, row.name, row.kind, parent_code, row.status, row.created_at, row.updated_at)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def list_certificates(registry: Registry, code: str | None = None) -> list[CertificateInfo]:
    """Every certificate (of one agency if ``code``), oldest first."""
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from sandi.registry.models import CertificateRow

    with registry.reading() as session:
        stmt = (
            select(CertificateRow)
            .options(selectinload(CertificateRow.revocation), selectinload(CertificateRow.agency),
                     selectinload(CertificateRow.official))
            .order_by(CertificateRow.issued_at, CertificateRow.purpose, CertificateRow.serial)
        )
        if code is not None:
            from sandi.authority.lookup import find_agency

            agency: AgencyRow = find_agency(session, code)
            stmt = stmt.where(CertificateRow.agency_id == agency.id)
        return [cert_info(row) for row in session.scalars(stmt).all()]
