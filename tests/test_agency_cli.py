"""`sandi agency`: add, list, show, suspend, resume, bulk from a policy; refusals change nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import test_authority_support as support
from tests.conftest import RunSandi
from tests.test_authority_support import db_rows, ok

authority = support.authority
fast_env = support.fast_env

ROOT = Path(__file__).parents[1]


def test_add_list_show(run_sandi: RunSandi, authority: Path) -> None:
    ok(run_sandi, "--home", authority, "agency", "add", "SETDA", "--name", "Sekretariat Daerah")
    ok(run_sandi, "--home", authority, "agency", "add", "BIRO-HUKUM", "--name", "Biro Hukum", "--parent", "SETDA")
    ok(run_sandi, "--home", authority, "agency", "add", "KOTA-SERANG", "--name", "Kota Serang", "--kind", "city")
    listed = json.loads(ok(run_sandi, "--home", authority, "agency", "list", "--json"))
    assert [a["code"] for a in listed] == ["BIRO-HUKUM", "KOTA-SERANG", "SETDA"]
    shown = json.loads(ok(run_sandi, "--home", authority, "--json", "agency", "show", "BIRO-HUKUM"))
    assert shown["parent"] == "SETDA" and shown["status"] == "active" and shown["certificates"] == []
    assert "Biro Hukum" in ok(run_sandi, "--home", authority, "agency", "show", "BIRO-HUKUM")


def test_suspend_and_resume(run_sandi: RunSandi, authority: Path) -> None:
    ok(run_sandi, "--home", authority, "agency", "add", "DISPAR", "--name", "Dinas Pariwisata")
    ok(run_sandi, "--home", authority, "agency", "suspend", "--yes", "DISPAR", "--reason", "merged")
    shown = json.loads(ok(run_sandi, "--home", authority, "agency", "show", "DISPAR", "--json"))
    assert shown["status"] == "suspended"
    ok(run_sandi, "--home", authority, "agency", "resume", "DISPAR")
    entries = _audit_actions(authority)
    assert entries[-3:] == ["agency.add", "agency.suspend", "agency.resume"]


def _audit_actions(home: Path) -> list[str]:
    import sqlite3

    conn = sqlite3.connect(home / "registry.db")
    try:
        rows = conn.execute("SELECT action FROM audit_entries ORDER BY seq")
        return [a for (a,) in rows if a != "directory.publish"]
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["add", "bappeda", "--name", "x"], 2, "not a valid agency code"),
        (["add", "1ABC", "--name", "x"], 2, "not a valid agency code"),
        (["add", "A" * 65, "--name", "x"], 2, "not a valid agency code"),
        (["add", "A B", "--name", "x"], 2, "not a valid agency code"),
        (["add", "SETDA", "--name", "again"], 1, "exists already"),
        (["add", "NEW", "--name", "x", "--parent", "NOPE"], 1, "unknown agency NOPE"),
        (["add", "NEW", "--name", "x", "--kind", "martian"], 2, "martian"),
        (["add", "NEW", "--name", " "], 2, "name"),
        (["add", "NEW"], 2, "--name"),
        (["show", "NOPE"], 1, "unknown agency NOPE"),
        (["suspend", "NOPE", "--reason", "x"], 1, "unknown agency"),
        (["suspend", "SETDA", "--yes", "--reason", " "], 2, "reason"),
        (["resume", "SETDA"], 1, "active already"),
    ],
)
def test_refusals(run_sandi: RunSandi, authority: Path, args: list[str], code: int, message: str) -> None:
    ok(run_sandi, "--home", authority, "agency", "add", "SETDA", "--name", "Sekretariat Daerah")
    before = db_rows(authority)
    r = run_sandi("--home", authority, "agency", *args)
    assert r.code == code, r
    assert message in r.stderr
    assert db_rows(authority) == before


def test_from_policy_registers_all_and_skips_known(run_sandi: RunSandi, authority: Path) -> None:
    policy = ROOT / "policies" / "banten.toml"
    ok(run_sandi, "--home", authority, "agency", "add", "BAPPEDA", "--name", "Bappeda")
    r = run_sandi("--home", authority, "--json", "agency", "add", "--from-policy", policy)
    assert r.code == 0, r
    data = json.loads(r.stdout)
    assert data["skipped"] == ["BAPPEDA"]
    assert {"GUBERNUR", "DISKOMINFO", "KOTA-TANGSEL", "BSSN"} <= set(data["added"])
    assert "BAPPEDA is registered already" in r.stderr
    kinds = {a["code"]: a["kind"] for a in json.loads(ok(run_sandi, "--home", authority, "agency", "list",
                                                          "--json"))}
    assert kinds["GUBERNUR"] == "leader" and kinds["KAB-LEBAK"] == "regency" and kinds["ANRI"] == "central"
    # a second run adds nothing
    again = json.loads(ok(run_sandi, "--home", authority, "--json", "agency", "add", "--from-policy", policy))
    assert again["added"] == []


@pytest.mark.parametrize(
    "body",
    [
        '[entities]\nGOOD = { name = "Good" }\nbad = { name = "Bad" }\n',
        '[entities]\nGOOD = { name = "Good", kind = "planet" }\n',
        '[entities]\nGOOD = { kind = "agency" }\n',
        '[entities]\nCHILD = { name = "c", parent = "MISSING" }\n',
        "[policy]\nid = 'x'\n",
        "not toml [",
    ],
)
def test_bad_policy_registers_nothing(run_sandi: RunSandi, authority: Path, tmp_path: Path, body: str) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text(body)
    before = db_rows(authority)
    r = run_sandi("--home", authority, "agency", "add", "--from-policy", policy)
    assert r.code == 1, r
    assert r.stderr.startswith("error:")
    assert db_rows(authority) == before
