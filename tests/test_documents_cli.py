"""``sandi seal / open / inspect / sign / verify``: output (human and --json), names, errors.

Every error is two lines on stderr, ``error: ...`` and (for what the user can act on)
``hint: ...``, with the documented exit code; --json output is one JSON document
with the fields scripts rely on.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sandi.keystore.filestore import forget_unlocked
from tests import authority_fixtures as fx
from tests.authority_fixtures import AuthorityHome

authority_template = fx.authority_template
authority = fx.authority

SEAL_FIELDS = {"sender", "recipients", "classification", "sealed_at", "document", "size", "policy", "output"}


@pytest.fixture
def doc(tmp_path: Path) -> Path:
    path = tmp_path / "surat.txt"
    path.write_bytes(b"Dengan hormat, ...\n")
    return path


def test_seal_open_json(authority: AuthorityHome, doc: Path, tmp_path: Path) -> None:
    r = authority.run("--json", "seal", doc, "--as", "diskominfo", "--to", "bappeda", "--to", "SETDA",
                      "--class", "r", "--nomor", "005/1", "--sifat", "segera", "--hal", "Rapat",
                      "--lampiran", "1 berkas", "--tanggal", "2026-11-28")
    assert r.code == 0, r
    sealed = json.loads(r.stdout)
    assert set(sealed) >= SEAL_FIELDS
    assert sealed["sender"] == "DISKOMINFO" and sealed["recipients"] == ["BAPPEDA", "SETDA"]
    assert sealed["classification"] == "R" and sealed["output"] == str(tmp_path / "surat.txt.sandi")
    assert {k: sealed[k] for k in ("nomor", "sifat", "hal", "lampiran", "tanggal")} == {
        "nomor": "005/1", "sifat": "Segera", "hal": "Rapat", "lampiran": "1 berkas", "tanggal": "2026-11-28"}
    assert sealed["sealed_at"].endswith("+07:00") and sealed["size"] == doc.stat().st_size

    out = tmp_path / "masuk"
    r = authority.run("--json", "open", tmp_path / "surat.txt.sandi", "--as", "BAPPEDA", "--output-dir", out)
    assert r.code == 0, r
    opened = json.loads(r.stdout)
    assert SEAL_FIELDS | {"opened_by"} <= set(opened)
    assert opened["opened_by"] == "BAPPEDA" and opened["output"] == str(out / "surat.txt")
    assert {k: v for k, v in opened.items() if k not in ("output", "opened_by")} == {
        k: v for k, v in sealed.items() if k != "output"}
    assert (out / "surat.txt").read_bytes() == doc.read_bytes()


def test_human_output(authority: AuthorityHome, doc: Path, tmp_path: Path) -> None:
    r = authority.run("seal", doc, "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "T", "--hal", "Rapat")
    assert r.code == 0, r
    assert r.stdout.splitlines()[0] == f"sealed surat.txt -> {tmp_path / 'surat.txt.sandi'}"
    assert "  From:           DISKOMINFO" in r.stdout and "  Subject:        Rapat" in r.stdout
    r = authority.run("open", tmp_path / "surat.txt.sandi", "--as", "BAPPEDA", "-o", tmp_path / "dibuka.txt")
    assert r.code == 0, r
    assert r.stdout.startswith("opened surat.txt.sandi: verified\n")
    assert "  Classification: Terbatas (T)" in r.stdout
    assert f"  Written to:     {tmp_path / 'dibuka.txt'}" in r.stdout


@pytest.mark.parametrize(
    ("recipients", "armor", "stanzas"),
    [(["BAPPEDA"], False, 1), (["BAPPEDA", "SETDA", "KESBANGPOL"], False, 3), (["BAPPEDA"], True, 1)],
    ids=["one", "three", "armored"],
)
def test_inspect_without_a_key(authority: AuthorityHome, doc: Path, tmp_path: Path, recipients: list[str],
                               armor: bool, stanzas: int) -> None:
    args = [a for code in recipients for a in ("--to", code)]
    r = authority.run("seal", doc, "--as", "DISKOMINFO", *args, "--class", "B", *(["--armor"] if armor else []))
    assert r.code == 0, r
    sealed = tmp_path / ("surat.txt.sandi.asc" if armor else "surat.txt.sandi")
    assert sealed.exists()
    r = authority.run("inspect", sealed)
    assert r.code == 0, r
    lines = r.stdout.splitlines()
    assert lines[0] == f"{sealed.name}: age v1 file" + (" (armored)" if armor else "")
    assert lines[1] == f"  recipient stanzas: {stanzas} ({stanzas} X25519)"
    assert lines[2].startswith(f"  size: {sealed.stat().st_size} bytes (header ")
    assert "DISKOMINFO" not in r.stdout  # nothing of the content without a key

    r = authority.run("--json", "inspect", sealed)
    info = json.loads(r.stdout)
    assert info == {"format": "age-encryption.org/v1", "armored": armor, "recipient_stanzas": stanzas,
                    "stanza_types": {"X25519": stanzas}, "protection": "classical",
                    "header_bytes": info["header_bytes"],
                    "file_size": sealed.stat().st_size}


def test_inspect_as_recipient_verifies_and_writes_nothing(authority: AuthorityHome, doc: Path,
                                                         tmp_path: Path) -> None:
    assert authority.run("seal", doc, "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "R",
                         "--nomor", "7/2026").code == 0
    before = sorted(p.name for p in tmp_path.iterdir())
    r = authority.run("--json", "inspect", tmp_path / "surat.txt.sandi", "--as", "bappeda")
    assert r.code == 0, r
    info = json.loads(r.stdout)
    assert info["recipient_stanzas"] == 1
    assert info["verified"]["sender"] == "DISKOMINFO" and info["verified"]["nomor"] == "7/2026"
    r = authority.run("inspect", tmp_path / "surat.txt.sandi", "--as", "BAPPEDA")
    assert "  From:           DISKOMINFO" in r.stdout and "  Number:         7/2026" in r.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    r = authority.run("inspect", tmp_path / "surat.txt.sandi", "--as", "SETDA")
    assert r.code == 4 and r.stderr.startswith("error: this document is not encrypted to any key of SETDA")


def test_sign_verify_json(authority: AuthorityHome, doc: Path, tmp_path: Path) -> None:
    r = authority.run("--json", "sign", doc, "--as", "SETDA", "--class", "B", "--nomor", "045/1")
    assert r.code == 0, r
    signed = json.loads(r.stdout)
    assert signed == {"signer": "SETDA", "document": "surat.txt", "signature": str(tmp_path / "surat.txt.minisig"),
                      "signed_at": signed["signed_at"]}
    r = authority.run("--json", "verify", doc)
    assert r.code == 0, r
    verified = json.loads(r.stdout)
    assert {"verified", "signer", "signer_name", "certificate", "signed_at", "format", "document", "size"} <= set(
        verified)
    assert (verified["verified"], verified["signer"], verified["signer_name"]) == (
        True, "SETDA", fx.AGENCIES["SETDA"])
    assert verified["signed_at"] == signed["signed_at"] and verified["classification"] == "B"
    assert verified["nomor"] == "045/1" and verified["format"] == "sandi-sign/v1"
    # from standard input, with the signature elsewhere
    moved = tmp_path / "elsewhere.sig"
    (tmp_path / "surat.txt.minisig").rename(moved)
    r = authority.run("--json", "verify", "-", "--sig", moved, input=doc.read_bytes())
    assert r.code == 0 and json.loads(r.stdout)["signer"] == "SETDA", r
    r = authority.run("verify", "-", "--sig", moved, input=doc.read_bytes() + b"!")
    assert r.code == 4, r


@pytest.mark.parametrize(("ahead", "verifies"), [(timedelta(minutes=3), True), (timedelta(hours=2), False),
                                                 (timedelta(days=3), False)])
def test_signature_dated_ahead_of_the_verifiers_clock(authority: AuthorityHome, doc: Path,
                                                      ahead: timedelta, verifies: bool) -> None:
    """A signer whose clock runs ahead: within the clock skew it verifies, beyond it the
    signing time is refused (it could otherwise pick a later policy or outrun a revocation)."""
    from sandi.documents import sign

    later = datetime.now(UTC) + ahead
    sign(doc, workspace=authority.workspace(clock=lambda: later), signer_code="SETDA",
         signature_path=doc.with_name(doc.name + ".minisig"))
    r = authority.run("verify", doc)
    if verifies:
        assert r.code == 0 and "SETDA" in r.stdout, r
    else:
        assert r.code == 4 and "error: the signature claims a signing time in the future" in r.stderr, r
        assert "check this machine's clock" in r.stderr, r


def test_verify_needs_no_passphrase(authority: AuthorityHome, doc: Path) -> None:
    assert authority.run("sign", doc, "--as", "BAPPEDA").code == 0
    r = authority.run("verify", doc, env={"SANDI_PASSPHRASE": None})
    assert r.code == 0, r


@pytest.mark.parametrize(
    ("args", "code", "error", "hint"),
    [
        (["open", "{sealed}", "--as", "KESBANGPOL"], 4, "this document is not encrypted to any key of KESBANGPOL",
         "open it as one of its recipients"),
        (["open", "{doc}", "--as", "BAPPEDA"], 4, "age header failure: not an age file", "not a valid age v1 file"),
        (["inspect", "{doc}"], 4, "age header failure", "not a valid age v1 file"),
        (["open", "{tmp}/nothing.sandi", "--as", "BAPPEDA"], 1, "no such file", None),
        (["open", "{sealed}"], 2, "say which agency you act as with --as CODE", "an authority home holds keys"),
        (["open", "{sealed}", "--as", "BAPPEDA", "-o", "{tmp}/a", "--output-dir", "{tmp}/b"], 2,
         "give -o or --output-dir, not both", None),
        (["open", "{sealed}", "--as", "BAPPEDA", "-o", "{doc}"], 1, "exists already", "--force"),
        (["open", "{sealed}", "--as", "BAPPEDA", "-o", "{tmp}/no/such/x"], 1, "no such folder", "create it first"),
        (["seal", "{doc}", "--as", "DISKOMINFO", "--to", "NOPE", "--class", "R"], 1,
         "agency NOPE is not in the directory", "check the code"),
        (["seal", "{doc}", "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "R", "-o", "{sealed}"], 1,
         "exists already", None),
        (["seal", "{doc}", "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "R", "--sifat", "a\tb"], 2,
         "letter field sifat is too long or has control characters", None),
        (["seal", "{doc}", "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "X"], 2, "unknown classification 'X'",
         "give a code or a name: SR (Sangat Rahasia), R (Rahasia)"),
        (["seal", "{doc}", "--as", "DISKOMINFO", "--class", "R"], 2,
         "name the recipients with --to, --to-file or --to-all", None),
        (["seal", "{tmp}/nothing.txt", "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "R"], 1,
         "no such file", None),
        (["sign", "{doc}", "--as", "NOPE"], 1, "agency NOPE is not in the directory", "check the code"),
        (["verify", "{doc}"], 2, "no signature file", "give it with --sig"),
        (["verify", "{doc}", "--sig", "{sealed}"], 4, "minisign", None),
    ],
    ids=["not-a-recipient", "open-not-age", "inspect-not-age", "open-missing", "open-no-agency",
         "open-o-and-dir", "open-exists", "open-o-missing-folder", "seal-unknown-recipient", "seal-exists",
         "seal-control-char", "seal-bad-class", "seal-no-recipient", "seal-missing-file", "sign-unknown",
         "verify-no-sig", "verify-not-a-sig"],
)
def test_errors_say_what_and_what_to_do(authority: AuthorityHome, doc: Path, tmp_path: Path, args: list[str],
                                        code: int, error: str, hint: str | None) -> None:
    sealed = tmp_path / "x.sandi"
    assert authority.run("seal", doc, "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "R", "-o",
                         sealed).code == 0
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    argv = [a.format(sealed=sealed, doc=doc, tmp=tmp_path) for a in args]
    r = authority.run(*argv)
    assert r.code == code, r
    lines = r.stderr.splitlines()
    assert any(line.startswith("error: ") and error in line for line in lines), r
    if hint is not None:
        assert any(line.startswith("hint: ") and hint in line for line in lines), r
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before  # a refusal changes nothing


@pytest.mark.parametrize("command", ["seal", "open", "sign"])
def test_wrong_passphrase_is_refused_and_writes_nothing(authority: AuthorityHome, doc: Path, tmp_path: Path,
                                                        command: str) -> None:
    sealed = tmp_path / "x.sandi"
    assert authority.run("seal", doc, "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "R", "-o",
                         sealed).code == 0
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    commands: dict[str, list[str | Path]] = {
        "seal": ["seal", doc, "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "R", "-o", tmp_path / "y"],
        "open": ["open", sealed, "--as", "BAPPEDA", "--output-dir", tmp_path / "out"],
        "sign": ["sign", doc, "--as", "DISKOMINFO"],
    }
    args = commands[command]
    # The file store keeps an unlocked store for the rest of the process (one scrypt per
    # process); each real command is its own process, so start from a locked store.
    forget_unlocked()
    r = authority.run(*args, env={"SANDI_PASSPHRASE": "bukan kata sandinya"})
    assert r.code == 1 and r.stderr.startswith("error: "), r
    assert "hint: " in r.stderr and "bukan" not in r.stderr
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("command", ["seal", "open", "inspect", "sign", "verify"])
def test_help_has_an_example(authority: AuthorityHome, command: str) -> None:
    r = authority.run(command, "--help")
    assert r.code == 0 and "Example:" in r.stdout and f"sandi {command}" in r.stdout, r


@pytest.mark.parametrize(
    ("file_name", "given", "why", "suggestion"),
    [(".bashrc", None, "starts with a dot", "--name bashrc"),
     ("surat.txt", ".profile", "starts with a dot", "--name profile"),
     ("surat.txt", "NUL.txt", "NUL is a device name on Windows", "--name _NUL.txt"),
     ("surat.txt", "com1", "com1 is a device name on Windows", "--name _com1"),
     ("surat.txt", "laporan.", "ends with a dot", "--name laporan"),
     ("surat.txt.minisig", None, "ends with .minisig", "--name surat.txt_minisig")],
)
def test_seal_refuses_names_recipients_could_not_open_safely(authority: AuthorityHome, tmp_path: Path,
                                                             file_name: str, given: str | None, why: str,
                                                             suggestion: str) -> None:
    """What open refuses, seal refuses first: a usage error suggesting --name, nothing written."""
    src = tmp_path / file_name
    src.write_bytes(b"isi naskah\n")
    name = [] if given is None else ["--name", given]
    r = authority.run("seal", src, "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "T", *name)
    assert r.code == 2, r
    assert why in r.stderr and f"hint: give it another name with --name, e.g. {suggestion}" in r.stderr, r
    assert [p.name for p in tmp_path.iterdir()] == [file_name]
    # the suggested name seals, and opens under that name
    chosen = suggestion.split(" ", 1)[1]
    r = authority.run("seal", src, "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "T", "--name", chosen,
                      "-o", tmp_path / "out.sandi")
    assert r.code == 0, r
    r = authority.run("open", tmp_path / "out.sandi", "--as", "BAPPEDA", "--output-dir", tmp_path / "masuk")
    assert r.code == 0, r
    assert (tmp_path / "masuk" / chosen).read_bytes() == b"isi naskah\n"
