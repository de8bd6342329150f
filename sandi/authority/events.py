"""The one hook through which every authority change reaches the audit log.

Invariant: :func:`record` is called inside the same ``Registry.transaction()`` as
the change it describes, so the change and its audit entry commit together or not
at all; details carry codes, serials, fingerprints and reasons, never a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, cast

from sandi.audit.events import AuditEvent, JSONValue, current_operator

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def record(session: Session, action: str, subject: str, details: Mapping[str, object] | None = None) -> None:
    """Append one ``ok`` event by the current operator to the registry's audit chain."""
    from sandi.audit.registry_sink import append_in_session

    payload = cast("dict[str, JSONValue]", dict(details or {}))
    append_in_session(
        session,
        AuditEvent(actor=current_operator(), action=action, subject=subject, details=payload),
    )
