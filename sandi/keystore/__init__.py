"""Key stores: private keys behind one interface (file, OS keyring, PKCS#11 token, memory).

``open_keystore(home, passphrase)`` picks the backend named in the home's
configuration (``keystore = "file" | "keyring" | "pkcs11"``); ``create_keystore``
makes a new one at ``sandi init``. Keys are put and got by reference
(:func:`key_ref`); everything that signs goes through ``KeyStore.signer(ref)``, so
the operation goes to where the key lives.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sandi.errors import ConfigError
from sandi.i18n import _
from sandi.keystore.base import KeyKind, KeyStore, StoredKey, check_ref, key_ref
from sandi.keystore.keys import P256Key, P256Signer, Signer, SigningKey, fingerprint
from sandi.keystore.memory import MemoryKeyStore
from sandi.keystore.passphrase import (
    CachedPassphrase,
    CallbackPassphrase,
    EnvPassphrase,
    FilePassphrase,
    FixedPassphrase,
    NoPassphrase,
    PassphraseSource,
)

if TYPE_CHECKING:
    from sandi.home import Home, HomeConfig
    from sandi.keystore.pkcs11 import TokenConfig

KEYSTORE_KINDS = ("file", "keyring", "pkcs11")

__all__ = [
    "KEYSTORE_KINDS",
    "CachedPassphrase",
    "CallbackPassphrase",
    "EnvPassphrase",
    "FilePassphrase",
    "FixedPassphrase",
    "KeyKind",
    "KeyStore",
    "MemoryKeyStore",
    "NoPassphrase",
    "P256Key",
    "P256Signer",
    "PassphraseSource",
    "Signer",
    "SigningKey",
    "StoredKey",
    "check_ref",
    "create_keystore",
    "fingerprint",
    "key_ref",
    "open_keystore",
]


def _kind(kind: str) -> str:
    if kind not in KEYSTORE_KINDS:
        raise ConfigError(
            _("unknown key store {kind!r}").format(kind=kind),
            hint=_('use keystore = "file", "keyring" or "pkcs11"'),
        )
    return kind


def open_keystore(
    home: Home,
    passphrase: PassphraseSource,
    *,
    config: HomeConfig | None = None,
    pin: PassphraseSource | None = None,
    agent: bool = True,
) -> KeyStore:
    """The key store of ``home``, as its configuration names it. Asks nothing yet.

    ``pin`` unlocks a PKCS#11 token (asked only when a token key signs); without it
    the PIN comes from ``$SANDI_PKCS11_PIN``. With ``agent`` (the default), a file
    store (also a token's fallback store) signs and unwraps through the home's key agent
    while one runs and holds the key (:mod:`sandi.keystore.agent`); otherwise it unlocks
    with ``passphrase`` as usual."""
    cfg = config or home.load_config()
    kind = _kind(cfg.keystore)
    if kind == "pkcs11":
        from sandi.keystore.pkcs11 import Pkcs11KeyStore, TokenConfig, default_pin_source

        token = TokenConfig.from_settings(cfg.extra, source=str(home.config_path))
        fallback = _open_simple(home, token.fallback, passphrase, agent=agent)
        return Pkcs11KeyStore(home.keys_dir, fallback, token, pin or default_pin_source())
    return _open_simple(home, kind, passphrase, agent=agent)


def _open_simple(home: Home, kind: str, passphrase: PassphraseSource, *, agent: bool = False) -> KeyStore:
    if kind == "keyring":
        from sandi.keystore.keyringstore import KeyringKeyStore

        return KeyringKeyStore(home.keys_dir)
    from sandi.keystore.filestore import FileKeyStore

    store = FileKeyStore(home.keys_dir, passphrase)
    if not agent:
        return store
    from sandi.keystore.agent import with_agent

    return with_agent(store, home.keys_dir)


def create_keystore(
    home: Home,
    passphrase: PassphraseSource,
    *,
    kind: str = "file",
    work_factor: int | None = None,
    token: TokenConfig | None = None,
    pin: PassphraseSource | None = None,
) -> KeyStore:
    """Create the key store of a new home (asks the passphrase twice for a file store).

    ``kind="pkcs11"`` needs ``token`` (module and token URI); its fallback store (for
    encryption keys) is created beside it, and the token is checked (present, PIN,
    Ed25519 mechanisms) before anything is written."""
    if _kind(kind) == "pkcs11":
        from sandi.keystore.pkcs11 import Pkcs11KeyStore, TokenSession, default_pin_source

        if token is None:
            raise ConfigError(_("a PKCS#11 key store needs its module and token"),
                              hint=_("give --pkcs11-module and --pkcs11-token to 'sandi init'"))
        pin = pin or default_pin_source()
        # Token first: a missing token or a wrong PIN must not leave a store behind.
        probe = TokenSession(token, pin)
        probe.session()
        probe.close()
        fallback = create_keystore(home, passphrase, kind=token.fallback, work_factor=work_factor)
        return Pkcs11KeyStore.create(home.keys_dir, fallback, token, pin)
    if kind == "keyring":
        from sandi.keystore.keyringstore import KeyringKeyStore

        return KeyringKeyStore.create(home.keys_dir)
    from sandi.keystore.filestore import FileKeyStore, scrypt_work_factor

    wf = work_factor if work_factor is not None else scrypt_work_factor(_config_work_factor(home))
    return FileKeyStore.create(home.keys_dir, passphrase, work_factor=wf)


def _config_work_factor(home: Home) -> object:
    try:
        return home.load_config().extra.get("scrypt_work_factor")
    except ConfigError:
        return None
