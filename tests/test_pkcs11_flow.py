"""The whole product with the root key on a real SoftHSM2 token: ``sandi init
--keystore pkcs11``, agencies, policy, keys, seal, open, revoke, audit verify; the
output checked by openssl and minisign; no root private key on disk; agencies'
signing keys on the token through a key profile; clear errors for a wrong PIN, a
wrong module and a removed token."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CliResult, invoke
from tests.softhsm import Token, init_token, softhsm, token  # noqa: F401
from tests.test_keystore_pkcs11 import token_objects

POLICY = Path(__file__).parents[1] / "policies" / "banten.toml"
TOKEN_PROFILE = """\
format = 1
name = "token"
description = "signing keys on the authority's PKCS#11 token"

[signing]
algorithm = "ed25519"
validity_days = 365
token = true

[encryption]
algorithm = "x25519"
validity_days = 365

[rotation]
overlap_days = 30

[naming]
common_name = "{code} {purpose}"
organizational_unit = "{name}"
"""


class Authority:
    def __init__(self, path: Path, token: Token, work: Path) -> None:
        self.path = path
        self.token = token
        self.work = work
        self.env: dict[str, str | None] = {
            "SANDI_PASSPHRASE": "kunci toko sandi banten rahasia", "SANDI_EXPORT_PASSPHRASE": "ekspor kunci dinas kominfo aman",
            "SANDI_SCRYPT_WORK_FACTOR": "10", "SANDI_PKCS11_PIN": None, "SANDI_PKCS11_MODULE": None,
        }

    def run(self, *args: str | Path, pin_file: Path | None = None,
            env: dict[str, str | None] | None = None) -> CliResult:
        pin = ["--pin-file", pin_file or self.token.pin_file]
        return invoke("--home", self.path, *pin, *args, env={**self.env, **(env or {})})

    def ok(self, *args: str | Path, **kw: object) -> CliResult:
        result = self.run(*args, **kw)  # type: ignore[arg-type]
        assert result.code == 0, result
        return result


def make_authority(tmp_path: Path, token: Token) -> Authority:
    auth = Authority(tmp_path / "authority", token, tmp_path / "work")
    auth.work.mkdir()
    r = auth.ok("init", "--keystore", "pkcs11", "--pkcs11-module", token.module,
                "--pkcs11-token", token.uri)
    assert "generated on the token" in r.stdout
    return auth


def no_internal_error(result: CliResult) -> None:
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr, result


@pytest.mark.interop
def test_demo_flow_with_the_root_on_the_token(tmp_path: Path, token: Token) -> None:
    auth = make_authority(tmp_path, token)
    cfg = (auth.path / "sandi.toml").read_text()
    assert 'keystore = "pkcs11"' in cfg and "pkcs11_token" in cfg and token.pin not in cfg
    auth.ok("agency", "add", "--from-policy", POLICY)
    auth.ok("policy", "apply", POLICY)
    auth.ok("keys", "issue", "DISKOMINFO", "BAPPEDA", "SETDA")
    letter = auth.work / "surat.txt"
    letter.write_text("Nota dinas\n")
    sealed = auth.work / "surat.txt.sandi"
    auth.ok("seal", letter, "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "R", "-o", sealed)
    inbox = auth.work / "masuk"
    inbox.mkdir()
    auth.ok("open", sealed, "--as", "BAPPEDA", "--output-dir", inbox)
    assert (inbox / "surat.txt").read_text() == "Nota dinas\n"

    # The standard tools accept what the token signed: certificates, CRL, a detached signature.
    public = auth.work / "public"
    auth.ok("keys", "export", "DISKOMINFO", "--public", "-o", public)
    root = auth.path / "root.pem"
    for pem in ("DISKOMINFO.signing.pem", "DISKOMINFO.encryption.pem"):
        subprocess.run(["openssl", "verify", "-CAfile", root, public / pem], check=True, capture_output=True)
    auth.ok("sign", letter, "--as", "DISKOMINFO", "-o", auth.work / "surat.txt.minisig")
    subprocess.run(["minisign", "-V", "-p", public / "DISKOMINFO.minisign.pub", "-m", letter,
                    "-x", auth.work / "surat.txt.minisig"], check=True, capture_output=True)

    auth.ok("keys", "revoke", "DISKOMINFO", "--reason", "keyCompromise", "--yes")
    auth.ok("crl", "-o", auth.work / "crl.pem")
    subprocess.run(["openssl", "crl", "-in", auth.work / "crl.pem", "-CAfile", root, "-noout"],
                   check=True, capture_output=True)
    again = auth.work / "masuk2"
    again.mkdir()
    assert auth.run("open", sealed, "--as", "BAPPEDA", "--output-dir", again).code == 4
    auth.ok("audit", "checkpoint")
    verified = auth.ok("audit", "verify")
    assert "signatures checked" in verified.stdout

    # No root private key anywhere on disk: the file store holds agency keys only, the
    # index public data only, and the token object is sensitive and never extractable.
    status = json.loads(auth.ok("--json", "keys", "store").stdout)
    (root_key,) = [k for k in status["keys"] if k["ref"].startswith("root.")]
    assert root_key["location"] == "token" and root_key["uri"].startswith("pkcs11:token=")
    assert status["token"]["capabilities"]["ed25519_sign"] is True
    assert {k["location"] for k in status["keys"] if ".encryption." in k["ref"]} == {"file"}
    assert not list((auth.path / "keys").glob("root.*"))
    attrs = token_objects(token, root_key["ref"])
    assert attrs["EXTRACTABLE"] is False and attrs["SENSITIVE"] is True and attrs["LOCAL"] is True
    assert attrs["VALUE"] == "AttributeSensitive"


def test_agency_signing_keys_on_the_token_through_a_profile(tmp_path: Path, token: Token) -> None:
    auth = make_authority(tmp_path, token)
    (auth.path / "profiles").mkdir()
    (auth.path / "profiles" / "token.toml").write_text(TOKEN_PROFILE)
    auth.ok("agency", "add", "BAPPEDA", "--name", "Badan Perencanaan")
    auth.ok("agency", "add", "SETDA", "--name", "Sekretariat Daerah")
    auth.ok("keys", "issue", "BAPPEDA", "--profile", "token")
    auth.ok("keys", "issue", "SETDA")
    status = json.loads(auth.ok("--json", "keys", "store").stdout)
    where = {k["ref"].split(".")[0] + "." + k["ref"].split(".")[1]: k["location"] for k in status["keys"]}
    assert where == {"root.signing": "token", "BAPPEDA.signing": "token", "BAPPEDA.encryption": "file",
                     "SETDA.signing": "file", "SETDA.encryption": "file"}
    letter = auth.work / "nota.txt"
    letter.write_text("Nota\n")
    sealed = auth.work / "nota.txt.sandi"
    auth.ok("seal", letter, "--as", "BAPPEDA", "--to", "SETDA", "--class", "B", "-o", sealed)
    out = auth.work / "out"
    out.mkdir()
    auth.ok("open", sealed, "--as", "SETDA", "--output-dir", out)
    # A token key is never exported, in any form.
    refused = auth.run("keys", "export", "BAPPEDA", "--minisign-secret-key", auth.work / "b.key")
    assert refused.code == 1 and "never leaves" in refused.stderr, refused
    assert not (auth.work / "b.key").exists()
    # Rotation makes the new signing key on the token as well, the old one stays there.
    auth.ok("keys", "rotate", "BAPPEDA", "--profile", "token", "--yes")
    status = json.loads(auth.ok("--json", "keys", "store").stdout)
    assert [k["location"] for k in status["keys"] if k["ref"].startswith("BAPPEDA.signing.")] == ["token"] * 2


def test_wrong_pin_wrong_module_and_a_removed_token(tmp_path: Path, softhsm: Path) -> None:
    token = init_token(softhsm, tmp_path)
    auth = make_authority(tmp_path, token)
    wrong = tmp_path / "wrong.pin"
    wrong.write_text("999999\n")
    wrong.chmod(0o600)
    r = auth.run("crl", pin_file=wrong)
    no_internal_error(r)
    assert r.code == 1 and "wrong PIN" in r.stderr, r
    r = auth.run("crl", env={"SANDI_PKCS11_MODULE": str(tmp_path / "missing.so")})
    no_internal_error(r)
    assert r.code == 2 and "does not exist" in r.stderr, r
    # Without PIN file, variable or terminal: a clear error, not a hang.
    r = invoke("--home", auth.path, "crl", env=auth.env)
    no_internal_error(r)
    assert r.code == 1 and "PIN" in r.stderr and "--pin-file" in r.stderr, r
    # The token taken away (its SoftHSM2 folder deleted).
    for folder in token.token_dirs():
        shutil.rmtree(folder)
    r = auth.run("crl")
    no_internal_error(r)
    assert r.code == 1 and "token" in r.stderr and ("removed" in r.stderr or "not present" in r.stderr), r


def test_init_on_a_missing_token_leaves_nothing(tmp_path: Path, token: Token) -> None:
    home = tmp_path / "authority"
    r = invoke("--home", home, "--pin-file", token.pin_file, "init", "--keystore", "pkcs11",
               "--pkcs11-module", token.module, "--pkcs11-token", "pkcs11:token=not-plugged-in",
               env={"SANDI_PASSPHRASE": "kunci toko sandi banten rahasia", "SANDI_SCRYPT_WORK_FACTOR": "10"})
    no_internal_error(r)
    assert r.code == 1 and "not present" in r.stderr, r
    assert not home.exists()
    r = invoke("--home", home, "init", "--keystore", "pkcs11", "--pkcs11-token", token.uri,
               env={"SANDI_PASSPHRASE": "kunci toko sandi banten rahasia", "SANDI_PKCS11_MODULE": None})
    assert r.code == 2 and "--pkcs11-module" in r.stderr, r
    assert not home.exists()


def test_pdf_root_and_pdf_signing_keys_on_the_token(tmp_path: Path, token: Token) -> None:
    """ADR 0014 on a PKCS#11 home: the PDF root is generated on the token like the root,
    an agency's pdf-signing key too under a profile with token = true; a PDF signed with
    it verifies."""
    pytest.importorskip("pyhanko")
    from tests.test_pdf import make_letter

    auth = make_authority(tmp_path, token)
    (auth.path / "profiles").mkdir()
    (auth.path / "profiles" / "token.toml").write_text(TOKEN_PROFILE)
    auth.ok("agency", "add", "SETDA", "--name", "Sekretariat Daerah")
    auth.ok("keys", "issue", "SETDA")
    created = json.loads(auth.ok("--json", "pdf-root", "init").stdout)
    assert created["key_location"] == "token"
    auth.ok("keys", "issue", "SETDA", "--purpose", "pdf-signing", "--profile", "token")
    status = json.loads(auth.ok("--json", "keys", "store").stdout)
    assert {k["ref"].rsplit(".", 1)[0]: k["location"] for k in status["keys"]
            if ".ecdsa-p256." in k["ref"]} == {"pdf-root.ecdsa-p256": "token", "SETDA.ecdsa-p256": "token"}
    letter = make_letter(auth.work / "surat.pdf")
    r = auth.ok("--json", "sign", letter, "--pdf", "--as", "SETDA", "-o", auth.work / "signed.pdf")
    assert json.loads(r.stdout)["algorithm"] == "ecdsa-p256"
    auth.ok("verify", auth.work / "signed.pdf")
