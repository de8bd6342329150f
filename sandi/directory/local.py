"""The directory installed in a home: its trust anchor, reading and importing.

Invariants:

* the trust anchor is the root fingerprint in the home's configuration (given at
  ``sandi init`` on both kinds of home);
* an import replaces the installed snapshot only with one that verifies against that
  anchor, is not older (no rollback) and not expired (no freeze); the file is
  replaced atomically, so a reader sees the old or the new snapshot, never half;
* the home keeps a copy of the highest snapshot it ever installed in
  ``directory.anchor.json`` (ADR 0010). It is integrity-protected by the root's own
  signature (it is a whole signed envelope): it cannot be forged, only swapped for
  another genuine snapshot, and sandi never lowers it. Every read refuses an installed
  snapshot older than it (a ``directory.json`` rolled back by copying an older file
  over it), and every import refuses a version below it, even when ``directory.json``
  is corrupt or missing. A damaged anchor is refused, never silently replaced;
* installs and anchor updates of one home are serialised by an exclusive lock on
  ``.directory.lock`` (:func:`sandi.portable.exclusive_lock`), so two concurrent imports
  cannot leave the lower one installed;
* with a v2 directory (ADR 0015) an install also writes the anchor's signed header
  (``directory.anchor-header.json``, with the SHA-256 of the anchor file) and the index
  ``directory.index``, in that order after ``directory.json`` and the anchor, each
  atomically; a reader uses the index only when its header is byte for byte the header
  anchor's, so an install cut short leaves the index unused, never wrong. Once a home's
  anchor is v2, a v1 directory is refused (a downgrade).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from sandi import portable
from sandi.audit.checkpoint import Witness
from sandi.directory import v2
from sandi.directory.archive import Archive, archive_path, load_archive
from sandi.directory.index import (
    IndexUnusable,
    installed_stamp,
    open_indexed,
    read_header_anchor,
    write_index,
)
from sandi.directory.snapshot import (
    V2_FORMAT,
    DirectorySnapshot,
    check_fresh,
    normalise_fingerprint,
    parse_envelope,
    parse_v2_file,
    read_envelope_file,
    verify_header,
)
from sandi.errors import ConfigError, FormatError, NotFoundError, SandiError, VerificationError
from sandi.fsutil import atomic_write
from sandi.home import Home
from sandi.i18n import Message, _

LOCK_NAME = ".directory.lock"


def trusted_fingerprint(home: Home) -> str:
    config = home.load_config()
    if not config.root_fingerprint:
        raise ConfigError(
            _("the home at {path} names no root fingerprint").format(path=home.path),
            hint=_("re-create the workstation with 'sandi init --agency CODE --root-fingerprint FP'"),
        )
    return normalise_fingerprint(config.root_fingerprint)


def installed_snapshot(home: Home, *, now: datetime | None = None) -> DirectorySnapshot:
    """The home's verified, unexpired snapshot (documents commands start here).

    From the index when there is a usable one (its header checked at once, each agency
    when it is looked up); else from ``directory.json`` verified in full, with a notice
    when a v2 directory had no usable index (and the failure in the journal when there
    was one). Refuses one older than the highest this home installed (rollback), and
    records that refusal in the home's audit journal.
    """
    now = now or datetime.now(UTC)
    fingerprint = trusted_fingerprint(home)
    reason: str | None = None
    if home.directory_index_path.exists():
        try:
            return replace(open_indexed(home, fingerprint, now,
                                        fallback=lambda: _installed_in_full(home, now, fingerprint),
                                        on_failure=lambda why: _record_index_failure(home, why)),
                           archive_file=archive_path(home.path))
        except IndexUnusable as exc:
            reason = exc.message
            _record_index_failure(home, reason)
    snapshot = _installed_in_full(home, now, fingerprint)
    if snapshot.format == V2_FORMAT:
        snapshot.notices.append(Message(
            "the directory index could not be used ({reason}); directory.json was verified in "
            "full instead (slower). Import the directory again to rebuild the index",
            reason=reason or Message("there is no directory index")))
    return replace(snapshot, archive_file=archive_path(home.path))


def _installed_in_full(home: Home, now: datetime, fingerprint: str) -> DirectorySnapshot:
    data = read_envelope_file(home.directory_path)
    snapshot, decoded, checked = parse_v2_file(data, fingerprint)
    check_fresh(snapshot, now, None)
    _check_against_anchor(home, data, snapshot, fingerprint, decoded, checked)
    return snapshot


def _record_index_failure(home: Home, reason: str) -> None:
    """An index that exists but cannot be used is recorded: an edited one is tampering."""
    from sandi.audit.events import AuditEvent
    from sandi.audit.journal import Journal

    config = home.load_config()
    Journal(home.journal_path).append(AuditEvent(
        actor=config.agency or "authority", action="directory.index", subject="directory.index",
        outcome="failed", details={"reason": str(reason)},
    ))


def peek_expiry(home: Home) -> tuple[int, datetime] | None:
    """The installed directory's version and expiry, read WITHOUT verifying anything: only
    to decide whether to warn or to ask the server for a fresh one. From the index's
    header when there is one (constant cost), else from ``directory.json``."""
    import base64

    from sandi.directory.index import peek_header
    from sandi.directory.snapshot import MAX_DIRECTORY_BYTES
    from sandi.formats.bounded import load_json

    header = peek_header(home)
    if header is not None:
        return header.version, header.expires_at
    try:
        envelope = load_json(home.directory_path.read_bytes(), max_bytes=MAX_DIRECTORY_BYTES,
                             error=FormatError)
        if envelope.get("format") == V2_FORMAT:
            parsed = v2.parse_header(base64.b64decode(envelope["header"]))
            return parsed.version, parsed.expires_at
        body = load_json(base64.b64decode(envelope["body"]), max_bytes=MAX_DIRECTORY_BYTES, error=FormatError)
        expires = datetime.fromisoformat(str(body["expires_at"]).replace("Z", "+00:00"))
        return int(body["version"]), expires
    except (OSError, ValueError, KeyError, TypeError, AttributeError, FormatError):
        return None


def installed_version(home: Home) -> int | None:
    """The version installed now, or None. An unreadable or forged file counts as none."""
    if not home.directory_path.exists():
        return None
    with contextlib.suppress(FormatError, VerificationError, NotFoundError):
        return parse_envelope(read_envelope_file(home.directory_path), trusted_fingerprint(home)).version
    return None


def anchor_snapshot(home: Home, fingerprint: str | None = None) -> DirectorySnapshot | None:
    """The highest snapshot this home installed (its anchor), verified; None if none.

    A damaged or forged anchor raises VerificationError: it is evidence of tampering
    (or of a disk fault) that a person must look at, not something to overwrite.
    """
    path = home.directory_anchor_path
    try:
        data = read_envelope_file(path)
    except NotFoundError:
        return None
    try:
        return parse_envelope(data, fingerprint or trusted_fingerprint(home))
    except (FormatError, VerificationError) as exc:
        raise VerificationError(
            _("the record of the highest directory installed ({path}) is damaged: {reason}").format(
                path=path, reason=exc.message),
            hint=_("keep a copy of {path} and investigate; once the home is known to be intact, "
                   "remove it and import the newest directory the authority published").format(path=path),
        ) from None


def highest_version(home: Home) -> int | None:
    """The highest version this home installed: the anchor's, or the installed one's."""
    fingerprint = trusted_fingerprint(home)
    anchor_version, anchor_data = _anchor_version(home, fingerprint)
    if anchor_data is not None:
        try:
            installed_data: bytes | None = home.directory_path.read_bytes()
        except OSError:
            installed_data = None
        if installed_data == anchor_data:  # the usual case: one file, verified once
            return anchor_version
    installed = installed_version(home)
    versions = [v for v in (installed, anchor_version) if v is not None]
    return max(versions) if versions else None


def _anchor_version(home: Home, fingerprint: str) -> tuple[int | None, bytes | None]:
    """The anchor's version and bytes (None, None without one). Cheap when the header
    anchor describes the anchor file (its SHA-256 matches): one header signature, no parse."""
    try:
        data = read_envelope_file(home.directory_anchor_path)
    except NotFoundError:
        return None, None
    header_anchor = read_header_anchor(home)
    if header_anchor is not None and header_anchor.anchor_sha256 == v2.sha256_hex(data):
        with contextlib.suppress(FormatError, VerificationError):
            return verify_header(header_anchor.header, header_anchor.signature, fingerprint).version, data
    anchor = anchor_snapshot(home, fingerprint)
    return (None if anchor is None else anchor.version), data


def _anchor_format(home: Home) -> str | None:
    """The anchor's format without verifying it (a v1 file has no header anchor)."""
    header_anchor = read_header_anchor(home)
    return V2_FORMAT if header_anchor is not None else None




def import_archive(home: Home, data: bytes, *, now: datetime | None = None) -> Archive:
    """Install the archive of retired certificates (ADR 0019) if its leaves hash to the
    head the installed directory signs; a file for another version is refused."""
    snapshot = installed_snapshot(home, now=now)
    if snapshot.archive_head is None:
        raise VerificationError(
            _("the installed directory (version {version}) archives no certificates").format(
                version=snapshot.version),
            hint=_("import the directory this archive was published with first"))
    archive = load_archive(data, snapshot.archive_head)
    with _locked(home):
        atomic_write(archive_path(home.path), data, mode=0o644, overwrite=True)
    return archive


def import_snapshot(home: Home, source: Path, *, now: datetime | None = None) -> DirectorySnapshot:
    """Verify ``source`` and install it in the home; returns the snapshot installed."""
    return import_envelope(home, read_envelope_file(source), now=now)


def import_envelope(home: Home, data: bytes, *, now: datetime | None = None) -> DirectorySnapshot:
    """Verify the envelope ``data`` (a file's or a server's answer) and install it, with
    the same checks as :func:`import_snapshot`: root fingerprint, signature, expiry,
    no rollback below the installed version or the anchor."""
    now = now or datetime.now(UTC)
    snapshot, decoded, checked = parse_v2_file(data, trusted_fingerprint(home))
    with _locked(home):
        check_fresh(snapshot, now, highest_version(home))
        if decoded is None and _anchor_format(home) == V2_FORMAT:
            raise VerificationError(
                _("this home has installed a version 2 directory; a version 1 directory "
                  "(version {version}) is refused").format(version=snapshot.version),
                hint=_("import the newest directory the authority published"))
        atomic_write(home.directory_path, data, mode=0o644)
        _write_anchor(home, data, snapshot.version, decoded)
        try:
            _write_index(home, data, decoded, checked)
        except OSError as exc:
            # Windows will not replace a file another command has open. The old index no
            # longer matches the header anchor, so it is not used; commands verify
            # directory.json in full (and say so) until one of them rebuilds it.
            snapshot.notices.append(Message(
                "the directory index could not be written ({reason}); commands verify "
                "directory.json in full until it is rebuilt", reason=exc.strerror or type(exc).__name__))
    return snapshot


def _write_index(home: Home, data: bytes, decoded: v2.Envelope | None,
                 checked: v2.CheckedBody | None) -> None:
    """Replace ``directory.index`` with the index of ``data`` (caller holds the lock and
    verified it); a v1 directory has none, so a stale one is removed."""
    if decoded is None or checked is None:
        with contextlib.suppress(FileNotFoundError):
            home.directory_index_path.unlink()
        return
    write_index(home.directory_index_path, decoded, checked, v2.sha256_hex(data),
                installed_stamp(home.directory_path))


def install_verified(home: Home, data: bytes, snapshot: DirectorySnapshot) -> bool:
    """Install a snapshot the caller verified (the authority's own publication) unless
    the home has seen a newer one; True if installed."""
    with _locked(home):
        try:
            highest = highest_version(home)
        except VerificationError:
            highest = None  # the authority's own anchor is rebuilt from what it signs now
        if highest is not None and highest > snapshot.version:
            return False
        _, decoded, checked = parse_v2_file(data, trusted_fingerprint(home))
        atomic_write(home.directory_path, data, mode=0o644)
        atomic_write(home.directory_anchor_path, data, mode=0o644)
        _write_header_anchor(home, data, decoded)
        _write_index(home, data, decoded, checked)
    return True


def audit_witnesses(home: Home) -> list[Witness]:
    """The registry audit checkpoints this home's directories carry (ADR 0010): the
    installed ``directory.json`` and the anchor, whatever their age (an expired or
    rolled-back directory still witnesses the log up to its checkpoint).

    An installed file that does not verify is skipped (the directory commands report
    it); a damaged anchor raises, as everywhere.
    """
    fingerprint = trusted_fingerprint(home)
    found: list[Witness] = []
    snapshots: list[tuple[Path, DirectorySnapshot]] = []
    anchor = anchor_snapshot(home, fingerprint)
    if anchor is not None:
        snapshots.append((home.directory_anchor_path, anchor))
    with contextlib.suppress(FormatError, VerificationError, NotFoundError):
        path = home.directory_path
        data = read_envelope_file(path)
        # The usual case: the installed file is the anchor; one verification will do.
        if anchor is None or data != _anchor_bytes(home):
            snapshots.append((path, parse_envelope(data, fingerprint)))
    for path, snapshot in snapshots:
        if snapshot.audit_checkpoint is not None:
            found.append(Witness(
                source=Message("directory version {version} ({path})",
                               version=snapshot.version, path=str(path)),
                checkpoint=snapshot.audit_checkpoint,
            ))
    return found


def _anchor_bytes(home: Home) -> bytes | None:
    try:
        return home.directory_anchor_path.read_bytes()
    except OSError:
        return None


def directory_witness(path: Path, root_fingerprint: str) -> Witness:
    """The registry audit checkpoint a directory file carries, from any machine that
    imported it (a witness); the file must verify against ``root_fingerprint``."""
    snapshot = parse_envelope(read_envelope_file(path), root_fingerprint)
    if snapshot.audit_checkpoint is None:
        raise NotFoundError(
            _("{path} (directory version {version}) carries no audit checkpoint").format(
                path=path, version=snapshot.version),
            hint=_("directories carry one from the version of sandi that anchors the audit log "
                   "on; use a newer directory"),
        )
    return Witness(
        source=Message("directory version {version} ({path})", version=snapshot.version, path=str(path)),
        checkpoint=snapshot.audit_checkpoint,
    )


def _check_against_anchor(home: Home, data: bytes, snapshot: DirectorySnapshot, fingerprint: str,
                          decoded: v2.Envelope | None = None, checked: v2.CheckedBody | None = None) -> None:
    path = home.directory_anchor_path
    try:
        anchor_data = path.read_bytes()
    except FileNotFoundError:
        anchor_data = None
    except OSError as exc:
        raise VerificationError(_("cannot read {path}: {reason}").format(
            path=path, reason=exc.strerror or exc.__class__.__name__)) from None
    if anchor_data == data:
        # The usual case: the installed snapshot is the highest one seen. A v2 one just
        # verified in full had no usable index: rebuild it (and the header anchor), so the
        # next command is cheap again. Best effort: a read-only home still reads.
        if decoded is not None and checked is not None:
            with contextlib.suppress(OSError, SandiError), _locked(home):
                if home.directory_anchor_path.read_bytes() == data:
                    _write_header_anchor(home, data, decoded)
                    _write_index(home, data, decoded, checked)
        return
    anchor = None if anchor_data is None else anchor_snapshot(home, fingerprint)
    if anchor is not None and anchor.version > snapshot.version:
        _record_rollback(home, snapshot.version, anchor.version)
        raise VerificationError(
            _("the installed directory (version {version}) is older than version {highest}, "
              "which this home installed before: directory.json was rolled back").format(
                version=snapshot.version, highest=anchor.version),
            hint=_("import the newest directory the authority published "
                   "('sandi directory import FILE')"),
        )
    # A newer snapshot than the anchor (put in place by hand, or installed before this
    # home kept an anchor): it becomes the anchor. Best effort: a read-only home
    # still reads, it only keeps the lower anchor.
    with contextlib.suppress(OSError, _LockFailed), _locked(home):
        current = anchor_snapshot(home, fingerprint)
        if current is None or current.version < snapshot.version:
            _write_anchor(home, data, snapshot.version, decoded)
            _write_index(home, data, decoded, checked)


def _write_anchor(home: Home, data: bytes, version: int, decoded: v2.Envelope | None) -> None:
    """Raise the anchor to ``data`` (caller holds the lock and verified ``data``), with its
    header anchor when it is v2; for an anchor of the same version, write a missing header
    anchor."""
    current, current_data = _anchor_version(home, trusted_fingerprint(home))
    if current is not None and current >= version:
        if current_data == data:
            _write_header_anchor(home, data, decoded)
        return
    atomic_write(home.directory_anchor_path, data, mode=0o644)
    _write_header_anchor(home, data, decoded)


def _write_header_anchor(home: Home, anchor_data: bytes, decoded: v2.Envelope | None) -> None:
    """The anchor ``anchor_data``'s signed header beside it; none for a v1 anchor."""
    path = home.directory_anchor_header_path
    if decoded is None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    wanted = v2.HeaderAnchor(decoded.header, decoded.signature, v2.sha256_hex(anchor_data)).to_bytes()
    with contextlib.suppress(OSError):
        if path.read_bytes() == wanted:
            return
    atomic_write(path, wanted, mode=0o644)


def _record_rollback(home: Home, version: int, highest: int) -> None:
    from sandi.audit.events import AuditEvent
    from sandi.audit.journal import Journal

    config = home.load_config()
    Journal(home.journal_path).append(AuditEvent(
        actor=config.agency or "authority", action="directory.rollback", subject=f"v{version}",
        outcome="failed", details={"installed": version, "highest_seen": highest},
    ))


@contextlib.contextmanager
def _locked(home: Home) -> Iterator[None]:
    path = home.path / LOCK_NAME
    with portable.exclusive_lock(path, failure=lambda exc: _lock_error(path, exc)):
        yield


class _LockFailed(SandiError):
    """The home's directory lock could not be taken (a read-only home, say)."""


def _lock_error(path: Path, exc: OSError) -> SandiError:
    return _LockFailed(_("cannot lock {path}: {reason}").format(
        path=path, reason=exc.strerror or exc.__class__.__name__))
