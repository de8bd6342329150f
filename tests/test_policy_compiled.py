"""The compiled policy: decisions identical to the source's, strict, canonical, signed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandi.directory.snapshot import PolicyEntry
from sandi.errors import FormatError, VerificationError
from sandi.policy import CompiledPolicy, Forbid, PolicyIndex, Relation, parse_policy
from sandi.policy.compiled import MAGIC, MAX_COMPILED_BYTES, LoadedPolicy, dump_compiled, load_compiled
from sandi.policy.loader import PolicyFileError
from sandi.policy.signature import sign_compiled
from sandi.policy.store import apply_policy, get_version
from sandi.policy.versions import load_verified
from sandi.registry import Registry
from tests.test_policy_engine import POLICY as UNIT_POLICY
from tests.test_policy_store import TestSigner

ROOT = Path(__file__).resolve().parent.parent
BANTEN = (ROOT / "policies" / "banten.toml").read_text()
CORPUS_BAD = sorted((ROOT / "tests" / "policy_corpus" / "bad").glob("*.toml"))
WIB = timezone(timedelta(hours=7))


def compiled_text(source: str) -> str:
    return dump_compiled(CompiledPolicy(parse_policy(source)), hashlib.sha256(source.encode()).hexdigest())


def both(source: str) -> tuple[CompiledPolicy, LoadedPolicy]:
    return CompiledPolicy(parse_policy(source)), load_compiled(compiled_text(source).encode("utf-8"))


def times(policy: CompiledPolicy) -> list[datetime]:
    """Instants around every bound the policy and its rules name, and the policy's window."""
    p = policy.policy
    bounds = {p.effective, *([p.expires] if p.expires else [])}
    rules: list[Relation | Forbid] = [*p.relations, *p.forbids]
    for rule in rules:
        bounds.update(b for b in (rule.window.start, rule.window.end) if b is not None)
    out = [p.effective - timedelta(days=1)]
    for b in sorted(bounds):
        out += [b - timedelta(seconds=1), b, b + timedelta(seconds=1)]
    return out


def assert_same(source_compiled: CompiledPolicy, loaded: PolicyIndex, extra_names: tuple[str, ...] = ()) -> None:
    """Every query answers the same, over every pair, level and interesting instant."""
    p = source_compiled.policy
    names = [*p.entities, "NOBODY", *extra_names]
    levels = [lv.code for lv in p.levels] + ["ZZ"]
    assert loaded.levels == p.levels
    assert loaded.urgencies == p.urgencies
    assert (loaded.id, loaded.version) == (p.id, p.version)
    for code in levels:
        assert loaded.requires_post_quantum(code) == source_compiled.requires_post_quantum(code)
        assert loaded.level_label(code) == source_compiled.level_label(code)
    instants = times(source_compiled)
    for when in instants:
        assert loaded.in_force(when) == source_compiled.in_force(when)
    for sender in names:
        assert loaded.knows(sender) == source_compiled.knows(sender)
        for recipient in names:
            assert loaded.matching_rules(sender, recipient) == source_compiled.matching_rules(sender, recipient)
            assert loaded.ceiling(sender, recipient) == source_compiled.ceiling(sender, recipient)
            for when in instants:
                assert loaded.ceiling(sender, recipient, when) == source_compiled.ceiling(sender, recipient, when)
                for level in levels:
                    expected = source_compiled.decide(sender, recipient, level, when)
                    assert loaded.decide(sender, recipient, level, when) == expected


# -- equivalence ----------------------------------------------------------------------------


CORPUS_GOOD = sorted((ROOT / "tests" / "policy_corpus" / "good").glob("*.toml"))


@pytest.mark.parametrize("source", [BANTEN, UNIT_POLICY, *(p.read_text() for p in CORPUS_GOOD)],
                         ids=["banten", "unit", *(p.stem for p in CORPUS_GOOD)])
def test_shipped_corpus_and_unit_policies_decide_identically(source: str) -> None:
    compiled, loaded = both(source)
    assert_same(compiled, loaded, extra_names=("*",))


@pytest.mark.parametrize("path", CORPUS_BAD, ids=lambda p: p.name)
def test_the_bad_corpus_never_reaches_a_compiled_form(path: Path, tmp_path: Path) -> None:
    """apply compiles only what the loader accepts: each bad file is refused before."""
    registry = Registry(f"sqlite:///{tmp_path / 'registry.db'}")
    registry.upgrade()
    with pytest.raises(PolicyFileError), registry.transaction() as session:
        apply_policy(session, path.read_bytes(), TestSigner(), "operator")


CODES = [f"E{i}" for i in range(8)]
GROUPS = ["GA", "GB", "GC"]
LEVEL_SETS = [None, [("B", False), ("R", False), ("SR", True)], [("X", False), ("Y", True)]]
DAYS = ["2026-01-01", "2026-03-01", "2026-06-01T08:30:00+07:00", "2026-09-01T00:00:00Z"]


@st.composite
def policies(draw: st.DrawFn) -> str:
    """A valid policy: entities, nested acyclic groups, relations and forbids with
    windows, both directions, several names per side, levels with post-quantum rules."""
    entities = CODES[: draw(st.integers(2, len(CODES)))]
    level_set = draw(st.sampled_from(LEVEL_SETS))
    codes = [c for c, _pq in level_set] if level_set else ["B", "T", "R", "SR"]
    lines = ["[policy]", 'id = "prop"', 'title = "Ujicoba"', "version = 2", "effective = 2026-01-01",
             'decree = "x"', f'timezone = "{draw(st.sampled_from(["+07:00", "+00:00", "-03:30"]))}"']
    if draw(st.booleans()):
        lines.append("expires = 2027-01-01")
    if draw(st.booleans()):
        lines.append('urgencies = ["Segera", "Biasa"]')
    for code, pq in level_set or []:
        lines += ["[[level]]", f'code = "{code}"', f'name = "Tingkat {code}"', f"post_quantum = {str(pq).lower()}"]
    lines.append("[entities]")
    lines += [f'{c} = {{ name = "Entitas {c}", kind = "agency" }}' for c in entities]
    groups: list[str] = []
    for g in GROUPS[: draw(st.integers(0, len(GROUPS)))]:
        pool = entities + groups  # only earlier groups: acyclic
        members = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=4, unique=True))
        lines += [f"[groups.{g}]", "members = [" + ", ".join(f'"{m}"' for m in members) + "]"]
        groups.append(g)
    names = [*entities, *groups, "*"]
    side = st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True)

    def window() -> list[str]:
        picked = sorted(draw(st.lists(st.sampled_from(range(len(DAYS))), max_size=2, unique=True)))
        if not picked:
            return []
        if len(picked) == 1:
            key = draw(st.sampled_from(["valid_from", "valid_until"]))
            return [f"{key} = {DAYS[picked[0]]}"]
        return [f"valid_from = {DAYS[picked[0]]}", f"valid_until = {DAYS[picked[1]]}"]

    def names_of(chosen: list[str]) -> str:
        return "[" + ", ".join(f'"{n}"' for n in chosen) + "]"

    for i in range(draw(st.integers(0, 8))):
        lines += ["[[relation]]", f'id = "r{i}"', f"from = {names_of(draw(side))}", f"to = {names_of(draw(side))}",
                  f'max = "{draw(st.sampled_from(codes))}"',
                  f'direction = "{draw(st.sampled_from(["one-way", "both"]))}"',
                  f'network = "{draw(st.sampled_from(["", "JKS"]))}"', *window()]
    for i in range(draw(st.integers(0, 4))):
        above = draw(st.sampled_from([None, *codes]))
        lines += ["[[forbid]]", f'id = "f{i}"', f"from = {names_of(draw(side))}", f"to = {names_of(draw(side))}",
                  f'direction = "{draw(st.sampled_from(["one-way", "both"]))}"', *window(),
                  *([f'above = "{above}"'] if above else [])]
    return "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policies())
def test_loaded_policies_decide_like_source_compiled_ones(source: str) -> None:
    compiled, loaded = both(source)
    assert_same(compiled, loaded, extra_names=("GA", "*"))
    assert compiled_text(source) == compiled_text(source)  # one policy, one text


# -- canonical, strict, bounded ---------------------------------------------------------------


def _sections(text: str) -> tuple[dict[str, Any], list[str], list[str], list[str]]:
    lines = text.split("\n")[:-1]
    header = json.loads(lines[1])
    entities, rows = header["entities"], header["rows"]
    return header, lines[2:2 + entities], lines[2 + entities:2 + entities + rows], lines[2 + entities + rows:]


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def test_every_line_is_canonical_json_and_sections_are_sorted() -> None:
    text = compiled_text(BANTEN)
    lines = text.splitlines()
    assert lines[0] == MAGIC and text.endswith("\n")
    for line in lines[1:]:
        assert _canonical(json.loads(line)) == line
    header, entities, rows, rules = _sections(text)
    for section in (entities, rows):
        keys = [json.loads(line)[0] for line in section]
        assert keys == sorted(set(keys))
    assert header["source_sha256"] == hashlib.sha256(BANTEN.encode()).hexdigest()
    policy = parse_policy(BANTEN)
    assert len(entities) == len(policy.entities) and header["groups"] == sorted(policy.groups)
    assert [json.loads(line)[0] for line in rules] == [r.id for r in policy.relations] + [
        f.id for f in policy.forbids]


def test_a_decision_reads_only_the_lines_it_needs() -> None:
    loaded = load_compiled(compiled_text(BANTEN))
    rows = loaded._rules_from._decoded  # type: ignore[attr-defined]
    rules = loaded._rules._decoded  # type: ignore[attr-defined]
    entities = loaded._principals._decoded  # type: ignore[attr-defined]
    assert rows == rules == entities == {}
    loaded.decide("DISKOMINFO", "BAPPEDA", "R", datetime(2026, 6, 1, tzinfo=WIB))
    assert set(entities) == {"DISKOMINFO", "BAPPEDA"}
    assert set(rows) <= set(loaded._principals.get("DISKOMINFO") or ())
    assert 0 < len(rules) < loaded._rule_count


def _edit(text: str, section: int, key: object, edit: Callable[[Any], None]) -> str:
    """``edit`` applied to the parsed line of ``section`` (1 entities, 2 rows, 3 rules)
    whose first item is ``key`` (rules: whose order is ``key``)."""
    header, *parts = _sections(text)
    lines = parts[section - 1]
    for i, line in enumerate(lines):
        value = json.loads(line)
        if (i == key) if section == 3 else (value[0] == key):
            edit(value)
            lines[i] = _canonical(value)
    return "\n".join([MAGIC, _canonical(header), *parts[0], *parts[1], *parts[2]]) + "\n"


def _header_edit(text: str, **changes: object) -> str:
    lines = text.split("\n")
    header = json.loads(lines[1])
    header.update(changes)
    lines[1] = _canonical(header)
    return "\n".join(lines)


def _mutations(text: str) -> Iterator[tuple[str, str]]:
    header, entities, _rows, _rules = _sections(text)
    lines = text.split("\n")
    first_row = 2 + len(entities)
    yield "no final newline", text[:-1]
    yield "other magic", text.replace(MAGIC, "sandi-policy-compiled/v9", 1)
    yield "spaces in the header", text.replace('","', '", "', 1)
    yield "unknown header key", _header_edit(text, extra=1)
    yield "counts that do not add up", _header_edit(text, rules=header["rules"] - 1)
    yield "a level twice", _header_edit(text, levels=[{"code": "B", "description": "", "name": "B",
                                                        "post_quantum": False}] * 2)
    yield "version zero", _header_edit(text, version=0)
    yield "expires before effective", _header_edit(text, expires="2020-01-01T00:00:00+07:00")
    yield "naive time", _header_edit(text, effective="2026-01-01T00:00:00")
    yield "groups unsorted", _header_edit(text, groups=list(reversed(header["groups"])))
    yield "entities out of order", "\n".join([*lines[:2], lines[3], lines[2], *lines[4:]])
    yield "rows out of order", "\n".join([*lines[:first_row], lines[first_row + 1], lines[first_row],
                                         *lines[first_row + 2:]])


@pytest.mark.parametrize("name", [name for name, _text in _mutations(compiled_text(BANTEN))])
def test_malformed_compiled_text_is_refused_at_load(name: str) -> None:
    mutated = dict(_mutations(compiled_text(BANTEN)))[name]
    with pytest.raises(FormatError, match="compiled policy"):
        load_compiled(mutated)


def _set(index: int | slice, value: Any) -> Callable[[Any], None]:
    def edit(line: Any) -> None:
        line[index] = value
    return edit


def _set_pair(index: int, value: object) -> Callable[[Any], None]:
    def edit(line: Any) -> None:
        line[1][0][index] = value
    return edit


def _diskominfo_rule(text: str) -> int:
    row = next(json.loads(line) for line in _sections(text)[2] if line.startswith('["DISKOMINFO",'))
    return int(row[1][0][1][0])


@pytest.mark.parametrize(("name", "section", "edit"), [
    ("order past the table", 2, _set_pair(1, [10**6])),
    ("orders not increasing", 2, _set_pair(1, [5, 5])),
    ("a boolean for an order", 2, _set_pair(1, [True])),
    ("an unknown target", 2, _set_pair(0, "NOBODY")),
    ("a target that is the start of an entity line", 2, _set_pair(0, 'BAPPEDA",["AGENCIES')),
    ("an unknown group", 1, _set(1, ["NOGROUP"])),
    ("a group twice in its principals", 1, _set(1, ["AGENCIES", "AGENCIES"])),
    ("a group that is not a name", 1, _set(1, [["AGENCIES"]])),
    ("rank above the levels", 3, _set(1, 9)),
    ("a relation with rank -1", 3, _set(1, -1)),
    ("a bad rule id", 3, _set(0, "no spaces allowed")),
    ("a window ending before it starts", 3, _set(slice(2, 4), ["2999-01-01T00:00:00+07:00",
                                                                 "2998-01-01T00:00:00+07:00"])),
    ("a window time without offset", 3, _set(2, "2026-01-01T00:00:00")),
    ("a short rule", 3, _set(slice(2, 6), [])),
])
def test_a_malformed_line_is_refused_when_a_decision_reads_it(name: str, section: int,
                                                              edit: Callable[[Any], None]) -> None:
    text = compiled_text(BANTEN)
    text = _edit(text, section, _diskominfo_rule(text) if section == 3 else "DISKOMINFO", edit)
    loaded = load_compiled(text)  # lines are checked when read
    with pytest.raises(FormatError, match="compiled policy"):
        loaded.decide("DISKOMINFO", "BAPPEDA", "R", datetime(2026, 6, 1, tzinfo=WIB))


def test_a_forbid_with_a_network_is_refused() -> None:
    text = compiled_text(UNIT_POLICY)
    header = json.loads(text.split("\n")[1])
    for order in range(header["first_forbid"], header["rules"]):
        text = _edit(text, 3, order, _set(4, "JKS"))
    loaded = load_compiled(text)
    compiled = CompiledPolicy(parse_policy(UNIT_POLICY))
    pairs = [(s, r) for s in compiled.policy.entities for r in compiled.policy.entities
             if compiled.matching_rules(s, r)[0]]
    assert pairs
    with pytest.raises(FormatError, match="compiled policy"):
        loaded.decide(*pairs[0], "SR", datetime(2026, 6, 1, 9, 0, tzinfo=WIB))


def test_an_entity_line_repeated_is_refused_when_looked_up() -> None:
    text = compiled_text(BANTEN)
    _header, entities, _rows, _rules = _sections(text)
    line = next(e for e in entities if e.startswith('["DISKOMINFO",'))
    twice = text.replace(line + "\n", line + "\n" + line.replace('",["', '",["LEADERS","', 1) + "\n", 1)
    loaded = load_compiled(_header_edit(twice, entities=len(entities) + 1))
    assert loaded.knows("BAPPEDA")
    with pytest.raises(FormatError, match="compiled policy"):
        loaded.knows("DISKOMINFO")


def test_size_and_encoding_are_checked_first() -> None:
    with pytest.raises(FormatError, match="limit"):
        load_compiled(b" " * (MAX_COMPILED_BYTES + 1))
    with pytest.raises(FormatError, match="compiled policy"):
        load_compiled(compiled_text(BANTEN).encode("utf-8") + b"\xff\n")


# -- signed, applied, published -----------------------------------------------------------------


def _entry(signer: TestSigner, source: str = BANTEN) -> PolicyEntry:
    from sandi.policy.signature import sign_policy

    policy = parse_policy(source)
    text = compiled_text(source)
    return PolicyEntry(policy.id, policy.version, source, sign_policy(source, signer), policy.effective,
                       policy.expires, None, text, sign_compiled(text, signer))


def test_load_verified_uses_the_compiled_form_and_checks_its_signature_and_labels() -> None:
    signer = TestSigner()
    key = signer.public_key_bytes()
    entry = _entry(signer)
    assert isinstance(load_verified(entry, key), LoadedPolicy)
    without = replace(entry, compiled=None, compiled_signature=None)
    assert isinstance(load_verified(without, key), CompiledPolicy)  # older directories: the source
    with pytest.raises(VerificationError):
        load_verified(replace(entry, compiled_signature=TestSigner().sign(b"x")), key)
    with pytest.raises(VerificationError):  # the source's signature does not pass for the compiled form
        load_verified(replace(entry, compiled_signature=entry.signature), key)
    assert entry.compiled is not None
    tampered = entry.compiled.replace("Rahasia", "Rahasya", 1)
    with pytest.raises(VerificationError):
        load_verified(replace(entry, compiled=tampered), key)
    with pytest.raises(VerificationError, match="does not match"):
        load_verified(replace(entry, version=7), key)
    with pytest.raises(VerificationError, match="does not match"):
        load_verified(replace(entry, expires_at=None), key)


def test_policy_entry_round_trips_and_stays_byte_identical_without_a_compiled_form() -> None:
    signer = TestSigner()
    entry = _entry(signer)
    assert PolicyEntry.from_json(entry.to_json(), "p") == entry
    old = replace(entry, compiled=None, compiled_signature=None)
    assert set(old.to_json()) == {"policy_id", "version", "source", "signature", "effective_from",
                                  "expires_at", "applied_at"}  # what readers before 0.x wrote and signed
    half = entry.to_json()
    del half["compiled_signature"]
    with pytest.raises(FormatError, match="without its signature"):
        PolicyEntry.from_json(half, "policies[0]")
    half = entry.to_json() | {"compiled_signature": "bm90IGJhc2U2NA"}
    with pytest.raises(FormatError, match="base64"):
        PolicyEntry.from_json(half, "policies[0]")


def test_apply_compiles_once_and_signs_the_compiled_form(tmp_path: Path) -> None:
    from sandi.audit.registry_sink import iter_entries

    registry = Registry(f"sqlite:///{tmp_path / 'registry.db'}")
    registry.upgrade()
    signer = TestSigner()
    with registry.transaction() as session:
        apply_policy(session, BANTEN, signer, "operator", source_name="banten.toml",
                     now=datetime(2026, 1, 2, tzinfo=UTC))
    with registry.transaction() as session:
        record = get_version(session, "banten-phks", 1)
        details = next(e.details for e in iter_entries(session) if e.action == "policy.apply")
    assert record.compiled == compiled_text(BANTEN)
    assert details["compiled_sha256"] == hashlib.sha256(record.compiled.encode()).hexdigest()
    loaded = load_verified(record, signer.public_key_bytes())
    assert isinstance(loaded, LoadedPolicy)
    assert_same(CompiledPolicy(parse_policy(BANTEN)), loaded)


def test_workstations_seal_and_open_without_parsing_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real flow: apply, publish, import; then seal and open (allowed and denied)
    decide from the compiled form in the installed directory, never from the TOML."""
    from sandi.directory.local import installed_snapshot
    from sandi.documents.policygate import DirectoryPolicy
    from sandi.home import Home
    from tests.test_workstations_flow import build_province

    province = build_province(tmp_path)
    now = datetime.now(UTC)
    gate = DirectoryPolicy(installed_snapshot(Home(province.bappeda.home)))
    assert isinstance(gate.in_force(now), LoadedPolicy)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a workstation parsed the policy's TOML")

    monkeypatch.setattr("sandi.policy.loader.parse_policy", refuse)
    letter = tmp_path / "surat.pdf"
    letter.write_bytes(b"%PDF-1.4\n" + bytes(range(256)))
    sealed = tmp_path / "surat.pdf.age"
    province.diskominfo.ok("seal", letter, "--to", "BAPPEDA", "--class", "R", "-o", sealed)
    province.bappeda.ok("open", sealed, "-o", tmp_path / "opened.pdf")
    assert (tmp_path / "opened.pdf").read_bytes() == letter.read_bytes()
    monkeypatch.undo()
    source = CompiledPolicy(parse_policy(BANTEN))
    expected = source.decide("DISKOMINFO", "BAPPEDA", "SR", now)
    assert not expected.allowed
    monkeypatch.setattr("sandi.policy.loader.parse_policy", refuse)
    denied = province.diskominfo.sandi("seal", letter, "--to", "BAPPEDA", "--class", "SR", "-o",
                                       tmp_path / "denied.age")
    assert denied.code == 3 and expected.reason in denied.stderr
    assert not (tmp_path / "denied.age").exists()
