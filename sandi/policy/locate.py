"""Find the line of a TOML table or key in a policy's source text.

``tomllib`` hands back plain dicts with no positions, so error messages would only
name key paths. This module scans the source once for table headers and then answers
"which line holds key K (with value V) of the n-th ``[[relation]]``?". It is a
best-effort index for messages: when it cannot tell, it says ``None`` and the caller
names the key path instead; it never decides whether a file is valid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\[\]#]+?)\s*(\]\]?)\s*(?:#.*)?$")
ARRAY_TABLES = frozenset({"level", "relation", "forbid", "case"})


@dataclass(frozen=True, slots=True)
class _Section:
    name: str  # dotted header, quotes and spaces removed
    array: bool
    start: int  # 0-based index of the header line (-1: the root table)
    end: int  # exclusive


def _normalise(header: str) -> str:
    parts = [p.strip().strip('"').strip("'") for p in header.split(".")]
    return ".".join(parts)


class Locator:
    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.sections: list[_Section] = []
        starts: list[tuple[str, bool, int]] = [("", False, -1)]
        for i, line in enumerate(self.lines):
            if not line.lstrip().startswith("["):  # cheap filter: most lines are key = value
                continue
            m = _HEADER.match(line)
            if m and (m.group(1) == "[[") == (m.group(3) == "]]"):
                starts.append((_normalise(m.group(2)), m.group(1) == "[[", i))
        for n, (name, array, start) in enumerate(starts):
            end = starts[n + 1][2] if n + 1 < len(starts) else len(self.lines)
            self.sections.append(_Section(name, array, start, end))
        self._arrays: dict[str, list[_Section]] = {}
        self._tables: dict[str, _Section] = {}
        for s in self.sections:
            if s.array:
                self._arrays.setdefault(s.name, []).append(s)
            else:
                self._tables.setdefault(s.name, s)

    def _array_section(self, name: str, index: int) -> _Section | None:
        found = self._arrays.get(name, [])
        return found[index] if 0 <= index < len(found) else None

    def _table(self, name: str) -> _Section | None:
        return self._tables.get(name)

    def _key_line(self, section: _Section, key: str, after: int | None = None) -> int | None:
        pattern = re.compile(r"^\s*(?:\"" + re.escape(key) + r"\"|'" + re.escape(key) + r"'|"
                             + re.escape(key) + r")\s*[=.]")
        first = section.start + 1 if after is None else after
        for i in range(max(first, 0), section.end):
            if pattern.match(self.lines[i]):
                return i
        return None

    def _value_line(self, start: int, end: int, value: str) -> int | None:
        needles = (f'"{value}"', f"'{value}'")
        for i in range(max(start, 0), end):
            line = self.lines[i]
            if any(n in line for n in needles):
                return i
        return None

    def line(self, path: tuple[str | int, ...], value: str | None = None) -> int | None:
        """1-based line of ``path`` (and of ``value`` inside it, if given), or None."""
        if not path:
            return None
        head = str(path[0])
        section: _Section | None = None
        rest: tuple[str | int, ...] = ()
        if head in ARRAY_TABLES and len(path) >= 2 and isinstance(path[1], int):
            section = self._array_section(head, path[1])
            rest = path[2:]
        if section is None and len(path) >= 2:
            section = self._table(f"{head}.{path[1]}")
            rest = path[2:]
        if section is None:
            section = self._table(head)
            rest = path[1:]
        if section is None:
            return None
        line: int | None = section.start if section.start >= 0 else None
        search_from = section.start + 1
        for key in rest:
            if isinstance(key, int):
                continue
            found = self._key_line(section, key, search_from)
            if found is None:
                break
            line = found
            search_from = found
        if value is not None:
            found_v = self._value_line(search_from if line is not None else section.start + 1,
                                       section.end, value)
            if found_v is not None:
                line = found_v
        return None if line is None else line + 1
