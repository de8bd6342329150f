"""Recipients and identities: who a file key is wrapped for, and who can unwrap it.

Two protocols let any key type plug into the codec:

* a :class:`Recipient` turns the fresh 16-byte file key into one or more stanzas;
* an :class:`Identity` looks at all stanzas of a header and returns the file key if
  it can unwrap one, ``None`` if none is for it, and raises ``AgeError("header")`` if a
  stanza of its own type is malformed (the spec's MUSTs, checked before any
  decryption so that malformed stanzas cannot act as an oracle).

Native types here: X25519 (``age1...`` / ``AGE-SECRET-KEY-1...``) and scrypt
(passphrase). Private keys are opaque: the repr of an identity shows only its public
recipient, and exporting the secret needs a method whose name says so.

Key strings that do not parse raise :class:`~sandi.errors.FormatError` (they are not
age files, so they are not ``AgeError``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from sandi.errors import FormatError, UsageError
from sandi.i18n import _

from . import b64, bech32
from .errors import AgeError
from .header import FILE_KEY_SIZE, Stanza
from .pq import PQ_RECIPIENT_HRP, MLKEM768X25519Identity, MLKEM768X25519Recipient

X25519_TYPE = "X25519"
SCRYPT_TYPE = "scrypt"
RECIPIENT_HRP = "age"
IDENTITY_HRP = "age-secret-key-"
_X25519_INFO = b"age-encryption.org/v1/X25519"
_SCRYPT_LABEL = b"age-encryption.org/v1/scrypt"
_ZERO_NONCE = bytes(12)
_WRAPPED_SIZE = FILE_KEY_SIZE + 16

#: scrypt work factor (log2 N) sandi accepts when decrypting, by default (age's limit)
DEFAULT_MAX_WORK_FACTOR = 22
#: scrypt work factor sandi uses when encrypting, by default (age's default)
DEFAULT_WORK_FACTOR = 18
_WORK_FACTOR_RE = re.compile(r"[1-9][0-9]*")


@runtime_checkable
class Recipient(Protocol):
    """Something a file key can be wrapped for."""

    def wrap(self, file_key: bytes) -> list[Stanza]: ...


@runtime_checkable
class Identity(Protocol):
    """Something that may unwrap a file key from a header's stanzas."""

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None: ...


def _wrap_key(key: bytes, file_key: bytes) -> bytes:
    return ChaCha20Poly1305(key).encrypt(_ZERO_NONCE, file_key, None)


def _unwrap_key(key: bytes, body: bytes) -> bytes | None:
    try:
        return ChaCha20Poly1305(key).decrypt(_ZERO_NONCE, body, None)
    except InvalidTag:
        return None


# -- X25519 ------------------------------------------------------------------------


class X25519Recipient:
    """An ``age1...`` public key."""

    __slots__ = ("_key", "_raw")

    def __init__(self, key: X25519PublicKey) -> None:
        self._key = key
        self._raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)

    @classmethod
    def from_public_bytes(cls, data: bytes) -> X25519Recipient:
        if len(data) != 32:
            raise FormatError(_("an X25519 public key is 32 bytes"))
        return cls(X25519PublicKey.from_public_bytes(bytes(data)))

    @classmethod
    def from_bech32(cls, text: str) -> X25519Recipient:
        try:
            hrp, data = bech32.decode(text.strip())
        except bech32.Bech32Error as exc:
            raise FormatError(_("not a valid age recipient ({exc})").format(exc=exc)) from None
        if hrp != RECIPIENT_HRP or text.strip() != text.strip().lower() or len(data) != 32:
            raise FormatError(_("not a valid age recipient (expected age1... for an X25519 key)"))
        return cls.from_public_bytes(data)

    @property
    def public_bytes(self) -> bytes:
        return self._raw

    def to_bech32(self) -> str:
        return bech32.encode(RECIPIENT_HRP, self._raw)

    def wrap(self, file_key: bytes) -> list[Stanza]:
        eph = X25519PrivateKey.generate()
        share = eph.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        shared = eph.exchange(self._key)
        key = HKDF(hashes.SHA256(), 32, salt=share + self._raw, info=_X25519_INFO).derive(shared)
        return [Stanza(X25519_TYPE, (b64.encode(share).decode("ascii"),), _wrap_key(key, file_key))]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, X25519Recipient) and other._raw == self._raw

    def __hash__(self) -> int:
        return hash(self._raw)

    def __str__(self) -> str:
        return self.to_bech32()

    def __repr__(self) -> str:
        return f"X25519Recipient({self.to_bech32()!r})"


class X25519Identity:
    """An X25519 private key (``AGE-SECRET-KEY-1...``). Opaque: repr shows the recipient."""

    __slots__ = ("_key", "_recipient")

    def __init__(self, key: X25519PrivateKey) -> None:
        self._key = key
        self._recipient = X25519Recipient(key.public_key())

    @classmethod
    def generate(cls) -> X25519Identity:
        return cls(X25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, data: bytes) -> X25519Identity:
        if len(data) != 32:
            raise FormatError(_("an X25519 private key is 32 bytes"))
        return cls(X25519PrivateKey.from_private_bytes(bytes(data)))

    @classmethod
    def from_bech32(cls, text: str) -> X25519Identity:
        text = text.strip()
        try:
            hrp, data = bech32.decode(text)
        except bech32.Bech32Error:
            # Never echo the string: it may be a mistyped secret key.
            raise FormatError(_("not a valid age identity (bad Bech32)")) from None
        if hrp != IDENTITY_HRP or text != text.upper() or len(data) != 32:
            raise FormatError(_("not a valid age identity (expected AGE-SECRET-KEY-1...)"))
        return cls.from_private_bytes(data)

    @property
    def recipient(self) -> X25519Recipient:
        return self._recipient

    def secret_bech32_unsafe(self) -> str:
        """The secret key as ``AGE-SECRET-KEY-1...``: handle with care, never log it."""
        return bech32.encode(IDENTITY_HRP, self.private_bytes_unsafe(), upper=True)

    def private_bytes_unsafe(self) -> bytes:
        """The raw 32-byte secret scalar: handle with care, never log it."""
        return self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        for stanza in stanzas:
            if stanza.type != X25519_TYPE:
                continue
            if len(stanza.args) != 1:
                raise AgeError("header", _("an X25519 stanza must have exactly one argument"))
            try:
                share = b64.decode(stanza.args[0].encode("ascii"))
            except b64.Base64Error:
                raise AgeError("header", _("the X25519 share is not canonical base64")) from None
            if len(share) != 32:
                raise AgeError("header", _("the X25519 share is not 32 bytes"))
            if len(stanza.body) != _WRAPPED_SIZE:
                raise AgeError("header", _("the X25519 stanza body is not 32 bytes"))
            try:
                shared = self._key.exchange(X25519PublicKey.from_public_bytes(share))
            except ValueError:
                # pyca refuses the all-zero shared secret of a low-order point.
                raise AgeError("header", _("the X25519 share is a low-order point")) from None
            salt = share + self._recipient.public_bytes
            key = HKDF(hashes.SHA256(), 32, salt=salt, info=_X25519_INFO).derive(shared)
            file_key = _unwrap_key(key, stanza.body)
            if file_key is not None:
                return file_key
        return None

    def __repr__(self) -> str:
        return f"X25519Identity(recipient={self._recipient.to_bech32()!r})"


# -- scrypt ------------------------------------------------------------------------


def _scrypt_key(passphrase: bytes, salt: bytes, work_factor: int) -> bytes:
    kdf = Scrypt(salt=_SCRYPT_LABEL + salt, length=32, n=1 << work_factor, r=8, p=1)
    return kdf.derive(passphrase)


class ScryptRecipient:
    """A passphrase as a recipient. It must be the only recipient of a file."""

    __slots__ = ("_passphrase", "work_factor")

    def __init__(self, passphrase: bytes, work_factor: int = DEFAULT_WORK_FACTOR) -> None:
        if not passphrase:
            raise UsageError(_("the passphrase is empty"))
        if not 1 <= work_factor <= DEFAULT_MAX_WORK_FACTOR:
            raise UsageError(_("scrypt work factor must be 1..{default_max_work_factor}").format(
                default_max_work_factor=DEFAULT_MAX_WORK_FACTOR,
            ))
        self._passphrase = bytes(passphrase)
        self.work_factor = work_factor

    def wrap(self, file_key: bytes) -> list[Stanza]:
        salt = os.urandom(16)
        key = _scrypt_key(self._passphrase, salt, self.work_factor)
        args = (b64.encode(salt).decode("ascii"), str(self.work_factor))
        return [Stanza(SCRYPT_TYPE, args, _wrap_key(key, file_key))]

    def __repr__(self) -> str:
        return f"ScryptRecipient(work_factor={self.work_factor})"


class ScryptIdentity:
    """A passphrase as an identity; refuses work factors above ``max_work_factor``."""

    __slots__ = ("_passphrase", "max_work_factor")

    def __init__(self, passphrase: bytes, max_work_factor: int = DEFAULT_MAX_WORK_FACTOR) -> None:
        if not 1 <= max_work_factor <= 30:
            raise UsageError(_("max_work_factor must be 1..30"))
        self._passphrase = bytes(passphrase)
        self.max_work_factor = max_work_factor

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        if any(s.type == SCRYPT_TYPE for s in stanzas) and len(stanzas) != 1:
            raise AgeError("header", _("an scrypt stanza must be the only stanza"))
        for stanza in stanzas:
            if stanza.type != SCRYPT_TYPE:
                continue
            if len(stanza.args) != 2:
                raise AgeError("header", _("an scrypt stanza must have exactly two arguments"))
            try:
                salt = b64.decode(stanza.args[0].encode("ascii"))
            except b64.Base64Error:
                raise AgeError("header", _("the scrypt salt is not canonical base64")) from None
            if len(salt) != 16:
                raise AgeError("header", _("the scrypt salt is not 16 bytes"))
            work_factor = parse_work_factor(stanza.args[1])
            # The limit is checked before scrypt runs: N = 2**23 would take 8 GiB.
            if work_factor > self.max_work_factor:
                raise AgeError(
                    "header",
                    _("scrypt work factor {work_factor} is above the limit of {max_work_factor}").format(
                        work_factor=work_factor,
                        max_work_factor=self.max_work_factor,
                    ),
                )
            if len(stanza.body) != _WRAPPED_SIZE:
                raise AgeError("header", _("the scrypt stanza body is not 32 bytes"))
            key = _scrypt_key(self._passphrase, salt, work_factor)
            file_key = _unwrap_key(key, stanza.body)
            if file_key is not None:
                return file_key
        return None

    def __repr__(self) -> str:
        return f"ScryptIdentity(max_work_factor={self.max_work_factor})"


def parse_work_factor(text: str) -> int:
    """The scrypt ``logN`` argument: decimal, no sign, no leading zero (ABNF %x31-39 *DIGIT)."""
    if not _WORK_FACTOR_RE.fullmatch(text):
        raise AgeError("header", _("the scrypt work factor is not a plain decimal number"))
    if len(text) > 2:
        raise AgeError("header", _("the scrypt work factor is far too large"))
    return int(text)


def parse_identity(text: str) -> X25519Identity | MLKEM768X25519Identity:
    """One identity string: ``AGE-SECRET-KEY-PQ-1...`` (hybrid) or ``AGE-SECRET-KEY-1...``."""
    text = text.strip()
    if text.upper().startswith("AGE-SECRET-KEY-PQ-"):
        return MLKEM768X25519Identity.from_bech32(text)
    return X25519Identity.from_bech32(text)


def parse_recipient(text: str) -> X25519Recipient | MLKEM768X25519Recipient:
    """One recipient string: ``age1pq1...`` (hybrid post-quantum) or ``age1...`` (X25519)."""
    text = text.strip()
    if text.lower().startswith(PQ_RECIPIENT_HRP + "1"):
        return MLKEM768X25519Recipient.from_bech32(text)
    return X25519Recipient.from_bech32(text)


def parse_identities(text: str) -> list[X25519Identity | MLKEM768X25519Identity]:
    """Identities from an age-keygen style file: one per line, ``#`` comments, blanks.

    Both native key types are read: X25519 and the hybrid post-quantum type.
    """
    out: list[X25519Identity | MLKEM768X25519Identity] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            out.append(parse_identity(line))
        except FormatError:
            raise FormatError(_("line {number} of the identity file is not an age identity").format(
                number=number,
            )) from None
    if not out:
        raise FormatError(_("the identity file holds no identity"))
    return out
