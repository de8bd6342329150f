"""At the desk (issue 14): pipes, long names, interrupts, one overwrite rule, colour,
two secrets kept apart, and partial success that a script can see.

Pipes and interrupts run the real ``sandi`` in a subprocess: standard input and output
are real pipes, and SIGINT is a real signal.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_workstations_flow import ENV, LETTER, Province, build_province

SANDI = [sys.executable, "-c", "import sys; from sandi_cli.main import main; main(sys.argv[1:])"]


@pytest.fixture(scope="module")
def p(tmp_path_factory: pytest.TempPathFactory) -> Province:
    return build_province(tmp_path_factory.mktemp("desk"))


def run(home: Path, *args: str | Path, data: bytes = b"", cwd: Path | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    full = {k: v for k, v in os.environ.items() if k not in ("SANDI_HOME", "NO_COLOR")}
    full.update({k: v for k, v in ENV.items() if v is not None})
    full.update(env or {})
    return subprocess.run([*SANDI, "--home", str(home), *map(str, args)], input=data, capture_output=True,
                          cwd=cwd, env=full, timeout=120)


def files_named_dash(folder: Path) -> list[Path]:
    return [f for f in folder.rglob("-")]


def test_seal_and_open_through_pipes(p: Province, tmp_path: Path) -> None:
    sealed = run(p.diskominfo.home, "seal", "-", "--name", "surat.pdf", "--to", "BAPPEDA", "--class", "R",
                 "-o", "-", data=LETTER, cwd=tmp_path)
    assert sealed.returncode == 0, sealed.stderr
    assert sealed.stdout.startswith(b"age-encryption.org/v1\n")
    opened = run(p.bappeda.home, "open", "-", "-o", "-", data=sealed.stdout, cwd=tmp_path)
    assert opened.returncode == 0, opened.stderr
    assert opened.stdout == LETTER
    assert b"surat.pdf" in opened.stderr  # the summary goes to standard error
    assert files_named_dash(tmp_path) == []


def test_open_to_stdout_releases_nothing_when_a_check_fails(p: Province, tmp_path: Path) -> None:
    sealed = run(p.diskominfo.home, "seal", "-", "--name", "surat.pdf", "--to", "BAPPEDA", "--class", "R",
                 "-o", "-", data=LETTER, cwd=tmp_path).stdout
    tampered = bytearray(sealed)
    tampered[-200] ^= 1  # inside the last payload chunk: noticed only at the very end
    opened = run(p.bappeda.home, "open", "-", "-o", "-", data=bytes(tampered), cwd=tmp_path)
    assert opened.returncode == 4
    assert opened.stdout == b""  # not one byte of unauthenticated plaintext
    assert files_named_dash(tmp_path) == []


def test_seal_from_stdin_needs_a_name(p: Province, tmp_path: Path) -> None:
    r = run(p.diskominfo.home, "seal", "-", "--to", "BAPPEDA", "--class", "R", data=b"x", cwd=tmp_path)
    assert r.returncode == 2 and b"--name" in r.stderr
    assert files_named_dash(tmp_path) == []


def test_sign_and_verify_through_pipes(p: Province, tmp_path: Path) -> None:
    text = b"Pengumuman: rapat ditunda.\n"
    signed = run(p.diskominfo.home, "sign", "-", "--name", "pengumuman.txt", "-o", "-", data=text,
                 cwd=tmp_path)
    assert signed.returncode == 0, signed.stderr
    assert signed.stdout.startswith(b"untrusted comment:")
    sig = tmp_path / "pengumuman.txt.minisig"
    sig.write_bytes(signed.stdout)
    verified = run(p.bappeda.home, "verify", "-", "--sig", sig, data=text, cwd=tmp_path)
    assert verified.returncode == 0, verified.stderr
    bad = run(p.bappeda.home, "verify", "-", "--sig", sig, data=text + b"!", cwd=tmp_path)
    assert bad.returncode == 4
    no_output = run(p.diskominfo.home, "sign", "-", data=text, cwd=tmp_path)
    assert no_output.returncode == 2 and b"-o" in no_output.stderr
    assert files_named_dash(tmp_path) == []


def test_a_200_byte_name_survives_seal_open_and_gnu_tar(p: Province, tmp_path: Path) -> None:
    name = "Surat Edaran " + "Ö" * 90 + "x.pdf"
    assert len(name.encode()) == 198
    doc = p.diskominfo.folder / name
    doc.write_bytes(LETTER)
    p.diskominfo.ok("seal", doc, "--to", "BAPPEDA", "--class", "R")
    sealed = p.bappeda.receive(doc.with_name(name + ".sandi"))
    out = tmp_path / "masuk"
    out.mkdir()
    p.bappeda.ok("open", sealed, "--output-dir", out)
    assert (out / name).read_bytes() == LETTER
    # The plaintext tar (age-decrypted with the agency's key) extracts with GNU tar and bsdtar.
    plain = run(p.bappeda.home, "decrypt", sealed)
    assert plain.returncode == 0, plain.stderr
    for tool in ("tar", "bsdtar"):
        extracted = tmp_path / tool
        extracted.mkdir()
        subprocess.run([tool, "-x", "-f", "-", "-C", str(extracted)], input=plain.stdout, check=True)
        assert sorted(f.name for f in extracted.iterdir()) == [name, name + ".minisig"]
        assert (extracted / name).read_bytes() == LETTER


def test_names_too_long_are_refused_never_cut(p: Province, tmp_path: Path) -> None:
    name = "N" * 250 + ".pdf"
    r = run(p.diskominfo.home, "seal", "-", "--name", name, "--to", "BAPPEDA", "--class", "R",
            "-o", tmp_path / "x.sandi", data=b"x")
    assert r.returncode == 2, r.stderr
    assert b"bytes" in r.stderr and b"--name" in r.stderr
    assert not (tmp_path / "x.sandi").exists()


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="watches /proc to interrupt mid-write")
def test_sigint_during_a_large_seal_exits_130_and_leaves_nothing(p: Province, tmp_path: Path) -> None:
    big = tmp_path / "besar.bin"
    with big.open("wb") as f:
        f.truncate(256 * 1024 * 1024)
    out = tmp_path / "besar.bin.sandi"
    full = {k: v for k, v in os.environ.items() if k != "SANDI_HOME"}
    full.update({k: v for k, v in ENV.items() if v is not None})
    proc = subprocess.Popen([*SANDI, "--home", str(p.diskominfo.home), "seal", str(big), "--to", "BAPPEDA",
                             "--class", "R", "-o", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=full)
    # Interrupt once it is writing its output (an anonymous file in the output folder).
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _writes_into(proc.pid, tmp_path):
        time.sleep(0.01)
    assert proc.poll() is None, "the seal finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert b"interrupted" in err
    assert sorted(f.name for f in tmp_path.iterdir()) == ["besar.bin"]  # no output, no .part


def _writes_into(pid: int, folder: Path) -> bool:
    try:
        targets = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    except OSError:
        return False
    return any(t.startswith(str(folder)) and not t.endswith("besar.bin") for t in targets)


def test_one_overwrite_rule_for_every_output(p: Province, tmp_path: Path) -> None:
    for args in (["directory", "publish", "-o"], ["crl", "-o"]):
        target = tmp_path / ("-".join(args[:-1]) + ".out")
        target.write_text("keep me")
        refused = run(p.authority.home, *args, target)
        assert refused.returncode in (1, 2), (args, refused.stderr)
        assert b"exists" in refused.stderr
        assert target.read_text() == "keep me"
        forced = run(p.authority.home, *args, target, "--force")
        assert forced.returncode == 0, (args, forced.stderr)
        assert target.read_text() != "keep me"
    graph = tmp_path / "pola.dot"
    graph.write_text("keep me")
    refused = run(p.authority.home, "policy", "graph", "-o", graph)
    assert refused.returncode == 1 and graph.read_text() == "keep me"
    assert run(p.authority.home, "policy", "graph", "-o", graph, "--force").returncode == 0
    assert graph.read_text().startswith("digraph")


def test_file_passphrase_never_comes_from_the_key_store_variable(tmp_path: Path) -> None:
    plain = tmp_path / "catatan.txt"
    plain.write_text("catatan\n")
    # SANDI_PASSPHRASE is exported (as the quickstart teaches): encrypt -p must not use it.
    r = run(tmp_path / "nohome", "encrypt", "-p", "-o", tmp_path / "c.age", plain,
            env={"SANDI_PASSPHRASE": "kunci penyimpanan"})
    assert r.returncode != 0 and not (tmp_path / "c.age").exists()
    assert b"SANDI_FILE_PASSPHRASE" in r.stderr
    ok = run(tmp_path / "nohome", "encrypt", "-p", "--work-factor", "10", "-o", tmp_path / "c.age", plain,
             env={"SANDI_FILE_PASSPHRASE": "sandi berkas ini"})
    assert ok.returncode == 0, ok.stderr
    back = run(tmp_path / "nohome", "decrypt", tmp_path / "c.age",
               env={"SANDI_FILE_PASSPHRASE": "sandi berkas ini", "SANDI_PASSPHRASE": "salah"})
    assert back.returncode == 0 and back.stdout == b"catatan\n"


def test_no_color_is_honoured_on_a_terminal(tmp_path: Path) -> None:
    """On a terminal click colours the demo's headings; NO_COLOR must switch that off."""
    import pty

    controller, terminal = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "SANDI_HOME"}
    env.update({"NO_COLOR": "1", "SANDI_LANG": "en"})
    proc = subprocess.Popen([*SANDI, "demo", "--dir", str(tmp_path / "demo")], stdin=subprocess.DEVNULL,
                            stdout=terminal, stderr=terminal, env=env)
    os.close(terminal)
    chunks = []
    while True:
        try:
            data = os.read(controller, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=300)
    os.close(controller)
    output = b"".join(chunks)
    assert proc.returncode == 0, output[-2000:]
    assert b"sandi demo" in output
    assert b"\x1b[" not in output


def test_library_names_the_operator_per_call(p: Province) -> None:
    import json

    from sandi.toolkit import Toolkit

    tk = Toolkit.open(p.diskominfo.home, passphrase=str(ENV["SANDI_PASSPHRASE"]))
    policy = tk.directory_policy()
    sealed = tk.seal_bytes(b"isi", name="nota.txt", sender="DISKOMINFO", recipients=["BAPPEDA"],
                           classification="B", policy=policy, operator="siti.aminah")
    tk.seal_bytes(b"isi", name="nota2.txt", sender="DISKOMINFO", recipients=["BAPPEDA"],
                  classification="B", policy=policy, operator="budi.santoso")
    lines = (p.diskominfo.home / "audit.journal").read_text().splitlines()
    operators = [json.loads(line)["details"].get("operator") for line in lines[-2:]]
    assert operators == ["siti.aminah", "budi.santoso"]
    with pytest.raises(ValueError):
        tk.seal_bytes(b"isi", name="x.txt", sender="DISKOMINFO", recipients=["BAPPEDA"],
                      classification="B", policy=policy, operator="two\nlines")
    bappeda = Toolkit.open(p.bappeda.home, passphrase=str(ENV["SANDI_PASSPHRASE"]))
    opened = bappeda.open_bytes(sealed, opener="BAPPEDA", policy=bappeda.directory_policy())
    assert opened.content == b"isi" and "isi" not in repr(opened)
