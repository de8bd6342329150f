"""Interop with the real ``age`` command line (1.1.1 in Debian), both directions.

sandi -> ``age -d -i`` and ``age -r`` / ``age -p`` -> sandi, binary and armored, for
empty, 1-byte, 64 KiB, 64 KiB + 1 and multi-MiB inputs. age reads passphrases only
from its terminal, so the ``-p`` cases run age under a pseudo-terminal.
"""

from __future__ import annotations

import io
import os
import pty
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from sandi.formats.age import (
    CHUNK_SIZE,
    ScryptIdentity,
    ScryptRecipient,
    X25519Identity,
    decrypt,
    encrypt,
    parse_header,
    parse_identities,
)

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("age") is None or shutil.which("age-keygen") is None,
                       reason="the age command line is not installed (scripts/install-tools.sh)"),
]

SIZES = {"empty": 0, "1B": 1, "64KiB": CHUNK_SIZE, "64KiB+1": CHUNK_SIZE + 1, "3MiB+5": 3 * 1024 * 1024 + 5}


@pytest.fixture(scope="module")
def keypair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, X25519Identity]:
    key = tmp_path_factory.mktemp("age") / "key.txt"
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    [ident] = parse_identities(key.read_text())
    recipient = subprocess.run(["age-keygen", "-y", str(key)], check=True, capture_output=True, text=True)
    assert recipient.stdout.strip() == ident.recipient.to_bech32()
    return key, ident


def _data(size: int) -> bytes:
    return os.urandom(size)


@pytest.mark.parametrize("armor", [False, True], ids=["binary", "armor"])
@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_sandi_to_age(keypair: tuple[Path, X25519Identity], tmp_path: Path, size: int, armor: bool) -> None:
    key, ident = keypair
    data = _data(size)
    ct = tmp_path / "f.age"
    other = X25519Identity.generate()
    with open(ct, "wb") as f:
        encrypt(io.BytesIO(data), f, [other.recipient, ident.recipient], armor=armor)
    r = subprocess.run(["age", "-d", "-i", str(key), str(ct)], capture_output=True, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout == data


@pytest.mark.parametrize("armor", [False, True], ids=["binary", "armor"])
@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_age_to_sandi(keypair: tuple[Path, X25519Identity], tmp_path: Path, size: int, armor: bool) -> None:
    _key, ident = keypair
    data = _data(size)
    pt, ct = tmp_path / "pt", tmp_path / "f.age"
    pt.write_bytes(data)
    other = X25519Identity.generate()
    cmd = ["age", "-r", other.recipient.to_bech32(), "-r", ident.recipient.to_bech32(), "-o", str(ct)]
    subprocess.run([*cmd, *(["-a"] if armor else []), str(pt)], check=True, capture_output=True)
    out = io.BytesIO()
    with open(ct, "rb") as f:
        header = decrypt(f, out, [ident])
    assert out.getvalue() == data
    assert header.armored is armor
    # age's header re-encodes byte for byte with sandi's encoder.
    with open(ct, "rb") as f:
        assert parse_header(f).header_bytes == header.header_bytes


def test_cli_to_age_and_back(run_sandi, keypair: tuple[Path, X25519Identity], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    key, ident = keypair
    data = _data(200_000)
    pt = tmp_path / "pt"
    pt.write_bytes(data)
    r = run_sandi("encrypt", "-r", ident.recipient.to_bech32(), "--armor", "-o", tmp_path / "c.age", pt)
    assert r.code == 0, r
    age = subprocess.run(["age", "-d", "-i", str(key), str(tmp_path / "c.age")], capture_output=True, check=True)
    assert age.stdout == data
    subprocess.run(["age", "-r", ident.recipient.to_bech32(), "-o", str(tmp_path / "d.age"), str(pt)], check=True)
    r = run_sandi("decrypt", "-i", key, "-o", tmp_path / "out", tmp_path / "d.age")
    assert r.code == 0, r
    assert (tmp_path / "out").read_bytes() == data


# -- passphrases through a pseudo-terminal ------------------------------------------


def run_on_pty(argv: list[str], passphrase: str, *, timeout: float = 60.0) -> tuple[int, bytes]:
    """Run ``argv`` with a pty as its controlling terminal, answering passphrase prompts."""
    pid, fd = pty.fork()
    if pid == 0:  # child
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    transcript = b""
    answered = 0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                transcript += chunk
                # age asks "Enter passphrase..." and, when encrypting, "Confirm passphrase:".
                if transcript.lower().count(b"passphrase") > answered and transcript.rstrip().endswith(b":"):
                    os.write(fd, passphrase.encode() + b"\r")
                    answered = transcript.lower().count(b"passphrase")
        else:
            os.kill(pid, 9)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), transcript


@pytest.mark.parametrize(("size", "armor"), [(CHUNK_SIZE + 1, False), (1, True)], ids=["64KiB+1-binary", "1B-armor"])
def test_age_passphrase_to_sandi(tmp_path: Path, size: int, armor: bool) -> None:
    data = _data(size)
    pt, ct = tmp_path / "pt", tmp_path / "p.age"
    pt.write_bytes(data)
    code, transcript = run_on_pty(["age", "-p", *(["-a"] if armor else []), "-o", str(ct), str(pt)], "kata sandi")
    assert code == 0, transcript
    [stanza] = parse_header(io.BytesIO(ct.read_bytes())).stanzas
    assert stanza.type == "scrypt" and stanza.args[1] == "18"  # age's default work factor
    out = io.BytesIO()
    with open(ct, "rb") as f:
        decrypt(f, out, [ScryptIdentity(b"kata sandi")])
    assert out.getvalue() == data


def test_sandi_passphrase_to_age(tmp_path: Path) -> None:
    data = _data(CHUNK_SIZE)
    ct, out = tmp_path / "p.age", tmp_path / "out"
    with open(ct, "wb") as f:
        encrypt(io.BytesIO(data), f, [ScryptRecipient(b"kata sandi", work_factor=12)], armor=True)
    code, transcript = run_on_pty(["age", "-d", "-o", str(out), str(ct)], "kata sandi")
    assert code == 0, transcript
    assert out.read_bytes() == data


def test_sandi_protected_identity_file_opens_in_age(keypair: tuple[Path, X25519Identity], tmp_path: Path) -> None:
    key, ident = keypair
    key_age = tmp_path / "key.age"
    with open(key_age, "wb") as f, open(key, "rb") as src:
        encrypt(src, f, [ScryptRecipient(b"kunci", work_factor=12)], armor=True)
    ct, out = tmp_path / "c.age", tmp_path / "out"
    with open(ct, "wb") as f:
        encrypt(io.BytesIO(b"isi surat"), f, [ident.recipient])
    code, transcript = run_on_pty(["age", "-d", "-i", str(key_age), "-o", str(out), str(ct)], "kunci")
    assert code == 0, transcript
    assert out.read_bytes() == b"isi surat"
