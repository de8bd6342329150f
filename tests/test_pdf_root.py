"""The PDF hierarchy of ADR 0014 (decision 3): the ECDSA P-256 key kind in the key stores,
the province's PDF root, agencies' ``pdf-signing`` certificates from it, its CRL and
their publication in the directory (additive: a reader ignores purposes it does not know)."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from sandi.errors import CredentialError, FormatError
from sandi.keystore import FixedPassphrase, MemoryKeyStore
from sandi.keystore.base import StoredKey, secret_fingerprint
from sandi.keystore.filestore import FileKeyStore
from sandi.keystore.keys import P256Key, verify_p256
from tests import authority_fixtures as fx
from tests.authority_fixtures import AuthorityHome

authority_template = fx.authority_template
authority = fx.authority


# -- the key kind ------------------------------------------------------------------------------


def test_a_p256_key_round_trips_through_the_file_store(tmp_path: Path) -> None:
    store = FileKeyStore.create(tmp_path / "keys", FixedPassphrase("kata sandi"), work_factor=10)
    ref, signer = store.new_p256_key("SETDA")
    assert ref.startswith("SETDA.ecdsa-p256.") and len(signer.public_key_bytes()) == 65
    reopened = FileKeyStore(tmp_path / "keys", FixedPassphrase("kata sandi"))
    again = reopened.p256_signer(ref)
    assert again.fingerprint == signer.fingerprint
    signature = again.sign(b"surat")
    verify_p256(signer.public_key_bytes(), signature, b"surat")  # DER ECDSA, SHA-256
    signer.public_key().verify(signature, b"surat", ec.ECDSA(__import__(
        "cryptography.hazmat.primitives.hashes", fromlist=["SHA256"]).SHA256()))
    # kinds stay apart: a P-256 key is not an Ed25519 signing key, and vice versa
    with pytest.raises(CredentialError, match="not a signing key"):
        reopened.get_signing_key(ref)
    ed_ref, _ = reopened.new_signing_key("SETDA")
    with pytest.raises(CredentialError, match="not a ecdsa-p256 key"):
        reopened.p256_signer(ed_ref)
    # nothing secret in the record's repr nor the key's
    assert "secret" not in repr(again) and signer.fingerprint[:16] in repr(again)


def test_p256_secrets_are_checked() -> None:
    key = P256Key.generate()
    secret = key.private_bytes_unsafe()
    assert secret_fingerprint("ecdsa-p256", secret) == key.fingerprint
    with pytest.raises(FormatError):
        P256Key.from_private_bytes_unsafe(bytes(32))  # zero is no private key
    with pytest.raises(FormatError):
        P256Key.from_private_bytes_unsafe(b"\xff" * 32)  # above the group order
    store = MemoryKeyStore()
    store._write(StoredKey("X.ecdsa-p256.0000000000000000", "ecdsa-p256", "0" * 64, secret))
    with pytest.raises(CredentialError, match="does not match its record"):
        store.p256_signer("X.ecdsa-p256.0000000000000000")
    with pytest.raises(TypeError):
        __import__("pickle").dumps(key)


# -- the PDF root and pdf-signing certificates --------------------------------------------------


def directory_body(authority: AuthorityHome) -> dict[str, object]:
    envelope = json.loads((authority.path / "directory.json").read_bytes())
    if envelope["format"] == "sandi-directory/v2":  # the same fields as a v1 body (ADR 0015)
        header = json.loads(base64.b64decode(envelope["header"]))
        members = envelope["members"]
        return {"format": "sandi-directory/v1", "agencies": envelope["agencies"],
                "policies": envelope["policies"], "crl": members.get("crl"),
                **{k: header[k] for k in ("version", "issued_at", "expires_at", "province",
                                          "root_certificate", "audit_checkpoint")},
                **{k: v for k, v in members.items() if k != "crl"}}
    body = json.loads(base64.b64decode(envelope["body"]))
    assert isinstance(body, dict)
    return body


def test_pdf_root_and_pdf_signing_certificates(authority: AuthorityHome, tmp_path: Path) -> None:
    r = authority.run("pdf-root", "show")
    assert r.code == 1 and "names no PDF root" in r.stderr, r
    r = authority.run("keys", "issue", "SETDA", "--purpose", "pdf-signing")
    assert r.code == 1 and "no PDF root yet" in r.stderr and "pdf-root init" in r.stderr, r
    assert "pdf_root_certificate" not in directory_body(authority)  # additive: absent before

    created = json.loads(authority.ok("--json", "pdf-root", "init").stdout)
    assert created["key_ref"].startswith("pdf-root.ecdsa-p256.") and created["key_location"] == "file"
    r = authority.run("pdf-root", "init")
    assert r.code == 1 and "has a PDF root already" in r.stderr, r

    body = directory_body(authority)
    assert body["pdf_root_certificate"] == created["certificate"] and "BEGIN X509 CRL" in str(body["pdf_crl"])
    root = x509.load_pem_x509_certificate(created["certificate"].encode())
    assert isinstance(root.public_key(), ec.EllipticCurvePublicKey)
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert "PDF Root CA" in root.subject.rfc4514_string()

    issued = json.loads(authority.ok("--json", "keys", "issue", "SETDA", "--purpose", "pdf-signing").stdout)
    (cert,) = issued["certificates"]
    assert cert["purpose"] == "pdf-signing" and issued["key_refs"][0].startswith("SETDA.ecdsa-p256.")
    r = authority.run("keys", "issue", "SETDA", "--purpose", "pdf-signing")
    assert r.code == 1 and "has a PDF signing certificate already" in r.stderr, r

    ws = authority.workspace()
    (entry,) = [c for c in ws.snapshot.agency("SETDA").certificates if c.purpose == "pdf-signing"]
    leaf = entry.certificate
    leaf.verify_directly_issued_by(root)  # issued by the PDF root, not the Ed25519 root
    assert ws.snapshot.pdf_root_certificate == root
    from sandi.directory.trust import chains_to_root, current_pdf_signing_cert

    assert chains_to_root(entry, ws.snapshot)
    assert current_pdf_signing_cert(ws.snapshot, "SETDA", ws.now()) == entry
    assert current_pdf_signing_cert(ws.snapshot, "BAPPEDA", ws.now()) is None
    # the Ed25519 keys' lifecycle leaves the PDF key alone
    authority.ok("keys", "rotate", "SETDA", "--yes")
    listed = json.loads(authority.ok("--json", "keys", "list", "SETDA").stdout)
    assert [c["state"] for c in listed if c["purpose"] == "pdf-signing"] == ["current"]

    # openssl agrees: the leaf chains to the PDF root
    (tmp_path / "root.pem").write_text(created["certificate"])
    (tmp_path / "leaf.pem").write_text(entry.pem)
    out = subprocess.run(["openssl", "verify", "-CAfile", str(tmp_path / "root.pem"), str(tmp_path / "leaf.pem")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr

    # revoked: listed in the PDF root's CRL (signed by it), not in the root's
    authority.ok("keys", "revoke", "--yes", cert["serial"], "--reason", "keyCompromise")
    body = directory_body(authority)
    pdf_crl = x509.load_pem_x509_crl(str(body["pdf_crl"]).encode())
    root_crl = x509.load_pem_x509_crl(str(body["crl"]).encode())
    assert pdf_crl.is_signature_valid(root.public_key())
    assert pdf_crl.get_revoked_certificate_by_serial_number(int(cert["serial"], 16)) is not None
    assert root_crl.get_revoked_certificate_by_serial_number(int(cert["serial"], 16)) is None

    shown = json.loads(authority.ok("--json", "pdf-root", "show", "-o", tmp_path / "pdf-root.pem").stdout)
    assert (tmp_path / "pdf-root.pem").read_text() == created["certificate"]
    assert shown["key_fingerprint"] == created["fingerprint"]

    rotated = json.loads(authority.ok("--json", "keys", "rotate", "SETDA", "--yes", "--purpose",
                                      "pdf-signing").stdout)
    assert rotated["certificates"][0]["purpose"] == "pdf-signing"


def test_a_reader_ignores_certificate_purposes_it_does_not_know(authority: AuthorityHome) -> None:
    from sandi.directory.snapshot import DirectorySnapshot

    body = directory_body(authority)
    agencies = body["agencies"]
    assert isinstance(agencies, list)
    known = len(agencies[0]["certificates"])
    agencies[0]["certificates"].append({"purpose": "officer-signing", "serial": "ab", "whatever": [1]})
    body["a_later_field"] = {"anything": True}
    snapshot = DirectorySnapshot.from_body(json.dumps(body).encode())
    assert len(snapshot.agencies[0].certificates) == known
    # a purpose that is not even a string is still malformed
    agencies[0]["certificates"].append({"purpose": 7})
    with pytest.raises(FormatError):
        DirectorySnapshot.from_body(json.dumps(body).encode())


def test_a_pdf_root_that_is_not_p256_is_refused(authority: AuthorityHome) -> None:
    from sandi.directory.snapshot import DirectorySnapshot

    body = directory_body(authority)
    body["pdf_root_certificate"] = body["root_certificate"]  # Ed25519
    with pytest.raises(FormatError, match="P-256"):
        DirectorySnapshot.from_body(json.dumps(body).encode())


def test_an_agency_enrols_its_pdf_signing_key(authority: AuthorityHome, tmp_path: Path) -> None:
    """keys request --purpose pdf-signing on the workstation (the P-256 key stays there),
    keys certify at the authority (PDF root), keys import-certs back: the workstation then
    signs PDFs with it. Tampered, replayed and foreign requests are refused."""
    pytest.importorskip("pyhanko")
    from sandi.home import Home
    from tests.conftest import invoke
    from tests.test_pdf import make_letter

    authority.ok("pdf-root", "init")
    bundle = tmp_path / "setda.keys.age"
    authority.ok("keys", "export", "SETDA", "--include-private-keys", "-o", bundle)
    ws = tmp_path / "ws"
    fp = Home(authority.path).load_config().root_fingerprint
    assert fp

    def run(*args: str | Path) -> fx.CliResult:
        return invoke("--home", ws, *args, env=fx.ENV)

    assert run("init", "--agency", "SETDA", "--root-fingerprint", fp).code == 0
    assert run("keys", "import", bundle).code == 0
    r = run("--json", "keys", "request", "SETDA", "--purpose", "pdf-signing", "-o", tmp_path / "req.json")
    assert r.code == 0, r
    made = json.loads(r.stdout)
    (ref,) = made["key_refs"]
    assert ref.startswith("SETDA.ecdsa-p256.")
    assert not any(k.startswith("SETDA.ecdsa-p256.") for k in authority.workspace().keystore.refs())

    # a changed byte in the request: refused, nothing issued
    data = (tmp_path / "req.json").read_bytes()
    forged = json.loads(data)
    forged["request"]["nonce"] = "0" * 32
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    r = authority.run("keys", "certify", tmp_path / "forged.json", "-o", tmp_path / "x.json", "--yes")
    assert r.code == 4 and "proof of possession" in r.stderr and not (tmp_path / "x.json").exists(), r
    # for another agency than the operator expects: refused
    r = authority.run("keys", "certify", tmp_path / "req.json", "-o", tmp_path / "x.json", "--yes",
                      "--agency", "BAPPEDA")
    assert r.code == 4 and "not BAPPEDA" in r.stderr, r

    r = authority.run("--json", "keys", "certify", tmp_path / "req.json", "-o", tmp_path / "resp.json", "--yes",
                      "--agency", "SETDA", "--expect-fingerprint", made["fingerprint"])
    assert r.code == 0, r
    (cert,) = json.loads(r.stdout)["certificates"]
    assert cert["purpose"] == "pdf-signing" and cert["key_fingerprint"].startswith(ref.split(".")[-1])
    r = authority.run("keys", "certify", tmp_path / "req.json", "-o", tmp_path / "again.json", "--yes")
    assert r.code == 1 and "certified before" in r.stderr, r

    r = run("keys", "import-certs", tmp_path / "resp.json")
    assert r.code == 0 and "pdf-signing" in r.stdout, r
    assert run("directory", "import", authority.path / "directory.json").code == 0
    letter = make_letter(tmp_path / "surat.pdf")
    r = run("--json", "sign", letter, "--pdf", "-o", tmp_path / "signed.pdf")
    assert r.code == 0 and json.loads(r.stdout)["algorithm"] == "ecdsa-p256", r
    assert authority.run("verify", tmp_path / "signed.pdf").code == 0

    # a well-formed request for SETDA signed by another agency's (BAPPEDA's) key: refused
    import base64
    import secrets
    from datetime import UTC, datetime

    from sandi.authority.pdfenrol import CONTEXT, REQUEST_FORMAT, _canonical

    bappeda_key, _cert = authority.workspace().signing_key("BAPPEDA")
    new = P256Key.generate()
    request = {"agency": "SETDA", "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "root_fingerprint": fp, "public_key": base64.b64encode(new.public_key_bytes()).decode(),
               "signing_key": bappeda_key.fingerprint, "nonce": secrets.token_hex(16)}
    payload = CONTEXT + _canonical(request)
    (tmp_path / "foreign.json").write_text(json.dumps({
        "format": REQUEST_FORMAT, "request": request,
        "signature": base64.b64encode(bappeda_key.sign(payload)).decode(),
        "possession": base64.b64encode(new.sign(payload)).decode()}))
    r = authority.run("keys", "certify", tmp_path / "foreign.json", "-o", tmp_path / "y.json", "--yes")
    assert r.code == 4 and "not signed by a current signing key of SETDA" in r.stderr, r
    assert not (tmp_path / "y.json").exists()
