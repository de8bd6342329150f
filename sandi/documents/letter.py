"""The official letter fields (naskah dinas) a sealed document or signature carries.

Under the letterhead an Indonesian official letter states its *nomor*, *sifat*
(urgency), *lampiran* (attachments) and *hal* (subject), the place and *tanggal*
(date), the addressee (*Kepada Yth.*), and at its end the signing official
(*penandatangan*: jabatan, nama, NIP) and the copies (*tembusan*). See
docs/format.md, section 3, and ../shared/domain/BANTEN.md.

Invariants:

* input (:func:`prepare_letter`) is a :class:`UsageError` when wrong: ``sifat`` must be
  one of the configured urgencies (default *Sangat Segera*, *Segera*, *Biasa*) and is
  stored in its configured spelling; a classification name there is refused with a
  pointer to ``--class``; ``tanggal`` is a real date, stored ISO (``2026-12-02``),
  today in the active zone when not given; a NIP is checked as far as its digits can
  be (:func:`nip_problem`);
* reading signed metadata (:func:`parse_letter`) is strict for the newer fields
  (``kepada``, ``tembusan``, ``penandatangan``: exact types and keys, a valid NIP) and
  accepts the free-text fields of older documents as they were signed;
* the JSON form holds only the fields given, so a letter without the newer fields
  signs exactly as before.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sandi.errors import UsageError, VerificationError
from sandi.formats.nip import nip_problem, normalise_nip
from sandi.i18n import _

#: the text fields, in the order a letter heading states them
TEXT_FIELDS = ("nomor", "sifat", "lampiran", "hal", "tanggal", "kepada")
LETTER_FIELDS = (*TEXT_FIELDS, "tembusan", "penandatangan")
SIGNATORY_FIELDS = ("nama", "jabatan", "nip")
DEFAULT_URGENCIES: tuple[str, ...] = ("Sangat Segera", "Segera", "Biasa")
MAX_LETTER_FIELD = 500
MAX_COPIES = 20
_SEPARATORS = re.compile(r"[\s_.\-]+")


def _key(text: str) -> str:
    return _SEPARATORS.sub("", text).casefold()


# -- input --------------------------------------------------------------------------------


def prepare_letter(
    letter: Mapping[str, object] | None,
    *,
    today: date,
    urgencies: Sequence[str] | None = None,
    classification_names: Sequence[str] = (),
) -> dict[str, Any]:
    """The letter to sign, from what a user gave (a :class:`UsageError` when wrong).

    ``today`` is the default ``tanggal`` (the date in the province's zone);
    ``classification_names`` are the codes and names of the classification levels,
    which ``sifat`` must not be.
    """
    given = dict(letter or {})
    unknown = sorted(set(given) - set(LETTER_FIELDS))
    if unknown:
        raise UsageError(_("unknown letter field {field!r}").format(field=unknown[0]),
                         hint=_("use {fields}").format(fields=", ".join(LETTER_FIELDS)))
    out: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        value = given.get(name)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise UsageError(_("letter field {field} must be text").format(field=name))
        out[name] = _text(name, value)
    if "sifat" in out:
        out["sifat"] = _urgency(out["sifat"], urgencies or DEFAULT_URGENCIES, classification_names)
    if "tanggal" in out:
        from sandi.timefmt import parse_date

        out["tanggal"] = parse_date(out["tanggal"]).isoformat()
    else:
        out["tanggal"] = today.isoformat()
    copies = given.get("tembusan") or ()
    if isinstance(copies, str) or not isinstance(copies, Sequence):
        raise UsageError(_("tembusan is a list of recipients of a copy"))
    copies = [_text("tembusan", str(c)) for c in copies if str(c).strip()]
    if len(copies) > MAX_COPIES:
        raise UsageError(_("at most {count} tembusan").format(count=MAX_COPIES))
    if copies:
        out["tembusan"] = copies
    signatory = given.get("penandatangan")
    if signatory:
        out["penandatangan"] = _signatory_input(signatory, today)
    return out


def _text(name: str, value: str) -> str:
    value = value.strip()
    if len(value) > MAX_LETTER_FIELD or any(ord(c) < 0x20 or c == "\x7f" for c in value):
        raise UsageError(
            _("letter field {field} is too long or has control characters").format(field=name)
        )
    return value


def _urgency(value: str, urgencies: Sequence[str], classification_names: Sequence[str]) -> str:
    for urgency in urgencies:
        if _key(urgency) == _key(value):
            return urgency
    choices = ", ".join(urgencies)
    if any(_key(name) == _key(value) for name in classification_names):
        raise UsageError(
            _("{value!r} is a classification, not an urgency (sifat)").format(value=value),
            hint=_("give the classification with --class; sifat is one of: {choices}").format(
                choices=choices),
        )
    raise UsageError(_("unknown urgency (sifat) {value!r}").format(value=value),
                     hint=_("sifat is one of: {choices}").format(choices=choices))


def _signatory_input(value: object, today: date) -> dict[str, str]:
    if not isinstance(value, Mapping) or not set(value) <= set(SIGNATORY_FIELDS):
        raise UsageError(_("penandatangan has nama, jabatan and nip"))
    out: dict[str, str] = {}
    for name in SIGNATORY_FIELDS:
        field = value.get(name)
        if field is None or field == "":
            continue
        if not isinstance(field, str):
            raise UsageError(_("letter field {field} must be text").format(field=name))
        out[name] = _text(name, field)
    if "nama" not in out or "jabatan" not in out:
        raise UsageError(_("the signing official needs a name and a position"),
                         hint=_("give both --penandatangan and --jabatan (and --nip for a civil servant)"))
    if "nip" in out:
        nip = normalise_nip(out["nip"])
        problem = nip_problem(nip, not_after=today)
        if problem is not None:
            raise UsageError(_("invalid NIP {nip}: {problem}").format(nip=out["nip"], problem=problem),
                             hint=_("a NIP reads like 19800101 200501 1 001"))
        out["nip"] = nip
    return out


# -- signed metadata ------------------------------------------------------------------------


def parse_letter(obj: object, *, signed_on: date | None = None) -> dict[str, Any]:
    """The letter of signed metadata; a :class:`VerificationError` when malformed."""
    if not isinstance(obj, dict) or not set(obj) <= set(LETTER_FIELDS):
        raise _malformed()
    out: dict[str, Any] = {}
    for name, value in obj.items():
        if name in TEXT_FIELDS:
            if not isinstance(value, str):
                raise _malformed()
            if name == "kepada" and not _clean(value):
                raise _malformed()
            out[name] = value
    copies = obj.get("tembusan")
    if copies is not None:
        if (not isinstance(copies, list) or not copies or len(copies) > MAX_COPIES
                or not all(isinstance(c, str) and _clean(c) for c in copies)):
            raise _malformed()
        out["tembusan"] = list(copies)
    signatory = obj.get("penandatangan")
    if signatory is not None:
        if (not isinstance(signatory, dict) or not {"nama", "jabatan"} <= set(signatory)
                or not set(signatory) <= set(SIGNATORY_FIELDS)
                or not all(isinstance(v, str) and _clean(v) for v in signatory.values())):
            raise _malformed()
        nip = signatory.get("nip")
        if nip is not None and nip_problem(nip, not_after=signed_on) is not None:
            raise _malformed()
        out["penandatangan"] = dict(signatory)
    return out


def _clean(value: str) -> bool:
    """Non-empty, trimmed, short, no control characters: what :func:`prepare_letter` signs."""
    return (bool(value) and value == value.strip() and len(value) <= MAX_LETTER_FIELD
            and not any(ord(c) < 0x20 or c == "\x7f" for c in value))


def _malformed() -> VerificationError:
    return VerificationError(_("malformed signed metadata (letter)"))


def letter_date(letter: Mapping[str, Any]) -> date | None:
    """The letter's date, if it is one (older documents may carry free text)."""
    value = letter.get("tanggal")
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) else None
    except ValueError:
        return None


__all__ = [
    "DEFAULT_URGENCIES",
    "LETTER_FIELDS",
    "SIGNATORY_FIELDS",
    "letter_date",
    "nip_problem",
    "normalise_nip",
    "parse_letter",
    "prepare_letter",
]
