"""age's hybrid post-quantum recipient type ``mlkem768x25519`` (C2SP age.md).

A file key is sealed with HPKE base mode: KEM MLKEM768-X25519 (X-Wing, draft-ietf-hpke-pq),
KDF HKDF-SHA256, AEAD ChaCha20-Poly1305, ``info = "age-encryption.org/mlkem768x25519"``,
empty AAD. The stanza is ``-> mlkem768x25519 base64(enc)`` with the 32-byte HPKE
ciphertext as its body.

Invariants:

* **No hand-written cryptography.** HPKE, ML-KEM-768, X25519 and SHAKE256 all come from
  ``cryptography`` (``hazmat.primitives.hpke``). The one step composed here is the
  KEM's own key expansion (an identity is a 32-byte seed; ``SHAKE256(seed, 96)`` gives
  the ML-KEM-768 seed ``d || z`` and the X25519 scalar, as filippo.io/hpke-pq and
  X-Wing define it), because ``cryptography`` builds the hybrid key from its two halves
  only. The CCTV vectors check that expansion end to end.
* **Strict stanzas, checked before any decryption**: exactly one argument, canonical
  base64 of exactly 1120 bytes, a 32-byte body; a stanza whose X25519 share gives the
  all-zero shared secret (a low-order point) is refused as a malformed header, like the
  X25519 type (CCTV ``hybrid_low_order``, ``hybrid_identity``). A tag that does not open
  means "not for this identity".
* **No downgrade by mixing.** A file sealed to a post-quantum recipient is only as
  strong as its weakest stanza, so sandi never writes one that also has classical
  (X25519, scrypt, ssh, p256tag) stanzas and, by default, refuses to open one
  (:func:`check_not_mixed`). Unknown stanza types (grease, plugins) are not judged.
* Keys are opaque: reprs show only the recipient's fingerprint-sized prefix, secrets
  leave only through methods whose names say ``unsafe``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey, MLKEM768PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from sandi.errors import FormatError
from sandi.i18n import _

from . import b64, bech32
from .errors import AgeError, AgeErrorKind
from .header import FILE_KEY_SIZE, Stanza

MLKEM768X25519_TYPE = "mlkem768x25519"
PQ_RECIPIENT_HRP = "age1pq"
PQ_IDENTITY_HRP = "age-secret-key-pq-"
SEED_SIZE = 32
#: ML-KEM-768 encapsulation key (1184) || X25519 public key (32)
PUBLIC_KEY_SIZE = 1216
#: ML-KEM-768 ciphertext (1088) || X25519 ephemeral share (32)
ENC_SIZE = 1120
_MLKEM_PUBLIC_SIZE = 1184
_MLKEM_CIPHERTEXT_SIZE = 1088
_WRAPPED_SIZE = FILE_KEY_SIZE + 16
_HPKE_INFO = b"age-encryption.org/mlkem768x25519"
# The failure class, kept apart so the messages beside it read as the translated text.
_HEADER: AgeErrorKind = "header"
_SUITE = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)

#: native stanza types that resist a quantum computer
POST_QUANTUM_TYPES = frozenset({MLKEM768X25519_TYPE, "mlkem768p256tag"})
#: native (and common plugin) stanza types that do not
CLASSICAL_TYPES = frozenset({"X25519", "scrypt", "ssh-rsa", "ssh-ed25519", "p256tag"})


def is_post_quantum(stanzas: Sequence[Stanza]) -> bool:
    """True if some stanza is of a post-quantum type."""
    return any(s.type in POST_QUANTUM_TYPES for s in stanzas)


def mixes_classical(stanzas: Sequence[Stanza]) -> bool:
    """True if post-quantum stanzas sit beside classical ones (a downgrade)."""
    return is_post_quantum(stanzas) and any(s.type in CLASSICAL_TYPES for s in stanzas)


def check_not_mixed(stanzas: Sequence[Stanza]) -> None:
    """Refuse a header that mixes post-quantum and classical recipients."""
    if mixes_classical(stanzas):
        raise AgeError(
            _HEADER,
            _("the file mixes post-quantum and classical recipients"),
            hint=_(
                "a quantum computer could open it through the classical recipient; "
                "ask the sender to encrypt to post-quantum recipients only"
            ),
        )


def _expand(seed: bytes) -> tuple[MLKEM768PrivateKey, X25519PrivateKey]:
    digest = hashes.Hash(hashes.SHAKE256(digest_size=64 + 32))
    digest.update(seed)
    expanded = digest.finalize()
    mlkem = MLKEM768PrivateKey.from_seed_bytes(expanded[:64])
    return mlkem, X25519PrivateKey.from_private_bytes(expanded[64:])


class MLKEM768X25519Recipient:
    """An ``age1pq1...`` public key: ML-KEM-768 and X25519, 1216 bytes."""

    __slots__ = ("_key", "_raw")

    def __init__(self, mlkem: MLKEM768PublicKey, x25519: X25519PublicKey) -> None:
        self._key = hpke.MLKEM768X25519PublicKey(mlkem, x25519)
        self._raw = mlkem.public_bytes_raw() + x25519.public_bytes(Encoding.Raw, PublicFormat.Raw)

    @classmethod
    def from_public_bytes(cls, data: bytes) -> MLKEM768X25519Recipient:
        data = bytes(data)
        if len(data) != PUBLIC_KEY_SIZE:
            raise FormatError(_("an ML-KEM-768 + X25519 public key is 1216 bytes"))
        try:
            mlkem = MLKEM768PublicKey.from_public_bytes(data[:_MLKEM_PUBLIC_SIZE])
        except ValueError:
            raise FormatError(_("the ML-KEM-768 part of the public key is invalid")) from None
        return cls(mlkem, X25519PublicKey.from_public_bytes(data[_MLKEM_PUBLIC_SIZE:]))

    @classmethod
    def from_bech32(cls, text: str) -> MLKEM768X25519Recipient:
        text = text.strip()
        try:
            hrp, data = bech32.decode(text)
        except bech32.Bech32Error as exc:
            raise FormatError(_("not a valid age recipient ({reason})").format(reason=exc)) from None
        if hrp != PQ_RECIPIENT_HRP or text != text.lower():
            raise FormatError(_("not a valid post-quantum age recipient (expected age1pq1...)"))
        return cls.from_public_bytes(data)

    @property
    def public_bytes(self) -> bytes:
        return self._raw

    def to_bech32(self) -> str:
        return bech32.encode(PQ_RECIPIENT_HRP, self._raw)

    def wrap(self, file_key: bytes) -> list[Stanza]:
        sealed = _SUITE.encrypt(file_key, self._key, info=_HPKE_INFO)
        enc, body = sealed[:ENC_SIZE], sealed[ENC_SIZE:]
        return [Stanza(MLKEM768X25519_TYPE, (b64.encode(enc).decode("ascii"),), body)]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MLKEM768X25519Recipient) and other._raw == self._raw

    def __hash__(self) -> int:
        return hash(self._raw)

    def __str__(self) -> str:
        return self.to_bech32()

    def __repr__(self) -> str:
        # The full string is ~1960 characters: a prefix is enough to tell keys apart.
        prefix = self.to_bech32()[:24] + "..."
        return f"MLKEM768X25519Recipient({prefix!r})"


class MLKEM768X25519Identity:
    """An ``AGE-SECRET-KEY-PQ-1...`` identity (a 32-byte seed). Opaque in repr."""

    __slots__ = ("_key", "_recipient", "_seed", "_x25519")

    def __init__(self, seed: bytes) -> None:
        seed = bytes(seed)
        if len(seed) != SEED_SIZE:
            raise FormatError(_("a post-quantum age identity is 32 bytes"))
        mlkem, x25519 = _expand(seed)
        self._seed = seed
        self._x25519 = x25519
        self._key = hpke.MLKEM768X25519PrivateKey(mlkem, x25519)
        self._recipient = MLKEM768X25519Recipient(mlkem.public_key(), x25519.public_key())

    @classmethod
    def generate(cls) -> MLKEM768X25519Identity:
        return cls(os.urandom(SEED_SIZE))

    @classmethod
    def from_private_bytes(cls, data: bytes) -> MLKEM768X25519Identity:
        return cls(data)

    @classmethod
    def from_bech32(cls, text: str) -> MLKEM768X25519Identity:
        text = text.strip()
        try:
            hrp, data = bech32.decode(text)
        except bech32.Bech32Error:
            # Never echo the string: it may be a mistyped secret key.
            raise FormatError(_("not a valid age identity (bad Bech32)")) from None
        if hrp != PQ_IDENTITY_HRP or text != text.upper() or len(data) != SEED_SIZE:
            raise FormatError(_("not a valid post-quantum age identity (expected AGE-SECRET-KEY-PQ-1...)"))
        return cls(data)

    @property
    def recipient(self) -> MLKEM768X25519Recipient:
        return self._recipient

    def secret_bech32_unsafe(self) -> str:
        """The secret seed as ``AGE-SECRET-KEY-PQ-1...``: handle with care, never log it."""
        return bech32.encode(PQ_IDENTITY_HRP, self._seed, upper=True)

    def private_bytes_unsafe(self) -> bytes:
        """The raw 32-byte secret seed: handle with care, never log it."""
        return self._seed

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        for stanza in stanzas:
            if stanza.type != MLKEM768X25519_TYPE:
                continue
            if len(stanza.args) != 1:
                raise AgeError(_HEADER, _("an mlkem768x25519 stanza must have exactly one argument"))
            try:
                enc = b64.decode(stanza.args[0].encode("ascii"))
            except b64.Base64Error:
                raise AgeError(_HEADER, _("the mlkem768x25519 enc is not canonical base64")) from None
            if len(enc) != ENC_SIZE:
                raise AgeError(_HEADER, _("the mlkem768x25519 enc is not 1120 bytes"))
            if len(stanza.body) != _WRAPPED_SIZE:
                raise AgeError(_HEADER, _("the mlkem768x25519 stanza body is not 32 bytes"))
            try:
                # HPKE reports a low-order share as a wrong tag; age calls it malformed.
                self._x25519.exchange(X25519PublicKey.from_public_bytes(enc[_MLKEM_CIPHERTEXT_SIZE:]))
            except ValueError:
                raise AgeError(
                    _HEADER, _("the X25519 part of the mlkem768x25519 enc is a low-order point")
                ) from None
            try:
                file_key = _SUITE.decrypt(enc + stanza.body, self._key, info=_HPKE_INFO)
            except InvalidTag:
                continue
            return file_key
        return None

    def __repr__(self) -> str:
        prefix = self._recipient.to_bech32()[:24] + "..."
        return f"MLKEM768X25519Identity(recipient={prefix!r})"
