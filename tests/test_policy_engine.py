"""Decisions of the compiled policy engine, as tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from sandi.errors import PolicyDenied, UsageError
from sandi.policy import PolicyDecisionDenied, compile_source

WIB = timezone(timedelta(hours=7))
AT = datetime(2026, 6, 1, 9, 0, tzinfo=WIB)

POLICY = """
[policy]
id = "unit"
title = "Unit-test policy"
version = 3
effective = 2026-01-01
expires = 2027-01-01
timezone = "+07:00"
decree = "test"

[entities]
GUB = { name = "Gubernur", kind = "leader" }
A1 = { name = "Agency 1", kind = "agency" }
A2 = { name = "Agency 2", kind = "agency" }
A3 = { name = "Agency 3", kind = "agency" }
HUB = { name = "Hub", kind = "agency" }
K1 = { name = "Kabupaten 1", kind = "regency" }
C1 = { name = "Kota 1", kind = "city" }
PUSAT = { name = "Pusat", kind = "central" }

[groups.AG]
members = ["A1", "A2", "A3", "HUB"]

[groups.REG]
members = ["K1"]

[groups.CIT]
members = ["C1"]

[groups.REGIONS]
members = ["REG", "CIT"]

[[relation]]
id = "r-gub"
from = "GUB"
to = "AG"
max = "SR"
direction = "both"

[[relation]]
id = "r-peer"
from = "AG"
to = "AG"
max = "T"
direction = "both"

[[relation]]
id = "r-hub"
from = "AG"
to = "HUB"
max = "R"
direction = "one-way"
network = "JKS"

[[relation]]
id = "r-regions"
from = "AG"
to = "REGIONS"
max = "R"
direction = "both"

[[relation]]
id = "r-any-pusat"
from = "*"
to = "PUSAT"
max = "B"
direction = "one-way"

[[relation]]
id = "r-window"
from = "A1"
to = "K1"
max = "SR"
direction = "one-way"
valid_from = 2026-03-01
valid_until = 2026-04-01

[[forbid]]
id = "f-a3-regions"
from = "A3"
to = "REGIONS"
above = "T"
direction = "one-way"

[[forbid]]
id = "f-a2-c1"
from = "A2"
to = "C1"
direction = "both"

[[forbid]]
id = "f-window"
from = "A1"
to = "A2"
direction = "one-way"
valid_from = 2026-07-01
valid_until = 2026-08-01
"""


@pytest.fixture(scope="module")
def engine():  # type: ignore[no-untyped-def]
    return compile_source(POLICY, "unit.toml")


CASES = [
    # group membership
    ("GUB", "A1", "SR", AT, True, "r-gub"),
    ("A2", "GUB", "SR", AT, True, "r-gub"),
    ("A1", "A2", "T", AT, True, "r-peer"),
    ("A1", "A2", "R", AT, False, None),
    # nested groups
    ("A1", "K1", "R", AT, True, "r-regions"),
    ("C1", "A2", "R", AT, False, "f-a2-c1"),
    ("A1", "C1", "R", AT, True, "r-regions"),
    # directions: one-way hub, both-way regions
    ("A1", "HUB", "R", AT, True, "r-hub"),
    ("HUB", "A1", "R", AT, False, None),
    ("K1", "A1", "R", AT, True, "r-regions"),
    # wildcard
    ("K1", "PUSAT", "B", AT, True, "r-any-pusat"),
    ("GUB", "PUSAT", "B", AT, True, "r-any-pusat"),
    ("GUB", "PUSAT", "T", AT, False, None),
    ("PUSAT", "GUB", "B", AT, False, None),
    # ceilings at every level (r-hub: up to R)
    ("A2", "HUB", "B", AT, True, "r-peer"),
    ("A2", "HUB", "T", AT, True, "r-peer"),
    ("A2", "HUB", "R", AT, True, "r-hub"),
    ("A2", "HUB", "SR", AT, False, None),
    # forbid over allow, with a threshold, one-way
    ("A3", "K1", "T", AT, True, "r-regions"),
    ("A3", "K1", "R", AT, False, "f-a3-regions"),
    ("K1", "A3", "R", AT, True, "r-regions"),
    # forbid without threshold, both ways
    ("A2", "C1", "B", AT, False, "f-a2-c1"),
    ("C1", "A2", "B", AT, False, "f-a2-c1"),
    # relation validity window
    ("A1", "K1", "SR", datetime(2026, 3, 15, tzinfo=UTC), True, "r-window"),
    ("A1", "K1", "SR", datetime(2026, 2, 28, 16, 59, tzinfo=UTC), False, None),  # 23:59 WIB
    ("A1", "K1", "SR", datetime(2026, 2, 28, 17, 0, tzinfo=UTC), True, "r-window"),  # 00:00 WIB
    ("A1", "K1", "SR", datetime(2026, 4, 1, tzinfo=WIB), False, None),
    # forbid validity window
    ("A1", "A2", "B", datetime(2026, 7, 15, tzinfo=WIB), False, "f-window"),
    ("A1", "A2", "B", datetime(2026, 8, 1, tzinfo=WIB), True, "r-peer"),
    # the policy's own window: not yet effective, expired (deny all)
    ("GUB", "A1", "B", datetime(2025, 12, 31, 23, 59, tzinfo=WIB), False, None),
    ("GUB", "A1", "B", datetime(2026, 1, 1, tzinfo=WIB), True, "r-gub"),
    ("GUB", "A1", "B", datetime(2027, 1, 1, tzinfo=WIB), False, None),
    ("GUB", "A1", "B", datetime(2030, 1, 1, tzinfo=UTC), False, None),
    # unknown entities and levels
    ("NOBODY", "A1", "B", AT, False, None),
    ("A1", "NOBODY", "B", AT, False, None),
    ("A1", "A2", "XX", AT, False, None),
    ("A1", "AG", "B", AT, False, None),  # a group is not an entity
]


@pytest.mark.parametrize(("sender", "recipient", "level", "at", "allowed", "rule"), CASES)
def test_decisions(engine, sender, recipient, level, at, allowed, rule):  # type: ignore[no-untyped-def]
    d = engine.decide(sender, recipient, level, at)
    assert (d.allowed, d.rule_id) == (allowed, rule), d.reason
    assert d.policy_id == "unit" and d.policy_version == 3
    if rule is not None:
        assert f"'{rule}'" in d.reason
    elif not allowed:
        assert d.reason


@pytest.mark.parametrize(("sender", "recipient", "level", "at", "basis", "words"), [
    ("A1", "A2", "R", AT, "no-rule", ["no rule allows A1 → A2 at R", "'r-peer'", "up to T"]),
    ("HUB", "PUSAT", "T", AT, "no-rule", ["no rule allows", "'r-any-pusat'"]),
    ("PUSAT", "GUB", "B", AT, "no-rule", ["no rule allows", "no relation covers this pair"]),
    ("A3", "K1", "R", AT, "forbid", ["forbid 'f-a3-regions'", "above T"]),
    ("A2", "C1", "B", AT, "forbid", ["forbid 'f-a2-c1'", "at any level"]),
    ("GUB", "A1", "B", datetime(2027, 2, 1, tzinfo=UTC), "not-in-force", ["not in force", "allows nothing"]),
    ("A11", "A2", "B", AT, "unknown-entity", ["unknown sender 'A11'", "did you mean A1?"]),
    ("A1", "Z9", "B", AT, "unknown-entity", ["unknown recipient 'Z9'"]),
    ("A1", "A2", "S", AT, "unknown-level", ["unknown classification 'S'", "B, T, R, SR"]),
    ("A1", "HUB", "R", AT, "relation", ["relation 'r-hub' allows A1 → HUB up to R (Rahasia) on JKS"]),
])
def test_reasons(engine, sender, recipient, level, at, basis, words):  # type: ignore[no-untyped-def]
    d = engine.decide(sender, recipient, level, at)
    assert d.basis == basis
    for w in words:
        assert w in d.reason


def test_require_allowed_raises_policy_denied_with_rule(engine):  # type: ignore[no-untyped-def]
    assert engine.require_allowed("A1", "HUB", "R", AT).rule_id == "r-hub"
    with pytest.raises(PolicyDenied) as info:
        engine.require_allowed("A3", "K1", "R", AT)
    exc = info.value
    assert isinstance(exc, PolicyDecisionDenied)
    assert exc.exit_code == 3
    assert exc.rule_id == "f-a3-regions" and exc.decision.basis == "forbid"
    assert "f-a3-regions" in str(exc) and "unit v3" in str(exc)
    assert "policy explain" in exc.hint


def test_require_all_stops_at_first_denial(engine):  # type: ignore[no-untyped-def]
    assert len(engine.require_all("A1", ["A2", "HUB"], "T", AT)) == 2
    with pytest.raises(PolicyDecisionDenied) as info:
        engine.require_all("A1", ["A2", "NOBODY", "HUB"], "T", AT)
    assert info.value.decision.recipient == "NOBODY"


def test_naive_time_is_a_usage_error(engine):  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError):
        engine.decide("A1", "A2", "B", datetime(2026, 6, 1))


def test_decisions_are_repeatable_through_the_pair_memo(engine):  # type: ignore[no-untyped-def]
    first = [engine.decide(s, r, lv, at) for s, r, lv, at, _, _ in CASES]
    again = [engine.decide(s, r, lv, at) for s, r, lv, at, _, _ in CASES]
    assert first == again


def test_ceiling_and_matching_rules(engine):  # type: ignore[no-untyped-def]
    assert engine.ceiling("A2", "HUB") == "R"
    assert engine.ceiling("A3", "K1") == "T"  # forbid caps the relation
    assert engine.ceiling("A2", "C1") is None
    assert engine.ceiling("A1", "K1") == "SR"  # windows ignored
    assert engine.ceiling("A1", "K1", AT) == "R"
    assert engine.matching_rules("A3", "K1") == (["f-a3-regions"], ["r-regions"])
    assert engine.matching_rules("X", "K1") == ([], [])


def test_decision_to_dict(engine):  # type: ignore[no-untyped-def]
    d = engine.decide("A1", "HUB", "R", AT).to_dict()
    assert d["decision"] == "allow" and d["rule"] == "r-hub" and d["class"] == "R"


def test_engine_imports_no_sqlalchemy_and_no_crypto() -> None:
    import subprocess
    import sys

    code = ("import sys, sandi.policy; "
            "from sandi.policy import compile_source; "
            "bad = [m for m in ('sqlalchemy', 'cryptography', 'click') if m in sys.modules]; "
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
