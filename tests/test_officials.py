"""Named officials of an agency and their personal signing certificates (issue 22, ADR 0017):
registered at the authority, enrolled from the official's own workstation, published in the
directory, signing PDFs in their own name, revoked with (or apart from) their agency."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from sandi.home import Home
from sandi.keystore import FixedPassphrase, open_keystore
from tests import authority_fixtures as fx
from tests.authority_fixtures import ENV, PASSPHRASE, AuthorityHome
from tests.conftest import CliResult, invoke
from tests.softhsm import Token, softhsm, token  # noqa: F401

pytest.importorskip("pyhanko")

authority_template = fx.authority_template
authority = fx.authority

NIP = "196801011990031001"
NAMA = "Budi Santoso"
JABATAN = "Sekretaris Daerah"


def make_letter(path: Path) -> Path:
    from tests.test_pdf import make_letter as make

    return make(path)


@dataclass(frozen=True)
class Workstation:
    """The official's own workstation home (SETDA), beside the authority."""

    path: Path
    authority: AuthorityHome

    def run(self, *args: str | Path) -> CliResult:
        return invoke("--home", self.path, *args, env=ENV)

    def ok(self, *args: str | Path) -> CliResult:
        r = self.run(*args)
        assert r.code == 0, r
        return r

    def import_directory(self, tmp: Path) -> None:
        out = tmp / f"directory-{time.monotonic_ns()}.json"
        self.authority.ok("directory", "publish", "-o", out)
        self.ok("directory", "import", out)


def enrol_official(authority: AuthorityHome, tmp_path: Path, nip: str = NIP) -> Workstation:
    fp = Home(authority.path).load_config().root_fingerprint
    assert fp
    ws = Workstation(tmp_path / "setda-ws", authority)
    ws.ok("init", "--agency", "SETDA", "--root-fingerprint", fp)
    authority.ok("official", "add", "SETDA", "--nip", nip, "--nama", NAMA, "--jabatan", JABATAN)
    request = tmp_path / f"request-{nip}.json"
    r = ws.ok("--json", "official", "request", "SETDA", "--nip", nip, "-o", request)
    fingerprint = json.loads(r.stdout)["fingerprint"]
    r = authority.ok("official", "certify", "--yes", request, "--expect-fingerprint", fingerprint)
    assert fingerprint in r.stderr  # the confirmation summary shows it
    ws.import_directory(tmp_path)
    return ws


def official_serial(authority: AuthorityHome, nip: str = NIP) -> str:
    listed = json.loads(authority.ok("official", "list", "SETDA", "--json").stdout)
    (official,) = [o for o in listed if o["nip"] == nip]
    (serial,) = [c["serial"] for c in official["certificates"] if c["state"] == "current"]
    return str(serial)


def agency_signing(authority: AuthorityHome, code: str = "SETDA") -> dict[str, str]:
    listed = json.loads(authority.ok("keys", "list", code, "--json").stdout)
    (cert,) = [c for c in listed if c["purpose"] == "signing" and c["state"] == "current" and "official" not in c]
    return dict(cert)


def test_issue_sign_and_verify_as_an_official(authority: AuthorityHome, tmp_path: Path) -> None:
    ws = enrol_official(authority, tmp_path)
    # The key lives in the workstation's store under the NIP, not in the authority's.
    store = open_keystore(Home(ws.path), FixedPassphrase(PASSPHRASE))
    assert [r for r in store.refs() if r.startswith(f"{NIP}.signing.")]
    assert not [r for r in open_keystore(Home(authority.path), FixedPassphrase(PASSPHRASE)).refs()
                if r.startswith(NIP)]
    # The certificate: the official in the subject, an end entity, never past the agency's.
    listed = json.loads(authority.ok("official", "list", "--json").stdout)
    (entry,) = listed
    assert (entry["agency"], entry["nip"], entry["name"], entry["title"], entry["status"]) == (
        "SETDA", NIP, NAMA, JABATAN, "active")
    (cert_json,) = entry["certificates"]
    cert = x509.load_pem_x509_certificate(_directory_pem(authority, NIP).encode())
    subject = cert.subject
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == NAMA
    assert subject.get_attributes_for_oid(NameOID.TITLE)[0].value == JABATAN
    assert subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == NIP
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == fx.AGENCIES["SETDA"]
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "SETDA"
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert cert.not_valid_after_utc.isoformat().replace("+00:00", "Z") <= agency_signing(authority)["not_after"]
    assert cert_json["serial"] == f"{cert.serial_number:040x}"

    letter = make_letter(tmp_path / "surat.pdf")
    r = ws.run("--json", "sign", letter, "--pdf", "--stamp", "--as-official", NIP, "-o", tmp_path / "ttd.pdf")
    assert r.code == 0, r
    signed = json.loads(r.stdout)
    assert signed["official"] == {"nip": NIP, "name": NAMA, "title": JABATAN} and signed["signer"] == "SETDA"
    for home in (ws, authority):
        r = home.run("--json", "verify", tmp_path / "ttd.pdf")
        assert r.code == 0, r
        (sig,) = json.loads(r.stdout)["signatures"]
        assert (sig["signer"], sig["signer_name"], sig["status"]) == ("SETDA", fx.AGENCIES["SETDA"], "valid")
        assert sig["official"] == {"nip": NIP, "name": NAMA, "title": JABATAN}
        assert sig["certificate"] == cert_json["serial"]
    r = ws.ok("verify", tmp_path / "ttd.pdf")
    assert f"{NAMA}, {JABATAN} (NIP {NIP})" in r.stdout
    # The stamp names the official, the agency and the time in WIB.
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(tmp_path / "ttd.pdf"), "-"], capture_output=True, text=True,
                              check=True).stdout
        assert f"{NAMA}, {JABATAN}" in text and fx.AGENCIES["SETDA"] in text and "+07:00" in text
    # Audited on both sides.
    journal = [json.loads(line) for line in Home(ws.path).journal_path.read_text().splitlines()]
    requested = [e for e in journal if e["action"] == "key.request"]
    assert requested and requested[0]["subject"] == f"SETDA/{NIP}"
    assert any(e["action"] == "document.sign" and e["details"].get("official") == NIP for e in journal)
    listed_lines = authority.ok("keys", "list", "SETDA").stdout
    assert f"official {NIP}" in listed_lines
    assert f"official {NIP}" in authority.ok("agency", "show", "SETDA").stdout
    actions = _registry_actions(authority)
    assert {"official.add", "official.certify"} <= set(actions)


def _directory_pem(authority: AuthorityHome, nip: str) -> str:
    from sandi.directory.local import installed_snapshot

    snapshot = installed_snapshot(Home(authority.path))
    agency = snapshot.agency("SETDA")
    assert not [c for c in agency.certificates if c.key_fingerprint in
                {k.key_fingerprint for o in agency.officials for k in o.certificates}]
    (cert,) = agency.official(nip).certificates
    return cert.pem


def _registry_actions(authority: AuthorityHome) -> list[str]:
    with sqlite3.connect(Home(authority.path).registry_path) as db:
        return [row[0] for row in db.execute("SELECT action FROM audit_entries ORDER BY seq")]


def test_a_revoked_personal_certificate_refuses_later_signatures(authority: AuthorityHome,
                                                                  tmp_path: Path) -> None:
    ws = enrol_official(authority, tmp_path)
    letter = make_letter(tmp_path / "surat.pdf")
    before = tmp_path / "before.pdf"
    ws.ok("sign", letter, "--pdf", "--as-official", NIP, "-o", before)
    time.sleep(1.1)  # revoked in a later second than the first signature
    authority.ok("keys", "revoke", "--yes", official_serial(authority), "--reason", "affiliationChanged")
    # A signature the workstation makes with its stale directory, after the revocation:
    after = tmp_path / "after.pdf"
    ws.ok("sign", letter, "--pdf", "--as-official", NIP, "-o", after)
    ws.import_directory(tmp_path)
    r = ws.run("--json", "verify", after)
    assert r.code == 4, r
    assert json.loads(r.stdout)["signatures"][0]["status"] == "invalid"
    assert "revoked before the signing time" in r.stderr
    r = ws.run("--json", "verify", before)  # made before the revocation: still valid
    assert r.code == 0, r
    # With the new directory the workstation refuses to sign at all.
    r = ws.run("sign", letter, "--pdf", "--as-official", NIP, "-o", tmp_path / "again.pdf")
    assert r.code == 1 and "no valid signing certificate" in r.stderr, r


def test_the_certificate_never_outlives_the_agencys(authority: AuthorityHome, tmp_path: Path) -> None:
    """SETDA renewed with the one-day profile: the official's certificate (default profile,
    longer) is cut to the agency's, and the summary says so."""
    fp = Home(authority.path).load_config().root_fingerprint
    assert fp
    authority.ok("keys", "renew", "SETDA", "--profile", "short")
    ws = Workstation(tmp_path / "ws", authority)
    ws.ok("init", "--agency", "SETDA", "--root-fingerprint", fp)
    authority.ok("official", "add", "SETDA", "--nip", NIP, "--nama", NAMA, "--jabatan", JABATAN)
    request = tmp_path / "req.json"
    ws.ok("official", "request", "SETDA", "--nip", NIP, "-o", request)
    r = authority.ok("--json", "official", "certify", "--yes", request)
    assert "never outlives its agency's" in r.stderr
    out = json.loads(r.stdout)
    assert out["clamped"] is True
    (cert,) = out["certificates"]  # no PDF root here: the Ed25519 certificate only
    assert cert["purpose"] == "signing" and cert["not_after"] == agency_signing(authority)["not_after"]


def test_revoking_the_agency_revokes_its_officials(authority: AuthorityHome, tmp_path: Path) -> None:
    ws = enrol_official(authority, tmp_path)
    letter = make_letter(tmp_path / "surat.pdf")
    signed = tmp_path / "signed.pdf"
    ws.ok("sign", letter, "--pdf", "--as-official", NIP, "-o", signed)
    time.sleep(1.1)
    r = authority.ok("--json", "keys", "revoke", "--yes", "SETDA", "--reason", "keyCompromise")
    revoked = json.loads(r.stdout)
    assert f"SETDA official {NIP}: signing certificate" in r.stderr and "(privilegeWithdrawn)" in r.stderr
    personal = official_serial_any(authority)
    # The agency's keys for keyCompromise; the official's key is not known to be compromised.
    assert {d["serial"]: d["reason"] for d in revoked}[personal] == "privilegeWithdrawn"
    ws.import_directory(tmp_path)
    r = ws.run("--json", "verify", signed)  # signed before: still the official's valid signature
    assert r.code == 0, r
    r = ws.run("sign", letter, "--pdf", "--as-official", NIP, "-o", tmp_path / "after.pdf")
    assert r.code == 1, r


def official_serial_any(authority: AuthorityHome, nip: str = NIP) -> str:
    listed = json.loads(authority.ok("official", "list", "SETDA", "--json").stdout)
    (official,) = [o for o in listed if o["nip"] == nip]
    return str(official["certificates"][-1]["serial"])


def test_revoking_the_agencys_signing_certificate_revokes_its_officials(authority: AuthorityHome,
                                                                        tmp_path: Path) -> None:
    enrol_official(authority, tmp_path)
    r = authority.ok("keys", "revoke", "--yes", agency_signing(authority)["serial"], "--reason", "superseded")
    assert f"SETDA official {NIP}: signing certificate" in r.stderr and "(superseded)" in r.stderr
    listed = json.loads(authority.ok("official", "list", "SETDA", "--json").stdout)
    (cert,) = listed[0]["certificates"]
    assert cert["revocation"]["reason"] == "superseded"
    # And no new personal certificate while the agency cannot sign itself.
    ws = Workstation(tmp_path / "setda-ws", authority)
    request = tmp_path / "again.json"
    ws.ok("official", "request", "SETDA", "--nip", NIP, "-o", request)
    r = authority.run("official", "certify", "--yes", request)
    assert r.code == 1 and "no valid signing certificate" in r.stderr, r


def test_retiring_an_official(authority: AuthorityHome, tmp_path: Path) -> None:
    ws = enrol_official(authority, tmp_path)
    letter = make_letter(tmp_path / "surat.pdf")
    signed = tmp_path / "signed.pdf"
    ws.ok("sign", letter, "--pdf", "--as-official", NIP, "-o", signed)
    time.sleep(1.1)
    r = authority.ok("--json", "official", "retire", "--yes", "SETDA", NIP)
    assert json.loads(r.stdout)["revoked"] == [official_serial_any(authority)]
    r = authority.run("official", "retire", "--yes", "SETDA", NIP)
    assert r.code == 1 and "retired already" in r.stderr, r
    ws.import_directory(tmp_path)
    assert ws.run("verify", signed).code == 0
    r = ws.run("sign", letter, "--pdf", "--as-official", NIP, "-o", tmp_path / "after.pdf")
    assert r.code == 1 and "retired" in r.stderr, r
    request = tmp_path / "again.json"
    ws.ok("official", "request", "SETDA", "--nip", NIP, "-o", request)
    r = authority.run("official", "certify", "--yes", request)
    assert r.code == 1 and "retired" in r.stderr, r


@pytest.mark.parametrize(("nip", "why"), [
    ("12345", "18 digits"), ("19680101199003100X", "18 digits"), ("1968010119900310011", "18 digits"),
    ("", "18 digits"), ("196813011990031001", "birth date"), ("196801011990131001", "month of appointment"),
    ("196801011990033001", "gender"), ("196801011990031000", "serial"),
])
def test_a_bad_nip_is_a_clear_usage_error(authority: AuthorityHome, nip: str, why: str) -> None:
    r = authority.run("official", "add", "SETDA", "--nip", nip, "--nama", NAMA, "--jabatan", JABATAN)
    assert r.code == 2, r
    assert "not a valid NIP" in r.stderr and why in r.stderr and "18 digits" in r.stderr
    assert json.loads(authority.ok("official", "list", "--json").stdout) == []


def test_registration_refusals(authority: AuthorityHome) -> None:
    authority.ok("official", "add", "SETDA", "--nip", "1968 0101 1990 03 1 001", "--nama", NAMA,
                 "--jabatan", JABATAN)
    (entry,) = json.loads(authority.ok("official", "list", "--json").stdout)
    assert entry["nip"] == NIP  # written with spaces, kept as 18 digits
    r = authority.run("official", "add", "SETDA", "--nip", NIP, "--nama", NAMA, "--jabatan", JABATAN)
    assert r.code == 1 and "already" in r.stderr, r
    r = authority.run("official", "add", "NOSUCH", "--nip", NIP, "--nama", NAMA, "--jabatan", JABATAN)
    assert r.code == 1 and "unknown agency NOSUCH" in r.stderr, r
    r = authority.run("official", "add", "SETDA", "--nip", "196801011990031002", "--nama", "x" * 65,
                      "--jabatan", JABATAN)
    assert r.code == 2 and "1..64" in r.stderr, r
    # The same person may be registered under a second agency (acting post, Plt.).
    authority.ok("official", "add", "BAPPEDA", "--nip", NIP, "--nama", NAMA, "--jabatan", "Plt. Kepala")


def test_a_tampered_request_is_refused(authority: AuthorityHome, tmp_path: Path) -> None:
    fp = Home(authority.path).load_config().root_fingerprint
    assert fp
    ws = Workstation(tmp_path / "ws", authority)
    ws.ok("init", "--agency", "SETDA", "--root-fingerprint", fp)
    authority.ok("official", "add", "SETDA", "--nip", NIP, "--nama", NAMA, "--jabatan", JABATAN)
    authority.ok("official", "add", "SETDA", "--nip", "197001011995031002", "--nama", "Siti", "--jabatan", "Kabag")
    request = tmp_path / "req.json"
    ws.ok("official", "request", "SETDA", "--nip", NIP, "-o", request)
    body = json.loads(request.read_text())
    body["request"]["nip"] = "197001011995031002"  # someone else's NIP on Budi's key
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(body))
    r = authority.run("official", "certify", "--yes", forged)
    assert r.code == 4 and "signature is not valid" in r.stderr, r
    r = authority.run("official", "certify", "--yes", request, "--expect-fingerprint", "0000 0000")
    assert r.code == 4 and "fingerprint" in r.stderr, r
    assert "official.certify" not in _registry_actions(authority)
    r = ws.run("sign", make_letter(tmp_path / "s.pdf"), "--pdf", "--as-official", "12345")
    assert r.code == 2 and "not a valid NIP" in r.stderr, r


@pytest.mark.skipif(shutil.which("pdfsig") is None or shutil.which("certutil") is None,
                    reason="poppler-utils / libnss3-tools not installed (scripts/install-tools.sh)")
def test_with_a_pdf_root_the_official_signs_with_p256_and_pdfsig_validates(authority: AuthorityHome,
                                                                           tmp_path: Path) -> None:
    """With a PDF root, the request's P-256 key gets a pdf-signing certificate in the
    official's name; pdfsig (with the PDF root in NSS) says valid and trusted and names
    the official; sandi verifies it, and refuses a signature made after its revocation."""
    from tests.test_pdf import nss_with_pdf_root, pdfsig

    authority.ok("pdf-root", "init")
    ws = enrol_official(authority, tmp_path)
    (entry,) = json.loads(authority.ok("official", "list", "--json").stdout)
    by_purpose = {c["purpose"]: c for c in entry["certificates"]}
    assert set(by_purpose) == {"signing", "pdf-signing"}
    assert by_purpose["pdf-signing"]["not_after"] == by_purpose["signing"]["not_after"]
    store = open_keystore(Home(ws.path), FixedPassphrase(PASSPHRASE))
    assert [r for r in store.refs() if r.startswith(f"{NIP}.ecdsa-p256.")]

    letter = make_letter(tmp_path / "surat.pdf")
    before = tmp_path / "before.pdf"
    r = ws.run("--json", "sign", letter, "--pdf", "--stamp", "--as-official", NIP, "-o", before)
    assert r.code == 0, r
    made = json.loads(r.stdout)
    assert (made["algorithm"], made["warnings"], made["certificate"]) == (
        "ecdsa-p256", [], by_purpose["pdf-signing"]["serial"])
    out = pdfsig(nss_with_pdf_root(authority, tmp_path), before)
    assert "Signature is Valid." in out and "Certificate is Trusted." in out, out
    assert NAMA in out  # the viewer names the official
    r = ws.run("--json", "verify", before)
    assert r.code == 0, r
    (sig,) = json.loads(r.stdout)["signatures"]
    assert sig["official"] == {"nip": NIP, "name": NAMA, "title": JABATAN}
    assert sig["certificate"] == by_purpose["pdf-signing"]["serial"]

    time.sleep(1.1)
    r = authority.ok("--json", "official", "revoke", "--yes", "SETDA", NIP, "--reason", "affiliationChanged")
    assert {d["serial"] for d in json.loads(r.stdout)} == {c["serial"] for c in by_purpose.values()}
    after = tmp_path / "after.pdf"
    ws.ok("sign", letter, "--pdf", "--as-official", NIP, "-o", after)  # the stale directory
    ws.import_directory(tmp_path)
    r = ws.run("--json", "verify", after)
    assert r.code == 4 and "revoked before the signing time" in r.stderr, r
    assert ws.run("verify", before).code == 0


def test_a_detached_signature_as_an_official(authority: AuthorityHome, tmp_path: Path) -> None:
    """sandi-sign/v1 names the official (optional 'official' field); verify checks that the
    key is that official's, of that agency, valid at the signing time."""
    from dataclasses import replace

    from sandi.documents import Workspace
    from sandi.documents.metadata import SignMetadata
    from sandi.formats.minisign import MinisignSignature, sign_digest

    ws = enrol_official(authority, tmp_path)
    doc = tmp_path / "pengumuman.txt"
    doc.write_text("Pengumuman 045/2026\n")
    r = ws.run("--json", "sign", doc, "--as-official", NIP, "--nomor", "045/2026")
    assert r.code == 0, r
    assert json.loads(r.stdout)["official"] == NIP
    for home in (ws, authority):
        r = home.run("--json", "verify", doc)
        assert r.code == 0, r
        out = json.loads(r.stdout)
        assert out["signer"] == "SETDA" and out["official"] == {"nip": NIP, "name": NAMA, "title": JABATAN}
    assert f"{NAMA}, {JABATAN} (NIP {NIP})" in ws.ok("verify", doc).stdout

    # The same key naming another official of SETDA: refused.
    authority.ok("official", "add", "SETDA", "--nip", "197001011995031002", "--nama", "Siti", "--jabatan", "Kabag")
    ws.import_directory(tmp_path)
    sig = MinisignSignature.from_text((tmp_path / "pengumuman.txt.minisig").read_bytes())
    meta = replace(SignMetadata.from_comment(sig.trusted_comment), official="197001011995031002")
    workspace = Workspace.open(Home(ws.path), FixedPassphrase(PASSPHRASE))
    key, _cert, _entry = workspace.official_signing_key("SETDA", NIP)
    from sandi.formats.minisign import Prehasher

    hasher = Prehasher()
    hasher.update(doc.read_bytes())
    forged = sign_digest(key, hasher.digest(), meta.to_comment(), "forged")
    (tmp_path / "forged.minisig").write_text(forged.to_text())
    r = ws.run("verify", doc, "--sig", tmp_path / "forged.minisig")
    assert r.code == 4 and "does not belong to the named official" in r.stderr, r

    # Revoked: a signature made after it (with the stale directory) is refused, the first stands.
    time.sleep(1.1)
    authority.ok("official", "revoke", "--yes", "SETDA", NIP, "--reason", "superseded")
    ws.ok("sign", doc, "--as-official", NIP, "-o", tmp_path / "after.minisig")
    ws.import_directory(tmp_path)
    r = ws.run("verify", doc, "--sig", tmp_path / "after.minisig")
    assert r.code == 4 and "revoked before the signing time" in r.stderr, r
    assert ws.run("verify", doc).code == 0


@pytest.mark.interop
def test_moving_the_root_onto_a_token_reissues_an_officials_certificate(authority: AuthorityHome, tmp_path: Path,
                                                                        token: Token) -> None:
    """The root rollover re-issues every current certificate of that root under the new one;
    an official's keeps their subject (nama, jabatan, NIP) and stays theirs; their
    pdf-signing certificate is the PDF root's and stays as it was."""
    from sandi.authority.certs import issued_by, load_pem

    authority.ok("pdf-root", "init")
    enrol_official(authority, tmp_path)
    (entry,) = json.loads(authority.ok("official", "list", "SETDA", "--json").stdout)
    (pdf_serial,) = [c["serial"] for c in entry["certificates"] if c["purpose"] == "pdf-signing"]
    before = next(c["serial"] for c in entry["certificates"] if c["purpose"] == "signing")
    r = authority.run("--pin-file", token.pin_file, "keys", "move-root", "--yes", "--pkcs11-module", token.module,
                      "--pkcs11-token", token.uri)
    assert r.code == 0, r
    (entry,) = json.loads(authority.ok("official", "list", "SETDA", "--json").stdout)
    states = {c["serial"]: c["state"] for c in entry["certificates"]}
    assert states[before] == "retired"
    assert states[pdf_serial] == "current"  # the PDF root's certificate: untouched by this root's move
    (after,) = [s for s, state in states.items() if state == "current" and s != pdf_serial]
    pem = _directory_pem_current(authority, NIP, after)
    cert = load_pem(pem)
    assert cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == NIP
    assert cert.subject.get_attributes_for_oid(NameOID.TITLE)[0].value == JABATAN
    assert issued_by(cert, load_pem((authority.path / "root.pem").read_bytes()))


def _directory_pem_current(authority: AuthorityHome, nip: str, serial: str) -> str:
    from sandi.directory.local import installed_snapshot

    snapshot = installed_snapshot(Home(authority.path))
    (cert,) = [c for c in snapshot.agency("SETDA").official(nip).certificates if c.serial == serial]
    return cert.pem
