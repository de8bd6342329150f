"""Classifications by name: what a person types for ``--class``, and how it is shown.

A classification level has a short code (``SR``, ``R``, ``T``, ``B``, as the policy
defines its levels) and an official Indonesian name (*Sangat Rahasia*, *Rahasia*,
*Terbatas*, *Biasa*). People type either, in any case and with any separator
(``sr``, ``Sangat Rahasia``, ``sangat-rahasia``), or the usual English name of a
default level (``Top Secret``, ``Secret``, ``Restricted``, ``Unclassified``).

Invariants:

* resolution is exact after normalisation (case, spaces, ``-``, ``_`` and ``.`` are
  ignored): never a prefix or a guess, since the classification decides who may read;
* a code wins over a name, a level's own name over an English alias, and an alias
  only reaches the level whose name is the default Indonesian name it stands for
  (a policy with its own labels is never matched through someone else's words);
* what is stored and signed is always the code; the names are official Indonesian
  terms and are shown as they are in every language (``Rahasia (R)``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from sandi.errors import UsageError
from sandi.i18n import _
from sandi.policy.model import DEFAULT_LEVELS, Level

#: the default levels, lowest first (as a policy's [[level]] tables would give them)
DEFAULT_LEVEL_OBJECTS: tuple[Level, ...] = tuple(
    Level(code=code, name=name, rank=rank) for rank, (code, name) in enumerate(DEFAULT_LEVELS)
)

#: other words for the default Indonesian names: the usual English ones, and *Terbuka*
#: (the older name of Biasa). Accepted as input, never shown.
ALIASES: dict[str, tuple[str, ...]] = {
    "Sangat Rahasia": ("Top Secret",),
    "Rahasia": ("Secret",),
    "Terbatas": ("Restricted", "Limited"),
    "Biasa": ("Unclassified", "Ordinary", "Open", "Terbuka"),
}

_SEPARATORS = re.compile(r"[\s_.\-]+")


def normalise(text: str) -> str:
    """``Sangat-Rahasia`` → ``sangatrahasia``: the form names are compared in."""
    return _SEPARATORS.sub("", text).casefold()


def find_level(text: str, levels: Sequence[Level] = DEFAULT_LEVEL_OBJECTS) -> Level | None:
    """The level ``text`` names (a code, a name, or an English alias), or None."""
    key = normalise(text)
    if not key:
        return None
    for level in levels:
        if normalise(level.code) == key:
            return level
    for level in levels:
        if normalise(level.name) == key:
            return level
    for level in levels:
        aliases = ALIASES.get(_default_name(level.name), ())
        if any(normalise(alias) == key for alias in aliases):
            return level
    return None


def resolve_level(text: str, levels: Sequence[Level] = DEFAULT_LEVEL_OBJECTS) -> Level:
    """The level ``text`` names; a :class:`UsageError` listing the choices otherwise."""
    level = find_level(text, levels)
    if level is None:
        raise UsageError(
            _("unknown classification {value!r}").format(value=text),
            hint=_("give a code or a name: {choices}").format(choices=describe_levels(levels)),
        )
    return level


def level_label(code: str, levels: Sequence[Level] = DEFAULT_LEVEL_OBJECTS) -> str:
    """``R`` → ``Rahasia (R)``; a code no level has is shown as it is."""
    for level in levels:
        if level.code == code:
            return f"{level.name} ({level.code})"
    return code


def describe_levels(levels: Iterable[Level]) -> str:
    """``SR (Sangat Rahasia), R (Rahasia), ...``, highest first."""
    ordered = sorted(levels, key=lambda lv: -lv.rank)
    return ", ".join(f"{lv.code} ({lv.name})" for lv in ordered)


def level_codes(levels: Iterable[Level]) -> list[str]:
    """The codes, highest first (the order an operator reads them in)."""
    return [lv.code for lv in sorted(levels, key=lambda lv: -lv.rank)]


def level_words(levels: Iterable[Level] = DEFAULT_LEVEL_OBJECTS) -> list[str]:
    """Every word that names a level: codes, names and the aliases of default names."""
    words: list[str] = []
    for level in levels:
        words += [level.code, level.name, *ALIASES.get(_default_name(level.name), ())]
    return words


def _default_name(name: str) -> str:
    key = normalise(name)
    for default in ALIASES:
        if normalise(default) == key:
            return default
    return ""


__all__ = [
    "ALIASES",
    "DEFAULT_LEVEL_OBJECTS",
    "describe_levels",
    "find_level",
    "level_codes",
    "level_label",
    "level_words",
    "normalise",
    "resolve_level",
]
