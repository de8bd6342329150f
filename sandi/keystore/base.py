"""The key store interface: private keys by reference, never overwritten.

Invariants:

* a reference names one key for ever: ``put`` refuses an existing reference, so a
  key can never be silently replaced (rotation writes a *new* reference);
* what a store keeps for a key is one record (:class:`StoredKey`) that binds the
  reference, the kind and the public fingerprint to the secret; reading checks all
  three, so a record copied under another reference, or a signing key asked for as
  an encryption key, is refused;
* every backend encrypts or delegates: nothing here writes a secret in the clear.

References are built by :func:`key_ref` from the owner (an agency code or
``root``), the purpose and the public key's fingerprint, so the certificate of a key
(in the registry or the directory) is enough to find the key in any store.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from sandi.errors import ConfigError, CredentialError, FormatError, NotFoundError, UsageError
from sandi.formats.bounded import load_json
from sandi.i18n import Message, _
from sandi.keystore.keys import P256Key, P256Signer, Signer, SigningKey, fingerprint

if TYPE_CHECKING:
    from sandi.formats.age import Identity, MLKEM768X25519Identity, X25519Identity

#: ``encryption-pq`` is the hybrid post-quantum (age1pq1) key; its secret is the
#: 32-byte seed, like the others. ``ecdsa-p256`` is an ECDSA P-256 key (the PDF root and
#: ``pdf-signing`` keys, ADR 0014); its secret is the 32-byte big-endian private scalar.
KeyKind = Literal["signing", "encryption", "encryption-pq", "ecdsa-p256"]
KINDS: tuple[KeyKind, ...] = ("signing", "encryption", "encryption-pq", "ecdsa-p256")
#: certificate purposes whose key kind is not the purpose's own word
_PURPOSE_KINDS: dict[str, KeyKind] = {"pdf-signing": "ecdsa-p256"}
RECORD_FORMAT = "sandi-key/v1"
MAX_RECORD_BYTES = 4096

_REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def key_ref(owner: str, purpose: KeyKind, public_fingerprint: str) -> str:
    """The store reference of a key: ``OWNER.PURPOSE.<first 16 hex of the fingerprint>``."""
    if purpose not in KINDS:
        raise UsageError(_("unknown key purpose {purpose!r}").format(purpose=purpose))
    return check_ref(f"{owner}.{purpose}.{public_fingerprint[:16]}")


def check_ref(ref: str) -> str:
    if not _REF_RE.fullmatch(ref) or ".." in ref:
        raise UsageError(_("not a valid key reference: {ref!r}").format(ref=ref))
    return ref


@dataclass(frozen=True, repr=False)
class StoredKey:
    """One key as a store keeps it. ``secret`` is the raw 32-byte private key."""

    ref: str
    kind: KeyKind
    public_fingerprint: str
    secret: bytes

    def __repr__(self) -> str:
        return f"StoredKey({self.ref!r}, {self.kind}, {self.public_fingerprint[:16]}…)"

    def encode(self) -> bytes:
        return json.dumps(
            {
                "format": RECORD_FORMAT,
                "ref": self.ref,
                "kind": self.kind,
                "public_fingerprint": self.public_fingerprint,
                "secret": base64.b64encode(self.secret).decode(),
            },
            sort_keys=True,
        ).encode()

    @classmethod
    def decode(cls, data: bytes, *, expected_ref: str) -> StoredKey:
        if len(data) > MAX_RECORD_BYTES:
            raise FormatError(_("key record {expected_ref} is too large").format(expected_ref=expected_ref))
        try:
            obj = load_json(data, max_bytes=MAX_RECORD_BYTES, error=lambda reason: FormatError(
                Message("key record {ref} is malformed ({reason})", ref=expected_ref, reason=reason)))
            if not isinstance(obj, dict) or obj.get("format") != RECORD_FORMAT:
                raise ValueError("format")
            ref, kind, fp, secret_b64 = obj["ref"], obj["kind"], obj["public_fingerprint"], obj["secret"]
            if not all(isinstance(v, str) for v in (ref, kind, fp, secret_b64)) or kind not in KINDS:
                raise ValueError("fields")
            secret = base64.b64decode(secret_b64, validate=True)
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise FormatError(_("key record {expected_ref} is malformed").format(
                expected_ref=expected_ref,
            )) from None
        if ref != expected_ref:
            # A record moved under another name: refuse rather than hand out the wrong key.
            raise CredentialError(
                _("the key stored as {expected_ref} belongs to {ref}").format(
                    expected_ref=expected_ref,
                    ref=ref,
                ),
                hint=_("the key folder was tampered with or files were renamed"),
            )
        if len(secret) != 32:
            raise FormatError(_("key record {expected_ref} is malformed").format(expected_ref=expected_ref))
        return cls(ref=ref, kind=kind, public_fingerprint=fp, secret=secret)


# -- encryption keys: the age codec owns X25519Identity; these adapt it ----------------------


def identity_public_bytes(identity: X25519Identity) -> bytes:
    """The raw 32-byte X25519 public key of an age identity."""
    return identity.recipient.public_bytes


def identity_secret_bytes(identity: X25519Identity) -> bytes:
    return identity.private_bytes_unsafe()


def identity_from_secret(secret: bytes) -> X25519Identity:
    from sandi.formats.age import X25519Identity

    return X25519Identity.from_private_bytes(secret)


def generate_identity() -> X25519Identity:
    from sandi.formats.age import X25519Identity

    return X25519Identity.generate()


def identity_fingerprint(identity: X25519Identity) -> str:
    return fingerprint(identity_public_bytes(identity))


def hybrid_identity_fingerprint(identity: MLKEM768X25519Identity) -> str:
    return fingerprint(identity.recipient.public_bytes)


def generate_hybrid_identity() -> MLKEM768X25519Identity:
    from sandi.formats.age import MLKEM768X25519Identity

    return MLKEM768X25519Identity.generate()


def kind_of_purpose(purpose: str) -> KeyKind:
    """The key-store kind of a certificate purpose (the same words, except that a
    ``pdf-signing`` certificate's key is an ``ecdsa-p256`` key)."""
    if purpose in _PURPOSE_KINDS:
        return _PURPOSE_KINDS[purpose]
    if purpose not in KINDS or purpose == "ecdsa-p256":
        raise FormatError(_("unknown key purpose {purpose}").format(purpose=repr(purpose)))
    return purpose


def secret_fingerprint(kind: KeyKind, secret: bytes) -> str:
    """The public fingerprint of a raw 32-byte secret of ``kind`` (for backups)."""
    if kind == "signing":
        return SigningKey.from_private_bytes_unsafe(secret).fingerprint
    if kind == "ecdsa-p256":
        return P256Key.from_private_bytes_unsafe(secret).fingerprint
    if kind == "encryption-pq":
        from sandi.formats.age import MLKEM768X25519Identity

        return hybrid_identity_fingerprint(MLKEM768X25519Identity.from_private_bytes(secret))
    return identity_fingerprint(identity_from_secret(secret))


class KeyStore(ABC):
    """Private keys by reference. Subclasses implement the four raw operations."""

    kind: str = "abstract"
    #: True for a store whose signing keys are generated on hardware and never leave it
    hardware: bool = False

    # -- raw operations (backends) -------------------------------------------------------

    @abstractmethod
    def _write(self, record: StoredKey) -> None:
        """Store a new record; raise AlreadyExistsError if the reference is taken."""

    @abstractmethod
    def _read(self, ref: str) -> StoredKey:
        """The record of ``ref``; raise NotFoundError if there is none."""

    @abstractmethod
    def refs(self) -> list[str]:
        """Every reference in the store, sorted."""

    @abstractmethod
    def delete(self, ref: str) -> None:
        """Forget a key (used to roll back a failed operation); NotFoundError if absent."""

    def contains(self, ref: str) -> bool:
        return check_ref(ref) in self.refs()

    # -- typed operations ----------------------------------------------------------------

    def put_signing_key(self, ref: str, key: SigningKey) -> None:
        self._write(StoredKey(check_ref(ref), "signing", key.fingerprint, key.private_bytes_unsafe()))

    def put_encryption_key(self, ref: str, identity: X25519Identity) -> None:
        self._write(
            StoredKey(
                check_ref(ref), "encryption", identity_fingerprint(identity), identity_secret_bytes(identity)
            )
        )

    def put_hybrid_key(self, ref: str, identity: MLKEM768X25519Identity) -> None:
        self._write(
            StoredKey(
                check_ref(ref), "encryption-pq", hybrid_identity_fingerprint(identity),
                identity.private_bytes_unsafe(),
            )
        )

    def get_hybrid_key(self, ref: str) -> MLKEM768X25519Identity:
        from sandi.formats.age import MLKEM768X25519Identity

        record = self._checked(ref, "encryption-pq")
        identity = MLKEM768X25519Identity.from_private_bytes(record.secret)
        if hybrid_identity_fingerprint(identity) != record.public_fingerprint:
            raise CredentialError(_("the key stored as {ref} does not match its record").format(ref=ref))
        return identity

    def put_secret_unsafe(self, ref: str, kind: KeyKind, secret: bytes) -> None:
        """Store a raw secret of ``kind`` (a backup being restored); checked like any key."""
        if kind == "signing":
            self.put_signing_key(ref, SigningKey.from_private_bytes_unsafe(secret))
        elif kind == "ecdsa-p256":
            self.put_p256_key(ref, P256Key.from_private_bytes_unsafe(secret))
        elif kind == "encryption-pq":
            from sandi.formats.age import MLKEM768X25519Identity

            self.put_hybrid_key(ref, MLKEM768X25519Identity.from_private_bytes(secret))
        else:
            self.put_encryption_key(ref, identity_from_secret(secret))

    def get_secret_unsafe(self, ref: str, kind: KeyKind) -> bytes:
        """The raw secret of ``ref`` (for an encrypted backup only), checked as ``kind``."""
        if kind == "signing":
            return self.get_signing_key(ref).private_bytes_unsafe()
        if kind == "ecdsa-p256":
            return self.get_p256_key(ref).private_bytes_unsafe()
        if kind == "encryption-pq":
            return self.get_hybrid_key(ref).private_bytes_unsafe()
        return self.get_encryption_key(ref).private_bytes_unsafe()

    def get_signing_key(self, ref: str) -> SigningKey:
        record = self._checked(ref, "signing")
        key = SigningKey.from_private_bytes_unsafe(record.secret)
        if key.fingerprint != record.public_fingerprint:
            raise CredentialError(_("the key stored as {ref} does not match its record").format(ref=ref))
        return key

    def put_p256_key(self, ref: str, key: P256Key) -> None:
        self._write(StoredKey(check_ref(ref), "ecdsa-p256", key.fingerprint, key.private_bytes_unsafe()))

    def get_p256_key(self, ref: str) -> P256Key:
        """The P-256 key ``ref`` in memory (backups only; signing goes through :meth:`p256_signer`)."""
        record = self._checked(ref, "ecdsa-p256")
        key = P256Key.from_private_bytes_unsafe(record.secret)
        if key.fingerprint != record.public_fingerprint:
            raise CredentialError(_("the key stored as {ref} does not match its record").format(ref=ref))
        return key

    def get_encryption_key(self, ref: str) -> X25519Identity:
        record = self._checked(ref, "encryption")
        identity = identity_from_secret(record.secret)
        if identity_fingerprint(identity) != record.public_fingerprint:
            raise CredentialError(_("the key stored as {ref} does not match its record").format(ref=ref))
        return identity

    # -- signing where the key lives ------------------------------------------------------

    def signer(self, ref: str) -> Signer:
        """What signs with the signing key ``ref``. Signing call sites use this, never
        :meth:`get_signing_key`: a store whose keys cannot leave it (a PKCS#11 token)
        returns a signer that asks the token."""
        return self.get_signing_key(ref)

    def opening_key(self, ref: str) -> tuple[str, Identity]:
        """(public fingerprint, what unwraps age stanzas) of the encryption key ``ref``
        (X25519 or hybrid, as its reference says). Opening call sites use this: a store
        in front of a key agent (:mod:`sandi.keystore.agent`) returns an identity whose
        unwrap happens in the agent."""
        if check_ref(ref).split(".")[1:2] == ["encryption-pq"]:
            hybrid = self.get_hybrid_key(ref)
            return hybrid_identity_fingerprint(hybrid), hybrid
        identity = self.get_encryption_key(ref)
        return identity_fingerprint(identity), identity

    def new_signing_key(self, owner: str, *, on_token: bool = False) -> tuple[str, Signer]:
        """Generate a signing key for ``owner``, store it, and return (reference, signer).

        ``on_token`` asks for a key generated on a hardware token; a store without one
        refuses rather than quietly making a software key."""
        if on_token:
            raise ConfigError(
                _("this home's key store ({kind}) has no PKCS#11 token for signing keys").format(
                    kind=self.kind),
                hint=_("create the home with 'sandi init --keystore pkcs11', or use a key profile "
                       "without token = true"),
            )
        key = SigningKey.generate()
        ref = key_ref(owner, "signing", key.fingerprint)
        self.put_signing_key(ref, key)
        return ref, key

    def p256_signer(self, ref: str) -> P256Signer:
        """What signs with the ECDSA P-256 key ``ref`` (the PDF root, a ``pdf-signing`` key)."""
        return self.get_p256_key(ref)

    def new_p256_key(self, owner: str, *, on_token: bool = False) -> tuple[str, P256Signer]:
        """Generate an ECDSA P-256 key for ``owner``, store it, and return (reference, signer).

        ``on_token``: as for :meth:`new_signing_key`, a store without a token refuses."""
        if on_token:
            raise ConfigError(
                _("this home's key store ({kind}) has no PKCS#11 token for P-256 keys").format(
                    kind=self.kind),
                hint=_("create the home with 'sandi init --keystore pkcs11'"),
            )
        key = P256Key.generate()
        ref = key_ref(owner, "ecdsa-p256", key.fingerprint)
        self.put_p256_key(ref, key)
        return ref, key

    def location(self, ref: str) -> str:
        """Where the key ``ref`` lives, in one word: ``file``, ``keyring``, ``memory``, ``token``."""
        return self.kind

    def close(self) -> None:  # noqa: B027 - most stores hold nothing open
        """Let go of what the store holds open (a token session: closing the last one
        logs the process out of the token). The store may be used again afterwards."""

    def status(self) -> dict[str, object]:
        """What is where (public data only): the store kind and each key's location."""
        keys = [{"ref": r, "location": self.location(r)} for r in self.refs()]
        return {"keystore": self.kind, "keys": keys}

    def _checked(self, ref: str, kind: KeyKind) -> StoredKey:
        record = self._read(check_ref(ref))
        if record.kind != kind:
            raise CredentialError(_("{ref} is a {kind} key, not a {kind2} key").format(
                ref=ref,
                kind=record.kind,
                kind2=kind,
            ))
        return record

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def not_found(ref: str, where: str) -> NotFoundError:
    return NotFoundError(
        _("no key {ref} in the {where}").format(ref=ref, where=_(where)),
        hint=_("list the stored keys with 'sandi keys list', or import the key bundle"),
    )
