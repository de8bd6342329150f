"""The authority's signature over a policy version.

Invariants:

* the signature is Ed25519 by the authority's root key over
  ``b"sandi-policy/v1\\n" + source``, where ``source`` is the policy file's exact
  UTF-8 bytes as applied (no re-serialisation: what was reviewed is what is signed);
  the prefix keeps a policy signature from ever being valid as a signature over a
  certificate, CRL, directory or audit checkpoint made with the same key;
* the compiled form (:mod:`sandi.policy.compiled`) is signed the same way over
  ``b"sandi-policy-compiled/v1\n" + compiled text``: a different context, so neither
  signature can pass for the other;
* verification failure is one vague :class:`~sandi.errors.VerificationError`;
* a verified source is trusted only for the id and version it states itself:
  :func:`compile_verified` refuses a record whose labels disagree with its source.
"""

from __future__ import annotations

from typing import Protocol

from sandi.errors import VerificationError
from sandi.i18n import _

SIGNATURE_CONTEXT = b"sandi-policy/v1\n"
COMPILED_SIGNATURE_CONTEXT = b"sandi-policy-compiled/v1\n"


class Signer(Protocol):
    def sign(self, data: bytes) -> bytes: ...

    def public_key_bytes(self) -> bytes: ...


def _bytes(source: str | bytes) -> bytes:
    return source.encode("utf-8") if isinstance(source, str) else source


def policy_signing_message(source: str | bytes) -> bytes:
    """The exact bytes the authority signs for a policy source."""
    return SIGNATURE_CONTEXT + _bytes(source)


def compiled_signing_message(compiled: str | bytes) -> bytes:
    """The exact bytes the authority signs for a policy's compiled form."""
    return COMPILED_SIGNATURE_CONTEXT + _bytes(compiled)


def sign_policy(source: str | bytes, signer: Signer) -> bytes:
    return signer.sign(policy_signing_message(source))


def sign_compiled(compiled: str | bytes, signer: Signer) -> bytes:
    return signer.sign(compiled_signing_message(compiled))


def verify_policy_signature(source: str | bytes, signature: bytes,
                            root_public_key_bytes: bytes) -> None:
    """Raise VerificationError unless ``signature`` is the root's signature over ``source``."""
    _verify(policy_signing_message(source), signature, root_public_key_bytes)


def verify_compiled_signature(compiled: str | bytes, signature: bytes,
                              root_public_key_bytes: bytes) -> None:
    """Raise VerificationError unless ``signature`` is the root's over the compiled form."""
    _verify(compiled_signing_message(compiled), signature, root_public_key_bytes)


def _verify(message: bytes, signature: bytes, root_public_key_bytes: bytes) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if len(root_public_key_bytes) != 32 or len(signature) != 64:
        raise VerificationError(_("policy signature does not verify"))
    try:
        Ed25519PublicKey.from_public_bytes(root_public_key_bytes).verify(signature, message)
    except (InvalidSignature, ValueError):
        raise VerificationError(_("policy signature does not verify"),
                                hint=_("the policy was not signed by this authority, or was changed after "
                                       "signing")) from None
