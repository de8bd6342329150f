"""Checkpoints: the chain head, signed, so that rewriting history needs the key.

A hash chain alone shows that entries were changed *unless* the changer rewrote
every later hash too (or cut the tail). A checkpoint pins ``(seq, head_hash)`` with
an Ed25519 signature by the authority's root key (registry) or the agency's signing
key (workstation journal); after it, no entry up to ``seq`` can change, vanish or be
reordered without ``audit verify`` noticing, even by someone with write access to
the database or file but not the key.

Invariants:

* the signed message is ``b"sandi-audit-checkpoint/v1\\n" + canonical_json(
  {"seq": seq, "head_hash": head_hash, "time": time})``;
* ``signer`` is the SHA-256 fingerprint (hex) of the raw 32-byte Ed25519 public key;
* ``signature`` is the 64-byte Ed25519 signature in standard base64;
* a checkpoint is never made for an empty chain (``seq >= 1``).

Policy (docs/audit.md, ADR 0010): ``audit checkpoint`` makes one on demand; every
directory publication checkpoints the registry chain, and the home's journal when at
least :data:`CHECKPOINT_INTERVAL` entries came since its last checkpoint
(:func:`sandi.audit.anchor.maybe_checkpoint`). A :class:`Witness` is a checkpoint
kept outside the store it covers (an anchor file, a signed directory), which the log
must still contain (:mod:`sandi.audit.anchor`).

This module imports neither sink: the sinks import it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sandi.audit.entry import canonical_json, format_time, is_hex64, parse_time, utcnow
from sandi.errors import AuditError
from sandi.i18n import _

CHECKPOINT_DOMAIN = b"sandi-audit-checkpoint/v1\n"
CHECKPOINT_INTERVAL = 100


class Signer(Protocol):
    """What signs a checkpoint: sandi.keystore SigningKey or any Ed25519 signer."""

    def sign(self, data: bytes) -> bytes: ...

    def public_key_bytes(self) -> bytes: ...


def key_fingerprint(public_key: bytes) -> str:
    """sha256(raw 32-byte public key), hex: the fingerprint used everywhere in sandi."""
    return hashlib.sha256(public_key).hexdigest()


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    head_hash: str
    time: str
    signer: str  # key fingerprint
    signature: str  # base64 of the 64-byte Ed25519 signature

    def message(self) -> bytes:
        return checkpoint_message(self.seq, self.head_hash, self.time)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "head_hash": self.head_hash,
            "time": self.time,
            "signer": self.signer,
            "signature": self.signature,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Checkpoint:
        try:
            seq = data["seq"]
            strs = {k: data[k] for k in ("head_hash", "time", "signer", "signature")}
        except (KeyError, TypeError) as exc:
            raise AuditError(_("malformed audit checkpoint: missing field {exc}").format(exc=exc)) from None
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise AuditError(_("malformed audit checkpoint: seq is not an integer"))
        if not all(isinstance(v, str) for v in strs.values()):
            raise AuditError(_("malformed audit checkpoint at seq {seq}: a field is not a string").format(
                seq=seq,
            ))
        return cls(seq=seq, **strs)

    @property
    def datetime(self) -> datetime:
        return parse_time(self.time)


@dataclass(frozen=True, slots=True)
class Witness:
    """A checkpoint kept outside the log it covers, and where it was found (for messages:
    "the home's anchor file ...", "directory version 12 (path)")."""

    source: str
    checkpoint: Checkpoint

    def same_as(self, other: Checkpoint) -> bool:
        return (self.checkpoint.seq, self.checkpoint.head_hash, self.checkpoint.signature) == (
            other.seq, other.head_hash, other.signature)


def checkpoint_message(seq: int, head_hash: str, time: str) -> bytes:
    return CHECKPOINT_DOMAIN + canonical_json({"seq": seq, "head_hash": head_hash, "time": time})


def sign_checkpoint(
    signer: Signer, seq: int, head_hash: str, *, when: datetime | None = None
) -> Checkpoint:
    """Sign the head ``(seq, head_hash)`` now; refuses an empty chain."""
    if seq < 1:
        raise AuditError(_("the audit log is empty; there is nothing to checkpoint"))
    if not is_hex64(head_hash):
        raise AuditError(_("malformed audit head hash"))
    time = format_time(when or utcnow())
    try:
        signature = signer.sign(checkpoint_message(seq, head_hash, time))
        public = signer.public_key_bytes()
    except Exception as exc:  # a key store may fail in its own way; fail closed
        raise AuditError(_("signing the audit checkpoint failed: {name}").format(
            name=exc.__class__.__name__,
        )) from None
    if len(signature) != 64 or len(public) != 32:
        raise AuditError(_("the checkpoint signer is not an Ed25519 key"))
    return Checkpoint(
        seq=seq,
        head_hash=head_hash,
        time=time,
        signer=key_fingerprint(public),
        signature=base64.b64encode(signature).decode("ascii"),
    )


def signature_valid(checkpoint: Checkpoint, public_key: bytes) -> bool:
    """True if ``checkpoint`` is signed by ``public_key`` (raw 32-byte Ed25519)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if checkpoint.signer != key_fingerprint(public_key):
        return False
    try:
        signature = base64.b64decode(checkpoint.signature.encode("ascii"), validate=True)
        key = Ed25519PublicKey.from_public_bytes(public_key)
        key.verify(signature, checkpoint.message())
    except (InvalidSignature, ValueError, binascii.Error, UnicodeEncodeError):
        return False
    return True
