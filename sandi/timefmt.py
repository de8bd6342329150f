"""Indonesian time: every time a person reads or types goes through here.

The province lives in WIB (``Asia/Jakarta``); a home may name another zone (WITA,
``Asia/Makassar``; WIT, ``Asia/Jayapura``; or any IANA name) in its ``sandi.toml``.

Invariants:

* stored and signed times stay UTC (the formats, the audit chain and the registry
  never see a local time); this module only *shows* and *reads* times;
* a time is shown to the second in the active zone, with the zone named: in
  Indonesian ``2 Desember 2026 12:30:19 WIB``, in English and in ``--json`` ISO 8601
  with the offset, ``2026-12-02T12:30:19+07:00`` (:func:`iso_time` is the same in
  every language, so machine output does not depend on the language);
* a time typed without an offset means the active zone;
* the active zone is per context, like the language (:mod:`sandi.i18n`): the command
  line sets the process default from the home, a server may scope one per request.
  The library never reads the environment for it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, date, datetime, time, tzinfo
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sandi.errors import UsageError
from sandi.i18n import _, current_language

DEFAULT_ZONE = "Asia/Jakarta"
#: Indonesia's three zones by the names people use for them
ZONE_NAMES = {"WIB": "Asia/Jakarta", "WITA": "Asia/Makassar", "WIT": "Asia/Jayapura"}

MONTHS_ID = ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus",
             "September", "Oktober", "November", "Desember")
_MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December")
# Month words accepted in typed dates, Indonesian and English, full and short.
_MONTH_WORDS: dict[str, int] = {}
for _number, (_id_name, _en_name) in enumerate(zip(MONTHS_ID, _MONTHS_EN, strict=True), start=1):
    for _word in (_id_name, _en_name, _id_name[:3], _en_name[:3]):
        _MONTH_WORDS[_word.casefold()] = _number
_MONTH_WORDS.update({"agt": 8, "sept": 9})

_default_zone = DEFAULT_ZONE
_active_zone: ContextVar[str | None] = ContextVar("sandi_zone", default=None)


def normalise_zone(value: str) -> str | None:
    """``WITA`` → ``Asia/Makassar``; an IANA name as it is; None for an unknown zone."""
    text = value.strip()
    if text.upper() in ZONE_NAMES:
        return ZONE_NAMES[text.upper()]
    if not text or text.startswith(("/", ".")) or ".." in text:
        return None
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return text


def check_zone(value: str) -> str:
    """The zone ``value`` names, or a :class:`UsageError` saying what may be given."""
    zone = normalise_zone(value)
    if zone is None:
        raise UsageError(
            _("unknown time zone {zone!r}").format(zone=value),
            hint=_("use WIB, WITA or WIT, or an IANA name such as Asia/Jakarta"),
        )
    return zone


def set_zone(value: str) -> None:
    """Make ``value`` the process default zone (the command line calls this once)."""
    global _default_zone
    _default_zone = check_zone(value)


def current_zone_name() -> str:
    return _active_zone.get() or _default_zone


def current_zone() -> tzinfo:
    return _zone(current_zone_name())


@contextlib.contextmanager
def use_zone(value: str) -> Iterator[None]:
    """Show and read times in ``value`` inside the block (this thread or task only)."""
    token = _active_zone.set(check_zone(value))
    try:
        yield
    finally:
        _active_zone.reset(token)


@cache
def _zone(name: str) -> tzinfo:
    return ZoneInfo(name)


def as_utc(value: datetime) -> datetime:
    """A time read back without zone (some drivers drop it) taken as UTC; an aware one as is."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def local(value: datetime) -> datetime:
    """``value`` (aware) in the active zone, to the second."""
    if value.tzinfo is None:
        raise ValueError(_("a naive datetime cannot be shown: its zone is unknown"))
    return value.astimezone(current_zone()).replace(microsecond=0)


def zone_label(value: datetime) -> str:
    """The zone's name at ``value`` (``WIB``), or its offset if it has no name."""
    name = local(value).tzname() or ""
    if not name or name[0] in "+-":
        return iso_time(value)[19:]
    return name


def iso_time(value: datetime) -> str:
    """``2026-12-02T12:30:19+07:00``: ISO 8601 in the active zone (the same in every language)."""
    return local(value).isoformat()


def show_time(value: datetime) -> str:
    """A time for a person: ``2 Desember 2026 12:30:19 WIB`` in Indonesian, ISO 8601 otherwise."""
    if current_language() != "id":
        return iso_time(value)
    at = local(value)
    return f"{show_date(at.date())} {at:%H:%M:%S} {zone_label(value)}"


def show_date(value: date) -> str:
    """A date for a person: ``2 Desember 2026`` in Indonesian, ``2026-12-02`` otherwise."""
    if current_language() != "id":
        return value.isoformat()
    return f"{value.day} {MONTHS_ID[value.month - 1]} {value.year}"


def show_day(value: datetime) -> str:
    """The date of ``value`` in the active zone, for a person (a certificate's last day)."""
    return show_date(local(value).date())


def now() -> datetime:
    return datetime.now(UTC)


def today(at: datetime | None = None) -> date:
    """The date in the active zone at ``at`` (default: now): a letter's default date."""
    return (at or now()).astimezone(current_zone()).date()


_DMY_WORDS = re.compile(r"^(\d{1,2})\s+([A-Za-z]+)\.?\s+(\d{4})$")
_DMY_NUMBERS = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$")


def parse_date(text: str) -> date:
    """A typed date: ``2026-12-02``, ``2 Desember 2026``, ``2 Dec 2026`` or ``02-12-2026``
    (day first, as Indonesians write it). A :class:`UsageError` otherwise."""
    value = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return date.fromisoformat(value)
        if m := _DMY_WORDS.match(value):
            month = _MONTH_WORDS.get(m.group(2).casefold())
            if month is not None:
                return date(int(m.group(3)), month, int(m.group(1)))
        elif m := _DMY_NUMBERS.match(value):
            return date(int(m.group(3)), int(m.group(2)), int(m.group(1)))
    except ValueError:
        raise UsageError(
            _("{value!r} is not a real date").format(value=text),
            hint=_("e.g. 2026-12-02 or 2 Desember 2026"),
        ) from None
    raise UsageError(
        _("{value!r} is not a date sandi can read").format(value=text),
        hint=_("e.g. 2026-12-02 or 2 Desember 2026"),
    )


_ZONE_SUFFIX = re.compile(r"\s+(WIB|WITA|WIT)$", re.IGNORECASE)


def parse_time(text: str) -> datetime:
    """A typed time (ISO 8601; a date alone is its midnight). Without an offset it means
    the active zone; a trailing ``WIB``/``WITA``/``WIT`` names the zone; ``Z`` is UTC."""
    value = text.strip()
    zone = current_zone()
    if m := _ZONE_SUFFIX.search(value):
        zone = _zone(ZONE_NAMES[m.group(1).upper()])
        value = value[: m.start()]
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            parsed = datetime.combine(date.fromisoformat(value), time())
        else:
            parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            _("{value!r} is not an ISO 8601 time").format(value=text),
            hint=_("e.g. 2026-06-01T09:00:00+07:00, or 2026-06-01 09:00 (no offset means {zone})")
            .format(zone=current_zone_name()),
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    elif m:
        raise UsageError(
            _("{value!r} names both an offset and a zone").format(value=text),
            hint=_("give one of them"),
        )
    return parsed


def known_zones() -> list[str]:
    """Zone names for completion: WIB, WITA, WIT, then the IANA names of Asia."""
    return [*ZONE_NAMES, *sorted(z for z in available_timezones() if z.startswith("Asia/"))]


__all__ = [
    "DEFAULT_ZONE",
    "MONTHS_ID",
    "ZONE_NAMES",
    "check_zone",
    "current_zone",
    "current_zone_name",
    "iso_time",
    "known_zones",
    "local",
    "normalise_zone",
    "now",
    "parse_date",
    "parse_time",
    "set_zone",
    "show_date",
    "show_day",
    "show_time",
    "today",
    "use_zone",
    "zone_label",
]
