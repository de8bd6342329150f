"""Certificates installed in a home next to their private keys (agency workstations).

An agency that enrolled, or imported a key bundle, keeps its own certificates in
``<home>/certs/<CODE>.<purpose>.<serial>.pem`` (public files) until the signed
directory carries them too.

Invariants:

* a certificate is installed only if the root that issued it is the root this home
  trusts (``root_fingerprint`` in ``sandi.toml``), the root's key signed it, its key
  type matches its purpose, and the matching private key is in the home's key store;
* an installed certificate is never replaced; installing the same one again is a no-op;
* the root that issued them is kept beside them (``certs/root.pem``), so a backup of
  the workstation carries it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sandi.authority.certs import certificate_purpose, issued_by, load_pem, public_key_of, serial_hex
from sandi.errors import CredentialError, VerificationError
from sandi.fsutil import atomic_write, ensure_private_dir
from sandi.i18n import N_, _
from sandi.keystore.base import KeyStore, key_ref, kind_of_purpose
from sandi.keystore.keys import fingerprint

CERTS_DIR = "certs"
ROOT_CERT_NAME = "root.pem"


@dataclass(frozen=True)
class CertToInstall:
    purpose: str
    pem: str


def check_root(home_root_fingerprint: str | None, root_pem: str) -> str:
    """The fingerprint of ``root_pem`` if this home trusts it; VerificationError if not."""
    root = load_pem(root_pem, what=N_("the root certificate"))
    fp = fingerprint(public_key_of(root))
    if home_root_fingerprint is None:
        raise CredentialError(
            _("this home has no root fingerprint to check the authority against"),
            hint=_("create the workstation with 'sandi init --agency CODE --root-fingerprint FP'"),
        )
    if fp != home_root_fingerprint:
        raise VerificationError(
            _("the certificates come from another authority (root fingerprint differs)"),
            hint=_("import only files from your own authority"),
        )
    return fp


def install_certificates(
    home_path: Path,
    keystore: KeyStore,
    agency: str,
    root_pem: str,
    root_fingerprint: str | None,
    certs: list[CertToInstall],
    *,
    pdf_root_pem: str | None = None,
) -> list[Path]:
    """Check and write an agency's certificates into the home; ``pdf_root_pem`` is the PDF
    root its ``pdf-signing`` certificates must come from (ADR 0014)."""
    from sandi.authority.validity import PDF_PURPOSES

    check_root(root_fingerprint, root_pem)
    root = load_pem(root_pem, what=N_("the root certificate"))
    pdf_root = None if pdf_root_pem is None else load_pem(pdf_root_pem, what=N_("the PDF root certificate"))
    checked = []
    for item in certs:
        cert = load_pem(item.pem)
        issuer = pdf_root if item.purpose in PDF_PURPOSES else root
        if issuer is None or not issued_by(cert, issuer):
            raise VerificationError(_("a certificate was not issued by the authority's root"))
        if certificate_purpose(cert) != item.purpose:
            raise VerificationError(_("a certificate's key does not match its stated purpose"))
        ref = key_ref(
            agency, kind_of_purpose(item.purpose), fingerprint(public_key_of(cert))
        )
        if not keystore.contains(ref):
            raise CredentialError(
                _("no private key in this key store for the {purpose} certificate of {agency}").format(
                    purpose=item.purpose,
                    agency=agency,
                ),
                hint=_("import the certificates into the home that made the request"),
            )
        checked.append((cert, item))
    folder = home_path / CERTS_DIR
    ensure_private_dir(folder)
    if not (folder / ROOT_CERT_NAME).exists():
        atomic_write(folder / ROOT_CERT_NAME, root_pem.encode("ascii"), mode=0o644, overwrite=False)
    written = []
    for cert, item in checked:
        path = folder / f"{agency}.{item.purpose}.{serial_hex(cert.serial_number)}.pem"
        if path.exists():
            continue
        atomic_write(path, item.pem.encode("ascii"), mode=0o644, overwrite=False)
        written.append(path)
    return written
