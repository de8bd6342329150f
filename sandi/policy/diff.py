"""What a new policy version changes: rules added, removed or changed, and the
concrete sender → recipient pairs whose ceiling goes up (*opens*) or down (*closes*).

Invariants: the pair comparison uses each policy's compiled engine
(:meth:`CompiledPolicy.ceiling`), so it agrees with real decisions; with ``at`` None
the rules' validity windows are ignored (every rule counts, which shows what a
version can ever allow), with ``at`` given both are evaluated at that instant
(ignoring the policies' own effective windows). Levels are compared by rank in the
new policy's order (a code only the old policy knows keeps its old rank).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sandi.i18n import Message
from sandi.policy.engine import CompiledPolicy
from sandi.policy.model import Forbid, Policy, Relation

META_FIELDS = ("title", "effective", "expires", "decree")


@dataclass(frozen=True, slots=True)
class RuleChange:
    change: Literal["added", "removed", "changed"]
    kind: Literal["relation", "forbid"]
    id: str
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    def describe(self) -> str:
        kind = Message("relation") if self.kind == "relation" else Message("forbid")
        if self.change == "added":
            return Message("{kind} '{id}' added", kind=kind, id=self.id)
        if self.change == "removed":
            return Message("{kind} '{id}' removed", kind=kind, id=self.id)
        parts = ", ".join(f"{k}: {_fmt(a)} -> {_fmt(b)}" for k, (a, b) in self.fields.items())
        return Message("{kind} '{id}' changed ({parts})", kind=kind, id=self.id, parts=parts)

    def to_dict(self) -> dict[str, Any]:
        return {"change": self.change, "kind": self.kind, "id": self.id,
                "fields": {k: [_fmt(a), _fmt(b)] for k, (a, b) in self.fields.items()}}


@dataclass(frozen=True, slots=True)
class PairChange:
    sender: str
    recipient: str
    old: str | None
    new: str | None
    change: Literal["opens", "closes"]

    def describe(self) -> str:
        nothing = Message("nothing")
        old, new = self.old or nothing, self.new or nothing
        if self.change == "opens":
            return Message("opens {sender} → {recipient}: {old} -> {new}", sender=self.sender,
                           recipient=self.recipient, old=old, new=new)
        return Message("closes {sender} → {recipient}: {old} -> {new}", sender=self.sender,
                       recipient=self.recipient, old=old, new=new)

    def to_dict(self) -> dict[str, Any]:
        return {"from": self.sender, "to": self.recipient, "old": self.old, "new": self.new,
                "change": self.change}


@dataclass(frozen=True)
class PolicyDiff:
    old: tuple[str, int]
    new: tuple[str, int]
    meta: dict[str, tuple[Any, Any]]
    entities_added: list[str]
    entities_removed: list[str]
    rules: list[RuleChange]
    pairs: list[PairChange]

    @property
    def empty(self) -> bool:
        return not (self.meta or self.entities_added or self.entities_removed or self.rules
                    or self.pairs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "old": {"id": self.old[0], "version": self.old[1]},
            "new": {"id": self.new[0], "version": self.new[1]},
            "meta": {k: [_fmt(a), _fmt(b)] for k, (a, b) in self.meta.items()},
            "entities_added": self.entities_added,
            "entities_removed": self.entities_removed,
            "rules": [r.to_dict() for r in self.rules],
            "pairs": [p.to_dict() for p in self.pairs],
            "opens": sum(1 for p in self.pairs if p.change == "opens"),
            "closes": sum(1 for p in self.pairs if p.change == "closes"),
        }


def _fmt(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


def _rule_fields(rule: Relation | Forbid) -> dict[str, Any]:
    out: dict[str, Any] = {"from": rule.sources, "to": rule.targets, "direction": rule.direction,
                           "valid_from": rule.window.start, "valid_until": rule.window.end}
    if isinstance(rule, Relation):
        out.update(max=rule.max_level, network=rule.network, channel=rule.channel)
    else:
        out.update(above=rule.above)
    return out


def _rule_changes(kind: Literal["relation", "forbid"], old: tuple[Relation | Forbid, ...],
                  new: tuple[Relation | Forbid, ...]) -> list[RuleChange]:
    o = {r.id: r for r in old}
    n = {r.id: r for r in new}
    out = [RuleChange("removed", kind, rid) for rid in o if rid not in n]
    for rid, rule in n.items():
        if rid not in o:
            out.append(RuleChange("added", kind, rid))
            continue
        a, b = _rule_fields(o[rid]), _rule_fields(rule)
        changed = {k: (a[k], b[k]) for k in a if a[k] != b[k]}
        if changed:
            out.append(RuleChange("changed", kind, rid, changed))
    return out


def diff_policies(old: Policy, new: Policy, at: datetime | None = None) -> PolicyDiff:
    meta = {}
    for name in META_FIELDS:
        a, b = getattr(old, name), getattr(new, name)
        if a != b:
            meta[name] = (a, b)
    old_c, new_c = CompiledPolicy(old), CompiledPolicy(new)
    rank = {lv.code: lv.rank for lv in old.levels}
    rank.update({lv.code: lv.rank for lv in new.levels})
    codes = sorted(set(old.entities) | set(new.entities))
    pairs: list[PairChange] = []
    for s in codes:
        for r in codes:
            a = old_c.ceiling(s, r, at) if s in old.entities and r in old.entities else None
            b = new_c.ceiling(s, r, at) if s in new.entities and r in new.entities else None
            if a == b:
                continue
            ra = rank[a] if a is not None else -1
            rb = rank[b] if b is not None else -1
            if ra != rb:
                pairs.append(PairChange(s, r, a, b, "opens" if rb > ra else "closes"))
    return PolicyDiff(
        old=(old.id, old.version), new=(new.id, new.version), meta=meta,
        entities_added=sorted(set(new.entities) - set(old.entities)),
        entities_removed=sorted(set(old.entities) - set(new.entities)),
        rules=_rule_changes("relation", old.relations, new.relations)
        + _rule_changes("forbid", old.forbids, new.forbids),
        pairs=pairs,
    )
