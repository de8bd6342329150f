"""Policy test cases (like ``opa test``): expected decisions, checked against a policy.

A cases file (TOML)::

    policy = "banten.toml"                  # optional, relative to this file
    at = 2026-06-01T09:00:00+07:00          # default time of every case

    [[case]]
    name = "Diskominfo may send Rahasia to Bappeda"
    from = "DISKOMINFO"
    to = "BAPPEDA"
    class = "R"
    expect = "allow"                        # or "deny"
    rule = "r-kominfo-agencies"             # optional: the deciding rule ("none": no rule)
    at = 2026-03-20T10:00:00+07:00          # optional, overrides the default

Invariants: the file is read as strictly as a policy (unknown keys, wrong types and
missing keys are errors with their line); a date-time without an offset is UTC, a
bare date is midnight UTC; a case passes only if the decision (and the rule, when
given) is the expected one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sandi.errors import PolicyError
from sandi.i18n import Message, _
from sandi.policy.classification import find_level
from sandi.policy.engine import CompiledPolicy, Decision
from sandi.policy.loader import (
    MAX_SOURCE_BYTES,
    PolicyFileError,
    Problem,
    _Reader,
    decode_source,
    parse_toml,
)

TOP_KEYS = ("policy", "at", "case")
CASE_KEYS = ("name", "from", "to", "class", "at", "expect", "rule")
MAX_CASES = 100_000


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    sender: str
    recipient: str
    classification: str
    at: datetime
    expect_allowed: bool
    rule: str | None  # None: not checked; "none": expects no deciding rule
    line: int | None = None


@dataclass(frozen=True, slots=True)
class CaseFile:
    path: str
    policy_path: Path | None
    cases: tuple[Case, ...]


@dataclass(frozen=True, slots=True)
class CaseResult:
    case: Case
    decision: Decision
    ok: bool
    problem: str  # empty when ok

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.case.name, "ok": self.ok, "line": self.case.line,
                "expected": "allow" if self.case.expect_allowed else "deny",
                "expected_rule": self.case.rule, "problem": self.problem,
                "decision": self.decision.to_dict()}


def load_cases(path: str | Path) -> CaseFile:
    p = Path(path)
    try:
        if p.stat().st_size > MAX_SOURCE_BYTES:
            raise PolicyFileError([Problem(p.name, None, "", Message("file too large"))])
        data = p.read_bytes()
    except OSError as exc:
        raise PolicyError(_("cannot read test cases {p}: {reason}").format(
            p=p,
            reason=exc.strerror or exc,
        )) from None
    return parse_cases(data, p.name, base=p.parent)


def parse_cases(data: bytes | str, source: str = "<cases>", base: Path | None = None) -> CaseFile:
    text = decode_source(data, source)
    doc = parse_toml(text, source)
    r = _Reader(text, source)
    r.check_keys(doc, TOP_KEYS, (), "top level")
    policy_path: Path | None = None
    if "policy" in doc:
        pol = r.string(doc, "policy", (), "top level")
        if pol:
            policy_path = (base or Path(".")) / pol
    default_at = r.when(doc, "at", (), "top level")
    raw = doc.get("case", [])
    cases: list[Case] = []
    if not isinstance(raw, list) or not raw:
        r.error(("case",), "[[case]]", Message("no test cases: add [[case]] tables"))
        raw = []
    if len(raw) > MAX_CASES:
        raise PolicyFileError([Problem(source, None, "", Message(
            "{count} cases; limit {max_cases}",
            count=len(raw),
            max_cases=MAX_CASES,
        ))])
    for i, spec in enumerate(raw):
        path: tuple[str | int, ...] = ("case", i)
        if not isinstance(spec, dict):
            r.error(path, f"case #{i + 1}", Message("must be a table"))
            continue
        name = spec.get("name")
        where = f"case '{name}'" if isinstance(name, str) else f"case #{i + 1}"
        r.check_keys(spec, CASE_KEYS, path, where)
        name = r.string(spec, "name", path, where, required=False) or f"case #{i + 1}"
        sender = r.string(spec, "from", path, where)
        recipient = r.string(spec, "to", path, where)
        cls = r.string(spec, "class", path, where)
        expect = r.string(spec, "expect", path, where)
        if expect and expect not in ("allow", "deny"):
            r.error((*path, "expect"), where, Message(
                "expect must be \"allow\" or \"deny\", not {expect!r}",
                expect=expect,
            ),
                    value=expect)
        rule = r.string(spec, "rule", path, where, required=False) or None
        at = r.when(spec, "at", path, where) or default_at
        if at is None:
            r.error(path, where, Message("no time: give 'at' here or at the top of the file"))
        if at is not None and expect in ("allow", "deny"):
            cases.append(Case(name, sender, recipient, cls, at.astimezone(UTC), expect == "allow",
                              rule, r.locator.line(path)))
    if r.problems:
        raise PolicyFileError(r.problems)
    return CaseFile(source, policy_path, tuple(cases))


def run_case(policy: CompiledPolicy, case: Case) -> CaseResult:
    # A case may name its classification as people do ("Rahasia", "sangat-rahasia").
    level = find_level(case.classification, policy.policy.levels)
    classification = case.classification if level is None else level.code
    d = policy.decide(case.sender, case.recipient, classification, case.at)
    problems: list[Message] = []
    if d.allowed != case.expect_allowed:
        problems.append(Message("expected {expected}, got {got}",
                                expected="allow" if case.expect_allowed else "deny",
                                got="allow" if d.allowed else "deny"))
    if case.rule is not None:
        got = d.rule_id or "none"
        if got != case.rule:
            problems.append(Message("expected rule '{rule}', got '{got}'", rule=case.rule, got=got))
    message: str = ""
    if len(problems) == 1:
        message = problems[0]
    elif problems:
        message = Message("{first}; {second}", first=problems[0], second=problems[1])
    return CaseResult(case, d, not problems, message)


def run_cases(policy: CompiledPolicy, cases: CaseFile | tuple[Case, ...]) -> list[CaseResult]:
    items = cases.cases if isinstance(cases, CaseFile) else cases
    return [run_case(policy, c) for c in items]
