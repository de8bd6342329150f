"""Plain encryption to agencies obeys the PHKS and is audited; to age keys it needs no home."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.authority_fixtures import (  # noqa: F401  (fixtures)
    AuthorityHome,
    authority_template,
    phks_authority,
    phks_authority_template,
    policy_authority,
    policy_authority_template,
)


def _journal_actions(home: AuthorityHome) -> list[tuple[str, str]]:
    lines = (home.path / "audit.journal").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    return [(r["action"], r["outcome"]) for r in records if r.get("type") == "entry"]


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["-r", "BAPPEDA", "--as", "DISKOMINFO"], 2, "--class"),
        (["-r", "BAPPEDA", "--class", "R"], 2, "--as"),
        (["-r", "BAPPEDA", "--as", "DISKOMINFO", "--class", "SR"], 3, "denied by policy"),
        (["-r", "BAPPEDA", "-r", "SETDA", "--as", "DISKOMINFO", "--class", "SR"], 3, "denied by policy"),
        (["-r", "NOSUCH", "--as", "DISKOMINFO", "--class", "R"], 1, "NOSUCH"),
    ],
)
def test_refusals_write_nothing(
    policy_authority: AuthorityHome, tmp_path: Path, args: list[str], code: int, needle: str
) -> None:
    doc = tmp_path / "data.txt"
    doc.write_text("angka anggaran")
    out = tmp_path / "data.txt.age"
    r = policy_authority.run("encrypt", *args, "-o", out, doc)
    assert r.code == code, r
    assert needle in r.stderr
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["data.txt"]
    if code == 3:
        assert ("policy.deny", "denied") in _journal_actions(policy_authority)


def test_allowed_relation_encrypts_and_is_audited(policy_authority: AuthorityHome, tmp_path: Path) -> None:
    doc = tmp_path / "data.txt"
    doc.write_bytes(b"angka anggaran\n")
    out = tmp_path / "data.txt.age"
    r = policy_authority.run("encrypt", "-r", "BAPPEDA", "--as", "DISKOMINFO", "--class", "R", "-o", out, doc)
    assert r.code == 0, r
    back = tmp_path / "back.txt"
    r = policy_authority.run("decrypt", "--as", "BAPPEDA", "-o", back, out)
    assert r.code == 0, r
    assert back.read_bytes() == doc.read_bytes()
    # SETDA is not a recipient: its keys do not open the file, nothing is written
    r = policy_authority.run("decrypt", "--as", "SETDA", "-o", tmp_path / "nope.txt", out)
    assert r.code == 4, r
    assert not (tmp_path / "nope.txt").exists()
    actions = _journal_actions(policy_authority)
    assert ("file.encrypt", "ok") in actions
    assert ("file.decrypt", "ok") in actions
    assert ("verify.fail", "failed") in actions


def test_age_recipients_need_no_home(tmp_path: Path, run_sandi) -> None:  # type: ignore[no-untyped-def]
    from sandi.formats.age import X25519Identity

    identity = X25519Identity.generate()
    doc = tmp_path / "x.txt"
    doc.write_text("x")
    r = run_sandi("encrypt", "-r", identity.recipient.to_bech32(), "-o", tmp_path / "x.age", doc)
    assert r.code == 0, r


# -- a raw age1... key that belongs to an agency is that agency (issue 13, item 3) ----------------


def _agency_key(home: AuthorityHome, code: str, state: str = "current") -> str:
    """The agency's encryption key as an age1... string, from the signed directory."""
    from sandi.formats.age import X25519Recipient

    certs = [c for c in home.workspace().snapshot.agency(code).certificates
             if c.purpose == "encryption" and c.state == state]
    cert = max(certs, key=lambda c: c.not_before)
    return X25519Recipient.from_public_bytes(cert.public_key_bytes()).to_bech32()


def _entries(home: AuthorityHome) -> list[dict[str, object]]:
    lines = (home.path / "audit.journal").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("type") == "entry"]


@pytest.mark.parametrize("given_as", ["code", "raw-key"])
def test_raw_key_of_an_agency_is_checked_like_its_code(phks_authority: AuthorityHome, tmp_path: Path,
                                                       given_as: str) -> None:
    """DINSOS -> DISPAR at R is denied, whether DISPAR is named by code or by its age1... key."""
    doc = tmp_path / "data.txt"
    doc.write_text("data bantuan sosial")
    out = tmp_path / "data.txt.age"
    recipient = "DISPAR" if given_as == "code" else _agency_key(phks_authority, "DISPAR")
    r = phks_authority.run("encrypt", "-r", recipient, "--as", "DINSOS", "--class", "R", "-o", out, doc)
    assert r.code == 3, r
    assert "denied by policy banten-phks v1" in r.stderr, r
    assert [p.name for p in tmp_path.iterdir()] == ["data.txt"]
    last = _entries(phks_authority)[-1]
    assert (last["actor"], last["action"], last["outcome"], last["subject"]) == (
        "DINSOS", "policy.deny", "denied", "DISPAR")
    # at T the relation is allowed: the file is written and audited with the agency's code
    r = phks_authority.run("encrypt", "-r", recipient, "--as", "DINSOS", "--class", "T", "-o", out, doc)
    assert r.code == 0, r
    last = _entries(phks_authority)[-1]
    assert (last["action"], last["details"]["recipients"]) == ("file.encrypt", ["DISPAR"])  # type: ignore[index]
    r = phks_authority.run("decrypt", "--as", "DISPAR", "-o", tmp_path / "back.txt", out)
    assert r.code == 0 and (tmp_path / "back.txt").read_text() == "data bantuan sosial", r


def test_raw_key_of_an_agency_needs_sender_and_class(phks_authority: AuthorityHome, tmp_path: Path) -> None:
    doc = tmp_path / "data.txt"
    doc.write_text("x")
    key = _agency_key(phks_authority, "DISPAR")
    r = phks_authority.run("encrypt", "-r", key, "-o", tmp_path / "x.age", doc)
    assert r.code == 2, r
    assert "is the encryption key of DISPAR" in r.stderr and "--class" in r.stderr, r
    # the same key given twice, once as code: one agency, one check
    r = phks_authority.run("encrypt", "-r", key, "-r", "DISPAR", "--as", "DINSOS", "--class", "T",
                           "-o", tmp_path / "x.age", doc)
    assert r.code == 0, r
    assert _entries(phks_authority)[-1]["details"]["recipients"] == ["DISPAR"]  # type: ignore[index]


def test_former_key_of_an_agency_is_refused(phks_authority: AuthorityHome, tmp_path: Path) -> None:
    """After a rotation the old key still belongs to DISPAR: refused, saying whose it was."""
    old = _agency_key(phks_authority, "DISPAR")
    phks_authority.ok("keys", "rotate", "--yes", "DISPAR")
    assert _agency_key(phks_authority, "DISPAR") != old
    doc = tmp_path / "data.txt"
    doc.write_text("x")
    r = phks_authority.run("encrypt", "-r", old, "--as", "DINSOS", "--class", "T", "-o", tmp_path / "x.age", doc)
    assert r.code == 1, r
    assert "former encryption key of DISPAR" in r.stderr and "-r DISPAR" in r.stderr, r
    assert [p.name for p in tmp_path.iterdir()] == ["data.txt"]


def test_unregistered_raw_key_in_a_home_needs_no_policy(phks_authority: AuthorityHome, tmp_path: Path) -> None:
    from sandi.formats.age import X25519Identity

    doc = tmp_path / "x.txt"
    doc.write_text("x")
    key = X25519Identity.generate().recipient.to_bech32()
    r = phks_authority.run("encrypt", "-r", key, "-o", tmp_path / "x.age", doc)
    assert r.code == 0, r
