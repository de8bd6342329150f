"""Agencies (Perangkat Daerah): registration, suspension, resumption, bulk from a policy.

Invariants:

* a code matches ``^[A-Z][A-Z0-9-]{0,63}$`` and is unique (checked, and enforced by
  the database's unique constraint against concurrent operators);
* a parent must exist already; the kinds are agency, leader, regency, city, central;
* every change and its audit event (``agency.add``, ``agency.suspend``,
  ``agency.resume``) commit in one transaction; a failed command changes nothing;
* the bulk form registers every entity of a policy file in one transaction: codes
  registered already are skipped (and reported), anything invalid aborts it all;
* a suspended agency keeps its certificates but gets no new ones (issuance checks
  ``status``) and the directory marks it, so it neither seals nor signs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandi.authority.events import record
from sandi.authority.lookup import CODE_RE, find_agency, validate_code
from sandi.authority.records import AgencyInfo, agency_info
from sandi.errors import AlreadyExistsError, PolicyError, SandiError, UsageError
from sandi.formats.bounded import load_toml
from sandi.i18n import N_, Message, _

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from sandi.registry import Registry
    from sandi.registry.models import AgencyRow

#: an agency's states, marked for translation: messages show them in the reader's language
STATUS_WORDS = (N_("active"), N_("suspended"))
KINDS = ("agency", "leader", "regency", "city", "central")
MAX_NAME = 300
MAX_REASON = 500
MAX_POLICY_BYTES = 1024 * 1024


class AgencyStateError(SandiError):
    """The agency is not in the state the operation needs (suspended, already active...)."""


def _validate_name(name: str) -> str:
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > MAX_NAME or any(ord(c) < 32 for c in name):
        raise UsageError(_("an agency name is 1..{max_name} printable characters").format(max_name=MAX_NAME))
    return name


def _validate_kind(kind: str) -> str:
    if kind not in KINDS:
        raise UsageError(_("unknown agency kind {kind!r}").format(
            kind=kind,
        ), hint=_("one of: {kinds}").format(
            kinds=', '.join(KINDS),
        ))
    return kind


def _parent_code(session: Session, row: AgencyRow) -> str | None:
    from sandi.registry.models import AgencyRow

    if row.parent_id is None:
        return None
    parent = session.get(AgencyRow, row.parent_id)
    return None if parent is None else parent.code


def _add(session: Session, code: str, name: str, kind: str, parent: str | None, now: datetime) -> AgencyRow:
    from sqlalchemy import select

    from sandi.registry.models import AgencyRow

    if session.execute(select(AgencyRow.id).where(AgencyRow.code == code)).first() is not None:
        raise AlreadyExistsError(_("agency {code} exists already").format(
            code=code,
        ), hint=_("see 'sandi agency show {code}'").format(
            code=code,
        ))
    parent_id = find_agency(session, parent).id if parent else None
    row = AgencyRow(
        code=code, name=name, kind=kind, parent_id=parent_id, status="active", created_at=now, updated_at=now
    )
    session.add(row)
    session.flush()
    record(session, "agency.add", code, {"name": name, "kind": kind, "parent": parent})
    return row


def add_agency(
    registry: Registry,
    code: str,
    name: str,
    *,
    kind: str = "agency",
    parent: str | None = None,
    now: datetime | None = None,
) -> AgencyInfo:
    """Register one agency."""
    code = validate_code(code)
    name = _validate_name(name)
    kind = _validate_kind(kind)
    if parent is not None:
        validate_code(parent)
        if parent == code:
            raise UsageError(_("an agency cannot be its own parent"))
    now = now or datetime.now(UTC)
    with registry.transaction() as session:
        row = _add(session, code, name, kind, parent, now)
        return agency_info(row, parent)


def get_agency(registry: Registry, code: str) -> AgencyInfo:
    with registry.reading() as session:
        row = find_agency(session, code)
        return agency_info(row, _parent_code(session, row))


def list_agencies(registry: Registry) -> list[AgencyInfo]:
    from sqlalchemy import select

    from sandi.registry.models import AgencyRow

    with registry.reading() as session:
        rows = session.scalars(select(AgencyRow).order_by(AgencyRow.code)).all()
        codes = {r.id: r.code for r in rows}
        return [agency_info(r, codes.get(r.parent_id) if r.parent_id else None) for r in rows]


def suspend_agency(registry: Registry, code: str, reason: str, *, now: datetime | None = None) -> AgencyInfo:
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON:
        raise UsageError(_("give a reason (1..{max_reason} characters) for the suspension").format(
            max_reason=MAX_REASON,
        ))
    return _set_status(registry, code, "suspended", "agency.suspend", {"reason": reason}, now)


def resume_agency(registry: Registry, code: str, *, now: datetime | None = None) -> AgencyInfo:
    return _set_status(registry, code, "active", "agency.resume", {}, now)


def _set_status(
    registry: Registry, code: str, status: str, action: str, details: dict[str, Any], now: datetime | None
) -> AgencyInfo:
    now = now or datetime.now(UTC)
    with registry.transaction() as session:
        row = find_agency(session, code, for_update=True)
        if row.status == status:
            raise AgencyStateError(_("agency {code} is {status} already").format(code=code, status=_(status)))
        row.status = status
        row.updated_at = now
        record(session, action, code, details)
        return agency_info(row, _parent_code(session, row))


# -- bulk registration from a policy file ------------------------------------------------


@dataclass(frozen=True)
class EntitySpec:
    code: str
    name: str
    kind: str
    parent: str | None = None


@dataclass
class BulkResult:
    added: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def entities_from_policy(path: Path) -> list[EntitySpec]:
    """The entities a PHKS policy file names (only what registration needs is read).

    Accepted shapes: ``[[entities]]`` tables with ``code``, ``name``, ``kind``
    (optional ``parent``), or ``[entities.CODE]`` tables with ``name`` and ``kind``.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_POLICY_BYTES + 1)
    except OSError as exc:
        raise UsageError(_("cannot read {path}: {reason}").format(path=path, reason=exc.strerror)) from None
    if len(raw) > MAX_POLICY_BYTES:
        raise PolicyError(_("{path} is larger than {max_policy_bytes} bytes").format(
            path=path,
            max_policy_bytes=MAX_POLICY_BYTES,
        ))

    def refuse(reason: str) -> PolicyError:
        return PolicyError(Message("{path}: not a valid agency list: {reason}", path=path, reason=reason))

    data = load_toml(raw, max_bytes=MAX_POLICY_BYTES, error=refuse)
    entities = data.get("entities")
    items: list[tuple[str | None, Any]]
    if isinstance(entities, list):
        items = [(None, e) for e in entities]
    elif isinstance(entities, dict):
        items = list(entities.items())
    else:
        raise PolicyError(
            _("{path}: no entities in the policy").format(
                path=path,
            ), hint=_("a policy lists its entities under 'entities'")
        )
    specs: list[EntitySpec] = []
    seen: set[str] = set()
    for key, entry in items:
        if not isinstance(entry, dict):
            raise PolicyError(_("{path}: entity {key} is not a table").format(
                path=path,
                key=key or len(specs) + 1,
            ))
        code = entry.get("code", key)
        where = f"{path}: entity {code!r}"
        if not isinstance(code, str) or not CODE_RE.fullmatch(code):
            raise PolicyError(_("{where}: not a valid agency code").format(where=where))
        if key is not None and entry.get("code", key) != key:
            raise PolicyError(_("{where}: code differs from its table name {key!r}").format(
                where=where,
                key=key,
            ))
        if code in seen:
            raise PolicyError(_("{where}: listed twice").format(where=where))
        seen.add(code)
        name = entry.get("name")
        kind = entry.get("kind", "agency")
        parent = entry.get("parent")
        if not isinstance(name, str) or not name.strip():
            raise PolicyError(_("{where}: 'name' is missing").format(where=where))
        if kind not in KINDS:
            raise PolicyError(_("{where}: unknown kind {kind!r} (one of {kinds})").format(
                where=where,
                kind=kind,
                kinds=', '.join(KINDS),
            ))
        if parent is not None and (not isinstance(parent, str) or not CODE_RE.fullmatch(parent)):
            raise PolicyError(_("{where}: 'parent' is not an agency code").format(where=where))
        specs.append(EntitySpec(code, name.strip(), kind, parent))
    return specs


def add_from_policy(registry: Registry, path: Path, *, now: datetime | None = None) -> BulkResult:
    """Register every entity ``path`` names, in one transaction; skip known codes."""
    from sqlalchemy import select

    from sandi.registry.models import AgencyRow

    specs = entities_from_policy(path)
    now = now or datetime.now(UTC)
    result = BulkResult()
    with registry.transaction() as session:
        known = set(session.scalars(select(AgencyRow.code)).all())
        pending = [s for s in specs if s.code not in known]
        result.skipped = [s.code for s in specs if s.code in known]
        # Parents first, whatever order the file uses.
        placed: set[str] = set(known)
        while pending:
            ready = [s for s in pending if s.parent is None or s.parent in placed]
            if not ready:
                missing = sorted({s.parent for s in pending if s.parent})
                raise PolicyError(
                    _("{path}: unknown or circular parent(s): {value}").format(
                        path=path,
                        value=', '.join(str(m) for m in missing),
                    )
                )
            for spec in ready:
                _validate_name(spec.name)
                _add(session, spec.code, spec.name, spec.kind, spec.parent, now)
                placed.add(spec.code)
                result.added.append(spec.code)
            pending = [s for s in pending if s.code not in placed]
    return result
