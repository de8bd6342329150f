"""Officials (pejabat) of an agency and their personal signing certificates (ADR 0017).

An official is registered under an agency by NIP (Nomor Induk Pegawai, 18 digits), nama
and jabatan. The official's workstation makes a signing key and a request signed by it
(the same proof of possession as an agency's enrolment); the operator certifies it after
comparing the request fingerprint read aloud. The certificate is a row of
``certificates`` whose ``official_id`` names the official.

Request (official's workstation -> authority), UTF-8 JSON::

    {"format": "sandi-official-request/v1",
     "request": {"agency": "SETDA", "nip": "196801011990031001",
                 "created": "2026-01-01T00:00:00Z", "root_fingerprint": "<hex>",
                 "signing_public_key": "<base64 raw Ed25519>", "nonce": "<32 hex>"},
     "signature": "<base64 Ed25519 signature by that key over
                   b'sandi-official-request/v1\\n' + canonical JSON of 'request'>"}

``request`` may also carry ``"pdf_signing_public_key"`` (base64 of the 65-byte
uncompressed P-256 point), and the envelope then carries ``"pdf_signature"`` (base64 DER
ECDSA-SHA256 by that key over the same bytes): the official's PDF key, which the PDF root
certifies (``pdf-signing``) when the authority has one (ADR 0014, 0017). The Ed25519 key is
what detached signatures and, without a PDF root, PDFs are signed with.

Invariants:

* a NIP is 18 ASCII digits; nama and jabatan are 1..64 printable characters (the X.520
  bounds of CN and title); (agency, NIP) is unique;
* a personal certificate never outlives its agency's: its ``not_after`` is clamped to
  the agency's current signing certificate's, and an agency that is not active or has no
  valid signing certificate gets no personal certificates for its officials;
* it never outranks it: an end-entity signing certificate (``CA=false``), issued by the
  same root, with the official in the subject (:func:`sandi.authority.certs.official_subject`);
* a new certificate for an official retires the official's current one (it still
  verifies what it signed); retiring an official revokes every unrevoked certificate of
  theirs (``affiliationChanged``: earlier signatures stay valid);
* revoking the agency, or its current signing certificate, revokes its officials'
  certificates (:mod:`sandi.authority.revocation`);
* every change and its audit event (``official.add``, ``official.retire``,
  ``official.certify``, ``key.revoke``) commit in one transaction.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sandi.authority.bundle import iso_now
from sandi.authority.certs import (
    UB_NAME,
    issue_certificate,
    official_subject,
    publication_urls,
    whole_seconds,
)
from sandi.authority.enrolment import check_request_origin, normalise_fingerprint, request_fingerprint
from sandi.authority.events import record
from sandi.authority.identifiers import NIP_RE, validate_nip
from sandi.authority.issuance import Issuer, KeyWrites, current_row, require_active, retire
from sandi.authority.lookup import find_agency, validate_code
from sandi.authority.pdfroot import PDF_SIGNING, PdfIssuer
from sandi.authority.profiles import KeyProfile, load_profile
from sandi.authority.records import CertificateInfo, OfficialInfo, cert_info, official_info
from sandi.authority.revocation import Revoked, check_reason, revoke_rows
from sandi.errors import (
    AlreadyExistsError,
    CredentialError,
    FormatError,
    NotFoundError,
    SandiError,
    UsageError,
    VerificationError,
)
from sandi.formats.bounded import load_json
from sandi.i18n import N_, Message, _
from sandi.keystore.keys import fingerprint, verify_ed25519, verify_p256
from sandi.timefmt import as_utc

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from sandi.home import Home
    from sandi.keystore.base import KeyStore
    from sandi.registry import Registry
    from sandi.registry.models import AgencyRow, CertificateRow, OfficialRow

#: an official's states, marked for translation
STATUS_WORDS = (N_("active"), N_("retired"))
REQUEST_FORMAT = "sandi-official-request/v1"
SIGNATURE_CONTEXT = b"sandi-official-request/v1\n"
MAX_REQUEST_BYTES = 8 * 1024
_REQUEST_FIELDS = {"agency", "nip", "created", "root_fingerprint", "signing_public_key", "nonce"}
PDF_KEY_FIELD = "pdf_signing_public_key"
P256_PUBLIC_KEY_SIZE = 65


class OfficialStateError(SandiError):
    """The official is not in the state the operation needs (retired already...)."""


def _validate_text(value: str, what: str) -> str:
    """``what``: an N_-marked field name."""
    value = " ".join(value.split()) if isinstance(value, str) else ""
    if not value or len(value) > UB_NAME or any(ord(c) < 32 for c in value):
        raise UsageError(_("{what} is 1..{limit} printable characters").format(what=_(what), limit=UB_NAME))
    return value


def find_official(session: Session, agency: AgencyRow, nip: str, *, for_update: bool = False) -> OfficialRow:
    from sqlalchemy import select

    from sandi.registry.models import OfficialRow

    stmt = select(OfficialRow).where(OfficialRow.agency_id == agency.id, OfficialRow.nip == nip)
    if for_update:
        stmt = stmt.with_for_update()
    row = session.execute(stmt).scalar_one_or_none()
    if row is None:
        raise NotFoundError(
            _("{code} has no official with NIP {nip}").format(code=agency.code, nip=nip),
            hint=_("see 'sandi official list {code}'").format(code=agency.code),
        )
    return row


def _certificates_of(session: Session, official: OfficialRow) -> list[CertificateRow]:
    from sqlalchemy import select

    from sandi.registry.models import CertificateRow

    return list(
        session.scalars(
            select(CertificateRow)
            .where(CertificateRow.official_id == official.id)
            .order_by(CertificateRow.issued_at, CertificateRow.serial)
        ).all()
    )


def add_official(
    registry: Registry, code: str, nip: str, name: str, title: str, *, now: datetime | None = None
) -> OfficialInfo:
    """Register an official of the agency ``code``."""
    from sqlalchemy import select

    from sandi.registry.models import OfficialRow

    code = validate_code(code)
    nip = validate_nip(nip)
    name = _validate_text(name, N_("a name (nama)"))
    title = _validate_text(title, N_("a position (jabatan)"))
    now = now or datetime.now(UTC)
    with registry.transaction() as session:
        agency = find_agency(session, code, for_update=True)
        taken = session.execute(
            select(OfficialRow.id).where(OfficialRow.agency_id == agency.id, OfficialRow.nip == nip)
        ).first()
        if taken is not None:
            raise AlreadyExistsError(
                _("{code} has an official with NIP {nip} already").format(code=code, nip=nip),
                hint=_("see 'sandi official list {code}'").format(code=code),
            )
        row = OfficialRow(
            agency_id=agency.id,
            nip=nip,
            name=name,
            title=title,
            status="active",
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        record(session, "official.add", f"{code}/{nip}", {"name": name, "title": title})
        return official_info(row, code, [])


def list_officials(registry: Registry, code: str | None = None) -> list[OfficialInfo]:
    """The officials (of one agency if ``code``), by agency and NIP, with their certificates."""
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from sandi.registry.models import AgencyRow, CertificateRow, OfficialRow

    with registry.reading() as session:
        stmt = select(OfficialRow, AgencyRow.code).join(AgencyRow, AgencyRow.id == OfficialRow.agency_id)
        if code is not None:
            stmt = stmt.where(OfficialRow.agency_id == find_agency(session, code).id)
        rows = session.execute(stmt.order_by(AgencyRow.code, OfficialRow.nip)).all()
        certs: dict[int, list[CertificateRow]] = {}
        for c in session.scalars(
            select(CertificateRow)
            .where(CertificateRow.official_id.is_not(None))
            .options(selectinload(CertificateRow.revocation), selectinload(CertificateRow.official))
            .order_by(CertificateRow.issued_at, CertificateRow.serial)
        ).all():
            assert c.official_id is not None
            certs.setdefault(c.official_id, []).append(c)
        return [official_info(row, agency_code, certs.get(row.id, [])) for row, agency_code in rows]


def get_official(registry: Registry, code: str, nip: str) -> OfficialInfo:
    nip = validate_nip(nip)
    for info in list_officials(registry, code):
        if info.nip == nip:
            return info
    raise NotFoundError(
        _("{code} has no official with NIP {nip}").format(code=code, nip=nip),
        hint=_("see 'sandi official list {code}'").format(code=code),
    )


def retire_official(registry: Registry, code: str, nip: str, *, now: datetime | None = None) -> list[str]:
    """Mark the official retired (left the post) and revoke their certificates
    (``affiliationChanged``: what they signed before stays valid). Returns the serials."""
    from sandi.audit.events import current_operator

    nip = validate_nip(nip)
    now = whole_seconds(now or datetime.now(UTC))
    with registry.transaction() as session:
        agency = find_agency(session, code, for_update=True)
        row = find_official(session, agency, nip, for_update=True)
        if row.status == "retired":
            raise OfficialStateError(
                _("official {nip} of {code} is retired already").format(nip=nip, code=code)
            )
        row.status = "retired"
        row.updated_at = now
        done = revoke_rows(
            session, _certificates_of(session, row), "affiliationChanged", now, current_operator()
        )
        record(
            session,
            "official.retire",
            f"{code}/{nip}",
            {"revoked": [d.serial for d in done], "reason": "affiliationChanged"},
        )
        return [d.serial for d in done]


def revoke_official(
    registry: Registry, code: str, nip: str, reason: str, *, now: datetime | None = None
) -> list[Revoked]:
    """Revoke every unrevoked certificate of the official (``keyCompromise`` voids what
    their key ever signed; any other reason keeps earlier signatures valid)."""
    from sandi.audit.events import current_operator

    check_reason(reason)
    nip = validate_nip(nip)
    now = whole_seconds(now or datetime.now(UTC))
    with registry.transaction() as session:
        agency = find_agency(session, code, for_update=True)
        row = find_official(session, agency, nip, for_update=True)
        done = revoke_rows(session, _certificates_of(session, row), reason, now, current_operator())
        if not done:
            raise AlreadyExistsError(
                _("official {nip} of {code} has no unrevoked certificate").format(nip=nip, code=code),
                hint=_("a revocation is final; nothing was changed"),
            )
        record(
            session, "key.revoke", f"{code}/{nip}", {"reason": reason, "serials": [d.serial for d in done]}
        )
        return done


# -- enrolment of an official's key ---------------------------------------------------


def _canonical(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def create_official_request(
    home: Home, keystore: KeyStore, code: str, nip: str, *, now: datetime | None = None
) -> tuple[bytes, list[str]]:
    """New keys for the official ``nip`` of ``code`` in this home's key store (an Ed25519
    signing key and a P-256 PDF key; owner: the NIP, so they never mix with the agency's
    keys), and the request they sign. Returns (request bytes, key references)."""
    from sandi.audit.events import AuditEvent, current_operator
    from sandi.audit.journal import Journal

    validate_code(code)
    nip = validate_nip(nip)
    cfg = home.load_config()
    if cfg.agency is not None and cfg.agency != code:
        raise UsageError(_("this home belongs to {agency}, not {code}").format(agency=cfg.agency, code=code))
    if not cfg.root_fingerprint:
        raise UsageError(
            _("this home does not know its authority's root fingerprint"),
            hint=_("create it with 'sandi init --agency CODE --root-fingerprint FP'"),
        )
    now = whole_seconds(now or datetime.now(UTC))
    writes = KeyWrites(keystore)
    try:
        ref, signing = writes.new_signing(nip, on_token=keystore.hardware)
        # The PDF key too (P-256: what PDF viewers validate); both keys are owned by the NIP.
        pdf_ref, pdf_key = writes.new_p256(nip)
        request = {
            "agency": code,
            "nip": nip,
            "created": iso_now(now),
            "root_fingerprint": cfg.root_fingerprint,
            "signing_public_key": base64.b64encode(signing.public_key_bytes()).decode(),
            PDF_KEY_FIELD: base64.b64encode(pdf_key.public_key_bytes()).decode(),
            "nonce": secrets.token_hex(16),
        }
        payload = SIGNATURE_CONTEXT + _canonical(request)
        signature = signing.sign(payload)
        pdf_signature = pdf_key.sign(payload)
        envelope = {
            "format": REQUEST_FORMAT,
            "request": request,
            "signature": base64.b64encode(signature).decode(),
            "pdf_signature": base64.b64encode(pdf_signature).decode(),
        }
        data = json.dumps(envelope, indent=1).encode() + b"\n"
        # New keys are a security event: journaled here, or the keys are removed again.
        Journal(home.journal_path).append(
            AuditEvent(
                actor=cfg.agency or current_operator(),
                action="key.request",
                subject=f"{code}/{nip}",
                details={"refs": [ref, pdf_ref], "request_sha256": hashlib.sha256(data).hexdigest()},
            )
        )
    except BaseException:
        writes.undo()
        raise
    return data, [ref, pdf_ref]


@dataclass(frozen=True)
class OfficialRequest:
    agency: str
    nip: str
    created: datetime
    root_fingerprint: str
    signing_public_key: bytes
    raw: bytes
    #: the official's P-256 PDF key (65-byte uncompressed point), its possession proven
    pdf_public_key: bytes | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()

    @property
    def fingerprint(self) -> str:
        return request_fingerprint(self.raw)


def _not_a_request(reason: str) -> FormatError:
    return FormatError(Message("not a sandi official's key request ({reason})", reason=reason))


def parse_official_request(data: bytes) -> OfficialRequest:
    """Parse strictly and check the signature (proof of possession of the key)."""
    if len(data) > MAX_REQUEST_BYTES:
        raise FormatError(
            _("an official's key request is at most {limit} bytes").format(limit=MAX_REQUEST_BYTES)
        )
    try:
        obj = load_json(data, max_bytes=MAX_REQUEST_BYTES, error=_not_a_request)
        if not isinstance(obj, dict) or set(obj) - {"pdf_signature"} != {"format", "request", "signature"}:
            raise ValueError
        if obj["format"] != REQUEST_FORMAT:
            raise ValueError
        req = obj["request"]
        if not isinstance(req, dict) or set(req) - {PDF_KEY_FIELD} != _REQUEST_FIELDS:
            raise ValueError
        if (PDF_KEY_FIELD in req) != ("pdf_signature" in obj):
            raise ValueError
        if not all(isinstance(v, str) for v in req.values()) or not isinstance(obj["signature"], str):
            raise ValueError
        signature = base64.b64decode(obj["signature"], validate=True)
        public = base64.b64decode(req["signing_public_key"], validate=True)
        if len(public) != 32 or len(signature) != 64:
            raise ValueError
        pdf_public = pdf_signature = None
        if PDF_KEY_FIELD in req:
            if not isinstance(obj["pdf_signature"], str):
                raise ValueError
            pdf_public = base64.b64decode(req[PDF_KEY_FIELD], validate=True)
            pdf_signature = base64.b64decode(obj["pdf_signature"], validate=True)
            if len(pdf_public) != P256_PUBLIC_KEY_SIZE or not 8 <= len(pdf_signature) <= 72:
                raise ValueError
        created = datetime.strptime(req["created"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        if not re.fullmatch(r"[0-9a-f]{64}", req["root_fingerprint"]) or not NIP_RE.fullmatch(req["nip"]):
            raise ValueError
        validate_code(req["agency"])
    except (ValueError, KeyError, TypeError, binascii.Error, UsageError, RecursionError):
        raise FormatError(_("not a sandi official's key request (or a damaged one)")) from None
    try:
        verify_ed25519(public, signature, SIGNATURE_CONTEXT + _canonical(req))
        if pdf_public is not None and pdf_signature is not None:
            verify_p256(pdf_public, pdf_signature, SIGNATURE_CONTEXT + _canonical(req))
    except (VerificationError, FormatError):
        raise VerificationError(
            _("the request's signature is not valid"),
            hint=_("the request was altered after it was made; ask the official for a fresh one"),
        ) from None
    return OfficialRequest(
        req["agency"], req["nip"], created, req["root_fingerprint"], public, bytes(data), pdf_public
    )


@dataclass(frozen=True)
class OfficialPlan:
    """What certifying an official's request will do; nothing has changed yet."""

    request: OfficialRequest
    agency_name: str
    name: str
    title: str
    key_fingerprint: str
    not_after: datetime
    #: True when the profile's lifetime was cut to the agency's signing certificate's
    clamped: bool
    #: serials of the official's current certificates this one retires
    retires: list[str]
    #: the P-256 PDF key's fingerprint when the PDF root certifies it too (None: no PDF
    #: key in the request, or no PDF root at this authority)
    pdf_key_fingerprint: str | None = None


def _plan(
    session: Session,
    issuer: Issuer,
    req: OfficialRequest,
    profile: KeyProfile,
    now: datetime,
    pdf_issuer: PdfIssuer | None = None,
) -> tuple[OfficialPlan, AgencyRow, OfficialRow]:
    from sqlalchemy import select

    from sandi.authority.issuance import current_certificates
    from sandi.registry.models import CertificateRow

    check_request_origin(req.root_fingerprint, req.created, authority_fingerprint=issuer.key.fingerprint,
                         now=now, ask_again=_("ask the official for a fresh request"))
    agency = find_agency(session, req.agency)
    require_active(agency)
    official = find_official(session, agency, req.nip)
    if official.status != "active":
        raise CredentialError(
            _("official {nip} of {code} is retired: no certificates are issued to them").format(
                nip=req.nip, code=req.agency
            )
        )
    key_fp = fingerprint(req.signing_public_key)
    pdf_fp = None
    if pdf_issuer is not None and req.pdf_public_key is not None:
        pdf_fp = fingerprint(req.pdf_public_key)
    fps = [key_fp] + ([pdf_fp] if pdf_fp else [])
    if session.execute(select(CertificateRow.id).where(CertificateRow.key_fingerprint.in_(fps))).first():
        raise AlreadyExistsError(
            _("this key was certified before"),
            hint=_("a request is certified once; the official makes a new one for a new key"),
        )
    agency_signing = [
        c
        for c in current_certificates(session, agency)
        if c.purpose == "signing"
        and c.revocation is None
        and as_utc(c.not_before) <= now < as_utc(c.not_after)
    ]
    if not agency_signing:
        raise CredentialError(
            _(
                "agency {code} has no valid signing certificate: an official's certificate never outlives "
                "its agency's"
            ).format(code=req.agency),
            hint=_("issue or renew the agency's keys first ('sandi keys issue {code}')").format(
                code=req.agency
            ),
        )
    limit = max(as_utc(c.not_after) for c in agency_signing)
    wanted = now + timedelta(days=profile.validity_days("signing"))
    issuing = {"signing"} | ({PDF_SIGNING} if pdf_fp else set())
    retires = [
        c.serial for c in _certificates_of(session, official) if c.state == "current" and c.purpose in issuing
    ]
    plan = OfficialPlan(
        req,
        agency.name,
        official.name,
        official.title,
        key_fp,
        min(wanted, limit),
        wanted > limit,
        retires,
        pdf_fp,
    )
    return plan, agency, official


def plan_official_certification(
    registry: Registry,
    issuer: Issuer,
    data: bytes,
    *,
    profile: KeyProfile | None = None,
    pdf_issuer: PdfIssuer | None = None,
    now: datetime | None = None,
) -> OfficialPlan:
    """Every check of :func:`certify_official_request`, no change."""
    now = whole_seconds(now or datetime.now(UTC))
    req = parse_official_request(data)
    with registry.reading() as session:
        return _plan(session, issuer, req, profile or load_profile(), now, pdf_issuer)[0]


def certify_official_request(
    registry: Registry,
    issuer: Issuer,
    data: bytes,
    *,
    profile: KeyProfile | None = None,
    pdf_issuer: PdfIssuer | None = None,
    now: datetime | None = None,
) -> tuple[OfficialPlan, list[CertificateInfo]]:
    """Issue the official's personal signing certificate for a checked request, and with
    ``pdf_issuer`` (the authority's PDF root) their ``pdf-signing`` certificate too."""
    profile = profile or load_profile()
    now = whole_seconds(now or datetime.now(UTC))
    req = parse_official_request(data)

    def work(session: Session) -> tuple[OfficialPlan, list[CertificateInfo]]:

        find_agency(session, req.agency, for_update=True)  # serialise with renewals and revocations
        plan, agency, official = _plan(session, issuer, req, profile, now, pdf_issuer)
        old = retire([c for c in _certificates_of(session, official) if c.serial in plan.retires], now)
        crl_url, root_url = publication_urls(issuer.base_url)
        subject = official_subject(
            name=official.name,
            title=official.title,
            nip=official.nip,
            agency_code=agency.code,
            agency_name=agency.name,
            province=issuer.province,
        )
        issued = issue_certificate(
            issuer.key,
            issuer.cert,
            purpose="signing",
            public_key=req.signing_public_key,
            common_name=official.name,
            organizational_unit=agency.code,
            province=issuer.province,
            not_before=now,
            not_after=plan.not_after,
            crl_url=crl_url,
            ca_issuers_url=root_url,
            subject=subject,
        )
        row = current_row(issued, agency_id=agency.id, profile=profile.name, issued_at=now,
                          official_id=official.id)
        session.add(row)
        rows = [row]
        if plan.pdf_key_fingerprint is not None and pdf_issuer is not None and req.pdf_public_key is not None:
            # No CRL distribution point: the PDF root's CRL travels in the directory (as for
            # the agencies' pdf-signing certificates).
            pdf = issue_certificate(
                pdf_issuer.key,
                pdf_issuer.cert,
                purpose=PDF_SIGNING,
                public_key=req.pdf_public_key,
                common_name=official.name,
                organizational_unit=agency.code,
                province=pdf_issuer.province,
                not_before=now,
                not_after=plan.not_after,
                subject=subject,
            )
            rows.append(current_row(pdf, agency_id=agency.id, profile=profile.name, issued_at=now,
                                    official_id=official.id))
            session.add(rows[-1])
        session.flush()
        record(
            session,
            "official.certify",
            f"{agency.code}/{official.nip}",
            {
                "request_sha256": req.sha256,
                "certificates": [
                    {"serial": r.serial, "purpose": r.purpose, "key_fingerprint": r.key_fingerprint}
                    for r in rows
                ],
                "not_after": iso_now(issued.not_after),
                "clamped": plan.clamped,
                "retired": old,
            },
        )
        return plan, [cert_info(r, agency.code) for r in rows]

    return registry.run(work)


RESPONSE_FORMAT = "sandi-official-response/v1"
MAX_RESPONSE_BYTES = 64 * 1024


def official_response(plan: OfficialPlan, certs: list[CertificateInfo]) -> bytes:
    """What an official's workstation that enrolled online gets back: the certificates
    issued (they reach it, and every verifier, with the directory)."""
    return json.dumps({
        "format": RESPONSE_FORMAT, "agency": plan.request.agency, "nip": plan.request.nip,
        "request_sha256": plan.request.sha256,
        "certificates": [{"purpose": c.purpose, "serial": c.serial, "key_fingerprint": c.key_fingerprint,
                          "not_after": iso_now(c.not_after), "pem": c.cert_pem} for c in certs],
    }, indent=1).encode() + b"\n"


@dataclass(frozen=True)
class IssuedToOfficial:
    purpose: str
    serial: str
    key_fingerprint: str
    not_after: str


def parse_official_response(data: bytes, agency: str, nip: str) -> list[IssuedToOfficial]:
    """The certificates of :func:`official_response`, which must name ``agency``/``nip``."""
    try:
        obj = load_json(data, max_bytes=MAX_RESPONSE_BYTES, error=lambda reason: FormatError(
            Message("not a sandi official's key response ({reason})", reason=reason)))
        if not isinstance(obj, dict) or obj.get("format") != RESPONSE_FORMAT:
            raise ValueError
        if obj["agency"] != agency or obj["nip"] != nip or not isinstance(obj["certificates"], list):
            raise ValueError
        return [IssuedToOfficial(str(c["purpose"]), str(c["serial"]), str(c["key_fingerprint"]),
                                 str(c["not_after"])) for c in obj["certificates"]]
    except (ValueError, KeyError, TypeError):
        raise FormatError(_("not a sandi official's key response for {nip} of {code}").format(
            nip=nip, code=agency)) from None


__all__ = [
    "OfficialPlan",
    "OfficialRequest",
    "add_official",
    "certify_official_request",
    "create_official_request",
    "get_official",
    "list_officials",
    "normalise_fingerprint",
    "official_response",
    "parse_official_request",
    "parse_official_response",
    "plan_official_certification",
    "retire_official",
    "revoke_official",
    "validate_nip",
]
