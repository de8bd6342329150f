"""Central issuance: the authority generates an agency's key pairs and certifies them.

Invariants:

* only an existing, *active* agency gets certificates (unknown: NotFoundError;
  suspended: CredentialError); an agency that already has current certificates
  gets none here (that is renew or rotate);
* the certificates (signing, encryption, and encryption-pq where the profile has
  ``[encryption_pq]``) of one issuance are made from one profile, one root and one
  time, inserted and audited (``key.issue``) in one transaction; the private keys
  are written to the key store inside that transaction, after every check, and
  removed again if it fails, so the registry never names a certificate whose key
  was lost and a failure leaves no key behind;
* the root key is checked against ``root.pem`` and the configured fingerprint
  before it signs anything (:func:`sandi.authority.root.load_root_signer`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sandi.authority.certs import (
    IssuedCertificate,
    check_base_url,
    issue_certificate,
    publication_urls,
    whole_seconds,
)
from sandi.authority.events import record
from sandi.authority.lookup import find_agency
from sandi.authority.profiles import KeyProfile, load_profile
from sandi.authority.records import CertificateInfo, cert_info
from sandi.errors import AlreadyExistsError, CommitOutcomeUnknown, CredentialError
from sandi.i18n import _
from sandi.keystore.base import (
    KeyStore,
    generate_hybrid_identity,
    generate_identity,
    identity_public_bytes,
    key_ref,
)
from sandi.keystore.keys import P256Signer, Signer

if TYPE_CHECKING:
    from cryptography import x509
    from sqlalchemy.orm import Session

    from sandi.formats.age import MLKEM768X25519Identity, X25519Identity
    from sandi.home import Home
    from sandi.registry import Registry
    from sandi.registry.models import AgencyRow, CertificateRow


@dataclass(frozen=True, repr=False)
class Issuer:
    """The root key, its certificate and the province: what signs certificates and CRLs."""

    key: Signer
    cert: x509.Certificate
    province: str
    #: where certificates say the CRL and the root can be fetched (home's base_url)
    base_url: str | None = None

    def __repr__(self) -> str:
        return f"Issuer({self.province!r}, root={self.key.fingerprint[:16]}…)"


def load_issuer(home: Home, keystore: KeyStore) -> Issuer:
    from sandi.authority.root import load_root_certificate, load_root_signer

    key = load_root_signer(home, keystore)
    config = home.load_config()
    base = config.extra.get("base_url")
    return Issuer(key=key, cert=load_root_certificate(home), province=config.province,
                  base_url=check_base_url(base) if isinstance(base, str) and base else None)


@dataclass(frozen=True)
class IssueResult:
    agency: str
    profile: str
    certificates: list[CertificateInfo]
    key_refs: list[str]
    retired: list[str]  # serials superseded by this issuance (renew / rotate / re-enrolment)


def require_active(agency: AgencyRow) -> None:
    if agency.status != "active":
        raise CredentialError(
            _("agency {code} is {status}: no certificates are issued to it").format(
                code=agency.code,
                status=_(agency.status),  # marked in agencies.STATUS_WORDS
            ),
            hint=_("resume it first with 'sandi agency resume {code}'").format(code=agency.code),
        )


def current_certificates(session: Session, agency: AgencyRow) -> list[CertificateRow]:
    """The agency's current certificates from the root (what renew, rotate and enrolment
    replace); its PDF root certificates (``pdf-signing``) have their own flows."""
    from sqlalchemy import select

    from sandi.authority.validity import PDF_PURPOSES
    from sandi.registry.models import CertificateRow

    return list(
        session.scalars(
            select(CertificateRow)
            .where(CertificateRow.agency_id == agency.id, CertificateRow.state == "current",
                   CertificateRow.purpose.not_in(PDF_PURPOSES),
                   CertificateRow.official_id.is_(None))  # officials' certificates are theirs
            .order_by(CertificateRow.purpose)
        ).all()
    )


def certify_keys(
    session: Session,
    issuer: Issuer,
    agency: AgencyRow,
    profile: KeyProfile,
    *,
    signing_public: bytes,
    encryption_public: bytes,
    hybrid_public: bytes | None = None,
    now: datetime,
) -> list[CertificateRow]:
    """Issue and insert the certificates for the raw public keys (no audit here): signing
    and encryption, and encryption-pq when the profile has it (``hybrid_public``)."""
    from sandi.errors import UsageError

    now = whole_seconds(now)
    rows = []
    keys = {"signing": signing_public, "encryption": encryption_public, "encryption-pq": hybrid_public}
    for purpose in profile.purposes:
        public = keys[purpose]
        if public is None:
            raise UsageError(
                _("profile {name} issues a hybrid post-quantum key, and there is none to certify").format(
                    name=repr(profile.name)),
                hint=_("rotate the agency's keys to make one ('sandi keys rotate CODE --profile ...')"),
            )
        cn, ou = profile.subject_fields(
            code=agency.code, name=agency.name, purpose=purpose, province=issuer.province
        )
        crl_url, root_url = publication_urls(issuer.base_url)
        issued = issue_certificate(
            issuer.key,
            issuer.cert,
            purpose=purpose,
            public_key=public,
            common_name=cn,
            organizational_unit=ou,
            province=issuer.province,
            not_before=now,
            not_after=now + timedelta(days=profile.validity_days(purpose)),
            full_name=" ".join(agency.name.split()),
            crl_url=crl_url,
            ca_issuers_url=root_url,
        )
        row = current_row(issued, agency_id=agency.id, profile=profile.name, issued_at=now)
        session.add(row)
        rows.append(row)
    session.flush()
    return rows


def current_row(issued: IssuedCertificate, *, agency_id: int, profile: str, issued_at: datetime,
                official_id: int | None = None) -> CertificateRow:
    """The registry row of a certificate just issued: current, of ``agency_id`` (and of an
    official of it, for a personal certificate)."""
    from sandi.registry.models import CertificateRow

    return CertificateRow(
        serial=issued.serial, agency_id=agency_id, purpose=issued.purpose,
        key_fingerprint=issued.key_fingerprint, public_key=issued.public_key, cert_pem=issued.pem,
        not_before=issued.not_before, not_after=issued.not_after, issued_at=issued_at,
        state="current", retired_at=None, profile=profile, official_id=official_id,
    )


def retire(rows: list[CertificateRow], now: datetime) -> list[str]:
    for row in rows:
        row.state = "retired"
        row.retired_at = whole_seconds(now)
    return [r.serial for r in rows]


class KeyWrites:
    """Keys put into a store during one operation, removed again if it fails."""

    def __init__(self, keystore: KeyStore) -> None:
        self.keystore = keystore
        self.refs: list[str] = []

    def new_signing(self, code: str, *, on_token: bool) -> tuple[str, Signer]:
        """A new signing key, generated and stored by the key store (on its token when
        ``on_token``); removed again by :meth:`undo`."""
        ref, signer = self.keystore.new_signing_key(code, on_token=on_token)
        self.refs.append(ref)
        return ref, signer

    def new_p256(self, code: str, *, on_token: bool = False) -> tuple[str, P256Signer]:
        """A new ECDSA P-256 key (a ``pdf-signing`` key; on the store's token when
        ``on_token``), removed again by :meth:`undo`."""
        ref, signer = self.keystore.new_p256_key(code, on_token=on_token)
        self.refs.append(ref)
        return ref, signer

    def encryption(self, code: str, identity: X25519Identity) -> str:
        from sandi.keystore.keys import fingerprint

        ref = key_ref(code, "encryption", fingerprint(identity_public_bytes(identity)))
        self.keystore.put_encryption_key(ref, identity)
        self.refs.append(ref)
        return ref

    def hybrid(self, code: str, identity: MLKEM768X25519Identity) -> str:
        from sandi.keystore.keys import fingerprint

        ref = key_ref(code, "encryption-pq", fingerprint(identity.recipient.public_bytes))
        self.keystore.put_hybrid_key(ref, identity)
        self.refs.append(ref)
        return ref

    def undo(self) -> None:
        for ref in reversed(self.refs):
            with contextlib.suppress(Exception):
                self.keystore.delete(ref)
        self.refs.clear()


def with_new_keys(keystore: KeyStore, work: Callable[[KeyWrites], IssueResult]) -> IssueResult:
    """Run ``work``; remove the keys it stored if it fails, unless its commit may have
    landed: certificates without their private keys would leave documents sealed to
    them unreadable, while an unused key file costs nothing."""
    writes = KeyWrites(keystore)
    try:
        return work(writes)
    except CommitOutcomeUnknown as exc:
        raise CommitOutcomeUnknown(
            exc.message,
            hint=_("{hint}. The new private keys were kept in the key store ({refs}); if 'sandi "
                   "keys list' does not show their certificates, the change was not saved and "
                   "those keys are unused").format(
                hint=exc.hint,
                refs=', '.join(writes.refs),
            ),
        ) from None
    except BaseException:
        writes.undo()
        raise


def certify_new_keys(
    registry: Registry,
    keystore: KeyStore,
    issuer: Issuer,
    code: str,
    *,
    action: str,
    prepare: Callable[[Session, AgencyRow, datetime], list[str]],
    details: dict[str, object],
    profile: KeyProfile | None = None,
    now: datetime | None = None,
) -> IssueResult:
    """Generate the key pairs, certify them and store them: one transaction, one audit entry.

    ``prepare(session, agency, now)`` checks the agency's current certificates (raising
    to refuse) and returns the serials it retired; they are recorded as ``retired``.
    If anything fails, the keys written to the store are removed again.
    """
    profile = profile or load_profile()
    now = now or datetime.now(UTC)
    encryption = generate_identity()
    hybrid = generate_hybrid_identity() if "encryption-pq" in profile.purposes else None

    def work(writes: KeyWrites) -> IssueResult:
        with registry.transaction() as session:
            agency = find_agency(session, code, for_update=True)
            require_active(agency)
            old = prepare(session, agency, now)
            # After every check; a token key exists from here on, so it is made per
            # attempt and removed by undo() with the rest.
            signing_ref, signing = writes.new_signing(code, on_token=profile.signing_on_token)
            rows = certify_keys(
                session,
                issuer,
                agency,
                profile,
                signing_public=signing.public_key_bytes(),
                encryption_public=identity_public_bytes(encryption),
                hybrid_public=None if hybrid is None else hybrid.recipient.public_bytes,
                now=now,
            )
            record(
                session,
                action,
                code,
                {
                    "profile": profile.name,
                    **details,
                    **({"retired": old} if old else {}),
                    "certificates": [
                        {"serial": r.serial, "purpose": r.purpose, "key_fingerprint": r.key_fingerprint}
                        for r in rows
                    ],
                },
            )
            refs = [signing_ref, writes.encryption(code, encryption)]
            if hybrid is not None:
                refs.append(writes.hybrid(code, hybrid))
            return IssueResult(code, profile.name, [cert_info(r, code) for r in rows], refs, old)

    # A deadlock aborts the whole attempt (its keys are removed again): run it anew.
    return registry.retrying(lambda: with_new_keys(keystore, work))


def issue_keys(
    registry: Registry,
    keystore: KeyStore,
    issuer: Issuer,
    code: str,
    *,
    profile: KeyProfile | None = None,
    now: datetime | None = None,
) -> IssueResult:
    """Generate, certify and store an agency's signing and encryption keys."""

    def no_keys_yet(session: Session, agency: AgencyRow, now: datetime) -> list[str]:
        if current_certificates(session, agency):
            raise AlreadyExistsError(
                _("agency {code} has keys already").format(code=code),
                hint=_("use 'sandi keys renew {code}' (new certificates) or 'sandi keys rotate "
                       "{code}' (new keys)").format(code=code),
            )
        return []

    return certify_new_keys(registry, keystore, issuer, code, action="key.issue", prepare=no_keys_yet,
                            details={"flow": "central"}, profile=profile, now=now)


def agencies_without_keys(registry: Registry) -> list[str]:
    """The codes of every active agency that was never issued a certificate, in code order
    (what ``sandi keys issue --all`` provisions)."""
    from sqlalchemy import exists, select

    from sandi.registry.models import AgencyRow, CertificateRow

    with registry.reading() as session:
        has_certificates = exists().where(CertificateRow.agency_id == AgencyRow.id)
        return list(session.scalars(
            select(AgencyRow.code).where(AgencyRow.status == "active", ~has_certificates)
            .order_by(AgencyRow.code)
        ).all())
