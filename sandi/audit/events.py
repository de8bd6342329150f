"""What a caller hands to the audit log: one security event.

Every other part of sandi records through this type; the chain, sinks and
checkpoints (the rest of :mod:`sandi.audit`) turn events into hash-chained entries.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
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


def current_operator() -> str:
    """The person at the keyboard: ``$SANDI_OPERATOR``, else the login name."""
    explicit = os.environ.get("SANDI_OPERATOR")
    if explicit:
        return explicit
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        uid = getattr(os, "getuid", None)  # POSIX only; Windows always has USERNAME
        return f"uid:{uid()}" if uid is not None else "unknown"
