"""Finding an agency by its code: the one lookup every authority module shares (the
syntax of codes lives in :mod:`sandi.authority.identifiers`, re-exported here).

Kept apart from :mod:`sandi.authority.agencies` (which registers and changes agencies) so
that the read-side modules (:mod:`sandi.authority.records`) depend on it without an
import circle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sandi.authority.identifiers import CODE_RE, validate_code
from sandi.errors import NotFoundError
from sandi.i18n import _

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from sandi.registry.models import AgencyRow

__all__ = ["CODE_RE", "find_agency", "validate_code"]


def find_agency(session: Session, code: str, *, for_update: bool = False) -> AgencyRow:
    """The agency row for ``code`` (NotFoundError if unknown); locked if ``for_update``."""
    from sqlalchemy import select

    from sandi.registry.models import AgencyRow

    stmt = select(AgencyRow).where(AgencyRow.code == validate_code(code))
    if for_update:
        stmt = stmt.with_for_update()
    row = session.execute(stmt).scalar_one_or_none()
    if row is None:
        raise NotFoundError(
            _("unknown agency {code}").format(
                code=code,
            ), hint=_("see 'sandi agency list', or add it with 'sandi agency add'")
        )
    return row


__all__ = ["CODE_RE", "find_agency", "validate_code"]
