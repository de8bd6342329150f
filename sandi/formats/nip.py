"""The NIP (Nomor Induk Pegawai), the 18-digit civil servant number: what its digits must say.

Shared by the letter fields (the *penandatangan*'s NIP, :mod:`sandi.documents.letter`) and
the registry of officials (:mod:`sandi.authority.officials`), so both refuse the same numbers.
"""

from __future__ import annotations

import re
from datetime import date

from sandi.i18n import _

_NIP_SPACING = re.compile(r"[\s.]+")
#: NI PPPK numbers carry 21 where a civil servant's NIP has the month of appointment
PPPK_MARK = 21


def nip_problem(nip: str, *, not_after: date | None = None) -> str | None:
    """What is wrong with an 18-digit NIP, or None.

    Its digits are the birth date (YYYYMMDD), the month of appointment (TMT CPNS,
    YYYYMM; a PPPK number has ``21`` for the month), the gender (1 man, 2 woman) and a
    serial (001-999). Checked: 18 digits, a real birth date, a real appointment month
    at least 18 years after the birth and not after ``not_after``, the gender digit and
    a non-zero serial. That the number was issued to this person cannot be checked.
    """
    if not re.fullmatch(r"[0-9]{18}", nip):
        return _("a NIP has 18 digits")
    try:
        born = date(int(nip[0:4]), int(nip[4:6]), int(nip[6:8]))
    except ValueError:
        return _("the first 8 digits of a NIP are the birth date (YYYYMMDD), and {digits} is no date"
                 ).format(digits=nip[0:8])
    if born.year < 1900:
        return _("the birth year {year} is not plausible").format(year=born.year)
    year, month = int(nip[8:12]), int(nip[12:14])
    if not (1 <= month <= 12 or month == PPPK_MARK):
        return _("digits 9-14 of a NIP are the month of appointment (YYYYMM), and {digits} is no month"
                 ).format(digits=nip[8:14])
    # A PPPK number does not say the month: the most lenient month counts for each check.
    earliest, latest = ((year, 1), (year, 12)) if month == PPPK_MARK else ((year, month), (year, month))
    # The youngest appointment age is 18; the day of birth within its month is not compared.
    if (latest[0] * 12 + latest[1]) - (born.year * 12 + born.month) < 18 * 12:
        return _("the appointment {appointed} is less than 18 years after the birth date {born}"
                 ).format(appointed=nip[8:14], born=nip[0:8])
    if not_after is not None and earliest > (not_after.year, not_after.month):
        return _("the appointment {appointed} lies in the future").format(appointed=nip[8:14])
    if nip[14] not in "12":
        return _("digit 15 of a NIP is the gender (1 or 2), not {digit}").format(digit=nip[14])
    if nip[15:18] == "000":
        return _("the last 3 digits of a NIP are a serial from 001")
    return None


def normalise_nip(text: str) -> str:
    """``19800101 200501 1 001`` → ``198001012005011001`` (spaces and dots dropped)."""
    return _NIP_SPACING.sub("", text.strip())


__all__ = ["PPPK_MARK", "nip_problem", "normalise_nip"]
