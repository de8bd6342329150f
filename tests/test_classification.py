"""``--class`` by code or by name, in either language and any case; shown by its name."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest

from sandi.errors import UsageError
from sandi.policy import load_policy
from sandi.policy.classification import (
    DEFAULT_LEVEL_OBJECTS,
    describe_levels,
    find_level,
    level_label,
    resolve_level,
)
from sandi.policy.model import Level
from tests import authority_fixtures as fx
from tests.authority_fixtures import BANTEN_POLICY, AuthorityHome
from tests.conftest import RunSandi

authority_template = fx.authority_template
authority = fx.authority
policy_authority_template = fx.policy_authority_template
policy_authority = fx.policy_authority


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("SR", "SR"), ("sr", "SR"), ("Sangat Rahasia", "SR"), ("sangat-rahasia", "SR"),
        ("SANGAT_RAHASIA", "SR"), ("  sangat   rahasia ", "SR"), ("Top Secret", "SR"), ("top-secret", "SR"),
        ("R", "R"), ("r", "R"), ("Rahasia", "R"), ("RAHASIA", "R"), ("Secret", "R"),
        ("T", "T"), ("Terbatas", "T"), ("restricted", "T"),
        ("B", "B"), ("b", "B"), ("Biasa", "B"), ("Terbuka", "B"), ("Unclassified", "B"),
    ],
)
def test_default_levels_resolve_by_code_name_and_alias(typed: str, code: str) -> None:
    assert resolve_level(typed).code == code


@pytest.mark.parametrize("typed", ["", "  ", "Rahas", "S", "Sangat", "Rahasia Negara", "secrets", "X"])
def test_no_prefix_or_guess_is_accepted(typed: str) -> None:
    assert find_level(typed) is None
    with pytest.raises(UsageError) as info:
        resolve_level(typed)
    assert info.value.hint == "give a code or a name: SR (Sangat Rahasia), R (Rahasia), T (Terbatas), B (Biasa)"


def test_a_policy_with_its_own_labels() -> None:
    levels = (Level("U", "Umum", 0), Level("K", "Konfidensial", 1), Level("SR", "Sangat Rahasia", 2))
    assert resolve_level("konfidensial", levels).code == "K"
    assert resolve_level("top secret", levels).code == "SR"  # the alias of a default name it uses
    assert find_level("Rahasia", levels) is None  # a default name this policy does not have
    assert find_level("secret", levels) is None
    assert level_label("K", levels) == "Konfidensial (K)"
    assert describe_levels(levels) == "SR (Sangat Rahasia), K (Konfidensial), U (Umum)"


def test_a_code_wins_over_a_name() -> None:
    # A (contrived) policy whose level named "R" is not the level coded R.
    levels = (Level("X", "R", 0), Level("R", "Rahasia", 1))
    assert resolve_level("r", levels).code == "R"


def test_the_banten_policy_uses_the_default_levels() -> None:
    assert [(lv.code, lv.name) for lv in load_policy(BANTEN_POLICY).levels] == [
        (lv.code, lv.name) for lv in DEFAULT_LEVEL_OBJECTS]


def test_seal_by_name_and_shown_by_name(authority: AuthorityHome, tmp_path: Path) -> None:
    doc = tmp_path / "surat.txt"
    doc.write_text("Dengan hormat\n")
    r = authority.run("seal", doc, "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "Rahasia")
    assert r.code == 0, r
    assert re.search(r"^  Classification: +Rahasia \(R\)$", r.stdout, re.M)
    r = authority.run("--json", "open", tmp_path / "surat.txt.sandi", "--as", "BAPPEDA",
                      "-o", tmp_path / "dibuka.txt")
    assert r.code == 0, r
    assert json.loads(r.stdout)["classification"] == "R"  # machine output keeps the code
    r = authority.run("--lang", "id", "inspect", tmp_path / "surat.txt.sandi", "--as", "BAPPEDA")
    assert r.code == 0, r
    assert re.search(r"^  Klasifikasi: +Rahasia \(R\)$", r.stdout, re.M)


@pytest.mark.parametrize("typed", ["sangat-rahasia", "Top Secret", "SR"])
def test_encrypt_and_sign_take_names(authority: AuthorityHome, tmp_path: Path, typed: str) -> None:
    doc = tmp_path / "data.txt"
    doc.write_text("x\n")
    r = authority.run("encrypt", "-r", "BAPPEDA", "--as", "DISKOMINFO", "--class", typed,
                      "-o", tmp_path / "data.age", doc)
    assert r.code == 0, r
    r = authority.run("--json", "sign", doc, "--as", "DISKOMINFO", "--class", typed)
    assert r.code == 0, r
    r = authority.run("--json", "verify", doc)
    assert json.loads(r.stdout)["classification"] == "SR"


def test_an_unknown_classification_is_a_usage_error(authority: AuthorityHome, tmp_path: Path) -> None:
    doc = tmp_path / "surat.txt"
    doc.write_text("x\n")
    r = authority.run("seal", doc, "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "Rahasia Negara")
    assert r.code == 2
    assert "unknown classification 'Rahasia Negara'" in r.stderr
    assert "SR (Sangat Rahasia), R (Rahasia), T (Terbatas), B (Biasa)" in r.stderr
    assert not (tmp_path / "surat.txt.sandi").exists()
    r = authority.run("--lang", "id", "seal", doc, "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "X")
    assert r.code == 2 and "klasifikasi 'X' tidak dikenal" in r.stderr


def test_policy_explain_by_name(policy_authority: AuthorityHome) -> None:
    r = policy_authority.run("policy", "explain", "--from", "DISKOMINFO", "--to", "BAPPEDA",
                             "--class", "rahasia", "--policy", BANTEN_POLICY)
    assert r.code == 0, r
    assert "at Rahasia (R)" in r.stdout
    r = policy_authority.run("--json", "policy", "explain", "--from", "DINSOS", "--to", "KESBANGPOL",
                             "--class", "Sangat Rahasia", "--policy", BANTEN_POLICY)
    assert json.loads(r.stdout)["class"] == "SR"


def test_completion_offers_the_policy_codes(policy_authority: AuthorityHome) -> None:
    from click.shell_completion import ShellComplete
    from sandi_cli.classes import CLASSIFICATION
    from sandi_cli.main import cli

    def complete(incomplete: str, home: Path | None) -> list[str]:
        args = (["--home", str(home)] if home else []) + ["seal", "--class"]
        completer = ShellComplete(cli, {}, "sandi", "_SANDI_COMPLETE")
        return [item.value for item in completer.get_completions(args, incomplete)]

    assert complete("", policy_authority.path) == ["SR", "R", "T", "B"]
    assert complete("s", policy_authority.path) == ["SR"]
    assert complete("", None) == ["SR", "R", "T", "B"]  # no home: the defaults
    ctx = click.Context(cli)
    assert [i.help for i in CLASSIFICATION.shell_complete(ctx, cli.params[0], "")] == [
        "Sangat Rahasia", "Rahasia", "Terbatas", "Biasa"]


def test_policy_test_cases_may_name_the_classification(tmp_path: Path, run_sandi: RunSandi) -> None:
    cases = tmp_path / "cases.toml"
    cases.write_text(f'''policy = "{BANTEN_POLICY.as_posix()}"
at = 2026-06-01T09:00:00+07:00

[[case]]
name = "by name"
from = "DISKOMINFO"
to = "BAPPEDA"
class = "Rahasia"
expect = "allow"

[[case]]
name = "by another spelling"
from = "DINSOS"
to = "KESBANGPOL"
class = "sangat-rahasia"
expect = "deny"
''')
    r = run_sandi("--home", tmp_path / "none", "--json", "policy", "test", cases)
    assert r.code == 0, r
    assert json.loads(r.stdout)["passed"] == 2
