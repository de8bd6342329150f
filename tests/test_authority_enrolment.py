"""Enrolment: the agency makes its keys, the authority certifies a signed request."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from sandi.home import Home
from sandi.keystore import FixedPassphrase, open_keystore
from tests import test_authority_support as support
from tests.conftest import RunSandi
from tests.test_authority_support import PASSPHRASE, db_rows, ok

authority = support.authority
fast_env = support.fast_env


def root_fp(home: Path) -> str:
    fp = Home(home).load_config().root_fingerprint
    assert fp
    return fp


@pytest.fixture
def workstation(run_sandi: RunSandi, authority: Path, tmp_path: Path) -> Path:
    ok(run_sandi, "--home", authority, "agency", "add", "BAPPEDA", "--name", "Badan Perencanaan")
    home = tmp_path / "bappeda"
    ok(run_sandi, "--home", home, "init", "--agency", "BAPPEDA", "--root-fingerprint", root_fp(authority))
    return home


def make_request(run_sandi: RunSandi, workstation: Path, tmp_path: Path, name: str = "req.json",
                 code: str = "BAPPEDA") -> Path:
    req = tmp_path / name
    ok(run_sandi, "--home", workstation, "keys", "request", code, "-o", req)
    return req


def test_enrolment_round_trip(run_sandi: RunSandi, authority: Path, workstation: Path, tmp_path: Path) -> None:
    req = make_request(run_sandi, workstation, tmp_path)
    # The request carries public keys only; the private keys stay in the workstation's store.
    body = json.loads(req.read_text())
    assert set(body["request"]) == {"agency", "created", "root_fingerprint", "signing_public_key",
                                    "encryption_recipient", "nonce"}
    ws_store = open_keystore(Home(workstation), FixedPassphrase(PASSPHRASE))
    assert len(ws_store.refs()) == 2
    for ref in ws_store.refs():
        if ".signing." in ref:
            assert ws_store.get_signing_key(ref).private_bytes_unsafe() not in req.read_bytes()
    certs = tmp_path / "certs.json"
    out = ok(run_sandi, "--home", authority, "keys", "certify", "--yes", req, "-o", certs, "--agency", "BAPPEDA")
    assert "certified BAPPEDA" in out
    # The authority's key store never saw the agency's private keys.
    auth_store = open_keystore(Home(authority), FixedPassphrase(PASSPHRASE))
    assert not [r for r in auth_store.refs() if r.startswith("BAPPEDA.")]
    r = run_sandi("--home", workstation, "keys", "import-certs", certs)
    assert r.code == 0, r
    installed = sorted((workstation / "certs").glob("BAPPEDA.*.pem"))
    assert len(installed) == 2
    if shutil.which("openssl"):
        for pem in installed:
            proc = subprocess.run(["openssl", "verify", "-CAfile", str(authority / "root.pem"), str(pem)],
                                  capture_output=True, text=True)
            assert proc.returncode == 0, proc
    listed = json.loads(ok(run_sandi, "--home", authority, "keys", "list", "BAPPEDA", "--json"))
    assert {c["purpose"] for c in listed} == {"signing", "encryption"}
    # importing again is harmless
    assert run_sandi("--home", workstation, "keys", "import-certs", certs).code == 0


def _tamper_agency(body: dict) -> None:  # type: ignore[type-arg]
    body["request"]["agency"] = "DINKES"


def _tamper_key(body: dict) -> None:  # type: ignore[type-arg]
    from sandi.formats.age import X25519Identity

    body["request"]["encryption_recipient"] = X25519Identity.generate().recipient.to_bech32()


def _tamper_signature(body: dict) -> None:  # type: ignore[type-arg]
    sig = bytearray(base64.b64decode(body["signature"]))
    sig[0] ^= 1
    body["signature"] = base64.b64encode(bytes(sig)).decode()


def _extra_field(body: dict) -> None:  # type: ignore[type-arg]
    body["request"]["admin"] = "yes"


def _wrong_format(body: dict) -> None:  # type: ignore[type-arg]
    body["format"] = "sandi-enrolment-request/v2"


@pytest.mark.parametrize(
    ("name", "tamper", "extra_args", "code", "message"),
    [
        ("other agency named", _tamper_agency, [], 4, "signature is not valid"),
        ("swapped encryption key", _tamper_key, [], 4, "signature is not valid"),
        ("bad signature", _tamper_signature, [], 4, "signature is not valid"),
        ("extra field", _extra_field, [], 4, "not a sandi enrolment request"),
        ("wrong format", _wrong_format, [], 4, "not a sandi enrolment request"),
        ("code mismatch", None, ["--agency", "DINKES"], 4, "is for BAPPEDA, not DINKES"),
    ],
)
def test_bad_requests_change_nothing(run_sandi: RunSandi, authority: Path, workstation: Path, tmp_path: Path,
                                     name: str, tamper: object, extra_args: list[str], code: int,
                                     message: str) -> None:
    ok(run_sandi, "--home", authority, "agency", "add", "DINKES", "--name", "Dinas Kesehatan")
    req = make_request(run_sandi, workstation, tmp_path)
    if callable(tamper):
        body = json.loads(req.read_text())
        tamper(body)
        req.write_text(json.dumps(body))
    before = db_rows(authority)
    out = tmp_path / "certs.json"
    r = run_sandi("--home", authority, "keys", "certify", "--yes", req, "-o", out, *extra_args)
    assert r.code == code, (name, r)
    assert message in r.stderr, (name, r)
    assert db_rows(authority) == before
    assert not out.exists()


def test_foreign_request_is_refused(run_sandi: RunSandi, authority: Path, tmp_path: Path) -> None:
    """A request made for another authority's root."""
    ok(run_sandi, "--home", authority, "agency", "add", "BAPPEDA", "--name", "Bappeda")
    other = tmp_path / "other-ws"
    ok(run_sandi, "--home", other, "init", "--agency", "BAPPEDA", "--root-fingerprint", "ab" * 32)
    req = make_request(run_sandi, other, tmp_path)
    before = db_rows(authority)
    r = run_sandi("--home", authority, "keys", "certify", "--yes", req, "-o", tmp_path / "c.json")
    assert r.code == 4 and "another authority" in r.stderr
    assert db_rows(authority) == before


@pytest.mark.parametrize(
    ("setup", "code", "message"),
    [
        (["agency", "suspend", "--yes", "BAPPEDA", "--reason", "audit"], 1, "suspended"),
        (None, 1, "certified before"),
    ],
)
def test_state_refusals(run_sandi: RunSandi, authority: Path, workstation: Path, tmp_path: Path,
                        setup: list[str] | None, code: int, message: str) -> None:
    req = make_request(run_sandi, workstation, tmp_path)
    if setup:
        ok(run_sandi, "--home", authority, *setup)
    else:
        ok(run_sandi, "--home", authority, "keys", "certify", "--yes", req, "-o", tmp_path / "first.json")
    before = db_rows(authority)
    r = run_sandi("--home", authority, "keys", "certify", "--yes", req, "-o", tmp_path / "second.json")
    assert r.code == code, r
    assert message in r.stderr
    assert db_rows(authority) == before


def test_unknown_agency(run_sandi: RunSandi, authority: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ok(run_sandi, "--home", ws, "init", "--agency", "NOPE", "--root-fingerprint", root_fp(authority))
    req = make_request(run_sandi, ws, tmp_path, code="NOPE")
    before = db_rows(authority)
    r = run_sandi("--home", authority, "keys", "certify", "--yes", req, "-o", tmp_path / "c.json")
    assert r.code == 1 and "unknown agency NOPE" in r.stderr
    assert db_rows(authority) == before


def test_re_enrolment_needs_replace_and_then_retires_old_certificates(
    run_sandi: RunSandi, authority: Path, workstation: Path, tmp_path: Path
) -> None:
    first = make_request(run_sandi, workstation, tmp_path, "r1.json")
    ok(run_sandi, "--home", authority, "keys", "certify", "--yes", first, "-o", tmp_path / "c1.json")
    second = make_request(run_sandi, workstation, tmp_path, "r2.json")
    before = db_rows(authority)
    refused = run_sandi("--home", authority, "keys", "certify", "--yes", second, "-o", tmp_path / "c2.json")
    assert refused.code == 1, refused
    assert "holds current certificates" in refused.stderr and "--replace" in refused.stderr
    assert "--rotate" in refused.stderr
    assert db_rows(authority) == before and not (tmp_path / "c2.json").exists()
    ok(run_sandi, "--home", authority, "keys", "certify", "--yes", "--replace", second,
       "-o", tmp_path / "c2.json")
    listed = json.loads(ok(run_sandi, "--home", authority, "keys", "list", "BAPPEDA", "--json"))
    assert sorted(c["state"] for c in listed) == ["current", "current", "retired", "retired"]


def test_certificates_for_another_home_are_refused(run_sandi: RunSandi, authority: Path, workstation: Path,
                                                   tmp_path: Path) -> None:
    req = make_request(run_sandi, workstation, tmp_path)
    certs = tmp_path / "certs.json"
    ok(run_sandi, "--home", authority, "keys", "certify", "--yes", req, "-o", certs)
    stranger = tmp_path / "stranger"
    ok(run_sandi, "--home", stranger, "init", "--agency", "BAPPEDA", "--root-fingerprint", root_fp(authority))
    r = run_sandi("--home", stranger, "keys", "import-certs", certs)
    assert r.code == 1 and "no private key" in r.stderr
    assert not (stranger / "certs").exists() or not list((stranger / "certs").iterdir())
