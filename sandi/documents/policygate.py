"""The policy check that ``seal``, ``encrypt`` and ``open_sealed`` require.

:class:`DirectoryPolicy` enforces the policy versions the authority signed and
published in the directory; :class:`UnsafeNoPolicyCheck` skips the check and says so
in its name (for tests and tools that deliberately work outside the policy).

Invariants of :meth:`DirectoryPolicy.after_open` (the opener's own check, which never
trusts that the sender checked anything):

* the classification must be a level of the policy the document names (of
  ``DEFAULT_LEVELS`` when no policy was ever in force); anything else is a malformed
  document, a :class:`VerificationError`, not a denial;
* the policy version in force at the sealing time decides sender -> opener for every
  opener except the sender itself (its own copy holds what it wrote); nothing in the
  signed metadata, such as a copy flag, can waive that.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from sandi.errors import PolicyDenied, VerificationError
from sandi.i18n import Message, _

if TYPE_CHECKING:
    from sandi.directory.snapshot import DirectorySnapshot, PolicyEntry
    from sandi.documents.metadata import SealMetadata
    from sandi.formats.age import Stanza
    from sandi.policy.engine import PolicyIndex
    from sandi.policy.model import Level

DEFAULT_LEVELS = ("B", "T", "R", "SR")


class PolicyGate(Protocol):
    def before_seal(
        self, sender: str, recipients: Sequence[str], classification: str, at: datetime
    ) -> tuple[str, int] | None:
        """Raise PolicyDenied unless every relation is allowed; return the policy used."""

    def after_open(self, metadata: SealMetadata, opener: str) -> None:
        """Raise unless the policy in force at sealing time allowed sender -> opener
        (no relation is needed when the opener is the sender itself)."""

    def requires_post_quantum(self, classification: str, at: datetime) -> bool:
        """True if a document of ``classification`` sealed at ``at`` must be sealed to
        hybrid post-quantum keys only (the level's ``post_quantum`` rule)."""

    def check_post_quantum(self, metadata: SealMetadata, stanzas: Sequence[Stanza]) -> None:
        """Raise PolicyDenied if the policy the document names required post-quantum
        sealing for its classification and its header has a classical recipient."""


def _classical_stanzas(stanzas: Sequence[Stanza]) -> bool:
    from sandi.formats.age import POST_QUANTUM_TYPES

    return not stanzas or any(s.type not in POST_QUANTUM_TYPES for s in stanzas)


def post_quantum_denied(classification: str) -> PolicyDenied:
    return PolicyDenied(
        _("documents classified {level} must be sealed post-quantum, and this one is not").format(
            level=classification),
        hint=_("the policy requires hybrid ML-KEM-768 + X25519 keys (age1pq1) at this level; ask the "
               "sender to seal it again with a current sandi and directory"),
    )


def post_quantum_missing(classification: str, codes: Sequence[str]) -> PolicyDenied:
    return PolicyDenied(
        _("documents classified {level} must be sealed post-quantum, and {codes} have no "
          "post-quantum key").format(level=classification, codes=", ".join(codes)),
        hint=_("the authority gives an agency one with 'sandi keys rotate CODE --profile pq' and "
               "publishes the directory; import it here"),
    )


class UnsafeNoPolicyCheck:
    """Allows everything. Only for tools and tests that knowingly bypass the PHKS."""

    def before_seal(
        self, sender: str, recipients: Sequence[str], classification: str, at: datetime
    ) -> tuple[str, int] | None:
        return None

    def after_open(self, metadata: SealMetadata, opener: str) -> None:
        return None

    def requires_post_quantum(self, classification: str, at: datetime) -> bool:
        return False

    def check_post_quantum(self, metadata: SealMetadata, stanzas: Sequence[Stanza]) -> None:
        return None


class DirectoryPolicy:
    """The policy versions published in a verified directory snapshot."""

    def __init__(self, snapshot: DirectorySnapshot) -> None:
        self.snapshot = snapshot
        self._compiled: dict[tuple[str, int], PolicyIndex] = {}

    def _root_key(self) -> bytes:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        return self.snapshot.root_certificate.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def compiled(self, entry: PolicyEntry) -> PolicyIndex:
        """The version's decision index: its compiled form when the directory carries one
        (signature verified, no TOML parsed), else its source compiled here."""
        key = (entry.policy_id, entry.version)
        if key not in self._compiled:
            from sandi.policy.versions import load_verified

            self._compiled[key] = load_verified(entry, self._root_key())
        return self._compiled[key]

    def in_force(self, at: datetime) -> PolicyIndex | None:
        entry = self.snapshot.policy_in_force(at)
        return None if entry is None else self.compiled(entry)

    def levels(self, at: datetime) -> tuple[Level, ...]:
        """The classification levels of the policy in force at ``at`` (the defaults if
        none is): what ``--class`` names are resolved against."""
        from sandi.policy.classification import DEFAULT_LEVEL_OBJECTS

        policy = self.in_force(at)
        return DEFAULT_LEVEL_OBJECTS if policy is None else policy.levels

    def urgencies(self, at: datetime) -> tuple[str, ...] | None:
        """The urgencies (sifat) the policy in force at ``at`` names (None: it names none)."""
        policy = self.in_force(at)
        return None if policy is None or not policy.urgencies else policy.urgencies

    def before_seal(
        self, sender: str, recipients: Sequence[str], classification: str, at: datetime
    ) -> tuple[str, int] | None:
        policy = self.in_force(at)
        if policy is None:
            if self.snapshot.policies:
                raise PolicyDenied(
                    Message("no policy version is in force now: every relation is denied"),
                    hint=_("the authority must apply a current policy and publish the directory"),
                )
            if classification not in DEFAULT_LEVELS:
                raise PolicyDenied(Message("unknown classification {classification!r}",
                                           classification=classification),
                                   hint=_("use one of {levels}").format(levels=", ".join(DEFAULT_LEVELS)))
            return None  # no policy was ever applied: nothing to enforce yet
        policy.require_all(sender, recipients, classification, at)
        return policy.id, policy.version

    def after_open(self, metadata: SealMetadata, opener: str) -> None:
        from sandi.policy.versions import check_in_force

        at = metadata.sealed_at
        if metadata.policy_id is None or metadata.policy_version is None:
            if self.snapshot.policy_in_force(at) is not None:
                raise VerificationError(
                    _("the document names no policy, but a policy was in force when it was sealed")
                )
            _require_level(metadata.classification, DEFAULT_LEVELS)
            return
        # Only versions applied by the sealing time count: one applied later (even with
        # an earlier effective date) cannot have been what the sender checked.
        entry = check_in_force(self.snapshot.policies_known_at(at), at, metadata.policy_id,
                               metadata.policy_version)
        policy = self.compiled(entry)
        _require_level(metadata.classification, [level.code for level in policy.levels])
        if opener == metadata.sender.code:
            return  # the sender's own copy: it holds what the sender wrote
        decision = policy.decide(metadata.sender.code, opener, metadata.classification, at)
        if not decision.allowed:
            from sandi.policy.engine import PolicyDecisionDenied

            raise PolicyDecisionDenied(decision)

    def requires_post_quantum(self, classification: str, at: datetime) -> bool:
        policy = self.in_force(at)
        return policy is not None and policy.requires_post_quantum(classification)

    def check_post_quantum(self, metadata: SealMetadata, stanzas: Sequence[Stanza]) -> None:
        from sandi.policy.versions import check_in_force

        if metadata.policy_id is None or metadata.policy_version is None:
            return  # sealed before any policy (after_open judges that claim)
        at = metadata.sealed_at
        entry = check_in_force(self.snapshot.policies_known_at(at), at, metadata.policy_id,
                               metadata.policy_version)
        required = self.compiled(entry).requires_post_quantum(metadata.classification)
        if required and _classical_stanzas(stanzas):
            raise post_quantum_denied(metadata.classification)


def _require_level(classification: str, levels: Sequence[str]) -> None:
    """A document's classification is one of the levels its policy defines, or it is malformed."""
    if classification not in levels:
        raise VerificationError(
            _("the document's classification {classification} is not a level of its policy "
              "(levels: {levels})").format(classification=repr(classification), levels=", ".join(levels)),
            hint=_("the sender's software is broken or was modified: do not trust the document"),
        )
