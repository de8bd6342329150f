"""Enrolment: the agency makes its own keys and asks the authority to certify them.

Request (agency -> authority), UTF-8 JSON::

    {"format": "sandi-enrolment-request/v1",
     "request": {"agency": "BAPPEDA", "created": "2026-01-01T00:00:00Z",
                 "root_fingerprint": "<hex of the authority root the agency trusts>",
                 "signing_public_key": "<base64 raw Ed25519>",
                 "encryption_recipient": "age1...", "nonce": "<32 hex>"},
     "signature": "<base64 Ed25519 signature by the signing key over
                   b'sandi-enrolment-request/v1\\n' + canonical JSON of 'request'>"}

Response (authority -> agency), UTF-8 JSON::

    {"format": "sandi-enrolment-response/v1", "agency": "BAPPEDA",
     "request_sha256": "<hex of the request file>", "root_certificate": "<PEM>",
     "certificates": [{"purpose": "signing", "serial": "...", "pem": "<PEM>"}, ...]}

Invariants:

* the private keys never leave the agency: the request carries public keys only,
  and the keys wait in the agency's key store for their certificates;
* the signature proves possession of the signing key and binds the agency code,
  the encryption key, the time and the authority the agency meant; an X25519 key
  cannot sign, so it is vouched for by the signing key's signature over it;
* the authority certifies only a well-formed request (bounded size, strict fields),
  with a valid signature, for a known *active* agency, addressed to *this* root,
  made at most :data:`MAX_REQUEST_AGE` ago and not in the future, whose keys it has
  never certified before; anything else is refused and changes nothing;
* certifying retires the agency's current certificates (re-enrolment is rotation)
  and is audited as ``key.certify`` in the same transaction.
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

from sandi.authority.agencies import find_agency, validate_code
from sandi.authority.bundle import iso_now
from sandi.authority.certs import whole_seconds
from sandi.authority.events import record
from sandi.authority.installed import CertToInstall, install_certificates
from sandi.authority.issuance import (
    Issuer,
    IssueResult,
    KeyWrites,
    certify_keys,
    current_certificates,
    require_active,
    retire,
)
from sandi.authority.profiles import KeyProfile, load_profile
from sandi.authority.records import cert_info
from sandi.authority.validity import CLOCK_SKEW
from sandi.errors import AlreadyExistsError, FormatError, UsageError, VerificationError
from sandi.i18n import _
from sandi.keystore.base import KeyStore, generate_identity
from sandi.keystore.keys import SigningKey, fingerprint, verify_ed25519

if TYPE_CHECKING:
    from pathlib import Path

    from sandi.home import Home
    from sandi.registry import Registry

REQUEST_FORMAT = "sandi-enrolment-request/v1"
RESPONSE_FORMAT = "sandi-enrolment-response/v1"
SIGNATURE_CONTEXT = b"sandi-enrolment-request/v1\n"
MAX_REQUEST_BYTES = 16 * 1024
MAX_RESPONSE_BYTES = 256 * 1024
MAX_REQUEST_AGE = timedelta(days=30)
_REQUEST_FIELDS = {
    "agency",
    "created",
    "root_fingerprint",
    "signing_public_key",
    "encryption_recipient",
    "nonce",
}


def _canonical(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


@dataclass(frozen=True)
class EnrolmentRequest:
    agency: str
    created: datetime
    root_fingerprint: str
    signing_public_key: bytes
    encryption_public_key: bytes
    raw: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()


# -- agency side -------------------------------------------------------------------------


def create_request(
    home: Home, keystore: KeyStore, code: str, *, now: datetime | None = None
) -> tuple[bytes, list[str]]:
    """New keys into this home's key store, and the signed request for them."""
    validate_code(code)
    cfg = home.load_config()
    if cfg.agency is not None and cfg.agency != code:
        raise UsageError(_("this home belongs to {agency}, not {code}").format(agency=cfg.agency, code=code))
    if not cfg.root_fingerprint:
        raise UsageError(
            _("this home does not know its authority's root fingerprint"),
            hint=_("create it with 'sandi init --agency CODE --root-fingerprint FP'"),
        )
    now = whole_seconds(now or datetime.now(UTC))
    signing = SigningKey.generate()
    encryption = generate_identity()
    request = {
        "agency": code,
        "created": iso_now(now),
        "root_fingerprint": cfg.root_fingerprint,
        "signing_public_key": base64.b64encode(signing.public_key_bytes()).decode(),
        "encryption_recipient": encryption.recipient.to_bech32(),
        "nonce": secrets.token_hex(16),
    }
    signature = signing.sign(SIGNATURE_CONTEXT + _canonical(request))
    data = (
        json.dumps(
            {"format": REQUEST_FORMAT, "request": request, "signature": base64.b64encode(signature).decode()},
            indent=1,
        ).encode()
        + b"\n"
    )
    writes = KeyWrites(keystore)
    try:
        refs = [writes.signing(code, signing), writes.encryption(code, encryption)]
    except BaseException:
        writes.undo()
        raise
    return data, refs


def import_response(home: Home, keystore: KeyStore, data: bytes) -> list[Path]:
    """Install the certificates of a response into this home (keys must be in its store)."""
    from sandi.audit.events import AuditEvent, current_operator
    from sandi.audit.journal import Journal

    if len(data) > MAX_RESPONSE_BYTES:
        raise FormatError(_("an enrolment response is at most 256 KiB"))
    try:
        obj = json.loads(data)
        if not isinstance(obj, dict) or obj.get("format") != RESPONSE_FORMAT:
            raise ValueError
        agency, root_pem, certs = obj["agency"], obj["root_certificate"], obj["certificates"]
        items = [CertToInstall(str(c["purpose"]), str(c["pem"])) for c in certs]
        if not isinstance(agency, str) or not isinstance(root_pem, str) or len(items) != 2:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise FormatError(_("not a sandi enrolment response")) from None
    cfg = home.load_config()
    if cfg.agency is not None and cfg.agency != agency:
        raise UsageError(_("these certificates are for {agency}; this home belongs to {agency2}").format(
            agency=agency,
            agency2=cfg.agency,
        ))
    written = install_certificates(home.path, keystore, agency, root_pem, cfg.root_fingerprint, items)
    Journal(home.journal_path).append(
        AuditEvent(
            actor=cfg.agency or current_operator(),
            action="key.import",
            subject=agency,
            details={"what": "certificates", "files": [p.name for p in written]},
        )
    )
    return written


# -- authority side ----------------------------------------------------------------------


def parse_request(data: bytes) -> EnrolmentRequest:
    """Parse strictly and check the signature; VerificationError if it does not hold."""
    from sandi.formats.age import X25519Recipient

    if len(data) > MAX_REQUEST_BYTES:
        raise FormatError(_("an enrolment request is at most {max_request_bytes} bytes").format(
            max_request_bytes=MAX_REQUEST_BYTES,
        ))
    try:
        obj = json.loads(data)
        if not isinstance(obj, dict) or set(obj) != {"format", "request", "signature"}:
            raise ValueError
        if obj["format"] != REQUEST_FORMAT:
            raise ValueError
        req = obj["request"]
        if (
            not isinstance(req, dict)
            or set(req) != _REQUEST_FIELDS
            or not all(isinstance(v, str) for v in req.values())
        ):
            raise ValueError
        signature = base64.b64decode(obj["signature"], validate=True)
        signing_pub = base64.b64decode(req["signing_public_key"], validate=True)
        if len(signing_pub) != 32 or len(signature) != 64:
            raise ValueError
        created = datetime.strptime(req["created"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        if not re.fullmatch(r"[0-9a-f]{64}", req["root_fingerprint"]):
            raise ValueError
        validate_code(req["agency"])
    except (ValueError, KeyError, TypeError, binascii.Error, UsageError):
        raise FormatError(_("not a sandi enrolment request (or a damaged one)")) from None
    try:
        enc_pub = X25519Recipient.from_bech32(req["encryption_recipient"]).public_bytes
    except FormatError:
        raise FormatError(_("the enrolment request's encryption key is not an age recipient")) from None
    try:
        verify_ed25519(signing_pub, signature, SIGNATURE_CONTEXT + _canonical(req))
    except VerificationError:
        raise VerificationError(
            _("the enrolment request's signature is not valid"),
            hint=_("the request was altered after it was made; ask the agency for a fresh one"),
        ) from None
    return EnrolmentRequest(
        req["agency"], created, req["root_fingerprint"], signing_pub, enc_pub, bytes(data)
    )


def certify_request(
    registry: Registry,
    issuer: Issuer,
    data: bytes,
    *,
    expected_agency: str | None = None,
    profile: KeyProfile | None = None,
    now: datetime | None = None,
) -> tuple[bytes, IssueResult]:
    """Check a request, issue the two certificates, and return the response bundle."""
    from sqlalchemy import select

    from sandi.authority.certs import to_pem
    from sandi.registry.models import CertificateRow

    profile = profile or load_profile()
    now = whole_seconds(now or datetime.now(UTC))
    req = parse_request(data)
    if expected_agency is not None and req.agency != expected_agency:
        raise VerificationError(
            _("the request is for {agency}, not {expected_agency}").format(
                agency=req.agency,
                expected_agency=expected_agency,
            ),
            hint=_("certify each agency's own request"),
        )
    if req.root_fingerprint != issuer.key.fingerprint:
        raise VerificationError(
            _("the request was made for another authority (root fingerprint differs)"),
            hint=_("the agency must be set up with this authority's root fingerprint"),
        )
    if req.created > now + CLOCK_SKEW:
        raise VerificationError(_("the request is dated in the future"), hint=_("check the agency's clock"))
    if now - req.created > MAX_REQUEST_AGE:
        raise VerificationError(
            _("the request is older than {days} days").format(days=MAX_REQUEST_AGE.days),
            hint=_("ask the agency for a fresh request"),
        )
    fps = [fingerprint(req.signing_public_key), fingerprint(req.encryption_public_key)]
    with registry.transaction() as session:
        agency = find_agency(session, req.agency, for_update=True)
        require_active(agency)
        if session.execute(select(CertificateRow.id).where(CertificateRow.key_fingerprint.in_(fps))).first():
            raise AlreadyExistsError(
                _("these keys were certified before"),
                hint=_("a request is certified once; the agency makes a new one for new keys"),
            )
        old = retire(current_certificates(session, agency), now)
        rows = certify_keys(
            session,
            issuer,
            agency,
            profile,
            signing_public=req.signing_public_key,
            encryption_public=req.encryption_public_key,
            now=now,
        )
        record(
            session,
            "key.certify",
            req.agency,
            {
                "profile": profile.name,
                "flow": "enrolment",
                "request_sha256": req.sha256,
                "retired": old,
                "certificates": [
                    {"serial": r.serial, "purpose": r.purpose, "key_fingerprint": r.key_fingerprint}
                    for r in rows
                ],
            },
        )
        response = (
            json.dumps(
                {
                    "format": RESPONSE_FORMAT,
                    "agency": req.agency,
                    "request_sha256": req.sha256,
                    "root_certificate": to_pem(issuer.cert),
                    "certificates": [
                        {"purpose": r.purpose, "serial": r.serial, "pem": r.cert_pem} for r in rows
                    ],
                },
                indent=1,
            ).encode()
            + b"\n"
        )
        result = IssueResult(req.agency, profile.name, [cert_info(r, req.agency) for r in rows], [], old)
    return response, result
