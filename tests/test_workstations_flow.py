"""Agencies on their own machines: an authority and two workstations that share only files.

Three homes in three separate folders (``authority/``, ``diskominfo/``, ``bappeda/``);
whatever one side hands to another is copied into the other's folder first, as on
a USB stick. Everything runs through the command line. The story:

enrolment request -> certificate -> directory -> sealed letter -> opened; then a
revocation published in a new directory makes the other side refuse the revoked
key; an old directory re-imported is refused (rollback); an expired one makes
``seal`` refuse (freeze); one near its expiry makes every document command warn.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import CliResult, invoke

POLICY = Path(__file__).resolve().parent.parent / "policies" / "banten.toml"
ENV: dict[str, str | None] = {"SANDI_PASSPHRASE": "demo-passphrase-ws", "SANDI_SCRYPT_WORK_FACTOR": "10"}
LETTER = b"%PDF-1.4\n" + bytes(range(256)) * 400  # 100 KiB and a bit, binary


@dataclass
class Site:
    """One machine: its own folder, with the home inside and an inbox beside it."""

    name: str
    folder: Path

    @property
    def home(self) -> Path:
        return self.folder / "home"

    def sandi(self, *args: str | Path) -> CliResult:
        return invoke("--home", self.home, *args, env=ENV)

    def ok(self, *args: str | Path) -> CliResult:
        r = self.sandi(*args)
        assert r.code == 0, (self.name, args, r)
        return r

    def receive(self, path: Path) -> Path:
        """Copy a file another machine handed over into this machine's inbox."""
        inbox = self.folder / "inbox"
        inbox.mkdir(exist_ok=True)
        target = inbox / path.name
        shutil.copyfile(path, target)
        return target

    def outbox(self, name: str) -> Path:
        out = self.folder / "outbox"
        out.mkdir(exist_ok=True)
        return out / name


@dataclass
class Province:
    authority: Site
    diskominfo: Site
    bappeda: Site
    root_fingerprint: str
    first_directory: Path  # the authority's copy of the first directory it handed out

    def publish(self, name: str, *extra: str) -> Path:
        target = self.authority.outbox(name)
        self.authority.ok("directory", "publish", "-o", target, *extra)
        return target

    def hand_directory(self, published: Path, *sites: Site) -> None:
        for site in sites:
            site.ok("directory", "import", site.receive(published))

    def signing_serial(self, code: str) -> str:
        certs = json.loads(self.authority.ok("--json", "keys", "list", code).stdout)
        (serial,) = [c["serial"] for c in certs if c["purpose"] == "signing" and c["state"] == "current"]
        return str(serial)


def _enrol(authority: Site, site: Site, code: str, root_fingerprint: str) -> None:
    site.ok("init", "--agency", code, "--root-fingerprint", root_fingerprint)
    request = site.outbox(f"{code}.request.json")
    site.ok("keys", "request", code, "-o", request)
    response = authority.outbox(f"{code}.response.json")
    authority.ok("keys", "certify", "--yes", authority.receive(request), "-o", response)
    site.ok("keys", "import-certs", site.receive(response))


def build_province(root: Path) -> Province:
    """The authority with the Banten policy, both workstations enrolled, the first
    directory imported on both."""
    authority = Site("authority", root / "authority")
    diskominfo = Site("DISKOMINFO", root / "diskominfo")
    bappeda = Site("BAPPEDA", root / "bappeda")
    for site in (authority, diskominfo, bappeda):
        site.folder.mkdir()
    created = json.loads(authority.ok("--json", "init").stdout)
    fingerprint = created["root_fingerprint"]
    authority.ok("agency", "add", "--from-policy", POLICY)
    authority.ok("policy", "apply", POLICY)
    _enrol(authority, diskominfo, "DISKOMINFO", fingerprint)
    _enrol(authority, bappeda, "BAPPEDA", fingerprint)
    p = Province(authority, diskominfo, bappeda, fingerprint, Path())
    p.first_directory = p.publish("directory-1.json")
    p.hand_directory(p.first_directory, diskominfo, bappeda)
    return p


@pytest.fixture
def province(tmp_path: Path) -> Province:
    return build_province(tmp_path)


def _seal_letter(p: Province, name: str = "surat.pdf", *extra: str) -> Path:
    """DISKOMINFO seals a letter to BAPPEDA (no --as: the workstation's own agency)."""
    doc = p.diskominfo.folder / name
    doc.write_bytes(LETTER)
    p.diskominfo.ok("seal", doc, "--to", "BAPPEDA", "--class", "R", "--nomor", "005/17/DISKOMINFO/2026",
                    "--hal", "Rapat koordinasi", *extra)
    return p.bappeda.receive(doc.with_name(name + ".sandi"))


def _sign_notice(p: Province) -> tuple[Path, Path]:
    doc = p.diskominfo.folder / "pengumuman.txt"
    doc.write_text("Pengumuman: kantor tutup tanggal 1.\n")
    p.diskominfo.ok("sign", doc, "--class", "B")
    return p.bappeda.receive(doc), p.bappeda.receive(doc.with_name(doc.name + ".minisig"))


# -- the happy path -------------------------------------------------------------------


def test_workstations_hold_no_registry_and_trust_the_authority(province: Province) -> None:
    for site in (province.diskominfo, province.bappeda):
        assert not (site.home / "registry.db").exists()
        shown = json.loads(site.ok("--json", "directory", "show").stdout)
        assert shown["root_fingerprint"] == province.root_fingerprint
        assert shown["policies"] == ["banten-phks v1"]
        agencies = {a["code"]: a for a in shown["agencies"]}
        for code in ("DISKOMINFO", "BAPPEDA"):
            states = {(c["purpose"], c["state"], c["revoked"]) for c in agencies[code]["certificates"]}
            assert states == {("signing", "current", None), ("encryption", "current", None)}


def test_sealed_letter_crosses_machines_and_opens(province: Province) -> None:
    sealed = _seal_letter(province)
    opened = province.bappeda.folder / "masuk" / "surat.pdf"
    opened.parent.mkdir()
    r = province.bappeda.ok("--json", "open", sealed, "-o", opened)
    summary = json.loads(r.stdout)
    assert summary["sender"] == "DISKOMINFO"
    assert summary["recipients"] == ["BAPPEDA"]
    assert summary["classification"] == "R"
    assert summary["policy"] == "banten-phks v1"
    assert opened.read_bytes() == LETTER

    # The sender's own workstation cannot open it (not a recipient, no copy to self).
    r = province.diskominfo.sandi("open", sealed, "-o", province.diskominfo.folder / "back.pdf")
    assert r.code != 0
    assert not (province.diskominfo.folder / "back.pdf").exists()

    notice, signature = _sign_notice(province)
    r = province.bappeda.ok("--json", "verify", notice, "--sig", signature)
    assert json.loads(r.stdout)["signer"] == "DISKOMINFO"


def test_policy_from_the_directory_is_enforced_on_the_workstation(province: Province) -> None:
    doc = province.diskominfo.folder / "rahasia.pdf"
    doc.write_bytes(LETTER)
    r = province.diskominfo.sandi("seal", doc, "--to", "BAPPEDA", "--class", "SR")
    assert r.code == 3, r
    assert "SR" in r.stderr
    assert not doc.with_name("rahasia.pdf.sandi").exists()


def test_plain_age_file_to_an_agency_code(province: Province) -> None:
    """encrypt -r CODE takes the key from the directory (the policy checks --class);
    decrypt --as CODE takes the keys from the key store."""
    doc = province.bappeda.folder / "data.bin"
    doc.write_bytes(LETTER)
    encrypted = province.bappeda.outbox("data.bin.age")
    province.bappeda.ok("encrypt", "-r", "DISKOMINFO", "--class", "R", "-o", encrypted, doc)
    received = province.diskominfo.receive(encrypted)
    plain = province.diskominfo.folder / "data.bin"
    province.diskominfo.ok("decrypt", "--as", "DISKOMINFO", "-o", plain, received)
    assert plain.read_bytes() == LETTER

    # BAPPEDA holds no key of DISKOMINFO; an unknown code is not in the directory.
    r = province.bappeda.sandi("decrypt", "--as", "DISKOMINFO", "-o", province.bappeda.folder / "x", encrypted)
    assert r.code == 1 and "no encryption key of DISKOMINFO" in r.stderr, r
    r = province.bappeda.sandi("encrypt", "-r", "NOSUCH", "--class", "R", "-o", province.bappeda.folder / "y.age",
                               doc)
    assert r.code == 1 and "not in the directory" in r.stderr, r
    assert not (province.bappeda.folder / "x").exists()
    # An output folder that does not exist is a plain error, not an internal one.
    r = province.bappeda.sandi("encrypt", "-r", "DISKOMINFO", "--class", "R",
                               "-o", province.bappeda.folder / "no" / "z.age", doc)
    assert r.code == 1 and "does not exist" in r.stderr, r
    assert not (province.bappeda.folder / "y.age").exists()


# -- revocation, rollback, freeze ---------------------------------------------------------

Refusal = Callable[[Province, Path, Path, Path], CliResult]


def _open(p: Province, sealed: Path, notice: Path, sig: Path) -> CliResult:
    return p.bappeda.sandi("open", sealed, "-o", p.bappeda.folder / "opened.pdf")


def _inspect_as(p: Province, sealed: Path, notice: Path, sig: Path) -> CliResult:
    return p.bappeda.sandi("inspect", sealed, "--as", "BAPPEDA")


def _verify(p: Province, sealed: Path, notice: Path, sig: Path) -> CliResult:
    return p.bappeda.sandi("verify", notice, "--sig", sig)


@pytest.mark.parametrize(
    ("command", "refuse"),
    [("open", _open), ("inspect --as", _inspect_as), ("verify", _verify)],
)
def test_revoked_signing_key_is_refused_after_the_new_directory(
    province: Province, command: str, refuse: Refusal
) -> None:
    sealed = _seal_letter(province)
    notice, sig = _sign_notice(province)
    # Before the revocation reaches BAPPEDA, everything verifies.
    province.bappeda.ok("verify", notice, "--sig", sig)

    serial = province.signing_serial("DISKOMINFO")
    province.authority.ok("keys", "revoke", "--yes", serial, "--reason", "keyCompromise")
    province.hand_directory(province.publish("directory-2.json"), province.bappeda)

    r = refuse(province, sealed, notice, sig)
    assert r.code == 4, (command, r)
    assert "revoked for key compromise" in r.stderr
    assert not (province.bappeda.folder / "opened.pdf").exists()


def test_revoked_sender_cannot_seal_once_it_has_the_new_directory(province: Province) -> None:
    serial = province.signing_serial("DISKOMINFO")
    province.authority.ok("keys", "revoke", "--yes", serial, "--reason", "keyCompromise")
    province.hand_directory(province.publish("directory-2.json"), province.diskominfo)
    doc = province.diskominfo.folder / "surat.pdf"
    doc.write_bytes(LETTER)
    r = province.diskominfo.sandi("seal", doc, "--to", "BAPPEDA", "--class", "R")
    assert r.code == 1, r
    assert "no valid signing certificate" in r.stderr
    assert not doc.with_name("surat.pdf.sandi").exists()


def test_an_old_directory_is_refused(province: Province) -> None:
    second = province.publish("directory-2.json")
    province.hand_directory(second, province.bappeda)
    installed = json.loads(province.bappeda.ok("--json", "directory", "show").stdout)["version"]

    r = province.bappeda.sandi("directory", "import", province.bappeda.receive(province.first_directory))
    assert r.code == 4, r
    assert "rollback refused" in r.stderr
    assert json.loads(province.bappeda.ok("--json", "directory", "show").stdout)["version"] == installed
    # The refusal is in the workstation's own audit journal.
    log = (province.bappeda.home / "audit.journal").read_text()
    assert '"directory.import"' in log and '"failed"' in log

    # Copying the old file over the installed one instead is refused by every read.
    (province.bappeda.home / "directory.json").write_bytes(province.first_directory.read_bytes())
    for args in (["directory", "show"], ["audit", "verify"]):
        r = province.bappeda.sandi(*args)
        assert r.code == 4, (args, r)
        assert "directory.json was rolled back" in r.stderr
    # ... and with the installed file gone, the old one still cannot be imported.
    (province.bappeda.home / "directory.json").unlink()
    r = province.bappeda.sandi("directory", "import", province.bappeda.receive(province.first_directory))
    assert r.code == 4 and "rollback refused" in r.stderr, r


def test_a_directory_from_another_authority_is_refused(province: Province, tmp_path: Path) -> None:
    other = Site("other authority", tmp_path / "other")
    other.folder.mkdir()
    other.ok("init")
    foreign = other.outbox("directory.json")
    other.ok("directory", "publish", "-o", foreign)
    r = province.bappeda.sandi("directory", "import", province.bappeda.receive(foreign))
    assert r.code == 4, r
    assert "root fingerprint differs" in r.stderr


def _expired_directory(p: Province) -> bytes:
    """A snapshot the authority really signed, a week ago, valid for one day.

    The command line has no clock to fake, so this goes through the library on the
    authority's side: the same publish() and root key, with ``now`` in the past."""
    from sandi.authority.issuance import load_issuer
    from sandi.directory.publish import publish
    from sandi.home import Home
    from sandi.keystore import open_keystore
    from sandi.keystore.passphrase import FixedPassphrase
    from sandi.registry import Registry

    home = Home(p.authority.home)
    issuer = load_issuer(home, open_keystore(home, FixedPassphrase("demo-passphrase-ws")))
    registry = Registry(home.database_url())
    try:
        with registry.transaction() as session:
            _, envelope = publish(session, issuer.key, crl_pem=None, validity=timedelta(days=1),
                                  now=datetime.now(UTC) - timedelta(days=7))
    finally:
        registry.dispose()
    return envelope


def test_an_expired_directory_makes_seal_refuse(province: Province) -> None:
    stale = province.authority.outbox("directory-stale.json")
    stale.write_bytes(_expired_directory(province))

    # Importing it is refused (freeze) ...
    r = province.diskominfo.sandi("directory", "import", province.diskominfo.receive(stale))
    assert r.code == 4, r
    assert "expired" in r.stderr

    # ... and if it is in the home anyway (a machine left off for a week), seal refuses.
    (province.diskominfo.home / "directory.json").write_bytes(stale.read_bytes())
    doc = province.diskominfo.folder / "surat.pdf"
    doc.write_bytes(LETTER)
    r = province.diskominfo.sandi("seal", doc, "--to", "BAPPEDA", "--class", "R")
    assert r.code == 4, r
    assert "error: the directory (version" in r.stderr and "expired at" in r.stderr
    assert "hint: ask the authority for a fresh one" in r.stderr
    assert not doc.with_name("surat.pdf.sandi").exists()

    # A fresh directory from the authority puts it right.
    province.hand_directory(province.publish("directory-fresh.json"), province.diskominfo)
    province.diskominfo.ok("seal", doc, "--to", "BAPPEDA", "--class", "R")


NEAR_EXPIRY: list[tuple[str, Callable[[Province, Path, Path, Path], CliResult]]] = [
    ("seal", lambda p, s, n, g: p.diskominfo.sandi("seal", p.diskominfo.folder / "surat.pdf", "--to",
                                                    "BAPPEDA", "--class", "R", "--force")),
    ("sign", lambda p, s, n, g: p.diskominfo.sandi("sign", p.diskominfo.folder / "pengumuman.txt",
                                                    "--force")),
    ("open", lambda p, s, n, g: p.bappeda.sandi("open", s, "-o", p.bappeda.folder / "o.pdf")),
    ("inspect --as", lambda p, s, n, g: p.bappeda.sandi("inspect", s, "--as", "BAPPEDA")),
    ("verify", lambda p, s, n, g: p.bappeda.sandi("verify", n, "--sig", g)),
    ("directory show", lambda p, s, n, g: p.bappeda.sandi("directory", "show")),
]


@pytest.mark.parametrize(("command", "run"), NEAR_EXPIRY, ids=[c for c, _ in NEAR_EXPIRY])
def test_a_directory_near_its_expiry_warns_on_stderr(
    province: Province, command: str, run: Callable[[Province, Path, Path, Path], CliResult]
) -> None:
    sealed = _seal_letter(province)
    notice, sig = _sign_notice(province)
    province.hand_directory(province.publish("directory-short.json", "--days", "1"),
                            province.diskominfo, province.bappeda)
    r = run(province, sealed, notice, sig)
    assert r.code == 0, (command, r)
    assert "warning: the directory (version" in r.stderr
    assert "import a newer one from the authority" in r.stderr
    assert "warning" not in r.stdout


def test_a_fresh_directory_gives_no_warning(province: Province) -> None:
    sealed = _seal_letter(province)
    r = province.bappeda.ok("open", sealed, "-o", province.bappeda.folder / "o.pdf")
    assert "warning" not in r.stderr


def test_document_commands_read_the_directory_once(province: Province, monkeypatch: pytest.MonkeyPatch) -> None:
    """seal, open, sign and verify open the installed directory index once and never read
    directory.json (ADR 0015); inspect without --as reads neither. Without the index they
    read directory.json once, verified in full (expiry included, not again for the warning)."""
    from sandi.directory import index

    json_reads: list[str] = []
    index_opens: list[Path] = []
    read_bytes = Path.read_bytes
    reader_init = index.IndexReader.__init__

    def counting_read(self: Path) -> bytes:
        if self.name == "directory.json":
            json_reads.append(str(self))
        return read_bytes(self)

    def counting_open(self: index.IndexReader, path: Path, trusted_root_fingerprint: str) -> None:
        index_opens.append(path)
        reader_init(self, path, trusted_root_fingerprint)

    monkeypatch.setattr(Path, "read_bytes", counting_read)
    monkeypatch.setattr(index.IndexReader, "__init__", counting_open)
    sealed = _seal_letter(province)
    assert (json_reads, len(index_opens)) == ([], 1), (json_reads, index_opens)
    notice, sig = _sign_notice(province)
    commands = (["open", sealed, "-o", province.bappeda.folder / "opened.pdf"],
                ["verify", notice, "--sig", sig], ["inspect", sealed, "--as", "BAPPEDA"])
    for args in commands:
        json_reads.clear()
        index_opens.clear()
        province.bappeda.ok(*args)
        assert (json_reads, len(index_opens)) == ([], 1), (args, json_reads, index_opens)
    json_reads.clear()
    index_opens.clear()
    r = province.bappeda.ok("inspect", sealed)
    assert "age v1 file" in r.stdout
    assert (json_reads, index_opens) == ([], [])
    # Without its index a command falls back to directory.json, read once and verified
    # whole, and rebuilds the index, so the next command reads the index again.
    index_path = province.bappeda.home / "directory.index"
    index_path.unlink()
    (province.bappeda.folder / "opened.pdf").unlink()
    json_reads.clear()
    index_opens.clear()
    province.bappeda.ok(*commands[0])
    assert (len(json_reads), index_opens) == (1, []), (json_reads, index_opens)
    assert index_path.is_file()
    json_reads.clear()
    province.bappeda.ok(*commands[1])
    assert (json_reads, len(index_opens)) == ([], 1), (json_reads, index_opens)
