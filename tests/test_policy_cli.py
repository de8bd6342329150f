"""``sandi policy ...`` end to end through the real entry point (exit codes included)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import RunSandi

ROOT = Path(__file__).resolve().parent.parent
BANTEN = ROOT / "policies" / "banten.toml"
CASES = ROOT / "policies" / "banten-tests.toml"
BAD = Path(__file__).parent / "policy_corpus" / "bad"
JUNE = "2026-06-01T09:00:00+07:00"


@pytest.fixture
def authority(run_sandi: RunSandi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SANDI_PASSPHRASE", "correct horse battery")
    monkeypatch.setenv("SANDI_SCRYPT_WORK_FACTOR", "10")
    monkeypatch.setenv("SANDI_OPERATOR", "op-test")
    home = tmp_path / "authority"
    r = run_sandi("--home", home, "init")
    assert r.code == 0, r
    return home


def test_validate_ok_and_bad(run_sandi: RunSandi) -> None:
    r = run_sandi("policy", "validate", BANTEN)
    assert r.code == 0 and "valid" in r.stdout and "48 entities" in r.stdout
    r = run_sandi("policy", "validate", BAD / "unknown_entity.toml")
    assert r.code == 1
    assert "unknown_entity.toml:16: relation 'r1': unknown entity 'BAPEDA' (did you mean BAPPEDA?)" in r.stderr
    r = run_sandi("policy", "validate", BAD / "syntax_error.toml")
    assert r.code == 1 and "syntax_error.toml:10" in r.stderr and "Traceback" not in r.stderr


def test_validate_json(run_sandi: RunSandi) -> None:
    r = run_sandi("policy", "validate", "--json", BANTEN)
    assert json.loads(r.stdout)["valid"] is True


def test_lint_banten_is_clean_and_warnings_exit_zero(run_sandi: RunSandi, tmp_path: Path) -> None:
    r = run_sandi("policy", "lint", BANTEN)
    assert r.code == 0 and "0 warning(s), 0 errors" in r.stdout
    text = BANTEN.read_text() + '\n[groups.SPARE]\nmembers = ["DPK"]\n'
    f = tmp_path / "spare.toml"
    f.write_text(text)
    r = run_sandi("policy", "lint", f)
    assert r.code == 0 and "warning[unused-group]" in r.stdout and "spare.toml:" in r.stdout
    data = json.loads(run_sandi("--json", "policy", "lint", f).stdout)
    assert [w["code"] for w in data["warnings"]] == ["unused-group"]
    assert run_sandi("policy", "lint", BAD / "group_cycle.toml").code == 1


def test_show_file_human_and_json(run_sandi: RunSandi) -> None:
    r = run_sandi("policy", "show", BANTEN)
    assert r.code == 0 and "r-kominfo-agencies: DISKOMINFO -> AGENCIES up to R" in r.stdout
    data = json.loads(run_sandi("policy", "show", BANTEN, "--json").stdout)
    assert data["id"] == "banten-phks" and len(data["entities"]) == 48


@pytest.mark.parametrize(("args", "code", "words"), [
    (["--from", "DISKOMINFO", "--to", "BAPPEDA", "--class", "R"], 0,
     ["ALLOW", "relation 'r-kominfo-agencies'"]),
    (["--from", "DISKOMINFO", "--to", "SETDA", "--class", "R"], 0, ["ALLOW"]),
    (["--from", "DINSOS", "--to", "KESBANGPOL", "--class", "SR"], 3,
     ["DENY", "no rule allows DINSOS → KESBANGPOL at SR", "'r-agencies-security'", "r-agencies: allows up to T"]),
    (["--from", "RSUD", "--to", "KAB-LEBAK", "--class", "R"], 3,
     ["DENY", "rule: f-rsud-regions", "banten.toml:", "f-rsud-regions: forbids above T"]),
    (["--from", "GUBERNUR", "--to", "WAGUB", "--class", "B", "--at", "2030-01-01T00:00:00Z"], 3,
     ["not in force"]),
    (["--from", "KESBANGPOL", "--to", "KOTA-SERANG", "--class", "SR", "--at", "2026-03-20T10:00:00+07:00"], 0,
     ["r-lebaran-2026"]),
])
def test_explain(run_sandi: RunSandi, args: list[str], code: int, words: list[str]) -> None:
    extra = [] if "--at" in args else ["--at", JUNE]
    r = run_sandi("policy", "explain", *args, *extra, "--policy", BANTEN)
    assert r.code == code, r
    for w in words:
        assert w in r.stdout, r.stdout


def test_explain_json_and_bad_time(run_sandi: RunSandi) -> None:
    r = run_sandi("policy", "explain", "--json", "--from", "RSUD", "--to", "KAB-LEBAK", "--class", "R",
                  "--at", JUNE, "--policy", BANTEN)
    assert r.code == 3
    data = json.loads(r.stdout)
    assert data["decision"] == "deny" and data["rule"] == "f-rsud-regions"
    r = run_sandi("policy", "explain", "--from", "A", "--to", "B", "--class", "R", "--at", "tomorrow",
                  "--policy", BANTEN)
    assert r.code == 2 and "ISO 8601" in r.stderr


def test_test_command(run_sandi: RunSandi, tmp_path: Path) -> None:
    r = run_sandi("policy", "test", CASES)
    assert r.code == 0 and "0 failed" in r.stdout
    bad = tmp_path / "cases.toml"
    bad.write_text(f'policy = "{BANTEN}"\nat = {JUNE}\n\n[[case]]\nname = "oops"\nfrom = "DINSOS"\n'
                   'to = "KESBANGPOL"\nclass = "SR"\nexpect = "allow"\n')
    r = run_sandi("policy", "test", bad)
    assert r.code == 1
    assert "FAIL cases.toml:4: oops: expected allow, got deny" in r.stdout
    assert "1 of 1 policy test case(s) failed" in r.stderr
    r = run_sandi("--json", "policy", "test", bad)
    assert json.loads(r.stdout)["failed"] == 1 and r.code == 1


def test_diff_command(run_sandi: RunSandi, tmp_path: Path) -> None:
    new = tmp_path / "v2.toml"
    new.write_text(BANTEN.read_text().replace("version = 1", "version = 2", 1)
                   + '\n[[relation]]\nid = "r-new"\nfrom = "DISPAR"\nto = "BPBD"\nmax = "R"\n'
                   'direction = "one-way"\n')
    r = run_sandi("policy", "diff", BANTEN, new)
    assert r.code == 0
    assert "relation 'r-new' added" in r.stdout and "opens DISPAR → BPBD: T -> R" in r.stdout
    data = json.loads(run_sandi("policy", "diff", BANTEN, new, "--json").stdout)
    assert data["opens"] == 1 and data["closes"] == 0
    assert "no changes" in run_sandi("policy", "diff", BANTEN, BANTEN).stdout


def test_graph_command(run_sandi: RunSandi, tmp_path: Path) -> None:
    r = run_sandi("policy", "graph", "--policy", BANTEN)
    assert r.code == 0 and r.stdout.startswith("digraph")
    r = run_sandi("policy", "graph", "--policy", BANTEN, "--format", "svg")
    assert r.code == 2 and "needs -o" in r.stderr
    if shutil.which("dot"):
        out = tmp_path / "b.svg"
        r = run_sandi("policy", "graph", "--policy", BANTEN, "--format", "svg", "-o", out)
        assert r.code == 0 and out.read_bytes().startswith(b"<?xml")


def test_graph_without_dot(run_sandi: RunSandi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    r = run_sandi("policy", "graph", "--policy", BANTEN, "--format", "png", "-o", tmp_path / "x.png")
    assert r.code == 1 and "Graphviz 'dot' is not installed" in r.stderr


def test_apply_versions_and_active_policy(run_sandi: RunSandi, authority: Path, tmp_path: Path) -> None:
    r = run_sandi("--home", authority, "policy", "apply", BANTEN)
    assert r.code == 0, r
    assert "applied banten-phks v1" in r.stdout
    r = run_sandi("--home", authority, "policy", "apply", BANTEN)
    assert r.code == 1 and "not newer than the stored version 1" in r.stderr
    r = run_sandi("--home", authority, "policy", "apply", BAD / "unknown_entity.toml")
    assert r.code == 1 and "BAPEDA" in r.stderr
    r = run_sandi("--home", authority, "--json", "policy", "versions")
    rows = json.loads(r.stdout)
    assert [(x["version"], x["applied_by"]) for x in rows] == [(1, "op-test")]
    # commands without a policy file use the active version
    r = run_sandi("--home", authority, "policy", "explain", "--from", "DINSOS", "--to", "KESBANGPOL",
                  "--class", "SR", "--at", JUNE)
    assert r.code == 3 and "banten-phks v1" in r.stdout
    r = run_sandi("--home", authority, "policy", "show", "--at", JUNE)
    assert r.code == 0 and "banten-phks" in r.stdout
    r = run_sandi("--home", authority, "policy", "show", "--at", "2020-01-01T00:00:00Z")
    assert r.code == 1 and "no policy version is in force" in r.stderr


@pytest.mark.parametrize("sub", ["validate", "lint", "show", "explain", "test", "diff", "graph", "apply",
                                 "versions"])
def test_every_help_has_an_example(run_sandi: RunSandi, sub: str) -> None:
    r = run_sandi("policy", sub, "--help")
    assert r.code == 0 and "Example:" in r.stdout
