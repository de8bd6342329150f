"""The compiled policy: what the engine decides from, as canonical text (docs/policy.md).

The authority compiles a policy once, at ``policy apply``, and publishes this form
beside the TOML source, signed by the root; workstations decide from it without
parsing TOML (ADR 0016). Layout — UTF-8, one JSON value per line, each line ending in
``\n``, in four sections whose sizes the header states::

    sandi-policy-compiled/v1
    {header: id, version, title, window, source_sha256, levels, urgencies, groups, counts}
    ["CODE", ["GROUP", ...]]                       one per entity, sorted by code
    ["FROM", [["TO", [order, ...]], ...]]          one per from-principal, sorted
    ["rule-id", rank, valid_from, valid_until, network, channel]   one per rule, by order

Rules are numbered by their line: relations in file order, then forbids (from
``first_forbid``). A from-principal is an entity, a group or ``*``; an entity's line
lists the groups that contain it (directly or not), so its principals are itself, those
groups and ``*``.

Invariants:

* canonical: every line after the first is JSON as :func:`json.dumps` writes it with
  sorted keys, ``(",", ":")`` separators and ``ensure_ascii=False``; entity and row
  lines are sorted and unique, to-principals in a row sorted, orders in a pair strictly
  increasing; anything else is refused, so one policy has exactly one compiled text;
* strict and bounded: the size and the counts are checked before the work they bound,
  then every line the loader reads is checked field by field (types, ranges, names it
  refers to); a malformed line is a :class:`~sandi.errors.FormatError`, never a
  different decision;
* lazy: loading reads the header and checks the order of the entity and row lines;
  an entity, a row or a rule is decoded and checked the first time a decision needs it
  (binary search on the sorted lines), so a decision touches a few lines, whatever the
  policy's size;
* faithful: :func:`dump_compiled` writes a :class:`~sandi.policy.engine.CompiledPolicy`'s
  own index, and :class:`LoadedPolicy` answers every query (decisions with their
  reasons, matching rules, ceilings, levels, post-quantum rules) identically
  (tests/test_policy_compiled.py checks this by property).

The root's signature over this text (:mod:`sandi.policy.signature`) is what makes it
trustworthy; this module checks form, not origin.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sandi.errors import FormatError
from sandi.formats.bounded import load_json
from sandi.i18n import _
from sandi.policy.engine import CompiledPolicy, PolicyIndex, _bounds, _Rule
from sandi.policy.loader import CODE_RE, ID_RE, LEVEL_RE, MAX_ENTITIES, MAX_GROUPS, MAX_LEVELS, MAX_RELATIONS
from sandi.policy.model import WILDCARD, Level, Window

MAGIC = "sandi-policy-compiled/v1"
#: the compiled form of the largest policy the loader accepts stays far below this
MAX_COMPILED_BYTES = 128 * 1024 * 1024
MAX_ROWS = MAX_ENTITIES + MAX_GROUPS + 1
#: relations and forbids together
MAX_RULES = 2 * MAX_RELATIONS
MAX_NAME = 64
MAX_TEXT = 4096
_DEPTH = 5

HEADER_KEYS = ("effective", "entities", "expires", "first_forbid", "groups", "id", "levels", "rows", "rules",
               "source_sha256", "title", "urgencies", "version")
LEVEL_KEYS = ("code", "description", "name", "post_quantum")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


# -- writing ------------------------------------------------------------------------------


def dump_compiled(compiled: CompiledPolicy, source_sha256: str) -> str:
    """The canonical compiled text of ``compiled`` (from the source whose SHA-256 is given)."""
    policy = compiled.policy
    principals = {code: compiled._principals.get(code) or () for code in policy.entities}
    header = {
        "id": policy.id,
        "version": policy.version,
        "title": policy.title,
        "effective": _iso(policy.effective),
        "expires": _iso(policy.expires),
        "source_sha256": source_sha256,
        "levels": [{"code": lv.code, "name": lv.name, "description": lv.description,
                    "post_quantum": lv.post_quantum} for lv in policy.levels],
        "urgencies": list(policy.urgencies),
        "entities": len(principals),
        "groups": sorted(policy.groups),
        "rows": len(compiled.row_table),
        "rules": len(compiled.rule_list),
        "first_forbid": compiled._first_forbid,
    }
    lines = [MAGIC, _canonical(header)]
    # between the entity and "*": the groups containing it
    lines += [_canonical([code, list(principals[code][1:-1])]) for code in sorted(principals)]
    for source in sorted(compiled.row_table):
        row = compiled.row_table[source]
        lines.append(_canonical([source, [[target, sorted(set(row[target]))] for target in sorted(row)]]))
    lines += [_canonical([rule.id, rule.rank, _iso(rule.window.start), _iso(rule.window.end), rule.network,
                          rule.channel]) for rule in compiled.rule_list]
    return "\n".join(lines) + "\n"


# -- reading ------------------------------------------------------------------------------


def _malformed(where: str) -> FormatError:
    return FormatError(_("compiled policy: {where} is malformed").format(where=where),
                       hint=_("the directory is damaged or was not made by sandi; import a fresh one "
                              "from the authority"))


def _json_line(line: str, where: str) -> Any:
    value = load_json(line, max_bytes=MAX_COMPILED_BYTES, max_depth=_DEPTH,
                      error=lambda reason: _malformed(where))
    if _canonical(value) != line:
        raise _malformed(where)
    return value


def _string(value: object, where: str, pattern: re.Pattern[str] | None = None,
            limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str) or len(value) > limit or (pattern is not None and not pattern.match(value)):
        raise _malformed(where)
    return value


def _integer(value: object, where: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _malformed(where)
    return value


def _time(value: object, where: str) -> datetime | None:
    if value is None:
        return None
    text = _string(value, where, limit=64)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise _malformed(where) from None
    if when.tzinfo is None or when.isoformat() != text:
        raise _malformed(where)
    return when


def _list(value: object, where: str, low: int, high: int) -> list[Any]:
    if not isinstance(value, list) or not low <= len(value) <= high:
        raise _malformed(where)
    return value


class _SortedLines:
    """A section of lines ``["KEY", ...]`` sorted by key: found by binary search.

    Lines sorted as strings are sorted by key too (the ``"`` closing a key sorts below
    every character a name may hold), so a key's line is where ``["KEY"`` would go; a
    repeated key would sit right after it and is refused when its key is looked up.
    """

    def __init__(self, lines: list[str], start: int, end: int, section: str) -> None:
        for i in range(start + 1, end):
            if lines[i - 1] >= lines[i]:
                raise _malformed(f"{section} line {i - start + 1}")
        self._lines, self._start, self._end = lines, start, end

    def find(self, key: str) -> str | None:
        prefix = f'["{key}",'
        lines = self._lines
        i = bisect_left(lines, prefix, self._start, self._end)
        if i == self._end or not lines[i].startswith(prefix):
            return None
        if i + 1 < self._end and lines[i + 1].startswith(prefix):
            raise _malformed(f"the line of {key!r}")
        return lines[i]

    def keys(self) -> Iterator[str]:
        for line in self._lines[self._start:self._end]:
            end = line.find('"', 2)
            yield line[2:end]


class LoadedPolicy(PolicyIndex):
    """A policy index read from its compiled text; lines are decoded on first use."""

    def __init__(self, text: str) -> None:
        if not text.endswith("\n"):
            raise _malformed("the end")
        lines = text.split("\n")
        lines.pop()  # the empty string after the final newline
        if len(lines) < 2 or lines[0] != MAGIC:
            raise _malformed("the first line")
        header = _json_line(lines[1], "the header")
        if not isinstance(header, dict) or tuple(sorted(header)) != HEADER_KEYS:
            raise _malformed("the header")
        levels = self._levels(header["levels"])
        urgencies = tuple(_string(u, "header.urgencies", limit=MAX_NAME)
                          for u in _list(header["urgencies"], "header.urgencies", 0, 64))
        effective = _time(header["effective"], "header.effective")
        if effective is None:
            raise _malformed("header.effective")
        expires = _time(header["expires"], "header.expires")
        if expires is not None and expires <= effective:
            raise _malformed("header.expires")
        self._set_header(_string(header["id"], "header.id", ID_RE),
                         _integer(header["version"], "header.version", 1, 2**63 - 1),
                         effective, expires, levels, urgencies)
        self.title = _string(header["title"], "header.title")
        self.source_sha256 = _string(header["source_sha256"], "header.source_sha256", _SHA256)
        entities = _integer(header["entities"], "header.entities", 1, MAX_ENTITIES)
        groups = [_string(g, "header.groups", CODE_RE)
                  for g in _list(header["groups"], "header.groups", 0, MAX_GROUPS)]
        if groups != sorted(set(groups)):
            raise _malformed("header.groups")
        self._groups = frozenset(groups)
        rows = _integer(header["rows"], "header.rows", 0, MAX_ROWS)
        self._rule_count = _integer(header["rules"], "header.rules", 0, MAX_RULES)
        self._first_forbid = _integer(header["first_forbid"], "header.first_forbid", 0, self._rule_count)
        if len(lines) != 2 + entities + rows + self._rule_count:
            raise _malformed("the header's counts")
        self._lines = lines
        self._first_rule = 2 + entities + rows
        self._entity_lines = _SortedLines(lines, 2, 2 + entities, "entity")
        self._principals = _Entities(self._entity_lines, self._groups)
        self._rows = _SortedLines(lines, 2 + entities, self._first_rule, "row")
        self._rules_from = _Rows(self)
        self._rules = _Rules(self)

    @staticmethod
    def _levels(raw: object) -> tuple[Level, ...]:
        out: list[Level] = []
        for rank, spec in enumerate(_list(raw, "header.levels", 1, MAX_LEVELS)):
            where = f"header.levels[{rank}]"
            if not isinstance(spec, dict) or tuple(sorted(spec)) != LEVEL_KEYS:
                raise _malformed(where)
            post_quantum = spec["post_quantum"]
            if not isinstance(post_quantum, bool) or (out and out[-1].post_quantum and not post_quantum):
                raise _malformed(where)
            code = _string(spec["code"], where, LEVEL_RE)
            if any(lv.code == code for lv in out):
                raise _malformed(where)
            out.append(Level(code, _string(spec["name"], where), rank,
                             _string(spec["description"], where), post_quantum))
        return tuple(out)

    def _known(self, name: str) -> bool:
        """An entity, a group or ``*``."""
        if name == WILDCARD or name in self._groups:
            return True
        return CODE_RE.match(name) is not None and self._entity_lines.find(name) is not None

    def _row(self, principal: str) -> dict[str, list[int]] | None:
        line = self._rows.find(principal)
        if line is None:
            return None
        where = f"row {principal!r}"
        value = _list(_json_line(line, where), where, 2, 2)
        if value[0] != principal or not self._known(principal):
            raise _malformed(where)
        row: dict[str, list[int]] = {}
        previous = ""
        for pair in _list(value[1], where, 1, MAX_ROWS):
            target, orders = _list(pair, where, 2, 2)
            if not isinstance(target, str) or target <= previous or not self._known(target):
                raise _malformed(where)
            previous = target
            checked: list[int] = []
            for order in _list(orders, where, 1, self._rule_count):
                order = _integer(order, where, 0, self._rule_count - 1)
                if checked and order <= checked[-1]:
                    raise _malformed(where)
                checked.append(order)
            row[target] = checked
        return row

    def _rule(self, order: int) -> _Rule:
        where = f"rule {order + 1}"
        if not 0 <= order < self._rule_count:
            raise _malformed(where)
        value = _list(_json_line(self._lines[self._first_rule + order], where), where, 6, 6)
        rid, rank, start, end, network, channel = value
        forbid = order >= self._first_forbid
        rank = _integer(rank, where, -1 if forbid else 0, len(self.levels) - 1)
        window = Window(_time(start, where), _time(end, where))
        if window.start is not None and window.end is not None and window.end <= window.start:
            raise _malformed(where)
        network = _string(network, where)
        channel = _string(channel, where)
        if forbid and (network or channel):
            raise _malformed(where)
        return _Rule(order, _string(rid, where, ID_RE), rank, window, *_bounds(window), network,
                     channel, forbid)


class _Entities:
    """Entity -> principals, read from the entity lines on first use."""

    def __init__(self, lines: _SortedLines, groups: frozenset[str]) -> None:
        self._lines = lines
        self._groups = groups
        self._decoded: dict[str, tuple[str, ...] | None] = {}

    def get(self, code: str, /) -> tuple[str, ...] | None:
        try:
            return self._decoded[code]
        except KeyError:
            pass
        line = self._lines.find(code) if CODE_RE.match(code) else None
        principals = None
        if line is not None:
            where = f"entity {code!r}"
            value = _list(_json_line(line, where), where, 2, 2)
            groups = tuple(_string(g, where, limit=MAX_NAME) for g in _list(value[1], where, 0, MAX_GROUPS))
            if (value[0] != code or code in self._groups or len(set(groups)) != len(groups)
                    or not self._groups.issuperset(groups)):
                raise _malformed(where)
            principals = (code, *groups, WILDCARD)
        self._decoded[code] = principals
        return principals

    def __contains__(self, code: object, /) -> bool:
        return isinstance(code, str) and self.get(code) is not None

    def __iter__(self) -> Iterator[str]:
        return self._lines.keys()


class _Rows:
    """The row index of a :class:`LoadedPolicy`: decodes a row the first time it is asked."""

    def __init__(self, policy: LoadedPolicy) -> None:
        self._policy = policy
        self._decoded: dict[str, dict[str, list[int]] | None] = {}

    def get(self, principal: str, /) -> dict[str, list[int]] | None:
        try:
            return self._decoded[principal]
        except KeyError:
            row = self._decoded[principal] = self._policy._row(principal)
            return row


class _Rules:
    """The rule table of a :class:`LoadedPolicy`: decodes a rule the first time it is asked."""

    def __init__(self, policy: LoadedPolicy) -> None:
        self._policy = policy
        self._decoded: dict[int, _Rule] = {}

    def __getitem__(self, order: int, /) -> _Rule:
        try:
            return self._decoded[order]
        except KeyError:
            rule = self._decoded[order] = self._policy._rule(order)
            return rule


def load_compiled(data: str | bytes) -> LoadedPolicy:
    """Check the compiled text's header and order, and index it (lines are checked when read)."""
    if len(data) > MAX_COMPILED_BYTES:
        raise FormatError(_("compiled policy: {size} bytes; the limit is {limit}").format(
            size=len(data), limit=MAX_COMPILED_BYTES))
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise _malformed("the text") from None
    return LoadedPolicy(data)
