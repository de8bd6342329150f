"""A real FAT filesystem for tests: a ``mkfs.vfat`` image mounted with ``fusefat``.

FAT is what agency USB sticks carry: no hard links, no modes, no ``O_TMPFILE``.
The image is made fresh for each test and unmounted after it (``fusermount -u``).
The fixture skips, saying why, only where FUSE cannot work (no ``/dev/fuse``, as in
some containers) or the tools are missing (``scripts/install-tools.sh`` installs
``dosfstools`` and ``fusefat``).

    from tests.fat_fixtures import fat_stick  # noqa: F401
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def fat_unavailable() -> str | None:
    """Why no FAT filesystem can be mounted here, or None."""
    for tool in ("mkfs.vfat", "fusefat", "fusermount"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (run scripts/install-tools.sh)"
    if not os.path.exists("/dev/fuse"):
        return "FUSE is impossible here: there is no /dev/fuse"
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return "FUSE is impossible here: /dev/fuse is not usable by this user"
    return None


def mount_fat(image: Path, mountpoint: Path, size_kib: int = 65536) -> None:
    subprocess.run(["mkfs.vfat", "-C", str(image), str(size_kib)], check=True, capture_output=True)
    mountpoint.mkdir()
    subprocess.run(["fusefat", "-o", "rw+", str(image), str(mountpoint)], check=True, capture_output=True)
    for _ in range(100):
        if os.path.ismount(mountpoint):
            return
        time.sleep(0.05)
    raise RuntimeError(f"fusefat did not mount {mountpoint}")


def unmount(mountpoint: Path) -> None:
    for _ in range(50):
        if not os.path.ismount(mountpoint):
            return
        if subprocess.run(["fusermount", "-u", str(mountpoint)], capture_output=True).returncode == 0:
            return
        time.sleep(0.1)  # still busy: a child being killed may hold a file open
    subprocess.run(["fusermount", "-u", "-z", str(mountpoint)], capture_output=True)


@pytest.fixture
def fat_stick(tmp_path: Path) -> Iterator[Path]:
    """The root folder of a freshly formatted, mounted FAT16 stick (64 MiB)."""
    reason = fat_unavailable()
    if reason is not None:
        pytest.skip(reason)
    mountpoint = tmp_path / "stick"
    mount_fat(tmp_path / "stick.img", mountpoint)
    try:
        yield mountpoint
    finally:
        unmount(mountpoint)
