"""File writing the careful way: secrets with O_EXCL and 0600, outputs atomically.

Two rules from DESIGN.md live here so that no caller re-invents them:

* a secret is written once, to a new file created with ``O_EXCL`` and mode 0600;
* an output (decrypted or opened document, directory, CRL) goes to a temporary file
  in the target folder and is renamed into place only when the caller commits; on
  any failure the temporary file is removed, so nothing half-written is left.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from sandi.errors import AlreadyExistsError, NotFoundError, SandiError, UsageError
from sandi.i18n import _

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) if needed and force mode 0700 on it."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    os.chmod(path, PRIVATE_DIR_MODE)


def write_new_secret(path: Path, data: bytes) -> None:
    """Write ``data`` to a *new* file with mode 0600; refuse if it exists.

    The data is written to a temporary name first (also O_EXCL, 0600) and linked
    into place, so a crash never leaves a truncated secret under the final name.
    """
    # Temporary names use os.urandom, not secrets: that module would pull in random,
    # hmac and base64 at the start of every command (this module loads for all).
    tmp = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # fails if path exists: no overwrite, even racing
        except FileExistsError:
            raise AlreadyExistsError(
                _("{path} exists already").format(path=path), hint=_("sandi never overwrites a key file")
            ) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _fsync_dir(path.parent)


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644, overwrite: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically (temp file + rename)."""
    with AtomicOutput(path, mode=mode, overwrite=overwrite) as out:
        out.file.write(data)
        out.commit()


class AtomicOutput:
    """A file that appears under its final name only if :meth:`commit` is called.

    Use as a context manager; leaving the block without ``commit()`` (or by an
    exception) deletes the temporary file.
    """

    def __init__(self, path: Path, *, mode: int = 0o644, overwrite: bool = False) -> None:
        self.path = path
        self._overwrite = overwrite
        if not overwrite and path.exists():
            raise AlreadyExistsError(
                _("{path} exists already").format(
                    path=path,
                ), hint=_("choose another output name or remove it first")
            )
        self._tmp = path.with_name(f".{path.name}.{os.urandom(6).hex()}.part")
        try:
            fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        except FileNotFoundError:
            # A missing output folder is the user's to fix, not an internal error.
            raise NotFoundError(
                _("cannot write {path}: the folder {parent} does not exist").format(
                    path=path,
                    parent=path.parent,
                ),
                hint=_("create the folder first, or choose another output"),
            ) from None
        except PermissionError:
            raise UsageError(_("cannot write {path}: permission denied").format(path=path)) from None
        self.file: BinaryIO = os.fdopen(fd, "wb")
        self._committed = False

    def commit(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        if self._overwrite:
            os.replace(self._tmp, self.path)
        else:
            try:
                os.link(self._tmp, self.path)
            except FileExistsError:
                raise AlreadyExistsError(_("{path} exists already").format(path=self.path)) from None
            self._tmp.unlink()
        _fsync_dir(self.path.parent)
        self._committed = True

    def discard(self) -> None:
        """Remove the temporary file; a no-op once committed."""
        if self._committed:
            return
        if not self.file.closed:
            self.file.close()
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()

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


def check_private_file(path: Path) -> None:
    """Refuse a secret file that others can read (like ssh does)."""
    st = path.stat()
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise SandiError(
            _("{path} is readable by others (mode {s_imode:o})").format(
                path=path,
                s_imode=stat.S_IMODE(st.st_mode),
            ),
            hint=_("chmod 600 {path}").format(path=path),
        )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
