"""X.509 certificates: the root CA and the agencies' signing and encryption certificates.

Invariants:

* the root is a self-signed Ed25519 CA: C=ID, O=<province>, CN="<province> Root CA",
  basicConstraints CA with pathlen 0 (critical), keyUsage keyCertSign + cRLSign
  (critical), subject and authority key identifiers;
* an agency certificate is an end entity (basicConstraints CA=false, critical)
  issued by the root, with exactly the key usage of its purpose (signing:
  digitalSignature + nonRepudiation; encryption and encryption-pq: keyAgreement),
  both critical, extended key usage emailProtection, the SKI of its key and the
  root's AKI;
* a hybrid post-quantum (``encryption-pq``) certificate binds the 1216-byte
  ML-KEM-768 + X25519 key: its subject public key is the X25519 half and a *critical*
  private extension (``HYBRID_KEY_OID``) carries the whole key, so a verifier that
  does not know the extension refuses the certificate instead of taking it for a
  plain X25519 key (ADR 0011);
* the PDF root (ADR 0014) is a self-signed ECDSA P-256 CA: C=ID, O=<province>,
  CN="<province> PDF Root CA", the same constraints and key usage as the root, signed
  ecdsa-with-SHA256; it issues only ``pdf-signing`` certificates (P-256 keys,
  digitalSignature + nonRepudiation, emailProtection, as the agency signing ones), which
  viewers (Acrobat, poppler/NSS) validate once the PDF root is installed as a trust anchor;
* serials are random positive 159-bit numbers (``x509.random_serial_number``),
  written as 40 lower-case hex digits everywhere sandi stores or shows them;
* times are whole seconds in UTC (X.509 has no fractions), so the registry and the
  certificate always agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from sandi.errors import FormatError, UsageError
from sandi.i18n import N_, _
from sandi.keystore.keys import (
    HYBRID_KEY_OID,
    HYBRID_PUBLIC_KEY_SIZE,
    P256Signer,
    Signer,
    certificate_public_key_bytes,
    fingerprint,
    hybrid_key_extension,
    hybrid_key_extension_value,
    parsed_in_full,
)

PURPOSES = ("signing", "encryption", "encryption-pq", "pdf-signing")
COUNTRY = "ID"
SERIAL_HEX_DIGITS = 40
_SERIAL_RE = re.compile(r"^(?:0x)?[0-9a-fA-F:]{1,64}$")


def whole_seconds(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise ValueError("aware UTC datetimes only")
    return t.astimezone(UTC).replace(microsecond=0)


def serial_hex(serial: int) -> str:
    return f"{serial:0{SERIAL_HEX_DIGITS}x}"


def normalize_serial(text: str) -> str:
    """Accept a serial as sandi, openssl (``AB:CD``) or ``0x...`` write it."""
    if not _SERIAL_RE.fullmatch(text):
        raise UsageError(_("not a certificate serial: {text!r}").format(text=text))
    value = int(text.lower().removeprefix("0x").replace(":", ""), 16)
    return serial_hex(value)


def root_subject(province: str) -> x509.Name:
    if not 1 <= len(province) <= 64:
        raise UsageError(_("the province name must be 1..64 characters (X.520 organisation name)"))
    cn = f"{province} Root CA"[:64]
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, COUNTRY),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, province),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def pdf_root_subject(province: str) -> x509.Name:
    if not 1 <= len(province) <= 64:
        raise UsageError(_("the province name must be 1..64 characters (X.520 organisation name)"))
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, COUNTRY),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, province),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{province} PDF Root CA"[:64]),
        ]
    )


def build_root_certificate(
    key: Signer | P256Signer, province: str, *, not_before: datetime, not_after: datetime,
    subject: x509.Name | None = None,
) -> x509.Certificate:
    """A self-signed CA certificate: the root (Ed25519 ``key``) or, with a P-256 ``key``
    and :func:`pdf_root_subject`, the PDF root."""
    subject = subject or root_subject(province)
    public = key.public_key()
    ski = x509.SubjectKeyIdentifier.from_public_key(public)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(whole_seconds(not_before))
        .not_valid_after(whole_seconds(not_after))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
    )
    cert = key.sign_x509(builder)
    assert isinstance(cert, x509.Certificate)
    return cert


@dataclass(frozen=True)
class IssuedCertificate:
    """A freshly issued agency certificate and what the registry records of it."""

    serial: str
    purpose: str
    public_key: bytes
    key_fingerprint: str
    pem: str
    not_before: datetime
    not_after: datetime


#: X.520 description (2.5.4.13): the agency's full name where the OU had to shorten it
DESCRIPTION_OID = x509.ObjectIdentifier("2.5.4.13")
MAX_DESCRIPTION = 1024


def publication_urls(base_url: str | None) -> tuple[str | None, str | None]:
    """(CRL URL, root certificate URL) under the authority's base URL, or (None, None).

    The names are fixed so that certificates issued today point where ``sandi serve``
    (and any static web server holding ``sandi crl`` output) answers: ``BASE/crl.der``
    and ``BASE/root.der``, both DER as RFC 5280 §4.2.1.13 and §4.2.2.1 expect over HTTP.
    """
    if not base_url:
        return None, None
    base = base_url.rstrip("/")
    return f"{base}/crl.der", f"{base}/root.der"


def pdf_publication_urls(base_url: str | None) -> tuple[str | None, str | None]:
    """(CRL URL, issuer URL) of the PDF root under the base URL (ADR 0014): ``BASE/pdf-crl.der``
    and ``BASE/pdf-root.der``, where ``sandi serve`` answers; (None, None) without a base URL."""
    if not base_url:
        return None, None
    base = base_url.rstrip("/")
    return f"{base}/pdf-crl.der", f"{base}/pdf-root.der"


def check_base_url(value: str) -> str:
    """A base URL certificates may name: http(s), a host, no query or fragment."""
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise UsageError(
            _("{url!r} is not a base URL for publication").format(url=value),
            hint=_("e.g. http://pki.bantenprov.go.id/sandi (http is usual: CRLs and roots are signed)"),
        )
    return value.rstrip("/")


def issue_certificate(
    root_key: Signer | P256Signer,
    root_cert: x509.Certificate,
    *,
    purpose: str,
    public_key: bytes,
    common_name: str,
    organizational_unit: str,
    province: str,
    not_before: datetime,
    not_after: datetime,
    full_name: str | None = None,
    crl_url: str | None = None,
    ca_issuers_url: str | None = None,
    subject: x509.Name | None = None,
) -> IssuedCertificate:
    """Issue one agency certificate for a raw public key (32 bytes; 1216 for encryption-pq;
    the 65-byte uncompressed point for pdf-signing, issued by the PDF root).

    ``full_name``: the agency's name when the OU had to shorten it; it goes into the
    subject's ``description`` attribute (X.520 allows 1024 characters there).
    ``crl_url`` / ``ca_issuers_url``: where relying parties fetch the CRL and the root
    (CRL distribution point, authority information access), when the authority
    publishes at a base URL. ``subject``: a whole subject instead of the agency's (an
    official's personal certificate, :func:`official_subject`).
    """
    if purpose not in PURPOSES:
        raise UsageError(_("unknown certificate purpose {purpose!r}").format(purpose=purpose))
    subject_key: Ed25519PublicKey | X25519PublicKey | ec.EllipticCurvePublicKey
    hybrid: x509.UnrecognizedExtension | None = None
    if purpose == "pdf-signing":
        try:
            subject_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public_key)
        except ValueError:
            raise UsageError(_("a pdf-signing public key is an uncompressed P-256 point")) from None
        usage = _key_usage(digital_signature=True, non_repudiation=True)
    elif purpose == "signing":
        subject_key = Ed25519PublicKey.from_public_bytes(public_key)
        usage = _key_usage(digital_signature=True, non_repudiation=True)
    elif purpose == "encryption":
        subject_key = X25519PublicKey.from_public_bytes(public_key)
        usage = _key_usage(key_agreement=True)
    else:
        if len(public_key) != HYBRID_PUBLIC_KEY_SIZE:
            raise UsageError(_("a hybrid post-quantum public key is 1216 bytes"))
        subject_key = X25519PublicKey.from_public_bytes(public_key[-32:])
        usage = _key_usage(key_agreement=True)
        hybrid = x509.UnrecognizedExtension(
            x509.ObjectIdentifier(HYBRID_KEY_OID), hybrid_key_extension_value(public_key)
        )
    root_ski = root_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    attributes = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, COUNTRY),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, province[:64]),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, organizational_unit),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ]
    if full_name and full_name != organizational_unit:
        if len(full_name) > MAX_DESCRIPTION:
            raise UsageError(_("an agency name is at most {limit} characters").format(limit=MAX_DESCRIPTION))
        attributes.append(x509.NameAttribute(DESCRIPTION_OID, full_name))
    if subject is None:
        subject = x509.Name(attributes)
    serial = x509.random_serial_number()
    nb, na = whole_seconds(not_before), whole_seconds(not_after)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(root_cert.subject)
        .public_key(subject_key)
        .serial_number(serial)
        .not_valid_before(nb)
        .not_valid_after(na)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(subject_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski), critical=False
        )
    )
    if hybrid is not None:
        builder = builder.add_extension(hybrid, critical=True)
    if crl_url:
        builder = builder.add_extension(
            x509.CRLDistributionPoints(
                [x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)]
            ),
            critical=False,
        )
    if ca_issuers_url:
        builder = builder.add_extension(
            x509.AuthorityInformationAccess(
                [x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS,
                                        x509.UniformResourceIdentifier(ca_issuers_url))]
            ),
            critical=False,
        )
    cert = root_key.sign_x509(builder)
    assert isinstance(cert, x509.Certificate)
    return IssuedCertificate(
        serial=serial_hex(serial),
        purpose=purpose,
        public_key=public_key,
        key_fingerprint=fingerprint(public_key),
        pem=to_pem(cert),
        not_before=nb,
        not_after=na,
    )


#: X.520 upper bounds (RFC 5280 appendix A): name, title and organisation are at most 64
UB_NAME = 64


def official_subject(*, name: str, title: str, nip: str, agency_code: str, agency_name: str,
                     province: str) -> x509.Name:
    """The subject of an official's personal certificate: C=ID, O=<agency name>,
    OU=<agency code>, title=<jabatan>, CN=<nama>, serialNumber=<NIP> (X.520 attributes),
    and the agency's full name and the province in ``description`` when O had to shorten it."""
    org = agency_name[:UB_NAME]
    attributes = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, COUNTRY),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, agency_code),
        x509.NameAttribute(NameOID.TITLE, title),
        x509.NameAttribute(NameOID.COMMON_NAME, name),
        x509.NameAttribute(NameOID.SERIAL_NUMBER, nip),
    ]
    description = f"{agency_name}, {province}"
    if len(description) <= MAX_DESCRIPTION:
        attributes.append(x509.NameAttribute(DESCRIPTION_OID, description))
    return x509.Name(attributes)


def to_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def load_pem(pem: str | bytes, *, what: str = N_("certificate")) -> x509.Certificate:
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    try:
        return parsed_in_full(x509.load_pem_x509_certificate(data))
    except (ValueError, x509.InvalidVersion):
        raise FormatError(_("{what} is not a PEM X.509 certificate").format(what=_(what))) from None


def readable_public_key(cert: x509.Certificate) -> Any:
    """The certificate's public key; FormatError when cryptography cannot read it."""
    from cryptography.exceptions import UnsupportedAlgorithm

    try:
        return cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        raise FormatError(_("the certificate's public key cannot be read")) from None


def certificate_purpose(cert: x509.Certificate) -> str:
    """``signing``, ``encryption``, ``encryption-pq`` or ``pdf-signing``, from the key type
    (FormatError for anything else)."""
    key = readable_public_key(cert)
    if isinstance(key, Ed25519PublicKey):
        return "signing"
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return "pdf-signing"
    if isinstance(key, X25519PublicKey):
        return "encryption" if hybrid_key_extension(cert) is None else "encryption-pq"
    raise FormatError(_("not a sandi agency certificate (neither Ed25519 nor X25519)"))


def issued_by(cert: x509.Certificate, root: x509.Certificate) -> bool:
    """True if ``root``'s key signed ``cert`` and the issuer name matches."""
    from cryptography.exceptions import InvalidSignature

    try:
        cert.verify_directly_issued_by(root)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def public_key_of(cert: x509.Certificate) -> bytes:
    return certificate_public_key_bytes(cert)


def _key_usage(
    *,
    digital_signature: bool = False,
    non_repudiation: bool = False,
    key_agreement: bool = False,
    cert_sign: bool = False,
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=non_repudiation,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=key_agreement,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
