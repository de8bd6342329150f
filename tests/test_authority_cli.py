"""`sandi init` (root), `sandi keys ...`, `sandi crl` through the command line."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from sandi.keystore.filestore import forget_unlocked
from tests import test_authority_support as support
from tests.conftest import RunSandi
from tests.test_authority_support import PASSPHRASE, db_rows, ok, tree

authority = support.authority
fast_env = support.fast_env

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")


def test_init_creates_root(run_sandi: RunSandi, fast_env: None, tmp_path: Path) -> None:
    home = tmp_path / "h"
    r = run_sandi("--home", home, "--json", "init", "--province", "Provinsi Banten")
    assert r.code == 0, r
    data = json.loads(r.stdout)
    cert = x509.load_pem_x509_certificate((home / "root.pem").read_bytes())
    assert cert.subject.rfc4514_string() == "CN=Provinsi Banten Root CA,O=Provinsi Banten,C=ID"
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_cert_sign and ku.crl_sign and not ku.digital_signature
    from sandi.home import Home

    assert Home(home).load_config().root_fingerprint == data["root_fingerprint"]
    import sqlite3

    conn = sqlite3.connect(home / "registry.db")
    rows = conn.execute("SELECT action, subject FROM audit_entries ORDER BY seq").fetchall()
    assert rows[0] == ("init", "Provinsi Banten")
    assert {a for a, _ in rows[1:]} <= {"directory.publish"}
    conn.close()


def test_init_passphrase_from_file(run_sandi: RunSandi, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SANDI_SCRYPT_WORK_FACTOR", "10")
    pw = tmp_path / "pw"
    pw.write_text("passphrase from a file\n")
    pw.chmod(0o600)
    home = tmp_path / "h"
    ok(run_sandi, "--home", home, "init", "--passphrase-file", pw)
    forget_unlocked()
    ok(run_sandi, "--home", home, "keys", "list", "--json")
    r = run_sandi("--home", home, "keys", "issue", "NOPE", "--passphrase-file", pw)
    assert r.code == 1 and "unknown agency" in r.stderr
    ok(run_sandi, "--home", home, "crl", "--passphrase-file", pw)  # needs the root key


def test_init_without_passphrase_leaves_no_home(run_sandi: RunSandi, monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    home = tmp_path / "h"
    r = run_sandi("--home", home, "init")
    assert r.code == 1, r
    assert "passphrase is needed" in r.stderr and "SANDI_PASSPHRASE" in r.stderr
    assert not home.exists()


def test_failed_init_in_existing_folder_removes_only_its_own_files(
    run_sandi: RunSandi, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    target = tmp_path / "busy"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    r = run_sandi("--home", target, "init", "--force")  # no passphrase: fails after the home was laid out
    assert r.code == 1
    assert sorted(p.name for p in target.iterdir()) == ["notes.txt"]


def test_failed_root_creation_leaves_no_home(run_sandi: RunSandi, fast_env: None, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import sandi.authority.root as root_mod

    def broken(*a: object, **k: object) -> None:
        raise root_mod.CredentialError("simulated failure")

    monkeypatch.setattr(root_mod, "create_root", broken)
    home = tmp_path / "h"
    r = run_sandi("--home", home, "init")
    assert r.code == 1 and "simulated failure" in r.stderr
    assert not home.exists()


def test_wrong_passphrase(run_sandi: RunSandi, authority: Path) -> None:
    ok(run_sandi, "--home", authority, "agency", "add", "BAPPEDA", "--name", "Bappeda")
    forget_unlocked()
    before = db_rows(authority)
    r = run_sandi("--home", authority, "keys", "issue", "BAPPEDA", env={"SANDI_PASSPHRASE": "not it"})
    assert r.code == 1, r
    assert "error: wrong passphrase for the key store" in r.stderr and "hint:" in r.stderr
    assert db_rows(authority) == before
    assert not list((authority / "keys").glob("BAPPEDA.*"))


@pytest.mark.parametrize(
    ("setup", "args", "code", "message"),
    [
        ([], ["keys", "issue", "NOPE"], 1, "unknown agency NOPE"),
        ([], ["keys", "issue", "bad code"], 2, "not a valid agency code"),
        ([["keys", "issue", "BAPPEDA"]], ["keys", "issue", "BAPPEDA"], 1, "has keys already"),
        ([["agency", "suspend", "--yes", "BAPPEDA", "--reason", "x"]], ["keys", "issue", "BAPPEDA"], 1, "suspended"),
        ([["keys", "issue", "BAPPEDA"], ["agency", "suspend", "--yes", "BAPPEDA", "--reason", "x"]],
         ["keys", "renew", "BAPPEDA"], 1, "suspended"),
        ([], ["keys", "renew", "BAPPEDA"], 1, "no current keys"),
        ([], ["keys", "rotate", "--yes", "BAPPEDA"], 1, "no keys to rotate"),
        ([["keys", "issue", "BAPPEDA"], ["keys", "revoke", "--yes", "BAPPEDA", "--reason", "superseded"]],
         ["keys", "revoke", "--yes", "BAPPEDA", "--reason", "keyCompromise"], 1, "revoked already"),
        ([["keys", "issue", "BAPPEDA"]], ["keys", "revoke", "--yes", "BAPPEDA", "--reason", "certificateHold"], 2, "reason"),
        ([], ["keys", "revoke", "--yes", "00ff00ff", "--reason", "superseded"], 1, "no agency or certificate"),
        ([], ["keys", "issue", "BAPPEDA", "--profile", "missing"], 1, "no key profile"),
        ([], ["keys", "list", "NOPE"], 1, "unknown agency"),
        ([], ["keys", "issue"], 2, "give an agency CODE (or --all)"),
        ([], ["keys", "issue", "BAPPEDA", "--all"], 2, "give agency codes or --all, not both"),
        ([], ["keys", "issue", "NOPE", "BAPPEDA"], 1, "unknown agency NOPE"),
    ],
)
def test_refusals_change_nothing(run_sandi: RunSandi, authority: Path, setup: list[list[str]], args: list[str],
                                 code: int, message: str) -> None:
    ok(run_sandi, "--home", authority, "agency", "add", "BAPPEDA", "--name", "Bappeda")
    for step in setup:
        ok(run_sandi, "--home", authority, *step)
    before = db_rows(authority)
    files = tree(authority)
    r = run_sandi("--home", authority, *args)
    assert r.code == code, r
    assert message in r.stderr, r
    assert db_rows(authority) == before
    assert tree(authority) == files


def _codes_with_keys(run_sandi: RunSandi, home: Path) -> set[str]:
    return {c["agency"] for c in json.loads(ok(run_sandi, "--home", home, "--json", "keys", "list"))}


def test_issue_all_provisions_every_active_agency_without_keys(run_sandi: RunSandi, authority: Path) -> None:
    for code in ("BAPPEDA", "DINSOS", "DISPAR", "SETDA"):
        ok(run_sandi, "--home", authority, "agency", "add", code, "--name", f"Dinas {code}")
    ok(run_sandi, "--home", authority, "keys", "issue", "SETDA")
    ok(run_sandi, "--home", authority, "agency", "suspend", "--yes", "DISPAR", "--reason", "merged")
    setda_keys = sorted(p.name for p in (authority / "keys").glob("SETDA.*"))

    r = run_sandi("--home", authority, "--json", "keys", "issue", "--all")
    assert r.code == 0, r
    issued = json.loads(r.stdout)
    assert [i["agency"] for i in issued] == ["BAPPEDA", "DINSOS"]  # not the suspended one, not SETDA again
    assert all(len(i["certificates"]) == 2 for i in issued)
    assert r.stderr.count("directory version") == 1, r  # one republish for the whole batch
    assert _codes_with_keys(run_sandi, authority) == {"BAPPEDA", "DINSOS", "SETDA"}
    assert sorted(p.name for p in (authority / "keys").glob("SETDA.*")) == setda_keys
    # the published directory carries them all
    from sandi.directory.local import installed_snapshot
    from sandi.home import Home

    snapshot = installed_snapshot(Home(authority))
    assert {a.code for a in snapshot.agencies if a.certificates} == {"BAPPEDA", "DINSOS", "SETDA"}
    # and once everyone has keys, there is nothing to do
    r = run_sandi("--home", authority, "keys", "issue", "--all")
    assert r.code == 0 and "nothing to issue" in r.stdout, r


def test_issue_several_stops_at_the_first_failure(run_sandi: RunSandi, authority: Path) -> None:
    for code in ("BAPPEDA", "DINSOS", "SETDA"):
        ok(run_sandi, "--home", authority, "agency", "add", code, "--name", f"Dinas {code}")
    ok(run_sandi, "--home", authority, "keys", "issue", "DINSOS")
    r = run_sandi("--home", authority, "keys", "issue", "BAPPEDA", "DINSOS", "SETDA")
    assert r.code == 1, r
    assert "error: agency DINSOS has keys already" in r.stderr, r
    assert "issued keys for BAPPEDA before this failure; not attempted: SETDA" in r.stderr, r
    # what was issued before the failure stays issued (each issuance is whole on its own),
    # and is published
    assert _codes_with_keys(run_sandi, authority) == {"BAPPEDA", "DINSOS"}
    from sandi.directory.local import installed_snapshot
    from sandi.home import Home

    assert "directory version" in r.stderr, r
    assert installed_snapshot(Home(authority)).agency("BAPPEDA").certificates
    r = run_sandi("--home", authority, "--json", "keys", "issue", "SETDA")
    assert r.code == 0 and json.loads(r.stdout)["agency"] == "SETDA", r  # one CODE: one object


def test_revoke_one_serial_twice(run_sandi: RunSandi, authority: Path) -> None:
    ok(run_sandi, "--home", authority, "agency", "add", "BAPPEDA", "--name", "Bappeda")
    issued = json.loads(ok(run_sandi, "--home", authority, "--json", "keys", "issue", "BAPPEDA"))
    serial = issued["certificates"][0]["serial"]
    ok(run_sandi, "--home", authority, "keys", "revoke", "--yes", serial, "--reason", "affiliationChanged")
    before = db_rows(authority)
    colon = ":".join(serial[i:i + 2] for i in range(0, len(serial), 2)).upper()  # as openssl prints it
    r = run_sandi("--home", authority, "keys", "revoke", "--yes", colon, "--reason", "superseded")
    assert r.code == 1 and "revoked already (affiliationChanged" in r.stderr
    assert db_rows(authority) == before


@needs_openssl
def test_cli_lifecycle_with_openssl(run_sandi: RunSandi, authority: Path, tmp_path: Path) -> None:
    ok(run_sandi, "--home", authority, "agency", "add", "BAPPEDA", "--name", "Badan Perencanaan Pembangunan Daerah")
    for verb in ("issue", "renew", "rotate"):
        ok(run_sandi, "--home", authority, "keys", verb, "BAPPEDA", *(["--yes"] if verb == "rotate" else []))
    listed = json.loads(ok(run_sandi, "--home", authority, "keys", "list", "BAPPEDA", "--json"))
    assert [c["status"] for c in listed].count("retired") == 4
    assert [c["status"] for c in listed].count("valid") == 2
    for c in listed:
        pem = tmp_path / f"{c['serial']}.pem"
        import sqlite3

        conn = sqlite3.connect(authority / "registry.db")
        (text,) = conn.execute("SELECT cert_pem FROM certificates WHERE serial = ?", (c["serial"],)).fetchone()
        conn.close()
        pem.write_text(text)
        proc = subprocess.run(["openssl", "verify", "-CAfile", str(authority / "root.pem"), str(pem)],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc
    ok(run_sandi, "--home", authority, "keys", "revoke", "--yes", "BAPPEDA", "--reason", "keyCompromise")
    crl = tmp_path / "banten.crl"
    out = ok(run_sandi, "--home", authority, "crl", "-o", crl)
    assert "6 revoked" in out
    proc = subprocess.run(["openssl", "crl", "-in", str(crl), "-CAfile", str(authority / "root.pem"), "-verify",
                           "-noout", "-text"], capture_output=True, text=True)
    assert proc.returncode == 0 and "verify OK" in proc.stderr + proc.stdout
    assert (proc.stdout.count("Key Compromise")) == 6
    listed = json.loads(ok(run_sandi, "--home", authority, "keys", "list", "--json"))
    assert {c["status"] for c in listed} == {"revoked"}
    actions = _actions(authority)
    assert actions == ["init", "agency.add", "key.issue", "key.renew", "key.rotate", "key.revoke", "crl.publish"]


def _actions(home: Path) -> list[str]:
    import sqlite3

    conn = sqlite3.connect(home / "registry.db")
    try:
        rows = conn.execute("SELECT action FROM audit_entries ORDER BY seq")
        return [a for (a,) in rows if a != "directory.publish"]
    finally:
        conn.close()


def test_no_private_key_on_disk_unencrypted(run_sandi: RunSandi, authority: Path, tmp_path: Path) -> None:
    """Scan the whole home for raw secrets and key markers after a busy session."""
    from sandi.home import Home
    from sandi.keystore import FixedPassphrase, open_keystore

    for code in ("BAPPEDA", "DINKES"):
        ok(run_sandi, "--home", authority, "agency", "add", code, "--name", code.title())
        ok(run_sandi, "--home", authority, "keys", "issue", code)
    ok(run_sandi, "--home", authority, "keys", "rotate", "--yes", "DINKES")
    ok(run_sandi, "--home", authority, "crl")
    ok(run_sandi, "--home", authority, "keys", "export", "BAPPEDA", "--include-private-keys",
       "-o", authority / "exports" / "b.keys.age")
    ks = open_keystore(Home(authority), FixedPassphrase(PASSPHRASE))
    secrets: list[bytes] = []
    for ref in ks.refs():
        if ".signing." in ref:
            secrets.append(ks.get_signing_key(ref).private_bytes_unsafe())
        else:
            ident = ks.get_encryption_key(ref)
            secrets.append(ident.private_bytes_unsafe())
            secrets.append(ident.secret_bech32_unsafe().encode())
    assert len(secrets) == 4 + 2 * 3  # root + 3 signing + 3 encryption (x2 encodings)
    import base64

    markers = [b"AGE-SECRET-KEY-", b"PRIVATE KEY", b"age-secret-key-"]
    for path in authority.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        for s in secrets:
            assert s not in data, path
            assert base64.b64encode(s) not in data, path
            assert s.hex().encode() not in data, path
        for m in markers:
            assert m not in data, (path, m)
    keys = authority / "keys"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    for p in keys.glob("*.key.age"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert stat.S_IMODE((keys / "store.age").stat().st_mode) == 0o600
    assert stat.S_IMODE((authority / "exports" / "b.keys.age").stat().st_mode) == 0o600


def test_help_has_examples(run_sandi: RunSandi) -> None:
    for args in (["init"], ["agency"], ["agency", "add"], ["keys"], ["keys", "issue"], ["keys", "request"],
                 ["keys", "certify"], ["keys", "export"], ["keys", "revoke"], ["crl"]):
        r = run_sandi(*args, "--help")
        assert r.code == 0 and ("Example:" in r.stdout or "Examples:" in r.stdout), args
