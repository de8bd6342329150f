"""Loading and validating policy files: the bad-file corpus, the Banten policy, fuzzing."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandi.errors import PolicyError
from sandi.policy import PolicyFileError, load_policy, parse_policy
from sandi.policy.locate import Locator

ROOT = Path(__file__).resolve().parent.parent
BAD = Path(__file__).parent / "policy_corpus" / "bad"
BANTEN = ROOT / "policies" / "banten.toml"

# file -> (line of the first problem or None, words the message must contain)
CORPUS = {
    "syntax_error.toml": (10, ["TOML syntax error"]),
    "duplicate_entity.toml": (12, ["TOML syntax error", "Cannot overwrite"]),
    "not_utf8.toml": (13, ["not valid UTF-8"]),
    "unknown_top_key.toml": (20, ["top level", "unknown key 'extras'"]),
    "unknown_policy_key.toml": (7, ["[policy]", "unknown key 'decre'", "did you mean decree?"]),
    "unknown_relation_key.toml": (18, ["relation 'r1'", "unknown key 'maximum'"]),
    "unknown_entity.toml": (16, ["relation 'r1'", "unknown entity 'BAPEDA'", "did you mean BAPPEDA?"]),
    "unknown_group_member.toml": (14, ["group 'G'", "unknown entity or group 'DINKES'"]),
    "group_cycle.toml": (17, ["group cycle", "G1 -> G2 -> G1"]),
    "group_self_cycle.toml": (14, ["group cycle: G -> G"]),
    "empty_group.toml": (14, ["group 'G'", "empty group"]),
    "wildcard_in_group.toml": (14, ["'*' cannot be a group member"]),
    "group_entity_clash.toml": (13, ["'A' is already an entity"]),
    "bad_level.toml": (17, ["unknown classification level 'X'", "B, T, R, SR"]),
    "bad_forbid_level.toml": (24, ["forbid 'f1'", "unknown classification level 'SS'"]),
    "duplicate_level.toml": (14, ["duplicate level code 'B'"]),
    "bad_date.toml": (5, ["'effective' must be a TOML date", "1 Januari 2026"]),
    "time_only_date.toml": (6, ["'expires' must be a TOML date"]),
    "expiry_before_effective.toml": (6, ["expires", "is not after effective"]),
    "window_inverted.toml": (20, ["valid_until", "is not after valid_from"]),
    "duplicate_id.toml": (21, ["duplicate id 'r1'"]),
    "duplicate_id_forbid.toml": (21, ["forbid 'r1'", "duplicate id 'r1'", "relation"]),
    "bad_direction.toml": (18, ["direction must be \"one-way\" or \"both\"", "both-ways"]),
    "bad_kind.toml": (10, ["unknown kind 'agensi'", "did you mean agency?"]),
    "bad_version.toml": (4, ["version must be a positive integer"]),
    "bad_timezone.toml": (7, ["timezone must be a UTC offset"]),
    "bad_entity_code.toml": (10, ["entity 'agency_a'", "upper-case"]),
    "entity_not_table.toml": (10, ["entity 'A'", "must be a table"]),
    "empty_from.toml": (15, ["'from' must be a name or a non-empty list"]),
    "missing_max.toml": (13, ["missing required key 'max'"]),
    "missing_policy.toml": (None, ["missing the [policy] table"]),
    "relations_not_array.toml": (13, ["must be an array of tables [[relation]]"]),
}


def test_corpus_is_complete() -> None:
    assert sorted(p.name for p in BAD.glob("*.toml")) == sorted(CORPUS)
    assert len(CORPUS) >= 20


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_bad_file_gives_located_clear_error(name: str) -> None:
    line, words = CORPUS[name]
    with pytest.raises(PolicyFileError) as info:
        load_policy(BAD / name)
    exc = info.value
    assert isinstance(exc, PolicyError) and exc.exit_code == 1
    first = exc.problems[0]
    assert first.source == name
    assert first.line == line
    text = str(first)
    assert text.startswith(f"{name}:{line}: " if line else f"{name}: ")
    for w in words:
        assert w in text, text
    assert exc.hint


def test_all_problems_are_reported_at_once() -> None:
    src = (BAD / "unknown_entity.toml").read_text().replace('max = "R"', 'max = "Q"')
    with pytest.raises(PolicyFileError) as info:
        parse_policy(src, "two.toml")
    messages = [p.message for p in info.value.problems]
    assert any("BAPEDA" in m for m in messages) and any("'Q'" in m for m in messages)


def test_banten_policy_loads() -> None:
    p = load_policy(BANTEN)
    assert p.id == "banten-phks" and p.version >= 1
    kinds = {}
    for e in p.entities.values():
        kinds[e.kind] = kinds.get(e.kind, 0) + 1
    assert kinds == {"leader": 2, "agency": 34, "regency": 4, "city": 4, "central": 4}
    assert [lv.code for lv in p.levels] == ["B", "T", "R", "SR"]
    assert [lv.name for lv in p.levels] == ["Biasa", "Terbatas", "Rahasia", "Sangat Rahasia"]
    assert p.forbids and any(not r.window.unbounded for r in p.relations)


def test_default_levels_and_custom_levels() -> None:
    base = (BAD.parent.parent / "policy_corpus" / "bad" / "missing_max.toml").read_text()
    ok = base.replace('direction = "one-way"', 'max = "SR"\ndirection = "one-way"')
    assert [lv.code for lv in parse_policy(ok).levels] == ["B", "T", "R", "SR"]
    custom = ok.replace("[entities]", '[[level]]\ncode = "TERBUKA"\nname = "Terbuka"\n\n'
                        '[[level]]\ncode = "RHS"\nname = "Rahasia"\n\n[entities]').replace('"SR"', '"RHS"')
    p = parse_policy(custom)
    assert [(lv.code, lv.rank) for lv in p.levels] == [("TERBUKA", 0), ("RHS", 1)]


def test_missing_file_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(tmp_path / "nope.toml")


def test_oversized_source_is_refused_before_parsing() -> None:
    from sandi.policy import loader

    with pytest.raises(PolicyFileError, match="limit"):
        parse_policy(b"#" * (loader.MAX_SOURCE_BYTES + 1), "big.toml")


def test_locator_finds_tables_keys_and_values() -> None:
    text = BANTEN.read_text()
    loc = Locator(text)
    lines = text.splitlines()
    n = loc.line(("relation", 0, "max"))
    assert n is not None and lines[n - 1].strip().startswith("max")
    n = loc.line(("entities", "BAPPEDA"))
    assert n is not None and lines[n - 1].startswith("BAPPEDA =")
    n = loc.line(("groups", "AGENCIES", "members"), "DISPAR")
    assert n is not None and '"DISPAR"' in lines[n - 1]
    assert loc.line(("relation", 999)) is None


MUTATIONS = st.lists(
    st.tuples(st.integers(min_value=0, max_value=20_000),
              st.sampled_from(["", "[", "]", "=", '"', "\n", "x", "SR", "*", "[[relation]]\n", "0"])),
    min_size=1, max_size=4,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MUTATIONS)
def test_mutated_banten_never_crashes(mutations: list[tuple[int, str]]) -> None:
    text = BANTEN.read_text()
    for pos, insert in mutations:
        pos %= len(text)
        text = text[:pos] + insert + text[pos + 1:]
    try:
        parse_policy(text, "mutant.toml")
    except PolicyError as exc:
        assert str(exc)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_crash(data: bytes) -> None:
    with contextlib.suppress(PolicyError):
        parse_policy(data, "random.toml")


def _policy_with_entities(count: int) -> str:
    entities = "\n".join(f'E{i:06d} = {{ name = "Perangkat Daerah {i}", kind = "agency" }}' for i in range(count))
    return ('[policy]\nid = "national"\ntitle = "National"\nversion = 1\neffective = 2026-01-01\n'
            'expires = 2027-01-01\ndecree = "Keputusan 1/2026"\n\n'
            f'[entities]\n{entities}\n\n[[relation]]\nid = "r1"\nfrom = "E000000"\n'
            'to = "E000001"\nmax = "R"\ndirection = "one-way"\n')


def test_national_scale_entity_count_loads_and_the_cap_still_holds() -> None:
    from sandi.policy import loader

    assert loader.MAX_ENTITIES >= 100_000
    big = parse_policy(_policy_with_entities(20_001), "national.toml")  # refused at the old cap of 20,000
    assert len(big.entities) == 20_001
    with pytest.raises(PolicyFileError, match="the limit is"):
        parse_policy(_policy_with_entities(loader.MAX_ENTITIES + 1), "too-many.toml")
