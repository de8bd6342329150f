"""Decisions: may SENDER send a document of CLASS to RECIPIENT at time AT?

Invariants (the decision procedure, in order; the first step that answers wins):

1. ``at`` must be timezone-aware (a naive time is a caller bug: UsageError);
2. outside the policy's own window (``effective <= at < expires``) everything is
   denied — an expired or not-yet-effective policy allows nothing;
3. an unknown classification, sender or recipient is denied, saying which;
4. a **forbid** rule that covers the pair, is valid at ``at`` and covers the level
   denies, naming the forbid — forbids override every allow;
5. the first **relation** (in file order) that covers the pair, is valid at ``at`` and
   whose ceiling is at or above the level allows, naming the relation;
6. otherwise denied: "no rule allows ...", naming the closest relation if one covers
   the pair with a lower ceiling.

Compiling resolves groups and wildcards once: each entity gets its tuple of
*principals* (itself, every group containing it, ``*``), and rules are indexed by
(from-principal, to-principal). The rules of a concrete (sender, recipient) pair are
merged on first use and memoised, so a decision is a few dict look-ups and a short
loop. Nothing here imports SQLAlchemy.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple, Protocol

from sandi.errors import PolicyDenied, UsageError
from sandi.i18n import Message, _
from sandi.policy.model import WILDCARD, Level, Policy, Window

Basis = Literal["relation", "forbid", "no-rule", "unknown-entity", "unknown-level", "not-in-force"]

#: memoised (sender, recipient) pairs before the memo is cleared (bounds memory)
PAIR_CACHE_LIMIT = 1_000_000
SENDER_CACHE_LIMIT = 100_000


class Decision(NamedTuple):
    """One decision. Read ``.allowed``; using a Decision as a boolean is a TypeError
    (a non-empty tuple is always true, so ``if decide(...)`` would allow everything).
    """

    allowed: bool
    rule_id: str | None
    reason: str
    basis: Basis
    sender: str
    recipient: str
    classification: str
    policy_id: str
    policy_version: int

    def __bool__(self) -> bool:
        raise TypeError("use Decision.allowed, not the Decision itself, as a condition")

    def to_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "decision": "allow" if self.allowed else "deny",
            "rule": self.rule_id,
            "basis": self.basis,
            "reason": self.reason,
            "from": self.sender,
            "to": self.recipient,
            "class": self.classification,
            "policy": self.policy_id,
            "version": self.policy_version,
        }


class PolicyDecisionDenied(PolicyDenied):
    """A denial with its decision attached (``.decision``, ``.rule_id``); exit code 3."""

    def __init__(self, decision: Decision) -> None:
        hint = _("see 'sandi policy explain --from {sender} --to {recipient} --class "
                 "{classification}'").format(sender=decision.sender, recipient=decision.recipient,
                                             classification=decision.classification)
        super().__init__(
            Message("denied by policy {policy} v{version}: {reason}", policy=decision.policy_id,
                    version=decision.policy_version, reason=decision.reason),
            hint=hint,
        )
        self.decision = decision
        self.rule_id = decision.rule_id


@dataclass(frozen=True, slots=True)
class _Rule:
    order: int
    id: str
    rank: int  # allow: ceiling rank; forbid: levels with rank > this are forbidden (-1: all)
    window: Window
    start: float  # POSIX seconds; -inf / inf when open (float compares beat datetime compares)
    end: float
    network: str
    channel: str
    forbid: bool


def _bounds(window: Window) -> tuple[float, float]:
    return (window.start.timestamp() if window.start else -math.inf,
            window.end.timestamp() if window.end else math.inf)


class RuleTable(Protocol):
    """Rules by order: a list when compiled from source, filled lazily when loaded."""

    def __getitem__(self, order: int, /) -> _Rule: ...


class PrincipalTable(Protocol):
    """Entity -> its principals: a dict when compiled from source, read lazily when loaded."""

    def get(self, code: str, /) -> tuple[str, ...] | None: ...

    def __contains__(self, code: object, /) -> bool: ...

    def __iter__(self) -> Iterator[str]: ...


class RowIndex(Protocol):
    """From-principal -> its row (to-principal -> rule orders); None if it has none."""

    def get(self, principal: str, /) -> dict[str, list[int]] | None: ...


class _Pair(NamedTuple):
    forbids: tuple[_Rule, ...]
    allows: tuple[_Rule, ...]


_EMPTY = _Pair((), ())


class PolicyIndex:
    """What a decision reads: levels, principals and rules indexed by principal pair.

    Built from source by :class:`CompiledPolicy`, or from the compiled form the
    authority publishes by :func:`sandi.policy.compiled.load_compiled`; both answer
    every query identically. Thread-safe for reads.
    """

    id: str
    version: int
    #: the classification levels, lowest first
    levels: tuple[Level, ...]
    #: the urgencies (sifat) the policy names; empty: the defaults
    urgencies: tuple[str, ...]
    _start: datetime
    _end: datetime | None
    _start_ts: float
    _end_ts: float
    _rank: dict[str, int]
    _level_name: dict[str, str]
    _post_quantum: frozenset[str]
    _codes: list[str]
    _labels: list[str]
    #: entity -> (entity, groups containing it..., "*")
    _principals: PrincipalTable
    #: rules by order (file order: relations first, then forbids from ``_first_forbid``)
    _rules: RuleTable
    #: from-principal -> to-principal -> rule orders (allows and forbids together)
    _rules_from: RowIndex
    _first_forbid: int

    def _set_header(self, policy_id: str, version: int, effective: datetime, expires: datetime | None,
                    levels: tuple[Level, ...], urgencies: tuple[str, ...]) -> None:
        self.id = policy_id
        self.version = version
        self.levels = levels
        self.urgencies = urgencies
        self._start = effective
        self._end = expires
        self._start_ts, self._end_ts = _bounds(Window(effective, expires))
        self._rank = {lv.code: lv.rank for lv in levels}
        self._level_name = {lv.code: lv.name for lv in levels}
        self._post_quantum = frozenset(lv.code for lv in levels if lv.post_quantum)
        self._codes = [lv.code for lv in levels]
        self._labels = [f"{lv.code} ({lv.name})" for lv in levels]  # by rank
        # memos, filled on first use: per sender (its principals' rules merged by target
        # principal) and per pair (the pair's rules, split and ordered). Bounded.
        self._senders: dict[str, dict[str, list[int]]] = {}
        self._pairs: dict[tuple[str, str], _Pair] = {}

    def _sender(self, sender: str, principals: tuple[str, ...]) -> dict[str, list[int]]:
        merged: dict[str, list[int]] = {}
        index = self._rules_from
        for a in principals:
            row = index.get(a)
            if row is None:
                continue
            for b, rules in row.items():
                got = merged.get(b)
                if got is None:
                    merged[b] = list(rules)
                else:
                    got.extend(rules)
        if len(self._senders) >= SENDER_CACHE_LIMIT:
            self._senders.clear()
        self._senders[sender] = merged
        return merged

    def _pair(self, sender: str, recipient: str) -> _Pair | None:
        ps = self._principals.get(sender)
        pr = self._principals.get(recipient)
        if ps is None or pr is None:
            return None
        merged = self._senders.get(sender)
        if merged is None:
            merged = self._sender(sender, ps)
        found: list[int] = []
        for b in pr:
            orders = merged.get(b)
            if orders is not None:
                found += orders
        if not found:
            pair = _EMPTY
        else:
            # one rule can reach the pair through several principals: set() drops repeats
            ordered = sorted(set(found)) if len(found) > 1 else found
            split = bisect_left(ordered, self._first_forbid)
            rule_at = self._rules.__getitem__
            forbids = tuple(map(rule_at, ordered[split:]))
            pair = _Pair(forbids, tuple(map(rule_at, ordered[:split])))
        if len(self._pairs) >= PAIR_CACHE_LIMIT:
            self._pairs.clear()
        self._pairs[(sender, recipient)] = pair
        return pair

    # -- queries -------------------------------------------------------------------------

    def in_force(self, at: datetime) -> bool:
        return at >= self._start and (self._end is None or at < self._end)

    def knows(self, code: str) -> bool:
        return code in self._principals

    def requires_post_quantum(self, classification: str) -> bool:
        """True if documents of ``classification`` must be sealed post-quantum only."""
        return classification in self._post_quantum

    def level_label(self, code: str) -> str:
        name = self._level_name.get(code)
        return f"{code} ({name})" if name else code

    def decide(self, sender: str, recipient: str, classification: str, at: datetime) -> Decision:
        """Decide one relation at time ``at`` (aware). Never raises for unknown names."""
        if at.tzinfo is None:
            raise UsageError(_("policy decisions need a timezone-aware time (got a naive datetime)"))
        t = at.timestamp()
        if not self._start_ts <= t < self._end_ts:
            until = self._end.isoformat() if self._end else Message("no expiry")
            return self._deny(None, "not-in-force", sender, recipient, classification, Message(
                "policy {policy} v{version} is not in force at {at} (effective {start}, expires "
                "{until}): it allows nothing",
                policy=self.id, version=self.version, at=at.isoformat(),
                start=self._start.isoformat(), until=until,
            ))
        rank = self._rank.get(classification)
        if rank is None:
            return self._deny(None, "unknown-level", sender, recipient, classification, Message(
                "unknown classification '{classification}'; levels: {levels}",
                classification=classification, levels=", ".join(self._codes),
            ))
        pair = self._pairs.get((sender, recipient))
        if pair is None:
            pair = self._pair(sender, recipient)
            if pair is None:
                unknown = sender if sender not in self._principals else recipient
                from sandi.policy.loader import did_you_mean

                hint = did_you_mean(unknown, self._principals)
                if unknown == sender:
                    reason = Message("unknown sender '{name}'{hint}: the policy does not name it, "
                                     "so nothing is allowed", name=unknown, hint=hint)
                else:
                    reason = Message("unknown recipient '{name}'{hint}: the policy does not name it, "
                                     "so nothing is allowed", name=unknown, hint=hint)
                return self._deny(None, "unknown-entity", sender, recipient, classification, reason)
        labels = self._labels
        for rule in pair.forbids:
            if rank > rule.rank and rule.start <= t < rule.end:
                if rule.rank >= 0:
                    reason = Message("forbid '{rule}' denies {sender} → {recipient} above {ceiling}; "
                                     "asked {level}", rule=rule.id, sender=sender, recipient=recipient,
                                     ceiling=labels[rule.rank], level=labels[rank])
                else:
                    reason = Message("forbid '{rule}' denies {sender} → {recipient} at any level; "
                                     "asked {level}", rule=rule.id, sender=sender, recipient=recipient,
                                     level=labels[rank])
                return self._deny(rule.id, "forbid", sender, recipient, classification, reason)
        nearest: _Rule | None = None
        for rule in pair.allows:
            if rule.start <= t < rule.end:
                if rank <= rule.rank:
                    if rule.network:
                        reason = Message("relation '{rule}' allows {sender} → {recipient} up to "
                                         "{ceiling} on {network}", rule=rule.id, sender=sender,
                                         recipient=recipient, ceiling=labels[rule.rank],
                                         network=rule.network)
                    else:
                        reason = Message("relation '{rule}' allows {sender} → {recipient} up to "
                                         "{ceiling}", rule=rule.id, sender=sender,
                                         recipient=recipient, ceiling=labels[rule.rank])
                    return Decision(True, rule.id, reason, "relation", sender, recipient,
                                    classification, self.id, self.version)
                if nearest is None or rule.rank > nearest.rank:
                    nearest = rule
        if nearest is not None:
            reason = Message("no rule allows {sender} → {recipient} at {level}; the highest relation "
                             "for this pair, '{rule}', allows up to {ceiling}", sender=sender,
                             recipient=recipient, level=labels[rank], rule=nearest.id,
                             ceiling=labels[nearest.rank])
        elif pair.allows:
            reason = Message("no rule allows {sender} → {recipient} at {level}; no relation covers "
                             "this pair now", sender=sender, recipient=recipient, level=labels[rank])
        else:
            reason = Message("no rule allows {sender} → {recipient} at {level}; no relation covers "
                             "this pair", sender=sender, recipient=recipient, level=labels[rank])
        return self._deny(None, "no-rule", sender, recipient, classification, reason)

    def _deny(self, rule_id: str | None, basis: Basis, sender: str, recipient: str,
              classification: str, reason: str) -> Decision:
        return Decision(False, rule_id, reason, basis, sender, recipient, classification, self.id,
                        self.version)

    def require_allowed(self, sender: str, recipient: str, classification: str,
                        at: datetime) -> Decision:
        """The decision if allowed; else raise :class:`PolicyDecisionDenied` (exit code 3)."""
        decision = self.decide(sender, recipient, classification, at)
        if not decision.allowed:
            raise PolicyDecisionDenied(decision)
        return decision

    def require_all(self, sender: str, recipients: Iterable[str], classification: str,
                    at: datetime) -> list[Decision]:
        """Check sender → every recipient; raise on the first denial (before any work)."""
        return [self.require_allowed(sender, r, classification, at) for r in recipients]

    def matching_rules(self, sender: str, recipient: str) -> tuple[list[str], list[str]]:
        """Ids of the forbids and relations that cover the pair (any level, any time)."""
        pair = self._pairs.get((sender, recipient)) or self._pair(sender, recipient)
        if pair is None:
            return [], []
        return [r.id for r in pair.forbids], [r.id for r in pair.allows]

    def ceiling(self, sender: str, recipient: str, at: datetime | None = None) -> str | None:
        """The highest level allowed for the pair (levels allowed form a downward-closed set).

        With ``at`` None, the rules' validity windows and the policy's window are ignored
        (every rule counts), which is what ``policy diff`` compares.
        """
        pair = self._pairs.get((sender, recipient)) or self._pair(sender, recipient)
        if pair is None:
            return None
        t = at.timestamp() if at is not None else None
        best = -1
        for rule in pair.allows:
            if t is None or rule.start <= t < rule.end:
                best = max(best, rule.rank)
        for rule in pair.forbids:
            if t is None or rule.start <= t < rule.end:
                best = min(best, rule.rank)
        return self._codes[best] if best >= 0 else None


class CompiledPolicy(PolicyIndex):
    """A validated policy compiled from its source; ``.policy`` is the source model."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._set_header(policy.id, policy.version, policy.effective, policy.expires, policy.levels,
                         policy.urgencies)
        # principals: entity -> (entity, groups containing it..., "*")
        member_of: dict[str, list[str]] = {code: [code] for code in policy.entities}
        for gname in policy.groups:
            for code in policy.expand([gname]):
                member_of[code].append(gname)
        self._principals = {code: (*names, WILDCARD) for code, names in member_of.items()}
        # The index holds orders (ints), so merging, de-duplicating and ordering a pair's
        # rules is set/sort work on ints, done in C.
        rules: list[_Rule] = []
        index: dict[str, dict[str, list[int]]] = {}
        #: the whole index, as built (what :mod:`sandi.policy.compiled` writes out)
        self.rule_list: list[_Rule] = rules
        self.row_table: dict[str, dict[str, list[int]]] = index
        self._rules = rules
        self._rules_from = index
        for rel in policy.relations:
            rule = _Rule(len(rules), rel.id, self._rank[rel.max_level], rel.window,
                         *_bounds(rel.window), rel.network, rel.channel, False)
            rules.append(rule)
            _add(index, rel.sources, rel.targets, rel.direction == "both", rule.order)
        self._first_forbid = len(rules)
        for fb in policy.forbids:
            rank = self._rank[fb.above] if fb.above is not None else -1
            rule = _Rule(len(rules), fb.id, rank, fb.window, *_bounds(fb.window), "", "", True)
            rules.append(rule)
            _add(index, fb.sources, fb.targets, fb.direction == "both", rule.order)


def _add(index: dict[str, dict[str, list[int]]], sources: Iterable[str], targets: Iterable[str],
         both: bool, order: int) -> None:
    targets = tuple(targets)
    for s in sources:
        row = index.get(s)
        if row is None:
            row = index[s] = {}
        for t in targets:
            row.setdefault(t, []).append(order)
            if both and s != t:
                index.setdefault(t, {}).setdefault(s, []).append(order)


def compile_policy(policy: Policy) -> CompiledPolicy:
    return CompiledPolicy(policy)


def compile_source(data: bytes | str, source: str = "<policy>") -> CompiledPolicy:
    """Parse, validate and compile policy source text in one step."""
    from sandi.policy.loader import parse_policy

    return CompiledPolicy(parse_policy(data, source))
