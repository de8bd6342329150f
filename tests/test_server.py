"""``sandi serve`` on loopback: the directory (ETag, 304, caching), the CRL and the root at
the URLs certificates name, health and metrics, bad input answered with 4xx JSON; and the
workstation side: ``directory fetch`` and the refresh of a directory near its expiry."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from tests.conftest import have
from tests.server_fixtures import Served, Site, served  # noqa: F401


def test_directory_with_etag_and_304(served: Served) -> None:
    published = (served.authority.home / "directory.json").read_bytes()
    status, headers, body = served.get("/directory.json")
    assert status == 200
    assert body == published
    etag = headers["etag"]
    assert etag == '"' + hashlib.sha256(body).hexdigest() + '"'
    assert "no-cache" in headers["cache-control"] and "max-age=" in headers["cache-control"]
    max_age = int(headers["cache-control"].split("max-age=")[1].split(",")[0])
    assert 6 * 86400 < max_age <= 7 * 86400  # to the directory's expiry (a week)

    status, headers, body = served.get("/directory.json", {"If-None-Match": etag})
    assert (status, body) == (304, b"")
    status, _, body = served.get("/directory.json", {"If-None-Match": '"0000"'})
    assert status == 200 and body == published


def test_a_new_publication_is_served(served: Served) -> None:
    _, headers, _ = served.get("/directory.json")
    served.authority.ok("directory", "publish")
    served.settle()
    status, new_headers, body = served.get("/directory.json", {"If-None-Match": headers["etag"]})
    assert status == 200
    assert int(new_headers["x-sandi-directory-version"]) > int(headers["x-sandi-directory-version"])
    assert body == (served.authority.home / "directory.json").read_bytes()


def test_root_and_crl_in_both_encodings(served: Served) -> None:
    status, headers, der = served.get("/root.der")
    assert status == 200 and headers["content-type"] == "application/pkix-cert"
    root = x509.load_der_x509_certificate(der)
    _, _, pem = served.get("/root.pem")
    assert x509.load_pem_x509_certificate(pem) == root
    status, headers, der = served.get("/crl.der")
    assert status == 200 and headers["content-type"] == "application/pkix-crl"
    crl = x509.load_der_x509_crl(der)
    assert crl.is_signature_valid(root.public_key())  # type: ignore[arg-type]
    _, _, pem = served.get("/crl.pem")
    assert x509.load_pem_x509_crl(pem).public_bytes(
        __import__("cryptography.hazmat.primitives.serialization", fromlist=["Encoding"]).Encoding.DER) == der


@pytest.mark.interop
@pytest.mark.skipif(not have("openssl"), reason="needs openssl")
def test_openssl_downloads_the_crl_a_certificate_names(served: Served, tmp_path: Path) -> None:
    site = served.workstation("ws-crl", "BAPPEDA")
    served.enrol_by_file(site, "BAPPEDA")
    site.ok("directory", "fetch", "--server", served.base)
    from sandi.directory.snapshot import parse_envelope

    snapshot = parse_envelope((site.home / "directory.json").read_bytes(), served.fingerprint)
    (cert,) = [c for c in snapshot.agency("BAPPEDA").certificates if c.purpose == "signing"]
    points = cert.certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    url = points[0].full_name[0].value  # type: ignore[index]
    assert url == served.base + "/crl.der"
    (tmp_path / "cert.pem").write_text(cert.pem)
    (tmp_path / "root.pem").write_text(snapshot.root_cert_pem)
    r = subprocess.run(["openssl", "verify", "-crl_check", "-crl_download", "-CAfile", tmp_path / "root.pem",
                        tmp_path / "cert.pem"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr + r.stdout
    assert "OK" in r.stdout

    # Revoked: the CRL the server hands out says so, and openssl refuses the certificate.
    served.authority.ok("keys", "revoke", cert.serial, "--reason", "keyCompromise", "--yes")
    served.settle()
    r = subprocess.run(["openssl", "verify", "-crl_check", "-crl_download", "-CAfile", tmp_path / "root.pem",
                        tmp_path / "cert.pem"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "revoked" in (r.stderr + r.stdout)


def test_health_and_metrics(served: Served) -> None:
    status, _, body = served.get("/healthz")
    health = json.loads(body)
    assert status == 200 and health["status"] == "ok" and health["directory_version"] >= 1
    served.get("/directory.json")
    status, headers, body = served.get("/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    text = body.decode()
    assert 'route="directory",method="GET",status="200"' in text
    assert "sandi_directory_version" in text
    assert "sandi_http_request_seconds_bucket" in text


def _raw(served: Served, request: bytes) -> bytes:
    port = int(served.base.split(":")[2].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"GET /sandi/nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", b"404"),
    (b"DELETE /sandi/directory.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", b"405"),
    (b"POST /sandi/directory.json HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n"
     b"Connection: close\r\n\r\n", b"413"),
    (b"GET /sandi/directory.json HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-H%d: v\r\n" % i for i in range(80)) + b"Connection: close\r\n\r\n", b"431"),
    # one read's worth (h11 accepts a request that arrives complete), over 16 KiB of headers
    (b"GET /sandi/directory.json HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 60000
     + b"\r\nConnection: close\r\n\r\n", b"431"),
])
def test_bad_requests_get_a_json_4xx(served: Served, request_bytes: bytes, status: bytes) -> None:
    answer = _raw(served, request_bytes)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == status, answer[:300]
    assert json.loads(body)["error"]


def test_garbage_and_huge_headers_never_5xx(served: Served) -> None:
    for request in (b"\x00\x01garbage\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 70000 + b"\r\n\r\n"):
        answer = _raw(served, request)
        assert answer.startswith(b"HTTP/1.1 4"), answer[:200]
    assert served.get("/healthz")[0] == 200  # still serving


def test_directory_fetch_installs_then_says_current(served: Served) -> None:
    site = served.workstation("ws-fetch", "DISKOMINFO", "--server", served.base)
    r = site.ok("--json", "directory", "fetch")
    first = json.loads(r.stdout)
    assert first["changed"] is True
    assert (site.home / "directory.index").is_file()  # built by the fetch, as by an import (ADR 0015)
    assert "index" not in site.ok("directory", "show").stderr  # read through it, no fallback
    r = site.ok("--json", "directory", "fetch")
    assert json.loads(r.stdout) == {**first, "changed": False}
    journal = (site.home / "audit.journal").read_text()
    assert '"directory.fetch"' in journal


def test_fetch_refuses_a_foreign_authority_and_keeps_the_installed(served: Served, tmp_path: Path) -> None:
    site = Site(tmp_path / "ws-foreign")
    other = "ab" * 32
    site.ok("init", "--agency", "DISKOMINFO", "--root-fingerprint", other, "--server", served.base)
    r = site.sandi("directory", "fetch")
    assert r.code == 4, r
    assert "root fingerprint differs" in r.stderr
    assert not (site.home / "directory.json").exists()
    assert '"failed"' in (site.home / "audit.journal").read_text()


def test_fetch_from_a_server_that_is_down(served: Served, tmp_path: Path) -> None:
    from tests.server_fixtures import free_port

    site = served.workstation("ws-down", "DISKOMINFO")
    r = site.sandi("directory", "fetch", "--server", f"http://127.0.0.1:{free_port()}/sandi")
    assert r.code == 1, r
    assert "cannot reach the server" in r.stderr


def test_a_document_command_refreshes_a_directory_near_expiry(served: Served) -> None:
    site = served.workstation("ws-refresh", "DISKOMINFO", "--server", served.base)
    served.enrol_by_file(site, "DISKOMINFO")
    # A directory valid one day: within the two days before expiry, so due for a refresh.
    short = served.folder / "short.json"
    served.authority.ok("directory", "publish", "--days", "1", "-o", short)
    site.ok("directory", "import", short)
    served.authority.ok("directory", "publish")  # the server now has a week-long one
    served.settle()
    doc = site.home.parent / "nota.txt"
    doc.write_text("nota dinas\n")
    r = site.ok("sign", doc)
    assert "fetched from the server" in r.stderr
    assert "expires in" not in r.stderr  # the fresh one is not near its expiry
    installed = json.loads(site.ok("--json", "directory", "show").stdout)
    assert installed["version"] > json.loads(
        site.ok("--json", "directory", "fetch").stdout)["version"] - 1


def test_a_server_that_does_not_answer_leaves_the_installed_directory(served: Served, tmp_path: Path) -> None:
    from tests.server_fixtures import free_port

    served.authority.ok("agency", "add", "SETDA", "--name", "Sekretariat Daerah")
    site = Site(tmp_path / "ws-offline")
    site.ok("init", "--agency", "SETDA", "--root-fingerprint", served.fingerprint,
            "--server", f"http://127.0.0.1:{free_port()}/sandi")
    served.enrol_by_file(site, "SETDA")
    short = served.folder / "short-offline.json"
    served.authority.ok("directory", "publish", "--days", "1", "-o", short)
    site.ok("directory", "import", short)
    before = (site.home / "directory.json").read_bytes()
    doc = tmp_path / "nota.txt"
    doc.write_text("nota dinas\n")
    r = site.ok("sign", doc)
    assert "could not be refreshed from the server" in r.stderr
    assert "expires in" in r.stderr  # the usual warning about the installed one
    assert (site.home / "directory.json").read_bytes() == before


@pytest.mark.skipif(not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() != 0,
                    reason="only as root")
def test_serve_refuses_root_without_the_flag(served: Served) -> None:
    r = served.authority.sandi("serve", "--port", "1")
    assert r.code == 2, r
    assert "refusing to serve as root" in r.stderr


def test_a_workstation_does_not_serve(served: Served, tmp_path: Path) -> None:
    site = Site(tmp_path / "ws-serve")
    site.ok("init", "--agency", "DISKOMINFO", "--root-fingerprint", served.fingerprint)
    r = site.sandi("serve", "--allow-root")
    assert r.code == 2, r
    assert "only the authority serves" in r.stderr


def test_timestamps_without_a_tsa_are_a_json_404(served: Served) -> None:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(served.base + "/timestamp", data=b"\x30\x00", method="POST",
                                     headers={"Content-Type": "application/timestamp-query"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 404
    assert json.loads(caught.value.read())["error"] == "no-tsa"


def test_the_pdf_root_and_its_crl_where_pdf_signing_certificates_name_them(served: Served) -> None:
    """ADR 0014: BASE/pdf-root.der and BASE/pdf-crl.der, named by every pdf-signing
    certificate issued under a base URL (404 while the authority has no PDF root)."""
    status, _, _ = served.get("/pdf-root.der")
    assert status == 404
    served.authority.ok("pdf-root", "init")
    served.authority.ok("keys", "issue", "DISKOMINFO", "--purpose", "pdf-signing")
    served.settle()
    status, headers, der = served.get("/pdf-root.der")
    assert status == 200 and headers["content-type"] == "application/pkix-cert"
    pdf_root = x509.load_der_x509_certificate(der)
    _, _, pem = served.get("/pdf-root.pem")
    assert x509.load_pem_x509_certificate(pem) == pdf_root
    status, headers, der = served.get("/pdf-crl.der")
    assert status == 200 and headers["content-type"] == "application/pkix-crl"
    assert x509.load_der_x509_crl(der).is_signature_valid(pdf_root.public_key())  # type: ignore[arg-type]
    from sandi.directory.snapshot import parse_envelope

    snapshot = parse_envelope((served.authority.home / "directory.json").read_bytes(), served.fingerprint)
    (cert,) = [c for c in snapshot.agency("DISKOMINFO").certificates if c.purpose == "pdf-signing"]
    points = cert.certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert points[0].full_name[0].value == served.base + "/pdf-crl.der"  # type: ignore[index]
    access = cert.certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert access[0].access_location.value == served.base + "/pdf-root.der"


def test_a_workstation_fetches_a_change_as_a_delta(served: Served) -> None:
    """After the first full fetch, a change reaches the workstation as a delta from its
    version (a few kilobytes); the result is the authority's directory byte for byte."""
    site = served.workstation("ws-delta", "DISKOMINFO", "--server", served.base)
    first = json.loads(site.ok("--json", "directory", "fetch").stdout)
    served.authority.ok("agency", "add", "DINAS-DELTA", "--name", "Dinas Delta")
    served.settle()
    status, headers, body = served.get(f"/directory/delta?from={first['version']}")
    assert status == 200 and len(body) < 20 * 1024
    assert json.loads(body)["agencies"]["upsert"][0]["code"] == "DINAS-DELTA"
    newest = int(headers["x-sandi-directory-version"])
    assert served.get(f"/directory/delta?from={newest}")[0] == 304
    assert served.get("/directory/delta?from=999999")[0] == 404
    assert served.get("/directory/delta?from=x")[0] == 400

    r = json.loads(site.ok("--json", "directory", "fetch").stdout)
    assert r["changed"] is True and r["version"] == newest
    assert (site.home / "directory.json").read_bytes() == (served.authority.home / "directory.json").read_bytes()
    journal = (site.home / "audit.journal").read_text()
    assert f'"delta_from":{first["version"]}' in journal.replace(" ", "")


def test_a_workstation_fetches_the_archive_of_retired_certificates(served: Served, tmp_path: Path) -> None:
    """After a rotation, 'directory fetch' also installs /directory-archive.json (checked
    against the head the signed directory carries), so an old signature still verifies."""
    import time
    from datetime import UTC, datetime

    served.authority.ok("agency", "add", "DINAS-ARSIP", "--name", "Dinas Arsip")
    served.authority.ok("keys", "issue", "DINAS-ARSIP")
    site = served.workstation("ws-archive", "DISKOMINFO", "--server", served.base)
    doc = tmp_path / "surat.txt"
    doc.write_bytes(b"surat lama")
    served.authority.ok("sign", doc, "--as", "DINAS-ARSIP")
    time.sleep(1.05 - datetime.now(UTC).microsecond / 1e6)  # the signing time has whole seconds
    served.authority.ok("keys", "rotate", "DINAS-ARSIP", "--yes")
    served.settle()
    status, _headers, body = served.get("/directory-archive.json")
    assert status == 200 and body == (served.authority.home / "directory-archive.json").read_bytes()
    site.ok("directory", "fetch")
    assert (site.home / "directory-archive.json").read_bytes() == body
    site.ok("verify", doc)
