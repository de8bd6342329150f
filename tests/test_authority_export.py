"""Exports: public files, the private key bundle and its import, age identity, minisign key."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from sandi.home import Home
from sandi.keystore import FixedPassphrase, open_keystore
from tests import test_authority_support as support
from tests.conftest import RunSandi
from tests.test_authority_support import EXPORT_PASSPHRASE, PASSPHRASE, ok

authority = support.authority
fast_env = support.fast_env


@pytest.fixture
def issued(run_sandi: RunSandi, authority: Path) -> Path:
    ok(run_sandi, "--home", authority, "agency", "add", "DISKOMINFO", "--name", "Dinas Kominfo")
    ok(run_sandi, "--home", authority, "keys", "issue", "DISKOMINFO")
    return authority


def test_public_export(run_sandi: RunSandi, issued: Path, tmp_path: Path) -> None:
    out = tmp_path / "pub"
    ok(run_sandi, "--home", issued, "keys", "export", "DISKOMINFO", "--public", "-o", out)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["DISKOMINFO.age.txt", "DISKOMINFO.encryption.pem", "DISKOMINFO.minisign.pub",
                     "DISKOMINFO.signing.pem", "root.pem"]
    recipient = (out / "DISKOMINFO.age.txt").read_text().strip()
    assert recipient.startswith("age1")
    from sandi.formats.minisign import MinisignPublicKey

    pub = MinisignPublicKey.from_text((out / "DISKOMINFO.minisign.pub").read_text())
    listed = json.loads(ok(run_sandi, "--home", issued, "keys", "list", "DISKOMINFO", "--json"))
    signing = next(c for c in listed if c["purpose"] == "signing")
    import hashlib

    assert hashlib.sha256(pub.public_key).hexdigest() == signing["key_fingerprint"]
    for p in out.iterdir():
        assert b"SECRET" not in p.read_bytes().upper() and b"PRIVATE" not in p.read_bytes()
    if shutil.which("openssl"):
        for name in ("DISKOMINFO.signing.pem", "DISKOMINFO.encryption.pem"):
            proc = subprocess.run(["openssl", "verify", "-CAfile", str(out / "root.pem"), str(out / name)],
                                  capture_output=True, text=True)
            assert proc.returncode == 0, proc
    # exporting into the same folder again refuses rather than overwrite
    r = run_sandi("--home", issued, "keys", "export", "DISKOMINFO", "--public", "-o", out)
    assert r.code == 1 and "exists already" in r.stderr


def test_bundle_export_and_import(run_sandi: RunSandi, issued: Path, tmp_path: Path) -> None:
    ok(run_sandi, "--home", issued, "keys", "rotate", "--yes", "DISKOMINFO")  # the bundle carries old keys too
    bundle = tmp_path / "kominfo.keys.age"
    ok(run_sandi, "--home", issued, "keys", "export", "DISKOMINFO", "--include-private-keys", "-o", bundle)
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o600
    assert bundle.read_bytes().startswith(b"age-encryption.org/v1\n-> scrypt ")
    ws = tmp_path / "ws"
    fp = Home(issued).load_config().root_fingerprint
    assert fp
    ok(run_sandi, "--home", ws, "init", "--agency", "DISKOMINFO", "--root-fingerprint", fp)
    # wrong export passphrase: clear error, nothing stored
    r = run_sandi("--home", ws, "keys", "import", bundle, env={"SANDI_EXPORT_PASSPHRASE": "nope"})
    assert r.code == 1 and "wrong passphrase for the key bundle" in r.stderr
    ws_store = open_keystore(Home(ws), FixedPassphrase(PASSPHRASE))
    assert ws_store.refs() == []
    out = json.loads(ok(run_sandi, "--home", ws, "--json", "keys", "import", bundle))
    assert len(out["added"]) == 4 and len(out["certificates"]) == 4
    auth_store = open_keystore(Home(issued), FixedPassphrase(PASSPHRASE))
    assert ws_store.refs() == sorted(r for r in auth_store.refs() if r.startswith("DISKOMINFO."))
    again = json.loads(ok(run_sandi, "--home", ws, "--json", "keys", "import", bundle))
    assert again["added"] == [] and len(again["present"]) == 4


def test_bundle_for_other_authority_or_agency_is_refused(run_sandi: RunSandi, issued: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "b.age"
    ok(run_sandi, "--home", issued, "keys", "export", "DISKOMINFO", "--include-private-keys", "-o", bundle)
    other = tmp_path / "other"
    ok(run_sandi, "--home", other, "init", "--agency", "DISKOMINFO", "--root-fingerprint", "cd" * 32)
    r = run_sandi("--home", other, "keys", "import", bundle)
    assert r.code == 4 and "another authority" in r.stderr
    wrong_agency = tmp_path / "wa"
    fp = Home(issued).load_config().root_fingerprint
    assert fp
    ok(run_sandi, "--home", wrong_agency, "init", "--agency", "BAPPEDA", "--root-fingerprint", fp)
    r = run_sandi("--home", wrong_agency, "keys", "import", bundle)
    assert r.code == 2 and "belongs to BAPPEDA" in r.stderr


@pytest.mark.skipif(shutil.which("age") is None, reason="age not installed")
def test_age_identity_exports_open_with_age(run_sandi: RunSandi, issued: Path, tmp_path: Path) -> None:
    pub = tmp_path / "pub"
    ok(run_sandi, "--home", issued, "keys", "export", "DISKOMINFO", "--public", "-o", pub)
    recipient = (pub / "DISKOMINFO.age.txt").read_text().strip()
    msg = tmp_path / "msg.age"
    subprocess.run(["age", "-r", recipient, "-o", str(msg)], input=b"rahasia", check=True)
    # the loudly named plain form: `age -d -i` uses it directly, and the CLI warns
    plain = tmp_path / "plain.txt"
    r = run_sandi("--home", issued, "keys", "export", "DISKOMINFO", "--unencrypted-age-identity", plain)
    assert r.code == 0 and "WARNING" in r.stderr and "UNENCRYPTED" in r.stderr
    assert stat.S_IMODE(plain.stat().st_mode) == 0o600
    out = subprocess.run(["age", "-d", "-i", str(plain), str(msg)], capture_output=True, check=True)
    assert out.stdout == b"rahasia"
    # the protected form: an age scrypt file around the identity line (age asks for the passphrase
    # on a terminal; here we open the outer layer with the library and hand the line to age)
    protected = tmp_path / "id.age"
    ok(run_sandi, "--home", issued, "keys", "export", "DISKOMINFO", "--age-identity", protected)
    data = protected.read_bytes()
    assert data.startswith(b"age-encryption.org/v1\n-> scrypt ") and b"AGE-SECRET-KEY" not in data
    from sandi.keystore.filestore import scrypt_decrypt

    inner = tmp_path / "inner.txt"
    inner.write_bytes(scrypt_decrypt(data, EXPORT_PASSPHRASE.encode(), what="x"))
    inner.chmod(0o600)
    out = subprocess.run(["age", "-d", "-i", str(inner), str(msg)], capture_output=True, check=True)
    assert out.stdout == b"rahasia"
    outer = subprocess.run(["age", "-d", str(protected)], capture_output=True, input=b"", timeout=30)
    assert outer.returncode != 0  # no passphrase, no identity


@pytest.mark.skipif(shutil.which("minisign") is None, reason="minisign not installed")
def test_minisign_secret_key_signs_with_minisign(run_sandi: RunSandi, issued: Path, tmp_path: Path) -> None:
    key = tmp_path / "kominfo.key"
    ok(run_sandi, "--home", issued, "keys", "export", "DISKOMINFO", "--minisign-secret-key", key)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    pub = tmp_path / "pub"
    ok(run_sandi, "--home", issued, "keys", "export", "DISKOMINFO", "--public", "-o", pub)
    doc = tmp_path / "surat.txt"
    doc.write_text("Nomor: 005/123\n")
    subprocess.run(["minisign", "-S", "-s", str(key), "-m", str(doc)], input=EXPORT_PASSPHRASE.encode() + b"\n",
                   check=True, capture_output=True, timeout=60)
    proc = subprocess.run(["minisign", "-V", "-p", str(pub / "DISKOMINFO.minisign.pub"), "-m", str(doc)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc


@pytest.mark.parametrize(
    "args",
    [
        ["--public"],
        ["--include-private-keys"],
        ["--public", "--include-private-keys", "-o", "x"],
        [],
    ],
)
def test_export_usage_errors(run_sandi: RunSandi, issued: Path, args: list[str]) -> None:
    r = run_sandi("--home", issued, "keys", "export", "DISKOMINFO", *args)
    assert r.code == 2, r


def test_exports_are_audited(run_sandi: RunSandi, issued: Path, tmp_path: Path) -> None:
    import sqlite3

    ok(run_sandi, "--home", issued, "keys", "export", "DISKOMINFO", "--include-private-keys", "-o", tmp_path / "b")
    conn = sqlite3.connect(issued / "registry.db")
    rows = conn.execute("SELECT action, details FROM audit_entries WHERE action = 'key.export'").fetchall()
    conn.close()
    assert len(rows) == 1
    details = json.loads(rows[0][1])
    assert details["what"] == "private-bundle" and details["encrypted"] is True
    assert "secret" not in rows[0][1]
