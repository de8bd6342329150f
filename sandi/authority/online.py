"""Online enrolment (authority side): one-time tokens and the requests posted with them.

Invariants:

* a token is 192 random bits, shown once to the operator and kept only as its SHA-256;
  it names one agency, expires (default 24 h), and is spent by the first request that
  is accepted with it: a second use is refused;
* a request is accepted only if :func:`sandi.authority.enrolment.parse_request` accepts it
  (strict format, signature) and it is for the token's agency; the token is spent and the
  request stored in one transaction, audited (``enrolment.submit``);
* every refused token (unknown, expired, spent, other agency) is audited
  (``enrolment.token``, outcome ``failed``, never the token itself);
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

if TYPE_CHECKING:
    from sandi.registry import Registry

TOKEN_PREFIX = "sandi-enrol-"  # noqa: S105 (a label, not a secret)
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


@dataclass(frozen=True)
class Submitted:
    handle: str
    agency: str
    fingerprint: str
    auto_approve: bool


@dataclass(frozen=True)
class PendingRequest:
    id: int
    agency: str
    request: bytes
    fingerprint: str
    auto_approve: bool
    created_at: datetime


class TokenRefused(VerificationError):
    """The token is unknown, expired, spent, or for another agency."""


def create_token(registry: Registry, code: str, *, lifetime: timedelta = DEFAULT_TOKEN_LIFETIME,
                 auto_approve: bool = False, now: datetime | None = None) -> NewToken:
    """A new one-time token for agency ``code`` (it must be active); audited."""
    from sandi.authority.issuance import require_active
    from sandi.registry.models import EnrolmentTokenRow

    now = now or datetime.now(UTC)
    token = TOKEN_PREFIX + secrets.token_urlsafe(24)
    with registry.transaction() as session:
        agency = find_agency(session, code)
        require_active(agency)
        row = EnrolmentTokenRow(agency_id=agency.id, token_sha256=_sha256(token), auto_approve=auto_approve,
                                created_at=now, expires_at=now + lifetime)
        session.add(row)
        session.flush()
        _audit(session, "enrolment.token", code, "ok", {
            "token_id": row.id, "expires_at": (now + lifetime).isoformat(), "auto_approve": auto_approve})
    return NewToken(token, code, now + lifetime, auto_approve)


def submit(registry: Registry, token: str, request: bytes, *, client: str,
           now: datetime | None = None) -> Submitted:
    """Spend ``token`` on ``request`` (checked as a request file is); audited either way."""
    from sqlalchemy import select

    from sandi.authority.enrolment import parse_request, request_fingerprint
    from sandi.registry.models import AgencyRow, EnrolmentRequestRow, EnrolmentTokenRow

    now = now or datetime.now(UTC)
    req = parse_request(request)  # format and signature, before the token is looked at
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
        elif _aware(row.expires_at) <= now:
            refusal = "expired"
        elif agency.code != req.agency:
            refusal = "other-agency"
        if refusal is None and row is not None and agency is not None:
            row.used_at = now
            handle = secrets.token_urlsafe(32)
            fp = request_fingerprint(request)
            session.add(EnrolmentRequestRow(
                handle_sha256=_sha256(handle), token_id=row.id, agency_id=agency.id, request=request,
                fingerprint=fp, status="pending", auto_approve=row.auto_approve, created_at=now))
            _audit(session, "enrolment.submit", req.agency, "ok", {
                "token_id": row.id, "request_sha256": req.sha256, "fingerprint": fp, "client": client[:100],
                "auto_approve": row.auto_approve})
            return Submitted(handle, req.agency, fp, row.auto_approve)
    with registry.transaction() as session:
        _audit(session, "enrolment.token", req.agency, "failed", {
            "reason": refusal, "client": client[:100],
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

    from sandi.registry.models import AgencyRow, EnrolmentRequestRow

    with registry.reading() as session:
        rows = session.execute(
            select(EnrolmentRequestRow, AgencyRow.code)
            .join(AgencyRow, AgencyRow.id == EnrolmentRequestRow.agency_id)
            .where(EnrolmentRequestRow.status == "pending").order_by(EnrolmentRequestRow.id)).all()
        return [PendingRequest(r.id, code, bytes(r.request), r.fingerprint, r.auto_approve, r.created_at)
                for r, code in rows]


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


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _audit(session: object, action: str, subject: str, outcome: str, details: dict[str, object]) -> None:
    from sandi.audit.registry_sink import append_in_session

    append_in_session(session, AuditEvent(  # type: ignore[arg-type]
        actor=current_operator(), action=action, subject=subject, outcome=outcome,  # type: ignore[arg-type]
        details=details))  # type: ignore[arg-type]
