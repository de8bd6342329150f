"""The archive of retired certificates (issue 20, ADR 0019 "The archive"): a rotation moves
the retired certificate out of the current directory into a root-signed archive, and an
old signature still verifies through it, by the same rules; without the archive, or with
a tampered one, verification refuses (exit 4) and says why."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

from sandi.directory.archive import FILE_NAME
from tests import authority_fixtures as fx
from tests.authority_fixtures import AuthorityHome
from tests.conftest import RunSandi

authority_template = fx.authority_template
authority = fx.authority


def _serials(path: Path, code: str) -> set[str]:
    envelope = json.loads(path.read_bytes())
    (agency,) = [a for a in envelope["agencies"] if a["code"] == code]
    return {c["serial"] for c in agency["certificates"]}


def _archived(path: Path) -> dict[str, dict[str, object]]:
    return {leaf["certificate"]["serial"]: leaf for leaf in json.loads(path.read_bytes())["leaves"]}


def _signed_then_rotated(authority: AuthorityHome, tmp_path: Path) -> tuple[Path, str]:
    """A document DISKOMINFO signed, then DISKOMINFO's keys rotated; the old signing serial."""
    doc = tmp_path / "pengumuman.txt"
    doc.write_bytes(b"pengumuman resmi")
    authority.ok("sign", doc, "--as", "DISKOMINFO")
    listed = json.loads(authority.ok("--json", "keys", "list", "DISKOMINFO").stdout)
    (old,) = [c["serial"] for c in listed if c["purpose"] == "signing" and c["state"] == "current"]
    time.sleep(1.05 - datetime.now(UTC).microsecond / 1e6)  # the signing time has whole seconds
    authority.ok("keys", "rotate", "DISKOMINFO", "--yes")
    return doc, old


def test_rotation_moves_the_retired_certificate_to_the_archive(authority: AuthorityHome, tmp_path: Path) -> None:
    directory = authority.path / "directory.json"
    before = directory.stat().st_size
    doc, old = _signed_then_rotated(authority, tmp_path)
    assert old not in _serials(directory, "DISKOMINFO")  # the current directory lost it
    archived = _archived(authority.path / FILE_NAME)
    assert old in archived and archived[old]["code"] == "DISKOMINFO"
    # the directory grew by the new certificates only, not by the retired ones
    grown = directory.stat().st_size - before
    assert grown < 4 * 1024, grown
    # the old signature verifies through the archive
    r = authority.run("verify", doc)
    assert r.code == 0, r
    # the header signs the archive's head (side member "archive")
    members = json.loads(directory.read_bytes())["members"]
    assert members["archive"]["count"] == len(archived)


def test_missing_archive_is_said_clearly(authority: AuthorityHome, tmp_path: Path) -> None:
    doc, _old = _signed_then_rotated(authority, tmp_path)
    (authority.path / FILE_NAME).unlink()
    r = authority.run("verify", doc)
    assert r.code == 4, r
    assert "archive of retired certificates" in r.stderr and "sandi directory" in r.stderr, r


def test_tampered_archive_is_refused(authority: AuthorityHome, tmp_path: Path) -> None:
    doc, old = _signed_then_rotated(authority, tmp_path)
    path = authority.path / FILE_NAME
    archive = json.loads(path.read_bytes())
    for leaf in archive["leaves"]:
        if leaf["certificate"]["serial"] == old:  # stretch the old certificate's validity
            leaf["certificate"]["not_after"] = "2099-01-01T00:00:00Z"
    path.write_bytes(json.dumps(archive, sort_keys=True, separators=(",", ":")).encode() + b"\n")
    r = authority.run("verify", doc)
    assert r.code == 4, r
    assert "does not match the signed directory" in r.stderr, r


def test_compromise_of_a_retired_key_still_refuses(authority: AuthorityHome, tmp_path: Path) -> None:
    """A retired certificate revoked for key compromise comes back into the current
    directory (it voids every signature of its key, every verifier must see it)."""
    doc, old = _signed_then_rotated(authority, tmp_path)
    authority.ok("keys", "revoke", "--yes", old, "--reason", "keyCompromise")
    assert old in _serials(authority.path / "directory.json", "DISKOMINFO")
    assert old not in _archived(authority.path / FILE_NAME)
    r = authority.run("verify", doc)
    assert r.code == 4 and "key compromise" in r.stderr, r


def test_workstation_imports_the_archive(authority: AuthorityHome, tmp_path: Path, run_sandi: RunSandi) -> None:
    doc, _old = _signed_then_rotated(authority, tmp_path)
    fingerprint = json.loads(authority.ok("--json", "directory", "show").stdout)["root_fingerprint"]
    ws = tmp_path / "ws"
    r = run_sandi("--home", ws, "init", "--agency", "BAPPEDA", "--root-fingerprint", fingerprint, env=fx.ENV)
    assert r.code == 0, r
    r = run_sandi("--home", ws, "directory", "import", authority.path / "directory.json")
    assert r.code == 0, r
    r = run_sandi("--home", ws, "verify", doc)  # the signer's certificate is archived, no archive here
    assert r.code == 4 and "archive of retired certificates" in r.stderr, r
    r = run_sandi("--home", ws, "directory", "import", authority.path / FILE_NAME)
    assert r.code == 0, r
    r = run_sandi("--home", ws, "verify", doc)
    assert r.code == 0, r
    # an archive of another directory version is refused and the installed one kept
    stale = tmp_path / "stale-archive.json"
    stale.write_bytes((authority.path / FILE_NAME).read_bytes())
    authority.ok("keys", "rotate", "BAPPEDA", "--yes")
    r = run_sandi("--home", ws, "directory", "import", authority.path / "directory.json")
    assert r.code == 0, r
    r = run_sandi("--home", ws, "directory", "import", stale)
    assert r.code == 4 and "does not match the signed directory" in r.stderr, r
    r = run_sandi("--home", ws, "verify", doc)  # the installed archive is now stale: said so
    assert r.code == 4 and "does not match the signed directory" in r.stderr, r
    r = run_sandi("--home", ws, "directory", "import", authority.path / FILE_NAME)
    assert r.code == 0, r
    assert run_sandi("--home", ws, "verify", doc).code == 0


def test_a_former_encryption_key_is_refused_through_the_archive(authority: AuthorityHome, tmp_path: Path) -> None:
    """A raw age key that an agency retired is still that agency's former key (refused),
    and without the archive nobody can tell: refused too, saying how to get it."""
    from sandi.formats.age import X25519Recipient

    (old,) = [c for c in authority.workspace().snapshot.agency("BAPPEDA").certificates
              if c.purpose == "encryption"]
    key = X25519Recipient.from_public_bytes(old.public_key_bytes()).to_bech32()
    authority.ok("keys", "rotate", "BAPPEDA", "--yes")
    doc = tmp_path / "data.txt"
    doc.write_text("x")
    r = authority.run("encrypt", "-r", key, "--as", "DISKOMINFO", "--class", "B", "-o", tmp_path / "x.age", doc)
    assert r.code == 1 and "former encryption key of BAPPEDA" in r.stderr, r
    (authority.path / FILE_NAME).unlink()
    r = authority.run("encrypt", "-r", key, "--as", "DISKOMINFO", "--class", "B", "-o", tmp_path / "x.age", doc)
    assert r.code == 1 and "archive of retired certificates" in r.stderr, r
    assert not (tmp_path / "x.age").exists()


def test_the_archive_store_is_checkable_and_its_head_is_signed(authority: AuthorityHome, tmp_path: Path,
                                                              run_sandi: RunSandi) -> None:
    """stale_leaves() names an agency whose stored archive leaf differs from the registry;
    a directory whose archive member was altered is refused on import (the header signs it)."""
    from sqlalchemy import update

    from sandi.directory.leaves import stale_leaves
    from sandi.home import Home
    from sandi.registry import Registry
    from sandi.registry.models import DirectoryArchiveLeafRow

    _doc, old = _signed_then_rotated(authority, tmp_path)
    registry = Registry(Home(authority.path).database_url())
    try:
        with registry.transaction() as s:
            assert stale_leaves(s) == []
            s.execute(update(DirectoryArchiveLeafRow).where(DirectoryArchiveLeafRow.serial == old)
                      .values(leaf=b'{"certificate":{},"code":"DISKOMINFO"}'))
            assert stale_leaves(s) == ["DISKOMINFO"]
            s.rollback()
    finally:
        registry.dispose()
    envelope = json.loads((authority.path / "directory.json").read_bytes())
    envelope["members"]["archive"]["count"] += 1
    forged = tmp_path / "directory.json"
    forged.write_bytes(json.dumps(envelope).encode())
    fingerprint = json.loads(authority.ok("--json", "directory", "show").stdout)["root_fingerprint"]
    ws = tmp_path / "ws"
    assert run_sandi("--home", ws, "init", "--agency", "BAPPEDA", "--root-fingerprint", fingerprint,
                     env=fx.ENV).code == 0
    r = run_sandi("--home", ws, "directory", "import", forged)
    assert r.code == 4 and "side members do not match" in r.stderr, r


def test_open_of_a_document_sealed_before_the_senders_rotation(authority: AuthorityHome, tmp_path: Path) -> None:
    doc = tmp_path / "surat.txt"
    doc.write_bytes(b"surat sebelum penggantian kunci")
    sealed = tmp_path / "surat.sandi"
    authority.ok("seal", doc, "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "B", "-o", sealed)
    time.sleep(1.05 - datetime.now(UTC).microsecond / 1e6)
    authority.ok("keys", "rotate", "DISKOMINFO", "--yes")
    authority.ok("open", sealed, "--as", "BAPPEDA", "-o", tmp_path / "dibuka.txt")
    assert (tmp_path / "dibuka.txt").read_bytes() == doc.read_bytes()
    (authority.path / FILE_NAME).unlink()
    r = authority.run("open", sealed, "--as", "BAPPEDA", "-o", tmp_path / "lagi.txt")
    assert r.code == 4 and "archive of retired certificates" in r.stderr, r
    assert not (tmp_path / "lagi.txt").exists()


def test_publish_writes_the_archive_beside_its_output(authority: AuthorityHome, tmp_path: Path) -> None:
    _doc, old = _signed_then_rotated(authority, tmp_path)
    usb = tmp_path / "usb"
    usb.mkdir()
    # A file of the person's under the archive's name is not replaced without --force ...
    (usb / FILE_NAME).write_bytes(b"catatan rapat, not an archive")
    r = authority.run("directory", "publish", "-o", usb / "directory.json")
    assert r.code != 0 and "exists already" in r.stderr and not (usb / "directory.json").exists(), r
    assert (usb / FILE_NAME).read_bytes() == b"catatan rapat, not an archive"
    authority.ok("directory", "publish", "-o", usb / "directory.json", "--force")
    assert (usb / FILE_NAME).read_bytes() == (authority.path / FILE_NAME).read_bytes()
    assert old in _archived(usb / FILE_NAME)
    # ... but an earlier archive is: publishing into the same outbox again needs no --force.
    before = set(_archived(usb / FILE_NAME))
    authority.ok("keys", "rotate", "BAPPEDA", "--yes")
    authority.ok("directory", "publish", "-o", usb / "directory-2.json")
    assert (usb / FILE_NAME).read_bytes() == (authority.path / FILE_NAME).read_bytes()
    assert set(_archived(usb / FILE_NAME)) > before
