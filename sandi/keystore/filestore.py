"""The encrypted file key store: age files in the home's key folder.

Layout of ``<home>/keys`` (mode 0700):

* ``store.age``: the store identity (an age X25519 identity line), encrypted with
  an age scrypt recipient, i.e. with the store passphrase;
* ``store.pub``: the store's public recipient (``age1...``), in the clear;
* ``<ref>.key.age``: one file per key, the key record encrypted to the store
  recipient, written once with O_EXCL and mode 0600.

Invariants:

* writing a key needs no passphrase (it is encrypted to the public recipient);
  reading needs the store identity, unlocked with one scrypt per process and then
  cached in memory for that process only;
* on unlock the identity's recipient must equal ``store.pub``: a replaced
  ``store.pub`` is detected the first time the store is opened with the passphrase;
* no file is ever overwritten and no secret is ever written unencrypted; a wrong
  passphrase is a :class:`CredentialError`, never a format error;
* the scrypt work factor is checked before any work: at most 22 (the age limit
  sandi accepts), configurable downwards for tests and demos.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from sandi.errors import AlreadyExistsError, CredentialError, FormatError, NotFoundError, UsageError
from sandi.fsutil import atomic_write, ensure_private_dir, write_new_secret
from sandi.i18n import N_, _
from sandi.keystore.base import KeyStore, StoredKey, check_ref, not_found
from sandi.keystore.passphrase import PassphraseSource

if TYPE_CHECKING:
    from sandi.formats.age import X25519Identity

STORE_IDENTITY = "store.age"
STORE_RECIPIENT = "store.pub"
KEY_SUFFIX = ".key.age"
MAX_KEY_FILE = 64 * 1024
ENV_WORK_FACTOR = "SANDI_SCRYPT_WORK_FACTOR"
DEFAULT_WORK_FACTOR = 18
MAX_WORK_FACTOR = 22
MIN_WORK_FACTOR = 1

# Unlocked store identities, per key folder, recipient and passphrase: one scrypt per
# process. The passphrase is part of the key, so a wrong one never rides on an earlier
# correct unlock (a long-running library user gets the same answer every time).
_UNLOCKED: dict[tuple[str, str, str], X25519Identity] = {}


def _cache_key(keys_dir: Path, recipient: str, passphrase: bytes) -> tuple[str, str, str]:
    digest = hashlib.sha256(b"sandi/keystore-unlock-cache/v1\n" + passphrase).hexdigest()
    return (str(keys_dir.resolve()), recipient, digest)
_LOCK = threading.Lock()

WRONG_PASSPHRASE_HINT = (
    "give the key store passphrase chosen at 'sandi init' (prompt, --passphrase-file or SANDI_PASSPHRASE)"  # noqa: S105
)


def check_work_factor(value: object, source: str) -> int:
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise UsageError(_("{source}: scrypt work factor must be a number").format(
                source=source,
            )) from None
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or not MIN_WORK_FACTOR <= value <= MAX_WORK_FACTOR
    ):
        raise UsageError(_("{source}: scrypt work factor must be "
                           "{min_work_factor}..{max_work_factor}").format(
            source=source,
            min_work_factor=MIN_WORK_FACTOR,
            max_work_factor=MAX_WORK_FACTOR,
        ))
    return value


def scrypt_work_factor(config_value: object = None) -> int:
    """The work factor for new scrypt files: ``$SANDI_SCRYPT_WORK_FACTOR``, the home config, or 18."""
    env = os.environ.get(ENV_WORK_FACTOR)
    if env:
        return check_work_factor(env, ENV_WORK_FACTOR)
    if config_value is not None:
        return check_work_factor(config_value, "scrypt_work_factor in sandi.toml")
    return DEFAULT_WORK_FACTOR


def forget_unlocked() -> None:
    """Drop every cached store identity (tests; a long-running process locking up)."""
    with _LOCK:
        _UNLOCKED.clear()


def scrypt_encrypt(plaintext: bytes, passphrase: bytes, work_factor: int, *, armor: bool = False) -> bytes:
    """An age file of ``plaintext`` protected by ``passphrase`` (scrypt)."""
    from sandi.formats.age import ScryptRecipient, encrypt

    check_work_factor(work_factor, "scrypt work factor")
    out = io.BytesIO()
    encrypt(io.BytesIO(plaintext), out, [ScryptRecipient(passphrase, work_factor=work_factor)], armor=armor)
    return out.getvalue()


def scrypt_decrypt(data: bytes, passphrase: bytes, *, what: str) -> bytes:
    """Open an age scrypt file; a wrong passphrase is a :class:`CredentialError`."""
    from sandi.formats.age import AgeError, ScryptIdentity, decrypt

    out = io.BytesIO()
    try:
        decrypt(io.BytesIO(data), out, [ScryptIdentity(passphrase, max_work_factor=MAX_WORK_FACTOR)])
    except AgeError as exc:
        if exc.kind in ("no match", "hmac"):
            raise CredentialError(_("wrong passphrase for {what}").format(
                what=_(what),
            ), hint=WRONG_PASSPHRASE_HINT) from None
        raise FormatError(_("{what} is damaged ({kind})").format(what=_(what), kind=exc.kind)) from None
    return out.getvalue()


class FileKeyStore(KeyStore):
    kind = "file"

    def __init__(self, keys_dir: Path, passphrase: PassphraseSource) -> None:
        self.keys_dir = keys_dir
        self._passphrase = passphrase
        pub_path = keys_dir / STORE_RECIPIENT
        try:
            self._recipient_text = pub_path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            raise NotFoundError(
                _("no key store in {keys_dir}").format(keys_dir=keys_dir),
                hint=_("create the home with 'sandi init' (it creates the key store)"),
            ) from None
        except (OSError, UnicodeDecodeError):
            raise FormatError(_("{pub_path} is unreadable").format(pub_path=pub_path)) from None

    def __repr__(self) -> str:
        return f"FileKeyStore({str(self.keys_dir)!r})"

    @classmethod
    def create(cls, keys_dir: Path, passphrase: PassphraseSource, *, work_factor: int) -> FileKeyStore:
        """Create the store identity; refuses if the folder already holds one."""
        from sandi.formats.age import X25519Identity

        check_work_factor(work_factor, "scrypt work factor")
        ensure_private_dir(keys_dir)
        if (keys_dir / STORE_IDENTITY).exists() or (keys_dir / STORE_RECIPIENT).exists():
            raise AlreadyExistsError(_("a key store exists already in {keys_dir}").format(keys_dir=keys_dir))
        secret = passphrase.get("the new key store", confirm=True)
        identity = X25519Identity.generate()
        line = identity.secret_bech32_unsafe().encode() + b"\n"
        write_new_secret(keys_dir / STORE_IDENTITY, scrypt_encrypt(line, secret, work_factor))
        recipient = identity.recipient.to_bech32()
        atomic_write(keys_dir / STORE_RECIPIENT, (recipient + "\n").encode(), mode=0o644, overwrite=False)
        with _LOCK:
            _UNLOCKED[_cache_key(keys_dir, recipient, secret)] = identity
        return cls(keys_dir, passphrase)

    # -- the store identity ------------------------------------------------------------

    def _recipient(self) -> object:
        from sandi.formats.age import X25519Recipient

        try:
            return X25519Recipient.from_bech32(self._recipient_text)
        except FormatError:
            raise FormatError(_("{value} does not hold an age recipient").format(
                value=self.keys_dir / STORE_RECIPIENT,
            )) from None

    def _identity(self) -> X25519Identity:
        from sandi.formats.age import X25519Identity

        passphrase = self._passphrase.get("the key store")
        cache_key = _cache_key(self.keys_dir, self._recipient_text, passphrase)
        with _LOCK:
            cached = _UNLOCKED.get(cache_key)
            if cached is not None:
                return cached
            try:
                data = (self.keys_dir / STORE_IDENTITY).read_bytes()
            except FileNotFoundError:
                raise NotFoundError(_("the key store identity {store_identity} is missing").format(
                    store_identity=STORE_IDENTITY,
                )) from None
            if len(data) > MAX_KEY_FILE:
                raise FormatError(_("{store_identity} is too large").format(store_identity=STORE_IDENTITY))
            plain = scrypt_decrypt(data, passphrase, what=N_("the key store"))
            try:
                identity = X25519Identity.from_bech32(plain.decode("ascii").strip())
            except (UnicodeDecodeError, FormatError):
                raise FormatError(_("{store_identity} does not hold an age identity").format(
                    store_identity=STORE_IDENTITY,
                )) from None
            if identity.recipient.to_bech32() != self._recipient_text:
                raise CredentialError(
                    _("{store_recipient} does not belong to this key store").format(
                        store_recipient=STORE_RECIPIENT,
                    ),
                    hint=_("the key folder was tampered with; restore it from a backup"),
                )
            _UNLOCKED[cache_key] = identity
            return identity

    # -- raw operations ----------------------------------------------------------------

    def _path(self, ref: str) -> Path:
        return self.keys_dir / f"{check_ref(ref)}{KEY_SUFFIX}"

    def _write(self, record: StoredKey) -> None:
        from sandi.formats.age import encrypt

        out = io.BytesIO()
        encrypt(io.BytesIO(record.encode()), out, [self._recipient()])  # type: ignore[list-item]
        write_new_secret(self._path(record.ref), out.getvalue())

    def _read(self, ref: str) -> StoredKey:
        from sandi.formats.age import AgeError, decrypt

        path = self._path(ref)
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_KEY_FILE + 1)
        except FileNotFoundError:
            raise not_found(ref, N_("key store")) from None
        if len(data) > MAX_KEY_FILE:
            raise FormatError(_("key file {path} is too large").format(path=path.name))
        identity = self._identity()
        out = io.BytesIO()
        try:
            decrypt(io.BytesIO(data), out, [identity])
        except AgeError as exc:
            raise CredentialError(
                _("key file {path} cannot be opened with this key store ({kind})").format(
                    path=path.name,
                    kind=exc.kind,
                ),
                hint=_("the file was damaged or comes from another home"),
            ) from None
        return StoredKey.decode(out.getvalue(), expected_ref=ref)

    def refs(self) -> list[str]:
        return sorted(
            p.name[: -len(KEY_SUFFIX)]
            for p in self.keys_dir.glob(f"*{KEY_SUFFIX}")
            if not p.name.startswith(".")
        )

    def delete(self, ref: str) -> None:
        try:
            self._path(ref).unlink()
        except FileNotFoundError:
            raise not_found(ref, N_("key store")) from None
