"""Key stores: private keys behind one interface (file, OS keyring, memory).

``open_keystore(home, passphrase)`` picks the backend named in the home's
configuration (``keystore = "file" | "keyring"``); ``create_keystore`` makes a new
one at ``sandi init``. Keys are put and got by reference (:func:`key_ref`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sandi.errors import ConfigError
from sandi.i18n import _
from sandi.keystore.base import KeyKind, KeyStore, StoredKey, check_ref, key_ref
from sandi.keystore.keys import SigningKey, fingerprint
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

KEYSTORE_KINDS = ("file", "keyring")

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
    "PassphraseSource",
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
        raise ConfigError(_("unknown key store {kind!r}").format(
            kind=kind,
        ), hint=_("use keystore = \"file\" or \"keyring\""))
    return kind


def open_keystore(home: Home, passphrase: PassphraseSource, *, config: HomeConfig | None = None) -> KeyStore:
    """The key store of ``home``, as its configuration names it. Asks nothing yet."""
    cfg = config or home.load_config()
    if _kind(cfg.keystore) == "keyring":
        from sandi.keystore.keyringstore import KeyringKeyStore

        return KeyringKeyStore(home.keys_dir)
    from sandi.keystore.filestore import FileKeyStore

    return FileKeyStore(home.keys_dir, passphrase)


def create_keystore(
    home: Home, passphrase: PassphraseSource, *, kind: str = "file", work_factor: int | None = None
) -> KeyStore:
    """Create the key store of a new home (asks the passphrase twice for a file store)."""
    if _kind(kind) == "keyring":
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
