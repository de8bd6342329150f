"""The ``post_quantum`` level rule in the PHKS file format and the ``pq`` key profile."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandi.authority.profiles import PQ_PROFILE_TOML, load_profile, parse_profile
from sandi.errors import UsageError
from sandi.policy import PolicyFileError, compile_policy, parse_policy

ROOT = Path(__file__).parents[1]
BANTEN = (ROOT / "policies" / "banten.toml").read_text()


def _with_pq(text: str, *codes: str, value: str = "true") -> str:
    for code in codes:
        text = text.replace(f'code = "{code}"\n', f'code = "{code}"\npost_quantum = {value}\n', 1)
    return text


def test_policies_without_the_rule_decide_as_before() -> None:
    policy = parse_policy(BANTEN)
    assert not any(level.post_quantum for level in policy.levels)
    compiled = compile_policy(policy)
    assert not any(compiled.requires_post_quantum(lv.code) for lv in policy.levels)


def test_rule_per_level() -> None:
    policy = parse_policy(_with_pq(BANTEN, "R", "SR"))
    assert {lv.code: lv.post_quantum for lv in policy.levels} == {"B": False, "T": False, "R": True, "SR": True}
    compiled = compile_policy(policy)
    assert compiled.requires_post_quantum("SR") and compiled.requires_post_quantum("R")
    assert not compiled.requires_post_quantum("T") and not compiled.requires_post_quantum("XX")
    levels = policy.summary()["levels"]
    assert isinstance(levels, list) and levels[2] == {"code": "R", "name": "Rahasia", "rank": 2,
                                                       "post_quantum": True}


def test_a_higher_level_must_keep_the_rule() -> None:
    with pytest.raises(PolicyFileError, match="must require it too"):
        parse_policy(_with_pq(BANTEN, "R"))


def test_the_rule_is_a_boolean() -> None:
    with pytest.raises(PolicyFileError, match="'post_quantum' must be true or false"):
        parse_policy(_with_pq(BANTEN, "SR", value='"yes"'))


def test_schema_knows_the_rule() -> None:
    import json

    schema = json.loads((ROOT / "policies" / "sandi-policy.schema.json").read_text())
    props = schema["properties"]["level"]["items"]["properties"]
    assert props["post_quantum"]["type"] == "boolean"


def test_policy_show_and_explain(run_sandi, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "p.toml"
    path.write_text(_with_pq(BANTEN, "R", "SR"))
    shown = run_sandi("policy", "show", path)
    assert shown.code == 0 and "R Rahasia [post-quantum]" in shown.stdout and "T Terbatas [" not in shown.stdout
    explained = run_sandi("policy", "explain", "--from", "DISKOMINFO", "--to", "BAPPEDA", "--class", "SR",
                          "--policy", path, "--at", "2026-06-01T09:00:00+07:00")
    assert "sealing: post-quantum only" in explained.stdout


def test_pq_profile_is_shipped_and_strict() -> None:
    assert (ROOT / "keys" / "pq.toml").read_text() == PQ_PROFILE_TOML
    profile = load_profile("pq")
    assert profile.purposes == ("signing", "encryption", "encryption-pq")
    assert profile.validity_days("encryption-pq") == 365
    assert load_profile("default").purposes == ("signing", "encryption")
    with pytest.raises(UsageError, match="mlkem768x25519"):
        parse_profile(PQ_PROFILE_TOML.replace('algorithm = "mlkem768x25519"', 'algorithm = "kyber"'),
                      source="x.toml")
    with pytest.raises(UsageError, match="unknown key"):
        parse_profile(PQ_PROFILE_TOML.replace("validity_days = 365\n\n[rotation]",
                                              "validity_days = 365\nlevel = 3\n\n[rotation]"), source="x.toml")
