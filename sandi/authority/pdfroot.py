"""The PDF root and the ``pdf-signing`` certificates it issues (ADR 0014, decision 3).

PDF viewers (Acrobat, poppler/NSS) do not validate Ed25519, so signatures inside PDFs use
ECDSA P-256 / SHA-256 under a second, province-wide CA: the **PDF root**.

Invariants:

* there is at most one PDF root per registry (``authority.pdf_root_cert_pem``); creating a
  second one is refused. Its key lives only in the authority's key store, under
  ``pdf-root.ecdsa-p256.<fp16>`` (on a PKCS#11 home: generated on the token, like the
  root key; an agency's ``pdf-signing`` key too when its profile says ``token = true``);
* the Ed25519 root cannot certify the PDF root (its pathLen is 0); it vouches for it by
  signing the directory that publishes the PDF root's certificate, so sandi trusts the
  PDF root only through a verified directory;
* :func:`load_pdf_issuer` hands out a signer only if the stored key's public key is the
  one in the registry's PDF root certificate;
* a ``pdf-signing`` certificate is issued only to an existing, active agency, from the
  PDF root, for a P-256 key generated into the key store inside the issuing
  transaction (removed again if it fails), with one ``key.issue`` audit entry; at most
  one is current per agency (a new one retires the previous only when asked to);
* the PDF root's CRL (:func:`sandi.authority.crl.build_crl` with a :class:`PdfIssuer`)
  lists exactly the revoked certificates of :data:`PDF_PURPOSES`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sandi.authority.certs import build_root_certificate, load_pem, pdf_root_subject, to_pem, whole_seconds
from sandi.authority.events import record
from sandi.authority.validity import PDF_PURPOSES
from sandi.errors import AlreadyExistsError, ConfigError, CredentialError, NotFoundError
from sandi.i18n import _
from sandi.keystore.keys import P256Signer, certificate_public_key_bytes, fingerprint

if TYPE_CHECKING:
    from cryptography import x509
    from sqlalchemy.orm import Session

    from sandi.authority.issuance import IssueResult, KeyWrites
    from sandi.authority.profiles import KeyProfile
    from sandi.home import Home
    from sandi.keystore.base import KeyStore
    from sandi.registry import Registry
    from sandi.registry.models import AgencyRow, CertificateRow

PDF_ROOT_OWNER = "pdf-root"
PDF_ROOT_VALIDITY_DAYS = 20 * 365
PDF_SIGNING = "pdf-signing"
assert PDF_SIGNING in PDF_PURPOSES


@dataclass(frozen=True, repr=False)
class PdfIssuer:
    """The PDF root's key and certificate: what signs ``pdf-signing`` certificates and
    the PDF root's CRL."""

    key: P256Signer
    cert: x509.Certificate
    province: str
    #: where pdf-signing certificates say the PDF root's CRL and certificate are (home's base_url)
    base_url: str | None = None

    def __repr__(self) -> str:
        return f"PdfIssuer({self.province!r}, pdf root={self.key.fingerprint[:16]}…)"


@dataclass(frozen=True)
class PdfRootInfo:
    province: str
    fingerprint: str
    key_ref: str
    cert_pem: str
    key_location: str


def _no_pdf_root() -> NotFoundError:
    return NotFoundError(
        _("this authority has no PDF root yet"),
        hint=_("create it once with 'sandi pdf-root init'"),
    )


def _require_authority(home: Home) -> None:
    if home.load_config().role != "authority":
        raise ConfigError(_("this home is a workstation: only the authority holds the PDF root"))


def create_pdf_root(
    home: Home,
    registry: Registry,
    keystore: KeyStore,
    *,
    validity_days: int = PDF_ROOT_VALIDITY_DAYS,
    now: datetime | None = None,
) -> PdfRootInfo:
    """Create the PDF root (a P-256 key in ``keystore`` and its self-signed CA certificate),
    record it in the registry and log ``pdfroot.init`` in the same transaction.

    The key is removed again if anything after its generation fails."""
    from sandi.registry.models import AuthorityRow

    _require_authority(home)
    now = whole_seconds(now or datetime.now(UTC))
    with registry.reading() as session:
        existing = session.get(AuthorityRow, 1)
        if existing is None:
            raise NotFoundError(_("this registry has no authority yet"), hint=_("run 'sandi init'"))
        if existing.pdf_root_cert_pem is not None:
            raise AlreadyExistsError(_("this authority has a PDF root already"),
                                     hint=_("'sandi pdf-root show' prints its certificate"))
        province = existing.province
    ref, key = keystore.new_p256_key(PDF_ROOT_OWNER, on_token=keystore.hardware)
    try:
        cert = build_root_certificate(key, province, not_before=now,
                                      not_after=now + timedelta(days=validity_days),
                                      subject=pdf_root_subject(province))
        pem = to_pem(cert)
        with registry.transaction() as session:
            row = session.get(AuthorityRow, 1, with_for_update=True)
            if row is None:
                raise NotFoundError(_("this registry has no authority yet"), hint=_("run 'sandi init'"))
            if row.pdf_root_cert_pem is not None:  # another operator was faster
                raise AlreadyExistsError(_("this authority has a PDF root already"),
                                         hint=_("'sandi pdf-root show' prints its certificate"))
            row.pdf_root_cert_pem = pem
            row.pdf_root_key_ref = ref
            record(session, "pdfroot.init", province, {
                "pdf_root_fingerprint": key.fingerprint, "pdf_root_serial": f"{cert.serial_number:x}",
                "algorithm": "ecdsa-p256", "key_location": keystore.location(ref)})
    except BaseException:
        with contextlib.suppress(Exception):
            keystore.delete(ref)
        raise
    return PdfRootInfo(province, key.fingerprint, ref, pem, keystore.location(ref))


def pdf_root_pem(session: Session) -> str | None:
    """The PDF root certificate (PEM) the registry holds, or None before ``pdf-root init``."""
    from sandi.registry.models import AuthorityRow

    row = session.get(AuthorityRow, 1)
    return None if row is None else row.pdf_root_cert_pem


def load_pdf_root_certificate(registry: Registry) -> x509.Certificate:
    """The PDF root certificate from the registry; NotFoundError before ``pdf-root init``."""
    with registry.reading() as session:
        pem = pdf_root_pem(session)
    if pem is None:
        raise _no_pdf_root()
    return load_pem(pem, what="PDF root")


def load_pdf_issuer(home: Home, registry: Registry, keystore: KeyStore) -> PdfIssuer:
    """What signs as the PDF root (the key stays in its store), checked against the
    registry's PDF root certificate."""
    from sandi.registry.models import AuthorityRow

    _require_authority(home)
    with registry.reading() as session:
        row = session.get(AuthorityRow, 1)
        if row is None or row.pdf_root_cert_pem is None or row.pdf_root_key_ref is None:
            raise _no_pdf_root()
        pem, ref, province = row.pdf_root_cert_pem, row.pdf_root_key_ref, row.province
    cert = load_pem(pem, what="PDF root")
    key = keystore.p256_signer(ref)
    if key.fingerprint != fingerprint(certificate_public_key_bytes(cert)):
        raise CredentialError(
            _("the stored PDF root key does not match the PDF root certificate"),
            hint=_("the key folder was tampered with; restore it from a backup"),
        )
    from sandi.authority.certs import check_base_url

    base = home.load_config().extra.get("base_url")
    return PdfIssuer(key=key, cert=cert, province=province,
                     base_url=check_base_url(base) if isinstance(base, str) and base else None)


def pdf_issuer_if_any(home: Home, registry: Registry, keystore: KeyStore) -> PdfIssuer | None:
    """The PDF issuer when the authority has a PDF root (what every publication of the
    directory needs for the PDF root's CRL), else None."""
    with registry.reading() as session:
        if pdf_root_pem(session) is None:
            return None
    return load_pdf_issuer(home, registry, keystore)


def current_pdf_certificates(session: Session, agency: AgencyRow) -> list[CertificateRow]:
    """The agency's current ``pdf-signing`` certificates."""
    from sqlalchemy import select

    from sandi.registry.models import CertificateRow

    return list(session.scalars(
        select(CertificateRow).where(CertificateRow.agency_id == agency.id, CertificateRow.state == "current",
                                     CertificateRow.purpose == PDF_SIGNING)
    ).all())


def issue_pdf_signing(
    registry: Registry,
    keystore: KeyStore,
    pdf_issuer: PdfIssuer,
    code: str,
    *,
    profile: KeyProfile | None = None,
    replace: bool = False,
    now: datetime | None = None,
) -> IssueResult:
    """Generate an agency's P-256 ``pdf-signing`` key into ``keystore`` and certify it from
    the PDF root (validity: the profile's ``[signing] validity_days``).

    An agency with a current ``pdf-signing`` certificate gets a new one only with
    ``replace`` (the old one is then retired: it still verifies what it signed)."""
    from sandi.authority.issuance import IssueResult, require_active, with_new_keys
    from sandi.authority.lookup import find_agency
    from sandi.authority.profiles import load_profile
    from sandi.authority.records import cert_info

    profile = profile or load_profile()
    now = whole_seconds(now or datetime.now(UTC))

    def work(writes: KeyWrites) -> IssueResult:
        with registry.transaction() as session:
            agency = find_agency(session, code, for_update=True)
            require_active(agency)
            current = current_pdf_certificates(session, agency)
            if current and not replace:
                raise AlreadyExistsError(
                    _("agency {code} has a PDF signing certificate already").format(code=code),
                    hint=_("'sandi keys rotate {code} --purpose pdf-signing' replaces it").format(code=code),
                )
            ref, key = writes.new_p256(code, on_token=profile.signing_on_token)
            row, old = certify_pdf_key(session, pdf_issuer, agency, key.public_key_bytes(), profile=profile,
                                       now=now, replace=True)
            record(session, "key.issue", code, {
                "profile": profile.name, "flow": "central", "purpose": PDF_SIGNING,
                **({"retired": old} if old else {}),
                "certificates": [{"serial": row.serial, "purpose": PDF_SIGNING,
                                  "key_fingerprint": row.key_fingerprint}],
            })
            return IssueResult(code, profile.name, [cert_info(row, code)], [ref], old)

    return registry.retrying(lambda: with_new_keys(keystore, work))


def certify_pdf_key(session: Session, pdf_issuer: PdfIssuer, agency: AgencyRow, public_key: bytes, *,
                    profile: KeyProfile, now: datetime, replace: bool) -> tuple[CertificateRow, list[str]]:
    """Issue and insert the ``pdf-signing`` certificate of ``agency`` for a P-256 public key
    (65-byte point), retiring its current one when ``replace`` (else AlreadyExistsError).
    Returns the row and the retired serials; no audit here (the caller records it)."""
    from sandi.authority.certs import issue_certificate, pdf_publication_urls
    from sandi.authority.issuance import current_row, retire

    code = agency.code
    crl_url, issuer_url = pdf_publication_urls(pdf_issuer.base_url)
    current = current_pdf_certificates(session, agency)
    if current and not replace:
        raise AlreadyExistsError(
            _("agency {code} has a PDF signing certificate already").format(code=code),
            hint=_("'sandi keys rotate {code} --purpose pdf-signing' replaces it").format(code=code),
        )
    old = retire(current, now)
    _cn, ou = profile.subject_fields(code=code, name=agency.name, purpose=PDF_SIGNING,
                                     province=pdf_issuer.province)
    issued = issue_certificate(
        pdf_issuer.key, pdf_issuer.cert, purpose=PDF_SIGNING, public_key=public_key,
        # what a viewer shows as the signer: the agency's name
        common_name=ou, organizational_unit=code, province=pdf_issuer.province,
        not_before=now, not_after=now + timedelta(days=profile.signing_validity_days),
        full_name=" ".join(agency.name.split()),
        crl_url=crl_url, ca_issuers_url=issuer_url,
    )
    row = current_row(issued, agency_id=agency.id, profile=profile.name, issued_at=now)
    session.add(row)
    session.flush()
    return row, old
