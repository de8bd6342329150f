"""The lifecycle issue -> renew -> rotate -> revoke, through the library, and what is valid when.

Every certificate is checked with the real `openssl verify`, the CRL with `openssl crl -verify`.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sandi.authority.agencies import add_agency
from sandi.authority.crl import publish_crl
from sandi.authority.issuance import Issuer, issue_keys, load_issuer
from sandi.authority.lifecycle import renew_keys, rotate_keys
from sandi.authority.records import CertificateInfo, RevocationInfo, list_certificates
from sandi.authority.revocation import revoke
from sandi.authority.validity import (
    CertStatus,
    is_valid_for_encrypting_to,
    is_valid_for_opening,
    is_valid_for_signing,
    status,
)
from sandi.errors import AlreadyExistsError, CredentialError, NotFoundError
from sandi.home import Home
from sandi.keystore import FixedPassphrase, KeyStore, open_keystore
from sandi.registry import Registry
from tests import test_authority_support as support
from tests.test_authority_support import PASSPHRASE, db_rows

authority = support.authority
fast_env = support.fast_env

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
DAY = timedelta(days=1)
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")


@dataclass
class Ctx:
    home: Home
    registry: Registry
    keystore: KeyStore
    issuer: Issuer


@pytest.fixture
def ctx(authority: Path) -> Ctx:
    home = Home(authority)
    registry = Registry(home.database_url())
    ks = open_keystore(home, FixedPassphrase(PASSPHRASE))
    return Ctx(home, registry, ks, load_issuer(home, ks))


def openssl_verify(root: Path, pem: str, tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text(pem)
    out = subprocess.run(["openssl", "verify", "-CAfile", str(root), str(cert)], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip().endswith(": OK"), out


def by_serial(ctx: Ctx, code: str) -> dict[str, CertificateInfo]:
    return {c.serial: c for c in list_certificates(ctx.registry, code)}


# Steps of one agency's life; after each, which keys (by the step that made them) are
# valid for signing now, encrypting to now, and opening a document sealed right then.
STEPS = [
    # step,     at,       signing valid now, encrypt-to now, opens docs sealed now
    ("issue",   T0,       {"issue"},          {"issue"},        {"issue"}),
    ("renew",   T0 + 10 * DAY, {"issue", "renew"}, {"renew"},   {"issue", "renew"}),
    # retiring stops new seals to the old key, not the opening of what a sender with an
    # older directory still sealed to it
    ("rotate",  T0 + 20 * DAY, {"issue", "renew", "rotate"}, {"rotate"}, {"issue", "renew", "rotate"}),
    ("revoke",  T0 + 30 * DAY, set(), set(), set()),
]


@needs_openssl
def test_lifecycle_table(ctx: Ctx, tmp_path: Path) -> None:
    add_agency(ctx.registry, "BAPPEDA", "Badan Perencanaan Pembangunan Daerah", now=T0 - DAY)
    made_by: dict[str, str] = {}  # serial -> step
    root_pem = ctx.home.path / "root.pem"
    for step, at, signing_ok, encrypt_ok, open_ok in STEPS:
        if step == "issue":
            result = issue_keys(ctx.registry, ctx.keystore, ctx.issuer, "BAPPEDA", now=at)
        elif step == "renew":
            result = renew_keys(ctx.registry, ctx.issuer, "BAPPEDA", now=at)
        elif step == "rotate":
            result = rotate_keys(ctx.registry, ctx.keystore, ctx.issuer, "BAPPEDA", now=at)
        else:
            revoke(ctx.registry, "BAPPEDA", "cessationOfOperation", now=at)
            result = None
        if result is not None:
            for c in result.certificates:
                made_by[c.serial] = step
                openssl_verify(root_pem, c.cert_pem, tmp_path)
        certs = by_serial(ctx, "BAPPEDA")
        probe = at + timedelta(seconds=1)
        assert {made_by[s] for s, c in certs.items() if c.purpose == "signing" and c.valid_for_signing(probe)} \
            == signing_ok, step
        assert {made_by[s] for s, c in certs.items() if c.valid_for_encrypting_to(probe)} == encrypt_ok, step
        assert {made_by[s] for s, c in certs.items() if c.valid_for_opening(probe)} == open_ok, step
    # After all that, what the history still allows (non-compromise revocation at T0+30d):
    certs = by_serial(ctx, "BAPPEDA")
    signed_early = T0 + DAY
    assert {made_by[s] for s, c in certs.items() if c.valid_for_signing(signed_early)} == {"issue"}
    assert {made_by[s] for s, c in certs.items() if c.valid_for_opening(T0 + 5 * DAY)} == {"issue"}
    assert {made_by[s] for s, c in certs.items() if c.valid_for_opening(T0 + 15 * DAY)} == {"issue", "renew"}
    assert {made_by[s] for s, c in certs.items() if c.valid_for_opening(T0 + 31 * DAY)} == set()
    # The old encryption key is still in the store, for old documents.
    from sandi.keystore import key_ref

    for c in certs.values():
        purpose = "signing" if c.purpose == "signing" else "encryption"
        assert ctx.keystore.contains(key_ref("BAPPEDA", purpose, c.key_fingerprint))


def test_key_compromise_voids_every_signature(ctx: Ctx) -> None:
    add_agency(ctx.registry, "DINKES", "Dinas Kesehatan", now=T0)
    issued = issue_keys(ctx.registry, ctx.keystore, ctx.issuer, "DINKES", now=T0)
    renewed = renew_keys(ctx.registry, ctx.issuer, "DINKES", now=T0 + DAY)
    signing = next(c for c in issued.certificates if c.purpose == "signing")
    # Revoking one certificate for keyCompromise takes every certificate of that key with it.
    done = revoke(ctx.registry, signing.serial, "keyCompromise", now=T0 + 5 * DAY)
    renewed_signing = next(c for c in renewed.certificates if c.purpose == "signing")
    assert {d.serial for d in done} == {signing.serial, renewed_signing.serial}
    certs = by_serial(ctx, "DINKES")
    for serial in (signing.serial, renewed_signing.serial):
        assert not certs[serial].valid_for_signing(T0 + timedelta(hours=1))  # even before the revocation
    # renewing a compromised key is refused: rotate instead
    with pytest.raises(CredentialError, match="revoked") as info:
        renew_keys(ctx.registry, ctx.issuer, "DINKES", now=T0 + 6 * DAY)
    assert "rotate" in info.value.hint
    rotated = rotate_keys(ctx.registry, ctx.keystore, ctx.issuer, "DINKES", now=T0 + 6 * DAY)
    assert all(c.valid_for_signing(T0 + 7 * DAY) or c.purpose == "encryption" for c in rotated.certificates)


REV = RevocationInfo
SIGN = CertificateInfo("1", "A", "signing", "f", b"", T0, T0 + 100 * DAY, T0, "current", None, "default", "", None)
ENC = CertificateInfo("2", "A", "encryption", "f", b"", T0, T0 + 100 * DAY, T0, "current", None, "default", "", None)
RETIRED_ENC = CertificateInfo("3", "A", "encryption", "f", b"", T0, T0 + 100 * DAY, T0, "retired", T0 + 50 * DAY,
                              "default", "", None)


@pytest.mark.parametrize(
    ("name", "check", "cert", "revocation", "at", "expected"),
    [
        ("sign inside validity", is_valid_for_signing, SIGN, None, T0 + DAY, True),
        ("sign before validity", is_valid_for_signing, SIGN, None, T0 - DAY, False),
        ("sign after expiry", is_valid_for_signing, SIGN, None, T0 + 101 * DAY, False),
        ("sign before superseded", is_valid_for_signing, SIGN, REV("superseded", T0 + 10 * DAY, "x"), T0 + DAY, True),
        ("sign after superseded", is_valid_for_signing, SIGN, REV("superseded", T0 + 10 * DAY, "x"), T0 + 11 * DAY,
         False),
        ("sign at revocation instant", is_valid_for_signing, SIGN, REV("unspecified", T0 + DAY, "x"), T0 + DAY, False),
        ("compromise voids old signature", is_valid_for_signing, SIGN, REV("keyCompromise", T0 + 10 * DAY, "x"),
         T0 + DAY, False),
        ("encryption cert never signs", is_valid_for_signing, ENC, None, T0 + DAY, False),
        ("encrypt to current", is_valid_for_encrypting_to, ENC, None, T0 + DAY, True),
        ("encrypt to retired", is_valid_for_encrypting_to, RETIRED_ENC, None, T0 + 60 * DAY, False),
        ("encrypt to revoked", is_valid_for_encrypting_to, ENC, REV("affiliationChanged", T0, "x"), T0 + DAY, False),
        ("encrypt to expired", is_valid_for_encrypting_to, ENC, None, T0 + 200 * DAY, False),
        ("open old doc with retired key", is_valid_for_opening, RETIRED_ENC, None, T0 + 10 * DAY, True),
        ("open doc sealed before revocation", is_valid_for_opening, ENC, REV("keyCompromise", T0 + 5 * DAY, "x"),
         T0 + DAY, True),
        ("open doc sealed after revocation", is_valid_for_opening, ENC, REV("superseded", T0 + 5 * DAY, "x"),
         T0 + 6 * DAY, False),
    ],
)
def test_validity_rules(name: str, check: object, cert: CertificateInfo, revocation: RevocationInfo | None,
                        at: datetime, expected: bool) -> None:
    assert callable(check)
    assert check(cert, revocation, at) is expected, name


@pytest.mark.parametrize(
    ("cert", "revocation", "at", "expected"),
    [
        (SIGN, None, T0 + DAY, CertStatus.VALID),
        (SIGN, None, T0 + 80 * DAY, CertStatus.DUE),
        (SIGN, None, T0 - DAY, CertStatus.NOT_YET_VALID),
        (SIGN, None, T0 + 101 * DAY, CertStatus.EXPIRED),
        (RETIRED_ENC, None, T0 + 60 * DAY, CertStatus.RETIRED),
        (SIGN, REV("superseded", T0 + DAY, "x"), T0 + 2 * DAY, CertStatus.REVOKED),
    ],
)
def test_status(cert: CertificateInfo, revocation: RevocationInfo | None, at: datetime, expected: CertStatus) -> None:
    assert status(cert, revocation, at, overlap_days=30) is expected


@pytest.mark.parametrize(
    ("action", "error"),
    [
        ("issue unknown", NotFoundError),
        ("issue twice", AlreadyExistsError),
        ("issue suspended", CredentialError),
        ("renew never issued", NotFoundError),
        ("rotate never issued", NotFoundError),
        ("revoke twice", AlreadyExistsError),
        ("revoke unknown serial", NotFoundError),
    ],
)
def test_refusals_change_nothing(ctx: Ctx, action: str, error: type[Exception]) -> None:
    from sandi.authority.agencies import suspend_agency

    add_agency(ctx.registry, "DONE", "Issued", now=T0)
    add_agency(ctx.registry, "FRESH", "Never issued", now=T0)
    add_agency(ctx.registry, "OFF", "Suspended", now=T0)
    issue_keys(ctx.registry, ctx.keystore, ctx.issuer, "DONE", now=T0)
    add_agency(ctx.registry, "GONE", "Revoked", now=T0)
    issue_keys(ctx.registry, ctx.keystore, ctx.issuer, "GONE", now=T0)
    revoke(ctx.registry, "GONE", "cessationOfOperation", now=T0 + DAY)
    suspend_agency(ctx.registry, "OFF", "test")
    before = db_rows(ctx.home.path)
    refs_before = ctx.keystore.refs()
    calls = {
        "issue unknown": lambda: issue_keys(ctx.registry, ctx.keystore, ctx.issuer, "NOPE"),
        "issue twice": lambda: issue_keys(ctx.registry, ctx.keystore, ctx.issuer, "DONE"),
        "issue suspended": lambda: issue_keys(ctx.registry, ctx.keystore, ctx.issuer, "OFF"),
        "renew never issued": lambda: renew_keys(ctx.registry, ctx.issuer, "FRESH"),
        "rotate never issued": lambda: rotate_keys(ctx.registry, ctx.keystore, ctx.issuer, "FRESH"),
        "revoke twice": lambda: revoke(ctx.registry, "GONE", "superseded"),
        "revoke unknown serial": lambda: revoke(ctx.registry, "ab" * 20, "superseded"),
    }
    with pytest.raises(error):
        calls[action]()
    assert db_rows(ctx.home.path) == before
    assert ctx.keystore.refs() == refs_before  # no orphan key left behind


@needs_openssl
def test_crl_verifies_and_lists_reasons(ctx: Ctx, tmp_path: Path) -> None:
    reasons = ["unspecified", "keyCompromise", "affiliationChanged", "superseded", "cessationOfOperation",
               "privilegeWithdrawn"]
    serials = {}
    for i, reason in enumerate(reasons):
        code = f"AG{i}"
        add_agency(ctx.registry, code, f"Agency {i}")
        res = issue_keys(ctx.registry, ctx.keystore, ctx.issuer, code)
        serial = next(c.serial for c in res.certificates if c.purpose == "signing")
        revoke(ctx.registry, serial, reason)
        serials[serial] = reason
    out = tmp_path / "out.crl"
    info = publish_crl(ctx.registry, ctx.issuer, ctx.home, output=out)
    assert info.revoked == len(reasons)
    assert (ctx.home.path / "crl.pem").read_bytes() == out.read_bytes()
    proc = subprocess.run(["openssl", "crl", "-in", str(out), "-CAfile", str(ctx.home.path / "root.pem"),
                           "-verify", "-noout", "-text"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "verify OK" in proc.stderr + proc.stdout
    text = proc.stdout.replace(":", "").lower()
    for serial in serials:
        assert serial.lstrip("0") in text
    for label in ["key compromise", "affiliation changed", "superseded", "cessation of operation",
                  "privilege withdrawn"]:
        assert label in text
    # a newer CRL has a larger number
    later = publish_crl(ctx.registry, ctx.issuer, ctx.home, now=datetime.now(UTC) + DAY)
    assert later.number > info.number


def test_tampered_crl_fails_openssl(ctx: Ctx, tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from sandi.keystore import SigningKey

    add_agency(ctx.registry, "X", "x")
    issue_keys(ctx.registry, ctx.keystore, ctx.issuer, "X")
    revoke(ctx.registry, "X", "superseded")
    # a CRL with the root's name but signed by another key must not verify
    other = Issuer(SigningKey.generate(), ctx.issuer.cert, ctx.issuer.province)
    from sandi.authority.crl import build_crl

    with ctx.registry.transaction() as session:
        pem, _, _ = build_crl(session, other, now=datetime.now(UTC), next_update_days=1)
    x509.load_pem_x509_crl(pem).public_bytes(serialization.Encoding.PEM)
    bad = tmp_path / "bad.crl"
    bad.write_bytes(pem)
    proc = subprocess.run(["openssl", "crl", "-in", str(bad), "-CAfile", str(ctx.home.path / "root.pem"),
                           "-verify", "-noout"], capture_output=True, text=True)
    assert "verify OK" not in proc.stderr + proc.stdout
