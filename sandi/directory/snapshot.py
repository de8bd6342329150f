"""The directory snapshot: its model, canonical encoding, signature and checks.

File format (``directory.json``), one JSON object::

    {"format": "sandi-directory/v1",
     "body": "<base64 of the canonical JSON body>",
     "signature": "<base64 Ed25519 signature by the root key over
                    b'sandi-directory/v1\\n' + body bytes>"}

The body carries its own root certificate; a reader trusts it only if the SHA-256
of its raw Ed25519 public key equals the fingerprint the home was created with, and only then
verifies the signature with that certificate's key. Everything in the body is
public: certificates, revocations, the CRL, signed policy versions, and the registry
audit chain's checkpoint made with the publication (``audit_checkpoint``, ADR 0010), so
that every workstation holding the file witnesses the authority's signed audit past.

The PDF hierarchy (ADR 0014) is carried additively: ``pdf_root_certificate`` (the
province's ECDSA P-256 PDF root, trusted only because this signed body names it) and
``pdf_crl`` (its CRL) are present only once the authority created a PDF root, and
agencies' certificates may have the purpose ``pdf-signing`` (issued by the PDF root).
A certificate whose purpose this reader does not know is ignored, not refused, so a
later purpose does not stop older readers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from sandi.audit.checkpoint import Checkpoint
from sandi.authority.validity import CLOCK_SKEW
from sandi.errors import ConfigError, FormatError, NotFoundError, VerificationError
from sandi.formats.bounded import load_json
from sandi.i18n import Message, _
from sandi.timefmt import iso_time, show_time

if TYPE_CHECKING:
    from cryptography import x509

    from sandi.directory import v2

FORMAT = "sandi-directory/v1"
SIGNING_CONTEXT = b"sandi-directory/v1\n"
#: 30,000 agencies are ~87 MB in v1, ~65 MB in v2; only import (and the fallback without an
#: index) parses the whole file, at ~8-10x its size in memory (ADR 0015, decision 9)
MAX_DIRECTORY_BYTES = 128 * 1024 * 1024
#: a snapshot this close to its expiry makes every command that reads it warn
EXPIRY_WARNING = timedelta(days=2)

#: ``encryption-pq``: a hybrid post-quantum (age1pq1) key; a reader older than this
#: refuses a directory that has one (ADR 0011: upgrade workstations first)
#: ``pdf-signing``: an ECDSA P-256 key certified by the PDF root (ADR 0014)
Purpose = Literal["signing", "encryption", "encryption-pq", "pdf-signing"]
PURPOSES: tuple[Purpose, ...] = ("signing", "encryption", "encryption-pq", "pdf-signing")


def directory_purpose(purpose: str) -> Purpose:
    for known in PURPOSES:
        if purpose == known:
            return known
    raise FormatError(_("directory: unknown certificate purpose {purpose}").format(purpose=repr(purpose)))


class Ed25519Signer(Protocol):
    def sign(self, data: bytes) -> bytes: ...

    def public_key_bytes(self) -> bytes: ...


def normalise_fingerprint(text: str) -> str:
    """Accept ``AB:CD:...`` or ``abcd...`` (SHA-256, 64 hex digits); return lower hex."""
    cleaned = text.replace(":", "").replace(" ", "").strip().lower()
    if len(cleaned) != 64 or any(c not in "0123456789abcdef" for c in cleaned):
        raise ConfigError(
            _("a root fingerprint is 64 hexadecimal digits (SHA-256 of the root public key)"),
            hint=_("ask the authority for the fingerprint 'sandi init' printed, or 'sandi directory show'"),
        )
    return cleaned


def load_certificate(pem: str) -> x509.Certificate:
    """A certificate from the directory's PEM text; FormatError for anything else."""
    from cryptography import x509

    from sandi.keystore.keys import parsed_in_full

    try:
        return parsed_in_full(x509.load_pem_x509_certificate(pem.encode("ascii")))
    except (ValueError, x509.InvalidVersion):  # UnicodeEncodeError included
        raise FormatError(_("directory: a certificate is not valid PEM")) from None


def certificate_key(cert: x509.Certificate) -> Any:
    """The certificate's public key; FormatError when cryptography cannot read it."""
    from cryptography.exceptions import UnsupportedAlgorithm

    try:
        return cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        raise FormatError(_("directory: a certificate's public key cannot be read")) from None


def cert_fingerprint(pem: str) -> str:
    """The fingerprint sandi uses for a certificate's key: SHA-256 (hex) of the raw
    public key. The root fingerprint a home trusts is this value for the root."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    cert = load_certificate(pem)
    key = certificate_key(cert)
    if not isinstance(key, Ed25519PublicKey | X25519PublicKey):
        raise FormatError(_("directory: a certificate holds neither an Ed25519 nor an X25519 key"))
    return hashlib.sha256(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()


def _time(value: object, where: str) -> datetime:
    if not isinstance(value, str):
        raise FormatError(_("directory: {where} must be a time string").format(where=where))
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise FormatError(_("directory: {where} is not an ISO 8601 time: {value!r}").format(
            where=where,
            value=value,
        )) from None
    if parsed.tzinfo is None:
        raise FormatError(_("directory: {where} has no time zone").format(where=where))
    return parsed.astimezone(UTC)


def _fmt_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _str(obj: Mapping[str, Any], key: str, where: str, *, optional: bool = False) -> Any:
    value = obj.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise FormatError(_("directory: {where}.{key} must be a string").format(where=where, key=key))
    return value


@dataclass(frozen=True)
class RevocationEntry:
    reason: str
    revoked_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"reason": self.reason, "revoked_at": _fmt_time(self.revoked_at)}


@dataclass(frozen=True)
class CertEntry:
    """One agency certificate as published (public key material only)."""

    serial: str
    purpose: Purpose
    state: str  # current | retired
    key_fingerprint: str
    not_before: datetime
    not_after: datetime
    pem: str
    revocation: RevocationEntry | None = None

    @cached_property
    def certificate(self) -> x509.Certificate:
        return load_certificate(self.pem)

    def public_key_bytes(self) -> bytes:
        """The raw public key: 32 bytes, or 1216 for a hybrid (encryption-pq) certificate."""
        from sandi.keystore.keys import certificate_public_key_bytes

        certificate_key(self.certificate)  # FormatError when cryptography cannot read it
        try:
            return certificate_public_key_bytes(self.certificate)
        except FormatError as exc:
            raise VerificationError(_("certificate {serial}: {reason}").format(
                serial=self.serial, reason=exc.message)) from None

    def to_json(self) -> dict[str, Any]:
        return {
            "serial": self.serial,
            "purpose": self.purpose,
            "state": self.state,
            "key_fingerprint": self.key_fingerprint,
            "not_before": _fmt_time(self.not_before),
            "not_after": _fmt_time(self.not_after),
            "pem": self.pem,
            "revocation": None if self.revocation is None else self.revocation.to_json(),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], where: str) -> CertEntry:
        purpose = obj.get("purpose")
        if purpose not in PURPOSES:
            raise FormatError(_("directory: {where}.purpose must be signing, encryption, "
                                "encryption-pq or pdf-signing").format(where=where))
        rev = obj.get("revocation")
        revocation = None
        if rev is not None:
            if not isinstance(rev, dict):
                raise FormatError(_("directory: {where}.revocation must be an object").format(where=where))
            revocation = RevocationEntry(
                reason=_str(rev, "reason", where), revoked_at=_time(rev.get("revoked_at"), where)
            )
        return cls(
            serial=_str(obj, "serial", where),
            purpose=purpose,
            state=_str(obj, "state", where),
            key_fingerprint=_str(obj, "key_fingerprint", where),
            not_before=_time(obj.get("not_before"), f"{where}.not_before"),
            not_after=_time(obj.get("not_after"), f"{where}.not_after"),
            pem=_str(obj, "pem", where),
            revocation=revocation,
        )


def _unknown_purpose(obj: object) -> bool:
    """True for a certificate entry of a purpose a later sandi added: ignored here."""
    purpose = obj.get("purpose") if isinstance(obj, dict) else None
    return isinstance(purpose, str) and purpose not in PURPOSES


@dataclass(frozen=True)
class OfficialEntry:
    """A named official of an agency and their personal signing certificates (ADR 0017).

    Published under the agency (``officials``, left out when there are none), apart from
    the agency's own ``certificates``: a reader that predates officials ignores the field,
    so it never takes an official's key for the agency's."""

    nip: str
    name: str
    title: str
    status: str  # active | retired
    certificates: tuple[CertEntry, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"nip": self.nip, "name": self.name, "title": self.title, "status": self.status,
                "certificates": [c.to_json() for c in self.certificates]}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], where: str) -> OfficialEntry:
        if not isinstance(obj, dict):
            raise FormatError(_("directory: {where} must be an object").format(where=where))
        certs = obj.get("certificates", [])
        if not isinstance(certs, list):
            raise FormatError(_("directory: {where}.certificates must be a list").format(where=where))
        return cls(
            nip=_str(obj, "nip", where), name=_str(obj, "name", where), title=_str(obj, "title", where),
            status=_str(obj, "status", where),
            certificates=tuple(
                CertEntry.from_json(c, f"{where}.certificates[{i}]") for i, c in enumerate(certs)
                if not _unknown_purpose(c)
            ),
        )


@dataclass(frozen=True)
class TsaEntry:
    """A certificate of the authority's time-stamp key (RFC 3161; ECDSA P-256, issued by
    the root, extended key usage timeStamping). Tokens it signed are checked against it."""

    serial: str
    not_before: datetime
    not_after: datetime
    pem: str
    revocation: RevocationEntry | None = None

    @cached_property
    def certificate(self) -> x509.Certificate:
        return load_certificate(self.pem)

    def to_json(self) -> dict[str, Any]:
        return {
            "serial": self.serial,
            "not_before": _fmt_time(self.not_before),
            "not_after": _fmt_time(self.not_after),
            "pem": self.pem,
            "revocation": None if self.revocation is None else self.revocation.to_json(),
        }

    @classmethod
    def from_json(cls, obj: object, where: str) -> TsaEntry:
        if not isinstance(obj, dict):
            raise FormatError(_("directory: {where} must be an object").format(where=where))
        rev = obj.get("revocation")
        if rev is not None and not isinstance(rev, dict):
            raise FormatError(_("directory: {where}.revocation must be an object").format(where=where))
        return cls(
            serial=_str(obj, "serial", where),
            not_before=_time(obj.get("not_before"), f"{where}.not_before"),
            not_after=_time(obj.get("not_after"), f"{where}.not_after"),
            pem=_str(obj, "pem", where),
            revocation=None if rev is None else RevocationEntry(
                reason=_str(rev, "reason", where), revoked_at=_time(rev.get("revoked_at"), where)),
        )


@dataclass(frozen=True)
class AgencyEntry:
    code: str
    name: str
    kind: str
    status: str  # active | suspended
    parent: str | None = None
    certificates: tuple[CertEntry, ...] = ()
    officials: tuple[OfficialEntry, ...] = ()

    def current(self, purpose: Purpose) -> list[CertEntry]:
        return [c for c in self.certificates if c.purpose == purpose and c.state == "current"]

    def official(self, nip: str) -> OfficialEntry:
        for entry in self.officials:
            if entry.nip == nip:
                return entry
        raise NotFoundError(
            _("{code} has no official with NIP {nip} in the directory").format(code=self.code, nip=nip),
            hint=_("check the NIP, or import a newer directory"),
        )

    def to_json(self) -> dict[str, Any]:
        out = {
            "code": self.code,
            "name": self.name,
            "kind": self.kind,
            "status": self.status,
            "parent": self.parent,
            "certificates": [c.to_json() for c in self.certificates],
        }
        if self.officials:  # additive: a directory without officials is byte for byte as before
            out["officials"] = [o.to_json() for o in sorted(self.officials, key=lambda o: o.nip)]
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], where: str) -> AgencyEntry:
        certs = obj.get("certificates", [])
        if not isinstance(certs, list):
            raise FormatError(_("directory: {where}.certificates must be a list").format(where=where))
        officials = obj.get("officials", [])
        if not isinstance(officials, list):
            raise FormatError(_("directory: {where}.officials must be a list").format(where=where))
        return cls(
            code=_str(obj, "code", where),
            name=_str(obj, "name", where),
            kind=_str(obj, "kind", where),
            status=_str(obj, "status", where),
            parent=_str(obj, "parent", where, optional=True),
            certificates=tuple(
                CertEntry.from_json(c, f"{where}.certificates[{i}]") for i, c in enumerate(certs)
                if not _unknown_purpose(c)
            ),
            officials=tuple(
                OfficialEntry.from_json(o, f"{where}.officials[{i}]") for i, o in enumerate(officials)
            ),
        )


@dataclass(frozen=True)
class PolicyEntry:
    """A policy version exactly as applied, with the root's signature over its source."""

    policy_id: str
    version: int
    source: str
    signature: bytes
    effective_from: datetime
    expires_at: datetime | None
    #: when the authority applied it: a version applied later cannot have been
    #: the one a sender checked earlier, whatever its effective date says
    applied_at: datetime | None = None
    #: the compiled form made at apply (sandi.policy.compiled) and the root's signature
    #: over it; absent from versions applied before sandi had one. Additive: readers
    #: that do not know these keys ignore them, and the body's signature covers them.
    compiled: str | None = None
    compiled_signature: bytes | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.source.encode("utf-8")).hexdigest()

    def to_json(self) -> dict[str, Any]:
        return {
            "policy_id": self.policy_id,
            "version": self.version,
            "source": self.source,
            "signature": base64.b64encode(self.signature).decode("ascii"),
            "effective_from": _fmt_time(self.effective_from),
            "expires_at": None if self.expires_at is None else _fmt_time(self.expires_at),
            "applied_at": None if self.applied_at is None else _fmt_time(self.applied_at),
        } | ({} if self.compiled is None or self.compiled_signature is None else {
            "compiled": self.compiled,
            "compiled_signature": base64.b64encode(self.compiled_signature).decode("ascii"),
        })

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], where: str) -> PolicyEntry:
        version = obj.get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise FormatError(_("directory: {where}.version must be an integer").format(where=where))
        expires = obj.get("expires_at")
        applied = obj.get("applied_at")
        compiled = _str(obj, "compiled", where, optional=True)
        compiled_signature = _str(obj, "compiled_signature", where, optional=True)
        if (compiled is None) != (compiled_signature is None):
            raise FormatError(_("directory: {where} has a compiled policy without its signature, or "
                                "a signature without it").format(where=where))
        return cls(
            policy_id=_str(obj, "policy_id", where),
            version=version,
            source=_str(obj, "source", where),
            signature=_b64(_str(obj, "signature", where), f"{where}.signature"),
            effective_from=_time(obj.get("effective_from"), f"{where}.effective_from"),
            expires_at=None if expires is None else _time(expires, f"{where}.expires_at"),
            applied_at=None if applied is None else _time(applied, f"{where}.applied_at"),
            compiled=compiled,
            compiled_signature=None if compiled_signature is None
            else _b64(compiled_signature, f"{where}.compiled_signature"),
        )


class AgencySource(Protocol):
    """Where an installed snapshot's agencies come from when they are not all in memory
    (the index, ADR 0015): each answer checked against the signed header."""

    def agency(self, code: str) -> AgencyEntry | None: ...

    def key_owners(self, key_fingerprint: str) -> list[AgencyEntry]:
        """Every agency with a certificate for this key (complete: none left out)."""
        ...


@dataclass(frozen=True)
class DirectorySnapshot:
    version: int
    issued_at: datetime
    expires_at: datetime
    province: str
    root_cert_pem: str
    #: all agencies; from an index, a sequence that reads (and checks) each on demand:
    #: look-ups go through :meth:`agency` and :meth:`key_owners`, which read only what they need
    agencies: Sequence[AgencyEntry] = ()
    crl_pem: str | None = None
    policies: tuple[PolicyEntry, ...] = ()
    #: the registry audit chain's checkpoint as of this publication (None: none yet)
    audit_checkpoint: Checkpoint | None = None
    #: the PDF root (ECDSA P-256, ADR 0014) and its CRL; None until the authority made one
    pdf_root_cert_pem: str | None = None
    pdf_crl_pem: str | None = None
    #: the time-stamp authority's certificates, old and current (optional in the body:
    #: written only when there is one; readers before it ignore the key)
    timestamp_authorities: tuple[TsaEntry, ...] = ()
    #: the head of the archive of retired certificates the v2 header signs (member
    #: ``archive``, ADR 0019); None when nothing is archived
    archive_head: v2.TreeHead | None = None
    #: where this home keeps ``directory-archive.json`` (set for an installed directory)
    archive_file: Path | None = field(default=None, compare=False, repr=False)
    #: the archive once read and checked (sandi.directory.archive.installed_archive)
    archive_cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    #: SHA-256 of the signed body (v1) or header (v2); set when parsed or signed
    body_sha256: str = field(default="", compare=False)
    #: the format it was read from (a home that has seen v2 refuses v1: ADR 0015)
    format: str = field(default="", compare=False)
    #: set when read from the installed index: agencies are looked up there
    source: AgencySource | None = field(default=None, compare=False, repr=False)
    #: what the reader wants the person told (the index could not be used, say); shared
    #: with the source, which may add to it when it falls back during a command
    notices: list[str] = field(default_factory=list, compare=False, repr=False)

    # -- look-ups --------------------------------------------------------------------

    @cached_property
    def _by_code(self) -> dict[str, AgencyEntry]:
        return {a.code: a for a in self.agencies}

    @cached_property
    def _by_key(self) -> dict[str, list[AgencyEntry]]:
        index: dict[str, list[AgencyEntry]] = {}
        for agency in self.agencies:
            for fingerprint in {cert.key_fingerprint for cert in agency.certificates}:
                index.setdefault(fingerprint, []).append(agency)
        return index

    def agency_or_none(self, code: str) -> AgencyEntry | None:
        if self.source is not None:
            return self.source.agency(code)
        return self._by_code.get(code)

    def agency(self, code: str) -> AgencyEntry:
        found = self.agency_or_none(code)
        if found is None:
            raise NotFoundError(
                _("agency {code} is not in the directory (version {version})").format(
                    code=code,
                    version=self.version,
                ),
                hint=_("check the code ('sandi directory show'), or import a newer directory"),
            )
        return found

    def key_owners(self, key_fingerprint: str) -> list[tuple[AgencyEntry, CertEntry]]:
        """Every certificate (with its agency) for this key, whatever its purpose or state."""
        if self.source is not None:
            agencies = self.source.key_owners(key_fingerprint)
        else:
            agencies = self._by_key.get(key_fingerprint, [])
        return [(agency, cert) for agency in agencies for cert in agency.certificates
                if cert.key_fingerprint == key_fingerprint]

    def find_key(self, key_fingerprint: str) -> tuple[AgencyEntry, CertEntry] | None:
        owners = self.key_owners(key_fingerprint)
        return owners[-1] if owners else None

    @cached_property
    def _by_official_key(self) -> dict[str, list[tuple[AgencyEntry, OfficialEntry, CertEntry]]]:
        index: dict[str, list[tuple[AgencyEntry, OfficialEntry, CertEntry]]] = {}
        for agency in self.agencies:
            for official in agency.officials:
                for cert in official.certificates:
                    index.setdefault(cert.key_fingerprint, []).append((agency, official, cert))
        return index

    def find_official_key(self, key_fingerprint: str) -> list[tuple[AgencyEntry, OfficialEntry, CertEntry]]:
        """Every personal certificate of this key (a key has one owner; a root rollover
        gives it a second certificate)."""
        if self.source is not None:  # the v2 key tree covers officials' keys too
            return [(agency, official, cert) for agency in self.source.key_owners(key_fingerprint)
                    for official in agency.officials for cert in official.certificates
                    if cert.key_fingerprint == key_fingerprint]
        return list(self._by_official_key.get(key_fingerprint, ()))

    def certs_of(self, code: str, purpose: Purpose) -> Iterator[CertEntry]:
        return (c for c in self.agency(code).certificates if c.purpose == purpose)

    @cached_property
    def root_certificate(self) -> x509.Certificate:
        return load_certificate(self.root_cert_pem)

    @property
    def root_fingerprint(self) -> str:
        return cert_fingerprint(self.root_cert_pem)

    @cached_property
    def pdf_root_certificate(self) -> x509.Certificate | None:
        """The PDF root this directory vouches for (None if the authority has none)."""
        return None if self.pdf_root_cert_pem is None else load_certificate(self.pdf_root_cert_pem)

    def issuer_certificate(self, purpose: str) -> x509.Certificate | None:
        """The CA that issues certificates of ``purpose``: the PDF root for ``pdf-signing``,
        else the root (None: there is no PDF root)."""
        from sandi.authority.validity import PDF_PURPOSES

        return self.pdf_root_certificate if purpose in PDF_PURPOSES else self.root_certificate

    def policy(self, policy_id: str, version: int) -> PolicyEntry:
        for entry in self.policies:
            if entry.policy_id == policy_id and entry.version == version:
                return entry
        raise NotFoundError(_("policy {policy_id} version {version} is not in the directory").format(
            policy_id=policy_id,
            version=version,
        ))

    def policies_known_at(self, at: datetime) -> list[PolicyEntry]:
        """The versions the authority had applied by ``at``."""
        return [p for p in self.policies if p.applied_at is None or p.applied_at <= at]

    def policy_in_force(self, at: datetime) -> PolicyEntry | None:
        """The newest version in force at ``at`` among those applied by then (None if none)."""
        candidates = [
            p for p in self.policies_known_at(at)
            if p.effective_from <= at and (p.expires_at is None or at < p.expires_at)
        ]
        if not candidates:
            return None
        return max(candidates, key=lambda p: (p.effective_from, p.version))

    def expiry_warning(self, now: datetime) -> str | None:
        return expiry_warning(self.version, self.expires_at, now)

    # -- encoding --------------------------------------------------------------------

    def body_json(self) -> dict[str, Any]:
        body = {
            "format": FORMAT,
            "version": self.version,
            "issued_at": _fmt_time(self.issued_at),
            "expires_at": _fmt_time(self.expires_at),
            "province": self.province,
            "root_certificate": self.root_cert_pem,
            "agencies": [a.to_json() for a in sorted(self.agencies, key=lambda a: a.code)],
            "crl": self.crl_pem,
            "policies": [p.to_json() for p in sorted(self.policies, key=lambda p: (p.policy_id, p.version))],
            "audit_checkpoint": None if self.audit_checkpoint is None else self.audit_checkpoint.to_dict(),
            # additive (ADR 0014): absent without a PDF root, so such bodies are as before
            **({} if self.pdf_root_cert_pem is None else {"pdf_root_certificate": self.pdf_root_cert_pem}),
            **({} if self.pdf_crl_pem is None else {"pdf_crl": self.pdf_crl_pem}),
        }
        if self.timestamp_authorities:
            body["timestamp_authorities"] = [t.to_json() for t in self.timestamp_authorities]
        return body

    def body_bytes(self) -> bytes:
        return json.dumps(self.body_json(), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_body(cls, body: bytes) -> DirectorySnapshot:
        obj = load_json(body, max_bytes=MAX_DIRECTORY_BYTES, error=lambda reason: FormatError(
            Message("directory: the body is not valid ({reason})", reason=reason)))
        if not isinstance(obj, dict) or obj.get("format") != FORMAT:
            raise FormatError(_("directory: not a {format} body").format(format=FORMAT))
        version = obj.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise FormatError(_("directory: version must be a positive integer"))
        agencies = obj.get("agencies")
        policies = obj.get("policies")
        if not isinstance(agencies, list) or not isinstance(policies, list):
            raise FormatError(_("directory: agencies and policies must be lists"))
        checkpoint = obj.get("audit_checkpoint")
        if checkpoint is not None:
            from sandi.errors import AuditError

            try:
                checkpoint = Checkpoint.from_dict(checkpoint)
            except AuditError as exc:
                raise FormatError(_("directory: {reason}").format(reason=exc.message)) from None
        return cls(
            version=version,
            issued_at=_time(obj.get("issued_at"), "issued_at"),
            expires_at=_time(obj.get("expires_at"), "expires_at"),
            province=_str(obj, "province", "body"),
            root_cert_pem=_str(obj, "root_certificate", "body"),
            agencies=tuple(AgencyEntry.from_json(a, f"agencies[{i}]") for i, a in enumerate(agencies)),
            crl_pem=_str(obj, "crl", "body", optional=True),
            policies=tuple(PolicyEntry.from_json(p, f"policies[{i}]") for i, p in enumerate(policies)),
            audit_checkpoint=checkpoint,
            pdf_root_cert_pem=_pdf_root(obj),
            pdf_crl_pem=_str(obj, "pdf_crl", "body", optional=True),
            timestamp_authorities=_tsa_entries(obj.get("timestamp_authorities", [])),
            body_sha256=hashlib.sha256(body).hexdigest(),
        )


def _pdf_root(obj: Mapping[str, Any]) -> str | None:
    """The body's PDF root certificate, checked to be a P-256 certificate (or None)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = _str(obj, "pdf_root_certificate", "body", optional=True)
    if pem is None:
        return None
    key = certificate_key(load_certificate(pem))
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise FormatError(_("directory: the PDF root certificate does not hold a P-256 key"))
    return str(pem)


def _b64(text: str, where: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise FormatError(_("directory: {where} is not base64").format(where=where)) from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise FormatError(_("directory: {where} is not canonical base64").format(where=where))
    return raw


def sign_snapshot_v1(snapshot: DirectorySnapshot, signer: Ed25519Signer) -> bytes:
    """The ``sandi-directory/v1`` envelope of ``snapshot`` (what releases before ADR 0015
    published; kept to test that such files are still read)."""
    body = snapshot.body_bytes()
    signature = signer.sign(SIGNING_CONTEXT + body)
    envelope = {
        "format": FORMAT,
        "body": base64.b64encode(body).decode("ascii"),
        "signature": base64.b64encode(signature).decode("ascii"),
    }
    return (json.dumps(envelope, indent=1) + "\n").encode("ascii")


def sign_snapshot(snapshot: DirectorySnapshot, signer: Ed25519Signer) -> bytes:
    """The ``sandi-directory/v2`` envelope of ``snapshot``, its header signed by the root
    ``signer`` (docs/format.md §4.A)."""
    from sandi.directory import v2

    agencies, policies, members = _v2_parts(snapshot)
    header = v2.header_bytes(
        version=snapshot.version, issued_at=snapshot.issued_at, expires_at=snapshot.expires_at,
        province=snapshot.province, root_certificate=snapshot.root_cert_pem, agencies=agencies,
        policies=policies, members=members,
        audit_checkpoint=None if snapshot.audit_checkpoint is None else snapshot.audit_checkpoint.to_dict(),
    )
    signature = signer.sign(v2.SIGNING_CONTEXT + header)
    return v2.envelope_bytes(header, signature, agencies, policies, members)


def _tsa_entries(value: object) -> tuple[TsaEntry, ...]:
    """The optional ``timestamp_authorities`` (v1 body key, v2 side member)."""
    if not isinstance(value, list):
        raise FormatError(_("directory: timestamp_authorities must be a list"))
    return tuple(TsaEntry.from_json(t, f"timestamp_authorities[{i}]") for i, t in enumerate(value))


def _v2_parts(snapshot: DirectorySnapshot) -> tuple[list[dict[str, Any]], list[dict[str, Any]],
                                                  dict[str, Any]]:
    """The agency entries (sorted by code), policy entries and side members of ``snapshot``."""
    body = snapshot.body_json()
    members: dict[str, Any] = {}
    if snapshot.crl_pem is not None:
        members["crl"] = snapshot.crl_pem
    if snapshot.pdf_root_cert_pem is not None:
        members["pdf_root_certificate"] = snapshot.pdf_root_cert_pem
    if snapshot.pdf_crl_pem is not None:
        members["pdf_crl"] = snapshot.pdf_crl_pem
    if snapshot.timestamp_authorities:
        members["timestamp_authorities"] = body["timestamp_authorities"]
    if snapshot.archive_head is not None:
        members["archive"] = snapshot.archive_head.to_json()
    return body["agencies"], body["policies"], members


def parse_envelope(data: bytes, trusted_root_fingerprint: str) -> DirectorySnapshot:
    """Check the envelope (v1 or v2) against the trusted root and return the snapshot.

    Raises :class:`FormatError` for a malformed file and :class:`VerificationError`
    when the root does not match or the signature does not verify, or (v2) a leaf,
    policy or member does not match the signed header. Freshness (expiry, rollback) is
    the caller's check: see :func:`check_fresh`.
    """
    envelope = _load_envelope(data)
    if envelope.get("format") == V2_FORMAT:
        return parse_v2(envelope, trusted_root_fingerprint)[0]
    return _parse_v1(envelope, trusted_root_fingerprint)


V2_FORMAT = "sandi-directory/v2"


def _load_envelope(data: bytes) -> dict[str, Any]:
    if len(data) > MAX_DIRECTORY_BYTES:
        raise FormatError(_("directory: larger than {max_directory_bytes} bytes").format(
            max_directory_bytes=MAX_DIRECTORY_BYTES,
        ))
    envelope = load_json(data, max_bytes=MAX_DIRECTORY_BYTES, error=lambda reason: FormatError(
        Message("directory: the file is not valid ({reason})", reason=reason)))
    if not isinstance(envelope, dict) or envelope.get("format") not in (FORMAT, V2_FORMAT):
        raise FormatError(_("directory: not a {format} file").format(format=V2_FORMAT))
    return envelope


def parse_v2(envelope: dict[str, Any], trusted_root_fingerprint: str) -> tuple[
        DirectorySnapshot, v2.Envelope, v2.CheckedBody]:
    """A loaded v2 envelope verified in full: header signature by the trusted root, then
    every agency, key, policy and member against the header."""
    from sandi.directory import v2

    decoded = v2.decode_envelope(envelope)
    header = verify_header(decoded.header, decoded.signature, trusted_root_fingerprint)
    checked = v2.check_body(header, decoded)
    return snapshot_from_v2(header, decoded.agencies, decoded.policies, decoded.members), decoded, checked


def parse_v2_file(data: bytes, trusted_root_fingerprint: str) -> tuple[
        DirectorySnapshot, v2.Envelope | None, v2.CheckedBody | None]:
    """Like :func:`parse_envelope`, also returning a v2 file's verified parts (None, None
    for a v1 file): what an import needs to build the index without hashing twice."""
    envelope = _load_envelope(data)
    if envelope.get("format") == V2_FORMAT:
        return parse_v2(envelope, trusted_root_fingerprint)
    return _parse_v1(envelope, trusted_root_fingerprint), None, None


def snapshot_from_v2(header: v2.Header, agencies: Sequence[Mapping[str, Any]],
                     policies: Sequence[Mapping[str, Any]], members: Mapping[str, Any]) -> DirectorySnapshot:
    """The model of a verified v2 directory."""
    checkpoint = None
    if header.audit_checkpoint is not None:
        from sandi.errors import AuditError

        try:
            checkpoint = Checkpoint.from_dict(dict(header.audit_checkpoint))
        except AuditError as exc:
            raise FormatError(_("directory: {reason}").format(reason=exc.message)) from None
    crl = _str(members, "crl", "members", optional=True)
    return DirectorySnapshot(
        version=header.version,
        issued_at=header.issued_at,
        expires_at=header.expires_at,
        province=header.province,
        root_cert_pem=header.root_certificate,
        agencies=tuple(AgencyEntry.from_json(a, f"agencies[{i}]") for i, a in enumerate(agencies)),
        crl_pem=crl,
        policies=tuple(PolicyEntry.from_json(p, f"policies[{i}]") for i, p in enumerate(policies)),
        audit_checkpoint=checkpoint,
        pdf_root_cert_pem=_pdf_root(members),
        pdf_crl_pem=_str(members, "pdf_crl", "members", optional=True),
        timestamp_authorities=_tsa_entries(members.get("timestamp_authorities", [])),
        archive_head=_archive_head(members.get("archive")),
        body_sha256=header.sha256,
        format=V2_FORMAT,
    )


def _archive_head(value: object) -> v2.TreeHead | None:
    """The side member ``archive`` (ADR 0019): the head of the archive of retired
    certificates, ``{"count", "root"}``; None when the directory archives nothing."""
    from sandi.directory import v2

    if value is None:
        return None
    if (not isinstance(value, dict) or set(value) != {"count", "root"} or not isinstance(value["count"], int)
            or isinstance(value["count"], bool) or value["count"] < 0 or not isinstance(value["root"], str)
            or len(value["root"]) != 64 or value["root"].strip("0123456789abcdef")):
        raise FormatError(_("directory: the archive member is not valid"))
    return v2.TreeHead(value["count"], bytes.fromhex(value["root"]))


def verify_header(header_bytes: bytes, signature: bytes, trusted_root_fingerprint: str) -> v2.Header:
    """A v2 header signed by the trusted root (constant cost: what every command checks)."""
    from sandi.directory import v2

    header = v2.parse_header(header_bytes)
    _verify_root_signature(header.root_certificate, trusted_root_fingerprint, signature,
                           v2.SIGNING_CONTEXT + header_bytes)
    return header


def _verify_root_signature(root_pem: str, trusted_root_fingerprint: str, signature: bytes,
                           message: bytes) -> None:
    import hmac

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    trusted = normalise_fingerprint(trusted_root_fingerprint)
    if not hmac.compare_digest(cert_fingerprint(root_pem), trusted):
        raise VerificationError(
            _("the directory was not published by this home's authority (root fingerprint differs)"),
            hint=_("import a directory from your own authority"),
        )
    root_key = certificate_key(load_certificate(root_pem))
    if not isinstance(root_key, Ed25519PublicKey):
        raise VerificationError(_("the directory's root certificate does not hold an Ed25519 key"))
    try:
        root_key.verify(signature, message)
    except InvalidSignature:
        raise VerificationError(
            _("the directory's signature does not verify"),
            hint=_("the file was altered or not signed by the authority; get a fresh copy"),
        ) from None


def _parse_v1(envelope: dict[str, Any], trusted_root_fingerprint: str) -> DirectorySnapshot:
    if envelope.get("format") != FORMAT or set(envelope) != {
        "format", "body", "signature"
    }:
        raise FormatError(_("directory: not a {format} file").format(format=FORMAT))
    body = _b64(_str(envelope, "body", "envelope"), "body")
    signature = _b64(_str(envelope, "signature", "envelope"), "signature")
    snapshot = DirectorySnapshot.from_body(body)
    _verify_root_signature(snapshot.root_cert_pem, trusted_root_fingerprint, signature,
                           SIGNING_CONTEXT + body)
    return replace(snapshot, format=FORMAT)


def expiry_warning(version: int, expires_at: datetime, now: datetime) -> str | None:
    """The warning every command gives within EXPIRY_WARNING of a directory's expiry."""
    left = expires_at - now
    if left > EXPIRY_WARNING:
        return None
    if left <= timedelta(0):
        return Message("the directory (version {version}) expired ({time}); import a newer one from "
                       "the authority", version=version, time=iso_time(expires_at))
    return Message("the directory (version {version}) expires in {hours} h ({time}); import a newer "
                   "one from the authority", version=version, hours=int(left.total_seconds() // 3600),
                   time=iso_time(expires_at))


def check_fresh(snapshot: DirectorySnapshot, now: datetime, installed_version: int | None) -> None:
    """Refuse an expired snapshot (freeze) or one older than the installed one (rollback)."""
    check_fresh_header(snapshot.version, snapshot.issued_at, snapshot.expires_at, now)
    if installed_version is not None and snapshot.version < installed_version:
        raise VerificationError(
            _("the directory version {version} is older than the installed version "
              "{installed_version} (rollback refused)").format(
                version=snapshot.version,
                installed_version=installed_version,
            ),
            hint=_("import the newest directory the authority published"),
        )


def check_fresh_header(version: int, issued_at: datetime, expires_at: datetime, now: datetime) -> None:
    """Refuse an expired directory (freeze) or one issued in the future."""
    if now >= expires_at:
        raise VerificationError(
            _("the directory (version {version}) expired at {fmt_time}").format(
                version=version,
                fmt_time=show_time(expires_at),
            ),
            hint=_("ask the authority for a fresh one ('sandi directory publish') and import it"),
        )
    if issued_at > now + CLOCK_SKEW:
        raise VerificationError(_("the directory was issued in the future; check this machine's clock"))


def read_envelope_file(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_DIRECTORY_BYTES:
            raise FormatError(_("{path}: larger than {max_directory_bytes} bytes").format(
                path=path,
                max_directory_bytes=MAX_DIRECTORY_BYTES,
            ))
        return path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(
            _("no directory at {path}").format(path=path),
            hint=_("import one from the authority: 'sandi directory import FILE'"),
        ) from None
