"""The authority's time-stamp authority (TSA, RFC 3161): its key and certificate.

Invariants:

* the TSA key is ECDSA P-256 (OpenSSL cannot make or verify Ed25519 TSA tokens, ADR 0013
  decision 8); it is generated here, written once (O_EXCL, 0600) as unencrypted PKCS#8
  PEM for the server's unprivileged user, and never stored in the key store or the
  registry: it is the only private key ``sandi serve`` holds;
* its certificate is an end entity issued by the Ed25519 root: basicConstraints CA=false
  (critical), keyUsage digitalSignature (critical), extendedKeyUsage timeStamping
  (critical, the only purpose, as RFC 3161 section 2.3 requires), the root's AKI, the
  publication URLs when the authority has a base URL; never longer-lived than the root;
* the certificate, its registry row (``tsa_certificates``) and the audit entry
  (``tsa.issue``) commit together; if the registry refuses, the files just written are
  removed; a revocation (``sandi keys revoke SERIAL``) marks the row, puts the serial on
  the root's CRL and into the directory (``timestamp_authorities``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from sandi.authority.certs import COUNTRY, publication_urls, serial_hex, to_pem, whole_seconds
from sandi.authority.events import record
from sandi.errors import AlreadyExistsError, NotFoundError, UsageError
from sandi.fsutil import atomic_write, write_new_secret
from sandi.i18n import _

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from sandi.authority.issuance import Issuer
    from sandi.registry import Registry
    from sandi.registry.models import TsaCertificateRow

KEY_NAME = "tsa.key"
CERT_NAME = "tsa.pem"
DEFAULT_DAYS = 730
MAX_DAYS = 3650


@dataclass(frozen=True)
class TsaIssued:
    serial: str
    key_fingerprint: str
    not_before: datetime
    not_after: datetime
    key_path: Path
    cert_path: Path


def point_fingerprint(key: ec.EllipticCurvePublicKey) -> str:
    """SHA-256 (hex) of the uncompressed point, sandi's fingerprint of a P-256 key."""
    raw = key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return hashlib.sha256(raw).hexdigest()


def build_tsa_certificate(issuer: Issuer, public_key: ec.EllipticCurvePublicKey, *, not_before: datetime,
                          not_after: datetime) -> x509.Certificate:
    root_ski = issuer.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, COUNTRY),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, issuer.province[:64]),
        x509.NameAttribute(NameOID.COMMON_NAME, f"{issuer.province} Time-Stamp Authority"[:64]),
    ])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski),
                       critical=False)
    )
    crl_url, root_url = publication_urls(issuer.base_url)
    if crl_url:
        builder = builder.add_extension(x509.CRLDistributionPoints(
            [x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)]),
            critical=False)
    if root_url:
        builder = builder.add_extension(x509.AuthorityInformationAccess(
            [x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS,
                                    x509.UniformResourceIdentifier(root_url))]), critical=False)
    cert = issuer.key.sign_x509(builder)
    assert isinstance(cert, x509.Certificate)
    return cert


def issue_tsa(registry: Registry, issuer: Issuer, out_dir: Path, *, days: int = DEFAULT_DAYS,
              now: datetime | None = None) -> TsaIssued:
    """Generate the TSA key, certify it with the root, write ``out_dir/tsa.key`` (0600,
    new) and ``out_dir/tsa.pem``, record it and log ``tsa.issue``."""
    from sandi.registry.models import TsaCertificateRow

    if not 1 <= days <= MAX_DAYS:
        raise UsageError(_("a TSA certificate lives 1 to {max} days").format(max=MAX_DAYS))
    if not out_dir.is_dir():
        raise NotFoundError(_("{path}: no such folder").format(path=out_dir),
                            hint=_("create it first (it should belong to the server's user)"))
    key_path, cert_path = out_dir / KEY_NAME, out_dir / CERT_NAME
    for path in (key_path, cert_path):
        if path.exists():
            raise AlreadyExistsError(_("{path} exists already").format(path=path),
                                     hint=_("choose another folder; sandi never overwrites a key file"))
    now = whole_seconds(now or datetime.now(UTC))
    not_after = min(now + timedelta(days=days), issuer.cert.not_valid_after_utc)
    if not_after <= now:
        raise UsageError(_("the root certificate has expired; it cannot certify a TSA key"))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = build_tsa_certificate(issuer, key.public_key(), not_before=now, not_after=not_after)
    serial = serial_hex(cert.serial_number)
    fingerprint = point_fingerprint(key.public_key())
    pkcs8 = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())

    def once() -> None:
        written: list[Path] = []
        try:
            with registry.transaction() as session:
                session.add(TsaCertificateRow(serial=serial, key_fingerprint=fingerprint,
                                              cert_pem=to_pem(cert), not_before=now, not_after=not_after,
                                              issued_at=now))
                session.flush()
                record(session, "tsa.issue", serial, {"key_fingerprint": fingerprint,
                                                      "not_after": not_after.isoformat()})
                # The files are written last inside the transaction: if the registry
                # then refuses the commit, they are removed below (and written again
                # if the registry asks for a retry).
                write_new_secret(key_path, pkcs8)
                written.append(key_path)
                atomic_write(cert_path, to_pem(cert).encode("ascii"), overwrite=False)
                written.append(cert_path)
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise

    registry.retrying(once)
    return TsaIssued(serial, fingerprint, now, not_after, key_path, cert_path)


def tsa_rows(session: Session) -> list[TsaCertificateRow]:
    from sqlalchemy import select

    from sandi.registry.models import TsaCertificateRow

    return list(session.scalars(select(TsaCertificateRow).order_by(TsaCertificateRow.issued_at,
                                                                    TsaCertificateRow.serial)))


def load_tsa_files(key_path: Path, cert_path: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """The server's TSA key and certificate; ConfigError unless the key is a private
    (0600) P-256 key and the certificate is for it."""
    from sandi.errors import ConfigError
    from sandi.fsutil import check_private_file

    try:
        check_private_file(key_path)
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(_("cannot read the TSA key or certificate: {reason}").format(
            reason=type(exc).__name__), hint=_("issue them with 'sandi keys tsa --out DIR'")) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ConfigError(_("{path} is not an ECDSA P-256 key").format(path=key_path))
    public = cert.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey) or public != key.public_key():
        raise ConfigError(_("{cert} is not the certificate of {key}").format(cert=cert_path, key=key_path))
    return key, cert
