"""What a caller hands to the audit log: one security event.

Every other part of sandi records through this type; the chain, sinks and
checkpoints (the rest of :mod:`sandi.audit`) turn events into hash-chained entries.
"""

from __future__ import annotations

import contextlib
import getpass
import os
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Literal

Outcome = Literal["ok", "denied", "failed"]
JSONValue = str | int | float | bool | None | list["JSONValue"] | dict[str, "JSONValue"]


@dataclass(frozen=True)
class AuditEvent:
    """One security event. ``details`` is JSON and must never hold a secret."""

    actor: str
    action: str  # dotted, e.g. "agency.add", "key.issue", "document.seal", "policy.deny"
    subject: str  # what it is about: an agency code, a serial, a file name
    outcome: Outcome = "ok"
    details: Mapping[str, JSONValue] = field(default_factory=dict)


_acting: ContextVar[str | None] = ContextVar("sandi_operator", default=None)


@contextlib.contextmanager
def acting_operator(name: str | None) -> Iterator[None]:
    """Record ``name`` as the operator of the audit entries written inside the block.

    Per thread or task (a context variable): an e-office server acting for many users
    names each one per call. ``None`` leaves the default (``$SANDI_OPERATOR`` or the login).
    """
    if name is not None and (not name.strip() or len(name) > 256 or any(c in name for c in "\r\n")):
        raise ValueError("an operator name is one line of 1..256 characters")
    token = _acting.set(name)
    try:
        yield
    finally:
        _acting.reset(token)


def current_operator() -> str:
    """The person at the keyboard: the name given to :func:`acting_operator`, else
    ``$SANDI_OPERATOR``, else the login name."""
    acting = _acting.get()
    if acting:
        return acting
    explicit = os.environ.get("SANDI_OPERATOR")
    if explicit:
        return explicit
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        uid = getattr(os, "getuid", None)  # POSIX only; Windows always has USERNAME
        return f"uid:{uid()}" if uid is not None else "unknown"
