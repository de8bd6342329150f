"""Streams or paths: the small adapters the document workflows share.

Hashing beside the cipher: BLAKE2b (hashlib) releases the GIL on large buffers, as does
file I/O, so for large documents ``read_exactly`` and :class:`BackgroundSink` run the
hash on one worker thread while the calling thread encrypts or decrypts. The worker
takes chunks strictly in order (one thread, FIFO), so the digest is the digest of the
stream; a buffer handed to it is not reused before the worker is done with it, and at
most a few chunks are in flight, so memory stays constant.
"""

from __future__ import annotations

import io
import os
import stat
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Protocol

from sandi.errors import NotFoundError, UsageError
from sandi.i18n import _

StreamOrPath = BinaryIO | str | os.PathLike[str]

# Below this size a worker thread costs more than it saves.
BACKGROUND_MIN_SIZE = 8 * 1024 * 1024
_IN_FLIGHT = 2  # chunks queued for the worker at most


class BackgroundSink:
    """Feeds chunks to ``sink`` on a worker thread, in order, with at most ``depth`` in flight.

    Use as a context manager; :meth:`close` (or leaving the block normally) waits for
    every chunk and re-raises the worker's error, if any. Leaving by an exception waits
    for the chunks in flight too (they may refer to the caller's buffers), then lets the
    exception through.
    """

    def __init__(self, sink: Callable[[memoryview], object], depth: int = _IN_FLIGHT) -> None:
        self._sink = sink
        self._depth = depth
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandi-hash")
        self._pending: deque[Future[object]] = deque()

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def wait_below(self, limit: int) -> None:
        """Block until fewer than ``limit`` chunks are in flight."""
        while len(self._pending) >= max(limit, 1):
            self._pending.popleft().result()

    def submit(self, chunk: memoryview) -> None:
        """Queue ``chunk``; it must stay unchanged until the worker is done with it."""
        self.wait_below(self._depth)
        self._pending.append(self._pool.submit(self._sink, chunk))

    def close(self) -> None:
        try:
            self.wait_below(1)
        finally:
            self._pending.clear()
            self._pool.shutdown(wait=True)

    def __enter__(self) -> BackgroundSink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
            return
        for future in self._pending:  # the caller's error wins; only stop touching its buffers
            future.exception()
        self._pending.clear()
        self._pool.shutdown(wait=True)


def open_input(src: StreamOrPath) -> tuple[BinaryIO, str | None, int | None, bool]:
    """(stream, file name, size if known, whether we opened it and must close it)."""
    if isinstance(src, str | os.PathLike):
        path = Path(src)
        try:
            stream = path.open("rb")
        except FileNotFoundError:
            raise NotFoundError(_("{path}: no such file").format(path=path)) from None
        except IsADirectoryError:
            raise UsageError(_("{path} is a folder, not a file").format(path=path)) from None
        except PermissionError:
            raise UsageError(_("{path}: permission denied").format(path=path)) from None
        return stream, path.name, os.fstat(stream.fileno()).st_size, True
    size: int | None = None
    try:
        st = os.fstat(src.fileno())
        if stat.S_ISREG(st.st_mode):
            size = st.st_size - src.tell()
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        size = None
    if size is None:
        size = _seekable_remaining(src)
    name = getattr(src, "name", None)
    return src, Path(name).name if isinstance(name, str) else None, size, False


def _seekable_remaining(src: BinaryIO) -> int | None:
    """What is left to read of a seekable stream (a ``BytesIO``), without reading it."""
    try:
        if not src.seekable():
            return None
        here = src.tell()
        end = src.seek(0, os.SEEK_END)
        src.seek(here)
    except (OSError, ValueError, AttributeError):
        return None
    return end - here


def read_exactly(
    src: BinaryIO,
    size: int,
    sinks: Sequence[Callable[[memoryview], object]],
    *,
    background: Callable[[memoryview], object] | None = None,
    chunk: int = 1024 * 1024,
) -> None:
    """Feed exactly ``size`` bytes of ``src`` to every sink; fail if the input changes size.

    ``background`` (a hash update) gets the same bytes, in order: on a worker thread when
    the input is large (see the module docstring), else inline like the other sinks.
    """
    if pump(src, sinks, background=background, size_hint=size, limit=size, chunk=chunk) != size:  # type: ignore[arg-type]
        raise UsageError(_("the input became shorter while it was read"),
                         hint=_("do not change a file while sealing it"))
    if src.read(1):
        raise UsageError(
            _("the input grew while it was read"), hint=_("do not change a file while sealing it")
        )


class Readable(Protocol):
    def readinto(self, buffer: memoryview, /) -> int | None: ...


def pump(
    src: Readable,
    sinks: Sequence[Callable[[memoryview], object]],
    *,
    background: Callable[[memoryview], object] | None = None,
    size_hint: int,
    limit: int | None = None,
    chunk: int = 1024 * 1024,
) -> int:
    """Feed ``src`` (to its end, or ``limit`` bytes) to the sinks; return the bytes fed.

    Sinks get a view of a reused buffer: they must consume it before returning.
    """
    if background is not None and size_hint < BACKGROUND_MIN_SIZE:
        sinks, background = [background, *sinks], None
    if background is None:
        return _pump(src, sinks, None, [bytearray(min(chunk, max(size_hint, 1)))], limit)
    # One buffer more than can be in flight: the one being read never is.
    buffers = [bytearray(chunk) for _ in range(_IN_FLIGHT + 1)]
    with BackgroundSink(background) as worker:
        return _pump(src, sinks, worker, buffers, limit)


def _pump(
    src: Readable,
    sinks: Sequence[Callable[[memoryview], object]],
    worker: BackgroundSink | None,
    buffers: list[bytearray],
    limit: int | None,
) -> int:
    done = 0
    views = [memoryview(b) for b in buffers]
    turn = 0
    while limit is None or done < limit:
        view = views[turn % len(views)]
        turn += 1
        if worker is not None:
            # This buffer was handed out len(views) turns ago: make sure the worker is done with it.
            worker.wait_below(len(views))
        want = len(view) if limit is None else min(len(view), limit - done)
        n = src.readinto(view[:want])
        if not n:
            break
        if worker is not None:
            worker.submit(view[:n])
        for sink in sinks:
            sink(view[:n])
        done += n
    return done


ProgressCallback = Callable[[int, int], None]


class ProgressSink:
    """Counts the bytes that pass and reports (done, total) to ``callback``, at most once
    per percent, so a progress bar costs nothing measurable on a large document."""

    def __init__(self, total: int, callback: ProgressCallback) -> None:
        self._total = total
        self._callback = callback
        self._done = 0
        self._next = 0
        self._step = max(total // 100, 1)
        callback(0, total)

    def __call__(self, chunk: memoryview) -> None:
        self._done += len(chunk)
        if self._done >= self._next or self._done >= self._total:
            self._next = self._done + self._step
            self._callback(self._done, self._total)
