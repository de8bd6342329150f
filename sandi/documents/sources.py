"""Streams or paths: the small adapters the document workflows share."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from sandi.errors import NotFoundError, UsageError

StreamOrPath = BinaryIO | str | os.PathLike[str]


def open_input(src: StreamOrPath) -> tuple[BinaryIO, str | None, int | None, bool]:
    """(stream, file name, size if known, whether we opened it and must close it)."""
    if isinstance(src, str | os.PathLike):
        path = Path(src)
        try:
            stream = path.open("rb")
        except FileNotFoundError:
            raise NotFoundError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise UsageError(f"{path} is a folder, not a file") from None
        except PermissionError:
            raise UsageError(f"{path}: permission denied") from None
        return stream, path.name, os.fstat(stream.fileno()).st_size, True
    size: int | None = None
    try:
        st = os.fstat(src.fileno())
        if stat.S_ISREG(st.st_mode):
            size = st.st_size - src.tell()
    except (OSError, ValueError, AttributeError):
        size = None
    name = getattr(src, "name", None)
    return src, Path(name).name if isinstance(name, str) else None, size, False


def read_exactly(
    src: BinaryIO, size: int, sinks: Sequence[Callable[[memoryview], object]], *, chunk: int = 1024 * 1024
) -> None:
    """Feed exactly ``size`` bytes of ``src`` to every sink; fail if the input changes size."""
    remaining = size
    buf = bytearray(min(chunk, max(size, 1)))
    view = memoryview(buf)
    while remaining:
        n = src.readinto(view[: min(len(buf), remaining)])  # type: ignore[attr-defined]
        if not n:
            raise UsageError("the input became shorter while it was read",
                             hint="do not change a file while sealing it")
        for sink in sinks:
            sink(view[:n])
        remaining -= n
    if src.read(1):
        raise UsageError("the input grew while it was read", hint="do not change a file while sealing it")
