"""Plain encryption to agencies obeys the PHKS and is audited; to age keys it needs no home."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.authority_fixtures import (  # noqa: F401  (fixtures)
    AuthorityHome,
    authority_template,
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
