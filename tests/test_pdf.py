"""Signatures inside a PDF (``sandi sign --pdf``, ``sandi verify`` on a PDF): PAdES made
with pyHanko through the key store, checked with sandi (pyHanko's validator against the
directory's root) and, for the reader-compatibility finding of ADR 0014, with poppler's
``pdfsig``."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests import authority_fixtures as fx
from tests.authority_fixtures import AuthorityHome

pytest.importorskip("pyhanko")

authority_template = fx.authority_template
authority = fx.authority


def make_letter(path: Path, text: str = "Surat Edaran 045/1", pages: int = 1) -> Path:
    """A PDF of ``pages`` A4 pages with a line of text, built with pyHanko's writer."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.writer import PdfFileWriter

    writer = PdfFileWriter()
    font = writer.add_object(generic.DictionaryObject({
        generic.NameObject("/Type"): generic.NameObject("/Font"),
        generic.NameObject("/Subtype"): generic.NameObject("/Type1"),
        generic.NameObject("/BaseFont"): generic.NameObject("/Helvetica")}))
    content = generic.StreamObject(stream_data=f"BT /F1 18 Tf 72 760 Td ({text}) Tj ET".encode())
    page = generic.DictionaryObject({
        generic.NameObject("/Type"): generic.NameObject("/Page"),
        generic.NameObject("/MediaBox"): generic.ArrayObject([generic.NumberObject(v) for v in (0, 0, 595, 842)]),
        generic.NameObject("/Resources"): generic.DictionaryObject({generic.NameObject("/Font"): generic.DictionaryObject(
            {generic.NameObject("/F1"): font})}),
        generic.NameObject("/Contents"): writer.add_object(content)})
    writer.insert_page(page)
    for number in range(2, pages + 1):
        more = generic.DictionaryObject({k: v for k, v in page.items() if k != "/Parent"})
        more[generic.NameObject("/Contents")] = writer.add_object(generic.StreamObject(
            stream_data=f"BT /F1 18 Tf 72 760 Td (Halaman {number}) Tj ET".encode()))
        writer.insert_page(more)
    buf = io.BytesIO()
    writer.write(buf)
    path.write_bytes(buf.getvalue())
    return path


@pytest.fixture
def letter(tmp_path: Path) -> Path:
    return make_letter(tmp_path / "surat.pdf")


def test_sign_and_verify_a_pdf(authority: AuthorityHome, letter: Path, tmp_path: Path) -> None:
    r = authority.run("--json", "sign", letter, "--pdf", "--as", "SETDA")
    assert r.code == 0, r
    signed = json.loads(r.stdout)
    out = tmp_path / "surat.signed.pdf"
    assert signed["output"] == str(out) and signed["signer"] == "SETDA" and signed["format"] == "pades"
    assert out.read_bytes().startswith(letter.read_bytes())  # an incremental update
    r = authority.run("--json", "verify", out)
    assert r.code == 0, r
    report = json.loads(r.stdout)
    assert report["verified"] is True and len(report["signatures"]) == 1
    sig = report["signatures"][0]
    assert (sig["signer"], sig["signer_name"], sig["status"], sig["coverage"]) == (
        "SETDA", fx.AGENCIES["SETDA"], "valid", "document")
    assert sig["signed_at"].endswith("+07:00")
    r = authority.run("verify", out)
    assert r.code == 0 and "SETDA" in r.stdout, r


def sign(authority: AuthorityHome, src: Path, code: str, out: Path) -> Path:
    r = authority.run("sign", src, "--pdf", "--as", code, "-o", out)
    assert r.code == 0, r
    return out


def test_a_changed_byte_is_refused(authority: AuthorityHome, letter: Path, tmp_path: Path) -> None:
    signed = sign(authority, letter, "SETDA", tmp_path / "signed.pdf")
    data = signed.read_bytes()
    assert data.count(b"045/1") == 1
    signed.write_bytes(data.replace(b"045/1", b"045/9"))
    r = authority.run("--json", "verify", signed)
    assert r.code == 4, r
    report = json.loads(r.stdout)
    assert report["verified"] is False and report["signatures"][0]["status"] == "invalid"
    assert "does not match the document" in r.stderr


def test_an_incremental_update_changing_the_page_is_refused(authority: AuthorityHome, letter: Path,
                                                            tmp_path: Path) -> None:
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    signed = sign(authority, letter, "SETDA", tmp_path / "signed.pdf")
    writer = IncrementalPdfFileWriter(io.BytesIO(signed.read_bytes()))
    page_ref = writer.root["/Pages"]["/Kids"][0]
    page = page_ref.get_object()
    forged = generic.StreamObject(stream_data=b"BT /F1 18 Tf 72 760 Td (Surat Edaran 999/9) Tj ET")
    page[generic.NameObject("/Contents")] = writer.add_object(forged)
    writer.update_container(page)
    out = io.BytesIO()
    writer.write(out)
    (tmp_path / "forged.pdf").write_bytes(out.getvalue())
    r = authority.run("--json", "verify", tmp_path / "forged.pdf")
    assert r.code == 4, r
    assert json.loads(r.stdout)["signatures"][0]["status"] == "invalid"
    assert "changed after it was signed" in r.stderr


def test_two_signatures_in_sequence_both_verify(authority: AuthorityHome, letter: Path, tmp_path: Path) -> None:
    first = sign(authority, letter, "DISKOMINFO", tmp_path / "paraf.pdf")
    second = sign(authority, first, "SETDA", tmp_path / "ttd.pdf")
    assert second.read_bytes().startswith(first.read_bytes())
    r = authority.run("--json", "verify", second)
    assert r.code == 0, r
    sigs = json.loads(r.stdout)["signatures"]
    assert [(s["signer"], s["status"], s["coverage"]) for s in sigs] == [
        ("DISKOMINFO", "valid", "revision"), ("SETDA", "valid", "document")]


def test_not_a_pdf_and_unsigned_pdf(authority: AuthorityHome, letter: Path, tmp_path: Path) -> None:
    r = authority.run("verify", letter)
    assert r.code == 4 and "carries no signature" in r.stderr, r
    text = tmp_path / "surat.txt"
    text.write_bytes(b"not a pdf")
    r = authority.run("sign", text, "--pdf", "--as", "SETDA")
    assert r.code == 4 and "not a PDF file" in r.stderr, r
    assert not (tmp_path / "surat.signed.pdf").exists()


@pytest.mark.skipif(shutil.which("pdfsig") is None or shutil.which("certutil") is None,
                    reason="poppler-utils / libnss3-tools not installed (scripts/install-tools.sh)")
def test_pdfsig_sees_the_signature_but_its_nss_cannot_check_ed25519(authority: AuthorityHome, letter: Path,
                                                                     tmp_path: Path) -> None:
    """The finding behind ADR 0014: Debian 12's poppler/NSS reads the PAdES structure
    but cannot verify an Ed25519 signature nor import the Ed25519 root. When this test
    starts failing, the readers caught up (revisit the ADR). Since part 2, an agency
    without a pdf-signing certificate still signs this way, and sandi says so."""
    r = authority.run("sign", letter, "--pdf", "--as", "SETDA", "-o", tmp_path / "signed.pdf")
    assert r.code == 0 and "PDF viewers (Acrobat, pdfsig) show as not validated" in r.stderr, r
    signed = tmp_path / "signed.pdf"
    nss = tmp_path / "nss"
    nss.mkdir()
    subprocess.run(["certutil", "-N", "-d", f"sql:{nss}", "--empty-password"], check=True)
    out = subprocess.run(["pdfsig", "-nssdir", f"sql:{nss}", str(signed)], capture_output=True, text=True)
    assert "Signature Type: ETSI.CAdES.detached" in out.stdout
    assert "Total document signed" in out.stdout or "Signed Ranges" in out.stdout
    assert "Signature is Valid" not in out.stdout


def test_detached_options_are_refused_with_pdf(authority: AuthorityHome, letter: Path, tmp_path: Path) -> None:
    r = authority.run("sign", letter, "--pdf", "--as", "SETDA", "--class", "B")
    assert r.code == 2 and "detached signatures" in r.stderr, r
    assert not (tmp_path / "surat.signed.pdf").exists()


def test_without_pyhanko_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from sandi.documents.pdf import require_pyhanko
    from sandi.errors import ConfigError

    monkeypatch.setitem(sys.modules, "pyhanko", None)
    with pytest.raises(ConfigError) as caught:
        require_pyhanko()
    assert "pyHanko" in caught.value.message and "sandi[pdf]" in str(caught.value.hint)


@pytest.mark.skipif(shutil.which("pdftoppm") is None or shutil.which("zbarimg") is None,
                    reason="poppler-utils / zbar-tools not installed (scripts/install-tools.sh)")
def test_the_stamp_renders_with_a_qr_code_naming_the_signature(authority: AuthorityHome, letter: Path,
                                                                tmp_path: Path) -> None:
    pytest.importorskip("qrcode")
    r = authority.run("sign", letter, "--pdf", "--stamp", "--as", "SETDA", "-o", tmp_path / "stamped.pdf")
    assert r.code == 0, r
    r = authority.run("--json", "verify", tmp_path / "stamped.pdf")
    assert r.code == 0, r
    (verified,) = json.loads(r.stdout)["signatures"]
    subprocess.run(["pdftoppm", "-png", "-r", "200", "-singlefile", str(tmp_path / "stamped.pdf"),
                    str(tmp_path / "page")], check=True)
    decoded = subprocess.run(["zbarimg", "-q", "--raw", str(tmp_path / "page.png")], capture_output=True,
                             text=True, check=True).stdout.strip()
    # the QR code names exactly the signature sandi verified
    assert decoded == f"sandi-pdf/v1 signer=SETDA serial={verified['certificate']} key={verified['key']}"
    ws = authority.workspace()
    assert verified["certificate"] == next(c.serial for a in ws.snapshot.agencies if a.code == "SETDA"
                                           for c in a.certificates if c.purpose == "signing")
    text = subprocess.run(["pdftotext", str(tmp_path / "stamped.pdf"), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "Signed electronically by SETDA" in text and "Sekretariat Daerah" in text


@pytest.mark.parametrize(("reason", "verifies"), [("superseded", True), ("keyCompromise", False)])
def test_revocation_after_signing(authority: AuthorityHome, letter: Path, tmp_path: Path, reason: str,
                                  verifies: bool) -> None:
    """A certificate revoked after the signature leaves it valid, unless the key was
    compromised (sandi's rule for every signature); the embedded CRL predates the
    revocation, so the directory's newer CRL is what counts."""
    import time

    signed = sign(authority, letter, "SETDA", tmp_path / "signed.pdf")
    time.sleep(1.1)  # revoked in a later second than the signing time
    listed = json.loads(authority.ok("keys", "list", "SETDA", "--json").stdout)
    (serial,) = [c["serial"] for c in listed if c["purpose"] == "signing" and c["state"] == "current"]
    authority.ok("keys", "revoke", "--yes", serial, "--reason", reason)
    r = authority.run("--json", "verify", signed)
    assert r.code == (0 if verifies else 4), r
    assert json.loads(r.stdout)["signatures"][0]["status"] == ("valid" if verifies else "invalid")
    if not verifies:
        assert "key compromise" in r.stderr
    r = authority.run("sign", letter, "--pdf", "--as", "SETDA", "-o", tmp_path / "after.pdf")
    assert r.code == 1 and not (tmp_path / "after.pdf").exists(), r


# -- P-256 signatures under the PDF root (ADR 0014, decision 3) ---------------------------------

needs_pdfsig = pytest.mark.skipif(shutil.which("pdfsig") is None or shutil.which("certutil") is None,
                                  reason="poppler-utils / libnss3-tools not installed (scripts/install-tools.sh)")


@pytest.fixture
def pdf_authority(authority: AuthorityHome) -> AuthorityHome:
    """The authority with a PDF root, and pdf-signing keys for SETDA and DISKOMINFO."""
    authority.ok("pdf-root", "init")
    authority.ok("keys", "issue", "SETDA", "--purpose", "pdf-signing")
    authority.ok("keys", "issue", "DISKOMINFO", "--purpose", "pdf-signing")
    return authority


def nss_with_pdf_root(authority: AuthorityHome, tmp_path: Path) -> Path:
    """An NSS database (as pdfsig reads) trusting the PDF root the directory names.

    Trusted as an S/MIME CA (",C,"): poppler checks a signer for e-mail signing, so an SSL-only
    trust ("C,,") leaves it "Certificate issuer isn't Trusted" (measured: poppler 22.12, NSS 3.87)."""
    nss = tmp_path / "nss"
    nss.mkdir()
    subprocess.run(["certutil", "-N", "-d", f"sql:{nss}", "--empty-password"], check=True)
    authority.ok("pdf-root", "show", "-o", tmp_path / "pdf-root.pem")
    subprocess.run(["certutil", "-A", "-d", f"sql:{nss}", "-n", "Banten PDF Root", "-t", ",C,",
                    "-a", "-i", str(tmp_path / "pdf-root.pem")], check=True)
    return nss


def pdfsig(nss: Path, pdf: Path) -> str:
    return subprocess.run(["pdfsig", "-nssdir", f"sql:{nss}", str(pdf)], capture_output=True,
                          text=True).stdout


@needs_pdfsig
def test_a_pdf_signing_key_makes_a_signature_pdfsig_validates(pdf_authority: AuthorityHome, letter: Path,
                                                              tmp_path: Path) -> None:
    authority = pdf_authority
    r = authority.run("--json", "sign", letter, "--pdf", "--as", "SETDA", "-o", tmp_path / "signed.pdf")
    assert r.code == 0, r
    made = json.loads(r.stdout)
    assert made["algorithm"] == "ecdsa-p256" and made["warnings"] == [] and "warning" not in r.stderr
    nss = nss_with_pdf_root(authority, tmp_path)
    out = pdfsig(nss, tmp_path / "signed.pdf")
    assert "Signature is Valid." in out and "Certificate is Trusted." in out, out
    # "Not total document signed": the B-LT validation data (DSS) is a later revision
    assert "Signing Hash Algorithm: SHA-256" in out and "Signed Ranges" in out, out
    assert fx.AGENCIES["SETDA"] in out  # the viewer names the agency
    r = authority.run("--json", "verify", tmp_path / "signed.pdf")
    assert r.code == 0, r
    (sig,) = json.loads(r.stdout)["signatures"]
    assert (sig["signer"], sig["status"], sig["coverage"]) == ("SETDA", "valid", "document")
    listed = json.loads(authority.ok("keys", "list", "SETDA", "--json").stdout)
    assert sig["certificate"] == next(c["serial"] for c in listed if c["purpose"] == "pdf-signing")

    # a changed byte: both refuse
    data = (tmp_path / "signed.pdf").read_bytes()
    assert data.count(b"045/1") == 1
    (tmp_path / "tampered.pdf").write_bytes(data.replace(b"045/1", b"045/9"))
    out = pdfsig(nss, tmp_path / "tampered.pdf")
    assert "Signature is Valid." not in out and "Digest Mismatch" in out, out
    r = authority.run("--json", "verify", tmp_path / "tampered.pdf")
    assert r.code == 4 and json.loads(r.stdout)["signatures"][0]["status"] == "invalid", r

    # without the PDF root in NSS the signature is intact but its signer unknown
    bare = tmp_path / "bare"
    bare.mkdir()
    subprocess.run(["certutil", "-N", "-d", f"sql:{bare}", "--empty-password"], check=True)
    out = pdfsig(bare, tmp_path / "signed.pdf")
    assert "Signature is Valid." in out and "Certificate is Trusted." not in out, out


@needs_pdfsig
def test_paraf_then_head_both_valid_for_pdfsig_and_sandi(pdf_authority: AuthorityHome, letter: Path,
                                                         tmp_path: Path) -> None:
    authority = pdf_authority
    first = sign(authority, letter, "DISKOMINFO", tmp_path / "paraf.pdf")
    second = sign(authority, first, "SETDA", tmp_path / "ttd.pdf")
    assert second.read_bytes().startswith(first.read_bytes())
    out = pdfsig(nss_with_pdf_root(authority, tmp_path), second)
    assert out.count("Signature is Valid.") == 2 and out.count("Certificate is Trusted.") == 2, out
    r = authority.run("--json", "verify", second)
    assert r.code == 0, r
    assert [(s["signer"], s["status"], s["coverage"]) for s in json.loads(r.stdout)["signatures"]] == [
        ("DISKOMINFO", "valid", "revision"), ("SETDA", "valid", "document")]


def test_a_signature_after_the_pdf_certificate_was_revoked_is_refused(pdf_authority: AuthorityHome,
                                                                       letter: Path, tmp_path: Path) -> None:
    """sandi's rule for every signature: made after the revocation -> refused; made
    before (and not a key compromise) -> still valid. A home that still has the old
    directory can sign after the revocation; the verifier with the new one refuses."""
    import time

    from sandi.documents.pdf import sign_pdf

    authority = pdf_authority
    before = sign(authority, letter, "SETDA", tmp_path / "before.pdf")
    stale = authority.workspace()  # the directory as it was before the revocation
    time.sleep(1.1)
    listed = json.loads(authority.ok("keys", "list", "SETDA", "--json").stdout)
    (serial,) = [c["serial"] for c in listed if c["purpose"] == "pdf-signing"]
    authority.ok("keys", "revoke", "--yes", serial, "--reason", "superseded")
    time.sleep(1.1)
    sign_pdf(letter, tmp_path / "after.pdf", workspace=stale, signer_code="SETDA")
    r = authority.run("--json", "verify", tmp_path / "after.pdf")
    assert r.code == 4, r
    assert json.loads(r.stdout)["signatures"][0]["status"] == "invalid"
    assert "revoked" in r.stderr
    r = authority.run("--json", "verify", before)
    assert r.code == 0, r
    # the home with the current directory refuses to sign with it, and does not fall back
    r = authority.run("sign", letter, "--pdf", "--as", "SETDA", "-o", tmp_path / "refused.pdf")
    assert r.code == 1 and "revoked or expired" in r.stderr and not (tmp_path / "refused.pdf").exists(), r


def test_without_a_pdf_signing_key_the_ed25519_key_signs_with_a_warning(pdf_authority: AuthorityHome,
                                                                        letter: Path, tmp_path: Path) -> None:
    r = pdf_authority.run("--json", "sign", letter, "--pdf", "--as", "BAPPEDA", "-o", tmp_path / "s.pdf")
    assert r.code == 0, r
    assert json.loads(r.stdout)["algorithm"] == "ed25519"
    assert "no PDF signing certificate" in r.stderr and "--purpose pdf-signing" in r.stderr
    r = pdf_authority.run("verify", tmp_path / "s.pdf")
    assert r.code == 0, r


def test_a_p256_signature_needs_the_pdf_root_of_the_directory(pdf_authority: AuthorityHome, letter: Path,
                                                              tmp_path: Path) -> None:
    """The PDF root is trusted only because the verified directory names it: a workstation
    whose directory has none refuses the signature."""
    from dataclasses import replace

    from sandi.documents.pdf import check_pdf

    signed = sign(pdf_authority, letter, "SETDA", tmp_path / "signed.pdf")
    ws = pdf_authority.workspace()
    ws.snapshot = replace(ws.snapshot, pdf_root_cert_pem=None, pdf_crl_pem=None)
    (report,) = check_pdf(signed, workspace=ws).signatures
    assert not report.valid and report.problem == "the directory names no PDF root"


@needs_pdfsig
def test_a_workstation_signs_with_the_pdf_key_from_its_bundle(pdf_authority: AuthorityHome, letter: Path,
                                                              tmp_path: Path) -> None:
    """Central issuance: the bundle carries the pdf-signing key and certificate (with the PDF
    root that issued it); the workstation signs letters viewers validate."""
    from sandi.home import Home
    from tests.conftest import invoke

    bundle = tmp_path / "setda.keys.age"
    pdf_authority.ok("keys", "export", "SETDA", "--include-private-keys", "-o", bundle)
    ws = tmp_path / "ws"
    fp = Home(pdf_authority.path).load_config().root_fingerprint
    assert fp

    def run(*args: str | Path) -> fx.CliResult:
        return invoke("--home", ws, *args, env=fx.ENV)

    assert run("init", "--agency", "SETDA", "--root-fingerprint", fp).code == 0
    imported = run("--json", "keys", "import", bundle)
    assert imported.code == 0, imported
    assert any(ref.startswith("SETDA.ecdsa-p256.") for ref in json.loads(imported.stdout)["added"])
    assert run("directory", "import", pdf_authority.path / "directory.json").code == 0
    r = run("--json", "sign", letter, "--pdf", "-o", tmp_path / "signed.pdf")
    assert r.code == 0 and json.loads(r.stdout)["algorithm"] == "ecdsa-p256", r
    assert run("verify", tmp_path / "signed.pdf").code == 0
    out = pdfsig(nss_with_pdf_root(pdf_authority, tmp_path), tmp_path / "signed.pdf")
    assert "Signature is Valid." in out and "Certificate is Trusted." in out, out
    # a bundle whose pdf-signing certificate does not come from the PDF root it names is refused
    from dataclasses import replace

    from sandi.authority.bundle import KeyBundle, open_bundle, seal_bundle

    opened = open_bundle(bundle.read_bytes(), fx.EXPORT_PASSPHRASE.encode())
    forged = replace(opened, pdf_root_certificate=opened.root_certificate)
    assert isinstance(forged, KeyBundle)
    (tmp_path / "forged.keys.age").write_bytes(seal_bundle(forged, fx.EXPORT_PASSPHRASE.encode(), 10))
    other = tmp_path / "ws2"
    assert invoke("--home", other, "init", "--agency", "SETDA", "--root-fingerprint", fp, env=fx.ENV).code == 0
    r = invoke("--home", other, "keys", "import", tmp_path / "forged.keys.age", env=fx.ENV)
    assert r.code == 4 and "not issued by the authority" in r.stderr, r


@pytest.mark.skipif(shutil.which("pdftoppm") is None or shutil.which("zbarimg") is None,
                    reason="poppler-utils / zbar-tools not installed (scripts/install-tools.sh)")
def test_the_stamp_goes_where_it_is_told(pdf_authority: AuthorityHome, tmp_path: Path) -> None:
    """--stamp-page / --stamp-position: the QR code is found on that page, in that half of
    it, and nowhere else; a page or a position off the document is refused up front."""
    pytest.importorskip("qrcode")
    letter = make_letter(tmp_path / "dua.pdf", pages=2)
    out = tmp_path / "stamped.pdf"
    pdf_authority.ok("sign", letter, "--pdf", "--stamp", "--stamp-page", "1", "--stamp-position", "bottom-left",
                     "--as", "SETDA", "-o", out)
    assert pdf_authority.run("verify", out).code == 0

    def qr(page: int, left: bool) -> str:
        """The QR code zbarimg finds in the left or right half of the page (200 dpi: 1654 px wide)."""
        png = tmp_path / f"p{page}{'l' if left else 'r'}"
        subprocess.run(["pdftoppm", "-png", "-r", "200", "-f", str(page), "-l", str(page), "-singlefile",
                        "-x", "0" if left else "827", "-y", "0", "-W", "827", "-H", "2339", str(out), str(png)],
                       check=True)
        return subprocess.run(["zbarimg", "-q", "--raw", f"{png}.png"], capture_output=True, text=True).stdout

    assert qr(1, left=True).startswith("sandi-pdf/v1 signer=SETDA ")
    assert qr(1, left=False) == "" and qr(2, left=True) == "" and qr(2, left=False) == ""

    # an explicit point in the upper right quarter of the last page
    pdf_authority.ok("sign", letter, "--pdf", "--stamp", "--stamp-position", "320,700", "--as", "SETDA",
                     "-o", out, "--force")
    assert qr(2, left=False).startswith("sandi-pdf/v1 signer=SETDA ") and qr(1, left=True) == ""

    refused = [
        (("--stamp", "--stamp-page", "3"), "has 2 pages, not page 3"),
        (("--stamp", "--stamp-position", "400,800"), "does not fit on page 2"),
        (("--stamp", "--stamp-position", "kanan-bawah"), "not a stamp position"),
        (("--stamp-page", "1"), "add --stamp"),
    ]
    for options, message in refused:
        r = pdf_authority.run("sign", letter, "--pdf", *options, "--as", "SETDA", "-o", tmp_path / "no.pdf")
        assert r.code == 2 and message in r.stderr and not (tmp_path / "no.pdf").exists(), (options, r)
