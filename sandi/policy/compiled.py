"""The compiled policy: what the engine decides from, as canonical text (docs/format.md).

The authority compiles a policy once, at ``policy apply``, and publishes this form
beside the TOML source, signed by the root; workstations decide from it without
parsing TOML (ADR 0016). Layout — UTF-8, lines ending in ``\\n``::

    sandi-policy-compiled/v1
    {header: id, version, window, levels, urgencies, entities and their principals}
    ["FROM", [["TO", [[order, id, rank, valid_from, valid_until, network, channel], ...]], ...]]
    ...  (one line per from-principal that has rules, sorted by principal)

Invariants:

* canonical: the header and every row are JSON as :func:`json.dumps` writes them with
  sorted keys, ``(",", ":")`` separators and ``ensure_ascii=False``; rows are sorted by
  principal, to-principals within a row sorted, rule orders within a pair strictly
  increasing; anything else is refused, so one policy has exactly one compiled text;
* strict and bounded: the size, the counts (entities, levels, rows, rules) and every
  field's type and range are checked before use; an unknown or missing key, an unknown
  principal, an order outside the rule table, a rule that reads differently in two rows
  is a :class:`~sandi.errors.FormatError`, never a different decision;
* lazy: loading checks the first two lines and where each row starts; a row is decoded
  and checked the first time a decision needs it (the sender's principals), so a
  decision touches a few rows, not the whole policy;
* faithful: :func:`dump_compiled` writes a :class:`~sandi.policy.engine.CompiledPolicy`'s
  own index, and :func:`load_compiled` rebuilds it, so every query (decisions with their
  reasons, matching rules, ceilings, levels, post-quantum rules) answers identically
  (tests/test_policy_compiled.py checks this by property).

The root's signature over this text (:mod:`sandi.policy.signature`) is what makes it
trustworthy; this module checks form, not origin.
"""

from __future__ import annotations

import json
import re
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
#: a name is at most 64 characters; an urgency too
MAX_NAME = 64
MAX_TEXT = 4096
_HEADER_DEPTH = 5
_ROW_DEPTH = 5

HEADER_KEYS = ("effective", "entities", "expires", "first_forbid", "id", "levels", "rows", "rules",
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
    rules = compiled.rule_list
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
        # principals after the entity itself, before "*": the groups containing it
        "entities": [[code, list(principals[1:-1])] for code, principals in compiled._principals.items()],
        "first_forbid": compiled._first_forbid,
        "rules": len(policy.relations) + len(policy.forbids),
        "rows": len(compiled.row_table),
    }
    lines = [MAGIC, _canonical(header)]
    for source in sorted(compiled.row_table):
        row = compiled.row_table[source]
        pairs = []
        for target in sorted(row):
            pairs.append([target, [_rule_json(rules[order]) for order in sorted(set(row[target]))]])
        lines.append(_canonical([source, pairs]))
    return "\n".join(lines) + "\n"


def _rule_json(rule: _Rule) -> list[object]:
    return [rule.order, rule.id, rule.rank, _iso(rule.window.start), _iso(rule.window.end),
            rule.network, rule.channel]


# -- reading ------------------------------------------------------------------------------


def _malformed(where: str) -> FormatError:
    return FormatError(_("compiled policy: {where} is malformed").format(where=where),
                       hint=_("the directory is damaged or was not made by sandi; import a fresh one "
                              "from the authority"))


def _json_line(line: str, where: str, depth: int) -> Any:
    value = load_json(line, max_bytes=MAX_COMPILED_BYTES, max_depth=depth,
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


class LoadedPolicy(PolicyIndex):
    """A policy index read from its compiled text; rows are decoded on first use."""

    def __init__(self, text: str) -> None:
        if not text.endswith("\n"):
            raise _malformed("the end")
        lines = text.split("\n")
        lines.pop()  # the empty string after the final newline
        if len(lines) < 2 or lines[0] != MAGIC:
            raise _malformed("the first line")
        header = _json_line(lines[1], "the header", _HEADER_DEPTH)
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
        self._principals = self._entities(header["entities"])
        groups = {p for principals in self._principals.values() for p in principals[1:-1]}
        self._names = frozenset(self._principals) | groups | {WILDCARD}
        self._rule_count = _integer(header["rules"], "header.rules", 0, MAX_RULES)
        self._first_forbid = _integer(header["first_forbid"], "header.first_forbid", 0,
                                      self._rule_count)
        rows = lines[2:]
        if len(rows) != _integer(header["rows"], "header.rows", 0, MAX_ROWS):
            raise _malformed("header.rows")
        # where each from-principal's row is; rows sorted, unique, each a known principal
        self._lines: dict[str, str] = {}
        previous = ""
        for line in rows:
            end = line.find('"', 2)
            principal = line[2:end] if line.startswith('["') and end > 2 else ""
            if principal <= previous or principal not in self._names:
                raise _malformed(f"row {principal!r}")
            self._lines[principal] = line
            previous = principal
        self._table: dict[int, _Rule] = {}
        self._rules = self._table
        self._rules_from = _Rows(self)

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

    @staticmethod
    def _entities(raw: object) -> dict[str, tuple[str, ...]]:
        principals: dict[str, tuple[str, ...]] = {}
        for item in _list(raw, "header.entities", 1, MAX_ENTITIES):
            pair = _list(item, "header.entities", 2, 2)
            code = _string(pair[0], "header.entities", CODE_RE)
            where = f"entity {code!r}"
            groups = tuple(_string(g, where, CODE_RE) for g in _list(pair[1], where, 0, MAX_GROUPS))
            if code in principals or len(set(groups)) != len(groups):
                raise _malformed(where)
            principals[code] = (code, *groups, WILDCARD)
        if not principals.keys().isdisjoint(g for p in principals.values() for g in p[1:-1]):
            raise _malformed("header.entities")
        return principals

    def _row(self, principal: str) -> dict[str, list[int]] | None:
        line = self._lines.get(principal)
        if line is None:
            return None
        where = f"row {principal!r}"
        value = _list(_json_line(line, where, _ROW_DEPTH), where, 2, 2)
        if value[0] != principal:
            raise _malformed(where)
        row: dict[str, list[int]] = {}
        previous = ""
        rules = self._table
        for pair in _list(value[1], where, 1, len(self._names)):
            target, specs = _list(pair, where, 2, 2)
            if not isinstance(target, str) or target <= previous or target not in self._names:
                raise _malformed(where)
            previous = target
            orders: list[int] = []
            for spec in _list(specs, where, 1, self._rule_count):
                rule = self._rule(spec, where)
                if orders and rule.order <= orders[-1]:
                    raise _malformed(where)
                known = rules.get(rule.order)
                if known is None:
                    rules[rule.order] = rule
                elif known != rule:  # one rule, two readings
                    raise _malformed(where)
                orders.append(rule.order)
            row[target] = orders
        return row

    def _rule(self, spec: object, where: str) -> _Rule:
        order, rid, rank, start, end, network, channel = _list(spec, where, 7, 7)
        order = _integer(order, where, 0, self._rule_count - 1)
        forbid = order >= self._first_forbid
        rank = _integer(rank, where, -1 if forbid else 0, len(self.levels) - 1)
        window = Window(_time(start, where), _time(end, where))
        if window.start is not None and window.end is not None and window.end <= window.start:
            raise _malformed(where)
        network = _string(network, where, limit=MAX_TEXT)
        channel = _string(channel, where, limit=MAX_TEXT)
        if forbid and (network or channel):
            raise _malformed(where)
        return _Rule(order, _string(rid, where, ID_RE), rank, window, *_bounds(window), network,
                     channel, forbid)


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


def load_compiled(data: str | bytes) -> LoadedPolicy:
    """Check the compiled text's form and index its rows (rows are checked when read)."""
    if len(data) > MAX_COMPILED_BYTES:
        raise FormatError(_("compiled policy: {size} bytes; the limit is {limit}").format(
            size=len(data), limit=MAX_COMPILED_BYTES))
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise _malformed("the text") from None
    return LoadedPolicy(data)
