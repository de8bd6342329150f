"""The syntax of the identifiers the authority assigns: agency codes and officials' NIPs.

Pure checks (no registry, no SQLAlchemy), so that a workstation's document commands can
validate what a user typed with the same rule the authority applies.
"""

from __future__ import annotations

import re

from sandi.errors import UsageError
from sandi.i18n import _

CODE_RE = re.compile(r"^[A-Z][A-Z0-9-]{0,63}$")
#: a NIP (Nomor Induk Pegawai): 18 digits
NIP_RE = re.compile(r"^[0-9]{18}$")


def validate_code(code: str) -> str:
    if not isinstance(code, str) or not CODE_RE.fullmatch(code):
        raise UsageError(
            _("not a valid agency code: {code!r}").format(code=code),
            hint=_("codes are 1-64 characters: an upper-case letter, then upper-case letters, digits or '-'"),
        )
    return code


def validate_nip(nip: str) -> str:
    """A NIP: 18 digits (spaces and dots as people write them are dropped) that say what a
    NIP says (birth date, month of appointment, gender, serial: the letter's own rule,
    :func:`sandi.formats.nip.nip_problem`)."""
    from datetime import UTC, datetime

    from sandi.formats.nip import nip_problem, normalise_nip

    compact = normalise_nip(nip) if isinstance(nip, str) else ""
    problem = _("a NIP has 18 digits") if not NIP_RE.fullmatch(compact) else nip_problem(
        compact, not_after=datetime.now(UTC).date())
    if problem is not None:
        raise UsageError(
            _("not a valid NIP: {nip!r} ({problem})").format(nip=nip, problem=problem),
            hint=_("a NIP (Nomor Induk Pegawai) is 18 digits, e.g. 196801011990031001"),
        )
    return compact
