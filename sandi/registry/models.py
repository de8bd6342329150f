"""Registry tables. Each block is owned by one part of sandi (see the comments).

Schema changes go through ``migrations/versions``; until the first release the
initial migrations may be edited in place together with these models.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from sandi.registry.base import Base, UTCDateTime

# --- authority, agencies, certificates, revocations (owner: sandi.authority) ----------


class AuthorityRow(Base):
    """The one authority this registry belongs to (a single row, id = 1)."""

    __tablename__ = "authority"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    province: Mapped[str] = mapped_column(String(200))
    root_cert_pem: Mapped[str] = mapped_column(Text)
    root_fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    root_key_ref: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: the PDF root (ECDSA P-256, ADR 0014): None until 'sandi pdf-root init' (migration 0005)
    pdf_root_cert_pem: Mapped[str | None] = mapped_column(Text, nullable=True, default=None)
    pdf_root_key_ref: Mapped[str | None] = mapped_column(String(200), nullable=True, default=None)


class AgencyRow(Base):
    __tablename__ = "agencies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(40), default="agency")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("agencies.id"), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="active")  # active | suspended
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    certificates: Mapped[list[CertificateRow]] = relationship(back_populates="agency")


class OfficialRow(Base):
    """A named official of an agency (pejabat): personal signing certificates name them."""

    __tablename__ = "officials"
    __table_args__ = (UniqueConstraint("agency_id", "nip"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    nip: Mapped[str] = mapped_column(String(18))  # Nomor Induk Pegawai: 18 digits
    name: Mapped[str] = mapped_column(String(200))  # nama, as the certificate's CN
    title: Mapped[str] = mapped_column(String(200))  # jabatan, as the certificate's title
    status: Mapped[str] = mapped_column(String(20), default="active")  # active | retired
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    agency: Mapped[AgencyRow] = relationship()


class CertificateRow(Base):
    __tablename__ = "certificates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    serial: Mapped[str] = mapped_column(String(64), unique=True)  # lower-case hex
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    purpose: Mapped[str] = mapped_column(String(20))  # signing | encryption
    key_fingerprint: Mapped[str] = mapped_column(String(64))  # sha256(raw public key) hex
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    cert_pem: Mapped[str] = mapped_column(Text)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)
    not_after: Mapped[datetime] = mapped_column(UTCDateTime)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # current: the one new seals / signatures use; retired: superseded by renew/rotate
    state: Mapped[str] = mapped_column(String(20), default="current")
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    profile: Mapped[str] = mapped_column(String(64), default="default")
    #: a personal certificate of one of the agency's officials (None: the agency's own)
    official_id: Mapped[int | None] = mapped_column(ForeignKey("officials.id"), nullable=True, default=None)

    agency: Mapped[AgencyRow] = relationship(back_populates="certificates")
    official: Mapped[OfficialRow | None] = relationship()
    revocation: Mapped[RevocationRow | None] = relationship(back_populates="certificate")


class RevocationRow(Base):
    __tablename__ = "revocations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id"), unique=True)
    reason: Mapped[str] = mapped_column(String(40))  # RFC 5280 reason name
    revoked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str] = mapped_column(String(200))

    certificate: Mapped[CertificateRow] = relationship(back_populates="revocation")


# --- policy versions (owner: sandi.policy) -------------------------------------------


class PolicyVersionRow(Base):
    __tablename__ = "policy_versions"
    __table_args__ = (UniqueConstraint("policy_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    policy_id: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text)  # the TOML text, byte for byte as applied
    signature: Mapped[bytes] = mapped_column(LargeBinary)  # root key over the source
    #: the compiled form made at apply (sandi.policy.compiled) and the root's signature
    #: over it; None for versions applied before sandi had one
    compiled: Mapped[str | None] = mapped_column(Text, nullable=True)
    compiled_signature: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    effective_from: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime)
    applied_by: Mapped[str] = mapped_column(String(200))


class CrlCounterRow(Base):
    """One row (id = 1): the last CRL number issued. Locked by every CRL build, so
    numbers strictly increase (RFC 5280, section 5.2.3) even within one second."""

    __tablename__ = "crl_counter"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_number: Mapped[int] = mapped_column(BigInteger)


# --- audit (owner: sandi.audit) ------------------------------------------------------


class AuditEntryRow(Base):
    __tablename__ = "audit_entries"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    time: Mapped[str] = mapped_column(String(40))  # RFC 3339 UTC, as hashed
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(80))
    subject: Mapped[str] = mapped_column(String(300))
    outcome: Mapped[str] = mapped_column(String(20))
    details: Mapped[str] = mapped_column(Text)  # canonical JSON, as hashed
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHeadRow(Base):
    """One row (id = 1) locked by every appender: the chain's tip, serialising writers."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpointRow(Base):
    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[str] = mapped_column(String(64))
    time: Mapped[str] = mapped_column(String(40))
    signer: Mapped[str] = mapped_column(String(200))
    signature: Mapped[str] = mapped_column(Text)  # encoded as the audit layer defines


# --- directory snapshots (owner: sandi.authority.directory) ----------------------------


class DirectoryVersionRow(Base):
    __tablename__ = "directory_versions"

    version: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sha256: Mapped[str] = mapped_column(String(64))
    #: the signed envelope as published (``sandi serve`` answers from it); None before 0003,
    #: and for a v2 publication once a newer one is recorded (0010: rebuilt from the leaves)
    envelope: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, default=None)
    #: a v2 publication's signed header and its signature (deltas start from them); 0010
    header: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, default=None)
    signature: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, default=None)
    #: its side members (CRL, PDF root...) as canonical JSON: a delta carries those that changed
    members: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, default=None)


class DirectoryLeafRow(Base):
    """An agency's leaf of the published directory: its entry as canonical JSON and the
    Merkle leaf hash of it (owner: sandi.directory.leaves). ``version`` is the directory
    version that last changed the leaf."""

    __tablename__ = "directory_leaves"

    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    leaf: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    version: Mapped[int] = mapped_column(BigInteger, index=True)


class DirectoryKeyLeafRow(Base):
    """A leaf of the directory's key tree: one agency key (``{code, key_fingerprint}``)."""

    __tablename__ = "directory_key_leaves"

    key_fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class DirectoryArchiveLeafRow(Base):
    """A leaf of the archive of retired certificates (ADR 0019): one retired agency
    certificate, ``{code, certificate}``, keyed by serial."""

    __tablename__ = "directory_archive_leaves"

    serial: Mapped[str] = mapped_column(String(64), primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), index=True)
    leaf: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class DirectoryRemovedRow(Base):
    """An agency whose leaf left the directory, and the version that removed it (a delta
    from an earlier version lists it under ``remove``)."""

    __tablename__ = "directory_removed"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, index=True)


class DirectoryPendingRow(Base):
    """An agency changed since its leaf was last computed (written by the registry's
    flush hook, :mod:`sandi.registry.changes`, in the transaction of the change)."""

    __tablename__ = "directory_pending"

    agency_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)


# --- online enrolment (owner: sandi.authority.online) ---------------------------------


class EnrolmentTokenRow(Base):
    """A one-time enrolment token: only its SHA-256 is kept."""

    __tablename__ = "enrolment_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    auto_approve: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: what the token may enrol: "agency" (its keys), "official" (official_nip's personal
    #: keys) or "pdf-signing" (the agency's PDF signing key); 0011
    kind: Mapped[str] = mapped_column(String(20), default="agency", server_default="agency")
    official_nip: Mapped[str | None] = mapped_column(String(18), nullable=True, default=None)


class EnrolmentRequestRow(Base):
    """A request a workstation posted with a token; polled by the SHA-256 of its handle."""

    __tablename__ = "enrolment_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    handle_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("enrolment_tokens.id"), unique=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    request: Mapped[bytes] = mapped_column(LargeBinary)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))  # pending | certified
    auto_approve: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    response: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


# --- the time-stamp authority (owner: sandi.authority.tsa) -----------------------------


class TsaCertificateRow(Base):
    """A certificate of the authority's RFC 3161 time-stamp key (ECDSA P-256), issued by
    the root. Its private key lives with the server, never in the registry."""

    __tablename__ = "tsa_certificates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    serial: Mapped[str] = mapped_column(String(64), unique=True)  # lower-case hex
    key_fingerprint: Mapped[str] = mapped_column(String(64))  # sha256(uncompressed point) hex
    cert_pem: Mapped[str] = mapped_column(Text)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)
    not_after: Mapped[datetime] = mapped_column(UTCDateTime)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revocation_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
