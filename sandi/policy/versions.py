"""Which policy version is in force at a time (pure: no database).

Invariants:

* a version is *in force* at ``t`` when ``effective_from <= t < expires_at`` (no
  expiry: open-ended);
* the *active* version at ``t`` is the newest in force, ordered by
  (effective_from, version) — the same rule the signed directory uses, so the
  authority and the workstations agree;
* a document is judged against the version it names only if that version was the
  active one (for its policy id) at the sealing time; naming an unknown, a superseded
  or a not-yet/no-longer effective version is refused (VerificationError: the claim
  does not verify).

The registry store (:mod:`sandi.policy.store`) and the directory both feed records
into these functions; anything with the attributes of :class:`VersionLike` works.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from sandi.errors import VerificationError
from sandi.i18n import _
from sandi.policy.engine import CompiledPolicy, PolicyIndex
from sandi.policy.signature import verify_compiled_signature, verify_policy_signature


class VersionLike(Protocol):
    @property
    def policy_id(self) -> str: ...

    @property
    def version(self) -> int: ...

    @property
    def effective_from(self) -> datetime: ...

    @property
    def expires_at(self) -> datetime | None: ...


class SignedVersionLike(VersionLike, Protocol):
    @property
    def source(self) -> str: ...

    @property
    def signature(self) -> bytes: ...


class CompiledVersionLike(SignedVersionLike, Protocol):
    """A signed version that may also carry its compiled form and the root's signature."""

    @property
    def compiled(self) -> str | None: ...

    @property
    def compiled_signature(self) -> bytes | None: ...


V = TypeVar("V", bound=VersionLike)


@dataclass(frozen=True)
class PolicyVersionRecord:
    """One stored policy version (a registry row, detached from its session)."""

    policy_id: str
    version: int
    source: str
    signature: bytes
    sha256: str
    effective_from: datetime
    expires_at: datetime | None
    applied_at: datetime | None = None
    applied_by: str = ""
    #: the compiled form made at apply and the root's signature over it (None: older)
    compiled: str | None = None
    compiled_signature: bytes | None = None

    def __repr__(self) -> str:
        return f"PolicyVersionRecord({self.policy_id!r} v{self.version}, sha256={self.sha256[:16]}...)"


def in_force(record: VersionLike, at: datetime) -> bool:
    return record.effective_from <= at and (record.expires_at is None or at < record.expires_at)


def select_active(records: Iterable[V], at: datetime, policy_id: str | None = None) -> V | None:
    """The newest version in force at ``at`` (of ``policy_id`` if given), or None."""
    candidates = [r for r in records
                  if (policy_id is None or r.policy_id == policy_id) and in_force(r, at)]
    if not candidates:
        return None
    return max(candidates, key=lambda r: (r.effective_from, r.version))


def check_in_force(records: Iterable[V], at: datetime, policy_id: str, version: int) -> V:
    """The named version if it was the active one at ``at``; else VerificationError."""
    records = list(records)
    named = [r for r in records if r.policy_id == policy_id and r.version == version]
    if not named:
        raise VerificationError(_("policy {policy_id} v{version} is unknown here").format(
            policy_id=policy_id,
            version=version,
        ),
                                hint=_("import a newer directory from the authority"))
    active = select_active(records, at, policy_id)
    if active is None or active.version != version:
        now = (_("v{version} was").format(version=active.version) if active is not None
               else _("no version was"))
        raise VerificationError(
            _("policy {policy_id} v{version} was not the version in force at {at} ({now})").format(
                policy_id=policy_id,
                version=version,
                at=at.isoformat(),
                now=now,
            ), hint=_("the document was checked against an outdated or not-yet-valid policy"))
    return named[0]


def compile_verified(record: SignedVersionLike, root_public_key_bytes: bytes) -> CompiledPolicy:
    """Verify the root's signature over a stored version, then parse and compile it.

    The labels the record carries (id, version, dates) must be the ones its signed
    source states; a mismatch is a forgery and fails like a bad signature.
    """
    from sandi.policy.loader import parse_policy

    verify_policy_signature(record.source, record.signature, root_public_key_bytes)
    policy = parse_policy(record.source, f"{record.policy_id} v{record.version}")
    if (policy.id, policy.version, policy.effective, policy.expires) != (
            record.policy_id, record.version, record.effective_from, record.expires_at):
        raise VerificationError(_("policy record does not match its signed source"))
    return CompiledPolicy(policy)


def load_verified(record: CompiledVersionLike, root_public_key_bytes: bytes) -> PolicyIndex:
    """The policy a workstation decides from: the compiled form when the record has one
    (the root's signature over it verified; no TOML parsed), else the source compiled.

    Either way the labels the record carries (id, version, dates) must be the ones the
    signed text states; a mismatch is a forgery and fails like a bad signature.
    """
    if record.compiled is None or record.compiled_signature is None:
        return compile_verified(record, root_public_key_bytes)
    from sandi.policy.compiled import load_compiled

    verify_compiled_signature(record.compiled, record.compiled_signature, root_public_key_bytes)
    policy = load_compiled(record.compiled)
    if (policy.id, policy.version, policy._start, policy._end) != (
            record.policy_id, record.version, record.effective_from, record.expires_at):
        raise VerificationError(_("policy record does not match its signed source"))
    return policy
