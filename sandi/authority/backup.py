"""Backup and recovery of a workstation's keys.

A workstation that enrolled holds the only copies of its agency's private keys: if its
disk dies, every document sealed to it is unreadable. ``keys backup`` writes them to a
key bundle (``sandi-key-bundle/v1``, see :mod:`sandi.authority.bundle`): every private
key of the home's agency in the key store, current *and* retired (a letter received
years ago was sealed to a key long since rotated), the certificates installed for them,
and the root certificate. ``keys restore`` imports such a bundle into a home, creating a
fresh workstation home when there is none (:func:`create_home_for_bundle`).

Invariants:

* a backup is never written unencrypted: an age file under a passphrase (scrypt), created
  with ``O_EXCL`` and mode 0600 like any secret, never over an existing file;
* a backup contains only keys that have a certificate from the home's root (a key
  still waiting for its certificate is reported as left out, never silently dropped);
* restoring checks everything an import checks (every key against its certificate,
  every certificate against the root, the root against the fingerprint given or the
  home's), and a home it created is removed again when the restore fails;
* both are recorded in the home's audit journal (``key.backup``, ``key.import``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sandi.authority.bundle import BundleCert, BundleKey, KeyBundle, iso_now, open_bundle, seal_bundle
from sandi.authority.certs import certificate_purpose, load_pem, public_key_of, serial_hex
from sandi.authority.installed import CERTS_DIR, ROOT_CERT_NAME, check_root
from sandi.errors import ConfigError, FormatError, NotFoundError, UsageError
from sandi.fsutil import write_new_secret
from sandi.i18n import _
from sandi.keystore.base import KeyStore, key_ref
from sandi.keystore.keys import fingerprint

if TYPE_CHECKING:
    from pathlib import Path

    from sandi.home import Home



@dataclass(frozen=True)
class BackupResult:
    agency: str
    path: str
    refs: list[str]
    #: keys in the store that have no certificate yet (a pending enrolment), not backed up
    left_out: list[str]


def backup_workstation(
    home: Home,
    keystore: KeyStore,
    out: Path,
    passphrase: bytes,
    *,
    root_pem: str,
    work_factor: int,
    now: datetime | None = None,
) -> BackupResult:
    """Write every certified private key of the home's agency to a passphrase-protected bundle.

    ``root_pem`` is the root this home trusts (:func:`installed_root_pem`, or the one in
    its verified directory); it is checked against the home's root fingerprint.
    """
    from sandi.audit.events import AuditEvent, JSONValue
    from sandi.audit.journal import Journal

    cfg = home.load_config()
    if cfg.role != "workstation" or not cfg.agency:
        raise UsageError(
            _("'keys backup' backs up an agency workstation; this home is an authority"),
            hint=_("back up an authority with its database and key store (see docs/operations.md), "
                   "or export one agency's keys with 'sandi keys export CODE --include-private-keys'"),
        )
    code = cfg.agency
    check_root(cfg.root_fingerprint, root_pem)
    certificates: list[BundleCert] = []
    certified: set[str] = set()
    for path in sorted((home.path / CERTS_DIR).glob(f"{code}.*.pem")):
        pem = path.read_text(encoding="ascii")
        cert = load_pem(pem)
        purpose = certificate_purpose(cert)
        certificates.append(BundleCert(purpose, serial_hex(cert.serial_number), pem))
        certified.add(key_ref(code, "signing" if purpose == "signing" else "encryption",
                              fingerprint(public_key_of(cert))))
    keys: list[BundleKey] = []
    left_out: list[str] = []
    for ref in sorted(keystore.refs()):
        if not ref.startswith(f"{code}."):
            continue
        if ref not in certified or keystore.location(ref) == "token":
            # A token key never leaves its token: the token's own backup covers it (ADR 0012).
            left_out.append(ref)
            continue
        purpose = ref.split(".")[1]
        if purpose == "signing":
            signing = keystore.get_signing_key(ref)
            keys.append(BundleKey("signing", ref, signing.fingerprint, signing.private_bytes_unsafe()))
        else:
            identity = keystore.get_encryption_key(ref)
            keys.append(BundleKey("encryption", ref, ref.rsplit(".", 1)[1], identity.private_bytes_unsafe()))
    if not keys:
        raise NotFoundError(
            _("this home holds no certified key of {code} to back up").format(code=code),
            hint=_("import the authority's answer first ('sandi keys import-certs FILE')"),
        )
    # The bundle's fingerprints are the full ones the import checks, not the ref's short form.
    keys = [_full_fingerprint(k) for k in keys]
    bundle = KeyBundle(code, iso_now(now or datetime.now(UTC)), root_pem, keys, certificates)
    write_new_secret(out, seal_bundle(bundle, passphrase, work_factor))
    Journal(home.journal_path).append(
        AuditEvent(
            actor=code,
            action="key.backup",
            subject=code,
            details={"refs": list[JSONValue](k.ref for k in keys), "left_out": list[JSONValue](left_out),
                     "encrypted": True},
        )
    )
    return BackupResult(code, str(out), [k.ref for k in keys], left_out)


def _full_fingerprint(key: BundleKey) -> BundleKey:
    from sandi.keystore.base import identity_fingerprint, identity_from_secret
    from sandi.keystore.keys import SigningKey

    if key.purpose == "signing":
        fp = SigningKey.from_private_bytes_unsafe(key.secret).fingerprint
    else:
        fp = identity_fingerprint(identity_from_secret(key.secret))
    return BundleKey(key.purpose, key.ref, fp, key.secret)


def installed_root_pem(home: Home) -> str | None:
    """The root certificate installed beside the agency's certificates, if any."""
    path = home.path / CERTS_DIR / ROOT_CERT_NAME
    return path.read_text(encoding="ascii") if path.is_file() else None


def read_backup(data: bytes, passphrase: bytes) -> KeyBundle:
    """Open a backup (or any key bundle); CredentialError on a wrong passphrase."""
    return open_bundle(data, passphrase)


def create_home_for_bundle(home: Home, bundle: KeyBundle, root_fingerprint: str | None) -> str:
    """Lay out a fresh workstation home for the agency of ``bundle``; returns the root fingerprint.

    With ``root_fingerprint`` the bundle's root must match it; without, the bundle's root
    is trusted as the passphrase-protected bundle names it, and the caller shows the
    fingerprint so that a person can compare it with the authority's.
    """
    from sandi.authority.root import root_fingerprint_of
    from sandi.home import HomeConfig

    root = load_pem(bundle.root_certificate, what="the root certificate")
    fp = root_fingerprint_of(root)
    if root_fingerprint is not None:
        check_root(root_fingerprint.lower(), bundle.root_certificate)
    province = _province_of(root)
    if home.exists():
        raise ConfigError(_("a sandi home exists already at {path}").format(path=home.path))
    home.create(HomeConfig(role="workstation", province=province, agency=bundle.agency, root_fingerprint=fp))
    return fp


def _province_of(root: object) -> str:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    assert isinstance(root, x509.Certificate)
    names = root.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    value = names[0].value if names else None
    if not isinstance(value, str) or not value:
        raise FormatError(_("the bundle's root certificate names no province"))
    return value
