"""Anchors: the highest checkpoint a home has seen, kept outside the store it covers.

A checkpoint inside the database or the journal it covers can be deleted together
with the history it protects. So (ADR 0010) the home keeps the highest checkpoint it
has seen of each chain in a small file beside the store (``audit.registry.anchor``,
``audit.journal.anchor``), every signed directory carries the registry's latest
checkpoint (so every workstation that imported one is a witness), and ``audit verify``
refuses a log that no longer holds such a checkpoint, or whose entries no longer match
it (:func:`sandi.audit.verify.verify_chain`, ``witnesses``).

Invariants:

* an anchor file holds one checkpoint, exactly as signed, and is integrity-protected
  by that signature (checked with the chain's keys when verifying): it cannot be
  forged, only swapped for another genuine checkpoint of the same chain;
* anchors only rise: :func:`raise_anchor` replaces the file only with a checkpoint of a
  higher seq, under an exclusive lock on a lock file beside it
  (:func:`sandi.portable.exclusive_lock`), written atomically;
* an anchor is raised only once its checkpoint is durable in its store (after the
  commit, after the journal's ``fsync``), so it never names a checkpoint a rollback
  took away;
* a damaged anchor file is reported (:class:`~sandi.errors.VerificationError`) when it
  is read for verification, never silently replaced.

Also the checkpointing policy, :func:`maybe_checkpoint`. This module imports the
journal; the registry sink (SQLAlchemy) only when given a session.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from sandi.audit.checkpoint import CHECKPOINT_INTERVAL, Checkpoint, Signer, Witness
from sandi.audit.entry import canonical_json
from sandi.audit.journal import Journal
from sandi.errors import AuditError, SandiError, VerificationError
from sandi.i18n import Message, _

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

ANCHOR_FORMAT = "sandi-audit-anchor/v1"
MAX_ANCHOR_BYTES = 4096
Chain = Literal["registry", "journal"]


def maybe_checkpoint(
    target: Journal | Session, signer: Signer, *, every: int = CHECKPOINT_INTERVAL
) -> Checkpoint | None:
    """Checkpoint ``target`` if ``every`` or more entries came since its last checkpoint.

    ``target`` is a :class:`~sandi.audit.journal.Journal` or an open registry session
    (call it inside the transaction, like ``append_in_session``). Returns the new
    checkpoint, or None when none was due.
    """
    if every < 1:
        raise AuditError(_("the checkpoint interval must be at least 1"))
    if isinstance(target, Journal):
        return target.checkpoint(signer, only_if_due=every)
    from sandi.audit.registry_sink import checkpoint_in_session

    return checkpoint_in_session(target, signer, only_if_due=every)


def anchor_bytes(chain: Chain, checkpoint: Checkpoint) -> bytes:
    return canonical_json({"format": ANCHOR_FORMAT, "chain": chain,
                           "checkpoint": checkpoint.to_dict()}) + b"\n"


def read_anchor(path: Path, chain: Chain) -> Witness | None:
    """The checkpoint the anchor file at ``path`` holds (None if there is no file).

    Its signature is not checked here: the verifier checks it with the chain's keys,
    like every checkpoint. A malformed file, or one for another chain, raises
    VerificationError naming the file.
    """
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_ANCHOR_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise VerificationError(_("cannot read {path}: {reason}").format(
            path=path, reason=exc.strerror or exc.__class__.__name__)) from None
    try:
        if len(data) > MAX_ANCHOR_BYTES:
            raise ValueError
        obj = json.loads(data)
        if not isinstance(obj, dict) or obj.get("format") != ANCHOR_FORMAT or obj.get("chain") != chain:
            raise ValueError
        checkpoint = Checkpoint.from_dict(obj["checkpoint"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, AuditError):
        raise VerificationError(
            _("the audit anchor {path} is damaged: it does not hold a checkpoint of the {chain} "
              "chain").format(path=path, chain=chain),
            hint=_("keep a copy of it and of the audit log, and investigate: the anchor is "
                   "the home's record of the log's signed past"),
        ) from None
    return Witness(source=Message("the anchor file {path}", path=str(path)), checkpoint=checkpoint)


def raise_anchor(path: Path, chain: Chain, checkpoint: Checkpoint) -> bool:
    """Make ``checkpoint`` the anchor at ``path`` if it is higher than the one there.

    Returns True if written. A damaged anchor is left as it is (False): the next
    ``audit verify`` reports it. Call only once ``checkpoint`` is durable in its store.
    """
    with _locked(path):
        try:
            current = read_anchor(path, chain)
        except VerificationError:
            return False
        if current is not None and current.checkpoint.seq >= checkpoint.seq:
            return False
        from sandi.fsutil import atomic_write

        atomic_write(path, anchor_bytes(chain, checkpoint), mode=0o644)
        return True


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    from sandi import portable

    lock = path.with_name(f".{path.name}.lock")
    with portable.exclusive_lock(lock, failure=lambda exc: _lock_failed(lock, exc)):
        yield


def _lock_failed(path: Path, exc: OSError) -> SandiError:
    return AuditError(_("cannot lock {path}: {reason}").format(
        path=path, reason=exc.strerror or exc.__class__.__name__))
