"""Fetching the directory from the authority's server (workstation side).

Invariants:

* what a server sends is installed only through :func:`sandi.directory.local.import_envelope`,
  the very checks ``directory import`` makes (root fingerprint, signature, expiry, no
  rollback below the installed version or the anchor): the channel is not trusted;
* a response is read up to the directory's size limit and no further, within a
  timeout; a server that is down, slow or wrong is a :class:`ServerError`, never a
  crash, and never changes the installed directory;
* the request is conditional (``If-None-Match`` with the SHA-256 of the installed
  envelope, the server's entity tag), so an unchanged directory costs a 304;
* every install and every refusal of what a server sent is written to the home's
  audit journal (``directory.fetch``); an unreachable server is not a security event
  and is not.

The HTTP client is the standard library's (urllib): a workstation needs no other
dependency, and the document commands, which refresh a directory near its expiry, keep
their start-up time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sandi.directory.archive import MAX_ARCHIVE_BYTES
from sandi.directory.snapshot import EXPIRY_WARNING, MAX_DIRECTORY_BYTES, DirectorySnapshot
from sandi.errors import FormatError, SandiError, VerificationError
from sandi.home import Home
from sandi.httpclient import http_request
from sandi.i18n import Message

#: seconds to wait for the server when a command refreshes on its own
REFRESH_TIMEOUT = 3.0
#: seconds for an explicit ``directory fetch``
FETCH_TIMEOUT = 15.0
#: a document command refreshes a directory that expires within this time (the same
#: window in which it would warn)
REFRESH_WITHIN = EXPIRY_WARNING


@dataclass(frozen=True)
class Fetched:
    snapshot: DirectorySnapshot
    #: False when the server said the installed directory is current (304)
    changed: bool


def server_url(home: Home) -> str | None:
    """The authority's base URL this home remembers (``init --server``), or None."""
    value = home.load_config().extra.get("server_url")
    return value if isinstance(value, str) and value else None


def directory_url(base: str) -> str:
    return base.rstrip("/") + "/directory.json"


def installed_etag(home: Home) -> str | None:
    try:
        data = home.directory_path.read_bytes()
    except OSError:
        return None
    return '"' + hashlib.sha256(data).hexdigest() + '"'


def _fetch_delta(home: Home, base: str, timeout: float, now: datetime | None) -> Fetched | None:
    """Try the newest directory as a delta from the installed version (a few kilobytes
    instead of the whole file, ADR 0019). None when there is none to apply (no v2 anchor,
    the server has no delta from it, or it does not apply here): the caller fetches the
    full directory, which is checked as always."""
    from sandi.directory.delta import DeltaNotApplicable, apply_delta
    from sandi.directory.index import read_header_anchor
    from sandi.directory.local import installed_snapshot
    from sandi.directory.v2 import parse_header

    anchor = read_header_anchor(home)
    if anchor is None:
        return None
    try:
        version = parse_header(anchor.header).version
    except FormatError:
        return None
    url = f"{base.rstrip('/')}/directory/delta?from={version}"
    try:
        status, data = http_request(url, headers={"Accept": "application/json", "User-Agent": "sandi"},
                                    timeout=timeout, limit=MAX_DIRECTORY_BYTES)
    except SandiError:
        return None  # an older server without deltas, or no delta from here
    if status == 304:
        return Fetched(installed_snapshot(home, now=now), changed=False)
    try:
        apply_delta(home, data, now=now)
    except DeltaNotApplicable:
        return None
    except (FormatError, VerificationError) as exc:
        _journal(home, "failed", url, {"reason": type(exc).__name__})
        raise
    snapshot = installed_snapshot(home, now=now)
    _journal(home, "ok", f"v{snapshot.version}",
             {"version": snapshot.version, "sha256": snapshot.body_sha256, "url": url, "delta_from": version})
    return Fetched(snapshot, changed=True)


def fetch_directory(home: Home, base: str, *, timeout: float = FETCH_TIMEOUT,
                    now: datetime | None = None) -> Fetched:
    """Fetch the newest directory from ``base`` and install it (verified) if it is new:
    as a delta from the installed version when the server has one, else in full; then
    the archive of retired certificates when the directory has one this home lacks."""
    fetched = _fetch_directory(home, base, timeout, now)
    _fetch_archive(home, base, fetched.snapshot, timeout, now)
    return fetched


def _fetch_archive(home: Home, base: str, snapshot: DirectorySnapshot, timeout: float,
                   now: datetime | None) -> None:
    """Install ``/directory-archive.json`` when ``snapshot`` signs an archive head and the
    home's archive is missing or another version's (ADR 0019). A failure does not undo
    the directory: it is journaled and told (verify then says the archive is missing)."""
    from dataclasses import replace

    from sandi.directory.archive import archive_path, installed_archive
    from sandi.directory.local import import_archive

    if snapshot.archive_head is None:
        return
    try:
        if installed_archive(replace(snapshot, archive_file=archive_path(home.path))) is not None:
            return
    except SandiError:
        pass  # another version's (or damaged): fetch the current one
    url = f"{base.rstrip('/')}/directory-archive.json"
    try:
        _status, data = http_request(url, headers={"Accept": "application/json", "User-Agent": "sandi"},
                                     timeout=timeout, limit=MAX_ARCHIVE_BYTES)
        archive = import_archive(home, data, now=now)
    except SandiError as exc:
        _journal(home, "failed", url, {"reason": type(exc).__name__, "archive": True})
        snapshot.notices.append(Message(
            "the archive of retired certificates could not be fetched ({reason}); signatures made with "
            "retired certificates cannot be verified until it is", reason=exc.message))
        return
    _journal(home, "ok", f"v{snapshot.version}", {"version": snapshot.version, "url": url,
                                                  "archive": archive.head.count})


def _fetch_directory(home: Home, base: str, timeout: float, now: datetime | None) -> Fetched:
    from sandi.directory.local import import_envelope, installed_snapshot

    by_delta = _fetch_delta(home, base, timeout, now)
    if by_delta is not None:
        return by_delta

    url = directory_url(base)
    headers = {"Accept": "application/json", "User-Agent": "sandi"}
    etag = installed_etag(home)
    if etag is not None:
        headers["If-None-Match"] = etag
    status, data = http_request(url, headers=headers, timeout=timeout, limit=MAX_DIRECTORY_BYTES)
    if status == 304:
        return Fetched(installed_snapshot(home, now=now), changed=False)
    try:
        snapshot = import_envelope(home, data, now=now)
    except (FormatError, VerificationError) as exc:
        _journal(home, "failed", url, {"reason": type(exc).__name__})
        raise
    _journal(home, "ok", f"v{snapshot.version}",
             {"version": snapshot.version, "sha256": snapshot.body_sha256, "url": url})
    return Fetched(snapshot, changed=True)


def needs_refresh(home: Home, now: datetime | None = None) -> bool:
    """True on a workstation with a server whose installed directory is missing,
    unreadable or expires within REFRESH_WITHIN. Reads the expiry without verifying
    (it only decides whether to ask; what arrives is verified in full)."""
    from sandi.directory.local import peek_expiry

    now = now or datetime.now(UTC)
    found = peek_expiry(home)
    if found is None:
        return True
    return bool(found[1] - now <= REFRESH_WITHIN)


def refresh_if_due(home: Home, *, timeout: float = REFRESH_TIMEOUT) -> Fetched | None:
    """Refresh the installed directory from the home's server when it is near its expiry.

    None when nothing was due (no server, not a workstation, a fresh directory). Raises
    ServerError (or a verification error) when it was due and failed: the caller
    carries on with the installed directory and says so.
    """
    config = home.load_config()
    base = server_url(home)
    if config.role != "workstation" or base is None or not needs_refresh(home):
        return None
    return fetch_directory(home, base, timeout=timeout)


def _journal(home: Home, outcome: Literal["ok", "failed"], subject: str, details: dict[str, Any]) -> None:
    from sandi.audit.events import AuditEvent
    from sandi.audit.journal import Journal

    actor = home.load_config().agency or "authority"
    Journal(home.journal_path).append(AuditEvent(
        actor=actor, action="directory.fetch", subject=subject, outcome=outcome, details=details))


