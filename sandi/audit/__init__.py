"""The audit log: hash-chained entries, two sinks, signed checkpoints, verification.

* :mod:`sandi.audit.events` - what callers record (:class:`AuditEvent`);
* :mod:`sandi.audit.entry` - the one entry format and hash (the chain logic);
* :mod:`sandi.audit.registry_sink` - ``append_in_session(session, event)`` (imports
  SQLAlchemy; import it directly, not from here);
* :mod:`sandi.audit.journal` - ``Journal(path).append(event)`` for homes without a registry;
* :mod:`sandi.audit.checkpoint` - signed chain heads; :mod:`sandi.audit.verify` - checks;
* :mod:`sandi.audit.export` - one portable file of entries and checkpoints.

This package's ``__init__`` imports nothing heavy (no SQLAlchemy), so document
commands can record to the journal without loading the registry.
"""

from sandi.audit.entry import GENESIS_HASH, AuditEntry
from sandi.audit.events import AuditEvent, current_operator
from sandi.audit.journal import Journal

__all__ = ["GENESIS_HASH", "AuditEntry", "AuditEvent", "Journal", "current_operator"]
