"""RFC 3161 time-stamps: ``sandi keys tsa``, ``POST /timestamp`` on a real loopback server,
tokens carried in sealed documents and detached signatures, checked by sandi and by the
real ``openssl ts -verify``; tampered, misplaced, back-dated and revoked tokens refused."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import have
from tests.server_fixtures import ENV, Served, Site, free_port, start_server, stop_server

QUERY = "application/timestamp-query"


@dataclass
class Stamped:
    served: Served
    tsa_dir: Path
    tsa_serial: str
    sender: Site  # DISKOMINFO, with the server
    receiver: Site  # BAPPEDA, with the server
    offline: Site  # SETDA, whose server URL answers nothing

    def post(self, body: bytes, content_type: str = QUERY) -> tuple[int, str, bytes]:
        request = urllib.request.Request(self.served.base + "/timestamp", data=body,
                                         headers={"Content-Type": content_type}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                return r.status, r.headers["content-type"], r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers["content-type"], exc.read()


@pytest.fixture(scope="module")
def stamped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stamped]:
    folder = tmp_path_factory.mktemp("stamped")
    port = free_port()
    base = f"http://127.0.0.1:{port}/sandi"
    authority = Site(folder / "authority")
    created = json.loads(authority.ok("--json", "init", "--base-url", base).stdout)
    for code in ("DISKOMINFO", "BAPPEDA", "SETDA"):
        authority.ok("agency", "add", code, "--name", f"Instansi {code}")
    tsa_dir = folder / "tsa"
    tsa_dir.mkdir()
    issued = json.loads(authority.ok("--json", "keys", "tsa", "--out", tsa_dir).stdout)
    process = start_server(authority.home, port, "--tsa", str(tsa_dir))
    try:
        served = Served(authority, base, created["root_fingerprint"], folder, process)
        sender = served.workstation("ws-sender", "DISKOMINFO", "--server", base)
        receiver = served.workstation("ws-receiver", "BAPPEDA", "--server", base)
        offline = served.workstation("ws-offline", "SETDA", "--server", f"http://127.0.0.1:{free_port()}/sandi")
        for site, code in ((sender, "DISKOMINFO"), (receiver, "BAPPEDA"), (offline, "SETDA")):
            served.enrol_by_file(site, code)
        for site in (sender, receiver):
            site.ok("directory", "fetch")
        offline.ok("directory", "import", authority.home / "directory.json")
        yield Stamped(served, tsa_dir, issued["serial"], sender, receiver, offline)
    finally:
        stop_server(process)
        if process.stderr is not None:
            process.stderr.close()


def _document(site: Site, name: str, text: str) -> Path:
    doc = site.home.parent / name
    doc.write_text(text)
    return doc


def _comment(signature: Path) -> dict[str, object]:
    lines = signature.read_text().splitlines()
    assert lines[2].startswith("trusted comment: sandi-sign/v1 ")
    value: dict[str, object] = json.loads(lines[2].removeprefix("trusted comment: sandi-sign/v1 "))
    return value


def _root_pem(stamped: Stamped, folder: Path) -> Path:
    from sandi.directory.snapshot import parse_envelope

    snapshot = parse_envelope((stamped.served.authority.home / "directory.json").read_bytes(),
                              stamped.served.fingerprint)
    out = folder / "root.pem"
    out.write_text(snapshot.root_cert_pem)
    return out


def test_the_tsa_key_is_private_and_its_certificate_published(stamped: Stamped) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    key_file = stamped.tsa_dir / "tsa.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert key_file.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    cert = x509.load_pem_x509_certificate((stamped.tsa_dir / "tsa.pem").read_bytes())
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert usage.critical and list(usage.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    shown = json.loads(stamped.receiver.ok("--json", "directory", "show").stdout)
    assert [t["serial"] for t in shown["timestamp_authorities"]] == [stamped.tsa_serial]
    assert f"time-stamp authority {stamped.tsa_serial}" in stamped.receiver.ok("directory", "show").stdout
    from sandi.directory.snapshot import parse_envelope

    snapshot = parse_envelope((stamped.receiver.home / "directory.json").read_bytes(), stamped.served.fingerprint)
    assert [t.serial for t in snapshot.timestamp_authorities] == [stamped.tsa_serial]
    # Issued once: the folder's key is never overwritten.
    again = stamped.served.authority.sandi("keys", "tsa", "--out", stamped.tsa_dir)
    assert again.code == 1 and "exists already" in again.stderr
    journal = stamped.served.authority.ok("--json", "audit", "log", "--action", "tsa.*").stdout
    assert '"tsa.issue"' in journal


def test_a_timestamped_seal_opens_with_its_verified_time(stamped: Stamped) -> None:
    doc = _document(stamped.sender, "surat.txt", "surat dinas bertanda waktu\n")
    sealed = json.loads(stamped.sender.ok("--json", "seal", doc, "--to", "BAPPEDA", "--class", "B").stdout)
    assert sealed["timestamp"]["tsa"] == stamped.tsa_serial
    out = stamped.receiver.home.parent / "masuk"
    opened = json.loads(stamped.receiver.ok("--json", "open", doc.with_name("surat.txt.sandi"),
                                            "--output-dir", out).stdout)
    assert opened["timestamp"] == sealed["timestamp"]
    assert opened["timestamp"]["time"].endswith("+07:00")  # shown in WIB, as other times
    human = stamped.receiver.ok("open", doc.with_name("surat.txt.sandi"), "-o", out / "again.txt")
    assert "Time-stamped:" in human.stdout and "+07:00 (verified" in human.stdout, human.stdout
    human = stamped.receiver.ok("--lang", "id", "open", doc.with_name("surat.txt.sandi"), "-o",
                                out / "lagi.txt")
    assert " WIB" in human.stdout
    inspected = json.loads(stamped.receiver.ok("--json", "inspect", doc.with_name("surat.txt.sandi"),
                                               "--as", "BAPPEDA").stdout)
    assert inspected["verified"]["timestamp"] == sealed["timestamp"]


@pytest.mark.skipif(not have("openssl"), reason="needs openssl")
def test_openssl_accepts_the_tokens(stamped: Stamped, tmp_path: Path) -> None:
    from sandi.documents import Workspace, open_sealed
    from sandi.documents.policygate import DirectoryPolicy
    from sandi.home import Home
    from sandi.keystore.passphrase import FixedPassphrase

    root = _root_pem(stamped, tmp_path)
    tsa = stamped.tsa_dir / "tsa.pem"
    # A detached signature: the token covers SHA-256 of the document (openssl -data).
    doc = _document(stamped.sender, "pengumuman.txt", "pengumuman resmi\n")
    stamped.sender.ok("sign", doc, "--timestamp")
    token = tmp_path / "sign.tsr"
    token.write_bytes(base64.b64decode(str(_comment(doc.with_name("pengumuman.txt.minisig"))["timestamp"])))
    ok = subprocess.run(["openssl", "ts", "-verify", "-data", str(doc), "-in", str(token), "-token_in",
                         "-CAfile", str(root), "-untrusted", str(tsa)], capture_output=True, text=True)
    assert ok.returncode == 0 and "Verification: OK" in ok.stdout, ok.stderr
    other = _document(stamped.sender, "lain.txt", "dokumen lain\n")
    bad = subprocess.run(["openssl", "ts", "-verify", "-data", str(other), "-in", str(token), "-token_in",
                          "-CAfile", str(root), "-untrusted", str(tsa)], capture_output=True, text=True)
    assert bad.returncode != 0
    # A sealed document: SHA-256 over the age header, then the document (openssl -digest).
    doc = _document(stamped.sender, "nota.txt", "nota dinas rahasia\n")
    stamped.sender.ok("seal", doc, "--to", "BAPPEDA", "--class", "R", "--timestamp")
    sealed = doc.with_name("nota.txt.sandi").read_bytes()
    # The binary age header: through the end of the MAC line ("--- ...").
    header = sealed[: sealed.index(b"\n", sealed.index(b"\n--- ") + 1) + 1]
    ws = Workspace.open(Home(stamped.receiver.home), FixedPassphrase(ENV["SANDI_PASSPHRASE"] or ""))
    result = open_sealed(doc.with_name("nota.txt.sandi"), workspace=ws, opener="BAPPEDA",
                         policy=DirectoryPolicy(ws.snapshot), write_document=False)
    assert result.metadata.timestamp is not None
    token.write_bytes(result.metadata.timestamp)
    digest = hashlib.sha256(header + doc.read_bytes()).hexdigest()
    ok = subprocess.run(["openssl", "ts", "-verify", "-digest", digest, "-in", str(token), "-token_in",
                         "-CAfile", str(root), "-untrusted", str(tsa)], capture_output=True, text=True)
    assert ok.returncode == 0 and "Verification: OK" in ok.stdout, ok.stderr


def _resign(stamped: Stamped, doc: Path, token: bytes, *, earlier: timedelta = timedelta(0)) -> Path:
    """A detached signature by DISKOMINFO's real key over ``doc`` carrying ``token``,
    made with the library (sandi's own sign would only embed good tokens)."""
    from sandi.documents import Workspace
    from sandi.documents.metadata import KeyRef, SignMetadata
    from sandi.formats.minisign import Prehasher, sign_digest
    from sandi.home import Home
    from sandi.keystore.passphrase import FixedPassphrase

    ws = Workspace.open(Home(stamped.sender.home), FixedPassphrase(ENV["SANDI_PASSPHRASE"] or ""))
    key, cert = ws.signing_key("DISKOMINFO")
    hasher = Prehasher()
    hasher.update(doc.read_bytes())
    meta = SignMetadata(signer=KeyRef("DISKOMINFO", cert.key_fingerprint, cert.serial),
                        signed_at=ws.now() - earlier, document_name=doc.name, document_size=doc.stat().st_size,
                        timestamp=token)
    out = doc.with_name(doc.name + ".minisig")
    out.write_text(sign_digest(key, hasher.digest(), meta.to_comment()).to_text())
    return out


def test_tampered_misplaced_and_backdated_tokens_are_refused(stamped: Stamped) -> None:
    doc = _document(stamped.sender, "edaran.txt", "surat edaran\n")
    stamped.sender.ok("sign", doc, "--timestamp")
    verified = json.loads(stamped.receiver.ok("--json", "verify", doc).stdout)
    assert verified["timestamp"]["tsa"] == stamped.tsa_serial
    good = base64.b64decode(str(_comment(doc.with_name("edaran.txt.minisig"))["timestamp"]))

    # The same token, signed again by the real key: still fine (the check is not the signature's).
    _resign(stamped, doc, good)
    stamped.receiver.ok("verify", doc)

    # One byte of the TSA's signature changed.
    tampered = bytearray(good)
    tampered[-5] ^= 0x01
    _resign(stamped, doc, bytes(tampered))
    r = stamped.receiver.sandi("verify", doc)
    assert r.code == 4, r
    assert "time-stamp" in r.stderr

    # Garbage where the token goes.
    _resign(stamped, doc, b"\x30\x03\x02\x01\x01")
    r = stamped.receiver.sandi("verify", doc)
    assert r.code == 4, r

    # The token of another document.
    other = _document(stamped.sender, "lain2.txt", "dokumen yang lain\n")
    _resign(stamped, other, good)
    r = stamped.receiver.sandi("verify", other)
    assert r.code == 4, r
    assert "for another document" in r.stderr

    # A fresh token, but a signing time claimed two hours earlier: back-dated (here also
    # before the certificate existed, which is refused first).
    _resign(stamped, doc, good, earlier=timedelta(hours=2))
    r = stamped.receiver.sandi("verify", doc)
    assert r.code == 4, r

    # A claim 20 minutes after the token's time, read by a verifier whose clock is later
    # still: certificate valid at both times, nothing in the future, but 20 minutes apart.
    from datetime import UTC, datetime

    from sandi.documents import Workspace, verify
    from sandi.errors import VerificationError
    from sandi.home import Home
    from sandi.keystore.passphrase import NoPassphrase

    _resign(stamped, doc, good, earlier=timedelta(minutes=-20))
    later = datetime.now(UTC) + timedelta(minutes=30)
    ws = Workspace.open(Home(stamped.receiver.home), NoPassphrase(), clock=lambda: later)
    with pytest.raises(VerificationError, match="back- or post-dated"):
        verify(doc, doc.with_name(doc.name + ".minisig"), workspace=ws)
    _resign(stamped, doc, good, earlier=timedelta(minutes=-10))  # within the tolerance
    assert verify(doc, doc.with_name(doc.name + ".minisig"), workspace=ws).timestamp is not None


def test_malformed_requests_are_refused_without_a_500(stamped: Stamped) -> None:
    from sandi.errors import VerificationError
    from sandi.formats.timestamp import make_query, token_from_reply

    status, kind, body = stamped.post(b"not DER at all")
    assert (status, kind) == (200, "application/timestamp-reply")
    with pytest.raises(VerificationError, match="rejection"):
        token_from_reply(body)
    # A hash the TSA does not accept (SHA-1), and a digest of the wrong length.
    query = bytearray(make_query("sha256", bytes(32), nonce=7))
    for bad in (query.replace(bytes.fromhex("0609608648016503040201"), bytes.fromhex("06052b0e03021a")),
                make_query("sha256", bytes(32), nonce=7)[:-3]):
        status, kind, body = stamped.post(bytes(bad))
        assert status == 200, body
        with pytest.raises(VerificationError, match="rejection"):
            token_from_reply(body)
    status, kind, body = stamped.post(bytes(query), content_type="application/json")
    assert status == 415 and json.loads(body)["error"] == "bad-content-type"
    status, kind, body = stamped.post(b"\x30" * 5000)
    assert status == 413 and json.loads(body)["error"] == "too-large"
    status, _, body = stamped.served.get("/timestamp")
    assert status == 405
    status, _, metrics = stamped.served.get("/metrics")
    assert b'event="timestamp.rejected"' in metrics and b'status="500"' not in metrics


def test_no_server_means_a_warning_or_with_timestamp_an_error(stamped: Stamped) -> None:
    doc = _document(stamped.offline, "laporan.txt", "laporan bulanan\n")
    r = stamped.offline.ok("seal", doc, "--to", "BAPPEDA", "--class", "B")
    assert "no time-stamp" in r.stderr
    opened = json.loads(stamped.receiver.ok("--json", "open", doc.with_name("laporan.txt.sandi"),
                                            "-o", stamped.receiver.home.parent / "laporan-dibuka.txt").stdout)
    assert "timestamp" not in opened
    target = doc.with_name("laporan2.sandi")
    r = stamped.offline.sandi("seal", doc, "--to", "BAPPEDA", "--class", "B", "--timestamp", "-o", target)
    assert r.code == 1, r
    assert "no time-stamp" in r.stderr and "cannot reach the server" in r.stderr
    assert not target.exists()
    assert not any(p.name.startswith(".laporan2") for p in target.parent.iterdir())
    r = stamped.offline.sandi("sign", doc, "--timestamp")
    assert r.code == 1 and not doc.with_name("laporan.txt.minisig").exists()
    # --no-timestamp: not even asked.
    r = stamped.offline.ok("sign", doc, "--no-timestamp")
    assert "time-stamp" not in r.stderr


def test_a_revoked_tsa_certificate_voids_its_tokens(stamped: Stamped) -> None:
    # Last in this module: the TSA stays revoked.
    doc = _document(stamped.sender, "keputusan.txt", "keputusan kepala dinas\n")
    stamped.sender.ok("sign", doc, "--timestamp")
    stamped.receiver.ok("verify", doc)
    stamped.served.authority.ok("keys", "revoke", stamped.tsa_serial, "--reason", "keyCompromise", "--yes")
    crl = stamped.served.authority.ok("--json", "crl").stdout
    assert json.loads(crl)["revoked"] >= 1
    stamped.served.settle()
    stamped.receiver.ok("directory", "fetch")
    r = stamped.receiver.sandi("verify", doc)
    assert r.code == 4, r
    assert "revoked" in r.stderr
    # The server stops issuing (it re-reads the revocation within seconds).
    import time

    from sandi.formats.timestamp import make_query

    deadline = time.monotonic() + 10
    while True:
        status, _, body = stamped.post(make_query("sha256", bytes(32), nonce=1))
        if status == 503 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status == 503 and json.loads(body)["error"] == "tsa-revoked"

