"""The OS keyring key store (Secret Service, macOS Keychain, Windows Credential Locker).

Invariants:

* only a real backend is used: the ``fail`` and ``null`` backends, an empty chainer
  and plaintext file backends are refused with a clear error (so a key is never
  "stored" nowhere, nor stored in the clear);
* the keyring has no listing call, so the references (public names only) are kept
  in ``<home>/keys/keyring.json``; the secrets live only in the keyring, under a
  service name unique to this home;
* a reference is never overwritten.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import secrets
from pathlib import Path
from typing import Any

from sandi.errors import AlreadyExistsError, ConfigError, CredentialError, FormatError, NotFoundError
from sandi.formats.bounded import load_json
from sandi.fsutil import atomic_write, ensure_private_dir
from sandi.i18n import N_, Message, _
from sandi.keystore.base import KeyStore, StoredKey, check_ref, not_found

#: the index lists key references only; a few hundred keys fit many times over
MAX_INDEX_BYTES = 1024 * 1024

INDEX_NAME = "keyring.json"
INDEX_FORMAT = "sandi-keyring-index/v1"


def real_backend() -> Any:
    """The active keyring backend, or ConfigError if it would not really store anything."""
    try:
        import keyring
        from keyring.backends import chainer, fail, null
    except ImportError:  # pragma: no cover - keyring is a dependency
        raise ConfigError(_("the 'keyring' package is not installed")) from None
    backend = keyring.get_keyring()
    name = f"{type(backend).__module__}.{type(backend).__name__}"
    empty_chain = isinstance(backend, chainer.ChainerBackend) and not backend.backends
    if (
        isinstance(backend, fail.Keyring | null.Keyring)
        or empty_chain
        or "plaintext" in name.lower()
        or getattr(backend, "priority", 0) <= 0
    ):
        raise ConfigError(
            _("no usable OS keyring on this machine (backend {name})").format(name=name),
            hint=_("use the encrypted file key store (keystore = \"file\" in sandi.toml, the default)"),
        )
    return backend


class KeyringKeyStore(KeyStore):
    kind = "keyring"

    def __init__(self, keys_dir: Path, *, backend: Any = None) -> None:
        self.keys_dir = keys_dir
        self._backend = backend if backend is not None else real_backend()
        index = self._load_index()
        self.service = str(index["service"])

    def __repr__(self) -> str:
        return f"KeyringKeyStore({self.service!r})"

    @classmethod
    def create(cls, keys_dir: Path, *, backend: Any = None) -> KeyringKeyStore:
        backend = backend if backend is not None else real_backend()
        ensure_private_dir(keys_dir)
        index = {"format": INDEX_FORMAT, "service": f"sandi/{secrets.token_hex(8)}", "refs": []}
        atomic_write(keys_dir / INDEX_NAME, json.dumps(index).encode(), mode=0o600, overwrite=False)
        return cls(keys_dir, backend=backend)

    def _load_index(self) -> dict[str, Any]:
        path = self.keys_dir / INDEX_NAME
        try:
            data = load_json(path.read_bytes(), max_bytes=MAX_INDEX_BYTES, error=lambda reason: FormatError(
                Message("{path} is unreadable ({reason})", path=path, reason=reason)))
        except FileNotFoundError:
            raise NotFoundError(
                _("no keyring key store index in {keys_dir}").format(keys_dir=self.keys_dir),
                hint=_("create the home with 'sandi init --keystore keyring'"),
            ) from None
        except (OSError, ValueError):
            raise FormatError(_("{path} is unreadable").format(path=path)) from None
        if (
            not isinstance(data, dict)
            or data.get("format") != INDEX_FORMAT
            or not isinstance(data.get("service"), str)
            or not isinstance(data.get("refs"), list)
        ):
            raise FormatError(_("{path} is not a sandi keyring index").format(path=path))
        return data

    def _write(self, record: StoredKey) -> None:
        index = self._load_index()
        if record.ref in index["refs"] or self._backend.get_password(self.service, record.ref) is not None:
            raise AlreadyExistsError(_("key {ref} exists already").format(
                ref=record.ref,
            ), hint=_("sandi never overwrites a key"))
        try:
            self._backend.set_password(self.service, record.ref, base64.b64encode(record.encode()).decode())
        except Exception as exc:  # keyring backends raise their own types
            raise CredentialError(
                _("the OS keyring refused to store {ref} ({name})").format(
                    ref=record.ref,
                    name=type(exc).__name__,
                )
            ) from None
        index["refs"] = sorted({*index["refs"], record.ref})
        atomic_write(self.keys_dir / INDEX_NAME, json.dumps(index).encode(), mode=0o600)

    def _read(self, ref: str) -> StoredKey:
        try:
            value = self._backend.get_password(self.service, ref)
        except Exception as exc:
            raise CredentialError(
                _("the OS keyring refused to give {ref} ({name})").format(ref=ref, name=type(exc).__name__),
                hint=_("unlock the keyring (log in to the desktop session)"),
            ) from None
        if value is None:
            raise not_found(ref, N_("OS keyring"))
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise FormatError(_("keyring entry {ref} is malformed").format(ref=ref)) from None
        return StoredKey.decode(data, expected_ref=ref)

    def refs(self) -> list[str]:
        return sorted(str(r) for r in self._load_index()["refs"])

    def delete(self, ref: str) -> None:
        check_ref(ref)
        index = self._load_index()
        if ref not in index["refs"]:
            raise not_found(ref, N_("OS keyring"))
        # Already gone from the keyring is fine: the index is what we fix.
        with contextlib.suppress(Exception):
            self._backend.delete_password(self.service, ref)
        index["refs"] = [r for r in index["refs"] if r != ref]
        atomic_write(self.keys_dir / INDEX_NAME, json.dumps(index).encode(), mode=0o600)
