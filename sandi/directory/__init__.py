"""The directory: the authority's signed snapshot of everything public.

Invariants:

* a snapshot is installed only if the authority's root key signed it, its root
  certificate matches the home's trusted root fingerprint, its version is not lower
  than the installed one (no rollback) and it has not expired (no freeze);
* document commands (seal, open, sign, verify, encrypt, decrypt, inspect) read
  public data only from the installed snapshot, on authority and workstation homes
  alike, so they never need the registry (nor SQLAlchemy);
* the authority republishes its own home's snapshot after every registry change;
* the one way to read a home's installed snapshot is
  :func:`sandi.directory.local.installed_snapshot`, which also refuses a rollback below the
  highest version the home has seen (its anchor); nothing here reads ``directory.json``
  around that check.

This package's snapshot module imports no SQLAlchemy; ``publish`` (authority side)
does.
"""

from sandi.directory.snapshot import (
    AgencyEntry,
    CertEntry,
    DirectorySnapshot,
    PolicyEntry,
    RevocationEntry,
    parse_envelope,
    sign_snapshot,
)

__all__ = [
    "AgencyEntry",
    "CertEntry",
    "DirectorySnapshot",
    "PolicyEntry",
    "RevocationEntry",
    "parse_envelope",
    "sign_snapshot",
]
