"""Opaque key types: the only place where private key objects are held.

Invariants:

* a private key never appears in a ``repr``, ``str``, exception text or log: the
  repr shows the public fingerprint only, and objects refuse to be pickled or
  copied by accident;
* the raw secret leaves a :class:`SigningKey` only through
  :meth:`SigningKey.private_bytes_unsafe` (its callers are the key stores and the
  passphrase-protected exports, each of which encrypts it at once);
* the fingerprint of any public key (signing, encryption or hybrid encryption) is
  ``sha256(raw public key).hexdigest()`` (32 bytes; 1216 for the ML-KEM-768 + X25519
  hybrid key; 65 for an ECDSA P-256 key, its uncompressed X9.62 point): one rule for
  the registry, the directory, the documents and the command line;
* an ECDSA P-256 key (PDF signatures that viewers validate, ADR 0014) is a
  :class:`P256Signer`, a type of its own: it is never accepted where an Ed25519
  :class:`Signer` is expected, and its signatures are ECDSA with SHA-256, DER-encoded
  (what CMS and X.509 carry);
* everything that signs (certificates, CRLs, policies, the directory, audit
  checkpoints, seals, detached signatures) takes a :class:`Signer`: the signing
  operation goes to where the key lives (a :class:`SigningKey` in memory, or a key
  on a PKCS#11 token that never leaves it), so no signing call site needs the raw
  private key.

Encryption keys are :class:`sandi.formats.age.X25519Identity` objects, and hybrid
post-quantum ones :class:`sandi.formats.age.MLKEM768X25519Identity` (the age codec
owns them); this module gives them the same fingerprint rule.

A hybrid key's certificate (ADR 0011) carries the X25519 half as its subject public key
and the whole 1216-byte key in a critical extension (:data:`HYBRID_KEY_OID`); the two
must agree, and :func:`certificate_public_key_bytes` returns the whole key.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, NoReturn

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sandi.errors import FormatError, VerificationError
from sandi.i18n import _

if TYPE_CHECKING:
    from cryptography import x509

PUBLIC_KEY_SIZE = 32
#: an ML-KEM-768 encapsulation key (1184 bytes) and an X25519 public key (32 bytes)
HYBRID_PUBLIC_KEY_SIZE = 1216
SEED_SIZE = 32
#: an uncompressed P-256 point (0x04, X, Y): what a P-256 key's fingerprint hashes
P256_PUBLIC_KEY_SIZE = 65
#: a P-256 private scalar, big-endian, as the key stores keep it
P256_SECRET_SIZE = 32
#: the certificate extension that carries a hybrid (age1pq1) public key: a private
#: OID under the UUID arc (ITU-T X.667), since no X.509 encoding of X-Wing keys is
#: settled yet. Its value is a DER OCTET STRING of the 1216 raw bytes.
HYBRID_KEY_OID = "2.25.145100229766638737691016862335717181800"


def fingerprint(public_key: bytes) -> str:
    """The sandi fingerprint of a raw public key (Ed25519, X25519 or hybrid)."""
    if len(public_key) not in (PUBLIC_KEY_SIZE, HYBRID_PUBLIC_KEY_SIZE, P256_PUBLIC_KEY_SIZE):
        raise FormatError(_("a public key is {public_key_size} bytes, not {count}").format(
            public_key_size=PUBLIC_KEY_SIZE,
            count=len(public_key),
        ))
    return hashlib.sha256(public_key).hexdigest()


class Signer(ABC):
    """An Ed25519 signing key wherever it lives: sign, and tell the public key.

    Implementations: :class:`SigningKey` (the key in memory) and the PKCS#11 token
    key (:mod:`sandi.keystore.pkcs11`). ``sign`` is pure Ed25519 (RFC 8032, no
    prehash, no context) and returns 64 bytes.
    """

    __slots__ = ()

    @abstractmethod
    def sign(self, data: bytes) -> bytes:
        """A 64-byte Ed25519 signature over ``data``."""

    @abstractmethod
    def public_key_bytes(self) -> bytes:
        """The raw 32-byte Ed25519 public key."""

    @abstractmethod
    def sign_x509(self, builder: Any) -> Any:
        """Sign an ``x509.CertificateBuilder`` or ``CertificateRevocationListBuilder``."""

    def public_key(self) -> Ed25519PublicKey:
        """The public key as a ``cryptography`` object (for certificates)."""
        return Ed25519PublicKey.from_public_bytes(self.public_key_bytes())

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key_bytes())

    @property
    def minisign_key_id(self) -> bytes:
        """The 8-byte minisign key id derived from the public key."""
        from sandi.formats.minisign import derive_key_id  # lazy: keeps imports light

        return derive_key_id(self.public_key_bytes())


class SigningKey(Signer):
    """An Ed25519 private key in memory (an agency's or the root's signing key)."""

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


# -- ECDSA P-256 (PDF signatures, ADR 0014) -----------------------------------------------------


class P256Signer(ABC):
    """An ECDSA P-256 key wherever it lives: the PDF root and the ``pdf-signing`` keys.

    Implementations: :class:`P256Key` (in memory, from a file or keyring store) and the
    PKCS#11 token key. ``sign`` hashes ``data`` with SHA-256 and returns the DER
    ``ECDSA-Sig-Value`` (what CMS signatures and X.509 carry).
    """

    __slots__ = ()

    @abstractmethod
    def sign(self, data: bytes) -> bytes:
        """A DER ECDSA signature (SHA-256) over ``data``."""

    @abstractmethod
    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The public key as a ``cryptography`` object (for certificates)."""

    @abstractmethod
    def sign_x509(self, builder: Any) -> Any:
        """Sign an ``x509.CertificateBuilder`` or ``CertificateRevocationListBuilder``
        (ecdsa-with-SHA256)."""

    def public_key_bytes(self) -> bytes:
        """The 65-byte uncompressed point."""
        return p256_public_bytes(self.public_key())

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key_bytes())


def p256_public_bytes(key: ec.EllipticCurvePublicKey) -> bytes:
    """The uncompressed X9.62 point of a P-256 public key (FormatError for another curve)."""
    if not isinstance(key.curve, ec.SECP256R1):
        raise FormatError(_("the key is not on the P-256 curve"))
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


class P256Key(P256Signer):
    """An ECDSA P-256 private key in memory."""

    __slots__ = ("_fingerprint", "_pub", "_sk")

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(
                private_key.curve, ec.SECP256R1):
            raise TypeError("P256Key wraps a P-256 private key")
        self._sk = private_key
        self._pub = p256_public_bytes(private_key.public_key())
        self._fingerprint = hashlib.sha256(self._pub).hexdigest()

    @classmethod
    def generate(cls) -> P256Key:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_private_bytes_unsafe(cls, secret: bytes) -> P256Key:
        """Rebuild a key from its 32-byte big-endian private scalar (key stores only)."""
        if len(secret) != P256_SECRET_SIZE:
            raise FormatError(_("a P-256 private key is 32 bytes"))
        try:
            return cls(ec.derive_private_key(int.from_bytes(secret, "big"), ec.SECP256R1()))
        except ValueError:  # zero, or not below the group order
            raise FormatError(_("not a valid P-256 private key")) from None

    def public_key_bytes(self) -> bytes:
        return self._pub

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._sk.public_key()

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    def sign(self, data: bytes) -> bytes:
        return self._sk.sign(data, ec.ECDSA(hashes.SHA256()))

    def sign_x509(self, builder: Any) -> Any:
        return builder.sign(self._sk, hashes.SHA256())

    def private_bytes_unsafe(self) -> bytes:
        """The 32-byte private scalar. Only for code that encrypts it immediately."""
        return self._sk.private_numbers().private_value.to_bytes(P256_SECRET_SIZE, "big")

    def __repr__(self) -> str:
        return f"P256Key(fingerprint={self._fingerprint[:16]}…)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, P256Key):
            return NotImplemented
        return self._pub == other._pub

    def __hash__(self) -> int:
        return hash(self._pub)

    def __reduce__(self) -> NoReturn:
        raise TypeError("a P256Key cannot be pickled; export it through the key store")

    def __copy__(self) -> NoReturn:
        raise TypeError("a P256Key is not copied")

    def __deepcopy__(self, memo: object) -> NoReturn:
        raise TypeError("a P256Key is not copied")


def verify_p256(public_key: bytes, signature: bytes, data: bytes) -> None:
    """Check a DER ECDSA P-256 / SHA-256 signature; VerificationError if it is not valid."""
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public_key)
        key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        raise VerificationError(_("signature verification failed")) from None


def verify_ed25519(public_key: bytes, signature: bytes, data: bytes) -> None:
    """Check an Ed25519 signature; raise :class:`VerificationError` if it is not valid."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
    except (InvalidSignature, ValueError):
        raise VerificationError(_("signature verification failed")) from None


def certificate_public_key_bytes(cert: x509.Certificate) -> bytes:
    """The raw public key of a certificate: 32 bytes for Ed25519 or X25519, 1216 for a
    hybrid key (whose X25519 half must be the certificate's subject public key), 65 (the
    uncompressed point) for ECDSA P-256."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        raise FormatError(_("the certificate's public key cannot be read")) from None
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return p256_public_bytes(key)  # a PDF root or pdf-signing certificate
    if not isinstance(key, Ed25519PublicKey | X25519PublicKey):
        raise FormatError(_("the certificate's key is neither Ed25519 nor X25519"))
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    hybrid = hybrid_key_extension(cert)
    if hybrid is None:
        return raw
    if not isinstance(key, X25519PublicKey) or hybrid[-PUBLIC_KEY_SIZE:] != raw:
        raise FormatError(_("the certificate's hybrid key does not contain its X25519 key"))
    return hybrid


def parsed_in_full(cert: x509.Certificate) -> x509.Certificate:
    """``cert`` once the fields cryptography parses lazily have parsed, so that no later
    use of a certificate from outside fails with cryptography's error. Raises ValueError
    (what the loaders catch) for anything cryptography refuses: it also raises TypeError
    (an odd name attribute), UnsupportedAlgorithm and DuplicateExtension for some
    malformed DER."""
    from cryptography import x509 as _x509
    from cryptography.exceptions import UnsupportedAlgorithm

    try:
        cert.extensions  # noqa: B018 - each parses on first use
        cert.subject  # noqa: B018
        cert.issuer  # noqa: B018
        cert.not_valid_before_utc  # noqa: B018
        cert.not_valid_after_utc  # noqa: B018
    except (TypeError, UnsupportedAlgorithm, _x509.DuplicateExtension) as exc:
        raise ValueError(str(exc)) from None
    return cert


def hybrid_key_extension(cert: x509.Certificate) -> bytes | None:
    """The 1216-byte hybrid public key a certificate carries, or None if it has none."""
    from cryptography import x509 as _x509

    try:
        ext = cert.extensions.get_extension_for_oid(_x509.ObjectIdentifier(HYBRID_KEY_OID))
    except _x509.ExtensionNotFound:
        return None
    except ValueError:  # cryptography parses extensions on first use
        raise FormatError(_("the certificate's extensions are malformed")) from None
    value = ext.value
    data = value.value if isinstance(value, _x509.UnrecognizedExtension) else b""
    # DER OCTET STRING with a two-byte long-form length: 04 82 04 C0 <1216 bytes>.
    if not ext.critical or data[:4] != _HYBRID_DER_PREFIX or len(data) != 4 + HYBRID_PUBLIC_KEY_SIZE:
        raise FormatError(_("the certificate's hybrid key extension is malformed"))
    return data[4:]


def hybrid_key_extension_value(public_key: bytes) -> bytes:
    """The DER value of the hybrid key extension for a 1216-byte public key."""
    if len(public_key) != HYBRID_PUBLIC_KEY_SIZE:
        raise FormatError(_("a hybrid public key is 1216 bytes"))
    return _HYBRID_DER_PREFIX + public_key


_HYBRID_DER_PREFIX = bytes([0x04, 0x82]) + HYBRID_PUBLIC_KEY_SIZE.to_bytes(2, "big")
