"""File writing the careful way: secrets with O_EXCL and 0600, outputs atomically.

Two rules from DESIGN.md live here so that no caller re-invents them:

* a secret is written once, to a new file created with mode 0600, never over an
  existing one;
* an output (decrypted or opened document, directory, CRL, key request) appears under
  its final name only when the caller commits, complete and flushed to disk; without
  ``overwrite`` it never replaces an existing file, even one created concurrently.

How, on each kind of filesystem (the OS-specific calls are in :mod:`sandi.portable`):

* **Linux, ext4/xfs/btrfs/tmpfs** — the data goes to an anonymous file (``O_TMPFILE``),
  which has no name until :meth:`AtomicOutput.commit` links it in with ``linkat``;
  ``linkat`` fails if the name is taken, so there is no overwrite even in a race, and
  a crash (``kill -9``, power loss) leaves nothing at all: the kernel frees a file
  nobody named.
* **Elsewhere** (FAT/exFAT USB sticks, FUSE, Windows, macOS) — the data goes to a
  named temporary file ``.NAME.<12 hex>.part`` (O_EXCL, the output's mode), locked for
  as long as its writer lives. Without ``overwrite`` the final name is first *reserved*
  by creating it with ``O_EXCL`` as a placeholder, which holds only a one-line marker
  naming the part file; commit then replaces the placeholder with the finished part
  (``os.replace``, atomic on POSIX and NTFS/FAT within one folder). Hard links are not
  needed, so FAT works; the O_EXCL creation is what refuses an existing file.
  Commit replaces the placeholder only if it still holds this writer's marker (a
  concurrent ``--force`` writer or a person who replaced it wins, and this one fails).
* **After a crash** on those filesystems a part file (possibly unverified plaintext,
  mode 0600) and its placeholder are left. Every new output first removes, in its own
  folder, the part files of sandi's naming whose writer is gone (its lock can be
  taken) and the placeholders whose marker names them — nothing else. Where the OS
  cannot tell a live writer (no ``flock`` and no Windows lock), parts are left alone.

What remains: between a crash and the next write into that folder, a part file exists
(0600, named ``.NAME.<hex>.part``; ``sandi`` removes it on its next write there).
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from sandi import portable
from sandi.errors import AlreadyExistsError, NotFoundError, SandiError, UsageError
from sandi.i18n import _

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600

#: the names of sandi's temporary files (``.tmp`` from versions before 0.2)
STALE_PART = re.compile(r"\A\..+\.[0-9a-f]{12}\.(?:part|tmp)\Z", re.DOTALL)
_PLACEHOLDER_PREFIX = b"sandi: unfinished output; its data is being written to "
#: the NAME part of a temporary name is cut to this many bytes (names may be 255)
_MAX_STEM_BYTES = 200
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | portable.NOFOLLOW | portable.BINARY | portable.CLOEXEC


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) if needed, private to the user (0700 where modes exist)."""
    portable.make_private_dir(path)


def write_new_secret(path: Path, data: bytes) -> None:
    """Write ``data`` to a *new* file with mode 0600; refuse if it exists.

    Written through :class:`AtomicOutput`, so a crash never leaves a truncated secret
    under the final name.
    """
    try:
        with AtomicOutput(path, mode=PRIVATE_FILE_MODE, overwrite=False) as out:
            out.file.write(data)
            out.commit()
    except AlreadyExistsError:
        raise AlreadyExistsError(
            _("{path} exists already").format(path=path), hint=_("sandi never overwrites a key file")
        ) from None


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644, overwrite: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically (see the module's invariants)."""
    with AtomicOutput(path, mode=mode, overwrite=overwrite) as out:
        out.file.write(data)
        out.commit()


def _part_name(name: str) -> str:
    stem = name.encode("utf-8", "surrogateescape")[:_MAX_STEM_BYTES].decode("utf-8", "ignore")
    # os.urandom, not secrets: that module would pull in random, hmac and base64 at
    # the start of every command (this module loads for all).
    return f".{stem}.{os.urandom(6).hex()}.part"


def _marker(part_name: str) -> bytes:
    return _PLACEHOLDER_PREFIX + part_name.encode("utf-8", "surrogateescape") + b"\n"


def _holds_marker(path: Path, marker: bytes, *, whole: bool) -> bool:
    """``path`` is a regular file holding ``marker`` (or, unless ``whole``, a cut-off start of it)."""
    try:
        fd = os.open(path, os.O_RDONLY | portable.NOFOLLOW | portable.BINARY | portable.CLOEXEC)
    except OSError:
        return False
    try:
        content = os.read(fd, len(marker) + 1)
    finally:
        os.close(fd)
    return content == marker if whole else marker.startswith(content)


def remove_stale_parts(folder: Path) -> list[Path]:
    """Remove what writers killed in ``folder`` left behind; return what was removed.

    Only part files of sandi's naming whose writer is gone (their lock can be taken)
    and the placeholders naming them. Never raises: tidying up must not stop a write.
    """
    removed: list[Path] = []
    try:
        names = [n for n in os.listdir(folder) if STALE_PART.match(n)]
    except OSError:
        return removed
    for name in names:
        part = folder / name
        try:
            fd = os.open(part, os.O_RDWR | portable.NOFOLLOW | portable.BINARY | portable.CLOEXEC)
        except OSError:
            continue
        try:
            if portable.try_lock(fd) is not True:
                continue  # a live writer, or no way to tell
            if not os.path.samestat(os.fstat(fd), os.lstat(part)):
                continue
            owner = folder / name[1:-18]  # ".NAME.<12 hex>.part" -> NAME (if it was not cut)
            if name.endswith(".part") and _holds_marker(owner, _marker(name), whole=False):
                owner.unlink()
                removed.append(owner)
            try:
                part.unlink()
            except PermissionError:  # Windows: not while open
                os.close(fd)
                fd = -1
                part.unlink()
            removed.append(part)
        except OSError:
            continue
        finally:
            if fd >= 0:
                os.close(fd)
    return removed


class AtomicOutput:
    """A file that appears under its final name only if :meth:`commit` is called.

    Use as a context manager; leaving the block without ``commit()`` (or by an
    exception) removes every trace of it (see the module docstring for how, and for
    what a crash leaves).
    """

    def __init__(self, path: Path, *, mode: int = 0o644, overwrite: bool = False) -> None:
        self.path = path
        self._overwrite = overwrite
        self._committed = False
        self._tmp: Path | None = None  # the named part file, if not anonymous
        self._marker: bytes | None = None  # the placeholder's content, if one reserves the name
        folder = path.parent
        remove_stale_parts(folder)
        if not overwrite and os.path.lexists(path):
            raise _exists(path, hint=_("choose another output name or remove it first"))
        try:
            fd = portable.open_anonymous(folder, mode)
            if fd is None:
                fd = self._open_part(folder, mode)
        except FileNotFoundError:
            # A missing output folder is the user's to fix, not an internal error.
            raise NotFoundError(
                _("cannot write {path}: the folder {parent} does not exist").format(path=path, parent=folder),
                hint=_("create the folder first, or choose another output"),
            ) from None
        except PermissionError:
            raise UsageError(_("cannot write {path}: permission denied").format(path=path)) from None
        self.file: BinaryIO = os.fdopen(fd, "wb")
        if self._tmp is not None and not overwrite:
            try:
                self._reserve(mode)
            except BaseException:
                self.discard()
                raise

    def _open_part(self, folder: Path, mode: int) -> int:
        for _attempt in range(5):
            tmp = folder / _part_name(self.path.name)
            fd = os.open(tmp, _NEW, mode)
            portable.try_lock(fd)  # held until closed: tells the tidy-up we are alive
            try:
                if os.path.samestat(os.fstat(fd), os.lstat(tmp)):
                    self._tmp = tmp
                    return fd
            except FileNotFoundError:
                pass  # another process's tidy-up took it between create and lock
            os.close(fd)
        raise SandiError(_("cannot create a temporary file in {folder}").format(folder=folder))

    def _reserve(self, mode: int) -> None:
        assert self._tmp is not None
        marker = _marker(self._tmp.name)
        try:
            fd = os.open(self.path, _NEW, mode)
        except FileExistsError:
            raise _exists(self.path, hint=_("choose another output name or remove it first")) from None
        except PermissionError:
            raise UsageError(_("cannot write {path}: permission denied").format(path=self.path)) from None
        try:
            os.write(fd, marker)
        finally:
            os.close(fd)
        self._marker = marker

    def commit(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        if self._tmp is None:
            self._commit_anonymous()
        else:
            self.file.close()  # Windows replaces no open file
            if self._marker is not None and not _holds_marker(self.path, self._marker, whole=True):
                raise _exists(self.path, hint=_("another program wrote it while sandi was writing"))
            os.replace(self._tmp, self.path)
            self._tmp = None
            self._marker = None
        portable.fsync_dir(self.path.parent)
        self._committed = True

    def _commit_anonymous(self) -> None:
        fd = self.file.fileno()
        try:
            if not self._overwrite:
                try:
                    portable.link_anonymous(fd, self.path)
                except FileExistsError:
                    raise _exists(self.path) from None
            else:
                tmp = self.path.parent / _part_name(self.path.name)
                portable.link_anonymous(fd, tmp)
                try:
                    os.replace(tmp, self.path)
                except BaseException:
                    with contextlib.suppress(OSError):
                        tmp.unlink()
                    raise
        finally:
            self.file.close()

    def discard(self) -> None:
        """Remove the temporary file and the placeholder; a no-op once committed."""
        if self._committed:
            return
        if not self.file.closed:
            self.file.close()
        if self._marker is not None:
            if _holds_marker(self.path, self._marker, whole=True):
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
            self._marker = None
        if self._tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                self._tmp.unlink()
            self._tmp = None

    def __enter__(self) -> AtomicOutput:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._committed:
            self.discard()


def _exists(path: Path, *, hint: str | None = None) -> AlreadyExistsError:
    return AlreadyExistsError(_("{path} exists already").format(path=path), hint=hint)


def check_private_file(path: Path) -> None:
    """Refuse a secret file that others can read (like ssh does; per platform, see portable)."""
    problem = portable.private_file_problem(path)
    if problem is not None:
        raise SandiError(problem, hint=portable.private_file_hint(path))
