"""The journal sink: an append-only file of hash-chained entries in a home.

Workstations have no registry, so their document operations are recorded here (an
authority home has a journal too, for what it does without the registry).

File format (docs/audit.md): UTF-8, one canonical JSON object per line, ``\\n``
terminated. An entry line is the entry's fields plus ``"type":"entry"``; a checkpoint
line is the checkpoint's fields plus ``"type":"checkpoint"``. The hash covers the
entry fields only (not ``type``), exactly as in the registry.

Invariants:

* the file is created with mode 0600 and only ever appended to (``O_APPEND``);
* every append holds an exclusive lock (:func:`sandi.portable.exclusive_lock` on the
  lock file ``<journal>.lock`` beside it, never on the journal itself: Windows locks
  would stop readers) while it reads the last entry (the head), writes one whole line,
  and ``fsync``s, so concurrent appenders in other processes queue and the chain stays
  one chain with nothing lost;
* an append that cannot complete raises :class:`~sandi.errors.AuditError` (the caller's
  operation then fails closed); a short write is cut back off under the lock;
* a journal that ends without a newline (a crash mid-write) is refused for appending
  until someone looks at it; readers snapshot the size under the lock, so they never
  see half a line from a concurrent appender (on a read-only medium, where nobody can
  append, they read without it).
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from sandi import portable
from sandi.audit.checkpoint import Checkpoint, Signer, sign_checkpoint
from sandi.audit.entry import GENESIS_HASH, AuditEntry, canonical_json, make_entry
from sandi.audit.events import AuditEvent, JSONValue, Outcome, current_operator
from sandi.errors import AuditError, SandiError
from sandi.formats.bounded import load_json
from sandi.i18n import N_, Message, _

MAX_LINE = 64 * 1024  # an entry is at most ~17 KiB (details are capped at 16 KiB)
_CHUNK = 64 * 1024
_CHECKPOINT_MARK = b'"type":"checkpoint"'


def entry_line(entry: AuditEntry) -> bytes:
    return canonical_json({"type": "entry", **entry.to_dict()}) + b"\n"


def checkpoint_line(checkpoint: Checkpoint) -> bytes:
    return canonical_json({"type": "checkpoint", **checkpoint.to_dict()}) + b"\n"


def parse_line(line: bytes, where: str) -> AuditEntry | Checkpoint | dict[str, Any]:
    """One journal / export line: an entry, a checkpoint, or (for other types) the dict."""
    def refuse(reason: str) -> AuditError:
        return AuditError(Message("{where}: not a JSON line ({reason})", where=where, reason=reason))

    data = load_json(line, max_bytes=MAX_LINE, error=refuse)
    if not isinstance(data, dict):
        raise AuditError(_("{where}: not a JSON object").format(where=where))
    kind = data.pop("type", None)
    if kind == "entry":
        return AuditEntry.from_dict(data)
    if kind == "checkpoint":
        return Checkpoint.from_dict(data)
    if isinstance(kind, str):
        data["type"] = kind
        return data
    raise AuditError(_("{where}: line has no type").format(where=where))


def _os_failure(what: str, path: Path, exc: OSError) -> AuditError:
    reason = exc.strerror or exc.__class__.__name__
    return AuditError(
        _("{what} {path}: {reason}").format(what=_(what), path=path, reason=reason),
        hint=_("the operation was not carried out: its audit entry could not be written"),
    )


class Journal:
    """The audit journal at ``path`` (usually ``Home.journal_path``)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"

    def exists(self) -> bool:
        return self.path.exists()

    # -- writing --------------------------------------------------------------------

    def append(self, event: AuditEvent, *, when: datetime | None = None) -> AuditEntry:
        """Append ``event`` as the next entry, durably; raises AuditError if it cannot."""
        with self._locked_for_append() as fd:
            seq, head_hash = _tail_head(fd, self.path)
            entry = make_entry(event, prev_seq=seq, prev_hash=head_hash, when=when)
            self._write_line(fd, entry_line(entry))
            return entry

    def checkpoint(
        self, signer: Signer, *, only_if_due: int | None = None, when: datetime | None = None
    ) -> Checkpoint | None:
        """Sign the head and append a checkpoint line.

        With ``only_if_due=N`` only when N or more entries follow the last checkpoint
        (None otherwise). The lock is held throughout, so the head cannot move.
        """
        with self._locked_for_append() as fd:
            if only_if_due is not None:
                seq, head_hash, since = _tail_scan(fd, self.path, count_until=only_if_due)
                if seq == 0 or since < only_if_due:
                    return None
            else:
                seq, head_hash = _tail_head(fd, self.path)
            checkpoint = sign_checkpoint(signer, seq, head_hash, when=when)
            self._write_line(fd, checkpoint_line(checkpoint))
            return checkpoint

    @contextlib.contextmanager
    def _locked_for_append(self) -> Iterator[int]:
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | portable.NOFOLLOW | portable.CLOEXEC | portable.BINARY
        with _journal_lock(self.path, reading=False):
            created = not self.path.exists()
            try:
                fd = os.open(self.path, flags, 0o600)
            except OSError as exc:
                raise _os_failure(N_("cannot open the audit journal"), self.path, exc) from None
            try:
                if created:
                    try:
                        portable.fsync_dir(self.path.parent)
                    except OSError as exc:
                        raise _os_failure(N_("cannot write the audit journal"), self.path, exc) from None
                yield fd
            finally:
                os.close(fd)

    def _write_line(self, fd: int, line: bytes) -> None:
        if len(line) > MAX_LINE:
            raise AuditError(_("audit journal line too long ({count} bytes)").format(count=len(line)))
        start = os.fstat(fd).st_size
        try:
            view = memoryview(line)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        except OSError as exc:
            # Cut a partial line back off (we hold the lock, nobody appended since).
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
                os.fsync(fd)
            raise _os_failure(N_("cannot write the audit journal"), self.path, exc) from None

    # -- reading --------------------------------------------------------------------

    def records(self) -> Iterator[AuditEntry | Checkpoint]:
        """Every entry and checkpoint, in file order, streamed.

        Reads up to the size seen under a shared lock, so a concurrent append is
        either wholly in or wholly out.
        """
        return self._records(only_checkpoints=False)

    def _records(self, *, only_checkpoints: bool) -> Iterator[AuditEntry | Checkpoint]:
        if not self.path.exists():
            return
        try:
            f = open(self.path, "rb")  # noqa: SIM115 - closed in finally, generator
        except OSError as exc:
            raise _os_failure(N_("cannot read the audit journal"), self.path, exc) from None
        try:
            with _journal_lock(self.path, reading=True):
                size = os.fstat(f.fileno()).st_size
            offset = 0
            lineno = 0
            while offset < size:
                line = f.readline(min(MAX_LINE + 1, size - offset))
                lineno += 1
                offset += len(line)
                where = f"{self.path}: line {lineno}"
                if not line.endswith(b"\n"):
                    if len(line) > MAX_LINE:
                        raise AuditError(_("{where}: line too long").format(where=where))
                    raise AuditError(_("{where}: incomplete last line (an interrupted write?)").format(
                        where=where,
                    ))
                # A checkpoint line holds this marker unescaped; an entry line only if a
                # details key/value spells it, and then the full parse below decides.
                if only_checkpoints and _CHECKPOINT_MARK not in line:
                    continue
                record = parse_line(line, where)
                if isinstance(record, dict):
                    raise AuditError(_("{where}: unknown line type {get!r}").format(
                        where=where,
                        get=record.get('type'),
                    ))
                yield record
        finally:
            f.close()

    def entries(self) -> Iterator[AuditEntry]:
        for record in self.records():
            if isinstance(record, AuditEntry):
                yield record

    def checkpoints(self) -> list[Checkpoint]:
        return [r for r in self._records(only_checkpoints=True) if isinstance(r, Checkpoint)]

    def head(self) -> tuple[int, str]:
        """``(seq, hash)`` of the last entry; ``(0, GENESIS_HASH)`` for an empty journal."""
        if not self.path.exists():
            return 0, GENESIS_HASH
        try:
            fd = os.open(self.path, os.O_RDONLY | portable.CLOEXEC | portable.BINARY)
        except OSError as exc:
            raise _os_failure(N_("cannot read the audit journal"), self.path, exc) from None
        try:
            with _journal_lock(self.path, reading=True):
                return _tail_head(fd, self.path)
        finally:
            os.close(fd)


def _reverse_lines(fd: int, size: int, path: Path) -> Iterator[bytes]:
    """Complete lines from the end of the file backwards (without their newlines)."""
    pos = size
    buf = b""
    while pos > 0:
        step = min(_CHUNK, pos)
        pos -= step
        buf = os.pread(fd, step, pos) + buf
        parts = buf.split(b"\n")
        buf = parts[0]
        for part in reversed(parts[1:]):
            if part:
                yield part
        if len(buf) > MAX_LINE:
            raise AuditError(_("{path}: a line is too long").format(path=path))
    if buf:
        yield buf


def _tail_scan(fd: int, path: Path, *, count_until: int) -> tuple[int, str, int]:
    """Head ``(seq, hash)`` and how many entries follow the last checkpoint (capped)."""
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            return 0, GENESIS_HASH, 0
        if os.pread(fd, 1, size - 1) != b"\n":
            raise AuditError(
                _("{path} ends with an incomplete line (an interrupted write?)").format(path=path),
                hint=_("run 'sandi audit verify'; keep a copy of the journal and remove the incomplete "
                       "last line by hand before recording again"),
            )
        head: tuple[int, str] | None = None
        since = 0
        for line in _reverse_lines(fd, size, path):
            record = parse_line(line, f"{path}: last lines")
            if isinstance(record, Checkpoint):
                break
            if isinstance(record, AuditEntry):
                if head is None:
                    head = (record.seq, record.hash)
                since += 1
                if since >= count_until:
                    break
    except OSError as exc:
        raise _os_failure(N_("cannot read the audit journal"), path, exc) from None
    except SandiError:
        raise
    if head is None:
        # Only checkpoint lines at the end: the head is the checkpoint's, which must
        # name the last entry; find the entry itself further back.
        head = _last_entry(fd, path)
    return head[0], head[1], since


def _tail_head(fd: int, path: Path) -> tuple[int, str]:
    seq, head_hash, _ = _tail_scan(fd, path, count_until=1)
    return seq, head_hash


def _last_entry(fd: int, path: Path) -> tuple[int, str]:
    size = os.fstat(fd).st_size
    for line in _reverse_lines(fd, size, path):
        record = parse_line(line, f"{path}: last lines")
        if isinstance(record, AuditEntry):
            return record.seq, record.hash
    return 0, GENESIS_HASH


@contextlib.contextmanager
def _journal_lock(path: Path, *, reading: bool) -> Iterator[None]:
    """The journal's lock (its ``.lock`` file); a reader on a read-only medium goes without."""
    lock = portable.exclusive_lock(path.with_name(path.name + ".lock"))
    try:
        lock.__enter__()
    except OSError as exc:
        if reading and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            yield
            return
        raise _os_failure(N_("cannot lock the audit journal"), path, exc) from None
    try:
        yield
    finally:
        lock.__exit__(None, None, None)


def record_by_operator(
    path: Path, actor: str, action: str, subject: str, outcome: Outcome = "ok",
    details: Mapping[str, JSONValue] | None = None,
) -> AuditEntry:
    """Append one event to the journal at ``path``, stamped with the operator at the
    keyboard (``details["operator"]``); raises AuditError, so the caller fails closed."""
    full: dict[str, JSONValue] = {"operator": current_operator()}
    full.update(details or {})
    return Journal(path).append(
        AuditEvent(actor=actor, action=action, subject=subject, outcome=outcome, details=full)
    )
