"""Bounded JSON and TOML loading: every malformed input becomes the caller's error.

``json`` and ``tomllib`` recurse once per nesting level, turn a 5,000-digit integer
into a ``ValueError`` from Python's int-string limit, guess UTF-16 for bytes, accept
``NaN``, keep the last of two equal JSON keys and let lone surrogates through. Every
parser of untrusted JSON or TOML in sandi loads through :func:`load_json` or
:func:`load_toml` instead, which hold these invariants:

* The size is checked first (``max_bytes``, of the UTF-8 bytes), then the nesting
  depth is scanned without recursion (brackets and braces outside strings and
  comments), and only then is the text parsed. A ``RecursionError`` that slipped past
  the scan is caught as well.
* Bytes are strict UTF-8 (no BOM guessing, no other encodings).
* Integers fit in 64 signed bits (TOML's own range; JSON's is implementation-defined,
  and no sandi value comes near it); JSON's ``NaN``/``Infinity`` and a key given
  twice in one object are refused; no string or key holds a lone surrogate.
* A parsed TOML value is walked once more, iteratively: no container deeper than
  ``max_depth`` (dotted keys and table headers nest without brackets). JSON needs the
  walk only when the text may hold a surrogate; otherwise it costs about twice a bare
  ``json.loads`` (the duplicate-key hook).
* Anything wrong raises ``error(reason)``, where ``reason`` is a short
  :class:`~sandi.i18n.Message` (English, shown translated) and ``error`` is the
  caller's error type (``FormatError``,
  ``VerificationError``, ``PolicyError``, ``ConfigError`` ...) or a function building
  one. Nothing else escapes: no ``ValueError``, ``RecursionError`` or
  ``UnicodeDecodeError``.
"""

from __future__ import annotations

import json
import re
import tomllib
from array import array
from collections.abc import Callable
from itertools import accumulate
from typing import Any, NoReturn

from sandi.i18n import Message

#: the nesting a sandi file needs is below 10; 32 leaves room and stays far from recursion limits
DEFAULT_MAX_DEPTH = 32
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
_MAX_INT_CHARS = 21  # sign and 19 digits cover every 64-bit integer; longer is refused unparsed



class Reason(Message):
    """Why an input was refused (English, shown translated); a TOML syntax error also
    says where."""

    line: int | None = None
    column: int | None = None
    #: tomllib's own description of a syntax error (English), without the position
    detail: str = ""


ErrorFactory = Callable[[Reason], Exception]

# JSON's depth scan drops escape pairs, then whole strings, then everything but
# brackets, and sums +1/-1 steps in C: a few passes over the text, each linear.
# TOML's depth scan finds the next bracket, brace, quote (or TOML comment) and skips whole
# strings and comments; an unterminated string ends the scan (the parser stops there
# too). Linear in the text: no backtracking pattern, no recursion.
_TOML_NEXT = re.compile(r"""[\[\]{}"'#]""")
_JSON_STRING = re.compile(r'"[^"]*"')  # once escapes are gone, a string has no quote inside
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 / -1 as signed bytes
_BASIC_STRING_END = re.compile(r'\\.|"|\n', re.S)
_MULTILINE_BASIC_END = re.compile(r'\\.|"""', re.S)
_LITERAL_STRING_END = re.compile(r"['\n]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_OPEN = frozenset("[{")
_CLOSE = frozenset("]}")


def _as_reason(message: Message) -> Reason:
    return message if isinstance(message, Reason) else Reason(message.template, **message.args)


def _fail(error: ErrorFactory, reason: Message) -> NoReturn:
    raise error(_as_reason(reason))


def _text(data: bytes | str, max_bytes: int, error: ErrorFactory) -> str:
    if isinstance(data, str):
        # 4 bytes per character at most: only a text that might be too large is encoded
        if len(data) * 4 > max_bytes and len(data.encode("utf-8", "surrogatepass")) > max_bytes:
            _fail(error, Message("larger than {limit} bytes", limit=max_bytes))
        return data
    if len(data) > max_bytes:
        _fail(error, Message("larger than {limit} bytes", limit=max_bytes))
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        _fail(error, Message("not valid UTF-8 (byte {offset})", offset=exc.start))


def _string_end(text: str, start: int, pattern: re.Pattern[str]) -> int:
    """Index just past the string's terminator, or -1 when it has none."""
    for match in pattern.finditer(text, start):
        if match.group()[0] != "\\":
            return match.end()
    return -1


def _past_quotes(text: str, index: int, quote: str) -> int:
    # TOML lets a multi-line string end with one or two quotes before its closing three
    for _extra in range(2):
        if text.startswith(quote, index):
            index += 1
    return index


def _scan_json_depth(text: str, max_depth: int, error: ErrorFactory) -> None:
    if text.count("[") + text.count("{") <= max_depth:
        return  # cannot nest deeper than it has openers (most lines of a journal)
    unescaped = text.replace("\\\\", "").replace('\\"', "")
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", unescaped))
    steps = array("b", brackets.encode("ascii").translate(_STEPS))
    if max(accumulate(steps), default=0) > max_depth:
        _too_deep(max_depth, error)


def _scan_toml_depth(text: str, max_depth: int, error: ErrorFactory) -> None:
    if text.count("[") + text.count("{") <= max_depth:
        return
    find_next = _TOML_NEXT.search
    depth = index = 0
    while (match := find_next(text, index)) is not None:
        char, at = match.group(), match.start()
        index = at + 1
        if char in _OPEN:
            depth += 1
            if depth > max_depth:
                _too_deep(max_depth, error)
        elif char in _CLOSE:
            depth = max(depth - 1, 0)
        elif char == "#":
            index = text.find("\n", at)
        elif char == '"':
            if text.startswith('"""', at):
                index = _string_end(text, at + 3, _MULTILINE_BASIC_END)
                index = index if index < 0 else _past_quotes(text, index, '"')
            else:
                index = _string_end(text, at + 1, _BASIC_STRING_END)
        elif text.startswith("'''", at):
            index = text.find("'''", at + 3)
            index = index if index < 0 else _past_quotes(text, index + 3, "'")
        else:
            index = _string_end(text, at + 1, _LITERAL_STRING_END)
        if index < 0:
            return


def _too_deep(max_depth: int, error: ErrorFactory) -> NoReturn:
    _fail(error, Message("nested deeper than {depth} levels", depth=max_depth))


def _check_value(value: Any, max_depth: int, error: ErrorFactory) -> None:
    """Walk ``value`` without recursion: depth, 64-bit integers, no lone surrogates."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > max_depth:
                _too_deep(max_depth, error)
            for key, child in item.items():
                _check_string(key, error)
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            if depth > max_depth:
                _too_deep(max_depth, error)
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            _check_string(item, error)
        elif isinstance(item, int) and not isinstance(item, bool) and not INT_MIN <= item <= INT_MAX:
            _fail(error, Message("a number is outside the 64-bit range"))


def _check_string(text: str, error: ErrorFactory) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        _fail(error, Message("a string is not valid Unicode (a lone surrogate)"))


def _json_int(text: str) -> int:
    if len(text) > _MAX_INT_CHARS:
        raise _Refused(Message("a number is outside the 64-bit range"))
    return int(text)


def _json_constant(name: str) -> Any:
    raise _Refused(Message("{constant} is not a JSON number", constant=name))


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise _Refused(Message("the key {key!r} appears twice", key=key))
            seen.add(key)
    return obj


class _Refused(Exception):
    """Raised from inside the JSON decoder's hooks; carries the reason."""

    def __init__(self, reason: Message) -> None:
        super().__init__(reason)
        self.reason = reason


def load_json(
    data: bytes | str,
    *,
    max_bytes: int,
    error: ErrorFactory,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Any:
    """Parse untrusted JSON within the limits; ``error(reason)`` for anything wrong."""
    text = _text(data, max_bytes, error)
    _scan_json_depth(text, max_depth, error)
    try:
        value = json.loads(text, parse_int=_json_int, parse_constant=_json_constant,
                           object_pairs_hook=_json_object)
    except _Refused as exc:
        _fail(error, exc.reason)
    except json.JSONDecodeError as exc:
        _fail(error, Message("not valid JSON (line {line}, column {column})",
                             line=exc.lineno, column=exc.colno))
    except RecursionError:
        _too_deep(max_depth, error)
    except (ValueError, TypeError, OverflowError):
        _fail(error, Message("not valid JSON"))
    # The scan bounded the depth and parse_int the integers; only a surrogate (escaped,
    # or raw in a str) is left to look for, and the text says whether there can be one.
    if _SURROGATE_ESCAPE.search(text) or not _encodes(text):
        _check_value(value, max_depth, error)
    return value


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_TOML_WHERE = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def _toml_syntax(exc: tomllib.TOMLDecodeError) -> Reason:
    message = str(exc)
    m = _TOML_WHERE.search(message)
    if m is None:
        reason = _as_reason(Message("TOML syntax error: {detail}", detail=message))
        reason.detail = message
        return reason
    detail = message[: m.start()]
    reason = _as_reason(Message("TOML syntax error: {detail} (line {line}, column {column})",
                                detail=detail, line=m.group(1), column=m.group(2)))
    reason.line, reason.column, reason.detail = int(m.group(1)), int(m.group(2)), detail
    return reason


def load_toml(
    data: bytes | str,
    *,
    max_bytes: int,
    error: ErrorFactory,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> dict[str, Any]:
    """Parse untrusted TOML within the limits; ``error(reason)`` for anything wrong."""
    text = _text(data, max_bytes, error)
    _scan_toml_depth(text, max_depth, error)
    try:
        value = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        _fail(error, _toml_syntax(exc))
    except RecursionError:
        _too_deep(max_depth, error)
    except (ValueError, TypeError, OverflowError):
        # tomllib lets int()'s own ValueError out (more than 4,300 digits)
        _fail(error, Message("a number is outside the 64-bit range"))
    _check_value(value, max_depth, error)
    return value
