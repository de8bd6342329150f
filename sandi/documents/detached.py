"""Detached signatures: ``FILE.minisig`` in minisign's format with sandi metadata.

``verify`` accepts sandi's own signatures (trusted comment ``sandi-sign/v1 {json}``)
and plain minisign signatures made with an agency's exported key; either way the
signer must be an agency of the directory whose certificate was valid, and not
revoked, at the signing time.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sandi.directory.snapshot import AgencyEntry, CertEntry
from sandi.directory.trust import OfficialIdentity, SignerIdentity
from sandi.documents.letter import prepare_letter
from sandi.documents.metadata import KeyRef, SignMetadata
from sandi.documents.signers import verify_official_certificate, verify_signing_certificate
from sandi.documents.sources import StreamOrPath, open_input
from sandi.documents.timestamps import VerifiedTimestamp, obtain_token, stamper_for, verify_timestamp
from sandi.documents.workspace import Workspace
from sandi.errors import FormatError, NotFoundError, UsageError, VerificationError
from sandi.fsutil import AtomicOutput
from sandi.i18n import _
from sandi.policy.classification import level_words
from sandi.timefmt import iso_time, today

_TIMESTAMP = re.compile(r"(?:^|\t)timestamp:(\d{1,12})(?:\t|$)")


@dataclass(frozen=True)
class SignResult:
    metadata: SignMetadata
    signature_path: Path | None
    signature_text: str
    timestamp: VerifiedTimestamp | None = None
    #: e.g. "no time-stamp (the server did not answer)": the signature is complete without it
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class VerifyResult:
    signer: str
    signer_name: str
    serial: str
    signed_at: datetime | None
    trusted_comment: str
    metadata: SignMetadata | None
    timestamp: VerifiedTimestamp | None = None
    #: the named official who signed with their personal key: (NIP, nama, jabatan)
    official: tuple[str, str, str] | None = None

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "verified": True,
            "signer": self.signer,
            "signer_name": self.signer_name,
            "certificate": self.serial,
            "signed_at": None if self.signed_at is None else iso_time(self.signed_at),
            "format": "sandi-sign/v1" if self.metadata else "minisign",
        }
        if self.metadata is not None:
            out["document"] = self.metadata.document_name
            out["size"] = self.metadata.document_size
            if self.metadata.classification:
                out["classification"] = self.metadata.classification
            out.update(self.metadata.letter)
        else:
            out["trusted_comment"] = self.trusted_comment
        if self.timestamp is not None:
            out["timestamp"] = self.timestamp.summary()
        if self.official is not None:
            nip, name, title = self.official
            out["official"] = {"nip": nip, "name": name, "title": title}
        return out


def sign(
    src: StreamOrPath,
    *,
    workspace: Workspace,
    signer_code: str,
    classification: str | None = None,
    letter: Mapping[str, object] | None = None,
    urgencies: Sequence[str] | None = None,
    signature_path: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    name: str | None = None,
    timestamp: bool | None = None,
    official: str | None = None,
) -> SignResult:
    """Sign ``src`` as ``signer_code``; write ``signature_path`` if given (atomically).

    ``name`` is the document name the signature's metadata states (default: the file's
    name; needed for a stream that has none). The signature text is always in the result.
    ``timestamp``: as for :func:`sandi.documents.seal.seal` (the token covers SHA-256 of
    the document). ``official``: the NIP of a named official of ``signer_code`` who signs
    with their personal key (ADR 0017); the metadata then names them.
    """
    signature_path = None if signature_path is None else Path(signature_path)
    from sandi.formats.minisign import sign_digest

    ws = workspace
    if classification is not None and classification not in ("B", "T", "R", "SR"):
        raise UsageError(_("unknown classification {classification!r}").format(
            classification=classification,
        ), hint=_("use B, T, R or SR"))
    now = ws.now()
    letter = prepare_letter(letter, today=today(now), urgencies=urgencies,
                            classification_names=level_words())
    if official is None:
        key, cert = ws.signing_key(signer_code)
    else:
        key, cert, _entry = ws.official_signing_key(signer_code, official)
    stamper = stamper_for(ws.home, ws.snapshot, timestamp, now)
    stream, src_name, _unused, opened = open_input(src)
    doc_name = name or src_name
    try:
        doc_digest, doc_sha256, size = _digest(stream)
    finally:
        if opened:
            stream.close()
    warnings: list[str] = []
    got = None if stamper is None else obtain_token(stamper, doc_sha256, ws.snapshot, claimed=now,
                                                    now=ws.now(), warnings=warnings)
    meta = SignMetadata(
        signer=KeyRef(code=signer_code, key=cert.key_fingerprint, serial=cert.serial),
        signed_at=now,
        document_name=doc_name or "document",
        document_size=size,
        classification=classification,
        letter=letter,
        timestamp=None if got is None else got[0],
        official=official,
    )
    from sandi.formats.minisign import MAX_TRUSTED_COMMENT_BYTES

    if got is not None and len(meta.to_comment().encode()) > MAX_TRUSTED_COMMENT_BYTES:
        assert stamper is not None
        if stamper.required:
            raise UsageError(_("the letter fields leave no room for a time-stamp"),
                             hint=_("shorten the letter fields"))
        warnings.append(_("no time-stamp (no room left in the signature comment); carrying on "
                          "without one"))
        got = None
        meta = replace(meta, timestamp=None)
    untrusted = (f"signature from sandi agency {signer_code}" if official is None
                 else f"signature from sandi official {official} of {signer_code}")
    signature = sign_digest(key, doc_digest, meta.to_comment(), untrusted)
    text = signature.to_text()
    out = AtomicOutput(signature_path, overwrite=overwrite) if signature_path is not None else None
    try:
        if out is not None:
            out.file.write(text.encode("utf-8"))
        ws.record(signer_code, "document.sign", meta.document_name, "ok",
                  {"size": size, "class": classification, "nomor": letter.get("nomor"),
                   **({"official": official} if official is not None else {}),
                   **({"timestamp": iso_time(got[1].gen_time)} if got is not None else {})})
        if out is not None:
            out.commit()
    finally:
        if out is not None:
            out.discard()
    return SignResult(metadata=meta, signature_path=signature_path, signature_text=text,
                      timestamp=None if got is None else got[1], warnings=tuple(warnings))


def _find_by_key_id(ws: Workspace, key_id: bytes) -> tuple[AgencyEntry, CertEntry]:
    from sandi.formats.minisign import derive_key_id

    for agency in ws.snapshot.agencies:
        for cert in agency.certificates:
            if cert.purpose == "signing" and derive_key_id(cert.public_key_bytes()) == key_id:
                return agency, cert
    if ws.snapshot.archive_head is not None:  # a retired key (ADR 0019)
        from sandi.directory.archive import required_archive

        archive = required_archive(ws.snapshot)
        for entries in archive.by_key.values() if archive is not None else ():
            for code, cert in entries:
                found = ws.snapshot.agency_or_none(code)
                if found is not None and cert.purpose == "signing" \
                        and derive_key_id(cert.public_key_bytes()) == key_id:
                    return found, cert
    raise VerificationError(
        _("the signing key is not in the directory"),
        hint=_("the signer may be unknown to this authority, or your directory is old"),
    )


def verify(
    src: StreamOrPath,
    signature: str | bytes | os.PathLike[str],
    *,
    workspace: Workspace,
) -> VerifyResult:
    """Verify a detached signature; raises VerificationError on any failure.

    ``signature`` is the signature itself (``str`` or ``bytes`` of a ``.minisig`` file)
    or a path to it (``pathlib.Path``/``os.PathLike``): a plain ``str`` is always taken
    as the signature text, never as a file name.
    """
    ws = workspace
    if isinstance(signature, os.PathLike):
        try:
            signature_text: str | bytes = Path(signature).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(_("no signature file {path}").format(path=signature)) from None
    else:
        signature_text = signature
        if isinstance(signature_text, str) and not signature_text.lstrip().startswith("untrusted comment:"):
            raise UsageError(
                _("the signature text does not start with 'untrusted comment:'"),
                hint=_("pass a signature file as a pathlib.Path, its contents as str or bytes"),
            )
    stream, name, _size, opened = open_input(src)
    try:
        try:
            return _verify(ws, stream, signature_text)
        except (VerificationError, FormatError) as exc:
            ws.record("-", "verify.fail", name or "<stream>", "failed",
                      {"reason": type(exc).__name__, "op": "verify"})
            raise
    finally:
        if opened:
            stream.close()


def _verify(ws: Workspace, stream: Any, signature_text: str | bytes) -> VerifyResult:
    from sandi.formats.minisign import MinisignPublicKey, MinisignSignature, verify_digest

    signature = MinisignSignature.from_text(signature_text)
    doc_digest, doc_sha256, doc_size = _digest(stream)

    def digest() -> bytes:
        return doc_digest

    comment = signature.trusted_comment
    if comment.startswith("sandi-sign/v1 "):
        meta = SignMetadata.from_comment(comment)
        person: tuple[str, str, str] | None = None
        if meta.official is None:
            identity: SignerIdentity | OfficialIdentity = verify_signing_certificate(
                ws.snapshot, meta.signer.code, meta.signer.key, meta.signed_at, meta.signer.serial,
                now=ws.now())
        else:
            identity = _official_identity(ws, meta, meta.signed_at)
            person = (identity.official.nip, identity.official.name, identity.official.title)
        public = MinisignPublicKey.from_raw(identity.certificate.public_key_bytes())
        verify_digest(public, signature, digest())
        stamped = None
        if meta.timestamp is not None:
            stamped = verify_timestamp(ws.snapshot, meta.timestamp, digest=doc_sha256, claimed=meta.signed_at,
                                       now=ws.now())
            # The time-stamped time, too, must be one at which the certificate could sign.
            if meta.official is None:
                verify_signing_certificate(ws.snapshot, meta.signer.code, meta.signer.key, stamped.gen_time,
                                           meta.signer.serial, now=ws.now())
            else:
                _official_identity(ws, meta, stamped.gen_time)
        result = VerifyResult(identity.agency.code, identity.agency.name, identity.certificate.serial,
                              meta.signed_at, comment, meta, stamped, person)
    else:
        agency, cert = _find_by_key_id(ws, signature.key_id)
        # Verify first: only then is the comment (and its timestamp) the signer's word.
        verify_digest(MinisignPublicKey.from_raw(cert.public_key_bytes()), signature, digest())
        match = _TIMESTAMP.search(comment)
        signed_at = datetime.fromtimestamp(int(match.group(1)), UTC) if match else ws.now()
        # No serial here: any certificate of this key that was valid at signed_at counts.
        identity = verify_signing_certificate(ws.snapshot, agency.code, cert.key_fingerprint, signed_at,
                                              now=ws.now())
        result = VerifyResult(agency.code, agency.name, identity.certificate.serial,
                              signed_at if match else None, comment, None)
    if result.metadata is not None and result.metadata.document_size != doc_size:
        raise VerificationError(_("the document's size differs from what was signed"))
    ws.record(result.signer, "document.verify", result.metadata.document_name if result.metadata else "-",
              "ok", {"signed_at": result.summary()["signed_at"],
                     **({"timestamp": iso_time(result.timestamp.gen_time)} if result.timestamp else {})})
    return result


def _official_identity(ws: Workspace, meta: SignMetadata, at: datetime) -> OfficialIdentity:
    """The official's personal certificate vouching for ``meta``'s signature made at ``at``:
    the key must be the named official's, of the named agency (ADR 0017)."""
    found = verify_official_certificate(ws.snapshot, meta.signer.key, at, meta.signer.serial, now=ws.now())
    if found.agency.code != meta.signer.code or found.official.nip != meta.official:
        raise VerificationError(_("the signing key does not belong to the named official"))
    return found


def _digest(stream: Any) -> tuple[bytes, bytes, int]:
    """(minisign's BLAKE2b-512 prehash, SHA-256 for a time-stamp, size) of the document."""
    import hashlib

    from sandi.formats.minisign import Prehasher

    hasher = Prehasher()
    sha256 = hashlib.sha256()
    size = 0
    while chunk := stream.read(1024 * 1024):
        hasher.update(chunk)
        sha256.update(chunk)
        size += len(chunk)
    return hasher.digest(), sha256.digest(), size
