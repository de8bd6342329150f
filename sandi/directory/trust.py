"""Which published keys may be used for what, at which time.

Pure functions over the directory's entries (no registry), so an authority and a
workstation decide alike. The rules (DESIGN.md, "Keys and certificates"):

* a signature counts only if the signing certificate chains to the root, the
  signing time lies within its validity, and it is not revoked for
  ``keyCompromise`` (which voids every signature of that key) nor revoked with
  another reason *before* the signing time;
* a sealed document is addressed only to an agency that is active and to its
  current, unexpired, unrevoked encryption certificates;
* a suspended agency neither seals nor signs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sandi.authority.validity import ENCRYPTION_PURPOSES, VOIDS_ALL_SIGNATURES, is_valid_for_signing
from sandi.directory.snapshot import AgencyEntry, CertEntry, DirectorySnapshot, OfficialEntry
from sandi.errors import CredentialError
from sandi.i18n import Message, _


@dataclass(frozen=True)
class SignerIdentity:
    """A verified signer: who, with which certificate."""

    agency: AgencyEntry
    certificate: CertEntry


@dataclass(frozen=True)
class OfficialIdentity:
    """A verified signer who is a named official of an agency (ADR 0017)."""

    agency: AgencyEntry
    official: OfficialEntry
    certificate: CertEntry


def chains_to_root(cert: CertEntry, snapshot: DirectorySnapshot) -> bool:
    """True if the root key signed ``cert`` (and the issuer names match); for a
    ``pdf-signing`` certificate, the PDF root the directory names (ADR 0014)."""
    from cryptography.exceptions import InvalidSignature

    issuer = snapshot.issuer_certificate(cert.purpose)
    if issuer is None:
        return False
    try:
        cert.certificate.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def signature_valid_at(cert: CertEntry, signed_at: datetime) -> tuple[bool, str]:
    """Whether a signature made at ``signed_at`` with ``cert`` counts; and why not.

    The rule itself is :func:`sandi.authority.validity.is_valid_for_signing` (one rule
    for the registry and the directory); this adds the reason for the person.
    """
    if is_valid_for_signing(cert, cert.revocation, signed_at):
        return True, ""
    if cert.revocation is not None and cert.revocation.reason in VOIDS_ALL_SIGNATURES:
        return False, Message("the signing key was revoked for key compromise")
    if not cert.not_before <= signed_at <= cert.not_after:
        return False, Message("the signing certificate was not valid at the signing time")
    if cert.revocation is not None:
        return False, Message("the signing certificate was revoked before the signing time")
    return False, Message("the certificate is not a signing certificate")


def current_signing_cert(snapshot: DirectorySnapshot, code: str, now: datetime) -> CertEntry:
    """The certificate an agency signs with now."""
    agency = snapshot.agency(code)
    if agency.status != "active":
        raise CredentialError(_("agency {code} is {status}").format(
            code=code,
            status=_(agency.status),  # marked in agencies.STATUS_WORDS
        ), hint=_("ask the authority to resume it"))
    usable = [
        c for c in agency.current("signing")
        if c.revocation is None and c.not_before <= now <= c.not_after
    ]
    if not usable:
        raise CredentialError(
            _("agency {code} has no valid signing certificate").format(code=code),
            hint=_("ask the authority to issue or renew its keys, then import the new directory"),
        )
    return max(usable, key=lambda c: c.not_before)


def current_pdf_signing_cert(snapshot: DirectorySnapshot, code: str, now: datetime) -> CertEntry | None:
    """The ``pdf-signing`` certificate an agency signs PDFs with now, or None if it has
    none (it then signs with its Ed25519 key, which viewers do not validate)."""
    agency = snapshot.agency(code)
    if agency.status != "active":
        raise CredentialError(_("agency {code} is {status}").format(code=code, status=_(agency.status)),
                              hint=_("ask the authority to resume it"))
    usable = [
        c for c in agency.current("pdf-signing")
        if c.revocation is None and c.not_before <= now <= c.not_after
    ]
    return max(usable, key=lambda c: c.not_before) if usable else None


def encryption_certs(
    snapshot: DirectorySnapshot, code: str, now: datetime, *, post_quantum: bool = False
) -> list[CertEntry]:
    """The certificates a document for ``code`` is encrypted to now (at least one): its
    X25519 key, or with ``post_quantum`` its hybrid ML-KEM-768 + X25519 key."""
    agency = snapshot.agency(code)
    if agency.status != "active":
        raise CredentialError(_("recipient {code} is {status}").format(code=code, status=_(agency.status)),
                              hint=_("a suspended agency cannot receive documents"))
    usable = [
        c for c in agency.current("encryption-pq" if post_quantum else "encryption")
        if c.revocation is None and c.not_before <= now <= c.not_after
    ]
    if not usable and post_quantum:
        raise CredentialError(
            _("agency {code} has no valid post-quantum encryption certificate").format(code=code),
            hint=_("the authority issues one with 'sandi keys rotate {code} --profile pq', "
                   "then publishes the directory").format(code=code),
        )
    if not usable:
        raise CredentialError(
            _("agency {code} has no valid encryption certificate").format(code=code),
            hint=_("ask the authority to issue or renew its keys, then import the new directory"),
        )
    # One key per recipient agency: the newest current certificate.
    return [max(usable, key=lambda c: c.not_before)]



def encryption_key_owner(snapshot: DirectorySnapshot, public_key: bytes, now: datetime) -> str | None:
    """The agency a raw X25519 (or 1216-byte hybrid) public key belongs to, if any; None for a
    key no certificate carries.

    A key that any encryption certificate in the directory (or its archive of retired
    certificates) carries, current or past, is that agency's: it may be used only as the
    agency's current key (so that the caller applies the agency's policy to it). A retired,
    revoked or expired key of an agency, or one of a suspended agency, is refused here,
    saying why; with an archive the home lacks, a key not in the directory is refused too
    (it may be a retired one).
    """
    import hashlib

    fingerprint = hashlib.sha256(public_key).hexdigest()
    owners = sorted({agency.code for agency, cert in snapshot.key_owners(fingerprint)
                     if cert.purpose in ENCRYPTION_PURPOSES})
    if not owners and snapshot.archive_head is not None:
        # A retired key left the current directory for the archive (ADR 0019): still refused.
        from sandi.directory.archive import installed_archive, missing_archive_hint

        archive = installed_archive(snapshot)
        if archive is None:
            raise CredentialError(
                _("this key is not in the current directory; whether it is a former key of an agency is "
                  "in the archive of retired certificates, which this computer does not have"),
                hint=missing_archive_hint())
        archived = sorted({code for code, cert in archive.key_owners(fingerprint)
                           if cert.purpose in ENCRYPTION_PURPOSES})
        if archived:
            raise CredentialError(
                _("this key is a former encryption key of {code} (retired, revoked or expired)").format(
                    code=archived[0]),
                hint=_("encrypt to the agency by its code (-r {code}): its current key is used, and the "
                       "policy is checked").format(code=archived[0]),
            )
    if not owners:
        return None
    if len(owners) > 1:  # the authority never issues one key twice; a directory that does is wrong
        raise CredentialError(
            _("this key is the encryption key of several agencies ({codes})").format(codes=", ".join(owners)),
            hint=_("tell the authority: its directory is inconsistent"),
        )
    code = owners[0]
    current = encryption_certs(snapshot, code, now, post_quantum=len(public_key) != 32)[0]
    if current.key_fingerprint != fingerprint:
        raise CredentialError(
            _("this key is a former encryption key of {code} (retired, revoked or expired)").format(
                code=code),
            hint=_("encrypt to the agency by its code (-r {code}): its current key is used, and the "
                   "policy is checked").format(code=code),
        )
    if not chains_to_root(current, snapshot):
        raise CredentialError(
            _("the encryption certificate of {code} was not issued by this authority").format(code=code))
    return code


def has_post_quantum_key(snapshot: DirectorySnapshot, code: str, now: datetime) -> bool:
    """True if ``code`` has a current, valid hybrid post-quantum encryption certificate."""
    return any(
        c.revocation is None and c.not_before <= now <= c.not_after
        for c in snapshot.agency(code).current("encryption-pq")
    )



def current_official_signing_cert(snapshot: DirectorySnapshot, code: str, nip: str,
                                  now: datetime, *, purpose: str = "signing",
                                  required: bool = True) -> tuple[OfficialEntry, CertEntry | None]:
    """The personal certificate of ``purpose`` the official ``nip`` of ``code`` signs with
    now: the agency active and able to sign itself, the official active, the certificate
    current, unrevoked and valid (it never outranks the agency's). None if there is none
    and not ``required``."""
    current_signing_cert(snapshot, code, now)  # a suspended or keyless agency: no one signs for it
    official = snapshot.agency(code).official(nip)
    if official.status != "active":
        raise CredentialError(_("official {nip} of {code} is {status}").format(
            nip=nip, code=code, status=_(official.status)),  # marked in officials.STATUS_WORDS
            hint=_("only an active official signs for the agency"))
    usable = [
        c for c in official.certificates
        if c.purpose == purpose and c.state == "current" and c.revocation is None
        and c.not_before <= now <= c.not_after
    ]
    if not usable and not required:
        return official, None
    if not usable:
        raise CredentialError(
            _("official {nip} of {code} has no valid signing certificate").format(nip=nip, code=code),
            hint=_("request one ('sandi official request {code} --nip {nip}'), then import the new "
                   "directory").format(code=code, nip=nip),
        )
    return official, max(usable, key=lambda c: c.not_before)
