"""Online enrolment (authority side): one-time tokens and the requests posted with them.

Invariants:

* a token is 192 random bits, shown once to the operator and kept only as its SHA-256;
  it names one agency and one kind of request (:data:`KINDS`: the agency's keys, one
  official's personal keys - bound to the official's NIP -, or the agency's PDF signing
  key), expires (default 24 h), and is spent by the first request that is accepted with
  it: a second use is refused;
* a request is accepted only if the parser of its kind accepts it (strict format,
  signature: :func:`sandi.authority.enrolment.parse_request`,
  :func:`sandi.authority.officials.parse_official_request`,
  :func:`sandi.authority.pdfenrol.parse_pdf_request`) and it is of the token's kind, for
  the token's agency (and official); the token is spent and the request stored in one
  transaction, audited (``enrolment.submit``);
* every refused token (unknown, expired, spent, other agency, other kind, other
  official) is audited (``enrolment.token``, outcome ``failed``, never the token itself);
* the server holds no key: it only stores requests. Certificates are issued by
  ``sandi keys certify --pending`` (which has the root key) with the same checks and the
  same confirmation as a request file; a token made with ``auto_approve`` lets that command
  certify its request without asking (for a timer that runs it unattended);
* a workstation polls with a 256-bit handle returned when it posted; only the handle's
  SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sandi.audit.events import AuditEvent, current_operator
from sandi.authority.lookup import find_agency
from sandi.errors import NotFoundError, VerificationError
from sandi.i18n import _
from sandi.timefmt import as_utc

if TYPE_CHECKING:
    from sandi.registry import Registry

TOKEN_PREFIX = "sandi-enrol-"  # noqa: S105 (a label, not a secret)
AGENCY_KEYS = "agency"
OFFICIAL_KEYS = "official"
PDF_SIGNING_KEY = "pdf-signing"
#: what a token may enrol (enrolment_tokens.kind)
KINDS = (AGENCY_KEYS, OFFICIAL_KEYS, PDF_SIGNING_KEY)
DEFAULT_TOKEN_LIFETIME = timedelta(hours=24)
MAX_TOKEN_LIFETIME = timedelta(days=30)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class NewToken:
    token: str
    agency: str
    expires_at: datetime
    auto_approve: bool
    kind: str = AGENCY_KEYS
    official_nip: str | None = None


@dataclass(frozen=True)
class Submitted:
    handle: str
    agency: str
    fingerprint: str
    auto_approve: bool
    kind: str = AGENCY_KEYS
    official_nip: str | None = None


@dataclass(frozen=True)
class PendingRequest:
    id: int
    agency: str
    request: bytes
    fingerprint: str
    auto_approve: bool
    created_at: datetime
    kind: str = AGENCY_KEYS
    official_nip: str | None = None


@dataclass(frozen=True)
class _Parsed:
    kind: str
    agency: str
    official_nip: str | None
    sha256: str


def request_kind(request: bytes) -> str:
    """The kind of an enrolment request, from its format label (then parsed strictly)."""
    from sandi.authority.officials import REQUEST_FORMAT as OFFICIAL_FORMAT
    from sandi.authority.pdfenrol import is_pdf_key_request

    if is_pdf_key_request(request):
        return PDF_SIGNING_KEY
    if b'"' + OFFICIAL_FORMAT.encode() + b'"' in request[:16 * 1024]:
        return OFFICIAL_KEYS
    return AGENCY_KEYS


def _parse(request: bytes) -> _Parsed:
    """Format and signature (proof of possession) of a request of any kind."""
    kind = request_kind(request)
    if kind == PDF_SIGNING_KEY:
        from sandi.authority.pdfenrol import parse_pdf_request

        pdf = parse_pdf_request(request)
        return _Parsed(kind, pdf.agency, None, hashlib.sha256(pdf.raw).hexdigest())
    if kind == OFFICIAL_KEYS:
        from sandi.authority.officials import parse_official_request

        official = parse_official_request(request)
        return _Parsed(kind, official.agency, official.nip, official.sha256)
    from sandi.authority.enrolment import parse_request

    req = parse_request(request)
    return _Parsed(kind, req.agency, None, req.sha256)


class TokenRefused(VerificationError):
    """The token is unknown, expired, spent, or for another agency."""


def create_token(registry: Registry, code: str, *, lifetime: timedelta = DEFAULT_TOKEN_LIFETIME,
                 auto_approve: bool = False, kind: str = AGENCY_KEYS, official_nip: str | None = None,
                 now: datetime | None = None) -> NewToken:
    """A new one-time token for agency ``code`` (it must be active) to enrol ``kind``
    (for ``official``: the active official ``official_nip`` of that agency); audited."""
    from sandi.authority.identifiers import validate_nip
    from sandi.authority.issuance import require_active
    from sandi.errors import UsageError
    from sandi.registry.models import EnrolmentTokenRow

    if kind not in KINDS:
        raise UsageError(_("a token enrols one of: {kinds}").format(kinds=", ".join(KINDS)))
    if (kind == OFFICIAL_KEYS) != (official_nip is not None):
        raise UsageError(_("a token for an official's keys names the official's NIP, and only such a token"))
    if official_nip is not None:
        official_nip = validate_nip(official_nip)
    now = now or datetime.now(UTC)
    token = TOKEN_PREFIX + secrets.token_urlsafe(24)
    with registry.transaction() as session:
        agency = find_agency(session, code)
        require_active(agency)
        if official_nip is not None:
            from sandi.authority.officials import OfficialStateError, find_official

            if find_official(session, agency, official_nip).status != "active":
                raise OfficialStateError(
                    _("official {nip} of {code} is retired: no certificates are issued to them").format(
                        nip=official_nip, code=code))
        row = EnrolmentTokenRow(agency_id=agency.id, token_sha256=_sha256(token), auto_approve=auto_approve,
                                created_at=now, expires_at=now + lifetime, kind=kind,
                                official_nip=official_nip)
        session.add(row)
        session.flush()
        _audit(session, "enrolment.token", code, "ok", {
            "token_id": row.id, "expires_at": (now + lifetime).isoformat(), "auto_approve": auto_approve,
            "kind": kind, **({"nip": official_nip} if official_nip else {})})
    return NewToken(token, code, now + lifetime, auto_approve, kind, official_nip)


def submit(registry: Registry, token: str, request: bytes, *, client: str,
           now: datetime | None = None) -> Submitted:
    """Spend ``token`` on ``request`` (checked as a request file is); audited either way."""
    from sqlalchemy import select

    from sandi.authority.enrolment import request_fingerprint
    from sandi.registry.models import AgencyRow, EnrolmentRequestRow, EnrolmentTokenRow

    now = now or datetime.now(UTC)
    req = _parse(request)  # format and signature, before the token is looked at
    digest = _sha256(token)
    refusal = None
    with registry.transaction() as session:
        row = session.scalars(select(EnrolmentTokenRow).where(EnrolmentTokenRow.token_sha256 == digest)
                              .with_for_update()).first()
        agency = None if row is None else session.get(AgencyRow, row.agency_id)
        if row is None or agency is None:
            refusal = "unknown"
        elif row.used_at is not None:
            refusal = "spent"
        elif as_utc(row.expires_at) <= now:
            refusal = "expired"
        elif agency.code != req.agency:
            refusal = "other-agency"
        elif row.kind != req.kind:
            refusal = "other-kind"  # an agency's token never enrols an official, nor the reverse
        elif row.official_nip != req.official_nip:
            refusal = "other-official"
        if refusal is None and row is not None and agency is not None:
            row.used_at = now
            handle = secrets.token_urlsafe(32)
            fp = request_fingerprint(request)
            session.add(EnrolmentRequestRow(
                handle_sha256=_sha256(handle), token_id=row.id, agency_id=agency.id, request=request,
                fingerprint=fp, status="pending", auto_approve=row.auto_approve, created_at=now))
            _audit(session, "enrolment.submit", _subject(req.agency, req.official_nip), "ok", {
                "token_id": row.id, "request_sha256": req.sha256, "fingerprint": fp, "client": client[:100],
                "auto_approve": row.auto_approve, "kind": req.kind})
            return Submitted(handle, req.agency, fp, row.auto_approve, req.kind, req.official_nip)
    with registry.transaction() as session:
        _audit(session, "enrolment.token", _subject(req.agency, req.official_nip), "failed", {
            "reason": refusal, "client": client[:100], "kind": req.kind,
            "token_id": None if row is None else row.id})
    raise TokenRefused(_("the enrolment token was refused ({reason})").format(reason=refusal),
                       hint=_("ask the authority for a new token ('sandi agency token CODE')"))


def record_refusal(registry: Registry, client: str, reason: str) -> None:
    """Audit a refused attempt that never reached a token (malformed, rate-limited)."""
    with registry.transaction() as session:
        _audit(session, "enrolment.token", "-", "failed", {"reason": reason, "client": client[:100]})


def poll(registry: Registry, handle: str) -> tuple[str, bytes | None]:
    """(status, response) of the request posted under ``handle``."""
    from sqlalchemy import select

    from sandi.registry.models import EnrolmentRequestRow

    with registry.reading() as session:
        row = session.scalars(select(EnrolmentRequestRow)
                              .where(EnrolmentRequestRow.handle_sha256 == _sha256(handle))).first()
        if row is None:
            raise NotFoundError(_("no enrolment request under this handle"))
        return row.status, row.response


def pending_requests(registry: Registry) -> list[PendingRequest]:
    from sqlalchemy import select

    from sandi.registry.models import AgencyRow, EnrolmentRequestRow, EnrolmentTokenRow

    with registry.reading() as session:
        rows = session.execute(
            select(EnrolmentRequestRow, AgencyRow.code, EnrolmentTokenRow.kind,
                   EnrolmentTokenRow.official_nip)
            .join(AgencyRow, AgencyRow.id == EnrolmentRequestRow.agency_id)
            .join(EnrolmentTokenRow, EnrolmentTokenRow.id == EnrolmentRequestRow.token_id)
            .where(EnrolmentRequestRow.status == "pending").order_by(EnrolmentRequestRow.id)).all()
        return [PendingRequest(r.id, code, bytes(r.request), r.fingerprint, r.auto_approve, r.created_at,
                               kind, nip)
                for r, code, kind, nip in rows]


def mark_certified(registry: Registry, request_id: int, response: bytes, *, now: datetime | None = None
                   ) -> None:
    """Hand the certificates to the workstation that polls (after certify_request)."""
    from sandi.registry.models import EnrolmentRequestRow

    with registry.transaction() as session:
        row = session.get(EnrolmentRequestRow, request_id, with_for_update=True)
        if row is None:
            raise NotFoundError(_("no enrolment request {id}").format(id=request_id))
        row.status = "certified"
        row.response = response
        row.decided_at = now or datetime.now(UTC)


def _subject(agency: str, nip: str | None) -> str:
    return agency if nip is None else f"{agency}/{nip}"


def _audit(session: object, action: str, subject: str, outcome: str, details: dict[str, object]) -> None:
    from sandi.audit.registry_sink import append_in_session

    append_in_session(session, AuditEvent(  # type: ignore[arg-type]
        actor=current_operator(), action=action, subject=subject, outcome=outcome,  # type: ignore[arg-type]
        details=details))  # type: ignore[arg-type]
