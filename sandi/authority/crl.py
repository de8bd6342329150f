"""The certificate revocation list, signed by the root.

Invariants:

* the root's CRL lists every revoked agency and time-stamp authority certificate it
  issued, and the PDF root's
  CRL every revoked certificate of :data:`PDF_PURPOSES` (ADR 0014: each issuer
  publishes its own), expired ones too (a
  keyCompromise must keep voiding old signatures), each with its revocation time
  and reason code (RFC 5280: no reasonCode entry for ``unspecified``);
* it carries the root's authority key identifier and a CRL number that strictly
  increases (RFC 5280, section 5.2.3): the registry's counter row (``crl_counter``),
  locked while the number is taken, gives the larger of the last number + 1 and the
  publication time in whole seconds x 10^6 (the scale numbers had before the
  counter), so two CRLs built in one second still get two numbers, in order;
* ``openssl crl -CAfile root.pem -verify`` accepts it;
* publishing writes ``crl.pem`` into the home (and the requested output) atomically
  and records ``crl.publish`` in the same transaction; a failure writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from sandi.authority.certs import whole_seconds
from sandi.authority.events import record
from sandi.authority.revocation import REASONS
from sandi.authority.validity import PDF_PURPOSES
from sandi.fsutil import AtomicOutput
from sandi.i18n import _

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from sandi.authority.issuance import Issuer
    from sandi.authority.pdfroot import PdfIssuer
    from sandi.home import Home
    from sandi.registry import Registry

CRL_NAME = "crl.pem"
DEFAULT_NEXT_UPDATE_DAYS = 7


@dataclass(frozen=True)
class CrlInfo:
    number: int
    this_update: datetime
    next_update: datetime
    revoked: int
    pem: bytes
    written: list[str]


def build_crl(
    session: Session, issuer: Issuer | PdfIssuer, *, now: datetime, next_update_days: int,
) -> tuple[bytes, int, int]:
    """(PEM, CRL number, count of revoked entries) from the registry's revocations of the
    certificates ``issuer`` issued (the root, or the PDF root: :class:`PdfIssuer`)."""
    from sqlalchemy import select

    from sandi.authority.pdfroot import PdfIssuer
    from sandi.registry.models import CertificateRow, RevocationRow

    now = whole_seconds(now)
    number = next_crl_number(session, now)
    root_ski = issuer.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(now)
        .next_update(now + timedelta(days=next_update_days))
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski), critical=False
        )
        .add_extension(x509.CRLNumber(number), critical=False)
    )
    rows = session.execute(
        select(CertificateRow.serial, RevocationRow.reason, RevocationRow.revoked_at)
        .join(RevocationRow, RevocationRow.certificate_id == CertificateRow.id)
        .where(CertificateRow.purpose.in_(PDF_PURPOSES) if isinstance(issuer, PdfIssuer)
               else CertificateRow.purpose.not_in(PDF_PURPOSES))
        .order_by(RevocationRow.revoked_at, CertificateRow.serial)
    ).all()
    from sandi.registry.models import TsaCertificateRow

    # The TSA certificate is the root's (not the PDF root's): only on the root's CRL.
    tsa_rows = [] if isinstance(issuer, PdfIssuer) else session.execute(
        select(TsaCertificateRow.serial, TsaCertificateRow.revocation_reason, TsaCertificateRow.revoked_at)
        .where(TsaCertificateRow.revoked_at.is_not(None))
    ).all()
    entries: list[tuple[str, str, datetime]] = [(s, r, t) for s, r, t in rows]
    entries += [(s, r or "unspecified", t) for s, r, t in tsa_rows if t is not None]
    entries.sort(key=lambda e: (e[2], e[0]))
    for serial, reason, revoked_at in entries:
        entry = x509.RevokedCertificateBuilder().serial_number(int(serial, 16)).revocation_date(revoked_at)
        if reason != "unspecified":
            entry = entry.add_extension(x509.CRLReason(REASONS[reason]), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    crl = issuer.key.sign_x509(builder)
    assert isinstance(crl, x509.CertificateRevocationList)
    return crl.public_bytes(serialization.Encoding.PEM), number, len(entries)


def next_crl_number(session: Session, now: datetime) -> int:
    """Take the next CRL number (inside the caller's transaction, which holds the row
    lock until it ends: a concurrent build waits, then takes a larger number)."""
    from sqlalchemy import select

    from sandi.errors import RegistryError
    from sandi.i18n import _
    from sandi.registry.models import CrlCounterRow

    counter = session.execute(
        select(CrlCounterRow).where(CrlCounterRow.id == 1).with_for_update()
    ).scalar_one_or_none()
    if counter is None:
        raise RegistryError(_("the registry has no CRL counter"),
                            hint=_("run 'sandi db upgrade' (back the database up first)"))
    number = max(int(counter.last_number) + 1, int(now.timestamp()) * 1_000_000)
    counter.last_number = number
    session.flush()
    return number


def publish_crl(
    registry: Registry,
    issuer: Issuer,
    home: Home,
    *,
    output: Path | None = None,
    overwrite_output: bool = False,
    next_update_days: int = DEFAULT_NEXT_UPDATE_DAYS,
    now: datetime | None = None,
) -> CrlInfo:
    """Build the CRL, write it to the home (and ``output``, replaced only with
    ``overwrite_output``), and log ``crl.publish``."""
    now = whole_seconds(now or datetime.now(UTC))
    targets = [home.path / CRL_NAME] + ([output] if output is not None else [])
    with registry.transaction() as session:
        pem, number, count = build_crl(session, issuer, now=now, next_update_days=next_update_days)
        record(session, "crl.publish", "crl", {"number": number, "revoked": count})
        outs = [AtomicOutput(t, mode=0o644, overwrite=(t == targets[0] or overwrite_output))
                for t in targets]
        try:
            for out in outs:
                out.file.write(pem)
            for out in outs:
                out.commit()
        finally:
            for out in outs:
                out.discard()  # after commit this only tidies up
    return CrlInfo(number, now, now + timedelta(days=next_update_days), count, pem, [str(t) for t in targets])


def load_crl(pem: bytes) -> x509.CertificateRevocationList:
    from sandi.errors import FormatError

    try:
        return x509.load_pem_x509_crl(pem)
    except ValueError:
        raise FormatError(_("not a PEM certificate revocation list")) from None
