"""The signed metadata of sealed documents and detached signatures.

It travels as a minisign trusted comment: ``sandi-seal/v1 {json}`` or
``sandi-sign/v1 {json}``, compact JSON with sorted keys and ASCII only (see
docs/format.md, section 3). Parsing is strict: unknown keys, wrong types or a
different prefix are a :class:`VerificationError` (the comment is authenticated, so a
malformed one means a foreign or broken producer, never something to guess about).

A circular's recipient list does not fit in a trusted comment: it travels as the
archive member ``sandi-recipients.json`` (the *manifest*), and the comment carries its
entry count and SHA-256 instead (``recipients_manifest``). :meth:`SealMetadata.from_comment`
compares that hash (in constant time) before it parses a byte of the manifest, so the
list a :class:`SealMetadata` holds is always the one the comment names; whether the
comment itself is the sender's is the signature check's job, as for inline lists.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sandi.documents.letter import parse_letter
from sandi.errors import VerificationError
from sandi.formats.bounded import load_json
from sandi.formats.minisign import MAX_TRUSTED_COMMENT_BYTES
from sandi.i18n import Message, _
from sandi.timefmt import iso_time

SEAL_PREFIX = "sandi-seal/v1 "
SIGN_PREFIX = "sandi-sign/v1 "
#: the metadata is a minisign trusted comment, which is never longer than this
MAX_METADATA_BYTES = MAX_TRUSTED_COMMENT_BYTES
#: at most this many recipient stanzas per sealed document, the sender's copy included:
#: every opener pays an X25519 exchange per stanza and key (docs/format.md, 3.1.2)
MAX_RECIPIENTS = 2000
#: up to this many stanzas the list stays inline in the comment (the format earlier
#: releases read); more go to the manifest
MAX_INLINE_RECIPIENTS = 50
MANIFEST_NAME = "sandi-recipients.json"
MANIFEST_FORMAT = "sandi-recipients/v1"
#: 2,000 entries of 64-character codes with the copy flag take about 350 KB
MAX_MANIFEST_BYTES = 512 * 1024
#: the ``timestamp`` field: base64 of at most 1,024 DER bytes
MAX_TIMESTAMP_TEXT = 1368
_CODE = re.compile(r"^[A-Z][A-Z0-9-]{0,63}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_NIP = re.compile(r"^[0-9]{18}$")


def format_time(value: datetime) -> str:
    # Microseconds: the sealing time is compared with when policy versions were applied.
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_time(value: object) -> datetime:
    if not isinstance(value, str) or not value.endswith("Z"):
        raise VerificationError(_("malformed signed metadata (time)"))
    try:
        return datetime.fromisoformat(value[:-1] + "+00:00")
    except ValueError:
        raise VerificationError(_("malformed signed metadata (time)")) from None


@dataclass(frozen=True)
class KeyRef:
    code: str
    key: str  # SHA-256 hex of the raw public key
    serial: str | None = None
    copy: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "key": self.key}
        if self.serial is not None:
            out["serial"] = self.serial
        if self.copy:
            out["copy"] = True
        return out

    @classmethod
    def from_json(cls, obj: object, *, with_serial: bool) -> KeyRef:
        allowed = {"code", "key", "serial"} if with_serial else {"code", "key", "copy"}
        if not isinstance(obj, dict) or not set(obj) <= allowed or not {"code", "key"} <= set(obj):
            raise VerificationError(_("malformed signed metadata (key reference)"))
        code, key = obj["code"], obj["key"]
        if not (isinstance(code, str) and _CODE.match(code) and isinstance(key, str) and _HEX64.match(key)):
            raise VerificationError(_("malformed signed metadata (key reference)"))
        serial = obj.get("serial")
        if with_serial and not isinstance(serial, str):
            raise VerificationError(_("malformed signed metadata (serial)"))
        copy = obj.get("copy", False)
        if not isinstance(copy, bool):
            raise VerificationError(_("malformed signed metadata (copy)"))
        return cls(code=code, key=key, serial=serial, copy=copy)


class RecipientListError(VerificationError):
    """The manifest is missing, unnamed by the signature, changed, or malformed."""


@dataclass(frozen=True)
class ManifestRef:
    """What the trusted comment says of the manifest: its entry count and SHA-256."""

    count: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "sha256": self.sha256}


def encode_manifest(recipients: tuple[KeyRef, ...]) -> bytes:
    """The ``sandi-recipients.json`` member: one line of compact JSON and a newline."""
    return (_compact({"format": MANIFEST_FORMAT, "recipients": [r.to_json() for r in recipients]})
            + "\n").encode("ascii")


def manifest_ref(manifest: bytes, count: int) -> ManifestRef:
    return ManifestRef(count=count, sha256=hashlib.sha256(manifest).hexdigest())


def _manifest_malformed(reason: str) -> RecipientListError:
    return RecipientListError(Message("malformed recipient list ({reason})", reason=reason))


def _manifest_recipients(ref: ManifestRef, manifest: bytes | None) -> tuple[KeyRef, ...]:
    """The list the manifest holds, once its bytes are the ones the comment names."""
    if manifest is None:
        raise RecipientListError(
            _("the signature names a recipient list ({name}) that the document does not hold").format(
                name=MANIFEST_NAME),
            hint=_("the file was damaged or changed after sealing: do not trust it"),
        )
    if len(manifest) > MAX_MANIFEST_BYTES:
        raise _manifest_malformed("size")
    if not hmac.compare_digest(hashlib.sha256(manifest).hexdigest(), ref.sha256):
        raise RecipientListError(
            _("the recipient list ({name}) is not the one the sender signed").format(name=MANIFEST_NAME),
            hint=_("the file was changed after sealing: do not trust it"),
        )
    obj = load_json(manifest, max_bytes=MAX_MANIFEST_BYTES, error=_manifest_malformed)
    if not isinstance(obj, dict) or set(obj) != {"format", "recipients"} or obj["format"] != MANIFEST_FORMAT:
        raise _manifest_malformed("fields")
    entries = obj["recipients"]
    if not isinstance(entries, list) or len(entries) != ref.count:
        raise _manifest_malformed("count")
    return tuple(KeyRef.from_json(r, with_serial=False) for r in entries)


@dataclass(frozen=True)
class SealMetadata:
    """What the sender signed about a sealed document."""

    sender: KeyRef
    recipients: tuple[KeyRef, ...]
    classification: str
    sealed_at: datetime
    age_header_sha256: str
    document_name: str
    document_size: int
    policy_id: str | None = None
    policy_version: int | None = None
    letter: dict[str, Any] = field(default_factory=dict)
    #: set when the list travels in the manifest member (a circular), not in the comment
    manifest: ManifestRef | None = None
    #: an RFC 3161 token (DER) over SHA-256(age header || document), optional
    timestamp: bytes | None = None

    def to_json(self) -> dict[str, Any]:
        listed: dict[str, Any] = (
            {"recipients": [r.to_json() for r in self.recipients]} if self.manifest is None
            else {"recipients_manifest": self.manifest.to_json()}
        )
        out: dict[str, Any] = {
            "v": 1,
            "sender": self.sender.to_json(),
            **listed,
            "class": self.classification,
            "letter": dict(self.letter),
            "sealed_at": format_time(self.sealed_at),
            "policy": None if self.policy_id is None
            else {"id": self.policy_id, "version": self.policy_version},
            "age_header_sha256": self.age_header_sha256,
            "document": {"name": self.document_name, "size": self.document_size},
        }
        if self.timestamp is not None:
            out["timestamp"] = _token_text(self.timestamp)
        return out

    def to_comment(self) -> str:
        return SEAL_PREFIX + _compact(self.to_json())

    @classmethod
    def from_comment(cls, comment: str, manifest: bytes | None = None) -> SealMetadata:
        """Parse the trusted comment; ``manifest``: the bytes of the archive's
        ``sandi-recipients.json`` member, if it has one (raises
        :class:`RecipientListError` unless the comment names exactly those bytes)."""
        obj = _load(comment, SEAL_PREFIX)
        common = {"v", "sender", "class", "letter", "sealed_at", "policy", "age_header_sha256", "document"}
        fields = set(obj) - {"timestamp"}  # optional (docs/format.md 3.8)
        if fields not in (common | {"recipients"}, common | {"recipients_manifest"}) or obj["v"] != 1:
            raise VerificationError(_("malformed signed metadata (fields)"))
        ref: ManifestRef | None = None
        if "recipients_manifest" in obj:
            ref = _manifest_ref(obj["recipients_manifest"])
        elif manifest is not None:
            raise RecipientListError(
                _("the document holds a recipient list ({name}) that the signature does not name").format(
                    name=MANIFEST_NAME),
                hint=_("the file was changed after sealing: do not trust it"),
            )
        policy = obj["policy"]
        policy_id = policy_version = None
        if policy is not None:
            if (not isinstance(policy, dict) or set(policy) != {"id", "version"}
                    or not isinstance(policy["id"], str) or not isinstance(policy["version"], int)):
                raise VerificationError(_("malformed signed metadata (policy)"))
            policy_id, policy_version = policy["id"], policy["version"]
        header = obj["age_header_sha256"]
        if not isinstance(header, str) or not _HEX64.match(header):
            raise VerificationError(_("malformed signed metadata (header hash)"))
        name, size = _document(obj["document"])
        classification = obj["class"]
        if not isinstance(classification, str) or not classification:
            raise VerificationError(_("malformed signed metadata (class)"))
        sealed_at = parse_time(obj["sealed_at"])
        sender = KeyRef.from_json(obj["sender"], with_serial=True)
        letter = parse_letter(obj["letter"], signed_on=_latest_date(sealed_at))
        if ref is None:
            listed = obj["recipients"]
            if not isinstance(listed, list) or not listed:
                raise VerificationError(_("malformed signed metadata (recipients)"))
            recipients = tuple(KeyRef.from_json(r, with_serial=False) for r in listed)
        else:
            recipients = _manifest_recipients(ref, manifest)
        return cls(
            sender=sender,
            recipients=recipients,
            classification=classification,
            sealed_at=sealed_at,
            age_header_sha256=header,
            document_name=name,
            document_size=size,
            policy_id=policy_id,
            policy_version=policy_version,
            letter=letter,
            manifest=ref,
            timestamp=_token_bytes(obj),
        )

    def summary(self) -> dict[str, Any]:
        """The verified facts, for people and for --json (the time in the active zone)."""
        return {
            "sender": self.sender.code,
            "recipients": [r.code for r in self.recipients if not r.copy],
            "classification": self.classification,
            "sealed_at": iso_time(self.sealed_at),
            "document": self.document_name,
            "size": self.document_size,
            "policy": None if self.policy_id is None else f"{self.policy_id} v{self.policy_version}",
            **self.letter,
        }


@dataclass(frozen=True)
class SignMetadata:
    """What a signer signed about a document with a detached signature."""

    signer: KeyRef
    signed_at: datetime
    document_name: str
    document_size: int
    classification: str | None = None
    letter: dict[str, Any] = field(default_factory=dict)
    #: an RFC 3161 token (DER) over SHA-256(document), optional
    timestamp: bytes | None = None
    #: the NIP of the named official of ``signer.code`` whose personal key signed (ADR 0017)
    official: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "v": 1,
            "signer": self.signer.to_json(),
            "signed_at": format_time(self.signed_at),
            "document": {"name": self.document_name, "size": self.document_size},
            "letter": dict(self.letter),
        }
        if self.classification is not None:
            out["class"] = self.classification
        if self.timestamp is not None:
            out["timestamp"] = _token_text(self.timestamp)
        if self.official is not None:
            out["official"] = self.official
        return out

    def to_comment(self) -> str:
        return SIGN_PREFIX + _compact(self.to_json())

    @classmethod
    def from_comment(cls, comment: str) -> SignMetadata:
        obj = _load(comment, SIGN_PREFIX)
        required = {"v", "signer", "signed_at", "document", "letter"}
        if not required <= set(obj) <= required | {"class", "timestamp", "official"} or obj["v"] != 1:
            raise VerificationError(_("malformed signed metadata (fields)"))
        official = obj.get("official")
        if official is not None and not (isinstance(official, str) and _NIP.fullmatch(official)):
            raise VerificationError(_("malformed signed metadata (official)"))
        name, size = _document(obj["document"])
        classification = obj.get("class")
        if classification is not None and not isinstance(classification, str):
            raise VerificationError(_("malformed signed metadata (class)"))
        signed_at = parse_time(obj["signed_at"])
        return cls(
            signer=KeyRef.from_json(obj["signer"], with_serial=True),
            signed_at=signed_at,
            document_name=name,
            document_size=size,
            classification=classification,
            letter=parse_letter(obj["letter"], signed_on=_latest_date(signed_at)),
            timestamp=_token_bytes(obj),
            official=official,
        )


def _token_text(token: bytes) -> str:
    import base64

    return base64.b64encode(token).decode("ascii")


def _token_bytes(obj: dict[str, Any]) -> bytes | None:
    """The ``timestamp`` field's token (DER), checked only as base64 here; what it says
    is checked by sandi.documents.timestamps."""
    import base64
    import binascii

    text = obj.get("timestamp")
    if text is None:
        return None
    if not isinstance(text, str) or not text or len(text) > MAX_TIMESTAMP_TEXT:
        raise VerificationError(_("malformed signed metadata (timestamp)"))
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise VerificationError(_("malformed signed metadata (timestamp)")) from None


def _latest_date(at: datetime) -> date:
    """The latest calendar date anywhere at ``at`` (no zone is more than 14 hours ahead of
    UTC): a signer's "today", whatever their zone, is never later."""
    return (at + timedelta(hours=14)).date()


def _compact(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _malformed(reason: str) -> VerificationError:
    return VerificationError(Message("malformed signed metadata ({reason})", reason=reason))


def _load(comment: str, prefix: str) -> dict[str, Any]:
    if not comment.startswith(prefix):
        raise VerificationError(_("the signature's trusted comment is not sandi metadata"))
    obj = load_json(comment[len(prefix):], max_bytes=MAX_METADATA_BYTES, error=_malformed)
    if not isinstance(obj, dict):
        raise VerificationError(_("malformed signed metadata (JSON)"))
    return obj


def _manifest_ref(obj: object) -> ManifestRef:
    if (not isinstance(obj, dict) or set(obj) != {"count", "sha256"} or not isinstance(obj["count"], int)
            or isinstance(obj["count"], bool) or not 1 <= obj["count"] <= MAX_RECIPIENTS
            or not isinstance(obj["sha256"], str) or not _HEX64.match(obj["sha256"])):
        raise VerificationError(_("malformed signed metadata (recipient list)"))
    return ManifestRef(count=obj["count"], sha256=obj["sha256"])


def _document(obj: object) -> tuple[str, int]:
    if (not isinstance(obj, dict) or set(obj) != {"name", "size"} or not isinstance(obj["name"], str)
            or not isinstance(obj["size"], int) or isinstance(obj["size"], bool) or obj["size"] < 0):
        raise VerificationError(_("malformed signed metadata (document)"))
    return obj["name"], obj["size"]
