"""Lint, test cases, diff and graph of policies."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sandi.errors import NotFoundError
from sandi.policy import compile_policy, load_policy, parse_policy
from sandi.policy.diff import diff_policies
from sandi.policy.graph import render, to_dot
from sandi.policy.lint import lint_policy
from sandi.policy.loader import PolicyFileError
from sandi.policy.testing import load_cases, parse_cases, run_cases

ROOT = Path(__file__).resolve().parent.parent
BANTEN = ROOT / "policies" / "banten.toml"
CASES = ROOT / "policies" / "banten-tests.toml"

HEAD = """
[policy]
id = "lint"
title = "Lint"
version = 1
effective = 2026-01-01
expires = 2027-01-01
decree = "d"

[entities]
A = { name = "A", kind = "agency" }
B = { name = "B", kind = "agency" }
C = { name = "C", kind = "agency" }
LONELY = { name = "Lonely", kind = "city" }

[groups.AB]
members = ["A", "B"]
"""


def rel(rid: str, src: str, dst: str, level: str, direction: str = "one-way", extra: str = "") -> str:
    return (f'\n[[relation]]\nid = "{rid}"\nfrom = "{src}"\nto = "{dst}"\nmax = "{level}"\n'
            f'direction = "{direction}"\n{extra}')


def forbid(fid: str, src: str, dst: str, above: str | None = None, extra: str = "") -> str:
    a = f'above = "{above}"\n' if above else ""
    return f'\n[[forbid]]\nid = "{fid}"\nfrom = "{src}"\nto = "{dst}"\n{a}direction = "one-way"\n{extra}'


LINT_CASES = [
    ("no-relation", rel("r1", "AB", "C", "T"), "LONELY", "has no relation"),
    ("unused-group", rel("r1", "A", "B", "T") + rel("r2", "*", "LONELY", "B"), "AB", "not used"),
    ("shadowed", rel("r1", "AB", "C", "R") + rel("r2", "A", "C", "T") + rel("r3", "*", "LONELY", "B"),
     "r2", "already allowed up to T or higher by 'r1'"),
    ("shadowed", rel("r1", "*", "*", "SR") + rel("r2", "AB", "AB", "SR", "both"), "r2", "'r1'"),
    ("never-applies", rel("r1", "AB", "*", "T") + rel("r2", "C", "A", "R", extra="valid_from = 2027-02-01\n"),
     "r2", "lies outside the policy's"),
    ("never-applies", rel("r1", "AB", "*", "T") + rel("r2", "C", "LONELY", "R") + forbid("f1", "C", "*"),
     "r2", "forbids deny every pair"),
    ("forbid-no-effect", rel("r1", "AB", "*", "T") + rel("r2", "C", "A", "T") + forbid("f1", "C", "A", "T"),
     "f1", "overrides no relation"),
]


@pytest.mark.parametrize(("code", "rules", "subject", "words"), LINT_CASES)
def test_lint_warnings(code: str, rules: str, subject: str, words: str) -> None:
    text = HEAD + rules
    warnings = lint_policy(parse_policy(text, "lint.toml"), text)
    hits = [w for w in warnings if w.code == code and w.subject == subject]
    assert hits, [str(w) for w in warnings]
    assert words in hits[0].message
    assert str(hits[0]).startswith("lint.toml:") and f"warning[{code}]" in str(hits[0])


def test_lint_clean_policy_and_banten() -> None:
    text = HEAD + rel("r1", "AB", "*", "T", "both") + rel("r2", "C", "LONELY", "R")
    assert lint_policy(parse_policy(text), text) == []
    assert lint_policy(load_policy(BANTEN), BANTEN.read_text()) == []


def test_banten_passes_its_own_cases() -> None:
    cases = load_cases(CASES)
    assert cases.policy_path == BANTEN.parent / "banten.toml"
    assert len(cases.cases) >= 30
    results = run_cases(compile_policy(load_policy(BANTEN)), cases)
    assert [r.case.name for r in results if not r.ok] == []
    # every kind of rule decides at least one case
    decided = {r.decision.rule_id for r in results} | {r.decision.basis for r in results}
    p = load_policy(BANTEN)
    assert {r.id for r in p.relations} <= decided
    assert {f.id for f in p.forbids} <= decided
    assert {"no-rule", "unknown-entity", "not-in-force", "unknown-level"} <= decided


def test_case_mismatch_is_reported() -> None:
    cases = parse_cases("""
at = 2026-06-01T00:00:00Z
[[case]]
name = "wrong expectation"
from = "DINSOS"
to = "KESBANGPOL"
class = "SR"
expect = "allow"

[[case]]
name = "wrong rule"
from = "DISKOMINFO"
to = "BAPPEDA"
class = "R"
expect = "allow"
rule = "r-agencies"
""", "c.toml")
    results = run_cases(compile_policy(load_policy(BANTEN)), cases)
    assert [r.ok for r in results] == [False, False]
    assert results[0].problem == "expected allow, got deny"
    assert results[1].problem == "expected rule 'r-agencies', got 'r-kominfo-agencies'"
    assert results[0].case.line == 3


@pytest.mark.parametrize(("text", "words"), [
    ("[[case]]\nfrom='A'\nto='B'\nclass='R'\nexpect='allow'\n", "no time"),
    ("at = 2026-01-01\n[[case]]\nfrom='A'\nto='B'\nclass='R'\nexpect='yes'\n", "expect must be"),
    ("at = 2026-01-01\n[[case]]\nfrom='A'\nto='B'\nclass='R'\nexpect='deny'\nreason='x'\n", "unknown key 'reason'"),
    ("at = 2026-01-01\n", "no test cases"),
    ("at = 2026-01-01\n[[case]]\nto='B'\nclass='R'\nexpect='deny'\n", "missing required key 'from'"),
])
def test_bad_case_files(text: str, words: str) -> None:
    with pytest.raises(PolicyFileError, match=words):
        parse_cases(text, "c.toml")


def test_diff_rule_and_pair_changes() -> None:
    old = load_policy(BANTEN)
    text = BANTEN.read_text().replace("version = 1", "version = 2", 1)
    text = text.replace('id = "r-agencies"\ndescription = "agencies among themselves"\nfrom = "AGENCIES"\n'
                        'to = "AGENCIES"\nmax = "T"', 'id = "r-agencies"\ndescription = "agencies among '
                        'themselves"\nfrom = "AGENCIES"\nto = "AGENCIES"\nmax = "B"')
    text = text.replace('above = "T"\ndirection = "one-way"', 'above = "B"\ndirection = "one-way"')
    text += '\n[[relation]]\nid = "r-new"\nfrom = "DISPAR"\nto = "BPBD"\nmax = "R"\ndirection = "one-way"\n'
    new = parse_policy(text, "v2.toml")
    d = diff_policies(old, new)
    changes = {(r.change, r.id) for r in d.rules}
    assert changes == {("changed", "r-agencies"), ("changed", "f-rsud-regions"), ("added", "r-new")}
    pairs = {(p.sender, p.recipient): p for p in d.pairs}
    assert pairs[("DISPAR", "BPBD")].change == "opens"
    assert (pairs[("DISPAR", "BPBD")].old, pairs[("DISPAR", "BPBD")].new) == ("T", "R")
    assert pairs[("DISPAR", "DISPORA")].change == "closes"
    assert (pairs[("RSUD", "KAB-LEBAK")].old, pairs[("RSUD", "KAB-LEBAK")].new) == ("T", "B")
    assert ("DISKOMINFO", "BAPPEDA") not in pairs
    assert d.to_dict()["opens"] >= 1 and not d.empty
    assert diff_policies(old, old).empty


def test_diff_with_time_respects_windows() -> None:
    old = load_policy(BANTEN)
    text = BANTEN.read_text().replace("valid_from = 2026-03-09\nvalid_until = 2026-04-06\n", "")
    new = parse_policy(text)
    assert any(p.sender == "KESBANGPOL" for p in diff_policies(old, new, datetime(2026, 6, 1, tzinfo=UTC)).pairs)
    assert not diff_policies(old, new).pairs  # windows ignored: same ceilings


def test_dot_output_clusters_kinds_and_labels_edges() -> None:
    dot = to_dot(load_policy(BANTEN))
    assert dot.startswith('digraph "banten-phks"')
    for kind in ("leader", "agency", "regency", "city", "central"):
        assert f'subgraph "cluster_{kind}"' in dot
    assert '"DISKOMINFO" -> "AGENCIES" [label="≤R"' in dot
    assert "✕ >T" in dot and "dir=both" in dot and '"ANY"' in dot


def test_dot_escapes_labels() -> None:
    text = HEAD.replace('title = "Lint"', 'title = "Quote \\" and \\\\ back"') + rel("r1", "*", "*", "B")
    dot = to_dot(parse_policy(text))
    assert 'Quote \\" and \\\\ back' in dot


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz not installed")
@pytest.mark.parametrize(("fmt", "magic"), [("svg", b"<?xml"), ("png", b"\x89PNG")])
def test_render_with_graphviz(tmp_path: Path, fmt: str, magic: bytes) -> None:
    out = tmp_path / f"g.{fmt}"
    render(to_dot(load_policy(BANTEN)), fmt, out)
    assert out.read_bytes().startswith(magic)


def test_render_without_graphviz_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    with pytest.raises(NotFoundError, match="Graphviz 'dot' is not installed") as info:
        render("digraph {}", "svg", tmp_path / "g.svg")
    assert "install-tools.sh" in info.value.hint
    render("digraph {}", "dot", tmp_path / "g.dot")  # dot text needs no Graphviz
    assert (tmp_path / "g.dot").read_text() == "digraph {}"


def test_json_schema_matches_the_loader() -> None:
    import json

    from sandi.policy import loader
    from sandi.policy.model import ENTITY_KINDS

    schema = json.loads((ROOT / "policies" / "sandi-policy.schema.json").read_text())
    props = schema["properties"]
    assert set(props) == set(loader.TOP_KEYS)
    assert set(props["policy"]["properties"]) == set(loader.POLICY_KEYS)
    assert set(props["level"]["items"]["properties"]) == set(loader.LEVEL_KEYS)
    entity = props["entities"]["additionalProperties"]
    assert set(entity["properties"]) == set(loader.ENTITY_KEYS)
    assert entity["properties"]["kind"]["enum"] == list(ENTITY_KINDS)
    assert set(props["groups"]["additionalProperties"]["properties"]) == set(loader.GROUP_KEYS)
    assert set(props["relation"]["items"]["properties"]) == set(loader.RELATION_KEYS)
    assert set(props["forbid"]["items"]["properties"]) == set(loader.FORBID_KEYS)


def test_decision_is_not_usable_as_a_boolean() -> None:
    d = compile_policy(load_policy(BANTEN)).decide("DINSOS", "KESBANGPOL", "SR",
                                                   datetime(2026, 6, 1, tzinfo=UTC))
    with pytest.raises(TypeError, match=r"Decision\.allowed"):
        bool(d)
    assert d.allowed is False
