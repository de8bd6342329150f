"""Enrolment of an agency's PDF signing key (ADR 0014): the agency makes its P-256 key and
asks the authority's PDF root to certify it; the private key never leaves the agency.

Request (agency -> authority), UTF-8 JSON::

    {"format": "sandi-pdf-key-request/v1",
     "request": {"agency": "BAPPEDA", "created": "2026-01-01T00:00:00Z",
                 "root_fingerprint": "<hex of the authority root the agency trusts>",
                 "public_key": "<base64 of the 65-byte uncompressed P-256 point>",
                 "signing_key": "<fingerprint of the agency's current Ed25519 signing key>",
                 "nonce": "<32 hex>"},
     "signature": "<base64 Ed25519 signature by that signing key over
                   b'sandi-pdf-key-request/v1\\n' + canonical JSON of 'request'>",
     "possession": "<base64 DER ECDSA P-256/SHA-256 signature by the new key over the same>"}

Response (authority -> agency)::

    {"format": "sandi-pdf-key-response/v1", "agency": "BAPPEDA",
     "request_sha256": "<hex>", "pdf_root_certificate": "<PEM>",
     "certificate": {"purpose": "pdf-signing", "serial": "...", "pem": "<PEM>"}}

Invariants:

* the request is the agency speaking: it is signed by the agency's *current* Ed25519
  signing key (a current, unrevoked, valid signing certificate of that agency in the
  registry), and the new key proves possession by signing the same bytes;
* the authority certifies only a well-formed request (bounded size, strict fields) for a
  known active agency, addressed to this root, at most :data:`MAX_REQUEST_AGE` old and not
  from the future, whose key it never certified; anything else changes nothing;
* certifying retires the agency's current ``pdf-signing`` certificate (if any) in the same
  transaction, audited as ``key.certify`` with ``flow = "pdf-request"``;
* :func:`plan_pdf_certification` checks what :func:`certify_pdf_request` checks and
  changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sandi.authority.bundle import iso_now
from sandi.authority.certs import to_pem, whole_seconds
from sandi.authority.enrolment import check_request_origin, current_own_signing_key, request_fingerprint
from sandi.authority.lookup import validate_code
from sandi.errors import AlreadyExistsError, FormatError, UsageError, VerificationError
from sandi.formats.bounded import load_json
from sandi.i18n import Message, _
from sandi.keystore.keys import P256_PUBLIC_KEY_SIZE, fingerprint, verify_ed25519, verify_p256

if TYPE_CHECKING:
    from pathlib import Path

    from sandi.authority.issuance import IssueResult
    from sandi.authority.pdfroot import PdfIssuer
    from sandi.authority.profiles import KeyProfile
    from sandi.home import Home
    from sandi.keystore.base import KeyStore
    from sandi.registry import Registry

REQUEST_FORMAT = "sandi-pdf-key-request/v1"
RESPONSE_FORMAT = "sandi-pdf-key-response/v1"
CONTEXT = b"sandi-pdf-key-request/v1\n"
MAX_REQUEST_BYTES = 8 * 1024
MAX_RESPONSE_BYTES = 64 * 1024
_FIELDS = {"agency", "created", "root_fingerprint", "public_key", "signing_key", "nonce"}


def _canonical(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def is_pdf_key_request(data: bytes) -> bool:
    """True if ``data`` says it is a PDF key request (then parse it with :func:`parse_pdf_request`)."""
    return b'"' + REQUEST_FORMAT.encode() + b'"' in data[:MAX_REQUEST_BYTES]


def is_pdf_key_response(data: bytes) -> bool:
    return b'"' + RESPONSE_FORMAT.encode() + b'"' in data[:MAX_RESPONSE_BYTES]


@dataclass(frozen=True)
class PdfKeyRequest:
    agency: str
    created: datetime
    root_fingerprint: str
    public_key: bytes
    signing_key: str
    signature: bytes
    raw: bytes
    signed_payload: bytes

    @property
    def key_fingerprint(self) -> str:
        return fingerprint(self.public_key)

    @property
    def fingerprint(self) -> str:
        """What the operator and the agency compare by phone (as for enrolment requests)."""
        return request_fingerprint(self.raw)


@dataclass(frozen=True)
class PdfCertificationPlan:
    request: PdfKeyRequest
    agency_name: str
    #: the serial of the current pdf-signing certificate the request replaces, if any
    retires: str | None


# -- agency side -------------------------------------------------------------------------


def create_pdf_request(home: Home, keystore: KeyStore, code: str, *,
                       now: datetime | None = None) -> tuple[bytes, str]:
    """A new P-256 key into this home's key store, and the request for its certificate,
    signed by the agency's current signing key (which this home must hold)."""
    from sandi.authority.issuance import KeyWrites

    validate_code(code)
    cfg = home.load_config()
    if cfg.agency is not None and cfg.agency != code:
        raise UsageError(_("this home belongs to {agency}, not {code}").format(agency=cfg.agency, code=code))
    if not cfg.root_fingerprint:
        raise UsageError(_("this home does not know its authority's root fingerprint"),
                         hint=_("create it with 'sandi init --agency CODE --root-fingerprint FP'"))
    now = whole_seconds(now or datetime.now(UTC))
    current = current_own_signing_key(home, keystore, code, now)
    writes = KeyWrites(keystore)
    try:
        ref, key = writes.new_p256(code, on_token=keystore.hardware)
        request = {
            "agency": code, "created": iso_now(now), "root_fingerprint": cfg.root_fingerprint,
            "public_key": base64.b64encode(key.public_key_bytes()).decode(),
            "signing_key": current.fingerprint, "nonce": secrets.token_hex(16),
        }
        payload = CONTEXT + _canonical(request)
        envelope = {
            "format": REQUEST_FORMAT, "request": request,
            "signature": base64.b64encode(current.sign(payload)).decode(),
            "possession": base64.b64encode(key.sign(payload)).decode(),
        }
    except BaseException:
        writes.undo()
        raise
    return json.dumps(envelope, indent=1).encode() + b"\n", ref


def import_pdf_response(home: Home, keystore: KeyStore, data: bytes) -> list[Path]:
    """Install the pdf-signing certificate of a response (its key must be in this home)."""
    from sandi.audit.events import AuditEvent, current_operator
    from sandi.audit.journal import Journal
    from sandi.authority.installed import CERTS_DIR, ROOT_CERT_NAME, CertToInstall, install_certificates

    if len(data) > MAX_RESPONSE_BYTES:
        raise FormatError(_("a PDF key response is at most {limit} bytes").format(limit=MAX_RESPONSE_BYTES))
    try:
        obj = load_json(data, max_bytes=MAX_RESPONSE_BYTES, error=lambda reason: FormatError(
            Message("not a sandi PDF key response ({reason})", reason=reason)))
        if not isinstance(obj, dict) or obj.get("format") != RESPONSE_FORMAT:
            raise ValueError
        agency, pdf_root, cert = obj["agency"], obj["pdf_root_certificate"], obj["certificate"]
        if not isinstance(agency, str) or not isinstance(pdf_root, str) or not isinstance(cert, dict) \
                or cert.get("purpose") != "pdf-signing" or not isinstance(cert.get("pem"), str):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise FormatError(_("not a sandi PDF key response")) from None
    cfg = home.load_config()
    if cfg.agency is not None and cfg.agency != agency:
        raise UsageError(_("these certificates are for {agency}; this home belongs to {agency2}").format(
            agency=agency, agency2=cfg.agency))
    root_pem = home.path / CERTS_DIR / ROOT_CERT_NAME
    try:
        root_text = root_pem.read_text(encoding="ascii")
    except OSError:
        raise UsageError(_("this home has no certificates of its authority yet"),
                         hint=_("import the certificates of your enrolment first")) from None
    written = install_certificates(home.path, keystore, agency, root_text, cfg.root_fingerprint,
                                   [CertToInstall("pdf-signing", cert["pem"])], pdf_root_pem=pdf_root)
    Journal(home.journal_path).append(AuditEvent(
        actor=cfg.agency or current_operator(), action="key.import", subject=agency,
        details={"what": "certificates", "files": [p.name for p in written]}))
    return written


# -- authority side ----------------------------------------------------------------------


def parse_pdf_request(data: bytes) -> PdfKeyRequest:
    """Parse strictly and check the proof of possession (the agency's signature is checked
    against the registry by :func:`plan_pdf_certification`)."""
    if len(data) > MAX_REQUEST_BYTES:
        raise FormatError(_("a PDF key request is at most {limit} bytes").format(limit=MAX_REQUEST_BYTES))
    try:
        obj = load_json(data, max_bytes=MAX_REQUEST_BYTES, error=lambda reason: FormatError(
            Message("not a sandi PDF key request ({reason})", reason=reason)))
        if not isinstance(obj, dict) or set(obj) != {"format", "request", "signature", "possession"} \
                or obj["format"] != REQUEST_FORMAT:
            raise ValueError
        req = obj["request"]
        if not isinstance(req, dict) or set(req) != _FIELDS or \
                not all(isinstance(v, str) for v in req.values()):
            raise ValueError
        public = base64.b64decode(req["public_key"], validate=True)
        signature = base64.b64decode(obj["signature"], validate=True)
        possession = base64.b64decode(obj["possession"], validate=True)
        if len(public) != P256_PUBLIC_KEY_SIZE or len(signature) != 64 or len(possession) > 80:
            raise ValueError
        if not re.fullmatch(r"[0-9a-f]{64}", req["root_fingerprint"]) or \
                not re.fullmatch(r"[0-9a-f]{64}", req["signing_key"]):
            raise ValueError
        created = datetime.strptime(req["created"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        validate_code(req["agency"])
    except (ValueError, KeyError, TypeError, binascii.Error, UsageError, RecursionError):
        raise FormatError(_("not a sandi PDF key request (or a damaged one)")) from None
    payload = CONTEXT + _canonical(req)
    try:
        verify_p256(public, possession, payload)
    except VerificationError:
        raise VerificationError(_("the PDF key request's proof of possession is not valid"),
                                hint=_("the request was altered after it was made; ask the agency for a "
                                       "fresh one")) from None
    return PdfKeyRequest(req["agency"], created, req["root_fingerprint"], public, req["signing_key"],
                         signature, bytes(data), payload)


def plan_pdf_certification(registry: Registry, root_fingerprint: str, data: bytes, *,
                           expected_agency: str | None = None,
                           now: datetime | None = None) -> PdfCertificationPlan:
    """Every check :func:`certify_pdf_request` makes; changes nothing."""
    with registry.reading() as session:
        return _plan(session, root_fingerprint, parse_pdf_request(data), expected_agency,
                     whole_seconds(now or datetime.now(UTC)))


def _plan(session: Any, root_fingerprint: str, req: PdfKeyRequest, expected_agency: str | None,
          now: datetime) -> PdfCertificationPlan:
    from sqlalchemy import select

    from sandi.authority.issuance import require_active
    from sandi.authority.lookup import find_agency
    from sandi.authority.pdfroot import current_pdf_certificates
    from sandi.authority.validity import may_sign_now
    from sandi.registry.models import CertificateRow

    if expected_agency is not None and req.agency != expected_agency:
        raise VerificationError(_("the request is for {agency}, not {expected_agency}").format(
            agency=req.agency, expected_agency=expected_agency), hint=_("certify each agency's own request"))
    check_request_origin(req.root_fingerprint, req.created, authority_fingerprint=root_fingerprint, now=now,
                         ask_again=_("ask the agency for a fresh request"))
    agency = find_agency(session, req.agency)
    require_active(agency)
    signing = session.scalars(select(CertificateRow).where(
        CertificateRow.agency_id == agency.id, CertificateRow.purpose == "signing",
        CertificateRow.key_fingerprint == req.signing_key)).all()
    from sandi.authority.records import cert_info

    if not any(may_sign_now(c, cert_info(c, agency.code).revocation, now) for c in signing):
        raise VerificationError(
            _("the PDF key request is not signed by a current signing key of {code}").format(code=req.agency),
            hint=_("the agency signs the request with its current keys; renew or rotate them first"))
    try:
        verify_ed25519(bytes(signing[0].public_key), req.signature, req.signed_payload)
    except VerificationError:
        raise VerificationError(_("the PDF key request's signature is not valid"),
                                hint=_("the request was altered after it was made; ask the agency for a "
                                       "fresh one")) from None
    if session.scalars(select(CertificateRow.id).where(
            CertificateRow.key_fingerprint == req.key_fingerprint)).first() is not None:
        raise AlreadyExistsError(_("this key was certified before"),
                                 hint=_("a request is certified once; the agency makes a fresh one"))
    current = current_pdf_certificates(session, agency)
    return PdfCertificationPlan(req, agency.name, current[0].serial if current else None)


def certify_pdf_request(registry: Registry, pdf_issuer: PdfIssuer, root_fingerprint: str, data: bytes, *,
                        expected_agency: str | None = None, profile: KeyProfile | None = None,
                        now: datetime | None = None) -> tuple[bytes, IssueResult]:
    """Check the request and certify its key from the PDF root: (response bytes, result)."""
    from sandi.authority.events import record
    from sandi.authority.issuance import IssueResult
    from sandi.authority.pdfroot import certify_pdf_key
    from sandi.authority.profiles import load_profile
    from sandi.authority.records import cert_info

    profile = profile or load_profile()
    now = whole_seconds(now or datetime.now(UTC))
    req = parse_pdf_request(data)
    with registry.transaction() as session:
        from sandi.authority.lookup import find_agency

        _plan(session, root_fingerprint, req, expected_agency, now)
        agency = find_agency(session, req.agency, for_update=True)
        row, old = certify_pdf_key(session, pdf_issuer, agency, req.public_key, profile=profile, now=now,
                                   replace=True)
        record(session, "key.certify", req.agency, {
            "flow": "pdf-request", "purpose": "pdf-signing", "profile": profile.name,
            "request_sha256": hashlib.sha256(req.raw).hexdigest(), **({"retired": old} if old else {}),
            "certificates": [{"serial": row.serial, "purpose": "pdf-signing",
                              "key_fingerprint": row.key_fingerprint}]})
        result = IssueResult(req.agency, profile.name, [cert_info(row, req.agency)], [], old)
        response = {
            "format": RESPONSE_FORMAT, "agency": req.agency,
            "request_sha256": hashlib.sha256(req.raw).hexdigest(),
            "pdf_root_certificate": to_pem(pdf_issuer.cert),
            "certificate": {"purpose": "pdf-signing", "serial": row.serial, "pem": row.cert_pem},
        }
    return json.dumps(response, indent=1).encode() + b"\n", result
