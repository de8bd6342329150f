"""The PHKS policy as data: what a validated policy file says, nothing more.

Invariants (established by :mod:`sandi.policy.loader`, relied on by everything else):

* every name a relation, forbid or group mentions is a known entity, a known group or
  ``"*"``; group and entity names never collide; groups are non-empty and acyclic;
* levels are ordered lowest first and their codes are unique; every level a rule names
  is one of them; a level that requires post-quantum sealing is followed only by
  levels that require it too;
* every datetime is timezone-aware; ``effective < expires``; a window's start is before
  its end;
* rule ids are unique across relations and forbids.

These objects are immutable; the engine (:mod:`sandi.policy.engine`) compiles them into
an index and never looks at them again on the decision path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sandi.i18n import Message

Direction = Literal["one-way", "both"]
WILDCARD = "*"

#: entity kinds a policy may use (the registry's agencies.kind uses the same words)
ENTITY_KINDS: tuple[str, ...] = ("leader", "agency", "unit", "regency", "city", "central", "external")

DEFAULT_LEVELS: tuple[tuple[str, str], ...] = (
    ("B", "Biasa"),
    ("T", "Terbatas"),
    ("R", "Rahasia"),
    ("SR", "Sangat Rahasia"),
)


@dataclass(frozen=True, slots=True)
class Level:
    code: str
    name: str
    rank: int  # 0 = lowest
    description: str = ""
    #: documents of this level must be sealed to hybrid post-quantum keys only
    post_quantum: bool = False


@dataclass(frozen=True, slots=True)
class Entity:
    code: str
    name: str
    kind: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    members: tuple[str, ...]  # entity codes and group names, as written
    description: str = ""


@dataclass(frozen=True, slots=True)
class Window:
    """A validity window: ``start <= t < end``; a missing bound is open."""

    start: datetime | None = None
    end: datetime | None = None

    def contains(self, at: datetime) -> bool:
        if self.start is not None and at < self.start:
            return False
        return not (self.end is not None and at >= self.end)

    @property
    def unbounded(self) -> bool:
        return self.start is None and self.end is None

    def covers(self, other: Window) -> bool:
        """True if every instant of ``other`` lies in this window."""
        if self.start is not None and (other.start is None or other.start < self.start):
            return False
        return not (self.end is not None and (other.end is None or other.end > self.end))

    def describe(self) -> str:
        """The window in words (a Message: English in data, translated when shown)."""
        if self.unbounded:
            return Message("always")
        start = self.start.isoformat() if self.start else Message("the beginning")
        end = self.end.isoformat() if self.end else Message("open end")
        return Message("from {start} until {end}", start=start, end=end)


@dataclass(frozen=True, slots=True)
class Relation:
    """An allow rule: ``sources`` may send to ``targets`` up to ``max_level``."""

    id: str
    sources: tuple[str, ...]
    targets: tuple[str, ...]
    max_level: str
    direction: Direction
    network: str = ""
    channel: str = ""
    window: Window = field(default_factory=Window)
    description: str = ""
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Forbid:
    """A deny rule; overrides every allow. Forbids levels above ``above`` (all if None)."""

    id: str
    sources: tuple[str, ...]
    targets: tuple[str, ...]
    direction: Direction
    above: str | None = None
    window: Window = field(default_factory=Window)
    description: str = ""
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    id: str
    title: str
    version: int
    effective: datetime
    expires: datetime | None
    decree: str
    levels: tuple[Level, ...]
    entities: dict[str, Entity]
    groups: dict[str, Group]
    relations: tuple[Relation, ...]
    forbids: tuple[Forbid, ...]
    source_name: str = "<policy>"
    description: str = ""
    #: the urgencies (sifat) a letter may have under this policy; empty: the defaults
    urgencies: tuple[str, ...] = ()

    @property
    def window(self) -> Window:
        return Window(self.effective, self.expires)

    def level(self, code: str) -> Level:
        for level in self.levels:
            if level.code == code:
                return level
        raise KeyError(code)

    def expand(self, names: tuple[str, ...] | list[str]) -> frozenset[str]:
        """The entity codes a list of names (entities, groups, ``*``) stands for."""
        out: set[str] = set()
        for name in names:
            out |= self._expand_one(name, ())
        return frozenset(out)

    def _expand_one(self, name: str, seen: tuple[str, ...]) -> set[str]:
        if name == WILDCARD:
            return set(self.entities)
        if name in self.entities:
            return {name}
        group = self.groups[name]
        if name in seen:  # the loader rejects cycles; this only guards against misuse
            return set()
        out: set[str] = set()
        for member in group.members:
            out |= self._expand_one(member, (*seen, name))
        return out

    def summary(self) -> dict[str, object]:
        """A JSON-ready description (``policy show --json``)."""

        def window(w: Window) -> dict[str, str | None]:
            return {
                "from": w.start.isoformat() if w.start else None,
                "until": w.end.isoformat() if w.end else None,
            }

        return {
            "id": self.id,
            "title": self.title,
            "version": self.version,
            "effective": self.effective.isoformat(),
            "expires": self.expires.isoformat() if self.expires else None,
            "decree": self.decree,
            "urgencies": list(self.urgencies),
            "levels": [
                {"code": lv.code, "name": lv.name, "rank": lv.rank, "post_quantum": lv.post_quantum}
                for lv in self.levels
            ],
            "entities": [
                {"code": e.code, "name": e.name, "kind": e.kind} for e in self.entities.values()
            ],
            "groups": [
                {"name": g.name, "members": list(g.members), "description": g.description}
                for g in self.groups.values()
            ],
            "relations": [
                {
                    "id": r.id,
                    "from": list(r.sources),
                    "to": list(r.targets),
                    "max": r.max_level,
                    "direction": r.direction,
                    "network": r.network,
                    "channel": r.channel,
                    "window": window(r.window),
                    "description": r.description,
                }
                for r in self.relations
            ],
            "forbids": [
                {
                    "id": f.id,
                    "from": list(f.sources),
                    "to": list(f.targets),
                    "above": f.above,
                    "direction": f.direction,
                    "window": window(f.window),
                    "description": f.description,
                }
                for f in self.forbids
            ],
        }
