"""Sealing: sign and encrypt a document to one or more agencies in one pass.

Invariants: every check (recipient count, agencies, certificates, policy, metadata
size) runs before the first byte is written, the count before any other; the document
is hashed while it is encrypted and the signature member is written last; a path
output appears only when complete. A list of more than 50 stanzas (or one that does
not fit in the trusted comment) goes to the ``sandi-recipients.json`` member, written
first, whose hash the comment carries; at most 50 stay inline, the format earlier
releases read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

from sandi.audit.events import JSONValue
from sandi.directory.trust import chains_to_root, encryption_certs, has_post_quantum_key
from sandi.documents.letter import prepare_letter
from sandi.documents.metadata import (
    MANIFEST_NAME,
    MAX_INLINE_RECIPIENTS,
    MAX_RECIPIENTS,
    MAX_TIMESTAMP_TEXT,
    KeyRef,
    ManifestRef,
    SealMetadata,
    encode_manifest,
    format_time,
    manifest_ref,
)
from sandi.documents.names import SIGNATURE_SUFFIX, document_name_problem
from sandi.documents.policygate import PolicyGate, post_quantum_missing
from sandi.documents.sources import ProgressCallback, ProgressSink, StreamOrPath, open_input, read_exactly
from sandi.documents.timestamps import VerifiedTimestamp, obtain_token, stamper_for
from sandi.documents.workspace import Workspace
from sandi.errors import CredentialError, NotFoundError, PolicyDenied, UsageError
from sandi.fsutil import AtomicOutput
from sandi.i18n import _
from sandi.policy.classification import level_words
from sandi.timefmt import today

#: audit details hold at most 16 KiB: the codes of a circular are listed up to this size,
#: the manifest's hash (which names the whole list) always
_AUDITED_CODES_BYTES = 12 * 1024

__all__ = ["MAX_RECIPIENTS", "SealResult", "seal"]


@dataclass(frozen=True)
class SealResult:
    metadata: SealMetadata
    output: Path | None
    timestamp: VerifiedTimestamp | None = None
    #: e.g. "no time-stamp (the server did not answer)": the seal is complete without it
    warnings: tuple[str, ...] = ()

    def summary(self) -> dict[str, Any]:
        out = {**self.metadata.summary(), "output": None if self.output is None else str(self.output)}
        if self.timestamp is not None:
            out["timestamp"] = self.timestamp.summary()
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out


def seal(
    src: StreamOrPath,
    dst: BinaryIO | Path,
    *,
    workspace: Workspace,
    sender: str,
    recipients: list[str],
    classification: str,
    policy: PolicyGate,
    letter: Mapping[str, object] | None = None,
    urgencies: Sequence[str] | None = None,
    name: str | None = None,
    size: int | None = None,
    armor: bool = False,
    copy_to_sender: bool = False,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    timestamp: bool | None = None,
) -> SealResult:
    """Seal ``src`` for ``recipients``; write the age file to ``dst`` (stream or path).

    The file is sealed to hybrid post-quantum keys when the policy requires it for the
    classification (refused if a party has none), or when every party has one;
    otherwise to X25519 keys. Never to both kinds at once.

    ``letter`` holds the letter fields (docs/format.md, section 3); its ``sifat`` must be
    one of ``urgencies`` (default Sangat Segera, Segera, Biasa) and its ``tanggal``
    defaults to today in the active zone (:mod:`sandi.timefmt`).

    ``timestamp``: True asks the authority's server for an RFC 3161 token and fails
    (nothing written to a path) without one; False never asks; None follows the home
    (:func:`sandi.documents.timestamps.stamper_for`) and carries on, with a warning in
    the result, when the server does not answer.
    """
    from sandi.formats.age import (
        DEFAULT_MAX_HEADER_SIZE,
        EncryptWriter,
        MLKEM768X25519Recipient,
        Recipient,
        X25519Recipient,
    )
    from sandi.formats.minisign import MAX_TRUSTED_COMMENT_BYTES, Prehasher, sign_digest
    from sandi.formats.ustar import MAX_LONG_NAME_BYTES, UstarWriter, sanitise_name

    ws = workspace
    now = ws.now()
    letter = prepare_letter(letter, today=today(now), urgencies=urgencies,
                            classification_names=level_words())
    targets = list(dict.fromkeys(recipients))
    if not targets:
        raise UsageError(_("name at least one recipient with --to"))
    if len(targets) + copy_to_sender > MAX_RECIPIENTS:
        raise UsageError(_("at most {max_recipients} recipients per sealed document").format(
            max_recipients=MAX_RECIPIENTS,
        ), hint=_("split the list and seal the document once per part"))

    signer, sender_cert = ws.signing_key(sender)
    stanza_refs: list[KeyRef] = []
    age_recipients: list[Recipient] = []
    parties = [(c, False) for c in targets] + ([(sender, True)] if copy_to_sender else [])
    required_pq = policy.requires_post_quantum(classification, now)
    lacking_pq = [c for c, _ in parties if not has_post_quantum_key(ws.snapshot, c, now)]
    post_quantum = required_pq or not lacking_pq
    if post_quantum and _post_quantum_header_size(len(parties)) > DEFAULT_MAX_HEADER_SIZE:
        # Checked before a single encapsulation: hybrid stanzas are about 1.6 KB each.
        raise UsageError(
            _("a post-quantum document can go to at most {count} recipients (its age header "
              "would be larger than {limit} bytes)").format(
                count=_max_post_quantum_recipients(), limit=DEFAULT_MAX_HEADER_SIZE),
            hint=_("split the list and seal the document once per part"),
        )
    for code, copy in parties:
        if code in lacking_pq and post_quantum:
            continue  # refused below, once the policy has judged the relations
        cert = encryption_certs(ws.snapshot, code, now, post_quantum=post_quantum)[0]
        if not chains_to_root(cert, ws.snapshot):
            raise CredentialError(_("the encryption certificate of {code} was not issued by this "
                                    "authority").format(code=code))
        age_recipients.append(MLKEM768X25519Recipient.from_public_bytes(cert.public_key_bytes())
                              if post_quantum else X25519Recipient.from_public_bytes(cert.public_key_bytes()))
        stanza_refs.append(KeyRef(code=code, key=cert.key_fingerprint, copy=copy))

    try:
        used_policy = policy.before_seal(sender, targets, classification, now)
        if required_pq and lacking_pq:
            raise post_quantum_missing(classification, lacking_pq)
    except PolicyDenied as exc:
        ws.record(sender, "policy.deny", _denied_subject(exc, targets), "denied",
                  {"class": classification, "reason": exc.source_message, "recipients_count": len(targets)})
        raise

    if isinstance(dst, Path) and not dst.parent.is_dir():
        raise NotFoundError(_("{parent}: no such folder").format(
            parent=dst.parent,
        ), hint=_("create it first, or choose another "
                                                                    "output"))
    stream, src_name, known_size, opened = open_input(src)
    try:
        size = known_size if size is None else size
        if size is None:
            raise UsageError(_("the document's size must be known before sealing"),
                             hint=_("seal a file, or pass its size"))
        limit = MAX_LONG_NAME_BYTES - len(SIGNATURE_SUFFIX)  # its .minisig member must fit too
        doc_name = sanitise_name(name or src_name or "document", max_bytes=MAX_LONG_NAME_BYTES)
        if len(doc_name.encode("utf-8")) > limit:
            # Never cut silently: the recipients would open a file under another name.
            raise UsageError(
                _("the document name is {length} bytes long; at most {limit} bytes fit "
                  "(255, the longest file name, minus '.minisig' for its signature)").format(
                    length=len(doc_name.encode("utf-8")), limit=limit),
                hint=_("give it a shorter name with --name"),
            )
        problem = document_name_problem(doc_name)
        if problem is not None:
            raise UsageError(
                _("the document cannot be sealed under the name {name}: {problem}").format(
                    name=repr(doc_name), problem=problem),
                hint=_("give it another name with --name, e.g. --name {suggestion}").format(
                    suggestion=_suggest(doc_name)),
            )

        listed_in: ManifestRef | None = None  # set below when the list goes to the manifest

        def metadata(header_sha256: str) -> SealMetadata:
            return SealMetadata(
                sender=KeyRef(code=sender, key=sender_cert.key_fingerprint, serial=sender_cert.serial),
                recipients=tuple(stanza_refs),
                manifest=listed_in,
                classification=classification,
                sealed_at=now,
                age_header_sha256=header_sha256,
                document_name=doc_name,
                document_size=size,
                policy_id=None if used_policy is None else used_policy[0],
                policy_version=None if used_policy is None else used_policy[1],
                letter=letter,
            )

        # The header hash has a fixed length, so the comment's size is known now.
        manifest: bytes | None = None
        if (len(stanza_refs) > MAX_INLINE_RECIPIENTS
                or len(metadata("0" * 64).to_comment().encode()) > MAX_TRUSTED_COMMENT_BYTES):
            manifest = encode_manifest(tuple(stanza_refs))
            listed_in = manifest_ref(manifest, len(stanza_refs))
            if doc_name == MANIFEST_NAME:
                raise UsageError(
                    _("a document sealed to many agencies cannot be named {name}: its recipient list "
                      "travels under that name").format(name=MANIFEST_NAME),
                    hint=_("give it another name with --name"),
                )
            if len(metadata("0" * 64).to_comment().encode()) > MAX_TRUSTED_COMMENT_BYTES:
                raise UsageError(_("the letter fields do not fit in one signature comment"),
                                 hint=_("shorten the letter fields (the copies list, for example)"))
        warnings: list[str] = []
        stamper = stamper_for(ws.home, ws.snapshot, timestamp, now)
        # Room for the largest token the metadata carries (its base64 length is fixed).
        stamped = replace(metadata("0" * 64), timestamp=bytes(MAX_TIMESTAMP_TEXT * 3 // 4))
        if stamper is not None and len(stamped.to_comment().encode()) > MAX_TRUSTED_COMMENT_BYTES:
            if stamper.required:
                raise UsageError(_("the letter fields and recipients leave no room for a time-stamp"),
                                 hint=_("shorten the letter fields or seal for fewer recipients"))
            warnings.append(_("no time-stamp (no room left in the signature comment); carrying on "
                              "without one"))
            stamper = None

        out = AtomicOutput(dst, overwrite=overwrite) if isinstance(dst, Path) else None
        try:
            sink: Any = out.file if out is not None else dst
            writer = EncryptWriter(sink, age_recipients, armor=armor)
            meta = metadata(hashlib.sha256(writer.header_bytes).hexdigest())
            mtime = int(meta.sealed_at.timestamp())
            tar = UstarWriter(writer)
            if manifest is not None:
                tar.add_member(MANIFEST_NAME, manifest, mtime)
            tar.begin_member(doc_name, size, mtime)
            hasher = Prehasher()
            sinks: list[Callable[[memoryview], object]] = [tar.write]
            if progress is not None:
                sinks.append(ProgressSink(size, progress))
            # The token's imprint: SHA-256 over the fresh header, then the document.
            imprint = hashlib.sha256(writer.header_bytes) if stamper is not None else None

            def digest_both(chunk: memoryview) -> None:
                hasher.update(chunk)
                if imprint is not None:
                    imprint.update(chunk)

            read_exactly(stream, size, sinks, background=digest_both)
            tar.end_member()
            verified: VerifiedTimestamp | None = None
            if stamper is not None and imprint is not None:
                got = obtain_token(stamper, imprint.digest(), ws.snapshot, claimed=now, now=ws.now(),
                                   warnings=warnings)
                if got is not None:
                    token, verified = got
                    meta = replace(meta, timestamp=token)
            signature = sign_digest(signer, hasher.digest(), meta.to_comment(),
                                    f"sandi sealed document from {sender}")
            tar.add_member(doc_name + SIGNATURE_SUFFIX, signature.to_bytes(), mtime)
            tar.finish()
            writer.close()
            ws.record(sender, "document.seal", doc_name, "ok", {
                **_audited_recipients(stanza_refs, listed_in),
                "class": classification,
                "size": size,
                "nomor": letter.get("nomor"),
                "policy": None if used_policy is None else f"{used_policy[0]} v{used_policy[1]}",
                "sealed_at": format_time(meta.sealed_at),
                **({"timestamp": format_time(verified.gen_time)} if verified is not None else {}),
            })
            if out is not None:
                out.commit()
        finally:
            if out is not None:
                out.discard()
    finally:
        if opened:
            stream.close()
    return SealResult(metadata=meta, output=dst if isinstance(dst, Path) else None, timestamp=verified,
                      warnings=tuple(warnings))


def _post_quantum_header_size(stanzas: int) -> int:
    """The exact size of an age header of ``stanzas`` hybrid stanzas (their size is fixed),
    formatted by the age codec itself: no encapsulation is made."""
    from sandi.formats.age import MLKEM768X25519_TYPE, Stanza
    from sandi.formats.age.b64 import encode as b64encode
    from sandi.formats.age.header import encode_header
    from sandi.formats.age.pq import ENC_SIZE

    probe = Stanza(MLKEM768X25519_TYPE, (b64encode(bytes(ENC_SIZE)).decode("ascii"),), bytes(32))
    return len(encode_header([probe] * stanzas, bytes(16)).header_bytes)


def _max_post_quantum_recipients() -> int:
    from sandi.formats.age import DEFAULT_MAX_HEADER_SIZE

    one = _post_quantum_header_size(1)
    per_stanza = _post_quantum_header_size(2) - one
    return (DEFAULT_MAX_HEADER_SIZE - one) // per_stanza + 1


def _audited_recipients(refs: Sequence[KeyRef], listed_in: ManifestRef | None) -> dict[str, JSONValue]:
    """The audit entry's account of the recipients: the codes (while they fit in the entry),
    and for a circular the count and the manifest's hash, which names every one of them."""
    codes: list[JSONValue] = [r.code for r in refs]
    if listed_in is None:
        return {"recipients": codes}
    out: dict[str, JSONValue] = {"recipients_count": listed_in.count, "recipients_sha256": listed_in.sha256}
    if len(json.dumps(codes, separators=(",", ":"))) <= _AUDITED_CODES_BYTES:
        out["recipients"] = codes
    return out


def _denied_subject(exc: PolicyDenied, targets: Sequence[str]) -> str:
    """The audit subject of a refused seal: the recipient the policy denied when it says
    which and the whole list does not fit in a subject (a circular's), else the count."""
    from sandi.audit.entry import MAX_SUBJECT

    joined = ",".join(targets)
    if len(joined) <= MAX_SUBJECT:
        return joined
    denied = getattr(getattr(exc, "decision", None), "recipient", None)
    return denied if isinstance(denied, str) else f"{len(targets)} recipients"


def _suggest(name: str) -> str:
    """A visible name close to ``name``, for the hint (the sender still chooses)."""
    from sandi.formats.ustar import MAX_LONG_NAME_BYTES, sanitise_name

    candidate = name.strip(".")
    if candidate.endswith(SIGNATURE_SUFFIX):
        candidate = candidate[: -len(SIGNATURE_SUFFIX)] + "_minisig"
    if not candidate or document_name_problem(candidate) is not None:
        candidate = "_" + candidate  # a device name: _CON.txt
    candidate = sanitise_name(candidate, max_bytes=MAX_LONG_NAME_BYTES - len(SIGNATURE_SUFFIX))
    return candidate if document_name_problem(candidate) is None else "document"
