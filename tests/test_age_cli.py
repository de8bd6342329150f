"""``sandi encrypt`` / ``sandi decrypt``: keys, passphrases, outputs, exit codes."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from sandi.formats.age import MLKEM768X25519Identity, ScryptRecipient, X25519Identity, encrypt, parse_header

ALICE = X25519Identity.generate()
BOB = X25519Identity.generate()


def identity_file(path: Path, ident: X25519Identity) -> Path:
    path.write_text(
        f"# created: 2025-01-01T00:00:00Z\n# public key: {ident.recipient}\n\n{ident.secret_bech32_unsafe()}\n"
    )
    path.chmod(0o600)
    return path


def secret_file(path: Path, text: str) -> Path:
    path.write_text(text + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    p = tmp_path / "surat.txt"
    p.write_bytes(os.urandom(70_000))
    return p


@pytest.mark.parametrize("armor", [False, True])
def test_encrypt_decrypt_files(run_sandi, tmp_path: Path, plain: Path, armor: bool) -> None:  # type: ignore[no-untyped-def]
    ct = tmp_path / "surat.txt.age"
    args = ["encrypt", "-r", str(ALICE.recipient), "-r", str(BOB.recipient), "-o", ct, plain]
    r = run_sandi(*args, *(["--armor"] if armor else []))
    assert r.code == 0, r
    assert ct.read_bytes().startswith(b"-----BEGIN AGE" if armor else b"age-encryption.org/v1\n")
    out = tmp_path / "out.txt"
    r = run_sandi("decrypt", "-i", identity_file(tmp_path / "bob.txt", BOB), "-o", out, ct)
    assert r.code == 0, r
    assert out.read_bytes() == plain.read_bytes()
    assert (out.stat().st_mode & 0o777) == 0o600  # plaintext is private by default


def test_stdin_stdout(run_sandi, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = run_sandi("encrypt", "-r", str(ALICE.recipient), "--armor", input=b"halo dunia")
    assert r.code == 0 and r.stdout.startswith("-----BEGIN AGE ENCRYPTED FILE-----")
    r2 = run_sandi("decrypt", "-i", identity_file(tmp_path / "a.txt", ALICE), input=r.stdout_bytes)
    assert r2.code == 0, r2
    assert r2.stdout_bytes == b"halo dunia"


def test_passphrase_env_and_file(run_sandi, tmp_path: Path, plain: Path) -> None:  # type: ignore[no-untyped-def]
    ct = tmp_path / "p.age"
    r = run_sandi("encrypt", "-p", "--work-factor", "10", "-o", ct, plain, env={"SANDI_FILE_PASSPHRASE": "rahasia"})
    assert r.code == 0, r
    [stanza] = parse_header(io.BytesIO(ct.read_bytes())).stanzas
    assert stanza.type == "scrypt" and stanza.args[1] == "10"
    out = tmp_path / "out"
    r = run_sandi("decrypt", "--passphrase-file", secret_file(tmp_path / "pw", "rahasia"), "-o", out, ct)
    assert r.code == 0, r
    assert out.read_bytes() == plain.read_bytes()
    r = run_sandi("decrypt", "-o", tmp_path / "o2", ct, env={"SANDI_FILE_PASSPHRASE": "salah"})
    assert r.code == 4 and "no match" in r.stderr
    assert not (tmp_path / "o2").exists()


def test_passphrase_protected_identity_file(run_sandi, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    text = f"# public key: {ALICE.recipient}\n{ALICE.secret_bech32_unsafe()}\n".encode()
    key_age = tmp_path / "key.age"
    with open(key_age, "wb") as f:
        encrypt(io.BytesIO(text), f, [ScryptRecipient(b"kunci", 10)], armor=True)
    ct = tmp_path / "f.age"
    with open(ct, "wb") as f:
        encrypt(io.BytesIO(b"isi"), f, [ALICE.recipient])
    r = run_sandi("decrypt", "-i", key_age, ct, env={"SANDI_FILE_PASSPHRASE": "kunci"})
    assert r.code == 0, r
    assert r.stdout_bytes == b"isi"
    r = run_sandi("decrypt", "-i", key_age, ct, env={"SANDI_FILE_PASSPHRASE": "bukan"})
    assert r.code == 4 and "no match" in r.stderr


@pytest.mark.parametrize(
    ("damage", "kind"),
    [
        (lambda b: b[:-1], "payload"),
        (lambda b: b + b"\x00", "payload"),
        (lambda b: b[:40], "header"),
    ],
)
def test_failed_decryption_leaves_no_output(run_sandi, tmp_path: Path, plain: Path, damage, kind: str) -> None:  # type: ignore[no-untyped-def]
    ct = tmp_path / "c.age"
    with open(ct, "wb") as f, open(plain, "rb") as src:
        encrypt(src, f, [ALICE.recipient])
    ct.write_bytes(damage(ct.read_bytes()))
    out = tmp_path / "out.txt"
    r = run_sandi("decrypt", "-i", identity_file(tmp_path / "a.txt", ALICE), "-o", out, ct)
    assert r.code == 4, r
    assert f"age {kind} failure" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "c.age", "surat.txt"]


def test_wrong_key_exit_4(run_sandi, tmp_path: Path, plain: Path) -> None:  # type: ignore[no-untyped-def]
    ct = tmp_path / "c.age"
    assert run_sandi("encrypt", "-r", str(ALICE.recipient), "-o", ct, plain).code == 0
    r = run_sandi("decrypt", "-i", identity_file(tmp_path / "b.txt", BOB), ct)
    assert r.code == 4 and "no match" in r.stderr and r.stdout_bytes == b""


def test_refuses_to_overwrite_without_force(run_sandi, tmp_path: Path, plain: Path) -> None:  # type: ignore[no-untyped-def]
    ct = tmp_path / "c.age"
    ct.write_bytes(b"precious")
    r = run_sandi("encrypt", "-r", str(ALICE.recipient), "-o", ct, plain)
    assert r.code == 1 and "exists" in r.stderr
    assert ct.read_bytes() == b"precious"
    r = run_sandi("encrypt", "-r", str(ALICE.recipient), "-o", ct, plain, "--force")
    assert r.code == 0 and ct.read_bytes().startswith(b"age-encryption.org/v1\n")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["encrypt"], 2, "nothing to encrypt to"),
        (["encrypt", "-p", "-r", "age1x"], 2, "cannot be combined"),
        (["encrypt", "-r", "BAPPEDA"], 2, "no sandi home"),  # agency codes come from the home's directory
        (["encrypt", "-r", "age1notakey"], 2, "invalid recipient"),
        (["encrypt", "-r", "not a key!"], 2, "invalid recipient"),
        (["encrypt", "-p"], 1, "no terminal"),
        (["decrypt", "--as", "BAPPEDA"], 2, "no sandi home"),  # agency keys come from the home
    ],
)
def test_usage_errors(run_sandi, args: list[str], code: int, message: str) -> None:  # type: ignore[no-untyped-def]
    r = run_sandi(*args, input=b"data")
    assert r.code == code, r
    assert message in r.stderr


def test_passphrase_file_must_be_private(run_sandi, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pw = tmp_path / "pw"
    pw.write_text("rahasia\n")
    pw.chmod(0o644)
    r = run_sandi("encrypt", "-p", "--passphrase-file", pw, input=b"x")
    assert r.code != 0 and "readable by others" in r.stderr


def test_bad_identity_file_does_not_echo_it(run_sandi, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "k.txt"
    secret = ALICE.secret_bech32_unsafe()
    bad.write_text(secret[:-2] + "QQ\n")
    r = run_sandi("decrypt", "-i", bad, input=b"age-encryption.org/v1\n")
    assert r.code == 4 and "line 1" in r.stderr and secret[:-2] not in r.stderr


@pytest.mark.parametrize("command", ["encrypt", "decrypt"])
def test_help_has_example(run_sandi, command: str) -> None:  # type: ignore[no-untyped-def]
    r = run_sandi(command, "--help")
    assert r.code == 0 and "Example:" in r.stdout


def test_progress_bar_on_terminal_for_large_input(run_sandi, tmp_path: Path, plain: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import sandi_cli.crypt as crypt

    monkeypatch.setattr(crypt, "_show_progress", lambda size: size > 1000)
    ct = tmp_path / "c.age"
    r = run_sandi("encrypt", "-r", str(ALICE.recipient), "-o", ct, plain)
    assert r.code == 0, r
    assert plain.name in r.stderr  # the bar's label
    r = run_sandi("decrypt", "-i", identity_file(tmp_path / "a.txt", ALICE), ct)
    assert r.code == 0 and r.stdout_bytes == plain.read_bytes()


PQ = MLKEM768X25519Identity.generate()
PQ2 = MLKEM768X25519Identity.generate()


def pq_identity_file(path: Path, ident: MLKEM768X25519Identity) -> Path:
    path.write_text(f"# public key: {ident.recipient}\n{ident.secret_bech32_unsafe()}\n")
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("armor", [False, True])
def test_post_quantum_round_trip(run_sandi, tmp_path: Path, plain: Path, armor: bool) -> None:  # type: ignore[no-untyped-def]
    ct = tmp_path / "surat.txt.age"
    args = ["encrypt", "-r", str(PQ.recipient), "-r", str(PQ2.recipient), "-o", ct, plain]
    r = run_sandi(*args, *(["--armor"] if armor else []))
    assert r.code == 0, r
    with open(ct, "rb") as f:
        assert [s.type for s in parse_header(f).stanzas] == ["mlkem768x25519"] * 2
    out = tmp_path / "out.txt"
    # An identity file holding both key kinds, as age-keygen files may.
    keys = pq_identity_file(tmp_path / "k.txt", PQ2)
    keys.write_text(keys.read_text() + ALICE.secret_bech32_unsafe() + "\n")
    r = run_sandi("decrypt", "-i", keys, "-o", out, ct)
    assert r.code == 0, r
    assert out.read_bytes() == plain.read_bytes()
    r = run_sandi("decrypt", "-i", identity_file(tmp_path / "a.txt", ALICE), "-o", tmp_path / "no", ct)
    assert r.code == 4 and not (tmp_path / "no").exists()


def test_post_quantum_and_classical_recipients_do_not_mix(run_sandi, tmp_path: Path, plain: Path) -> None:  # type: ignore[no-untyped-def]
    ct = tmp_path / "mixed.age"
    r = run_sandi("encrypt", "-r", str(PQ.recipient), "-r", str(ALICE.recipient), "-o", ct, plain)
    assert r.code == 2 and "mixed" in r.stderr
    assert not ct.exists()


def test_invalid_post_quantum_recipient_is_shortened(run_sandi) -> None:  # type: ignore[no-untyped-def]
    broken = str(PQ.recipient)[:-1] + ("q" if str(PQ.recipient)[-1] != "q" else "p")
    r = run_sandi("encrypt", "-r", broken, input=b"x")
    assert r.code == 2 and "invalid recipient" in r.stderr
    assert broken not in r.stderr and broken[:40] in r.stderr
