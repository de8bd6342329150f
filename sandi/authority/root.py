"""The authority's root: an Ed25519 key in the key store and a self-signed CA certificate.

Invariants:

* there is one root per registry (the ``authority`` row, id 1); creating a second
  one is refused;
* the root key lives only in the key store, under ``root.signing.<fp16>``; the
  certificate is in the registry (``authority.root_cert_pem``) and in the home as
  ``root.pem``; the home configuration records the root fingerprint
  (sha256 of the raw public key);
* :func:`load_root_signer` hands out the key only if its public key is the one in
  ``root.pem`` *and* the configured fingerprint: a swapped ``root.pem`` or key file
  is refused, so nothing is ever signed by a key that is not the authority's root;
* creating the root records the ``init`` audit event in the same transaction; if
  anything fails, the key and ``root.pem`` written so far are removed again.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sandi.authority.certs import build_root_certificate, load_pem, public_key_of, to_pem
from sandi.errors import AlreadyExistsError, ConfigError, CredentialError, NotFoundError
from sandi.fsutil import atomic_write
from sandi.i18n import _
from sandi.keystore.base import KeyStore, key_ref
from sandi.keystore.keys import SigningKey, fingerprint

if TYPE_CHECKING:
    from cryptography import x509

    from sandi.home import Home
    from sandi.registry import Registry

ROOT_OWNER = "root"
ROOT_PEM = "root.pem"
ROOT_VALIDITY_DAYS = 20 * 365


@dataclass(frozen=True)
class RootInfo:
    province: str
    fingerprint: str
    key_ref: str
    cert_pem: str


def root_key_ref(root_fingerprint: str) -> str:
    return key_ref(ROOT_OWNER, "signing", root_fingerprint)


def root_pem_path(home: Home) -> str:
    return str(home.path / ROOT_PEM)


def create_root(
    home: Home,
    keystore: KeyStore,
    province: str,
    *,
    registry: Registry,
    validity_days: int = ROOT_VALIDITY_DAYS,
    now: datetime | None = None,
) -> RootInfo:
    """Create the root key and certificate, record them, and log ``init``."""
    from sandi.authority.events import record
    from sandi.registry.models import AuthorityRow

    now = now or datetime.now(UTC)
    key = SigningKey.generate()
    cert = build_root_certificate(
        key, province, not_before=now, not_after=now + timedelta(days=validity_days)
    )
    fp = key.fingerprint
    ref = root_key_ref(fp)
    pem = to_pem(cert)
    pem_path = home.path / ROOT_PEM
    wrote_key = wrote_pem = False
    try:
        with registry.transaction() as session:
            if session.get(AuthorityRow, 1) is not None:
                raise AlreadyExistsError(
                    _("this registry has an authority already"), hint=_("one registry serves one authority")
                )
            session.add(
                AuthorityRow(
                    id=1,
                    province=province,
                    root_cert_pem=pem,
                    root_fingerprint=fp,
                    root_key_ref=ref,
                    created_at=now,
                )
            )
            record(
                session,
                "init",
                province,
                {"root_fingerprint": fp, "root_serial": f"{cert.serial_number:x}", "keystore": keystore.kind},
            )
            # Files last, still inside the transaction: if they fail, nothing commits.
            keystore.put_signing_key(ref, key)
            wrote_key = True
            atomic_write(pem_path, pem.encode(), mode=0o644, overwrite=False)
            wrote_pem = True
        cfg = home.load_config()
        atomic_write(
            home.config_path,
            dataclasses.replace(cfg, root_fingerprint=fp).to_toml().encode(),
            mode=0o600,
            overwrite=True,
        )
    except BaseException:
        if wrote_key:
            with contextlib.suppress(Exception):
                keystore.delete(ref)
        if wrote_pem:
            with contextlib.suppress(OSError):
                pem_path.unlink()
        raise
    return RootInfo(province=province, fingerprint=fp, key_ref=ref, cert_pem=pem)


def load_root_certificate(home: Home) -> x509.Certificate:
    """The root certificate in the home (``root.pem``), checked against the configuration."""
    path = home.path / ROOT_PEM
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(
            _("no root certificate in {path}").format(path=home.path),
            hint=_("this is not an authority home, or 'sandi init' did not finish"),
        ) from None
    cert = load_pem(data, what=str(path))
    expected = home.load_config().root_fingerprint
    if expected and fingerprint(public_key_of(cert)) != expected:
        raise CredentialError(
            _("{path} is not the root this home was created with").format(path=path),
            hint=_("restore root.pem from the registry or a backup"),
        )
    return cert


def root_fingerprint_of(cert: x509.Certificate) -> str:
    return fingerprint(public_key_of(cert))


def load_root_signer(home: Home, keystore: KeyStore) -> SigningKey:
    """The root signing key (asks for the key store passphrase if the store needs it)."""
    cfg = home.load_config()
    if cfg.role != "authority":
        raise ConfigError(_("this home is a workstation: only the authority holds the root key"))
    cert = load_root_certificate(home)
    fp = root_fingerprint_of(cert)
    key = keystore.get_signing_key(root_key_ref(fp))
    if key.fingerprint != fp:
        raise CredentialError(
            _("the stored root key does not match the root certificate"),
            hint=_("the key folder was tampered with; restore it from a backup"),
        )
    return key
