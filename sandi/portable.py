"""What differs between operating systems, in one place (POSIX, Windows, odd filesystems).

Nothing else in sandi imports ``fcntl`` or ``msvcrt``, uses ``O_NOFOLLOW``/``O_TMPFILE``
directly, opens folders, reads ``/dev/tty`` or looks at mode bits: it asks this module.

Features are detected, not inferred from ``os.name``, wherever they can be probed, so
the branches a Windows machine takes also run on Linux with the POSIX-only features
removed (``tests/test_portable.py`` does that in a subprocess):

* **open flags** — :data:`NOFOLLOW` (0 where the OS has none: Windows resolves no
  symlinks that an unprivileged user could plant), :data:`BINARY` (Windows' text mode
  would translate newlines in ``os.open`` files), :data:`CLOEXEC`.
* **anonymous files** — :func:`open_anonymous`/:func:`link_anonymous`: Linux
  ``O_TMPFILE`` plus ``linkat`` through ``/proc/self/fd``; ``None``/``False`` where the
  OS or the filesystem (FAT, FUSE, tmpfs on old kernels) has them not, and the caller
  falls back to named temporary files.
* **folder fsync** — :func:`fsync_dir`: POSIX makes a new directory entry durable by
  fsyncing the folder; Windows cannot open a folder as a file and NTFS journals its
  metadata, so there it is skipped, as on filesystems that refuse it (EINVAL).
* **private files** — :func:`private_file_problem`: with POSIX owners (``os.getuid``)
  a secret file must have no group/other mode bits; without them (Windows) mode bits
  say nothing, so the file must lie inside the user's own profile folder, whose
  default ACL admits only the user, SYSTEM and Administrators. :func:`make_private_dir`
  sets 0700 where modes exist and skips filesystems that keep no modes (FAT).
* **locks** — :func:`exclusive_lock` locks a separate lock file (never the data file:
  Windows locks are mandatory and would block readers), with ``fcntl.flock`` where it
  exists (stdlib, no import cost) and the ``filelock`` package elsewhere (Windows'
  ``LockFileEx``; a lock file created with ``O_EXCL`` where the OS offers no lock).
  :func:`try_lock` tells a live writer's file from a dead one's (``None``: cannot say).
* **prompts** — :func:`can_prompt`: getpass reads ``/dev/tty`` on POSIX and the
  console (``msvcrt``) on Windows; asking needs that, not a terminal on stdin.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess

try:  # POSIX
    import fcntl as _fcntl
except ImportError:  # Windows, or a test that removed it
    _fcntl = None  # type: ignore[assignment]

NOFOLLOW: int = getattr(os, "O_NOFOLLOW", 0)
BINARY: int = getattr(os, "O_BINARY", 0)
CLOEXEC: int = getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOINHERIT", 0)
_TMPFILE: int = getattr(os, "O_TMPFILE", 0)

#: errors meaning "this filesystem or OS cannot do that", as opposed to a real failure
_UNSUPPORTED = frozenset(
    e for e in (errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.ENOSYS, errno.EISDIR,
                getattr(errno, "ENOTTY", None)) if e is not None
)
#: os.link on FAT, FUSE or a Windows FAT stick
_NO_LINKS = _UNSUPPORTED | {errno.EPERM, errno.EXDEV, errno.EMLINK}

LOCK_WAIT_SECONDS = 60.0


def has_posix_owners() -> bool:
    """Files have a POSIX owner and mode bits that the OS enforces."""
    return hasattr(os, "getuid")


# -- anonymous temporary files ---------------------------------------------------


def open_anonymous(folder: Path, mode: int) -> int | None:
    """A write-only file in ``folder`` with no name yet, or None where there is none."""
    if not _TMPFILE or not hasattr(os, "link") or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        return os.open(folder, _TMPFILE | os.O_WRONLY | CLOEXEC, mode)
    except IsADirectoryError:  # kernels without O_TMPFILE see only O_DIRECTORY
        return None
    except OSError as exc:
        if exc.errno in _UNSUPPORTED:
            return None
        raise


def link_anonymous(fd: int, path: Path) -> None:
    """Give the anonymous file ``fd`` the name ``path``; FileExistsError if taken."""
    # A src_dir_fd makes CPython call linkat (with AT_SYMLINK_FOLLOW): plain link(2)
    # would try to link the /proc symlink itself and fail with EXDEV.
    fds = os.open("/proc/self/fd", os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | CLOEXEC)
    try:
        os.link(str(fd), path, src_dir_fd=fds, follow_symlinks=True)
    finally:
        os.close(fds)


def is_link_unsupported(exc: OSError) -> bool:
    """``os.link`` failed because the filesystem keeps no hard links (FAT)."""
    return exc.errno in _NO_LINKS


# -- durability and permissions --------------------------------------------------


def fsync_dir(path: Path) -> None:
    """Make new or renamed entries of ``path`` durable, where the OS lets a folder be synced."""
    try:
        fd = os.open(path, os.O_RDONLY | CLOEXEC)
    except (PermissionError, IsADirectoryError):
        return  # Windows: a folder cannot be opened as a file
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _UNSUPPORTED:
            raise
    finally:
        os.close(fd)


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) if needed; mode 0700 where the filesystem keeps modes."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not has_posix_owners():
        return  # Windows: the profile's ACL protects it; chmod only sets read-only
    try:
        os.chmod(path, 0o700)
    except OSError as exc:
        # FAT keeps no modes (fusefat: ENOSYS; vfat: EPERM on a folder we own).
        if exc.errno in _UNSUPPORTED or (exc.errno == errno.EPERM and path.stat().st_uid == os.getuid()):
            return
        raise


def private_file_problem(path: Path) -> str | None:
    """Why ``path`` is not a private file, or None. (Raises OSError if it cannot be read.)"""
    from sandi.i18n import _

    st = path.stat()
    if has_posix_owners():
        if stat.S_IMODE(st.st_mode) & 0o077:
            return _("{path} is readable by others (mode {s_imode:o})").format(
                path=path, s_imode=stat.S_IMODE(st.st_mode))
        return None
    home = Path.home().resolve()
    try:
        path.resolve().relative_to(home)
    except ValueError:
        return _("{path} lies outside your profile folder {home}, where others may read it").format(
            path=path, home=home)
    return None


def private_file_hint(path: Path) -> str:
    from sandi.i18n import _

    if has_posix_owners():
        return _("chmod 600 {path}").format(path=path)
    return _("move it into your profile folder (for example Documents)")


# -- locks -----------------------------------------------------------------------


@contextlib.contextmanager
def exclusive_lock(
    lock_path: Path, *, failure: Callable[[OSError], Exception] | None = None
) -> Iterator[None]:
    """Hold an exclusive lock on the lock file ``lock_path`` (created 0600 if missing).

    Taking the lock raises OSError (TimeoutError after :data:`LOCK_WAIT_SECONDS` on the
    lock-file fallback, where a crashed holder leaves the file behind), or, with
    ``failure``, the error ``failure`` makes of it; errors of the locked block pass through
    unchanged either way.
    """
    try:
        release = _acquire(lock_path)
    except OSError as exc:
        if failure is None:
            raise
        raise failure(exc) from None
    try:
        yield
    finally:
        release()


def _acquire(lock_path: Path) -> Callable[[], None]:
    """Take the lock; returns what releases it."""
    if _fcntl is not None:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | NOFOLLOW | CLOEXEC, 0o600)
        try:
            _fcntl.flock(fd, _fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        return lambda: os.close(fd)  # closing releases the lock
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "only soft file lock is available": we know
        import filelock

    if sys.platform != "win32":
        # No fcntl and no Windows: filelock's soft lock, where the file's existence is
        # the lock. Not the name an flock-holder leaves behind, so the two never mix.
        lock_path = lock_path.with_name(lock_path.name + ".soft")
    lock = filelock.FileLock(str(lock_path), timeout=LOCK_WAIT_SECONDS, mode=0o600)
    try:
        lock.acquire()
    except filelock.Timeout as exc:
        raise TimeoutError(errno.ETIMEDOUT, "lock held too long", str(lock_path)) from exc
    return lock.release


def try_lock(fd: int) -> bool | None:
    """Lock the open file ``fd`` without waiting: True if taken (held until closed),
    False if another process holds it, None where this OS cannot tell."""
    if _fcntl is not None:
        try:
            _fcntl.flock(fd, _fcntl.LOCK_EX | _fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        except OSError as exc:
            if exc.errno in _UNSUPPORTED:
                return None
            raise
    if sys.platform != "win32":
        return None  # no fcntl and no Windows: nothing to lock with
    try:
        import filelock

        return filelock.lock_descriptor(fd, blocking=False)
    except OSError:
        return None


# -- the terminal ----------------------------------------------------------------


def can_prompt() -> bool:
    """A person can be asked for a hidden answer on this terminal."""
    if not sys.stderr.isatty():
        return False
    if os.name != "posix":
        return True  # Windows: getpass reads the console itself (msvcrt), whatever stdin is
    try:
        with open("/dev/tty", "rb"):
            return True
    except OSError:
        return False


# -- the key agent's transport ---------------------------------------------------

#: a Unix socket path is at most 107 bytes on Linux (sun_path), 103 on the BSDs
MAX_SOCKET_PATH = 100


def agent_unsupported_reason() -> str | None:
    """Why this OS cannot run the key agent safely, or None if it can.

    The agent needs a Unix domain socket in a folder only the user can enter, which is
    what POSIX owners and ``AF_UNIX`` give. Windows has neither in CPython (its named
    pipes would need a DACL that ``multiprocessing`` does not set), so it gets no agent
    (ADR 0018: the keyring key store is its fast path)."""
    import socket

    from sandi.i18n import _

    if not hasattr(socket, "AF_UNIX") or not has_posix_owners():
        return _("this system has no private local sockets for a key agent")
    return None


def agent_runtime_dir(*, create: bool = True) -> Path:
    """The user's private folder for the agent's socket and token, created 0700 (unless
    ``create`` is false: then it may not exist, and FileNotFoundError says so).

    ``$XDG_RUNTIME_DIR/sandi`` where the session has one (a tmpfs only the user enters,
    emptied at logout), else ``<temp>/sandi-<uid>``. Raises PermissionError naming the
    path when the folder exists but is not the user's own private, real folder (another
    user could have planted it in the shared temporary folder)."""
    import tempfile

    runtime = os.environ.get("XDG_RUNTIME_DIR")
    uid = os.getuid()
    if runtime and os.path.isabs(runtime):
        folder = Path(runtime) / "sandi"
    else:
        folder = Path(tempfile.gettempdir()) / f"sandi-{uid}"
    if create:
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)
    check_private_runtime_dir(folder)
    return folder


def check_private_runtime_dir(folder: Path) -> None:
    """Raise PermissionError unless ``folder`` is a real folder of this user, mode 0700."""
    st = os.lstat(folder)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or stat.S_IMODE(st.st_mode) & 0o077:
        raise PermissionError(errno.EPERM, "not a private folder of this user", str(folder))


def check_own_socket(path: Path) -> None:
    """Raise PermissionError unless ``path`` is a socket owned by this user (FileNotFoundError
    if there is none)."""
    st = os.lstat(path)
    if not stat.S_ISSOCK(st.st_mode) or st.st_uid != os.getuid():
        raise PermissionError(errno.EPERM, "not a socket of this user", str(path))


def peer_credentials(sock: object) -> tuple[int, int] | None:
    """(pid, uid) of the process at the other end of the Unix socket ``sock``, where the OS
    tells (Linux ``SO_PEERCRED``); None elsewhere."""
    import socket
    import struct

    option = getattr(socket, "SO_PEERCRED", None)
    if option is None or not isinstance(sock, socket.socket):
        return None
    raw = sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    pid, uid, _gid = struct.unpack("3i", raw)
    return pid, uid


def own_uid() -> int:
    return os.getuid()


def harden_secret_process() -> None:
    """Keep this process's memory out of core dumps and away from other processes of the
    same user where the OS allows (Linux ``PR_SET_DUMPABLE`` 0 also stops ptrace and
    ``/proc/PID/mem`` reads): the key agent holds unlocked keys."""
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            pr_set_dumpable = 4
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_dumpable, 0, 0, 0, 0)


def spawn_detached(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    """Start ``argv`` as a background process that outlives this one and its terminal
    (a new session), with pipes on stdin and stdout; returns the ``subprocess.Popen``."""
    import subprocess

    return subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env=env, cwd=cwd, close_fds=True, start_new_session=True,
    )
