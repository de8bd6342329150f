"""The directory installed in a home: its trust anchor, reading and importing.

Invariants:

* the trust anchor is the root fingerprint in the home's configuration (given at
  ``sandi init`` on both kinds of home);
* an import replaces the installed snapshot only with one that verifies against that
  anchor, is not older (no rollback) and not expired (no freeze); the file is
  replaced atomically, so a reader sees the old or the new snapshot, never half.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path

from sandi.directory.snapshot import (
    DirectorySnapshot,
    check_fresh,
    normalise_fingerprint,
    parse_envelope,
    read_envelope_file,
)
from sandi.errors import ConfigError, FormatError, NotFoundError, VerificationError
from sandi.fsutil import atomic_write
from sandi.home import Home


def trusted_fingerprint(home: Home) -> str:
    config = home.load_config()
    if not config.root_fingerprint:
        raise ConfigError(
            f"the home at {home.path} names no root fingerprint",
            hint="re-create the workstation with 'sandi init --agency CODE --root-fingerprint FP'",
        )
    return normalise_fingerprint(config.root_fingerprint)


def installed_snapshot(home: Home, *, now: datetime | None = None) -> DirectorySnapshot:
    """The home's verified, unexpired snapshot (documents commands start here)."""
    now = now or datetime.now(UTC)
    snapshot = parse_envelope(read_envelope_file(home.directory_path), trusted_fingerprint(home))
    check_fresh(snapshot, now, None)
    return snapshot


def installed_version(home: Home) -> int | None:
    """The version installed now, or None. An unreadable or forged file counts as none."""
    if not home.directory_path.exists():
        return None
    with contextlib.suppress(FormatError, VerificationError, NotFoundError):
        return parse_envelope(read_envelope_file(home.directory_path), trusted_fingerprint(home)).version
    return None


def import_snapshot(home: Home, source: Path, *, now: datetime | None = None) -> DirectorySnapshot:
    """Verify ``source`` and install it in the home; returns the snapshot installed."""
    now = now or datetime.now(UTC)
    data = read_envelope_file(source)
    snapshot = parse_envelope(data, trusted_fingerprint(home))
    check_fresh(snapshot, now, installed_version(home))
    atomic_write(home.directory_path, data, mode=0o644)
    return snapshot
