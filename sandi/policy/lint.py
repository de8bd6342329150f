"""Warnings about a valid policy: things that are legal but probably not meant.

Invariants: lint never fails a policy (errors are the loader's job); each warning
names a code, the rule or name concerned, its line when known, and a sentence:

* ``no-relation``: an entity that no relation lets send or receive anything;
* ``unused-group``: a group no rule uses, directly or through another group;
* ``shadowed``: a relation every pair of which other relations already allow, at
  the same or a higher ceiling, over the same or a wider window;
* ``never-applies``: a relation or forbid whose window lies outside the policy's, or
  a relation whose every pair a forbid denies at every level;
* ``forbid-no-effect``: a forbid that overrides no relation.

The pair checks expand groups into concrete pairs; above ``PAIR_LIMIT`` pairs they
are skipped with a ``skipped`` note rather than taking minutes.
"""

from __future__ import annotations

from dataclasses import dataclass

from sandi.i18n import Message, _, translated
from sandi.policy.locate import Locator
from sandi.policy.model import Forbid, Policy, Relation, Window

PAIR_LIMIT = 2_000_000


@dataclass(frozen=True, slots=True)
class LintWarning:
    code: str
    subject: str
    message: str
    line: int | None = None
    source: str = ""

    def __str__(self) -> str:
        """The warning as a person reads it (``to_dict`` keeps the English message)."""
        loc = f"{self.source}:{self.line}" if self.line else self.source
        return _("{location}: warning[{code}]: {message}").format(
            location=loc, code=self.code, message=translated(self.message)
        )

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "subject": self.subject, "message": self.message,
                "line": self.line, "source": self.source}


def _overlaps(a: Window, b: Window) -> bool:
    if a.end is not None and b.start is not None and a.end <= b.start:
        return False
    return not (b.end is not None and a.start is not None and b.end <= a.start)


def lint_policy(policy: Policy, source_text: str | None = None) -> list[LintWarning]:
    loc = Locator(source_text) if source_text is not None else None
    src = policy.source_name
    out: list[LintWarning] = []

    def warn(code: str, subject: str, message: str, line: int | None = None,
             path: tuple[str | int, ...] | None = None) -> None:
        if line is None and loc is not None and path is not None:
            line = loc.line(path)
        out.append(LintWarning(code, subject, message, line, src))

    rank = {lv.code: lv.rank for lv in policy.levels}
    all_rules: list[Relation | Forbid] = [*policy.relations, *policy.forbids]
    rel_pairs: list[tuple[frozenset[str], frozenset[str], bool]] = []
    for r in policy.relations:
        rel_pairs.append((policy.expand(r.sources), policy.expand(r.targets), r.direction == "both"))

    # -- entities with no relation ----------------------------------------------------
    covered: set[str] = set()
    for f, t, _unused in rel_pairs:
        covered |= f | t
    for code, ent in policy.entities.items():
        if code not in covered:
            warn("no-relation", code, Message(
                "{kind} '{code}' has no relation: it can neither send nor receive anything",
                kind=ent.kind,
                code=code,
            ), path=("entities", code))

    # -- unused groups --------------------------------------------------------------------
    used: set[str] = set()
    stack = [n for rule in all_rules for n in (*rule.sources, *rule.targets) if n in policy.groups]
    while stack:
        name = stack.pop()
        if name in used:
            continue
        used.add(name)
        stack.extend(m for m in policy.groups[name].members if m in policy.groups)
    for name in policy.groups:
        if name not in used:
            warn("unused-group", name, Message("group '{name}' is not used by any rule", name=name),
                 path=("groups", name))

    # -- windows outside the policy's ---------------------------------------------------
    never: set[str] = set()
    for rule in all_rules:
        kind = Message("relation") if isinstance(rule, Relation) else Message("forbid")
        if not _overlaps(rule.window, policy.window):
            never.add(rule.id)
            warn("never-applies", rule.id, Message(
                "{kind} '{id}' can never apply: its window ({window}) lies outside the policy's "
                "({policy_window})",
                kind=kind,
                id=rule.id,
                window=rule.window.describe(),
                policy_window=policy.window.describe(),
            ),
                 rule.line)

    # -- pair-level checks --------------------------------------------------------------
    def pairs(f: frozenset[str], t: frozenset[str], both: bool) -> set[tuple[str, str]]:
        ps = {(a, b) for a in f for b in t}
        if both:
            ps |= {(b, a) for a in f for b in t}
        return ps

    total = sum(len(f) * len(t) * (2 if both else 1) for f, t, both in rel_pairs)
    total += sum(len(policy.expand(fb.sources)) * len(policy.expand(fb.targets)) * 2
                 for fb in policy.forbids)
    if total > PAIR_LIMIT:
        warn("skipped", "", Message(
            "the rules cover {total} sender/recipient pairs; shadowing and forbid checks skipped (limit "
            "{pair_limit})",
            total=total,
            pair_limit=PAIR_LIMIT,
        ))
        return out
    cover: dict[tuple[str, str], list[int]] = {}
    rel_sets = []
    for i, (f, t, both) in enumerate(rel_pairs):
        ps = pairs(f, t, both)
        rel_sets.append(ps)
        for p in ps:
            cover.setdefault(p, []).append(i)
    forbid_sets = [pairs(policy.expand(fb.sources), policy.expand(fb.targets), fb.direction == "both")
                   for fb in policy.forbids]

    rels = policy.relations
    for i, r in enumerate(rels):
        if r.id in never:
            continue
        r_rank = rank[r.max_level]
        by: set[str] = set()
        # relations that could stand in for r: same or higher ceiling, same or wider
        # window; of two identical ones, the later is the one reported
        stronger = {
            j for j, q in enumerate(rels)
            if j != i and rank[q.max_level] >= r_rank and q.window.covers(r.window)
            and (j < i or rank[q.max_level] > r_rank or q.window != r.window)
        }
        shadowed = True
        for p in rel_sets[i]:
            hit = next((j for j in cover[p] if j in stronger), None)
            if hit is None:
                shadowed = False
                break
            by.add(rels[hit].id)
        if shadowed:
            warn("shadowed", r.id, Message(
                "relation '{rule}' is shadowed: every pair it allows is already allowed up to "
                "{ceiling} or higher by {others}",
                rule=r.id, ceiling=r.max_level, others=", ".join(f"'{b}'" for b in sorted(by)),
            ), r.line)
            continue
        # fully forbidden at every level?
        blocking = [k for k, fb in enumerate(policy.forbids)
                    if fb.above is None and fb.window.covers(r.window)]
        if blocking and all(any(p in forbid_sets[k] for k in blocking) for p in rel_sets[i]):
            warn("never-applies", r.id, Message(
                "relation '{id}' can never apply: forbids deny every pair it covers at every level",
                id=r.id,
            ), r.line)

    for k, fb in enumerate(policy.forbids):
        if fb.id in never:
            continue
        threshold = rank[fb.above] if fb.above is not None else -1
        effect = any(
            rank[rels[j].max_level] > threshold and _overlaps(rels[j].window, fb.window)
            for p in forbid_sets[k] for j in cover.get(p, ())
        )
        if not effect:
            warn("forbid-no-effect", fb.id, Message(
                "forbid '{id}' overrides no relation: nothing it covers is allowed above its threshold "
                "anyway",
                id=fb.id,
            ), fb.line)
    return out
