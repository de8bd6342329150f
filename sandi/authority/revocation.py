"""Revocation: a certificate (or all of an agency's) is revoked with an RFC 5280 reason.

Invariants:

* reasons are the RFC 5280 names an agency certificate can have: unspecified,
  keyCompromise, affiliationChanged, superseded, cessationOfOperation,
  privilegeWithdrawn (certificateHold is not offered: sandi never un-revokes;
  cACompromise and aACompromise do not apply to agency certificates);
* a revocation is final: revoking a revoked certificate is an error naming the
  earlier revocation, and nothing changes;
* ``keyCompromise`` revokes every unrevoked certificate of the same key (a
  renewed certificate of a compromised key is no better), and voids every
  signature of that key (see :mod:`sandi.authority.validity`);
* revoking an agency revokes all its unrevoked certificates, current and retired,
  its officials' personal certificates included; revoking the agency's *current signing*
  certificate revokes its officials' certificates too (a personal certificate never
  outlives its agency's, ADR 0017). Officials' certificates go with the same reason,
  except ``keyCompromise``, which becomes ``privilegeWithdrawn`` for them: their own keys
  are not known to be compromised, so what they signed before stays valid;
* the revocations and their audit event (``key.revoke``) commit together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cryptography import x509

from sandi.audit.events import current_operator
from sandi.authority.certs import normalize_serial, whole_seconds
from sandi.authority.events import record
from sandi.authority.lookup import CODE_RE, find_agency
from sandi.errors import AlreadyExistsError, NotFoundError, UsageError
from sandi.i18n import _

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from sandi.registry import Registry
    from sandi.registry.models import CertificateRow

REASONS: dict[str, x509.ReasonFlags] = {
    "unspecified": x509.ReasonFlags.unspecified,
    "keyCompromise": x509.ReasonFlags.key_compromise,
    "affiliationChanged": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessationOfOperation": x509.ReasonFlags.cessation_of_operation,
    "privilegeWithdrawn": x509.ReasonFlags.privilege_withdrawn,
}


def check_reason(reason: str) -> str:
    if reason not in REASONS:
        raise UsageError(_("unknown revocation reason {reason!r}").format(
            reason=reason,
        ), hint=_("one of: {reasons}").format(
            reasons=', '.join(REASONS),
        ))
    return reason


#: what an official's certificates are revoked with when their agency's go for key
#: compromise (see the module's invariants)
CASCADE_FOR_KEY_COMPROMISE = "privilegeWithdrawn"


@dataclass(frozen=True)
class Revoked:
    serial: str
    agency: str
    purpose: str
    reason: str
    revoked_at: datetime
    #: the NIP of the official whose personal certificate this was (None: the agency's)
    official: str | None = None


def official_cascade_reason(reason: str) -> str:
    return CASCADE_FOR_KEY_COMPROMISE if reason == "keyCompromise" else reason


def revoke_rows(session: Session, rows: list[CertificateRow], reason: str, now: datetime,
                actor: str) -> list[Revoked]:
    """Revoke each unrevoked row with ``reason`` (no audit here: the caller records it)."""
    from sandi.registry.models import RevocationRow

    done = []
    for row in rows:
        if row.revocation is not None:
            continue
        session.add(RevocationRow(certificate_id=row.id, reason=reason, revoked_at=now, revoked_by=actor))
        done.append(Revoked(row.serial, row.agency.code, row.purpose, reason, now,
                            None if row.official is None else row.official.nip))
    session.flush()
    return done


def revoke(
    registry: Registry, target: str, reason: str, *, now: datetime | None = None, actor: str | None = None
) -> list[Revoked]:
    """Revoke the certificate with serial ``target``, or every certificate of agency ``target``."""
    from sqlalchemy import select

    from sandi.registry.models import AgencyRow, CertificateRow

    check_reason(reason)
    now = whole_seconds(now or datetime.now(UTC))
    actor = actor or current_operator()

    def work(session: Session) -> list[Revoked]:
        agency = None
        if CODE_RE.fullmatch(target):
            agency = session.execute(
                select(AgencyRow).where(AgencyRow.code == target).with_for_update()
            ).scalar_one_or_none()
        if agency is not None:
            find_agency(session, target, for_update=True)
            certs = list(session.scalars(select(CertificateRow).where(CertificateRow.agency_id == agency.id)))
            if not certs:
                raise NotFoundError(_("agency {target} has no certificates to revoke").format(target=target))
            todo = [c for c in certs if c.revocation is None and c.official_id is None]
            cascaded = [c for c in certs if c.revocation is None and c.official_id is not None]
            if not todo and not cascaded:
                raise AlreadyExistsError(
                    _("every certificate of {target} is revoked already").format(target=target),
                    hint=_("see 'sandi keys list {target}'").format(target=target),
                )
        else:
            try:
                serial = normalize_serial(target)
            except UsageError:
                raise NotFoundError(
                    _("no agency or certificate {target!r}").format(target=target),
                    hint=_("give an agency code or a certificate serial (see 'sandi keys list')"),
                ) from None
            # Lock the agency first, as issuance, renewal and rotation do: a renewal that
            # already read this certificate finishes before we revoke, or starts after and
            # sees the revocation (PostgreSQL runs READ COMMITTED).
            agency_id = session.execute(
                select(CertificateRow.agency_id).where(CertificateRow.serial == serial)
            ).scalar_one_or_none()
            if agency_id is not None:
                session.execute(select(AgencyRow.id).where(AgencyRow.id == agency_id).with_for_update())
            cert = session.execute(
                select(CertificateRow).where(CertificateRow.serial == serial).with_for_update()
            ).scalar_one_or_none()
            if cert is None:
                tsa = _revoke_tsa(session, serial, reason, now, actor)
                if tsa is not None:
                    return [tsa]
                raise NotFoundError(
                    _("no agency or certificate {target!r}").format(target=target),
                    hint=_("give an agency code or a certificate serial (see 'sandi keys list')"),
                )
            if cert.revocation is not None:
                raise AlreadyExistsError(
                    _("certificate {serial} is revoked already ({reason}, {revoked_at:%Y-%m-%d "
                      "%H:%M:%S}Z)").format(
                        serial=serial,
                        reason=cert.revocation.reason,
                        revoked_at=cert.revocation.revoked_at,
                    ),
                    hint=_("a revocation is final; nothing was changed"),
                )
            todo = [cert]
            cascaded = []
            if reason == "keyCompromise":
                # Every certificate of the compromised key goes, not just this one.
                same_key = session.scalars(
                    select(CertificateRow).where(CertificateRow.key_fingerprint == cert.key_fingerprint)
                ).all()
                todo += [c for c in same_key if c.id != cert.id and c.revocation is None]
            if cert.official_id is None and cert.purpose == "signing" and cert.state == "current":
                # The agency's signing certificate goes: so do its officials' (ADR 0017).
                cascaded = [c for c in session.scalars(select(CertificateRow).where(
                    CertificateRow.agency_id == cert.agency_id, CertificateRow.official_id.is_not(None)))
                    if c.revocation is None and c not in todo]
        done = revoke_rows(session, todo, reason, now, actor)
        done += revoke_rows(session, cascaded, official_cascade_reason(reason), now, actor)
        record(
            session,
            "key.revoke",
            target,
            {
                "reason": reason,
                "serials": [d.serial for d in done],
                **({"officials": [f"{d.official}:{d.serial}" for d in done if d.official]}
                   if any(d.official for d in done) else {}),
            },
        )
        return done

    return registry.run(work)


def _revoke_tsa(session: Session, serial: str, reason: str, now: datetime, actor: str) -> Revoked | None:
    """Revoke the time-stamp authority's certificate ``serial`` (None: no such TSA
    certificate). keyCompromise voids every token it signed (sandi.documents.timestamps)."""
    from sqlalchemy import select

    from sandi.registry.models import TsaCertificateRow

    row = session.execute(
        select(TsaCertificateRow).where(TsaCertificateRow.serial == serial).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        return None
    if row.revoked_at is not None:
        raise AlreadyExistsError(
            _("certificate {serial} is revoked already ({reason}, {revoked_at:%Y-%m-%d "
              "%H:%M:%S}Z)").format(serial=serial, reason=row.revocation_reason, revoked_at=row.revoked_at),
            hint=_("a revocation is final; nothing was changed"),
        )
    row.revoked_at, row.revocation_reason, row.revoked_by = now, reason, actor
    session.flush()
    record(session, "key.revoke", serial, {"reason": reason, "serials": [serial], "purpose": "timestamping"})
    return Revoked(serial, "-", "timestamping", reason, now)
