"""Importing a private key bundle into a home (the agency's side of central issuance).

Invariants:

* the bundle opens only with its export passphrase (wrong: CredentialError);
* before any key is stored, every key is checked against its fingerprint and its
  reference, every certificate against the root, and the root against the root
  fingerprint this home trusts; a bundle for another agency than the home's is refused;
* keys already in the store are left alone (reported), new ones are added; if
  anything fails half-way the keys added by this import are removed again;
* the import is recorded in the home's audit journal (``key.import``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sandi.audit.events import AuditEvent, current_operator
from sandi.authority.bundle import KeyBundle, open_bundle
from sandi.authority.certs import certificate_purpose, issued_by, load_pem, public_key_of
from sandi.authority.installed import CertToInstall, check_root, install_certificates
from sandi.authority.validity import PDF_PURPOSES
from sandi.errors import UsageError, VerificationError
from sandi.i18n import N_, _
from sandi.keystore.base import KeyStore, key_ref, kind_of_purpose, secret_fingerprint
from sandi.keystore.keys import fingerprint

if TYPE_CHECKING:
    from sandi.home import Home


@dataclass(frozen=True)
class ImportResult:
    agency: str
    added: list[str]
    present: list[str]
    certificates: list[str]


def import_key_bundle(home: Home, keystore: KeyStore, data: bytes, passphrase: bytes) -> ImportResult:
    return import_opened_bundle(home, keystore, open_bundle(data, passphrase))


def import_opened_bundle(home: Home, keystore: KeyStore, bundle: KeyBundle) -> ImportResult:
    """Import a bundle already opened with its passphrase (see :func:`import_key_bundle`)."""
    from sandi.audit.journal import Journal

    cfg = home.load_config()
    if cfg.agency is not None and cfg.agency != bundle.agency:
        raise UsageError(
            _("this bundle holds the keys of {agency}, and this home belongs to {agency2}").format(
                agency=bundle.agency,
                agency2=cfg.agency,
            )
        )
    check_root(cfg.root_fingerprint, bundle.root_certificate)
    root = load_pem(bundle.root_certificate, what=N_("the root certificate"))
    # pdf-signing certificates come from the PDF root (ADR 0014); the home trusts it only
    # through its directory, so here it only has to match what the bundle says
    pdf_root = None if bundle.pdf_root_certificate is None else load_pem(
        bundle.pdf_root_certificate, what=N_("the PDF root certificate"))
    cert_fps = set()
    for c in bundle.certificates:
        cert = load_pem(c.pem)
        issuer = pdf_root if c.purpose in PDF_PURPOSES else root
        if issuer is None or not issued_by(cert, issuer) or certificate_purpose(cert) != c.purpose:
            raise VerificationError(
                _("a certificate in the bundle was not issued by the authority for its purpose")
            )
        cert_fps.add((c.purpose, fingerprint(public_key_of(cert))))
    for k in bundle.keys:
        fp = secret_fingerprint(kind_of_purpose(k.purpose), k.secret)
        if fp != k.public_fingerprint or k.ref != key_ref(bundle.agency, kind_of_purpose(k.purpose), fp):
            raise VerificationError(_("a key in the bundle does not match its fingerprint"))
        if (k.purpose, fp) not in cert_fps:
            raise VerificationError(_("a key in the bundle has no certificate from the authority"))
    added: list[str] = []
    present: list[str] = []
    try:
        for k in bundle.keys:
            if keystore.contains(k.ref):
                present.append(k.ref)
                continue
            keystore.put_secret_unsafe(k.ref, kind_of_purpose(k.purpose), k.secret)
            added.append(k.ref)
        installed = install_certificates(
            home.path,
            keystore,
            bundle.agency,
            bundle.root_certificate,
            cfg.root_fingerprint,
            [CertToInstall(c.purpose, c.pem) for c in bundle.certificates],
            pdf_root_pem=bundle.pdf_root_certificate,
        )
        Journal(home.journal_path).append(
            AuditEvent(
                actor=cfg.agency or current_operator(),
                action="key.import",
                subject=bundle.agency,
                details={"what": "private-bundle", "added": list(added), "present": list(present)},
            )
        )
    except BaseException:
        for ref in added:
            try:
                keystore.delete(ref)
            except Exception:  # noqa: S112 - best effort undo; the original error matters
                continue
        raise
    return ImportResult(bundle.agency, added, present, [str(p) for p in installed])
