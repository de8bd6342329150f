"""Files on a real FAT USB stick (fusefat): no hard links, no modes, no O_TMPFILE.

sandi.fsutil must keep its two rules there by other means than os.link: never replace
an existing file without --force, never leave a half-written file (see its docstring).
Before this, every command writing a new file to FAT ended in an internal error.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sandi.errors import AlreadyExistsError
from sandi.fsutil import STALE_PART, AtomicOutput, atomic_write, write_new_secret
from sandi.home import Home
from tests import authority_fixtures as fx
from tests.authority_fixtures import AuthorityHome
from tests.conftest import invoke
from tests.fat_fixtures import fat_stick  # noqa: F401

authority_template = fx.authority_template
authority = fx.authority


def _leftovers(folder: Path) -> list[str]:
    return sorted(n for n in os.listdir(folder) if STALE_PART.match(n))


def test_the_stick_has_no_hard_links(fat_stick: Path) -> None:
    # What made every write fail: the premise of this module.
    (fat_stick / "a").write_bytes(b"x")
    with pytest.raises(PermissionError):
        os.link(fat_stick / "a", fat_stick / "b")


def test_new_file_no_overwrite_and_force_on_fat(fat_stick: Path) -> None:
    target = fat_stick / "surat.txt"
    atomic_write(target, b"first", overwrite=False)
    assert target.read_bytes() == b"first"
    with pytest.raises(AlreadyExistsError):
        atomic_write(target, b"second", overwrite=False)
    assert target.read_bytes() == b"first"
    atomic_write(target, b"third", overwrite=True)
    assert target.read_bytes() == b"third"
    write_new_secret(fat_stick / "kunci.age", b"secret")
    with pytest.raises(AlreadyExistsError):
        write_new_secret(fat_stick / "kunci.age", b"other")
    assert (fat_stick / "kunci.age").read_bytes() == b"secret"
    assert sorted(os.listdir(fat_stick)) == ["kunci.age", "surat.txt"]


def test_the_name_is_reserved_while_writing_and_freed_on_discard(fat_stick: Path) -> None:
    target = fat_stick / "laporan.pdf"
    with AtomicOutput(target, mode=0o600) as out:
        out.file.write(b"half of it")
        # A concurrent writer cannot take the name, even though nothing is committed.
        with pytest.raises(AlreadyExistsError):
            AtomicOutput(target)
        assert b"half of it" not in target.read_bytes()  # a placeholder, not the data
    # Left without commit: nothing at all remains.
    assert os.listdir(fat_stick) == []


def test_a_placeholder_replaced_by_someone_else_is_not_clobbered(fat_stick: Path) -> None:
    target = fat_stick / "laporan.pdf"
    out = AtomicOutput(target)
    out.file.write(b"mine")
    target.unlink()
    target.write_bytes(b"theirs")  # a person or a --force writer got there first
    with pytest.raises(AlreadyExistsError):
        out.commit()
    out.discard()
    assert target.read_bytes() == b"theirs"
    assert os.listdir(fat_stick) == ["laporan.pdf"]


_WRITER = """
import sys, time
from pathlib import Path
from sandi.fsutil import AtomicOutput
out = AtomicOutput(Path(sys.argv[1]), mode=0o600)
out.file.write(b"unverified plaintext " * 4096)
out.file.flush()
print("ready", flush=True)
time.sleep(60)
"""


def _writer(target: Path) -> subprocess.Popen[str]:
    child = subprocess.Popen([sys.executable, "-c", _WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline() == "ready\n"
    return child


def test_a_killed_writer_leaves_parts_that_the_next_write_removes(fat_stick: Path) -> None:
    dead = _writer(fat_stick / "dibuka.txt")
    dead.send_signal(signal.SIGKILL)
    dead.wait()
    left = _leftovers(fat_stick)
    assert len(left) == 1 and left[0].startswith(".dibuka.txt.")  # what a kill -9 leaves here
    assert (fat_stick / "dibuka.txt").exists()  # and its placeholder

    alive = _writer(fat_stick / "masih-ditulis.txt")
    try:
        atomic_write(fat_stick / "lain.txt", b"next run", overwrite=False)
        # The dead writer's part and placeholder are gone; the live writer's stay.
        assert sorted(os.listdir(fat_stick)) == sorted(
            ["lain.txt", "masih-ditulis.txt", *[n for n in _leftovers(fat_stick)]])
        assert [n for n in _leftovers(fat_stick) if n.startswith(".dibuka")] == []
        assert len(_leftovers(fat_stick)) == 1
    finally:
        alive.kill()
        alive.wait()


def test_documents_directory_and_request_travel_on_a_fat_stick(
    fat_stick: Path, authority: AuthorityHome, tmp_path: Path
) -> None:
    letter = tmp_path / "surat.pdf"
    letter.write_bytes(b"%PDF-1.4\n" + bytes(range(256)) * 300)
    sealed = fat_stick / "surat.pdf.sandi"
    r = authority.run("seal", letter, "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "R", "-o", sealed)
    assert r.code == 0, r
    again = authority.run("seal", letter, "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "R", "-o", sealed)
    assert again.code == 1 and "exists already" in again.stderr, again
    assert "internal error" not in again.stderr

    inbox = fat_stick / "masuk"
    r = authority.run("open", sealed, "--as", "BAPPEDA", "--output-dir", inbox)
    assert r.code == 0, r
    assert (inbox / "surat.pdf").read_bytes() == letter.read_bytes()
    (inbox / "surat.pdf").unlink()  # (fusefat does not truncate on O_TRUNC)
    (inbox / "surat.pdf").write_bytes(b"edited by hand")
    r = authority.run("open", sealed, "--as", "BAPPEDA", "--output-dir", inbox)
    assert r.code == 1 and "exists already" in r.stderr, r
    assert (inbox / "surat.pdf").read_bytes() == b"edited by hand"
    r = authority.run("open", sealed, "--as", "BAPPEDA", "--output-dir", inbox, "--force")
    assert r.code == 0, r
    assert (inbox / "surat.pdf").read_bytes() == letter.read_bytes()

    r = authority.run("encrypt", "-r", "BAPPEDA", "--as", "DISKOMINFO", "--class", "B", "-o",
                      fat_stick / "catatan.age", letter)
    assert r.code == 0, r

    directory = fat_stick / "directory.json"
    r = authority.run("directory", "publish", "-o", directory)
    assert r.code == 0, r
    assert json.loads(directory.read_bytes())

    authority.ok("agency", "add", "KOMINFO2", "--name", "Uji FAT")
    workstation = tmp_path / "kominfo2"
    fingerprint = Home(authority.path).load_config().root_fingerprint
    assert fingerprint
    ws_env = {**fx.ENV}
    r = invoke("--home", workstation, "init", "--agency", "KOMINFO2", "--root-fingerprint", fingerprint, env=ws_env)
    assert r.code == 0, r
    request = fat_stick / "KOMINFO2.request.json"
    r = invoke("--home", workstation, "keys", "request", "KOMINFO2", "-o", request, env=ws_env)
    assert r.code == 0, r
    r = invoke("--home", workstation, "keys", "request", "KOMINFO2", "-o", request, env=ws_env)
    assert r.code == 2 and "exists already" in r.stderr, r
    response = fat_stick / "KOMINFO2.response.json"
    r = authority.run("keys", "certify", request, "-o", response, "--yes")
    assert r.code == 0, r
    r = invoke("--home", workstation, "keys", "import-certs", response, env=ws_env)
    assert r.code == 0, r

    everything = [p for p in fat_stick.rglob("*")]
    assert [p for p in everything if STALE_PART.match(p.name)] == []
