"""Recovery and public material on a workstation (issue 16).

The recovery drill of docs/agency-guide.md as a test: a workstation backs up its keys,
its disk dies (the home is deleted), a fresh home is restored from the backup, and the
letters it received before open again, including one sealed to a key rotated since.
Also: the central flow's ``keys import`` creating the home, ``keys export --public`` and
``keys list`` on a workstation, ``verify -p/-P`` against a plain minisign key, and
certificates that say where their CRL and root are.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.test_workstations_flow import ENV, LETTER, Province, Site, _seal_letter, build_province

EXPORT = {"SANDI_EXPORT_PASSPHRASE": "tanah-air-beta 7 pulau seribu"}


def _with(site: Site, *args: str | Path, env: dict[str, str] | None = None, expect: int = 0) -> str:
    from tests.conftest import invoke

    r = invoke("--home", site.home, *args, env={**ENV, **(env or {})})
    assert r.code == expect, (site.name, args, r)
    return r.stdout + r.stderr


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Province:
    return build_province(tmp_path_factory.mktemp("lifecycle"))


def test_recovery_drill(tmp_path: Path) -> None:
    p = build_province(tmp_path)
    before_rotation = _seal_letter(p, "lama.pdf")
    # BAPPEDA rotates from its workstation; a letter is then sealed to the new key.
    rotation = p.bappeda.outbox("rotation.json")
    p.bappeda.ok("keys", "request", "BAPPEDA", "--rotate", "-o", rotation)
    answer = p.authority.outbox("rotation-answer.json")
    p.authority.ok("keys", "certify", "--yes", p.authority.receive(rotation), "-o", answer)
    p.bappeda.ok("keys", "import-certs", p.bappeda.receive(answer))
    p.hand_directory(p.publish("directory-2.json"), p.diskominfo, p.bappeda)
    after_rotation = _seal_letter(p, "baru.pdf")
    # The backup holds every key, the retired one too.
    backup = p.bappeda.folder / "usb" / "bappeda-backup.age"
    backup.parent.mkdir()
    shown = _with(p.bappeda, "keys", "backup", "-o", backup, env=EXPORT)
    assert "4 keys" in shown
    assert backup.stat().st_mode & 0o777 == 0o600
    assert b"AGE-SECRET-KEY" not in backup.read_bytes()  # encrypted, not a plain identity
    # The disk dies.
    shutil.rmtree(p.bappeda.home)
    restored = _with(p.bappeda, "keys", "restore", backup, "--root-fingerprint", p.root_fingerprint, env=EXPORT)
    assert "created workstation home for BAPPEDA" in restored
    assert p.root_fingerprint in restored
    p.bappeda.ok("directory", "import", p.bappeda.receive(p.publish("directory-3.json")))
    for letter, name in ((before_rotation, "lama.pdf"), (after_rotation, "baru.pdf")):
        out = p.bappeda.folder / f"opened-{name}"
        out.mkdir()
        p.bappeda.ok("open", letter, "--output-dir", out)
        assert (out / name).read_bytes() == LETTER
    # The restored workstation signs again, and its journal recorded the import.
    notice = p.bappeda.folder / "nota.txt"
    notice.write_text("Nota dinas.\n")
    p.bappeda.ok("sign", notice)
    journal = (p.bappeda.home / "audit.journal").read_text()
    assert "key.import" in journal


def test_restore_refuses_a_backup_of_another_authority(tmp_path: Path) -> None:
    p = build_province(tmp_path)
    backup = tmp_path / "backup.age"
    _with(p.bappeda, "keys", "backup", "-o", backup, env=EXPORT)
    shutil.rmtree(p.bappeda.home)
    other = "0" * 64
    out = _with(p.bappeda, "keys", "restore", backup, "--root-fingerprint", other, env=EXPORT, expect=4)
    assert "root fingerprint differs" in out
    assert not p.bappeda.home.exists()  # nothing half-made left behind


def test_backup_with_a_wrong_passphrase_cannot_be_restored(tmp_path: Path) -> None:
    p = build_province(tmp_path)
    backup = tmp_path / "backup.age"
    _with(p.bappeda, "keys", "backup", "-o", backup, env=EXPORT)
    shutil.rmtree(p.bappeda.home)
    out = _with(p.bappeda, "keys", "restore", backup, env={"SANDI_EXPORT_PASSPHRASE": "salah"}, expect=1)
    assert "passphrase" in out
    assert not p.bappeda.home.exists()


def test_backup_never_overwrites(shared: Province, tmp_path: Path) -> None:
    target = tmp_path / "exists.age"
    target.write_text("keep me")
    _with(shared.bappeda, "keys", "backup", "-o", target, env=EXPORT, expect=2)
    assert target.read_text() == "keep me"


def test_central_bundle_import_creates_the_home(shared: Province, tmp_path: Path) -> None:
    p = shared
    p.authority.ok("keys", "issue", "DISPORA")  # registered from the Banten policy
    bundle = tmp_path / "dispora.keys.age"
    _with(p.authority, "keys", "export", "DISPORA", "--include-private-keys", "-o", bundle, env=EXPORT)
    dispora = Site("DISPORA", tmp_path / "dispora")
    dispora.folder.mkdir()
    # No 'init' first: the import makes the workstation home, and says what comes next.
    out = _with(dispora, "keys", "import", bundle, env=EXPORT)
    assert "created workstation home for DISPORA" in out and p.root_fingerprint in out
    assert "sandi directory import" in out
    config = (dispora.home / "sandi.toml").read_text()
    assert 'agency = "DISPORA"' in config and p.root_fingerprint in config
    dispora.ok("directory", "import", dispora.receive(p.publish("dir-dispora.json")))
    notice = dispora.folder / "nota.txt"
    notice.write_text("Nota dinas.\n")
    dispora.ok("sign", notice)


def test_public_files_and_list_on_a_workstation(shared: Province, tmp_path: Path) -> None:
    p = shared
    out = tmp_path / "public"
    p.bappeda.ok("keys", "export", "DISKOMINFO", "--public", "-o", out)
    assert sorted(f.name for f in out.iterdir()) == [
        "DISKOMINFO.age.txt", "DISKOMINFO.encryption.pem", "DISKOMINFO.minisign.pub",
        "DISKOMINFO.signing.pem", "root.pem",
    ]
    listed = json.loads(p.bappeda.ok("--json", "keys", "list").stdout)
    assert {c["purpose"] for c in listed} == {"signing", "encryption"}
    assert all(c["private_key_here"] for c in listed)
    others = json.loads(p.bappeda.ok("--json", "keys", "list", "DISKOMINFO").stdout)
    assert not any(c["private_key_here"] for c in others)


def test_verify_with_a_plain_minisign_key(shared: Province, tmp_path: Path) -> None:
    p = shared
    out = tmp_path / "public"
    p.bappeda.ok("keys", "export", "DISKOMINFO", "--public", "-o", out)
    notice = p.diskominfo.folder / "edaran.txt"
    notice.write_text("Surat edaran.\n")
    p.diskominfo.ok("sign", notice)
    received = p.bappeda.receive(notice)
    p.bappeda.receive(notice.with_name("edaran.txt.minisig"))
    keyfile = out / "DISKOMINFO.minisign.pub"
    shown = p.bappeda.ok("verify", received, "-p", keyfile).stdout
    assert "signature verified" in shown and "only the signature" in shown
    key_line = keyfile.read_text().splitlines()[1]
    assert p.bappeda.sandi("verify", received, "-P", key_line).code == 0
    if shutil.which("minisign"):  # the guide's step, with the real tool
        subprocess.run(["minisign", "-V", "-p", str(keyfile), "-m", str(received)], check=True,
                       capture_output=True)
    # Another agency's key does not verify it: exit 4, audited in the journal.
    wrong = tmp_path / "wrong"
    p.bappeda.ok("keys", "export", "BAPPEDA", "--public", "-o", wrong)
    refused = p.bappeda.sandi("verify", received, "-p", wrong / "BAPPEDA.minisign.pub")
    assert refused.code == 4
    assert "verify.fail" in (p.bappeda.home / "audit.journal").read_text()
    both = p.bappeda.sandi("verify", received, "-p", keyfile, "-P", key_line)
    assert both.code == 2


@pytest.mark.parametrize(
    ("name", "expected_ou"),
    [
        ("Dinas Kependudukan dan Pencatatan Sipil Provinsi Banten Bagian Data dan Informasi",
         "Dinas Kependudukan dan Pencatatan Sipil Provinsi Banten Bagian\u2026"),
        ("Badan Perencanaan Pembangunan Daerah", "Badan Perencanaan Pembangunan Daerah"),
    ],
)
def test_long_agency_names_are_kept_whole(tmp_path: Path, name: str, expected_ou: str) -> None:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    from sandi.authority.certs import DESCRIPTION_OID

    authority = Site("authority", tmp_path / "authority")
    authority.folder.mkdir()
    authority.ok("init", "--base-url", "http://127.0.0.1:8080/sandi/")
    authority.ok("agency", "add", "DUKCAPIL", "--name", name)
    authority.ok("keys", "issue", "DUKCAPIL")
    out = tmp_path / "public"
    authority.ok("keys", "export", "DUKCAPIL", "--public", "-o", out)
    cert = x509.load_pem_x509_certificate((out / "DUKCAPIL.signing.pem").read_bytes())
    ou = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value
    assert ou == expected_ou and len(ou) <= 64
    described = cert.subject.get_attributes_for_oid(DESCRIPTION_OID)
    assert [a.value for a in described] == ([name] if ou != name else [])
    # Where relying parties fetch revocation data and the issuer.
    cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [n.value for n in cdp[0].full_name or []] == ["http://127.0.0.1:8080/sandi/crl.der"]
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert [d.access_location.value for d in aia] == ["http://127.0.0.1:8080/sandi/root.der"]
    if shutil.which("openssl"):
        text = subprocess.run(["openssl", "x509", "-noout", "-text", "-in", str(out / "DUKCAPIL.signing.pem")],
                              check=True, capture_output=True, text=True).stdout
        assert "crl.der" in text and "CA Issuers" in text


def test_no_base_url_no_distribution_point(shared: Province, tmp_path: Path) -> None:
    from cryptography import x509

    out = tmp_path / "public"
    shared.bappeda.ok("keys", "export", "BAPPEDA", "--public", "-o", out)
    cert = x509.load_pem_x509_certificate((out / "BAPPEDA.signing.pem").read_bytes())
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.CRLDistributionPoints)


@pytest.mark.parametrize("url", ["ftp://x/", "http://", "https://h/p?q=1", "pki.example"])
def test_bad_base_urls_are_refused(tmp_path: Path, url: str) -> None:
    authority = Site("authority", tmp_path / "authority")
    authority.folder.mkdir()
    r = authority.sandi("init", "--base-url", url)
    assert r.code == 2 and "base URL" in r.stderr
    assert not (authority.home / "sandi.toml").exists()


def test_shorten_x520_never_cuts_a_word() -> None:
    from sandi.authority.profiles import shorten_x520

    assert shorten_x520("a" * 70) == "a" * 63 + "\u2026"
    assert shorten_x520("Dinas  Pendidikan") == "Dinas Pendidikan"
    cut = shorten_x520("Badan " * 20)
    assert cut.endswith("Badan\u2026") and len(cut) <= 64
