"""Moving a file-store authority's root onto a SoftHSM2 token (ADR 0012): a new root on
the token, cross-certified by the old one; certificates re-issued, policies re-signed,
the audit log still verifying, the old root key gone; a failed move changes nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from sandi.keystore.keys import certificate_public_key_bytes, fingerprint
from tests.conftest import invoke
from tests.softhsm import Token, softhsm, token  # noqa: F401
from tests.test_keystore_pkcs11 import token_objects

POLICY = Path(__file__).parents[1] / "policies" / "banten.toml"
ENV: dict[str, str | None] = {"SANDI_PASSPHRASE": "kunci toko sandi banten rahasia", "SANDI_SCRYPT_WORK_FACTOR": "10",
                              "SANDI_PKCS11_PIN": None, "SANDI_PKCS11_MODULE": None}


def sandi(home: Path, *args: str | Path, pin: Path | None = None) -> tuple[int, str, str]:
    r = invoke("--home", home, *(["--pin-file", pin] if pin else []), *args, env=ENV)
    return r.code, r.stdout, r.stderr


def ok(home: Path, *args: str | Path, pin: Path | None = None) -> str:
    code, out, err = sandi(home, *args, pin=pin)
    assert code == 0, (args, out, err)
    return out


def root_fp(home: Path) -> str:
    from cryptography import x509

    cert = x509.load_pem_x509_certificate((home / "root.pem").read_bytes())
    return fingerprint(certificate_public_key_bytes(cert))


@pytest.mark.interop
def test_move_a_file_root_onto_a_token(tmp_path: Path, token: Token) -> None:
    home = tmp_path / "authority"
    ok(home, "init")
    ok(home, "agency", "add", "--from-policy", POLICY)
    ok(home, "policy", "apply", POLICY)
    ok(home, "keys", "issue", "DISKOMINFO", "BAPPEDA")
    ok(home, "audit", "checkpoint")
    old_fp = root_fp(home)
    old_root = tmp_path / "old-root.pem"
    old_root.write_bytes((home / "root.pem").read_bytes())
    assert list((home / "keys").glob("root.signing.*.key.age"))

    out = ok(home, "keys", "move-root", "--yes", "--pkcs11-module", token.module, "--pkcs11-token", token.uri,
             pin=token.pin_file)
    new_fp = root_fp(home)
    assert new_fp != old_fp and new_fp in out
    cfg = (home / "sandi.toml").read_text()
    assert 'keystore = "pkcs11"' in cfg and f'root_fingerprint = "{new_fp}"' in cfg and old_fp in cfg
    # The old root key is gone from disk; the new one is on the token, never extractable.
    assert not list((home / "keys").glob("root.*"))
    attrs = token_objects(token, f"root.signing.{new_fp[:16]}")
    assert attrs["EXTRACTABLE"] is False and attrs["NEVER_EXTRACTABLE"] is True
    # The old root vouches for the new key; agency certificates chain to the new root.
    (cross,) = home.glob("root-cross-*.pem")
    subprocess.run(["openssl", "verify", "-CAfile", old_root, cross], check=True, capture_output=True)
    assert (home / "roots" / f"{old_fp[:16]}.pem").read_bytes() == old_root.read_bytes()
    public = tmp_path / "public"
    ok(home, "keys", "export", "BAPPEDA", "--public", "-o", public, pin=token.pin_file)
    subprocess.run(["openssl", "verify", "-CAfile", home / "root.pem", public / "BAPPEDA.signing.pem"],
                   check=True, capture_output=True)
    bad = subprocess.run(["openssl", "verify", "-CAfile", old_root, public / "BAPPEDA.signing.pem"],
                         capture_output=True)
    assert bad.returncode != 0
    # Everything keeps working under the new root: policy gate, seal, open, audit.
    letter = tmp_path / "surat.txt"
    letter.write_text("Nota\n")
    ok(home, "seal", letter, "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "R",
       "-o", tmp_path / "surat.sandi", pin=token.pin_file)
    (tmp_path / "in").mkdir()
    ok(home, "open", tmp_path / "surat.sandi", "--as", "BAPPEDA", "--output-dir", tmp_path / "in",
       pin=token.pin_file)
    ok(home, "audit", "checkpoint", pin=token.pin_file)
    assert "signatures checked" in ok(home, "audit", "verify")
    log = ok(home, "--json", "audit", "log", "--limit", "20")
    assert "root.rollover" in log
    # A second move is refused: the root is on a token already.
    code, _out, err = sandi(home, "keys", "move-root", "--yes", "--pkcs11-module", token.module,
                            "--pkcs11-token", token.uri, pin=token.pin_file)
    assert code == 2 and "already" in err


def test_a_failed_move_changes_nothing(tmp_path: Path, token: Token) -> None:
    home = tmp_path / "authority"
    ok(home, "init")
    before = {p.relative_to(home): p.read_bytes() for p in home.rglob("*") if p.is_file()
              and p.name not in ("registry.db", "registry.db-wal", "registry.db-shm")}
    wrong = tmp_path / "wrong.pin"
    wrong.write_text("999999\n")
    wrong.chmod(0o600)
    code, _out, err = sandi(home, "keys", "move-root", "--yes", "--pkcs11-module", token.module,
                            "--pkcs11-token", token.uri, pin=wrong)
    assert code == 1 and "wrong PIN" in err and "internal error" not in err
    code, _out, err = sandi(home, "keys", "move-root", "--yes", "--pkcs11-module", token.module,
                            "--pkcs11-token", "pkcs11:token=absent", pin=token.pin_file)
    assert code == 1 and "not present" in err
    after = {p.relative_to(home): p.read_bytes() for p in home.rglob("*") if p.is_file()
             and p.name not in ("registry.db", "registry.db-wal", "registry.db-shm")}
    assert after == before
    assert "move-root" not in ok(home, "audit", "log", "--limit", "5")
