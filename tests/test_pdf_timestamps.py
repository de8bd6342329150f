"""Signature time-stamps in signed PDFs (PAdES B-T, issue 22): ``sandi sign --pdf`` asks the
authority's real server (loopback, ``serve --tsa``) for a token over the signature, ``sandi
verify`` checks it (pyHanko and sandi's own rule) and reports its time; poppler's ``pdfsig``
still validates the signature and shows the time-stamp; a token from a TSA the directory does
not publish is refused; a server that does not answer leaves a warning and a B-B signature."""

from __future__ import annotations

import io
import json
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import have
from tests.server_fixtures import ENV, Site
from tests.test_pdf import make_letter
from tests.test_server_timestamps import Stamped, stamped  # noqa: F401 - the module's server and TSA

pytest.importorskip("pyhanko")


@dataclass
class PdfStamped:
    stamped: Stamped
    pdf_root: Path  # PEM, for pdfsig's NSS database


@pytest.fixture(scope="module")
def pdf_stamped(stamped: Stamped) -> PdfStamped:
    """The time-stamping server, with a PDF root and a pdf-signing key for DISKOMINFO
    (enrolled from its workstation, as an agency does)."""
    authority, sender = stamped.served.authority, stamped.sender
    authority.ok("pdf-root", "init")
    request = sender.home.parent / "pdf-request.json"
    response = sender.home.parent / "pdf-response.json"
    sender.ok("keys", "request", "DISKOMINFO", "--purpose", "pdf-signing", "-o", request)
    authority.ok("keys", "certify", "--yes", request, "-o", response)
    sender.ok("keys", "import-certs", response)
    stamped.served.settle()
    for site in (stamped.sender, stamped.receiver):
        site.ok("directory", "fetch")
    pem = sender.home.parent / "pdf-root.pem"
    authority.ok("pdf-root", "show", "-o", pem)
    return PdfStamped(stamped, pem)


def _letter(site: Site, name: str) -> Path:
    return make_letter(site.home.parent / name, text=f"Surat {name}")


def test_a_timestamped_pdf_verifies_with_its_time(pdf_stamped: PdfStamped) -> None:
    s = pdf_stamped.stamped
    letter = _letter(s.sender, "surat-bt.pdf")
    out = letter.with_name("surat-bt.signed.pdf")
    made = json.loads(s.sender.ok("--json", "sign", letter, "--pdf", "--as", "DISKOMINFO").stdout)
    assert made["algorithm"] == "ecdsa-p256" and made["warnings"] == []
    assert made["timestamp"]["tsa"] == s.tsa_serial and made["timestamp"]["time"].endswith("+07:00")

    # B-T: the token is an unsigned attribute of the signature; B-LT: the TSA's certificate
    # is in the DSS next to the signer's chain.
    from pyhanko.pdf_utils.reader import PdfFileReader

    reader = PdfFileReader(io.BytesIO(out.read_bytes()), strict=False)
    (sig,) = reader.embedded_signatures
    attrs = [a["type"].native for a in sig.signer_info["unsigned_attrs"]]
    assert attrs == ["signature_time_stamp_token"]
    tsa_der = _tsa_der(s)
    dss_certs = [c.get_object().data for c in reader.root["/DSS"]["/Certs"]]
    assert tsa_der in dss_certs

    verified = json.loads(s.receiver.ok("--json", "verify", out).stdout)
    (report,) = verified["signatures"]
    assert report["status"] == "valid" and report["signer"] == "DISKOMINFO"
    assert report["timestamp"] == made["timestamp"]
    human = s.receiver.ok("verify", out).stdout
    assert "time-stamped " in human and "+07:00" in human, human
    human = s.receiver.ok("--lang", "id", "verify", out).stdout
    assert " WIB" in human, human


def _tsa_der(s: Stamped) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    return x509.load_pem_x509_certificate((s.tsa_dir / "tsa.pem").read_bytes()).public_bytes(Encoding.DER)


@pytest.mark.skipif(not (have("pdfsig") and have("certutil")), reason="needs poppler-utils and certutil")
def test_pdfsig_validates_the_timestamped_signature(pdf_stamped: PdfStamped, tmp_path: Path) -> None:
    s = pdf_stamped.stamped
    letter = _letter(s.sender, "surat-pdfsig.pdf")
    out = letter.with_name("surat-pdfsig.signed.pdf")
    s.sender.ok("sign", letter, "--pdf", "--as", "DISKOMINFO", "--timestamp")
    nss = tmp_path / "nss"
    nss.mkdir()
    subprocess.run(["certutil", "-N", "-d", f"sql:{nss}", "--empty-password"], check=True)
    subprocess.run(["certutil", "-A", "-d", f"sql:{nss}", "-n", "Banten PDF Root", "-t", ",C,",
                    "-a", "-i", str(pdf_stamped.pdf_root)], check=True)
    shown = subprocess.run(["pdfsig", "-nssdir", f"sql:{nss}", str(out)], capture_output=True, text=True)
    assert "Signature Validation: Signature is Valid." in shown.stdout, shown.stdout
    assert "Certificate Validation: Certificate is Trusted." in shown.stdout, shown.stdout
    # What pdfsig prints of the time: "Signing Time:", the signer's claim (the /M entry).
    # poppler 22.12 (Debian 12) prints nothing of a signature time-stamp token (measured:
    # the same lines with and without one), so the token's time is sandi's to show.
    assert "- Signing Time: " in shown.stdout, shown.stdout
    # the DSS with the TSA's chain is an incremental update after the signature
    assert "Not total document signed" in shown.stdout, shown.stdout


def test_a_token_from_a_tsa_the_directory_does_not_publish_is_refused(pdf_stamped: PdfStamped) -> None:
    """The sender's real key signs; a TSA the directory does not publish (sandi's own token
    code, with another P-256 key and certificate) time-stamps: sandi refuses it (exit 4)."""
    from asn1crypto import tsp
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers
    from pyhanko.sign.timestamps import TimeStamper

    from sandi.documents import Workspace
    from sandi.documents.pdf import _make_store_signer, _pdf_key
    from sandi.formats.timestamp import granted_reply, parse_query
    from sandi.home import Home
    from sandi.keystore.passphrase import FixedPassphrase

    s = pdf_stamped.stamped
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Some Other TSA")])
    now = datetime.now(UTC)
    cert_der = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
                .not_valid_after(now + timedelta(days=30))
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
                .sign(key, hashes.SHA256())).public_bytes(Encoding.DER)

    class ForeignTimeStamper(TimeStamper):
        async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
            reply = granted_reply(parse_query(req.dump()), serial=7, gen_time=datetime.now(UTC),
                                  certificate_der=cert_der,
                                  sign=lambda data: key.sign(data, ec.ECDSA(hashes.SHA256())))
            return tsp.TimeStampResp.load(reply)

    ws = Workspace.open(Home(s.sender.home), FixedPassphrase(ENV["SANDI_PASSPHRASE"] or ""))
    store_key, entry, _warnings = _pdf_key(ws, "DISKOMINFO")
    meta = signers.PdfSignatureMetadata(field_name="foreign-ts", md_algorithm="sha256",
                                        subfilter=fields.SigSeedSubFilter.PADES)
    letter = _letter(s.sender, "surat-asing.pdf")
    signed = signers.PdfSigner(meta, signer=_make_store_signer(store_key, entry.pem, []),
                               timestamper=ForeignTimeStamper()).sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(letter.read_bytes()), strict=False))
    out = letter.with_name("surat-asing.signed.pdf")
    out.write_bytes(signed.getvalue())
    r = s.receiver.sandi("verify", out)
    assert r.code == 4, r
    assert "not signed by this authority's time-stamp service" in r.stderr, r.stderr
    report = json.loads(s.receiver.sandi("--json", "verify", out).stdout)
    assert report["verified"] is False and report["signatures"][0]["timestamp"] is None


def test_server_down_means_a_warning_and_a_bb_signature(pdf_stamped: PdfStamped) -> None:
    s = pdf_stamped.stamped
    letter = _letter(s.offline, "surat-luring.pdf")
    out = letter.with_name("surat-luring.signed.pdf")
    r = s.offline.ok("--json", "sign", letter, "--pdf", "--as", "SETDA")
    made = json.loads(r.stdout)
    assert "timestamp" not in made
    assert "no time-stamp" in r.stderr and "cannot reach the server" in r.stderr, r.stderr
    from pyhanko.pdf_utils.reader import PdfFileReader

    (sig,) = PdfFileReader(io.BytesIO(out.read_bytes()), strict=False).embedded_signatures
    assert sig.signer_info["unsigned_attrs"].native is None  # B-B: no signature time-stamp
    verified = json.loads(s.receiver.ok("--json", "verify", out).stdout)
    assert verified["signatures"][0]["timestamp"] is None
    # --timestamp: an error, and nothing written
    target = letter.with_name("surat-luring2.pdf")
    r = s.offline.sandi("sign", letter, "--pdf", "--as", "SETDA", "--timestamp", "-o", target)
    assert r.code == 1, r
    assert "no time-stamp" in r.stderr
    assert not target.exists()
    assert not any(p.name.startswith(".surat-luring2") for p in target.parent.iterdir())
    # --no-timestamp: not even asked
    r = s.offline.ok("sign", letter, "--pdf", "--as", "SETDA", "--no-timestamp", "-o",
                     letter.with_name("surat-luring3.pdf"))
    assert "time-stamp" not in r.stderr


def test_an_ed25519_pdf_signature_is_timestamped_over_sha512(pdf_stamped: PdfStamped) -> None:
    """An agency without a pdf-signing key signs with Ed25519 (SHA-512 digest): the token's
    imprint is SHA-512 of the signature value, and it verifies the same way."""
    s = pdf_stamped.stamped
    letter = _letter(s.receiver, "nota-ed.pdf")
    out = letter.with_name("nota-ed.signed.pdf")
    made = json.loads(s.receiver.ok("--json", "sign", letter, "--pdf", "--as", "BAPPEDA", "--timestamp").stdout)
    assert made["algorithm"] == "ed25519" and made["timestamp"]["tsa"] == s.tsa_serial
    from pyhanko.pdf_utils.reader import PdfFileReader

    from sandi.documents.pdf import signature_timestamp_token
    from sandi.formats.timestamp import parse_token

    (sig,) = PdfFileReader(io.BytesIO(out.read_bytes()), strict=False).embedded_signatures
    token = signature_timestamp_token(sig)
    assert token is not None and parse_token(token).hash_algorithm == "sha512"
    verified = json.loads(s.sender.ok("--json", "verify", out).stdout)
    assert verified["signatures"][0]["timestamp"] == made["timestamp"]
