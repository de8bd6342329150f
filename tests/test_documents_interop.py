"""Sealed documents and signatures checked with the standard tools: age, tar, minisign.

* a sealed file opens with ``age -d -i IDENTITY | tar -x``, and the document verifies
  with ``minisign -V -p SENDER.minisign.pub``, whose printed trusted comment is the
  signed metadata (the header hash in it matches the file's age header);
* a detached signature from ``sandi sign`` verifies with ``minisign -V``;
* a signature made by ``minisign -S`` with an agency's exported secret key verifies in
  ``sandi verify`` (and one made with a stranger's key does not);
* what a person builds by hand with those tools is not a sealed document: sandi
  refuses it rather than guess (no signed metadata).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from sandi.formats.age import parse_header
from tests import authority_fixtures as fx
from tests.authority_fixtures import EXPORT_PASSPHRASE, AuthorityHome

authority_template = fx.authority_template
authority = fx.authority

pytestmark = pytest.mark.interop

needs_age = pytest.mark.skipif(shutil.which("age") is None, reason="age is not installed")
needs_minisign = pytest.mark.skipif(shutil.which("minisign") is None, reason="minisign is not installed")
needs_tar = pytest.mark.skipif(shutil.which("tar") is None, reason="tar is not installed")


def run(argv: list[str | Path], *, input: bytes | None = None, cwd: Path | None = None) -> str:
    proc = subprocess.run([str(a) for a in argv], input=input, cwd=cwd, capture_output=True)
    assert proc.returncode == 0, (argv, proc.stderr.decode(errors="replace"))
    return proc.stdout.decode() + proc.stderr.decode()


def age_tar_x(authority: AuthorityHome, sealed: Path, into: Path, code: str = "BAPPEDA") -> list[str]:
    """``age -d -i ID sealed | tar -x -C into``; returns the names extracted."""
    into.mkdir()
    plain = subprocess.run(["age", "-d", "-i", str(authority.identity_file(code)), str(sealed)],
                           capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into), "-f", "-"], input=plain, check=True, capture_output=True)
    return sorted(p.name for p in into.iterdir())


@needs_age
@needs_tar
@needs_minisign
@pytest.mark.parametrize("armor", [False, True], ids=["binary", "armored"])
@pytest.mark.parametrize("size", [0, 70_000], ids=["empty", "70KB"])
def test_sealed_file_opens_with_age_tar_and_minisign(authority: AuthorityHome, tmp_path: Path, armor: bool,
                                                     size: int) -> None:
    data = hashlib.shake_256(b"interop").digest(size) if size else b""
    doc = tmp_path / "nota dinas.pdf"
    doc.write_bytes(data)
    sealed = tmp_path / "nota.sandi"
    r = authority.run("--json", "seal", doc, "--as", "DISKOMINFO", "--to", "BAPPEDA", "--to", "SETDA",
                      "--class", "R", "--nomor", "005/17/DISKOMINFO/2026", "--hal", "Rapat koordinasi",
                      "-o", sealed, *(["--armor"] if armor else []))
    assert r.code == 0, r
    for code in ("BAPPEDA", "SETDA"):
        out = tmp_path / f"x-{code}"
        assert age_tar_x(authority, sealed, out, code) == ["nota dinas.pdf", "nota dinas.pdf.minisig"]
        assert (out / "nota dinas.pdf").read_bytes() == data
        printed = run(["minisign", "-V", "-p", authority.minisign_public_key("DISKOMINFO"),
                       "-m", out / "nota dinas.pdf"])
        assert "Signature and comment signature verified" in printed
        (comment,) = [line for line in printed.splitlines() if line.startswith("Trusted comment: ")]
        assert comment.startswith("Trusted comment: sandi-seal/v1 {")
        meta = json.loads(comment.removeprefix("Trusted comment: sandi-seal/v1 "))
        assert meta["sender"]["code"] == "DISKOMINFO"
        assert [x["code"] for x in meta["recipients"]] == ["BAPPEDA", "SETDA"]
        assert meta["letter"] == {"nomor": "005/17/DISKOMINFO/2026", "hal": "Rapat koordinasi",
                                  "tanggal": meta["letter"]["tanggal"]}  # today, by default
        assert meta["document"] == {"name": "nota dinas.pdf", "size": size}
        # the binding a person can check by hand: SHA-256 of the (binary) age header
        with sealed.open("rb") as f:
            assert meta["age_header_sha256"] == hashlib.sha256(parse_header(f).header_bytes).hexdigest()
    # another agency's minisign key does not verify it
    proc = subprocess.run(["minisign", "-V", "-p", str(authority.minisign_public_key("BAPPEDA")), "-m",
                           str(tmp_path / "x-BAPPEDA" / "nota dinas.pdf")], capture_output=True)
    assert proc.returncode != 0


@needs_age
def test_a_stranger_cannot_open_it_with_age(authority: AuthorityHome, tmp_path: Path) -> None:
    doc = tmp_path / "a.txt"
    doc.write_bytes(b"rahasia")
    assert authority.run("seal", doc, "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "R").code == 0
    proc = subprocess.run(["age", "-d", "-i", str(authority.identity_file("KESBANGPOL")),
                           str(tmp_path / "a.txt.sandi")], capture_output=True)
    assert proc.returncode != 0 and b"rahasia" not in proc.stdout


@needs_minisign
@pytest.mark.parametrize("extra", [[], ["--class", "B", "--nomor", "045/88/2026", "--hal", "Pengumuman"]],
                         ids=["plain", "letter"])
def test_sandi_sign_verifies_with_minisign(authority: AuthorityHome, tmp_path: Path, extra: list[str]) -> None:
    doc = tmp_path / "pengumuman.pdf"
    doc.write_bytes(b"%PDF-1.7 pengumuman" * 1000)
    r = authority.run("sign", doc, "--as", "DISKOMINFO", *extra)
    assert r.code == 0, r
    printed = run(["minisign", "-V", "-p", authority.minisign_public_key("DISKOMINFO"), "-m", doc])
    assert "Signature and comment signature verified" in printed
    (comment,) = [line for line in printed.splitlines() if line.startswith("Trusted comment: ")]
    meta = json.loads(comment.removeprefix("Trusted comment: sandi-sign/v1 "))
    assert meta["signer"]["code"] == "DISKOMINFO" and meta["document"]["name"] == "pengumuman.pdf"
    if extra:
        assert meta["class"] == "B" and meta["letter"]["nomor"] == "045/88/2026"
    # minisign itself notices a change to the document
    doc.write_bytes(doc.read_bytes() + b"\n")
    proc = subprocess.run(["minisign", "-V", "-p", str(authority.minisign_public_key("DISKOMINFO")), "-m",
                           str(doc)], capture_output=True)
    assert proc.returncode != 0


@needs_minisign
@pytest.mark.parametrize("comment", [None, "surat edaran kepala dinas"], ids=["default-comment", "own-comment"])
def test_minisign_signature_with_exported_key_verifies_in_sandi(authority: AuthorityHome, tmp_path: Path,
                                                                comment: str | None) -> None:
    doc = tmp_path / "edaran.txt"
    doc.write_bytes(b"Surat edaran nomor 1")
    argv: list[str | Path] = ["minisign", "-S", "-s", authority.minisign_secret_key("DISKOMINFO"), "-m", doc]
    if comment is not None:
        argv += ["-t", comment]
    run(argv, input=(EXPORT_PASSPHRASE + "\n").encode())  # minisign 0.11 reads the passphrase from stdin
    r = authority.run("--json", "verify", doc)
    assert r.code == 0, r
    result = json.loads(r.stdout)
    assert (result["signer"], result["format"], result["verified"]) == ("DISKOMINFO", "minisign", True)
    if comment is None:  # minisign's default comment carries the signing time
        assert result["signed_at"] is not None and result["trusted_comment"].startswith("timestamp:")
    else:
        assert result["signed_at"] is None and result["trusted_comment"] == comment

    doc.write_bytes(b"Surat edaran nomor 2")
    r = authority.run("verify", doc)
    assert r.code == 4 and r.stderr.startswith("error: signature verification failed"), r


@needs_minisign
@pytest.mark.parametrize(("ahead", "verifies"), [(60, True), (3600, False)])
def test_minisign_timestamp_ahead_of_the_verifiers_clock(authority: AuthorityHome, tmp_path: Path,
                                                         ahead: int, verifies: bool) -> None:
    """minisign's trusted comment carries the signing time sandi judges by; one set ahead of
    the clock beyond the skew (here with ``-t``, as a signer could) is refused."""
    doc = tmp_path / "edaran.txt"
    doc.write_bytes(b"Surat edaran nomor 3")
    stamp = int(time.time()) + ahead
    run(["minisign", "-S", "-s", authority.minisign_secret_key("DISKOMINFO"), "-m", doc,
         "-t", f"timestamp:{stamp}\tfile:edaran.txt"], input=(EXPORT_PASSPHRASE + "\n").encode())
    r = authority.run("verify", doc)
    if verifies:
        assert r.code == 0, r
    else:
        assert r.code == 4 and "signing time in the future" in r.stderr, r


@needs_minisign
def test_minisign_signature_of_a_stranger_is_refused(authority: AuthorityHome, tmp_path: Path) -> None:
    key, pub = tmp_path / "stranger.key", tmp_path / "stranger.pub"
    run(["minisign", "-G", "-W", "-s", key, "-p", pub])
    doc = tmp_path / "palsu.txt"
    doc.write_bytes(b"surat palsu")
    run(["minisign", "-S", "-s", key, "-m", doc])
    r = authority.run("verify", doc)
    assert r.code == 4 and "signing key is not in the directory" in r.stderr, r


@needs_age
@needs_tar
@needs_minisign
def test_hand_made_pipeline_is_not_a_sealed_document(authority: AuthorityHome, tmp_path: Path) -> None:
    """minisign -S + tar + age -e by hand: a valid age file, a valid signature, but no signed
    metadata (recipients, header binding): sandi refuses to vouch for it."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "surat.txt").write_bytes(b"surat biasa")
    run(["minisign", "-S", "-s", authority.minisign_secret_key("DISKOMINFO"), "-m", src / "surat.txt"],
        input=(EXPORT_PASSPHRASE + "\n").encode())
    tar = subprocess.run(["tar", "-c", "--format=ustar", "-C", str(src), "-f", "-", "surat.txt",
                          "surat.txt.minisig"], capture_output=True, check=True).stdout
    recipient = (authority.exports / "public" / "BAPPEDA" / "BAPPEDA.age.txt").read_text().split()[-1]
    sealed = tmp_path / "tangan.age"
    subprocess.run(["age", "-e", "-r", recipient, "-o", str(sealed)], input=tar, check=True)
    out = tmp_path / "out"
    r = authority.run("open", sealed, "--as", "BAPPEDA", "--output-dir", out)
    assert r.code == 4 and "does not carry sandi seal metadata" in r.stderr, r
    assert not out.exists()  # GNU tar's ustar passed the strict reader; only the comment is foreign
