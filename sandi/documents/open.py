"""Opening: decrypt, unpack, verify everything, and only then release the document.

Invariants: the document streams into a temporary file beside its final name while
it is hashed; it is renamed into place only after the age stream authenticated to
its end, the archive held exactly the two expected members, and the signature,
sender certificate, header binding, recipient list and policy all verified. Any
failure leaves no output and is recorded in the audit journal by its class only.

The policy is the opener's own check: it runs for every opener but the sender
itself, whatever the signed metadata says; a copy entry (``"copy": true``) may name
only the sender.

A circular carries its recipient list as the first member, ``sandi-recipients.json``
(the manifest): its size is checked at its ustar header before it is read, its
SHA-256 against the signed comment before it is parsed, and from then on its list is
checked exactly as an inline one (count, order and the opener's stanzas, copy entries).

A document sealed to a key of the opener's that was revoked (or outside its
certificate's validity) at the sealing time still opens, since the key is the
opener's own, but with a warning: a sender with an old directory encrypted it to a
key that someone else may hold.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from sandi.audit.events import JSONValue
from sandi.authority.validity import is_valid_for_opening
from sandi.directory.snapshot import DirectorySnapshot
from sandi.documents.metadata import (
    MANIFEST_NAME,
    MAX_MANIFEST_BYTES,
    KeyRef,
    RecipientListError,
    SealMetadata,
    format_time,
)
from sandi.documents.names import SIGNATURE_SUFFIX, document_name_problem
from sandi.documents.policygate import PolicyGate
from sandi.documents.signers import verify_signing_certificate
from sandi.documents.sources import ProgressCallback, ProgressSink, StreamOrPath, open_input, pump
from sandi.documents.timestamps import VerifiedTimestamp, verify_timestamp
from sandi.documents.workspace import Workspace
from sandi.errors import (
    AlreadyExistsError,
    DecryptionError,
    FormatError,
    NotFoundError,
    PolicyDenied,
    SandiError,
    UsageError,
    VerificationError,
)
from sandi.fsutil import AtomicOutput
from sandi.i18n import Message, _
from sandi.timefmt import iso_time

if TYPE_CHECKING:
    from sandi.formats.age import Identity, Stanza

DEFAULT_MAX_DOCUMENT_SIZE = 8 * 1024**3 - 1  # ustar's own limit
MAX_SIGNATURE_SIZE = 16 * 1024


@dataclass(frozen=True)
class OpenResult:
    metadata: SealMetadata
    output: Path | None
    opener: str
    warnings: tuple[str, ...] = ()
    #: the verified RFC 3161 time-stamp, when the document carries one
    timestamp: VerifiedTimestamp | None = None

    def summary(self) -> dict[str, Any]:
        out = {**self.metadata.summary(), "opened_by": self.opener,
               "output": None if self.output is None else str(self.output)}
        if self.timestamp is not None:
            out["timestamp"] = self.timestamp.summary()
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out


class _Discard:
    def write(self, data: bytes | memoryview) -> int:
        return len(data)


def open_sealed(
    src: StreamOrPath,
    *,
    workspace: Workspace,
    opener: str,
    policy: PolicyGate,
    output: str | os.PathLike[str] | BinaryIO | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    max_document_size: int = DEFAULT_MAX_DOCUMENT_SIZE,
    write_document: bool = True,
    progress: ProgressCallback | None = None,
) -> OpenResult:
    """Open a sealed document as ``opener``; write it to ``output`` or into ``output_dir``.

    ``output`` may be a path or a writable binary stream (standard output, a
    ``BytesIO``): a stream receives the document only after every check passed — until
    then it sits in an anonymous temporary file (no name on disk where the OS allows,
    removed when closed), so a failed check writes nothing to the stream.
    With ``write_document=False`` everything is verified and nothing is written
    (``sandi inspect --as``).
    """
    ws = workspace
    if output is not None and not isinstance(output, str | os.PathLike) and not hasattr(output, "write"):
        raise UsageError(_("output must be a path or a writable binary stream"))
    if isinstance(output, str | os.PathLike):
        output = Path(output)
    if output_dir is not None:
        output_dir = Path(output_dir)
    stream, src_name, _size, opened = open_input(src)
    try:
        return _open(ws, stream, opener, policy, output, output_dir, overwrite, max_document_size,
                     write_document, progress)
    except (VerificationError, FormatError, PolicyDenied) as exc:
        reason = _reason_class(exc)
        ws.record(opener, "verify.fail", src_name or "<stream>", "failed", {"reason": reason, "op": "open"})
        raise
    finally:
        if opened:
            stream.close()


def _reason_class(exc: SandiError) -> str:
    from sandi.formats.age import AgeError

    if isinstance(exc, AgeError):
        return f"age {exc.kind}"
    if isinstance(exc, PolicyDenied):
        return "policy"
    return type(exc).__name__


def _open(
    ws: Workspace,
    stream: BinaryIO,
    opener: str,
    policy: PolicyGate,
    output: Path | BinaryIO | None,
    output_dir: Path | None,
    overwrite: bool,
    max_document_size: int,
    write_document: bool,
    progress: ProgressCallback | None = None,
) -> OpenResult:
    from sandi.formats.age import AgeError, DecryptReader
    from sandi.formats.minisign import MinisignPublicKey, MinisignSignature, Prehasher, verify_digest
    from sandi.formats.ustar import UstarReader

    identities = ws.opening_identities(opener)
    try:
        reader = DecryptReader(stream, [identity for _, identity in identities])
    except AgeError as exc:
        if exc.kind == "no match":
            raise DecryptionError(
                _("this document is not encrypted to any key of {opener}").format(opener=opener),
                hint=_("open it as one of its recipients ('sandi inspect FILE' shows how many there are)"),
            ) from None
        raise
    header_sha256 = hashlib.sha256(reader.header_bytes).hexdigest()
    tar = UstarReader(reader, max_members=3, max_member_size=max(max_document_size, MAX_SIGNATURE_SIZE,
                                                                 MAX_MANIFEST_BYTES))

    document = tar.next_member()
    manifest: bytes | None = None
    if document is not None and document.name == MANIFEST_NAME:
        if document.size > MAX_MANIFEST_BYTES:
            raise FormatError(_("the recipient list is larger than the limit of {limit} bytes").format(
                limit=MAX_MANIFEST_BYTES))
        manifest = document.stream.read(document.size)
        document = tar.next_member()
    if document is None or document.name.endswith(SIGNATURE_SUFFIX) or document.name == MANIFEST_NAME:
        raise FormatError(_("a sealed document must start with the document member"))
    problem = document_name_problem(document.name)
    if problem is not None:
        raise FormatError(
            _("the document's name {name} is not allowed: {problem}").format(
                name=repr(document.name), problem=problem),
            hint=_("nothing was written; ask the sender to seal it again under another name "
                   "(sandi seal --name)"),
        )
    if document.size > max_document_size:
        raise FormatError(_("the document is larger than the limit of {max_document_size} bytes").format(
            max_document_size=max_document_size,
        ))

    out: AtomicOutput | None = None
    held: BinaryIO | None = None  # a stream output waits here until every check passed
    created: list[Path] = []
    if write_document and output is not None and not isinstance(output, Path):
        held = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    elif write_document:
        target = output if isinstance(output, Path) else (output_dir or Path.cwd()) / document.name
        created = _prepare_folder(target.parent, may_create=output is None and output_dir is not None)
        try:
            out = AtomicOutput(target, mode=0o600, overwrite=overwrite)
        except AlreadyExistsError as exc:
            _remove_empty(created)
            raise AlreadyExistsError(
                exc.message, hint=_("use -o to choose another name, or --force")
            ) from None
    committed = False
    try:
        sink: Any = out.file if out is not None else (held if held is not None else _Discard())
        hasher = Prehasher()
        # What a time-stamp token covers (sandi.documents.timestamps): known to be
        # needed only at the end, so always computed.
        imprint = hashlib.sha256(reader.header_bytes)

        def digest_both(chunk: memoryview) -> None:
            hasher.update(chunk)
            imprint.update(chunk)

        sinks: list[Callable[[memoryview], object]] = [sink.write]
        if progress is not None:
            sinks.append(ProgressSink(document.size, progress))
        pump(document.stream, sinks, background=digest_both, size_hint=document.size)

        signature_member = tar.next_member()
        if signature_member is None or signature_member.name != document.name + SIGNATURE_SUFFIX:
            raise FormatError(_("a sealed document's second member must be its .minisig signature"))
        if signature_member.size > MAX_SIGNATURE_SIZE:
            raise FormatError(_("the signature member is too large"))
        signature_text = signature_member.stream.read(signature_member.size)
        if tar.next_member() is not None:  # also drives the age stream to its authenticated end
            raise FormatError(_("a sealed document holds exactly two members (three with its recipient "
                                "list)"))

        signature = MinisignSignature.from_text(signature_text)
        try:
            meta = SealMetadata.from_comment(signature.trusted_comment, manifest)
        except RecipientListError:
            raise
        except VerificationError:
            raise VerificationError(_("the signature does not carry sandi seal metadata")) from None
        signer = verify_signing_certificate(ws.snapshot, meta.sender.code, meta.sender.key, meta.sealed_at,
                                            meta.sender.serial, now=ws.now())
        verify_digest(MinisignPublicKey.from_raw(signer.certificate.public_key_bytes()), signature,
                      hasher.digest())
        # From here on the metadata is the sender's own word.
        if meta.document_name != document.name or meta.document_size != document.size:
            raise VerificationError(_("the document's name or size differs from what was signed"))
        if not hmac.compare_digest(meta.age_header_sha256, header_sha256):
            raise VerificationError(
                _("the encryption header is not the one the sender signed (re-wrapped or forwarded)")
            )
        stamped: VerifiedTimestamp | None = None
        if meta.timestamp is not None:
            stamped = verify_timestamp(ws.snapshot, meta.timestamp, digest=imprint.digest(),
                                       claimed=meta.sealed_at, now=ws.now())
            # The time-stamped time, not only the claimed one, must fall within the
            # sender certificate's validity and before any revocation.
            verify_signing_certificate(ws.snapshot, meta.sender.code, meta.sender.key, stamped.gen_time,
                                       meta.sender.serial, now=ws.now())
        _check_copy_entries(meta)
        addressed = _check_recipient_stanzas(meta, reader.header.stanzas, identities, opener)
        if not addressed:
            raise VerificationError(_("the document is not addressed to {opener}").format(opener=opener))
        # Always, whatever the entries say: the opener's own check of sender -> opener.
        policy.after_open(meta, opener)
        policy.check_post_quantum(meta, reader.header.stanzas)
        warnings = _recipient_key_warnings(ws.snapshot, opener, {r.key for r in addressed}, meta)
        details: dict[str, JSONValue] = {
            "sender": meta.sender.code,
            "class": meta.classification,
            "nomor": meta.letter.get("nomor"),
            "sealed_at": format_time(meta.sealed_at),  # audit entries keep UTC
            "written": write_document,
        }
        if warnings:
            details["sealed_to_invalid_key"] = True
        if stamped is not None:
            details["timestamp"] = format_time(stamped.gen_time)
        ws.record(opener, "document.open", document.name, "ok", details)
        if out is not None:
            out.commit()
        if held is not None:
            assert output is not None and not isinstance(output, Path)
            held.seek(0)
            shutil.copyfileobj(held, output, 1024 * 1024)
            output.flush()
        committed = True
        return OpenResult(metadata=meta, output=out.path if out is not None else None, opener=opener,
                          warnings=warnings, timestamp=stamped)
    finally:
        if out is not None:
            out.discard()
        if held is not None:
            held.close()
        if not committed:
            _remove_empty(created)


def _check_copy_entries(meta: SealMetadata) -> None:
    """A copy entry (``"copy": true``) may name only the sender: it is the sender's own copy.

    The flag is the sender's word, so it may never stand for a real recipient, which the
    policy must allow like any other.
    """
    for entry in meta.recipients:
        if entry.copy and entry.code != meta.sender.code:
            raise VerificationError(
                _("the document marks {code} as the sender's copy, but the sender is {sender}").format(
                    code=entry.code, sender=meta.sender.code),
                hint=_("the sender's software is broken or was modified: do not trust the document"),
            )


def _check_recipient_stanzas(meta: SealMetadata, stanzas: Sequence[Stanza],
                             identities: Sequence[tuple[str, Identity]],
                             opener: str) -> list[KeyRef]:
    """The signed list has one entry per agency-key stanza (X25519, or hybrid post-quantum
    mlkem768x25519; never both, the age layer refuses mixed headers), and lists the
    opener's keys truly.

    Only the opener's own stanzas can be told apart (a stanza names no key): each one
    an opener's key unwraps must be listed, at its position, as that very key of the
    opener, and no other position may claim one of the opener's keys. Returns the
    opener's entries. The count is compared first, so the exchanges here are bounded
    by the signed list, which the trusted comment's size bounds.
    """
    from sandi.formats.age import MLKEM768X25519_TYPE
    from sandi.formats.age.keys import X25519_TYPE

    if len(stanzas) != len(meta.recipients):
        raise VerificationError(
            _("the signed recipient list does not match the encryption header: {entries} entries for "
              "{stanzas} recipient stanzas").format(entries=len(meta.recipients), stanzas=len(stanzas)),
            hint=_("the sender's software is broken or was modified: do not trust the document"),
        )
    if any(stanza.type not in (X25519_TYPE, MLKEM768X25519_TYPE) for stanza in stanzas):
        raise VerificationError(
            _("the encryption header holds a recipient stanza that is neither X25519 nor "
              "mlkem768x25519: a sealed document is encrypted to agency keys only"),
            hint=_("the sender's software is broken or was modified: do not trust the document"),
        )
    own_keys = {fp for fp, _identity in identities}
    addressed: list[KeyRef] = []
    for stanza, entry in zip(stanzas, meta.recipients, strict=True):
        opened_by = next((fp for fp, identity in identities if identity.unwrap([stanza]) is not None), None)
        if opened_by is None and not (entry.code == opener and entry.key in own_keys):
            continue
        if opened_by is None or entry.code != opener or entry.key != opened_by:
            raise VerificationError(
                _("the signed recipient list does not match the encryption header: it does not name "
                  "the key of {opener} where the header holds it").format(opener=opener),
                hint=_("the sender's software is broken or was modified: do not trust the document"),
            )
        addressed.append(entry)
    return addressed


def _recipient_key_warnings(snapshot: DirectorySnapshot, opener: str, keys: set[str],
                            meta: SealMetadata) -> tuple[str, ...]:
    """A warning when none of the opener's keys the document names was valid for it then."""
    agency = snapshot.agency_or_none(opener)
    certs = [cert for cert in (agency.certificates if agency is not None else ())
             if cert.key_fingerprint in keys]
    if any(is_valid_for_opening(cert, cert.revocation, meta.sealed_at) for cert in certs):
        return ()
    return (Message(
        "this document was sealed to a key of {opener} that was revoked or not valid at its sealing "
        "time ({time}): others may have been able to read it; tell the authority and the sender "
        "({sender}), whose directory may be out of date",
        opener=opener, time=iso_time(meta.sealed_at), sender=meta.sender.code,
    ),)


def _prepare_folder(folder: Path, *, may_create: bool) -> list[Path]:
    """Make sure the output folder exists; return the folders made here (outermost first).

    Only an ``output_dir`` that does not exist yet is created (``--output-dir ./masuk``);
    an ``-o`` path into a missing folder is the user's mistake, reported as such.
    """
    if folder.is_dir():
        return []
    if not may_create or folder.exists():
        raise NotFoundError(_("{folder}: no such folder").format(
            folder=folder,
        ), hint=_("create it first, or choose another output"))
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    missing.reverse()
    for path in missing:
        try:
            path.mkdir(mode=0o700)
        except OSError as exc:
            _remove_empty(missing[: missing.index(path)])
            raise UsageError(_("cannot create the folder {path}: {reason}").format(
                path=path,
                reason=exc.strerror,
            )) from None
    return missing


def _remove_empty(folders: list[Path]) -> None:
    """Undo :func:`_prepare_folder` after a failure: a refused document leaves nothing."""
    for path in reversed(folders):
        with contextlib.suppress(OSError):
            path.rmdir()
