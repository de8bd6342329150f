"""The facade an application uses: open a home once, then work with it.

>>> from sandi.toolkit import Toolkit                                # doctest: +SKIP
>>> tk = Toolkit.open("/srv/sandi/diskominfo", passphrase="...")      # doctest: +SKIP
>>> tk.seal("surat.pdf", "surat.pdf.sandi", sender="DISKOMINFO",
...         recipients=["BAPPEDA"], classification="R", policy=tk.directory_policy())  # doctest: +SKIP

Invariants:

* document operations (seal, open, sign, verify, encrypt) read only the home's
  signed directory and key store, never the registry;
* the policy is a required argument of the operations it governs:
  :meth:`directory_policy` for the policy the authority published, or, knowingly,
  :class:`~sandi.documents.UnsafeNoPolicyCheck`;
* authority operations (:attr:`authority`) run in one registry transaction each,
  record their audit entry in it, and republish the home's directory afterwards,
  exactly as the command line does;
* every document method takes ``operator=``: the person the audit entry names for this
  call (an e-office server acting for many users), default ``$SANDI_OPERATOR`` or the
  login name;
* in memory: :meth:`seal_bytes` and :meth:`open_bytes` work on ``bytes``; :meth:`seal`
  and :meth:`open_sealed` also take binary streams (a ``BytesIO`` needs no ``size``),
  and an output stream receives a document only after every check passed.

Threads: a :class:`Toolkit` keeps a cache of the directory and unlocked keys and is not
safe to share between threads; open one per thread (they may share a home: journal
appends are serialised by a file lock, registry changes by the database). The module
functions of :mod:`sandi.documents` hold no state of their own.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from sandi.home import Home, resolve_home

if TYPE_CHECKING:
    from sandi.authority.issuance import Issuer, IssueResult
    from sandi.authority.records import AgencyInfo
    from sandi.authority.revocation import Revoked
    from sandi.directory.snapshot import DirectorySnapshot
    from sandi.documents import (
        DirectoryPolicy,
        OpenResult,
        PolicyGate,
        SealResult,
        SignResult,
        VerifyResult,
        Workspace,
    )
    from sandi.keystore import KeyStore, PassphraseSource
    from sandi.registry import Registry

PathLike = str | os.PathLike[str]
T = TypeVar("T")


def _passphrase_source(passphrase: str | bytes | PassphraseSource | None) -> PassphraseSource:
    from sandi.keystore import EnvPassphrase, FixedPassphrase, NoPassphrase

    if passphrase is None:
        env = EnvPassphrase()
        return env if env.available() else NoPassphrase()
    if isinstance(passphrase, str | bytes):
        return FixedPassphrase(passphrase)
    return passphrase


@dataclass(frozen=True, repr=False)
class OpenedDocument:
    """A document opened in memory: its verified content and what was verified."""

    content: bytes
    result: OpenResult

    @property
    def name(self) -> str:
        return self.result.metadata.document_name

    def __repr__(self) -> str:  # never the content: it may be classified
        return f"OpenedDocument({self.name!r}, {len(self.content)} bytes)"


class Toolkit:
    """One home, opened once. Create it with :meth:`open`."""

    def __init__(self, home: Home, passphrase: PassphraseSource) -> None:
        self.home = home
        self._passphrase = passphrase
        self._workspace: Workspace | None = None
        self._authority: AuthorityOperations | None = None

    @classmethod
    def open(
        cls, home: PathLike | None = None, *, passphrase: str | bytes | PassphraseSource | None = None
    ) -> Toolkit:
        """Open an existing home (``home``, else ``$SANDI_HOME``, else the default).

        ``passphrase`` unlocks the key store when a private key is first needed; a
        string or bytes, a :class:`~sandi.keystore.PassphraseSource`, or None for
        ``$SANDI_PASSPHRASE``.
        """
        h = Home(resolve_home(home))
        h.load_config()  # fail now, clearly, if there is no home
        return cls(h, _passphrase_source(passphrase))

    def __repr__(self) -> str:
        return f"Toolkit({self.home!r})"

    # -- public data -------------------------------------------------------------------

    @property
    def workspace(self) -> Workspace:
        if self._workspace is None:
            from sandi.documents import Workspace

            self._workspace = Workspace.open(self.home, self._passphrase)
        return self._workspace

    def refresh(self) -> None:
        """Re-read the directory (after an import or a publication)."""
        self._workspace = None

    @property
    def directory(self) -> DirectorySnapshot:
        return self.workspace.snapshot

    def directory_policy(self) -> DirectoryPolicy:
        """The policy gate for the versions the authority published (the normal choice)."""
        from sandi.documents import DirectoryPolicy

        return DirectoryPolicy(self.directory)

    def import_directory(self, path: PathLike) -> DirectorySnapshot:
        from sandi.directory.local import import_snapshot

        snapshot = import_snapshot(self.home, Path(path))
        self.refresh()
        return snapshot

    # -- documents ---------------------------------------------------------------------

    def seal(
        self, src: PathLike | BinaryIO, dst: PathLike | BinaryIO, *, sender: str, recipients: list[str],
        classification: str, policy: PolicyGate, letter: Mapping[str, object] | None = None,
        armor: bool = False, copy_to_sender: bool = False, name: str | None = None,
        size: int | None = None, operator: str | None = None, timestamp: bool | None = None,
    ) -> SealResult:
        """Sign and encrypt ``src`` for ``recipients`` (see :func:`sandi.documents.seal`;
        ``timestamp``: ask for an RFC 3161 time-stamp, True/False, None as the home says)."""
        from sandi.audit.events import acting_operator
        from sandi.documents import seal

        target = Path(dst) if isinstance(dst, str | os.PathLike) else dst
        with acting_operator(operator):
            return seal(src, target, workspace=self.workspace, sender=sender, recipients=recipients,
                        classification=classification, policy=policy, letter=letter,
                        urgencies=self.home.load_config().urgencies, armor=armor,
                        copy_to_sender=copy_to_sender, name=name, size=size, timestamp=timestamp)

    def seal_bytes(
        self, data: bytes, *, name: str, sender: str, recipients: list[str], classification: str,
        policy: PolicyGate, letter: Mapping[str, object] | None = None, armor: bool = False,
        copy_to_sender: bool = False, operator: str | None = None, timestamp: bool | None = None,
    ) -> bytes:
        """The sealed document of ``data`` (named ``name`` inside), as bytes."""
        out = io.BytesIO()
        self.seal(io.BytesIO(data), out, sender=sender, recipients=recipients,
                  classification=classification, policy=policy, letter=letter, armor=armor,
                  copy_to_sender=copy_to_sender, name=name, operator=operator, timestamp=timestamp)
        return out.getvalue()

    def open_sealed(
        self, src: PathLike | BinaryIO, *, opener: str, policy: PolicyGate,
        output: PathLike | BinaryIO | None = None, output_dir: PathLike | None = None,
        write_document: bool = True, operator: str | None = None,
    ) -> OpenResult:
        """Decrypt and verify a sealed document (see :func:`sandi.documents.open_sealed`);
        ``output`` may be a path or a binary stream (written only after every check)."""
        from sandi.audit.events import acting_operator
        from sandi.documents import open_sealed

        with acting_operator(operator):
            return open_sealed(src, workspace=self.workspace, opener=opener, policy=policy,
                               output=output, output_dir=output_dir, write_document=write_document)

    def open_bytes(
        self, data: bytes, *, opener: str, policy: PolicyGate, operator: str | None = None,
    ) -> OpenedDocument:
        """Open a sealed document held in memory; the content is returned only after every
        check passed (a failure raises and returns nothing)."""
        out = io.BytesIO()
        result = self.open_sealed(io.BytesIO(data), opener=opener, policy=policy, output=out,
                                  operator=operator)
        return OpenedDocument(content=out.getvalue(), result=result)

    def sign(
        self, src: PathLike | BinaryIO, *, signer: str, classification: str | None = None,
        letter: Mapping[str, object] | None = None, signature_path: PathLike | None = None,
        name: str | None = None, operator: str | None = None, timestamp: bool | None = None,
    ) -> SignResult:
        """Sign ``src``; the signature text is in the result (and at ``signature_path``);
        ``timestamp`` as for :meth:`seal`."""
        from sandi.audit.events import acting_operator
        from sandi.documents import sign

        with acting_operator(operator):
            return sign(src, workspace=self.workspace, signer_code=signer, classification=classification,
                        letter=letter, urgencies=self.home.load_config().urgencies,
                        signature_path=signature_path, name=name, timestamp=timestamp)

    def verify(self, src: PathLike | BinaryIO, signature: str | bytes | os.PathLike[str],
               *, operator: str | None = None) -> VerifyResult:
        """Verify a detached signature: its text (``str``/``bytes``) or a ``Path`` to it."""
        from sandi.audit.events import acting_operator
        from sandi.documents import verify

        with acting_operator(operator):
            return verify(src, signature, workspace=self.workspace)

    # -- the authority -----------------------------------------------------------------

    @property
    def authority(self) -> AuthorityOperations:
        """Registry operations (authority homes only); imports SQLAlchemy on first use."""
        if self._authority is None:
            self._authority = AuthorityOperations(self)
        return self._authority


class AuthorityOperations:
    """Agencies, keys, policy and directory of an authority home."""

    def __init__(self, toolkit: Toolkit) -> None:
        from sandi.keystore import open_keystore
        from sandi.registry import Registry

        self._tk = toolkit
        self.home = toolkit.home
        self.registry: Registry = Registry(self.home.database_url())
        self.registry.require_current()
        self.keystore: KeyStore = open_keystore(self.home, toolkit._passphrase)
        self._issuer: Issuer | None = None

    @property
    def issuer(self) -> Issuer:
        if self._issuer is None:
            from sandi.authority.issuance import load_issuer

            self._issuer = load_issuer(self.home, self.keystore)
        return self._issuer

    def _published(self, result: T) -> T:
        self.publish_directory()
        return result

    def add_agency(
        self, code: str, name: str, *, kind: str = "agency", parent: str | None = None
    ) -> AgencyInfo:
        from sandi.authority.agencies import add_agency

        return self._published(add_agency(self.registry, code, name, kind=kind, parent=parent))

    def issue_keys(self, code: str) -> IssueResult:
        from sandi.authority.issuance import issue_keys

        return self._published(issue_keys(self.registry, self.keystore, self.issuer, code))

    def revoke(self, target: str, reason: str) -> list[Revoked]:
        from sandi.authority.revocation import revoke

        return self._published(revoke(self.registry, target, reason))

    def apply_policy(self, path: PathLike) -> Any:
        from sandi.audit.events import current_operator
        from sandi.policy.store import apply_policy

        source = Path(path).read_bytes()
        with self.registry.transaction() as session:
            record = apply_policy(session, source, self.issuer.key, current_operator(),
                                  source_name=str(path))
        return self._published(record)

    def publish_directory(
        self, *, output: PathLike | None = None, days: int | None = None
    ) -> DirectorySnapshot:
        from sandi.authority.pdfroot import pdf_issuer_if_any
        from sandi.directory.publish import republish

        snapshot = republish(self.home, self.registry, self.issuer,
                             pdf_issuer=pdf_issuer_if_any(self.home, self.registry, self.keystore),
                             output=None if output is None else Path(output),
                             validity=None if days is None else timedelta(days=days))
        self._tk.refresh()
        return snapshot
