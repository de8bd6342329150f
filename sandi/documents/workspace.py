"""What a document operation works with: the home's directory, key store and journal."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sandi.audit.events import JSONValue, Outcome
from sandi.directory.local import installed_snapshot
from sandi.directory.snapshot import CertEntry, DirectorySnapshot, OfficialEntry
from sandi.directory.trust import current_official_signing_cert, current_signing_cert
from sandi.errors import CredentialError, NotFoundError
from sandi.home import Home
from sandi.i18n import _

if TYPE_CHECKING:
    from sandi.audit.entry import AuditEntry
    from sandi.formats.age import Identity
    from sandi.keystore import KeyStore, P256Signer, PassphraseSource, Signer


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Workspace:
    """A home opened for document work. Cheap: keys are read only when needed."""

    home: Home
    snapshot: DirectorySnapshot
    keystore: KeyStore
    clock: Callable[[], datetime] = _utcnow
    warnings: list[str] = field(default_factory=list)
    # Keys already read from the store, by key reference: a process that seals many
    # documents decrypts each key file once (the store itself is unlocked already).
    _signing_keys: dict[str, Signer] = field(default_factory=dict, repr=False)

    @classmethod
    def open(
        cls,
        home: Home,
        passphrase: PassphraseSource,
        *,
        clock: Callable[[], datetime] = _utcnow,
        pin: PassphraseSource | None = None,
    ) -> Workspace:
        from sandi.keystore import open_keystore

        snapshot = installed_snapshot(home, now=clock())
        keystore = open_keystore(home, passphrase, pin=pin)
        # The snapshot's notices list is shared: a notice added during the command (the
        # index failed a check and the command fell back to directory.json) is in it too.
        ws = cls(home=home, snapshot=snapshot, keystore=keystore, clock=clock, warnings=snapshot.notices)
        warning = snapshot.expiry_warning(clock())
        if warning:
            ws.warnings.append(warning)
        return ws

    def now(self) -> datetime:
        return self.clock()

    def __repr__(self) -> str:
        return f"Workspace({self.home!r}, directory v{self.snapshot.version})"

    # -- keys --------------------------------------------------------------------------

    def signing_key(self, code: str) -> tuple[Signer, CertEntry]:
        """What signs with the agency's key that matches its current certificate (the
        key itself stays in its store: a token key signs on the token)."""
        from sandi.keystore import key_ref

        cert = current_signing_cert(self.snapshot, code, self.now())
        ref = key_ref(code, "signing", cert.key_fingerprint)
        if not self.keystore.contains(ref):
            raise NotFoundError(
                _("this home holds no private signing key of {code} for its current certificate").format(
                    code=code,
                ),
                hint=_("'sandi keys list' shows which keys this home holds; if the authority made new "
                       "keys for {code}, import its bundle ('sandi keys import FILE'); if this home "
                       "enrolled, its keys rotate from here ('sandi keys request {code} --rotate')").format(
                    code=code),
            )
        key = self._signing_keys.get(ref)
        if key is None:
            key = self.keystore.signer(ref)
            if key.fingerprint != cert.key_fingerprint:
                raise CredentialError(_("the stored signing key of {code} does not match its "
                                        "certificate").format(
                    code=code,
                ))
            self._signing_keys[ref] = key
        return key, cert

    def pdf_signing_key(self, code: str, cert: CertEntry) -> P256Signer:
        """What signs with the agency's P-256 ``pdf-signing`` key of ``cert`` (ADR 0014)."""
        from sandi.keystore import key_ref

        ref = key_ref(code, "ecdsa-p256", cert.key_fingerprint)
        if not self.keystore.contains(ref):
            raise NotFoundError(
                _("this home holds no private PDF signing key of {code} for its current certificate").format(
                    code=code),
                hint=_("if the authority made a PDF signing key for {code}, import its bundle "
                       "('sandi keys import FILE')").format(code=code),
            )
        key = self.keystore.p256_signer(ref)
        if key.fingerprint != cert.key_fingerprint:
            raise CredentialError(_("the stored PDF signing key of {code} does not match its "
                                    "certificate").format(code=code))
        return key

    def official_pdf_key(self, code: str, nip: str) -> tuple[P256Signer, CertEntry, OfficialEntry] | None:
        """The official's P-256 ``pdf-signing`` key and certificate (ADR 0014, 0017), or None
        if the directory gives them none (they then sign PDFs with their Ed25519 key)."""
        from sandi.keystore import key_ref

        official, cert = current_official_signing_cert(self.snapshot, code, nip, self.now(),
                                                       purpose="pdf-signing", required=False)
        if cert is None:
            return None
        ref = key_ref(nip, "ecdsa-p256", cert.key_fingerprint)
        if not self.keystore.contains(ref):
            raise NotFoundError(
                _("this home holds no private PDF signing key of official {nip} for their current "
                  "certificate").format(nip=nip),
                hint=_("an official signs on the workstation where they made their request ('sandi "
                       "official request {code} --nip {nip}')").format(code=code, nip=nip),
            )
        key = self.keystore.p256_signer(ref)
        if key.fingerprint != cert.key_fingerprint:
            raise CredentialError(_("the stored PDF signing key of official {nip} does not match their "
                                    "certificate").format(nip=nip))
        return key, cert, official

    def official_signing_key(self, code: str, nip: str) -> tuple[Signer, CertEntry, OfficialEntry]:
        """What signs with the personal key of the official ``nip`` of ``code`` (ADR 0017):
        the key this home's store holds under the NIP for the official's current certificate."""
        from sandi.keystore import key_ref

        official, cert = current_official_signing_cert(self.snapshot, code, nip, self.now())
        assert cert is not None  # required
        ref = key_ref(nip, "signing", cert.key_fingerprint)
        if not self.keystore.contains(ref):
            raise NotFoundError(
                _("this home holds no private signing key of official {nip} for their current "
                  "certificate").format(nip=nip),
                hint=_("an official signs on the workstation where they made their request ('sandi "
                       "official request {code} --nip {nip}')").format(code=code, nip=nip),
            )
        key = self._signing_keys.get(ref)
        if key is None:
            key = self.keystore.signer(ref)
            if key.fingerprint != cert.key_fingerprint:
                raise CredentialError(_("the stored signing key of official {nip} does not match their "
                                        "certificate").format(nip=nip))
            self._signing_keys[ref] = key
        return key, cert, official

    def opening_identities(self, code: str) -> list[tuple[str, Identity]]:
        """Every encryption key of ``code`` in the store (current and retired; X25519 and
        hybrid post-quantum) as (public fingerprint, identity): hybrid keys first. The
        identity unwraps where the key lives (in a key agent, when one holds it)."""
        prefix = f"{code}.encryption."
        hybrid_prefix = f"{code}.encryption-pq."
        all_refs = self.keystore.refs()
        refs = [r for r in all_refs if r.startswith(prefix)]
        hybrid_refs = [r for r in all_refs if r.startswith(hybrid_prefix)]
        if not refs and not hybrid_refs:
            raise NotFoundError(
                _("this home holds no encryption key of {code}").format(code=code),
                hint=_("open as an agency whose keys are in this home, or import its key bundle"),
            )
        return [self.keystore.opening_key(ref) for ref in hybrid_refs + refs]

    # -- audit -------------------------------------------------------------------------

    def record(
        self, actor: str, action: str, subject: str, outcome: Outcome = "ok",
        details: dict[str, JSONValue] | None = None,
    ) -> AuditEntry:
        """Append to the home's journal; raises AuditError (the operation then fails)."""
        from sandi.audit.journal import record_by_operator

        return record_by_operator(self.home.journal_path, actor, action, subject, outcome, details)
