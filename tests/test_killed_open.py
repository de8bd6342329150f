"""A ``kill -9`` during ``open`` leaves no plaintext behind (issue 13, item 6).

Before: the document was written to ``.NAME.<random>.part`` (0600) in the output
folder as it was decrypted, before the signature was checked; a kill left it there
for good. Now, on Linux filesystems with ``O_TMPFILE``, the data has no name until
it verified, so the kernel frees it; on FAT (no ``O_TMPFILE``) the part file and its
placeholder are left, and the next write into that folder removes them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sandi.fsutil import STALE_PART
from tests import authority_fixtures as fx
from tests.authority_fixtures import AuthorityHome
from tests.fat_fixtures import fat_stick  # noqa: F401

authority_template = fx.authority_template
authority = fx.authority

SIZE = 48 * 1024 * 1024
CLI = "import sys; from sandi_cli.main import main; main(sys.argv[1:])"


def _sealed(authority: AuthorityHome, folder: Path) -> Path:
    doc = folder / "laporan.bin"
    with open(doc, "wb") as f:
        block = os.urandom(1024 * 1024)
        for _ in range(SIZE // len(block)):
            f.write(block)
    r = authority.run("seal", doc, "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "B")
    assert r.code == 0, r
    doc.unlink()
    return folder / "laporan.bin.sandi"


def _kill_open_mid_write(authority: AuthorityHome, sealed: Path, out: Path) -> None:
    """Start ``sandi open`` and kill -9 it once it holds a file in ``out`` open for writing."""
    env = {**os.environ, **{k: v for k, v in fx.ENV.items() if v is not None}}
    child = subprocess.Popen([sys.executable, "-c", CLI, "--home", str(authority.path), "open", str(sealed),
                              "--as", "BAPPEDA", "--output-dir", str(out)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if child.poll() is not None:
                pytest.fail("open finished before it could be killed: make the document larger")
            if _writes_into(child.pid, out):
                time.sleep(0.05)  # some data written
                break
            time.sleep(0.002)
        else:
            pytest.fail("open never wrote into the output folder")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()


def _writes_into(pid: int, folder: Path) -> bool:
    fds = Path(f"/proc/{pid}/fd")
    try:
        targets = [os.readlink(fds / fd) for fd in os.listdir(fds)]
    except OSError:
        return False
    return any(t.startswith(str(folder) + "/") for t in targets)


def test_a_killed_open_leaves_nothing_on_a_linux_filesystem(authority: AuthorityHome, tmp_path: Path) -> None:
    sealed = _sealed(authority, tmp_path)
    out = tmp_path / "masuk"
    out.mkdir()
    _kill_open_mid_write(authority, sealed, out)
    assert os.listdir(out) == []


def test_a_killed_open_on_fat_is_tidied_by_the_next_one(authority: AuthorityHome, tmp_path: Path,
                                                         fat_stick: Path) -> None:
    sealed = _sealed(authority, tmp_path)
    out = fat_stick / "masuk"
    out.mkdir()
    _kill_open_mid_write(authority, sealed, out)
    left = sorted(os.listdir(out))
    assert [n for n in left if STALE_PART.match(n)] != []  # FAT has no anonymous files
    r = authority.run("open", sealed, "--as", "BAPPEDA", "--output-dir", out)
    assert r.code == 0, r
    assert os.listdir(out) == ["laporan.bin"]
    assert (out / "laporan.bin").stat().st_size == SIZE
