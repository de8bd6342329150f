"""Which certificate vouches for a signature: the signer's key, several certificates.

A renewal gives an agency a new certificate for the *same* key, so one signing key
can have several certificates in the directory (the retired one and the current
one). A signature is judged against the certificate that was in use when it was
made: the one its metadata names by serial (sandi signatures), or, for a plain
minisign signature that names none, any certificate of the key that was valid then.

Invariants:

* the key must belong to the named agency and be a signing key, in every
  certificate that carries it;
* a ``keyCompromise`` revocation of *any* certificate of the key voids every
  signature of that key (the key is what was compromised, not the certificate);
* otherwise the chosen certificate must chain to the root, cover the signing time,
  and not have been revoked before it (``sandi.directory.trust.signature_valid_at``);
* a certificate retired to the archive (ADR 0019) is judged by the same rules, from the
  archive checked against the directory's signed head; a home without the archive is
  told so, never given a verdict without it;
* the signing time is the signer's own claim: one further ahead of the verifier's
  clock than ``CLOCK_SKEW`` is refused, so a signature cannot be dated into a later
  policy version or past a revocation that has not happened yet.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

from sandi.authority.validity import CLOCK_SKEW, VOIDS_ALL_SIGNATURES
from sandi.directory.archive import archived_key_owners
from sandi.directory.snapshot import AgencyEntry, CertEntry, DirectorySnapshot
from sandi.directory.trust import OfficialIdentity, SignerIdentity, chains_to_root, signature_valid_at
from sandi.errors import VerificationError
from sandi.i18n import Message, _

#: a certificate with its owner: (agency, certificate) or (agency, official, certificate)
Owned = TypeVar("Owned")


def verify_signing_certificate(
    snapshot: DirectorySnapshot,
    agency_code: str,
    key_fingerprint: str,
    signed_at: datetime,
    serial: str | None = None,
    *,
    now: datetime,
    purpose: str = "signing",
) -> SignerIdentity:
    """The certificate that makes this signature count, or :class:`VerificationError`.

    ``purpose``: the certificate purpose the signature's key must have (``pdf-signing``
    for a P-256 signature inside a PDF)."""
    found = snapshot.key_owners(key_fingerprint)
    if not found or (serial is not None and all(c.serial != serial for _a, c in found)):
        # A retired certificate left the current directory for the archive (ADR 0019):
        # judged from there by the same rules; without the archive, said so (exit 4).
        found = found + archived_key_owners(snapshot, key_fingerprint)
    elif serial is None and snapshot.archive_head is not None:
        try:
            return _judge(found, agency_code, signed_at, serial, snapshot, now=now, purpose=purpose)
        except VerificationError:  # a plain signature older than every current certificate
            found = found + archived_key_owners(snapshot, key_fingerprint)
    return _judge(found, agency_code, signed_at, serial, snapshot, now=now, purpose=purpose)


def _judge(found: list[tuple[AgencyEntry, CertEntry]], agency_code: str, signed_at: datetime,
           serial: str | None, snapshot: DirectorySnapshot, *, now: datetime, purpose: str) -> SignerIdentity:
    if not found:
        raise VerificationError(
            _("the signing key is not in the directory"),
            hint=_("the signer may be unknown to this authority, or your directory is old"),
        )
    if any(agency.code != agency_code or cert.purpose != purpose for agency, cert in found):
        raise VerificationError(_("the signing key does not belong to the named sender"))
    agency, cert = _in_use(found, lambda ac: ac[1], signed_at, serial, snapshot, now=now)
    return SignerIdentity(agency, cert)


def verify_official_certificate(
    snapshot: DirectorySnapshot,
    key_fingerprint: str,
    signed_at: datetime,
    serial: str | None = None,
    *,
    now: datetime,
    purpose: str = "signing",
) -> OfficialIdentity:
    """The official's personal certificate that makes this signature count (the same
    rules as an agency's: chain, validity and revocation at the signing time, key
    compromise voids all), or :class:`VerificationError`."""
    found = snapshot.find_official_key(key_fingerprint)
    if not found:
        raise VerificationError(
            _("the signing key is not in the directory"),
            hint=_("the signer may be unknown to this authority, or your directory is old"),
        )
    owners = {(a.code, o.nip) for a, o, _c in found}
    if len(owners) != 1 or any(c.purpose != purpose for _a, _o, c in found):
        raise VerificationError(_("the signing key does not belong to one official"))
    agency, official, cert = _in_use(found, lambda aoc: aoc[2], signed_at, serial, snapshot, now=now)
    return OfficialIdentity(agency, official, cert)


def _in_use(found: Sequence[Owned], cert_of: Callable[[Owned], CertEntry], signed_at: datetime,
            serial: str | None, snapshot: DirectorySnapshot, *, now: datetime) -> Owned:
    """Of the certificates of one key (their owners checked by the caller), the one that
    makes the signature count: a key compromise voids all; the one the signature names
    by serial, else the newest; it must chain to the root and be valid at ``signed_at``,
    which must not be in the future."""
    if any((c := cert_of(item)).revocation is not None and c.revocation.reason in VOIDS_ALL_SIGNATURES
           for item in found):
        raise VerificationError(_("the signing key was revoked for key compromise"))
    if serial is not None:
        found = [item for item in found if cert_of(item).serial == serial]
        if not found:
            raise VerificationError(_("the signer's certificate named in the signature is not in the "
                                      "directory"),
                                    hint=_("your directory may be old: import a newer one"))
    why: str = ""
    for item in sorted(found, key=lambda item: cert_of(item).not_before, reverse=True):
        cert = cert_of(item)
        if not chains_to_root(cert, snapshot):
            why = Message("the signer's certificate was not issued by this authority")
            continue
        ok, why = signature_valid_at(cert, signed_at)
        if ok:
            if signed_at > now + CLOCK_SKEW:
                raise VerificationError(
                    _("the signature claims a signing time in the future"),
                    hint=_("check this machine's clock; if it is right, the signer's clock or software is "
                           "wrong and the document should not be trusted"),
                )
            return item
    raise VerificationError(why)
