"""Which keys are valid for what, at a given time: pure rules over certificate records.

These functions take any object with the certificate fields below (the registry's
:class:`~sandi.authority.records.CertificateInfo`, the directory's entries...) and
an optional revocation (``reason``, ``revoked_at``), so the authority and an
offline workstation judge alike, without a database. The rules (DESIGN.md):

* **signing**: a signature dated ``at`` counts if ``at`` lies within the
  certificate's validity and the certificate is not revoked for ``keyCompromise``
  (that voids every signature the key ever made) nor revoked for another reason at
  or before ``at``. A *retired* certificate (superseded by renew or rotate) still
  verifies signatures dated inside its validity: retiring is not revoking;
* **encrypting to**: only a *current* certificate, valid at ``at``, not revoked at
  or before ``at`` (any reason): new documents always go to the newest key;
* **opening**: a document sealed at ``sealed_at`` may be opened with a key whose
  certificate was within its validity and not revoked at ``sealed_at``. Retirement
  does not matter here: the old key still opens old documents, and a sender whose
  directory is a few days old may still have sealed to it (the sender's signature
  and the policy are what protect the recipient). A revocation after the sealing
  time does not lock the recipients out of the document.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Protocol

#: the purposes of certificates whose keys documents are encrypted to (X25519, hybrid)
ENCRYPTION_PURPOSES = frozenset({"encryption", "encryption-pq"})
#: the purposes of certificates the PDF root issues (ECDSA P-256 keys, ADR 0014): they
#: chain to the PDF root, not to the Ed25519 root, and its CRL lists their revocations
PDF_PURPOSES = frozenset({"pdf-signing"})
#: the purposes of certificates whose keys make signatures
SIGNING_PURPOSES = frozenset({"signing"}) | PDF_PURPOSES
VOIDS_ALL_SIGNATURES = frozenset({"keyCompromise", "cACompromise"})
#: How far another machine's clock may run ahead of ours: a time claimed by a signer,
#: a directory or a request further in the future than this is refused.
CLOCK_SKEW = timedelta(minutes=5)


class CertLike(Protocol):
    @property
    def purpose(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def not_before(self) -> datetime: ...
    @property
    def not_after(self) -> datetime: ...


class RevocationLike(Protocol):
    @property
    def reason(self) -> str: ...
    @property
    def revoked_at(self) -> datetime: ...


class CertStatus(enum.Enum):
    """What ``keys list`` shows for a certificate at a time."""

    VALID = "valid"  # current and usable
    DUE = "due"  # current, usable, inside the profile's renewal overlap window
    RETIRED = "retired"  # superseded: verifies / opens old documents only
    NOT_YET_VALID = "not yet valid"
    EXPIRED = "expired"
    REVOKED = "revoked"


def _within(cert: CertLike, at: datetime) -> bool:
    return cert.not_before <= at <= cert.not_after


def _revoked_by(revocation: RevocationLike | None, at: datetime) -> bool:
    return revocation is not None and revocation.revoked_at <= at


def is_valid_for_signing(cert: CertLike, revocation: RevocationLike | None, at: datetime) -> bool:
    """Whether a signature dated ``at`` made with ``cert``'s key counts."""
    if cert.purpose not in SIGNING_PURPOSES or not _within(cert, at):
        return False
    if revocation is not None and revocation.reason in VOIDS_ALL_SIGNATURES:
        return False
    return not _revoked_by(revocation, at)


def may_sign_now(cert: CertLike, revocation: RevocationLike | None, at: datetime) -> bool:
    """Whether the agency should make a *new* signature with ``cert`` at ``at`` (current only)."""
    return cert.state == "current" and is_valid_for_signing(cert, revocation, at)


def is_valid_for_encrypting_to(cert: CertLike, revocation: RevocationLike | None, at: datetime) -> bool:
    """Whether a new document sealed at ``at`` may be encrypted to ``cert``'s key."""
    return (
        cert.purpose in ENCRYPTION_PURPOSES
        and cert.state == "current"
        and _within(cert, at)
        and not _revoked_by(revocation, at)
    )


def is_valid_for_opening(cert: CertLike, revocation: RevocationLike | None, sealed_at: datetime) -> bool:
    """Whether a document sealed at ``sealed_at`` to ``cert``'s key may be opened with it."""
    return (
        cert.purpose in ENCRYPTION_PURPOSES
        and _within(cert, sealed_at)
        and not _revoked_by(revocation, sealed_at)
    )


def status(
    cert: CertLike, revocation: RevocationLike | None, at: datetime, *, overlap_days: int = 0
) -> CertStatus:
    """The one-word state of a certificate at ``at`` (revoked wins over everything)."""
    from datetime import timedelta

    if _revoked_by(revocation, at):
        return CertStatus.REVOKED
    if at < cert.not_before:
        return CertStatus.NOT_YET_VALID
    if at > cert.not_after:
        return CertStatus.EXPIRED
    if cert.state != "current":
        return CertStatus.RETIRED
    if overlap_days and at >= cert.not_after - timedelta(days=overlap_days):
        return CertStatus.DUE
    return CertStatus.VALID
