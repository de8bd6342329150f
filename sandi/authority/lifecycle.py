"""Renewal and rotation: new certificates for the same keys, or new keys altogether.

Invariants:

* renew: the agency's current keys get new certificates (same public keys, new
  serials, validity from the profile starting now); the old certificates become
  ``retired`` (they still verify what was signed while they were valid). A revoked
  current certificate is never renewed: its key must be rotated;
* the hybrid post-quantum key (``encryption-pq``) follows the same rules when the
  profile has one: renewing to such a profile needs a current hybrid key (else rotate),
  renewing to a profile without one retires the hybrid certificate;
* rotate: new signing and encryption keys, certified; the old certificates become
  ``retired``. The old private keys stay in the key store (the old encryption key
  still opens documents sealed to it); new seals and signatures use the new keys;
* both need an active agency that has been issued keys before, write their audit
  event (``key.renew``, ``key.rotate``) in the same transaction, and on failure
  change nothing (new key files are removed again).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from sandi.authority.events import record
from sandi.authority.issuance import (
    Issuer,
    IssueResult,
    certify_keys,
    certify_new_keys,
    current_certificates,
    require_active,
    retire,
)
from sandi.authority.lookup import find_agency
from sandi.authority.profiles import KeyProfile, load_profile
from sandi.authority.records import cert_info
from sandi.errors import CredentialError, NotFoundError
from sandi.i18n import _
from sandi.keystore.base import KeyStore
from sandi.registry import Registry

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from sandi.registry.models import AgencyRow


def renew_keys(
    registry: Registry,
    issuer: Issuer,
    code: str,
    *,
    profile: KeyProfile | None = None,
    now: datetime | None = None,
) -> IssueResult:
    """New certificates for the agency's current keys."""
    profile = profile or load_profile()
    now = now or datetime.now(UTC)

    def work(session: Session) -> IssueResult:
        agency = find_agency(session, code, for_update=True)
        require_active(agency)
        current = current_certificates(session, agency)
        by_purpose = {r.purpose: r for r in current}
        if not {"signing", "encryption"} <= set(by_purpose):
            raise NotFoundError(
                _("agency {code} has no current keys to renew").format(code=code),
                hint=_("issue them first: 'sandi keys issue {code}'").format(code=code),
            )
        revoked = [r.serial for r in current if r.revocation is not None]
        if revoked:
            raise CredentialError(
                _("agency {code}'s current certificate {revoked} is revoked: its key is not renewed").format(
                    code=code,
                    revoked=revoked[0],
                ),
                hint=_("give the agency new keys with 'sandi keys rotate {code}'").format(code=code),
            )
        old = retire(current, now)
        rows = certify_keys(
            session,
            issuer,
            agency,
            profile,
            signing_public=bytes(by_purpose["signing"].public_key),
            encryption_public=bytes(by_purpose["encryption"].public_key),
            hybrid_public=(
                bytes(by_purpose["encryption-pq"].public_key) if "encryption-pq" in by_purpose else None
            ),
            now=now,
        )
        record(
            session,
            "key.renew",
            code,
            {
                "profile": profile.name,
                "retired": old,
                "certificates": [{"serial": r.serial, "purpose": r.purpose} for r in rows],
            },
        )
        return IssueResult(code, profile.name, [cert_info(r, code) for r in rows], [], old)

    return registry.run(work)


class _HeldCert(Protocol):
    @property
    def purpose(self) -> str: ...
    @property
    def key_fingerprint(self) -> str: ...


def require_keys_held_here(keystore: KeyStore, code: str, current: Sequence[_HeldCert]) -> None:
    """Refuse to rotate keys this authority does not hold (an agency that enrolled from
    its own workstation): new keys made here would leave that workstation unable to sign
    or open, so the rotation must start where the keys live."""
    from sandi.keystore.base import key_ref

    signing = next((r for r in current if r.purpose == "signing"), None)
    if signing is not None and not keystore.contains(key_ref(code, "signing", signing.key_fingerprint)):
        raise CredentialError(
            _("{code}'s keys live on its own workstation (it enrolled from there): the authority "
              "does not rotate them").format(code=code),
            hint=_("on {code}'s workstation run 'sandi keys request {code} --rotate -o request.json', "
                   "then certify it here with 'sandi keys certify request.json -o answer.json'").format(
                code=code
            ),
        )


def rotate_keys(
    registry: Registry,
    keystore: KeyStore,
    issuer: Issuer,
    code: str,
    *,
    profile: KeyProfile | None = None,
    now: datetime | None = None,
) -> IssueResult:
    """New keys and certificates; the old ones are retired (the old keys are kept)."""

    def retire_current(session: Session, agency: AgencyRow, now: datetime) -> list[str]:
        current = current_certificates(session, agency)
        if not current:
            raise NotFoundError(
                _("agency {code} has no keys to rotate").format(code=code),
                hint=_("issue them first: 'sandi keys issue {code}'").format(code=code),
            )
        require_keys_held_here(keystore, code, current)
        return retire(current, now)

    return certify_new_keys(registry, keystore, issuer, code, action="key.rotate",
                            prepare=retire_current, details={}, profile=profile, now=now)
