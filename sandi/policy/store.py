"""Policy versions in the registry: apply (validate, sign, store, audit), look up.

Invariants:

* ``apply_policy`` stores the policy's source byte for byte, with the root's
  signature over it (see :mod:`sandi.policy.signature`) and its SHA-256; a stored
  version is never edited or deleted;
* versions of one policy id only grow: applying a version number that is not greater
  than the newest stored one is refused (so an old decree cannot be re-applied as if
  new); the (policy_id, version) unique constraint catches the concurrent race;
* the version row and its ``policy.apply`` audit entry are written in the caller's
  transaction, so both land or neither does;
* the signature is checked against the signer's own public key before anything is
  stored (a broken signer cannot store an unverifiable version);
* the version is compiled once, here: its canonical compiled form
  (:mod:`sandi.policy.compiled`) and the root's signature over it are stored beside the
  source and published with it.

This module imports SQLAlchemy (through the registry); the decision engine does not.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sandi.audit.events import AuditEvent
from sandi.errors import NotFoundError, PolicyError
from sandi.i18n import _
from sandi.policy.compiled import dump_compiled
from sandi.policy.engine import CompiledPolicy
from sandi.policy.loader import decode_source, parse_policy
from sandi.policy.signature import (
    Signer,
    sign_compiled,
    sign_policy,
    verify_compiled_signature,
    verify_policy_signature,
)
from sandi.policy.versions import PolicyVersionRecord, check_in_force, select_active
from sandi.registry.models import PolicyVersionRow


class PolicyVersionConflict(PolicyError):
    """The version to apply is not newer than the newest stored one."""


def _record(row: PolicyVersionRow) -> PolicyVersionRecord:
    return PolicyVersionRecord(
        policy_id=row.policy_id, version=row.version, source=row.source,
        signature=bytes(row.signature), sha256=row.sha256, effective_from=row.effective_from,
        expires_at=row.expires_at, applied_at=row.applied_at, applied_by=row.applied_by,
        compiled=row.compiled,
        compiled_signature=None if row.compiled_signature is None else bytes(row.compiled_signature),
    )


def apply_policy(session: Session, source_text: str | bytes, signer: Signer, actor: str, *,
                 source_name: str = "<policy>", now: datetime | None = None) -> PolicyVersionRecord:
    """Validate, sign and store a new policy version; record ``policy.apply``."""
    from sandi.audit.registry_sink import append_in_session

    text = decode_source(source_text, source_name)
    policy = parse_policy(text, source_name)  # raises PolicyFileError
    newest = session.scalar(
        select(func.max(PolicyVersionRow.version)).where(PolicyVersionRow.policy_id == policy.id))
    if newest is not None and policy.version <= newest:
        raise PolicyVersionConflict(
            _("policy {id} version {version} is not newer than the stored version {newest}").format(
                id=policy.id,
                version=policy.version,
                newest=newest,
            ), hint=_("raise 'version' in [policy] to {value} or more").format(value=newest + 1))
    signature = sign_policy(text, signer)
    verify_policy_signature(text, signature, signer.public_key_bytes())
    when = now or datetime.now(UTC)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    # compiled once, here: workstations decide from this text without parsing TOML
    compiled = dump_compiled(CompiledPolicy(policy), digest)
    compiled_signature = sign_compiled(compiled, signer)
    verify_compiled_signature(compiled, compiled_signature, signer.public_key_bytes())
    row = PolicyVersionRow(
        policy_id=policy.id, version=policy.version, sha256=digest, source=text,
        signature=signature, effective_from=policy.effective, expires_at=policy.expires,
        applied_at=when, applied_by=actor, compiled=compiled, compiled_signature=compiled_signature,
    )
    session.add(row)
    session.flush()
    append_in_session(session, AuditEvent(
        actor=actor, action="policy.apply", subject=f"{policy.id} v{policy.version}",
        details={
            "policy_id": policy.id, "version": policy.version, "sha256": digest,
            "compiled_sha256": hashlib.sha256(compiled.encode("utf-8")).hexdigest(),
            "effective": policy.effective.isoformat(),
            "expires": policy.expires.isoformat() if policy.expires else None,
            "relations": len(policy.relations), "forbids": len(policy.forbids),
        }))
    return _record(row)


def list_versions(session: Session, policy_id: str | None = None) -> list[PolicyVersionRecord]:
    stmt = select(PolicyVersionRow).order_by(PolicyVersionRow.policy_id, PolicyVersionRow.version)
    if policy_id is not None:
        stmt = stmt.where(PolicyVersionRow.policy_id == policy_id)
    return [_record(r) for r in session.scalars(stmt)]


def get_version(session: Session, policy_id: str, version: int) -> PolicyVersionRecord:
    row = session.scalar(select(PolicyVersionRow).where(
        PolicyVersionRow.policy_id == policy_id, PolicyVersionRow.version == version))
    if row is None:
        raise NotFoundError(_("policy {policy_id} version {version} is not in the registry").format(
            policy_id=policy_id,
            version=version,
        ))
    return _record(row)


def active_policy(session: Session, at: datetime | None = None,
                  policy_id: str | None = None) -> PolicyVersionRecord | None:
    """The newest version in force at ``at`` (default: now), or None."""
    return select_active(list_versions(session, policy_id), at or datetime.now(UTC), policy_id)


def policy_in_force_at(session: Session, at: datetime, policy_id: str,
                       version: int) -> PolicyVersionRecord:
    """The named version if it was the one in force at ``at``; else VerificationError."""
    return check_in_force(list_versions(session, policy_id), at, policy_id, version)


def compile_record(record: PolicyVersionRecord) -> CompiledPolicy:
    """Compile a stored version (trusted: it came from this authority's registry)."""
    return CompiledPolicy(parse_policy(record.source, f"{record.policy_id} v{record.version}"))
