"""Enrolment: the agency makes its own keys and asks the authority to certify them.

Request (agency -> authority), UTF-8 JSON::

    {"format": "sandi-enrolment-request/v1",
     "request": {"agency": "BAPPEDA", "created": "2026-01-01T00:00:00Z",
                 "root_fingerprint": "<hex of the authority root the agency trusts>",
                 "signing_public_key": "<base64 raw Ed25519>",
                 "encryption_recipient": "age1...", "nonce": "<32 hex>"},
     "signature": "<base64 Ed25519 signature by the signing key over
                   b'sandi-enrolment-request/v1\\n' + canonical JSON of 'request'>"}

A rotation request (``keys request --rotate``: new keys made on the workstation that
holds the current ones) adds ``"kind": "rotate"`` and ``"replaces": "<fingerprint of the
current signing key>"`` to ``request``, and a top-level ``"replacing_signature"``: the
*current* signing key's signature over ``b'sandi-enrolment-rotation/v1\\n'`` + the same
canonical JSON. A first enrolment may say ``"kind": "enrol"`` or nothing.

The request fingerprint people compare by phone is the first 128 bits of the SHA-256 of
the request file, as eight groups of four hex digits (:func:`request_fingerprint`).

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
* an agency that holds current certificates is re-certified only by a rotation
  request signed by its current signing key, or when the operator says ``replace``
  (lost keys); either way the current certificates are retired in the same
  transaction, audited as ``key.certify`` (with ``flow`` and ``retired``);
* :func:`plan_certification` checks everything :func:`certify_request` checks and
  changes nothing, so a person can see what will happen before saying yes.
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
from sandi.authority.lookup import find_agency, validate_code
from sandi.authority.profiles import KeyProfile, load_profile
from sandi.authority.records import cert_info
from sandi.authority.validity import CLOCK_SKEW
from sandi.errors import AlreadyExistsError, FormatError, NotFoundError, UsageError, VerificationError
from sandi.formats.bounded import load_json
from sandi.i18n import Message, _
from sandi.keystore.base import KeyStore, generate_identity
from sandi.keystore.keys import Signer, fingerprint, verify_ed25519
from sandi.timefmt import as_utc

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy.orm import Session

    from sandi.formats.age import X25519Identity
    from sandi.home import Home
    from sandi.registry import Registry
    from sandi.registry.models import AgencyRow

REQUEST_FORMAT = "sandi-enrolment-request/v1"
RESPONSE_FORMAT = "sandi-enrolment-response/v1"
SIGNATURE_CONTEXT = b"sandi-enrolment-request/v1\n"
ROTATION_CONTEXT = b"sandi-enrolment-rotation/v1\n"
KINDS = ("enrol", "rotate")
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


def request_fingerprint(data: bytes) -> str:
    """The short fingerprint of a request file, read aloud to compare by phone."""
    digest = hashlib.sha256(data).hexdigest()[:32].upper()
    return " ".join(digest[i : i + 4] for i in range(0, 32, 4))


def normalise_fingerprint(text: str) -> str:
    """``3f2a-91c0 ...`` / ``3F2A91C0...`` → the spaced upper-case form."""
    compact = "".join(ch for ch in text.upper() if ch not in " -:")
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


@dataclass(frozen=True)
class EnrolmentRequest:
    agency: str
    created: datetime
    root_fingerprint: str
    signing_public_key: bytes
    encryption_public_key: bytes
    raw: bytes
    kind: str = "enrol"
    #: rotation: the fingerprint of the signing key this request replaces
    replaces: str | None = None
    #: rotation: that key's signature (checked against the registry, not here)
    replacing_signature: bytes | None = None
    signed_payload: bytes = b""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()

    @property
    def fingerprint(self) -> str:
        return request_fingerprint(self.raw)


@dataclass(frozen=True)
class CurrentCertificate:
    serial: str
    purpose: str
    key_fingerprint: str
    not_after: datetime


@dataclass(frozen=True)
class CertificationPlan:
    """What certifying a request will do; nothing has changed yet."""

    request: EnrolmentRequest
    agency_name: str
    signing_key_fingerprint: str
    encryption_key_fingerprint: str
    #: the agency's current certificates, retired if the request is certified
    retires: list[CurrentCertificate]
    #: why retiring them is allowed: "none" (nothing to retire), "rotation" (signed
    #: by the current key) or "replace" (the operator said so)
    authority: str


# -- agency side -------------------------------------------------------------------------


def create_request(
    home: Home, keystore: KeyStore, code: str, *, rotate: bool = False, now: datetime | None = None
) -> tuple[bytes, list[str]]:
    """New keys into this home's key store, and the signed request for them.

    ``rotate``: the home holds the agency's current keys (their certificates are
    installed); the request is also signed by the current signing key, so the
    authority retires the current certificates without being told to replace them.
    """
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
    current = current_own_signing_key(home, keystore, code, now) if rotate else None
    encryption = generate_identity()
    writes = KeyWrites(keystore)
    try:
        # On a workstation with a PKCS#11 key store the signing key is made on the token.
        signing_ref, signing = writes.new_signing(code, on_token=keystore.hardware)
        data = _signed_request(code, cfg.root_fingerprint, now, signing, encryption, current)
        refs = [signing_ref, writes.encryption(code, encryption)]
    except BaseException:
        writes.undo()
        raise
    return data, refs


def _signed_request(
    code: str, root_fingerprint: str, now: datetime, signing: Signer, encryption: X25519Identity,
    current: Signer | None,
) -> bytes:
    request: dict[str, str] = {
        "agency": code,
        "created": iso_now(now),
        "root_fingerprint": root_fingerprint,
        "signing_public_key": base64.b64encode(signing.public_key_bytes()).decode(),
        "encryption_recipient": encryption.recipient.to_bech32(),
        "nonce": secrets.token_hex(16),
    }
    if current is not None:
        request["kind"] = "rotate"
        request["replaces"] = current.fingerprint
    signature = signing.sign(SIGNATURE_CONTEXT + _canonical(request))
    envelope: dict[str, object] = {
        "format": REQUEST_FORMAT,
        "request": request,
        "signature": base64.b64encode(signature).decode(),
    }
    if current is not None:
        envelope["replacing_signature"] = base64.b64encode(
            current.sign(ROTATION_CONTEXT + _canonical(request))
        ).decode()
    return json.dumps(envelope, indent=1).encode() + b"\n"


def current_own_signing_key(home: Home, keystore: KeyStore, code: str, now: datetime) -> Signer:
    """The signing key of ``code`` this home holds for its newest valid installed certificate."""
    from sandi.authority.certs import load_pem, public_key_of
    from sandi.authority.installed import CERTS_DIR
    from sandi.keystore.base import key_ref

    best: tuple[datetime, str] | None = None
    for path in sorted((home.path / CERTS_DIR).glob(f"{code}.signing.*.pem")):
        try:
            cert = load_pem(path.read_bytes())
        except (OSError, FormatError):
            continue
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            continue
        fp = fingerprint(public_key_of(cert))
        if keystore.contains(key_ref(code, "signing", fp)) and (
            best is None or cert.not_valid_before_utc > best[0]
        ):
            best = (cert.not_valid_before_utc, fp)
    if best is None:
        raise NotFoundError(
            _("this home holds no current certificate and signing key of {code} to rotate").format(code=code),
            hint=_("a first enrolment is 'sandi keys request {code} -o FILE' (without --rotate)").format(
                code=code
            ),
        )
    return keystore.signer(key_ref(code, "signing", best[1]))


def _not_a_response(reason: str) -> FormatError:
    return FormatError(Message("not a sandi enrolment response ({reason})", reason=reason))


def _not_a_request(reason: str) -> FormatError:
    return FormatError(Message("not a sandi enrolment request ({reason})", reason=reason))


def import_response(home: Home, keystore: KeyStore, data: bytes) -> list[Path]:
    """Install the certificates of a response into this home (keys must be in its store)."""
    from sandi.audit.events import AuditEvent, current_operator
    from sandi.audit.journal import Journal

    if len(data) > MAX_RESPONSE_BYTES:
        raise FormatError(_("an enrolment response is at most 256 KiB"))
    try:
        obj = load_json(data, max_bytes=MAX_RESPONSE_BYTES, error=_not_a_response)
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
        obj = load_json(data, max_bytes=MAX_REQUEST_BYTES, error=_not_a_request)
        if not isinstance(obj, dict):
            raise ValueError
        top = set(obj) - {"replacing_signature"}
        if top != {"format", "request", "signature"}:
            raise ValueError
        if obj["format"] != REQUEST_FORMAT:
            raise ValueError
        req = obj["request"]
        if not isinstance(req, dict) or not all(isinstance(v, str) for v in req.values()):
            raise ValueError
        extra = set(req) - _REQUEST_FIELDS
        if not set(req) >= _REQUEST_FIELDS or extra not in (set(), {"kind"}, {"kind", "replaces"}):
            raise ValueError
        kind = req.get("kind", "enrol")
        if kind not in KINDS or (kind == "rotate") != ("replaces" in req):
            raise ValueError
        if (kind == "rotate") != ("replacing_signature" in obj):
            raise ValueError
        replacing = None
        if kind == "rotate":
            if not isinstance(obj["replacing_signature"], str) or not re.fullmatch(
                r"[0-9a-f]{64}", req["replaces"]
            ):
                raise ValueError
            replacing = base64.b64decode(obj["replacing_signature"], validate=True)
            if len(replacing) != 64:
                raise ValueError
        signature = base64.b64decode(obj["signature"], validate=True)
        signing_pub = base64.b64decode(req["signing_public_key"], validate=True)
        if len(signing_pub) != 32 or len(signature) != 64:
            raise ValueError
        created = datetime.strptime(req["created"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        if not re.fullmatch(r"[0-9a-f]{64}", req["root_fingerprint"]):
            raise ValueError
        validate_code(req["agency"])
    except (ValueError, KeyError, TypeError, binascii.Error, UsageError, RecursionError):
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
        req["agency"], created, req["root_fingerprint"], signing_pub, enc_pub, bytes(data),
        kind=kind, replaces=req.get("replaces"), replacing_signature=replacing,
        signed_payload=_canonical(req),
    )


def check_request_origin(root_fingerprint: str, created: datetime, *, authority_fingerprint: str,
                         now: datetime, ask_again: str) -> None:
    """Every request (agency keys, an official's, a PDF key) was made for this authority,
    is not dated in the future and is at most :data:`MAX_REQUEST_AGE` old. ``ask_again``:
    the hint for an old request (whom to ask for a fresh one), already translated."""
    if root_fingerprint != authority_fingerprint:
        raise VerificationError(
            _("the request was made for another authority (root fingerprint differs)"),
            hint=_("the agency must be set up with this authority's root fingerprint"),
        )
    if created > now + CLOCK_SKEW:
        raise VerificationError(_("the request is dated in the future"), hint=_("check the agency's clock"))
    if now - created > MAX_REQUEST_AGE:
        raise VerificationError(
            _("the request is older than {days} days").format(days=MAX_REQUEST_AGE.days), hint=ask_again)


def _check_request(issuer: Issuer, req: EnrolmentRequest, expected_agency: str | None, now: datetime) -> None:
    if expected_agency is not None and req.agency != expected_agency:
        raise VerificationError(
            _("the request is for {agency}, not {expected_agency}").format(
                agency=req.agency,
                expected_agency=expected_agency,
            ),
            hint=_("certify each agency's own request"),
        )
    check_request_origin(req.root_fingerprint, req.created, authority_fingerprint=issuer.key.fingerprint,
                         now=now, ask_again=_("ask the agency for a fresh request"))


def _plan(
    session: Session, req: EnrolmentRequest, agency: AgencyRow, *, replace: bool
) -> CertificationPlan:
    """Every check of a certification that needs the registry; raises, changes nothing."""
    from sqlalchemy import select

    from sandi.registry.models import CertificateRow

    require_active(agency)
    fps = [fingerprint(req.signing_public_key), fingerprint(req.encryption_public_key)]
    if session.execute(select(CertificateRow.id).where(CertificateRow.key_fingerprint.in_(fps))).first():
        raise AlreadyExistsError(
            _("these keys were certified before"),
            hint=_("a request is certified once; the agency makes a new one for new keys"),
        )
    current = current_certificates(session, agency)
    retires = [
        CurrentCertificate(r.serial, r.purpose, r.key_fingerprint, as_utc(r.not_after)) for r in current
    ]
    signing_now = next((r for r in current if r.purpose == "signing"), None)
    if req.kind == "rotate":
        if signing_now is None or signing_now.key_fingerprint != req.replaces:
            raise VerificationError(
                _("the rotation request replaces a signing key that is not {code}'s current one").format(
                    code=req.agency
                ),
                hint=_("the workstation must import the directory or its certificates first, then make "
                       "a fresh request with 'sandi keys request {code} --rotate'").format(code=req.agency),
            )
        if signing_now.revocation is not None:
            raise VerificationError(
                _("the rotation request is signed by {code}'s revoked signing key").format(code=req.agency),
                hint=_("a revoked key cannot vouch for its successor: the operator certifies a "
                       "new enrolment with --replace after checking the agency in person"),
            )
        assert req.replacing_signature is not None
        try:
            verify_ed25519(bytes(signing_now.public_key), req.replacing_signature,
                           ROTATION_CONTEXT + req.signed_payload)
        except VerificationError:
            raise VerificationError(
                _("the rotation request is not signed by {code}'s current signing key").format(
                    code=req.agency
                ),
                hint=_("ask the agency for a fresh request made on the workstation that holds its keys"),
            ) from None
        authority = "rotation"
    elif current and not replace:
        serials = ", ".join(f"{c.serial} ({c.purpose})" for c in retires)
        raise AlreadyExistsError(
            _("{code} holds current certificates ({serials}); certifying this request would retire "
              "them").format(code=req.agency, serials=serials),
            hint=_("to rotate keys, make the request on {code}'s workstation with 'sandi keys request "
                   "{code} --rotate'; if {code} lost its keys, certify this request with --replace").format(
                code=req.agency
            ),
        )
    else:
        authority = "replace" if current else "none"
    return CertificationPlan(req, agency.name, fps[0], fps[1], retires, authority)


def plan_certification(
    registry: Registry,
    issuer: Issuer,
    data: bytes,
    *,
    expected_agency: str | None = None,
    replace: bool = False,
    now: datetime | None = None,
) -> CertificationPlan:
    """What :func:`certify_request` would do with ``data``; every check, no change."""
    now = whole_seconds(now or datetime.now(UTC))
    req = parse_request(data)
    _check_request(issuer, req, expected_agency, now)
    with registry.reading() as session:
        agency = find_agency(session, req.agency)
        return _plan(session, req, agency, replace=replace)


def certify_request(
    registry: Registry,
    issuer: Issuer,
    data: bytes,
    *,
    expected_agency: str | None = None,
    profile: KeyProfile | None = None,
    replace: bool = False,
    now: datetime | None = None,
) -> tuple[bytes, IssueResult]:
    """Check a request, issue the two certificates, and return the response bundle.

    An agency that holds current certificates is certified again only by a rotation
    request its current signing key signed, or with ``replace`` (lost keys).
    """
    from sandi.authority.certs import to_pem

    profile = profile or load_profile()
    now = whole_seconds(now or datetime.now(UTC))
    req = parse_request(data)
    _check_request(issuer, req, expected_agency, now)
    with registry.transaction() as session:
        agency = find_agency(session, req.agency, for_update=True)
        plan = _plan(session, req, agency, replace=replace)
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
                "flow": "rotation" if req.kind == "rotate" else "enrolment",
                "replacement": plan.authority,
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
