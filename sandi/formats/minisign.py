"""minisign public keys, signatures and secret key files, byte for byte as minisign 0.11.

Pure codecs: no state, no files, no printing. The layouts are in
``shared/design/minisign-notes.md`` and ``docs/format.md`` (section 2).

Invariants this module keeps:

* **sandi signs ``ED`` only**: Ed25519 (pure, libsodium ``crypto_sign_detached``) over the
  64-byte unkeyed BLAKE2b-512 digest of the document, then a *global signature* over
  ``signature || trusted_comment_bytes``. The digest is computed by :class:`Prehasher` in
  64 KiB blocks, so any document size works in constant memory.
* **Verification is all-or-nothing and says nothing about why.** :func:`verify_digest` rejects
  the legacy ``Ed`` algorithm (the equivalent of ``minisign -V -H``), a key id that differs from
  the public key's, a bad document signature and a bad global signature with one and the same
  :class:`~sandi.errors.VerificationError` message, so it cannot be used as an oracle. The
  trusted comment is returned only after both signatures verified.
* **Parsing is strict and bounded.** Text is measured before it is split or decoded; every
  base64 line must have its exact length and be canonical; comments are single lines of UTF-8
  without control characters other than TAB; anything else raises
  :class:`MinisignFormatError`. Limits are minisign 0.11's measured ones: an untrusted comment
  line of at most 1022 bytes (prefix included) and a trusted comment of at most 8173 bytes,
  one byte less on a CRLF line (minisign's buffers hold the CR too); sandi also refuses to
  *sign* a longer trusted comment, since minisign could not verify it.
* **Secret keys are opaque.** :class:`MinisignSecretKey` shows only its key id in ``repr``;
  the seed comes out only through the explicitly named :meth:`MinisignSecretKey.reveal_seed`.
  An encrypted key file is decrypted only after its scrypt work factor was checked against the
  caller's limits, and its checksum is compared in constant time. Error texts never contain key
  material, passphrases or the input text.
* **Key ids of sandi keys are derived, not random**: :func:`derive_key_id` (first 8 bytes of
  ``BLAKE2b-256(b"sandi/minisign-key-id/v1" || public_key)``), so the same agency key has the
  same minisign key id on every machine. Keys made by ``minisign -G`` keep their random id.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import unicodedata
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

from sandi.errors import CredentialError, FormatError, UsageError, VerificationError
from sandi.i18n import N_, _

__all__ = [
    "ALG_LEGACY",
    "ALG_PREHASHED",
    "BLOCK_SIZE",
    "DEFAULT_MEMLIMIT",
    "DEFAULT_OPSLIMIT",
    "KEY_ID_CONTEXT",
    "MAX_TRUSTED_COMMENT_BYTES",
    "MAX_UNTRUSTED_COMMENT_LINE_BYTES",
    "MinisignFormatError",
    "MinisignPublicKey",
    "MinisignSecretKey",
    "MinisignSignature",
    "Prehasher",
    "Signer",
    "decode_secret_key",
    "derive_key_id",
    "encode_secret_key",
    "encode_secret_key_unencrypted",
    "key_id_hex",
    "prehash_stream",
    "secret_key_is_encrypted",
    "sign_digest",
    "sign_stream",
    "verify_digest",
    "verify_stream",
]

# --- constants (minisign.h, 0.11) -------------------------------------------------------------

ALG_LEGACY: Final = b"Ed"  # pure Ed25519 over the whole file; parsed, never signed, rejected on verify
ALG_PREHASHED: Final = b"ED"  # Ed25519 over BLAKE2b-512(file); the only one sandi signs
_KDF_SCRYPT: Final = b"Sc"
_KDF_NONE: Final = b"\x00\x00"
_CHK_BLAKE2B: Final = b"B2"

KEY_ID_SIZE: Final = 8
PUBLIC_KEY_SIZE: Final = 32
SIGNATURE_SIZE: Final = 64
DIGEST_SIZE: Final = 64  # BLAKE2b-512
_SEED_SIZE: Final = 32
_SALT_SIZE: Final = 32
_CHECKSUM_SIZE: Final = 32

_PUBKEY_STRUCT_SIZE: Final = 2 + KEY_ID_SIZE + PUBLIC_KEY_SIZE  # 42
_SIG_STRUCT_SIZE: Final = 2 + KEY_ID_SIZE + SIGNATURE_SIZE  # 74
_SECKEY_STRUCT_SIZE: Final = 2 + 2 + 2 + _SALT_SIZE + 8 + 8 + KEY_ID_SIZE + 64 + _CHECKSUM_SIZE  # 158
_SECKEY_ENCRYPTED_OFFSET: Final = 54  # keynum || sk || chk are XORed with the scrypt stream
_SECKEY_STREAM_SIZE: Final = _SECKEY_STRUCT_SIZE - _SECKEY_ENCRYPTED_OFFSET  # 104


def _b64len(n: int) -> int:
    return 4 * ((n + 2) // 3)


_PUBKEY_B64_LEN: Final = _b64len(_PUBKEY_STRUCT_SIZE)  # 56
_SIG_B64_LEN: Final = _b64len(_SIG_STRUCT_SIZE)  # 100
_GLOBAL_SIG_B64_LEN: Final = _b64len(SIGNATURE_SIZE)  # 88
_SECKEY_B64_LEN: Final = _b64len(_SECKEY_STRUCT_SIZE)  # 212

UNTRUSTED_PREFIX: Final = "untrusted comment: "
TRUSTED_PREFIX: Final = "trusted comment: "
#: minisign 0.11 reads the untrusted-comment line into a 1024-byte buffer: measured, a line of
#: up to 1022 bytes (prefix included, line terminator excluded) is accepted.
MAX_UNTRUSTED_COMMENT_LINE_BYTES: Final = 1022
#: minisign 0.11's trusted-comment buffer is 8192 bytes for the whole line: measured, comment
#: text (after the prefix) of up to 8173 bytes verifies.
MAX_TRUSTED_COMMENT_BYTES: Final = 8173

#: minisign hashes files in 64 KiB blocks; so do we.
BLOCK_SIZE: Final = 64 * 1024

#: Domain-separation string for :func:`derive_key_id` (decided in docs/adr/0002).
KEY_ID_CONTEXT: Final = b"sandi/minisign-key-id/v1"

#: libsodium's crypto_pwhash_scryptsalsa208sha256 OPSLIMIT/MEMLIMIT_SENSITIVE: what
#: ``minisign -G`` uses (scrypt N=2^20, r=8, p=1, 1 GiB). Also the default *maximum* accepted
#: when decoding a key file, so a hostile file cannot ask for more work than minisign would.
DEFAULT_OPSLIMIT: Final = 33554432
DEFAULT_MEMLIMIT: Final = 1073741824

_DEFAULT_SECKEY_COMMENT: Final = "minisign encrypted secret key"
_DEFAULT_UNENCRYPTED_SECKEY_COMMENT: Final = "minisign secret key (UNENCRYPTED)"

# The largest signature file we will even look at: four lines at their limits with CRLF.
_MAX_SIG_TEXT: Final = (
    (MAX_UNTRUSTED_COMMENT_LINE_BYTES + 2)
    + (_SIG_B64_LEN + 2)
    + (len(TRUSTED_PREFIX) + MAX_TRUSTED_COMMENT_BYTES + 2)
    + (_GLOBAL_SIG_B64_LEN + 2)
)
_MAX_PUBKEY_TEXT: Final = (MAX_UNTRUSTED_COMMENT_LINE_BYTES + 2) + (_PUBKEY_B64_LEN + 2)
_MAX_SECKEY_TEXT: Final = (MAX_UNTRUSTED_COMMENT_LINE_BYTES + 2) + (_SECKEY_B64_LEN + 2)


class MinisignFormatError(FormatError):
    """minisign text (public key, signature, secret key file) does not follow the format."""


# --- small helpers -----------------------------------------------------------------------------


def derive_key_id(public_key: bytes) -> bytes:
    """The minisign key id sandi gives an Ed25519 public key.

    First 8 bytes of ``BLAKE2b-256(b"sandi/minisign-key-id/v1" || public_key)``. Deriving it
    (instead of minisign's 8 random bytes) makes the id a function of the key, so every export
    of the same agency key agrees; the context string keeps it apart from any other hash of the
    key (the sha256 fingerprint is a different function, so the two never get confused).
    """
    _check_len(public_key, PUBLIC_KEY_SIZE, "Ed25519 public key")
    return hashlib.blake2b(KEY_ID_CONTEXT + bytes(public_key), digest_size=32).digest()[:KEY_ID_SIZE]


def key_id_hex(key_id: bytes) -> str:
    """minisign's display of a key id: little-endian uint64, uppercase hex, no zero padding."""
    _check_len(key_id, KEY_ID_SIZE, N_("key id"))
    return format(int.from_bytes(key_id, "little"), "X")


def _check_len(value: bytes, size: int, what: str) -> None:
    if not isinstance(value, bytes | bytearray) or len(value) != size:
        raise UsageError(_("{what} must be {size} bytes").format(what=_(what), size=size))


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode_exact(line: bytes, size: int, what: str) -> bytes:
    """Decode one base64 line that must hold exactly ``size`` bytes, canonically encoded."""
    if len(line) != _b64len(size):
        raise MinisignFormatError(_("{what}: expected {b64len} base64 characters").format(
            what=_(what),
            b64len=_b64len(size),
        ))
    try:
        raw = base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError):
        raise MinisignFormatError(_("{what}: invalid base64").format(what=_(what))) from None
    # Re-encoding catches non-zero padding bits: one value, one spelling.
    if len(raw) != size or base64.b64encode(raw) != line:
        raise MinisignFormatError(_("{what}: non-canonical base64").format(what=_(what)))
    return raw


def _bad_comment_char(ch: str) -> bool:
    # TAB is allowed (minisign's default trusted comment uses it). Every other control or
    # format character is refused: NUL would make minisign (C strings) sign or check fewer bytes
    # than we do; CR/LF would split the line; bidi overrides would let a comment lie on screen.
    return ch != "\t" and unicodedata.category(ch) in ("Cc", "Cf", "Cs")


def _check_comment_text(text: str, max_bytes: int, what: str, error: type[Exception]) -> bytes:
    if not isinstance(text, str):
        raise UsageError(_("{what} must be text").format(what=_(what)))
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        raise error(_("{what} is not valid UTF-8").format(what=_(what))) from None
    if len(raw) > max_bytes:
        raise error(_("{what} is longer than {max_bytes} bytes").format(what=_(what), max_bytes=max_bytes))
    if any(_bad_comment_char(ch) for ch in text):
        raise error(_("{what} contains a control character").format(what=_(what)))
    return raw


def _max_untrusted_comment_bytes() -> int:
    return MAX_UNTRUSTED_COMMENT_LINE_BYTES - len(UNTRUSTED_PREFIX)


def _split_lines(data: str | bytes, count: int, max_total: int, what: str) -> tuple[list[bytes], list[int]]:
    """Split minisign text into exactly ``count`` lines, LF or CRLF, the last terminator optional.

    Returns the lines without terminators and, per line, 1 if it ended in CRLF (minisign reads
    lines into fixed buffers *with* the CR, so a CRLF line may hold one byte less), else 0.
    """
    if isinstance(data, str):
        # Length in characters bounds the UTF-8 length to 4x; check both, cheap first.
        if len(data) > max_total:
            raise MinisignFormatError(_("{what}: text too long").format(what=_(what)))
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError:
            raise MinisignFormatError(_("{what}: not valid UTF-8").format(what=_(what))) from None
    elif isinstance(data, bytes | bytearray):
        raw = bytes(data)
    else:
        raise UsageError(_("{what}: expected text or bytes").format(what=_(what)))
    if len(raw) > max_total:
        raise MinisignFormatError(_("{what}: text too long").format(what=_(what)))
    parts = raw.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()
    if len(parts) != count:
        raise MinisignFormatError(_("{what}: expected {count} lines").format(what=_(what), count=count))
    crs = [1 if p.endswith(b"\r") else 0 for p in parts]
    lines = [p[: len(p) - cr] for p, cr in zip(parts, crs, strict=True)]
    if any(b"\r" in line for line in lines):
        raise MinisignFormatError(_("{what}: stray carriage return").format(what=_(what)))
    return lines, crs


def _parse_comment_line(line: bytes, prefix: str, max_bytes: int, what: str) -> str:
    if not line.startswith(prefix.encode("ascii")):
        raise MinisignFormatError(_("{what} must start with {prefix!r}").format(
            what=_(what),
            prefix=prefix.strip(),
        ))
    body = line[len(prefix) :]
    if len(body) > max_bytes:
        raise MinisignFormatError(_("{what} is longer than {max_bytes} bytes").format(
            what=_(what),
            max_bytes=max_bytes,
        ))
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MinisignFormatError(_("{what} is not valid UTF-8").format(what=_(what))) from None
    _check_comment_text(text, max_bytes, what, MinisignFormatError)
    return text


# --- public key --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MinisignPublicKey:
    """An Ed25519 public key with its minisign key id (``minisign.pub``)."""

    key_id: bytes
    public_key: bytes

    def __post_init__(self) -> None:
        _check_len(self.key_id, KEY_ID_SIZE, N_("key id"))
        _check_len(self.public_key, PUBLIC_KEY_SIZE, "Ed25519 public key")
        object.__setattr__(self, "key_id", bytes(self.key_id))
        object.__setattr__(self, "public_key", bytes(self.public_key))

    @classmethod
    def from_raw(cls, public_key: bytes) -> MinisignPublicKey:
        """The minisign form of a sandi key: key id derived with :func:`derive_key_id`."""
        return cls(derive_key_id(public_key), public_key)

    @property
    def key_id_hex(self) -> str:
        return key_id_hex(self.key_id)

    def to_base64(self) -> str:
        """The 56-character line (what ``minisign -P`` takes)."""
        return _b64encode(ALG_LEGACY + self.key_id + self.public_key)

    def to_text(self, untrusted_comment: str | None = None) -> str:
        """The two-line ``minisign.pub`` file, LF-terminated."""
        comment = (
            f"minisign public key {self.key_id_hex}" if untrusted_comment is None else untrusted_comment
        )
        _check_comment_text(comment, _max_untrusted_comment_bytes(), N_("untrusted comment"), UsageError)
        return f"{UNTRUSTED_PREFIX}{comment}\n{self.to_base64()}\n"

    @classmethod
    def from_base64(cls, line: str | bytes) -> MinisignPublicKey:
        """Parse the 56-character base64 line (surrounding whitespace is not accepted)."""
        if isinstance(line, str):
            if len(line) != _PUBKEY_B64_LEN or not line.isascii():
                raise MinisignFormatError(_("minisign public key: expected 56 base64 characters"))
            line = line.encode("ascii")
        raw = _b64decode_exact(bytes(line), _PUBKEY_STRUCT_SIZE, "minisign public key")
        # The public key struct always says "Ed", even for keys that sign "ED".
        if raw[:2] != ALG_LEGACY:
            raise MinisignFormatError(_("minisign public key: unsupported signature algorithm"))
        return cls(raw[2:10], raw[10:])

    @classmethod
    def from_text(cls, text: str | bytes) -> MinisignPublicKey:
        """Parse a ``minisign.pub`` file: an untrusted comment line, then the base64 line."""
        (comment, key_line), crs = _split_lines(text, 2, _MAX_PUBKEY_TEXT, N_("minisign public key"))
        if len(comment) + crs[0] > MAX_UNTRUSTED_COMMENT_LINE_BYTES:
            raise MinisignFormatError(_("minisign public key: comment line too long"))
        _parse_comment_line(
            comment, UNTRUSTED_PREFIX, _max_untrusted_comment_bytes(), N_("untrusted comment")
        )
        return cls.from_base64(key_line)


# --- signatures --------------------------------------------------------------------------------


@runtime_checkable
class Signer(Protocol):
    """Anything that makes Ed25519 signatures under a minisign key id.

    ``sign`` must be pure Ed25519 (RFC 8032 without prehash or context), returning 64 bytes.
    The key id attribute is named ``minisign_key_id`` so that sandi's
    :class:`~sandi.keystore.keys.SigningKey` satisfies this protocol as it is;
    :class:`MinisignSecretKey` does too.
    """

    @property
    def minisign_key_id(self) -> bytes: ...

    def sign(self, message: bytes, /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class MinisignSignature:
    """A ``.minisig`` file. ``trusted_comment`` is authenticated only after verification."""

    algorithm: bytes
    key_id: bytes
    signature: bytes
    trusted_comment: str
    global_signature: bytes
    untrusted_comment: str = "signature from sandi"

    def __post_init__(self) -> None:
        if self.algorithm not in (ALG_PREHASHED, ALG_LEGACY):
            raise MinisignFormatError(_("minisign signature: unsupported signature algorithm"))
        _check_len(self.key_id, KEY_ID_SIZE, N_("key id"))
        _check_len(self.signature, SIGNATURE_SIZE, N_("signature"))
        _check_len(self.global_signature, SIGNATURE_SIZE, N_("global signature"))
        _check_comment_text(
            self.trusted_comment, MAX_TRUSTED_COMMENT_BYTES, N_("trusted comment"), UsageError
        )
        _check_comment_text(
            self.untrusted_comment, _max_untrusted_comment_bytes(), N_("untrusted comment"), UsageError
        )
        for name in ("algorithm", "key_id", "signature", "global_signature"):
            object.__setattr__(self, name, bytes(getattr(self, name)))

    @property
    def key_id_hex(self) -> str:
        return key_id_hex(self.key_id)

    @property
    def trusted_comment_bytes(self) -> bytes:
        """The bytes the global signature covers after the signature itself."""
        return self.trusted_comment.encode("utf-8")

    def to_text(self) -> str:
        """The four-line ``.minisig`` file, LF-terminated, as ``minisign -S`` writes it."""
        return (
            f"{UNTRUSTED_PREFIX}{self.untrusted_comment}\n"
            f"{_b64encode(self.algorithm + self.key_id + self.signature)}\n"
            f"{TRUSTED_PREFIX}{self.trusted_comment}\n"
            f"{_b64encode(self.global_signature)}\n"
        )

    def to_bytes(self) -> bytes:
        return self.to_text().encode("utf-8")

    @classmethod
    def from_text(cls, text: str | bytes) -> MinisignSignature:
        """Parse a ``.minisig`` file strictly (4 lines, LF or CRLF). ``Ed`` parses; verify rejects it."""
        lines, crs = _split_lines(text, 4, _MAX_SIG_TEXT, N_("minisign signature"))
        untrusted_line, sig_line, trusted_line, global_line = lines
        if len(untrusted_line) + crs[0] > MAX_UNTRUSTED_COMMENT_LINE_BYTES:
            raise MinisignFormatError(_("minisign signature: untrusted comment line too long"))
        untrusted = _parse_comment_line(
            untrusted_line, UNTRUSTED_PREFIX, _max_untrusted_comment_bytes(), N_("untrusted comment")
        )
        raw = _b64decode_exact(sig_line, _SIG_STRUCT_SIZE, N_("minisign signature"))
        if raw[:2] not in (ALG_PREHASHED, ALG_LEGACY):
            raise MinisignFormatError(_("minisign signature: unsupported signature algorithm"))
        trusted = _parse_comment_line(
            trusted_line, TRUSTED_PREFIX, MAX_TRUSTED_COMMENT_BYTES - crs[2], N_("trusted comment")
        )
        global_sig = _b64decode_exact(global_line, SIGNATURE_SIZE, N_("minisign global signature"))
        return cls(
            algorithm=raw[:2],
            key_id=raw[2:10],
            signature=raw[10:],
            trusted_comment=trusted,
            global_signature=global_sig,
            untrusted_comment=untrusted,
        )


class Prehasher:
    """Streaming BLAKE2b-512 (unkeyed, 64-byte output): the message an ``ED`` signature signs."""

    __slots__ = ("_h",)

    def __init__(self) -> None:
        self._h = hashlib.blake2b(digest_size=DIGEST_SIZE)

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._h.update(data)

    def digest(self) -> bytes:
        return self._h.digest()

    def copy(self) -> Prehasher:
        other = Prehasher.__new__(Prehasher)
        other._h = self._h.copy()
        return other


class _Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


def prehash_stream(stream: _Readable) -> bytes:
    """BLAKE2b-512 of everything ``stream`` yields, read in 64 KiB blocks (constant memory)."""
    h = Prehasher()
    while True:
        block = stream.read(BLOCK_SIZE)
        if not block:
            return h.digest()
        h.update(block)


def sign_digest(
    signer: Signer,
    digest: bytes,
    trusted_comment: str,
    untrusted_comment: str | None = None,
) -> MinisignSignature:
    """Make an ``ED`` signature over a BLAKE2b-512 ``digest`` (from :class:`Prehasher`)."""
    _check_len(digest, DIGEST_SIZE, "BLAKE2b-512 digest")
    # Checked before signing: minisign cannot verify a longer trusted comment.
    tc = _check_comment_text(trusted_comment, MAX_TRUSTED_COMMENT_BYTES, N_("trusted comment"), UsageError)
    key_id = bytes(signer.minisign_key_id)
    _check_len(key_id, KEY_ID_SIZE, N_("signer key id"))
    if untrusted_comment is None:
        untrusted_comment = f"signature from sandi key {key_id_hex(key_id)}"
    _check_comment_text(
        untrusted_comment, _max_untrusted_comment_bytes(), N_("untrusted comment"), UsageError
    )
    signature = bytes(signer.sign(bytes(digest)))
    _check_len(signature, SIGNATURE_SIZE, "Ed25519 signature")
    global_signature = bytes(signer.sign(signature + tc))
    _check_len(global_signature, SIGNATURE_SIZE, "Ed25519 signature")
    return MinisignSignature(
        algorithm=ALG_PREHASHED,
        key_id=key_id,
        signature=signature,
        trusted_comment=trusted_comment,
        global_signature=global_signature,
        untrusted_comment=untrusted_comment,
    )


def sign_stream(
    signer: Signer, stream: _Readable, trusted_comment: str, untrusted_comment: str | None = None
) -> MinisignSignature:
    """:func:`sign_digest` over :func:`prehash_stream` (the trusted comment is checked first)."""
    _check_comment_text(trusted_comment, MAX_TRUSTED_COMMENT_BYTES, N_("trusted comment"), UsageError)
    return sign_digest(signer, prehash_stream(stream), trusted_comment, untrusted_comment)


_VERIFY_FAILED = N_("signature verification failed")
_VERIFY_HINT = N_("the document or its signature was changed, or it was signed by another key")


def _ed25519_ok(public_key: bytes, signature: bytes, message: bytes) -> bool:
    # libsodium (through PyNaCl) is what minisign uses, so both accept exactly the same
    # signatures (canonical S, no small-order keys).
    import nacl.exceptions
    import nacl.signing

    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError, ValueError, TypeError):
        return False
    return True


def verify_digest(public_key: MinisignPublicKey, signature: MinisignSignature, digest: bytes) -> str:
    """Verify an ``ED`` signature over a BLAKE2b-512 ``digest``; return the trusted comment.

    Raises :class:`~sandi.errors.VerificationError` with one generic message whatever failed:
    legacy ``Ed`` algorithm, key id mismatch, document signature, global signature.
    """
    _check_len(digest, DIGEST_SIZE, "BLAKE2b-512 digest")
    if not isinstance(public_key, MinisignPublicKey) or not isinstance(signature, MinisignSignature):
        raise UsageError(_("verify_digest takes a MinisignPublicKey and a MinisignSignature"))
    # Every check runs and the result is combined at the end: the same message, and roughly
    # the same work, whichever check fails.
    ok = signature.algorithm == ALG_PREHASHED
    ok &= hmac.compare_digest(signature.key_id, public_key.key_id)
    ok &= _ed25519_ok(public_key.public_key, signature.signature, bytes(digest))
    signed_comment = signature.signature + signature.trusted_comment_bytes
    ok &= _ed25519_ok(public_key.public_key, signature.global_signature, signed_comment)
    if not ok:
        raise VerificationError(_(_VERIFY_FAILED), hint=_(_VERIFY_HINT))
    return signature.trusted_comment


def verify_stream(public_key: MinisignPublicKey, signature: MinisignSignature, stream: _Readable) -> str:
    """:func:`verify_digest` over :func:`prehash_stream` of ``stream``; returns the trusted comment."""
    return verify_digest(public_key, signature, prehash_stream(stream))


# --- secret key files --------------------------------------------------------------------------


class MinisignSecretKey:
    """An Ed25519 signing key with its minisign key id. Opaque: ``repr`` shows the key id only.

    It satisfies :class:`Signer`, so it can sign directly (useful for keys read from a
    ``minisign.key`` file); sandi's own agency keys live in the key store instead.
    """

    __slots__ = ("_key_id", "_public_key", "_seed")

    def __init__(self, seed: bytes, key_id: bytes | None = None) -> None:
        import nacl.signing

        if not isinstance(seed, bytes | bytearray) or len(seed) != _SEED_SIZE:
            raise UsageError(_("Ed25519 seed must be {seed_size} bytes").format(seed_size=_SEED_SIZE))
        self._seed = bytes(seed)
        self._public_key = bytes(nacl.signing.SigningKey(self._seed).verify_key)
        if key_id is None:
            key_id = derive_key_id(self._public_key)
        _check_len(key_id, KEY_ID_SIZE, N_("key id"))
        self._key_id = bytes(key_id)

    @classmethod
    def generate(cls) -> MinisignSecretKey:
        """A new random key with a derived key id."""
        return cls(os.urandom(_SEED_SIZE))

    @property
    def key_id(self) -> bytes:
        return self._key_id

    @property
    def minisign_key_id(self) -> bytes:
        """The same as :attr:`key_id`: the name the :class:`Signer` protocol uses."""
        return self._key_id

    @property
    def key_id_hex(self) -> str:
        return key_id_hex(self._key_id)

    @property
    def public_key(self) -> MinisignPublicKey:
        return MinisignPublicKey(self._key_id, self._public_key)

    def public_key_bytes(self) -> bytes:
        return self._public_key

    def sign(self, message: bytes) -> bytes:
        import nacl.signing

        return bytes(nacl.signing.SigningKey(self._seed).sign(bytes(message)).signature)

    def reveal_seed(self) -> bytes:
        """The 32-byte Ed25519 seed. Secret: only for callers that must export it."""
        return self._seed

    def __repr__(self) -> str:
        return f"MinisignSecretKey(key_id={self.key_id_hex})"

    def __reduce__(self) -> str | tuple[object, ...]:
        # Pickling would copy the seed somewhere nobody audits.
        raise TypeError("MinisignSecretKey cannot be pickled")


def _checksum(key_id: bytes, sk64: bytes) -> bytes:
    return hashlib.blake2b(ALG_LEGACY + key_id + sk64, digest_size=_CHECKSUM_SIZE).digest()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _scrypt_stream(passphrase: bytes, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    import nacl.exceptions
    import nacl.pwhash.scrypt

    try:
        return nacl.pwhash.scrypt.kdf(_SECKEY_STREAM_SIZE, passphrase, salt, opslimit, memlimit)
    except (nacl.exceptions.CryptoError, ValueError, MemoryError) as exc:
        raise UsageError(
            _("scrypt failed for these limits ({name})").format(name=type(exc).__name__)
        ) from None


def _secret_key_text(comment: str, struct: bytes) -> str:
    _check_comment_text(comment, _max_untrusted_comment_bytes(), N_("untrusted comment"), UsageError)
    return f"{UNTRUSTED_PREFIX}{comment}\n{_b64encode(struct)}\n"


def _check_passphrase(passphrase: bytes) -> bytes:
    if not isinstance(passphrase, bytes | bytearray):
        raise UsageError(_("passphrase must be bytes"))
    if not passphrase:
        raise UsageError(_("passphrase must not be empty"))
    # minisign reads one line; it could never type a passphrase containing a newline.
    if b"\n" in passphrase or b"\r" in passphrase or b"\x00" in passphrase:
        raise UsageError(_("passphrase must be a single line"))
    return bytes(passphrase)


def encode_secret_key(
    secret: MinisignSecretKey,
    passphrase: bytes,
    *,
    opslimit: int = DEFAULT_OPSLIMIT,
    memlimit: int = DEFAULT_MEMLIMIT,
    untrusted_comment: str = _DEFAULT_SECKEY_COMMENT,
    salt: bytes | None = None,
) -> str:
    """A passphrase-protected ``minisign.key`` (``Sc``) that ``minisign -S -s`` can use.

    The defaults are minisign's own (1 GiB, a few seconds); the limits are stored in the file
    and minisign uses them as written.
    """
    pw = _check_passphrase(passphrase)
    if salt is None:
        salt = os.urandom(_SALT_SIZE)
    _check_len(salt, _SALT_SIZE, N_("salt"))
    if not (0 <= opslimit < 2**64 and 0 <= memlimit < 2**64):
        raise UsageError(_("scrypt limits out of range"))
    key_id = secret.key_id
    sk64 = secret.reveal_seed() + secret.public_key_bytes()
    plain_tail = key_id + sk64 + _checksum(key_id, sk64)
    stream = _scrypt_stream(pw, bytes(salt), opslimit, memlimit)
    struct = (
        ALG_LEGACY
        + _KDF_SCRYPT
        + _CHK_BLAKE2B
        + bytes(salt)
        + opslimit.to_bytes(8, "little")
        + memlimit.to_bytes(8, "little")
        + _xor(plain_tail, stream)
    )
    return _secret_key_text(untrusted_comment, struct)


def encode_secret_key_unencrypted(
    secret: MinisignSecretKey, *, untrusted_comment: str = _DEFAULT_UNENCRYPTED_SECKEY_COMMENT
) -> str:
    """An UNENCRYPTED ``minisign.key`` (as ``minisign -G -W`` writes). Anyone reading it can sign.

    Unlike minisign 0.11 (which leaves it zero) the checksum is filled in, so corruption is caught.
    """
    key_id = secret.key_id
    sk64 = secret.reveal_seed() + secret.public_key_bytes()
    struct = (
        ALG_LEGACY
        + _KDF_NONE
        + _CHK_BLAKE2B
        + bytes(_SALT_SIZE)
        + bytes(16)
        + key_id
        + sk64
        + _checksum(key_id, sk64)
    )
    return _secret_key_text(untrusted_comment, struct)


def _parse_secret_key_struct(text: str | bytes) -> bytes:
    (comment, key_line), crs = _split_lines(text, 2, _MAX_SECKEY_TEXT, N_("minisign secret key"))
    if len(comment) + crs[0] > MAX_UNTRUSTED_COMMENT_LINE_BYTES:
        raise MinisignFormatError(_("minisign secret key: comment line too long"))
    _parse_comment_line(comment, UNTRUSTED_PREFIX, _max_untrusted_comment_bytes(), N_("untrusted comment"))
    raw = _b64decode_exact(key_line, _SECKEY_STRUCT_SIZE, N_("minisign secret key"))
    if raw[0:2] != ALG_LEGACY:
        raise MinisignFormatError(_("minisign secret key: unsupported signature algorithm"))
    if raw[2:4] not in (_KDF_SCRYPT, _KDF_NONE):
        raise MinisignFormatError(_("minisign secret key: unsupported key derivation function"))
    if raw[4:6] != _CHK_BLAKE2B:
        raise MinisignFormatError(_("minisign secret key: unsupported checksum function"))
    return raw


def secret_key_is_encrypted(text: str | bytes) -> bool:
    """Whether a ``minisign.key`` needs a passphrase (``Sc``), so a caller knows whether to ask."""
    return _parse_secret_key_struct(text)[2:4] == _KDF_SCRYPT


def decode_secret_key(
    text: str | bytes,
    passphrase: bytes | None,
    *,
    max_opslimit: int = DEFAULT_OPSLIMIT,
    max_memlimit: int = DEFAULT_MEMLIMIT,
) -> MinisignSecretKey:
    """Read a ``minisign.key`` (``Sc`` encrypted, or unencrypted ``-W``).

    The scrypt limits in the file are checked against ``max_opslimit``/``max_memlimit`` before
    any work. A wrong passphrase raises :class:`~sandi.errors.CredentialError`; a malformed file
    :class:`MinisignFormatError`. ``passphrase`` is ignored for an unencrypted key.
    """
    raw = _parse_secret_key_struct(text)
    encrypted = raw[2:4] == _KDF_SCRYPT
    salt = raw[6:38]
    opslimit = int.from_bytes(raw[38:46], "little")
    memlimit = int.from_bytes(raw[46:54], "little")
    tail = raw[_SECKEY_ENCRYPTED_OFFSET:]
    if encrypted:
        if opslimit > max_opslimit or memlimit > max_memlimit:
            raise MinisignFormatError(
                _("minisign secret key: scrypt work factor above the allowed limit"),
                hint=_("the key file asks for more memory or time than this system allows"),
            )
        if passphrase is None:
            raise CredentialError(_("this minisign secret key is encrypted: a passphrase is needed"))
        checked = _check_passphrase(passphrase)
        try:
            stream = _scrypt_stream(checked, salt, opslimit, memlimit)
        except UsageError:
            # the limits come from the file: parameters libsodium refuses are the file's fault
            raise MinisignFormatError(
                _("minisign secret key: scrypt parameters that cannot be used")
            ) from None
        tail = _xor(tail, stream)
    elif salt != bytes(_SALT_SIZE) or opslimit or memlimit:
        raise MinisignFormatError(_("minisign secret key: unencrypted key with scrypt parameters"))
    key_id, sk64, chk = tail[:8], tail[8:72], tail[72:]
    expected = _checksum(key_id, sk64)
    if encrypted:
        if not hmac.compare_digest(chk, expected):
            raise CredentialError(_("wrong passphrase for this minisign secret key"))
    # minisign 0.11 writes an all-zero checksum for -W keys; any other value must be right.
    elif chk != bytes(_CHECKSUM_SIZE) and not hmac.compare_digest(chk, expected):
        raise MinisignFormatError(_("minisign secret key: checksum mismatch"))
    secret = MinisignSecretKey(sk64[:32], key_id)
    if not hmac.compare_digest(secret.public_key_bytes(), sk64[32:]):
        raise MinisignFormatError(_("minisign secret key: public half does not match the seed"))
    return secret
