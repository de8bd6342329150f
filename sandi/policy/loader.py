"""Load and validate a PHKS policy file (TOML) into a :class:`~sandi.policy.model.Policy`.

Invariants:

* strict: every table accepts exactly its documented keys; an unknown key, a wrong
  type, an unknown name, a bad level, an empty or cyclic group, a bad date or a
  duplicate id is an error, never ignored;
* every problem is reported as ``FILE:LINE: WHERE: PROBLEM`` (the line found by
  :mod:`sandi.policy.locate`; the key path when no line can be found), all problems
  of a file at once, as one :class:`PolicyFileError`;
* limits (file size, counts) are checked before the work they bound;
* nothing here imports SQLAlchemy or anything heavier than the standard library.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

from sandi.errors import PolicyError
from sandi.formats.bounded import Reason, load_toml
from sandi.i18n import N_, Message, _, ngettext, translated
from sandi.policy.locate import Locator
from sandi.policy.model import (
    DEFAULT_LEVELS,
    ENTITY_KINDS,
    WILDCARD,
    Direction,
    Entity,
    Forbid,
    Group,
    Level,
    Policy,
    Relation,
    Window,
)

MAX_SOURCE_BYTES = 32 * 1024 * 1024
#: a national deployment: 38 provinces, 514 regencies and cities and their agencies (issue 20)
MAX_ENTITIES = 100_000
MAX_GROUPS = 5_000
MAX_RELATIONS = 500_000
MAX_LEVELS = 16
MAX_PROBLEMS = 50
#: tables and arrays nest at most this deep (a policy needs 3; checked before parsing)
MAX_DEPTH = 16

CODE_RE = re.compile(r"^[A-Z][A-Z0-9_-]{0,63}$")
LEVEL_RE = re.compile(r"^[A-Z][A-Z0-9]{0,7}$")
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
TZ_RE = re.compile(r"^([+-])(\d{2}):(\d{2})$")

TOP_KEYS = ("policy", "level", "entities", "groups", "relation", "forbid")
POLICY_KEYS = ("id", "title", "version", "effective", "expires", "decree", "timezone", "description",
               "urgencies")
LEVEL_KEYS = ("code", "name", "description", "post_quantum")
ENTITY_KEYS = ("name", "kind", "description")
GROUP_KEYS = ("members", "description")
RELATION_KEYS = ("id", "from", "to", "max", "direction", "network", "channel", "valid_from",
                 "valid_until", "description")
FORBID_KEYS = ("id", "from", "to", "above", "direction", "valid_from", "valid_until", "description")
DIRECTIONS = ("one-way", "both")


@dataclass(frozen=True, slots=True)
class Problem:
    source: str
    line: int | None
    where: str
    message: str

    def __str__(self) -> str:
        """The problem as a person reads it (in the current language)."""
        loc = f"{self.source}:{self.line}" if self.line else self.source
        message = translated(self.message)
        return f"{loc}: {self.where}: {message}" if self.where else f"{loc}: {message}"


class PolicyFileError(PolicyError):
    """A policy (or test-case) file is malformed; ``problems`` lists every finding."""

    default_hint = N_("fix the file, then check it with 'sandi policy validate FILE'")

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        shown = [str(p) for p in self.problems[:MAX_PROBLEMS]]
        if len(self.problems) > MAX_PROBLEMS:
            more = len(self.problems) - MAX_PROBLEMS
            shown.append(ngettext("... and {count} more problem", "... and {count} more problems",
                                  more).format(count=more))
        super().__init__("\n".join(shown) if shown else _("invalid policy"))


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    match = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return Message(" (did you mean {name}?)", name=match[0]) if match else ""


class _Reader:
    """Collects problems with their locations while the tables are read."""

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.locator = Locator(text)
        self.problems: list[Problem] = []
        self.tz = UTC

    def error(self, path: tuple[str | int, ...], where: str, message: str,
              value: str | None = None) -> None:
        self.problems.append(Problem(self.source, self.locator.line(path, value), where, message))

    def check_keys(self, table: dict[str, Any], allowed: tuple[str, ...],
                   path: tuple[str | int, ...], where: str) -> None:
        for key in table:
            if key not in allowed:
                self.error((*path, key), where, Message(
                    "unknown key '{key}'{suggestion}; allowed: {allowed}",
                    key=key, suggestion=did_you_mean(key, allowed), allowed=", ".join(allowed),
                ))

    def string(self, table: dict[str, Any], key: str, path: tuple[str | int, ...], where: str,
               *, required: bool = True, default: str = "") -> str:
        if key not in table:
            if required:
                self.error(path, where, Message("missing required key '{key}'", key=key))
            return default
        value = table[key]
        if not isinstance(value, str):
            self.error((*path, key), where, Message(
                "'{key}' must be a string, not {tname}",
                key=key,
                tname=_tname(value),
            ))
            return default
        return value

    def when(self, table: dict[str, Any], key: str, path: tuple[str | int, ...], where: str,
             *, required: bool = False) -> datetime | None:
        if key not in table:
            if required:
                self.error(path, where, Message("missing required key '{key}'", key=key))
            return None
        value = table[key]
        if isinstance(value, datetime):
            return value if value.tzinfo is not None else value.replace(tzinfo=self.tz)
        if isinstance(value, date):
            return datetime.combine(value, time(0), tzinfo=self.tz)
        self.error((*path, key), where,
                   f"'{key}' must be a TOML date or date-time (e.g. 2025-01-01), not {_tname(value)}"
                   + (f" {value!r}" if isinstance(value, str) else ""))
        return None


def _tname(value: object) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "a boolean",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


def load_policy(path: str | Path) -> Policy:
    """Read, parse and validate a policy file; raises PolicyFileError naming file and line."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_SOURCE_BYTES:
            raise PolicyFileError([Problem(p.name, None, "", Message(
                "file is {size} bytes; the limit is {max_source_bytes}",
                size=size,
                max_source_bytes=MAX_SOURCE_BYTES,
            ))])
        data = p.read_bytes()
    except OSError as exc:
        raise PolicyError(_("cannot read policy file {p}: {reason}").format(
            p=p,
            reason=exc.strerror or exc,
        )) from None
    return parse_policy(data, source=p.name)


def decode_source(data: bytes | str, source: str) -> str:
    if isinstance(data, str):
        return data
    if len(data) > MAX_SOURCE_BYTES:
        raise PolicyFileError([Problem(source, None, "", Message(
            "source is {count} bytes; the limit is {max_source_bytes}",
            count=len(data),
            max_source_bytes=MAX_SOURCE_BYTES,
        ))])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PolicyFileError([Problem(source, line, "", Message("not valid UTF-8"))]) from None


def parse_toml(text: str, source: str) -> dict[str, Any]:
    def refuse(reason: Reason) -> PolicyFileError:
        if reason.detail:
            where = f"column {reason.column}" if reason.column else ""
            message = Message("TOML syntax error: {detail}", detail=reason.detail)
            return PolicyFileError([Problem(source, reason.line, where, message)])
        return PolicyFileError([Problem(source, None, "", reason)])

    return load_toml(text, max_bytes=MAX_SOURCE_BYTES, error=refuse, max_depth=MAX_DEPTH)


def parse_policy(data: bytes | str, source: str = "<policy>") -> Policy:
    """Parse and validate policy source text (bytes are decoded as strict UTF-8)."""
    text = decode_source(data, source)
    if len(text) > MAX_SOURCE_BYTES:
        raise PolicyFileError([Problem(source, None, "", Message("source too large"))])
    doc = parse_toml(text, source)
    r = _Reader(text, source)
    policy = _build(doc, r)
    if r.problems or policy is None:
        raise PolicyFileError(r.problems)
    return policy


def _build(doc: dict[str, Any], r: _Reader) -> Policy | None:
    r.check_keys(doc, TOP_KEYS, (), "top level")

    # -- [policy] ------------------------------------------------------------------------
    meta = doc.get("policy")
    if not isinstance(meta, dict):
        r.error(("policy",), "[policy]", Message("missing the [policy] table (id, title, version, "
                "effective, decree)") if meta is None else Message("[policy] must be a table"))
        meta = {}
    where = "[policy]"
    r.check_keys(meta, POLICY_KEYS, ("policy",), where)
    tzs = meta.get("timezone", "+00:00")
    if not isinstance(tzs, str) or not TZ_RE.match(tzs):
        r.error(("policy", "timezone"), where,
                Message("timezone must be a UTC offset like \"+07:00\", not {tzs!r}", tzs=tzs))
    else:
        sign, hh, mm = TZ_RE.match(tzs).groups()  # type: ignore[union-attr]
        if int(hh) > 14 or int(mm) > 59:
            r.error(("policy", "timezone"), where, Message("timezone offset {tzs} is out of range", tzs=tzs))
        else:
            delta = timedelta(hours=int(hh), minutes=int(mm))
            r.tz = timezone(-delta if sign == "-" else delta)
    pid = r.string(meta, "id", ("policy",), where)
    if pid and not ID_RE.match(pid):
        r.error(("policy", "id"), where, Message(
            "id {pid!r} must be letters, digits, '.', '_' or '-'",
            pid=pid,
        ))
    title = r.string(meta, "title", ("policy",), where)
    decree = r.string(meta, "decree", ("policy",), where)
    description = r.string(meta, "description", ("policy",), where, required=False)
    urgencies = meta.get("urgencies", [])
    if (not isinstance(urgencies, list)
            or not all(isinstance(u, str) and u.strip() and len(u) <= 64 for u in urgencies)
            or len({u.strip().casefold() for u in urgencies}) != len(urgencies)):
        r.error(("policy", "urgencies"), where, Message(
            "urgencies must be a list of distinct short names, "
            "e.g. [\"Sangat Segera\", \"Segera\", \"Biasa\"]"))
        urgencies = []
    version = meta.get("version")
    if "version" not in meta:
        r.error(("policy",), where, Message("missing required key 'version'"))
        version = 0
    elif not isinstance(version, int) or isinstance(version, bool) or version < 1:
        r.error(("policy", "version"), where, Message(
            "version must be a positive integer, not {version!r}",
            version=version,
        ))
        version = 0
    effective = r.when(meta, "effective", ("policy",), where, required=True)
    expires = r.when(meta, "expires", ("policy",), where)
    if effective and expires and expires <= effective:
        r.error(("policy", "expires"), where,
                Message(
                    "expires ({expires}) is not after effective ({effective})",
                    expires=expires.isoformat(),
                    effective=effective.isoformat(),
                ))

    # -- [[level]] -----------------------------------------------------------------------
    levels = _levels(doc, r)
    level_codes = tuple(lv.code for lv in levels)  # lowest first, for messages

    # -- [entities] ----------------------------------------------------------------------
    entities: dict[str, Entity] = {}
    raw_entities = doc.get("entities")
    if not isinstance(raw_entities, dict) or not raw_entities:
        r.error(("entities",), "[entities]", Message("the policy names no entities")
                if raw_entities in (None, {})
                else Message("[entities] must be a table of CODE = {{ name = ..., kind = ... }}"))
        raw_entities = {}
    if len(raw_entities) > MAX_ENTITIES:
        raise PolicyFileError([Problem(r.source, None, "[entities]",
                                       Message(
                                           "{count} entities; the limit is {max_entities}",
                                           count=len(raw_entities),
                                           max_entities=MAX_ENTITIES,
                                       ))])
    for code, spec in raw_entities.items():
        where = f"entity '{code}'"
        if not CODE_RE.match(code):
            r.error(("entities", code), where,
                    Message(
                        "entity codes are upper-case letters, digits, '_' or '-', starting with a letter",
                    ))
        if not isinstance(spec, dict):
            r.error(("entities", code), where, Message("must be a table {{ name = ..., kind = ... }}"))
            continue
        r.check_keys(spec, ENTITY_KEYS, ("entities", code), where)
        name = r.string(spec, "name", ("entities", code), where)
        kind = r.string(spec, "kind", ("entities", code), where)
        if kind and kind not in ENTITY_KINDS:
            r.error(("entities", code, "kind"), where, Message(
                "unknown kind '{kind}'{suggestion}; kinds: {kinds}",
                kind=kind, suggestion=did_you_mean(kind, ENTITY_KINDS), kinds=", ".join(ENTITY_KINDS),
            ), value=kind)
        entities[code] = Entity(code, name, kind,
                                r.string(spec, "description", ("entities", code), where, required=False))

    # -- [groups.NAME] -------------------------------------------------------------------
    groups = _groups(doc, r, entities)
    names = set(entities) | set(groups)

    # -- [[relation]] and [[forbid]] ----------------------------------------------------
    seen_ids: dict[str, str] = {}
    relations: list[Relation] = []
    forbids: list[Forbid] = []
    for kind_key in ("relation", "forbid"):
        raw = doc.get(kind_key, [])
        if not isinstance(raw, list):
            r.error((kind_key,), kind_key, Message(
                "'{kind_key}' must be an array of tables [[{kind_key}]]",
                kind_key=kind_key,
            ))
            continue
        if len(raw) > MAX_RELATIONS:
            raise PolicyFileError([Problem(r.source, None, kind_key,
                                           Message(
                                               "{count} rules; the limit is {max_relations}",
                                               count=len(raw),
                                               max_relations=MAX_RELATIONS,
                                           ))])
        for i, spec in enumerate(raw):
            rule = _rule(kind_key, i, spec, r, names, level_codes, seen_ids)
            if isinstance(rule, Relation):
                relations.append(rule)
            elif isinstance(rule, Forbid):
                forbids.append(rule)
    if effective is None or r.problems:
        return None
    return Policy(
        id=pid, title=title, version=int(version), effective=effective, expires=expires,
        decree=decree, levels=levels, entities=entities, groups=groups,
        relations=tuple(relations), forbids=tuple(forbids), source_name=r.source,
        description=description, urgencies=tuple(u.strip() for u in urgencies),
    )


def _levels(doc: dict[str, Any], r: _Reader) -> tuple[Level, ...]:
    raw = doc.get("level")
    if raw is None:
        return tuple(Level(code, name, rank) for rank, (code, name) in enumerate(DEFAULT_LEVELS))
    if not isinstance(raw, list) or not raw:
        r.error(("level",), "[[level]]", Message("levels must be a non-empty array of tables [[level]]"))
        return ()
    if len(raw) > MAX_LEVELS:
        r.error(("level",), "[[level]]", Message(
            "{count} levels; the limit is {max_levels}",
            count=len(raw),
            max_levels=MAX_LEVELS,
        ))
        return ()
    out: list[Level] = []
    seen: set[str] = set()
    for i, spec in enumerate(raw):
        where = f"level #{i + 1}"
        if not isinstance(spec, dict):
            r.error(("level", i), where, Message("must be a table"))
            continue
        r.check_keys(spec, LEVEL_KEYS, ("level", i), where)
        code = r.string(spec, "code", ("level", i), where)
        name = r.string(spec, "name", ("level", i), where)
        if code and not LEVEL_RE.match(code):
            r.error(("level", i, "code"), where,
                    Message("level code {code!r} must be 1-8 upper-case letters or digits", code=code))
        if code in seen:
            r.error(("level", i, "code"), where, Message("duplicate level code '{code}'", code=code))
        seen.add(code)
        post_quantum = spec.get("post_quantum", False)
        if not isinstance(post_quantum, bool):
            r.error(("level", i, "post_quantum"), where,
                    f"'post_quantum' must be true or false, not {_tname(post_quantum)}")
            post_quantum = False
        elif out and out[-1].post_quantum and not post_quantum:
            r.error(("level", i, "post_quantum"), where,
                    f"level '{code}' is above '{out[-1].code}', which requires post-quantum sealing, "
                    "so it must require it too (post_quantum = true)")
        out.append(Level(code, name, len(out),
                         r.string(spec, "description", ("level", i), where, required=False),
                         post_quantum))
    return tuple(out)


def _groups(doc: dict[str, Any], r: _Reader, entities: dict[str, Entity]) -> dict[str, Group]:
    raw = doc.get("groups", {})
    if not isinstance(raw, dict):
        r.error(("groups",), "[groups]", Message("groups must be tables [groups.NAME] with members = [...]"))
        return {}
    if len(raw) > MAX_GROUPS:
        raise PolicyFileError([Problem(r.source, None, "[groups]",
                                       Message(
                                           "{count} groups; the limit is {max_groups}",
                                           count=len(raw),
                                           max_groups=MAX_GROUPS,
                                       ))])
    groups: dict[str, Group] = {}
    for name, spec in raw.items():
        where = f"group '{name}'"
        if not CODE_RE.match(name):
            r.error(("groups", name), where,
                    Message("group names are upper-case letters, digits, '_' or '-', starting with a letter"))
        if name in entities:
            r.error(("groups", name), where, Message(
                "'{name}' is already an entity; names must be unique",
                name=name,
            ))
            continue
        if not isinstance(spec, dict):
            r.error(("groups", name), where, Message("must be a table with members = [...]"))
            continue
        r.check_keys(spec, GROUP_KEYS, ("groups", name), where)
        members = spec.get("members")
        if members is None:
            r.error(("groups", name), where, Message("missing required key 'members'"))
            continue
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            r.error(("groups", name, "members"), where, Message("members must be a list of names"))
            continue
        if not members:
            r.error(("groups", name, "members"), where, Message(
                "empty group: a group needs at least one member",
            ))
            continue
        dupes = {m for m in members if members.count(m) > 1}
        for d in sorted(dupes):
            r.error(("groups", name, "members"), where, Message("member '{d}' is listed twice", d=d), value=d)
        groups[name] = Group(name, tuple(members),
                             r.string(spec, "description", ("groups", name), where, required=False))
    known = set(entities) | set(raw)
    for g in groups.values():
        for m in g.members:
            if m == WILDCARD:
                r.error(("groups", g.name, "members"), f"group '{g.name}'",
                        Message("'*' cannot be a group member; use '*' in the relation itself"), value=m)
            elif m not in known:
                r.error(("groups", g.name, "members"), f"group '{g.name}'",
                        Message(
                            "unknown entity or group '{m}'{did_you_mean}",
                            m=m,
                            did_you_mean=did_you_mean(m, known),
                        ), value=m)
    # cycles: depth-first search, reporting the cycle as a path
    state: dict[str, int] = {}
    reported: set[frozenset[str]] = set()

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for m in groups[name].members:
            if m not in groups:
                continue
            if state.get(m) == 1:
                cycle = [*path[path.index(m):], m] if m in path else [name, m]
                key = frozenset(cycle)
                if key not in reported:
                    reported.add(key)
                    r.error(("groups", name, "members"), f"group '{name}'",
                            "group cycle: " + " -> ".join(cycle), value=m)
            elif state.get(m) is None:
                visit(m, [*path, m])
        state[name] = 2

    for name in groups:
        if name not in state:
            visit(name, [name])
    return groups


def _names(spec: dict[str, Any], key: str, path: tuple[str | int, ...], where: str, r: _Reader,
           names: set[str]) -> tuple[str, ...]:
    if key not in spec:
        r.error(path, where, Message("missing required key '{key}'", key=key))
        return ()
    value = spec[key]
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) for v in items):
        r.error((*path, key), where, Message(
            "'{key}' must be a name or a non-empty list of names (entities, groups or \"*\")",
            key=key,
        ))
        return ()
    for v in items:
        if items.count(v) > 1:
            r.error((*path, key), where, Message("'{v}' is listed twice in '{key}'", v=v, key=key), value=v)
            break
    for v in items:
        if v != WILDCARD and v not in names:
            r.error((*path, key), where, Message(
                "unknown entity '{v}'{did_you_mean}",
                v=v,
                did_you_mean=did_you_mean(v, names),
            ), value=v)
    return tuple(items)


def _rule(kind: str, i: int, spec: object, r: _Reader, names: set[str], levels: tuple[str, ...],
          seen_ids: dict[str, str]) -> Relation | Forbid | None:
    path: tuple[str | int, ...] = (kind, i)
    if not isinstance(spec, dict):
        r.error(path, f"{kind} #{i + 1}", Message("must be a table"))
        return None
    rid = spec.get("id")
    where = f"{kind} '{rid}'" if isinstance(rid, str) and rid else f"{kind} #{i + 1}"
    r.check_keys(spec, RELATION_KEYS if kind == "relation" else FORBID_KEYS, path, where)
    rid = r.string(spec, "id", path, where)
    if rid:
        if not ID_RE.match(rid):
            r.error((*path, "id"), where, Message(
                "id {rid!r} must be letters, digits, '.', '_' or '-'",
                rid=rid,
            ))
        if rid in seen_ids:
            r.error((*path, "id"), where, Message(
                "duplicate id '{rid}' (already used by a {seen_ids})",
                rid=rid,
                seen_ids=seen_ids[rid],
            ))
        seen_ids.setdefault(rid, kind)
    sources = _names(spec, "from", path, where, r, names)
    targets = _names(spec, "to", path, where, r, names)
    direction = r.string(spec, "direction", path, where)
    if direction and direction not in DIRECTIONS:
        r.error((*path, "direction"), where, Message(
            "direction must be \"one-way\" or \"both\", not {direction!r}{suggestion}",
            direction=direction, suggestion=did_you_mean(direction, DIRECTIONS),
        ), value=direction)
    start = r.when(spec, "valid_from", path, where)
    end = r.when(spec, "valid_until", path, where)
    if start and end and end <= start:
        r.error((*path, "valid_until"), where,
                Message(
                    "valid_until ({end}) is not after valid_from ({start})",
                    end=end.isoformat(),
                    start=start.isoformat(),
                ))
    description = r.string(spec, "description", path, where, required=False)
    line = r.locator.line(path)
    window = Window(start, end)
    dirv: Direction = "both" if direction == "both" else "one-way"
    if kind == "relation":
        level = r.string(spec, "max", path, where)
        if level and level not in levels:
            r.error((*path, "max"), where, Message(
                "unknown classification level '{level}'{suggestion}; levels: {levels}",
                level=level, suggestion=did_you_mean(level, levels), levels=", ".join(levels),
            ), value=level)
        return Relation(rid, sources, targets, level, dirv,
                        r.string(spec, "network", path, where, required=False),
                        r.string(spec, "channel", path, where, required=False),
                        window, description, line)
    above = spec.get("above")
    if above is not None and (not isinstance(above, str) or above not in levels):
        r.error((*path, "above"), where, Message(
            "unknown classification level {level!r}{suggestion}; levels: {levels}",
            level=above, suggestion=did_you_mean(above, levels) if isinstance(above, str) else "",
            levels=", ".join(levels),
        ))
    return Forbid(rid, sources, targets, dirv, above if isinstance(above, str) else None, window,
                  description, line)
