"""Opaque key types: the only place where private key objects are held.

Invariants:

* a private key never appears in a ``repr``, ``str``, exception text or log: the
  repr shows the public fingerprint only, and objects refuse to be pickled or
  copied by accident;
* the raw secret leaves a :class:`SigningKey` only through
  :meth:`SigningKey.private_bytes_unsafe` (its callers are the key stores and the
  passphrase-protected exports, each of which encrypts it at once);
* the fingerprint of any public key (signing or encryption) is
  ``sha256(raw 32-byte public key).hexdigest()``: one rule for the registry, the
  directory, the documents and the command line.

Encryption keys are :class:`sandi.formats.age.X25519Identity` objects (the age
codec owns them); this module gives them the same fingerprint rule.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, NoReturn

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sandi.errors import FormatError, VerificationError
from sandi.i18n import _

if TYPE_CHECKING:
    from cryptography import x509

PUBLIC_KEY_SIZE = 32
SEED_SIZE = 32


def fingerprint(public_key: bytes) -> str:
    """The sandi fingerprint of a raw 32-byte public key (Ed25519 or X25519)."""
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise FormatError(_("a public key is {public_key_size} bytes, not {count}").format(
            public_key_size=PUBLIC_KEY_SIZE,
            count=len(public_key),
        ))
    return hashlib.sha256(public_key).hexdigest()


class SigningKey:
    """An Ed25519 private key (an agency's or the root's signing key)."""

    __slots__ = ("_fingerprint", "_pub", "_sk")

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        if not isinstance(private_key, Ed25519PrivateKey):
            raise TypeError("SigningKey wraps an Ed25519 private key")
        self._sk = private_key
        self._pub = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self._fingerprint = hashlib.sha256(self._pub).hexdigest()

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes_unsafe(cls, seed: bytes) -> SigningKey:
        """Rebuild a key from its raw 32-byte seed (key stores and imports only)."""
        if len(seed) != SEED_SIZE:
            raise FormatError(_("an Ed25519 private key is 32 bytes"))
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    # -- public side -------------------------------------------------------------------

    def public_key_bytes(self) -> bytes:
        """The raw 32-byte Ed25519 public key."""
        return self._pub

    def public_key(self) -> Ed25519PublicKey:
        """The public key as a ``cryptography`` object (for certificates)."""
        return self._sk.public_key()

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def minisign_key_id(self) -> bytes:
        """The 8-byte minisign key id derived from the public key."""
        from sandi.formats.minisign import derive_key_id  # lazy: keeps imports light

        return derive_key_id(self._pub)

    # -- private operations ------------------------------------------------------------

    def sign(self, data: bytes) -> bytes:
        """A 64-byte Ed25519 signature over ``data``."""
        return self._sk.sign(data)

    def sign_x509(self, builder: Any) -> Any:
        """Sign an X.509 certificate or CRL builder with this key (Ed25519, no hash).

        ``builder`` is an ``x509.CertificateBuilder`` or
        ``x509.CertificateRevocationListBuilder``; the key itself never leaves.
        """
        return builder.sign(self._sk, None)

    def private_bytes_unsafe(self) -> bytes:
        """The raw 32-byte secret seed. Only for code that encrypts it immediately."""
        return self._sk.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    # -- hygiene -----------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"SigningKey(fingerprint={self._fingerprint[:16]}…)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SigningKey):
            return NotImplemented
        return self._pub == other._pub

    def __hash__(self) -> int:
        return hash(self._pub)

    def __reduce__(self) -> NoReturn:
        raise TypeError("a SigningKey cannot be pickled; export it through the key store")

    def __copy__(self) -> NoReturn:
        raise TypeError("a SigningKey is not copied")

    def __deepcopy__(self, memo: object) -> NoReturn:
        raise TypeError("a SigningKey is not copied")


def verify_ed25519(public_key: bytes, signature: bytes, data: bytes) -> None:
    """Check an Ed25519 signature; raise :class:`VerificationError` if it is not valid."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
    except (InvalidSignature, ValueError):
        raise VerificationError(_("signature verification failed")) from None


def certificate_public_key_bytes(cert: x509.Certificate) -> bytes:
    """The raw 32-byte public key of an Ed25519 or X25519 certificate."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

    key = cert.public_key()
    if isinstance(key, Ed25519PublicKey | X25519PublicKey):
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    raise FormatError(_("the certificate's key is neither Ed25519 nor X25519"))
