"""The ``sandi-directory/v2`` encoding: a signed header, Merkle-tree leaves under it
(``docs/format.md`` §4.A, ADR 0015).

This module works on plain JSON values (the model is :mod:`sandi.directory.snapshot`) and
checks structure and hashes only; whether the header's signature is the trusted root's is
:func:`sandi.directory.snapshot.verify_header`.

Invariants:

* the header's bytes are the canonical JSON of their own value (a reader refuses any
  other spelling), so the signed bytes and the parsed header cannot disagree;
* every hash is over the canonical JSON of a parsed value (:func:`canonical`), never over
  the bytes as they stood in a file;
* :func:`check_body` accepts agencies, keys, policies and side members only if each
  hashes to what the header says (counts and tree heads included), and the key tree is
  recomputed from the agencies, never taken from the file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from json.encoder import encode_basestring as _json_string  # ensure_ascii=False's string form
from typing import Any

from sandi.errors import FormatError, VerificationError
from sandi.formats import merkle
from sandi.formats.bounded import load_json
from sandi.i18n import Message, _

FORMAT = "sandi-directory/v2"
SIGNING_CONTEXT = b"sandi-directory/v2\n"
HEADER_ANCHOR_FORMAT = "sandi-directory-header/v2"
DELTA_FORMAT = "sandi-directory-delta/v2"
#: a header carries the root certificate, the policy digests and a checkpoint: kilobytes
MAX_HEADER_BYTES = 1024 * 1024
HEADER_KEYS = frozenset({"format", "version", "issued_at", "expires_at", "province", "root_certificate",
                         "agencies", "keys", "policies", "members", "audit_checkpoint"})
ENVELOPE_KEYS = frozenset({"format", "header", "signature", "agencies", "policies", "members"})


def canonical(value: Any) -> bytes:
    """The canonical JSON of ``value``: sorted keys, no whitespace, UTF-8 as itself."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class TreeHead:
    count: int
    root: bytes

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "root": self.root.hex()}


@dataclass(frozen=True)
class PolicyDigest:
    policy_id: str
    version: int
    sha256: str
    compiled_sha256: str | None

    def to_json(self) -> dict[str, Any]:
        return {"policy_id": self.policy_id, "version": self.version, "sha256": self.sha256,
                "compiled_sha256": self.compiled_sha256}


@dataclass(frozen=True)
class Header:
    """A parsed, well-formed header (not yet known to be the root's: see verify_header)."""

    raw: bytes
    version: int
    issued_at: datetime
    expires_at: datetime
    province: str
    root_certificate: str
    agencies: TreeHead
    keys: TreeHead
    policies: tuple[PolicyDigest, ...]
    members: Mapping[str, str]
    audit_checkpoint: Mapping[str, Any] | None

    @property
    def sha256(self) -> str:
        return sha256_hex(self.raw)


def _bad(reason: str) -> FormatError:
    return FormatError(_("directory: the header is not valid ({reason})").format(reason=reason))


def _hex(value: object, where: str, size: int = 32) -> str:
    if not isinstance(value, str) or len(value) != 2 * size or value.strip("0123456789abcdef"):
        raise _bad(where)
    return value


def _count(value: object, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _bad(where)
    return value


def _string(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise _bad(where)
    return value


def _time(value: object, where: str) -> datetime:
    text = _string(value, where)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _bad(where) from None
    if parsed.tzinfo is None:
        raise _bad(where)
    return parsed.astimezone(UTC)


def fmt_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _tree(value: object, where: str) -> TreeHead:
    if not isinstance(value, dict) or set(value) != {"count", "root"}:
        raise _bad(where)
    return TreeHead(_count(value["count"], where), bytes.fromhex(_hex(value["root"], where)))


def parse_header(raw: bytes) -> Header:
    """The header in ``raw``: canonical JSON with exactly the fields of format.md §4.A."""
    if len(raw) > MAX_HEADER_BYTES:
        raise _bad("size")
    obj = load_json(raw, max_bytes=MAX_HEADER_BYTES, error=lambda reason: FormatError(
        Message("directory: the header is not valid ({reason})", reason=reason)))
    if not isinstance(obj, dict) or obj.get("format") != FORMAT or set(obj) != HEADER_KEYS:
        raise _bad("fields")
    if canonical(obj) != raw:
        raise _bad("not canonical JSON")
    version = obj["version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _bad("version")
    policies = obj["policies"]
    if not isinstance(policies, list):
        raise _bad("policies")
    digests = []
    for item in policies:
        if not isinstance(item, dict) or set(item) != {"policy_id", "version", "sha256", "compiled_sha256"}:
            raise _bad("policies")
        compiled = item["compiled_sha256"]
        digests.append(PolicyDigest(
            policy_id=_string(item["policy_id"], "policies"),
            version=_count(item["version"], "policies"),
            sha256=_hex(item["sha256"], "policies"),
            compiled_sha256=None if compiled is None else _hex(compiled, "policies"),
        ))
    if [(d.policy_id, d.version) for d in digests] != sorted({(d.policy_id, d.version) for d in digests}):
        raise _bad("policies order")
    members = obj["members"]
    if not isinstance(members, dict):
        raise _bad("members")
    checkpoint = obj["audit_checkpoint"]
    if checkpoint is not None and not isinstance(checkpoint, dict):
        raise _bad("audit_checkpoint")
    return Header(
        raw=raw,
        version=version,
        issued_at=_time(obj["issued_at"], "issued_at"),
        expires_at=_time(obj["expires_at"], "expires_at"),
        province=_string(obj["province"], "province"),
        root_certificate=_string(obj["root_certificate"], "root_certificate"),
        agencies=_tree(obj["agencies"], "agencies"),
        keys=_tree(obj["keys"], "keys"),
        policies=tuple(digests),
        members={_string(k, "members"): _hex(v, "members") for k, v in members.items()},
        audit_checkpoint=checkpoint,
    )


# -- leaves ------------------------------------------------------------------------------


def agency_leaves(agencies: Sequence[Mapping[str, Any]]) -> list[bytes]:
    """The canonical leaf of each agency entry; the entries must be sorted by unique code."""
    codes = [code for a in agencies if isinstance(code := a.get("code"), str)]
    if len(codes) != len(agencies):
        raise FormatError(_("directory: every agency needs a code"))
    if any(a >= b for a, b in pairwise(codes)):
        raise FormatError(_("directory: the agencies are not sorted by code, or a code appears twice"))
    return [canonical(a) for a in agencies]


def key_pairs(agencies: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """Every ``(key_fingerprint, code)`` the agencies' certificates carry (their own and
    their officials'), sorted, once each."""
    pairs: set[tuple[str, str]] = set()
    for agency in agencies:
        certificates = agency.get("certificates", [])
        officials = agency.get("officials", [])
        if not isinstance(certificates, list) or not isinstance(officials, list):
            raise FormatError(_("directory: {where}.certificates must be a list").format(
                where=agency.get("code")))
        for official in officials:
            personal = official.get("certificates", []) if isinstance(official, dict) else None
            if not isinstance(personal, list):
                raise FormatError(_("directory: {where}.certificates must be a list").format(
                    where=agency.get("code")))
            certificates = certificates + personal
        for cert in certificates:
            fingerprint = cert.get("key_fingerprint") if isinstance(cert, dict) else None
            if not isinstance(fingerprint, str):
                raise FormatError(_("directory: {where}.key_fingerprint must be a string").format(
                    where=agency.get("code")))
            pairs.add((fingerprint, str(agency["code"])))
    return sorted(pairs)


def key_leaf(key_fingerprint: str, code: str) -> bytes:
    """``canonical({"code": code, "key_fingerprint": key_fingerprint})``, spelled out: an
    import makes one per certificate, and this is several times faster than json.dumps."""
    return ('{"code":' + _json_string(code) + ',"key_fingerprint":' + _json_string(key_fingerprint)
            + "}").encode("utf-8")


def split_policy(entry: Mapping[str, Any]) -> tuple[bytes, bytes | None]:
    """A policy entry's canonical JSON without ``compiled``, and its compiled form's."""
    rest = {k: v for k, v in entry.items() if k != "compiled"}
    compiled = entry.get("compiled")
    return canonical(rest), None if compiled is None else canonical(compiled)


def policy_digest(entry: Mapping[str, Any]) -> PolicyDigest:
    source, compiled = split_policy(entry)
    policy_id, version = entry.get("policy_id"), entry.get("version")
    if not isinstance(policy_id, str) or not isinstance(version, int) or isinstance(version, bool):
        raise FormatError(_("directory: a policy entry has no policy_id or version"))
    return PolicyDigest(policy_id, version, sha256_hex(source),
                        None if compiled is None else sha256_hex(compiled))


def tree_head(leaves: Sequence[bytes]) -> tuple[TreeHead, list[list[bytes]]]:
    tree = merkle.levels([merkle.leaf_hash(leaf) for leaf in leaves])
    return TreeHead(len(leaves), tree[-1][0]), tree


# -- writing -----------------------------------------------------------------------------


def header_bytes(
    *, version: int, issued_at: datetime, expires_at: datetime, province: str, root_certificate: str,
    agencies: Sequence[Mapping[str, Any]], policies: Sequence[Mapping[str, Any]],
    members: Mapping[str, Any], audit_checkpoint: Mapping[str, Any] | None,
) -> bytes:
    """The header over ``agencies`` (sorted by code), ``policies`` and ``members``."""
    agencies_head, _tree_a = tree_head(agency_leaves(agencies))
    keys_head, _tree_k = tree_head([key_leaf(fp, code) for fp, code in key_pairs(agencies)])
    return header_from_heads(version=version, issued_at=issued_at, expires_at=expires_at, province=province,
                             root_certificate=root_certificate, agencies_head=agencies_head,
                             keys_head=keys_head, policies=policies, members=members,
                             audit_checkpoint=audit_checkpoint)


def header_from_heads(
    *, version: int, issued_at: datetime, expires_at: datetime, province: str, root_certificate: str,
    agencies_head: TreeHead, keys_head: TreeHead, policies: Sequence[Mapping[str, Any]],
    members: Mapping[str, Any], audit_checkpoint: Mapping[str, Any] | None,
) -> bytes:
    """The header given the two tree heads (the authority keeps its leaves' hashes in the
    registry and computes the heads from them, sandi.directory.leaves)."""
    digests = sorted((policy_digest(p) for p in policies), key=lambda d: (d.policy_id, d.version))
    return canonical({
        "format": FORMAT,
        "version": version,
        "issued_at": fmt_time(issued_at),
        "expires_at": fmt_time(expires_at),
        "province": province,
        "root_certificate": root_certificate,
        "agencies": agencies_head.to_json(),
        "keys": keys_head.to_json(),
        "policies": [d.to_json() for d in digests],
        "members": {name: sha256_hex(canonical(value)) for name, value in members.items()},
        "audit_checkpoint": None if audit_checkpoint is None else dict(audit_checkpoint),
    })


def joined_envelope_bytes(header: bytes, signature: bytes, agency_leaves: Sequence[bytes],
                          policies: Sequence[Mapping[str, Any]], members: Mapping[str, Any]) -> bytes:
    """:func:`envelope_bytes` from the agencies' canonical leaves, joined as bytes (no
    agency is parsed or re-encoded: the canonical JSON of a list is its items' canonical
    JSON joined by commas, and ``agencies`` sorts first among the envelope's keys)."""
    ordered = sorted(policies, key=lambda p: (p["policy_id"], p["version"]))
    rest = canonical({
        "format": FORMAT,
        "header": base64.b64encode(header).decode("ascii"),
        "signature": base64.b64encode(signature).decode("ascii"),
        "policies": ordered,
        "members": dict(members),
    })
    return b'{"agencies":[' + b",".join(agency_leaves) + b"]," + rest[1:] + b"\n"


def joined_envelope_parts(header: bytes, signature: bytes, agency_leaves: Sequence[bytes],
                          policies: Sequence[Mapping[str, Any]], members: Mapping[str, Any]) -> list[bytes]:
    """:func:`joined_envelope_bytes` as the pieces to write one after another (the leaves
    are not copied into one 20 MB string first)."""
    ordered = sorted(policies, key=lambda p: (p["policy_id"], p["version"]))
    rest = canonical({
        "format": FORMAT,
        "header": base64.b64encode(header).decode("ascii"),
        "signature": base64.b64encode(signature).decode("ascii"),
        "policies": ordered,
        "members": dict(members),
    })
    parts = [b'{"agencies":[']
    for i, leaf in enumerate(agency_leaves):
        if i:
            parts.append(b",")
        parts.append(leaf)
    parts.extend((b"],", rest[1:], b"\n"))
    return parts


def envelope_bytes(header: bytes, signature: bytes, agencies: Sequence[Mapping[str, Any]],
                   policies: Sequence[Mapping[str, Any]], members: Mapping[str, Any]) -> bytes:
    """The whole ``directory.json``: canonical JSON and a newline."""
    ordered = sorted(policies, key=lambda p: (p["policy_id"], p["version"]))
    return canonical({
        "format": FORMAT,
        "header": base64.b64encode(header).decode("ascii"),
        "signature": base64.b64encode(signature).decode("ascii"),
        "agencies": list(agencies),
        "policies": ordered,
        "members": dict(members),
    }) + b"\n"


@dataclass(frozen=True)
class HeaderAnchor:
    """``directory.anchor-header.json``: the highest directory's header, and the SHA-256 of
    the ``directory.anchor.json`` it was written with (so an import need not parse that)."""

    header: bytes
    signature: bytes
    anchor_sha256: str

    def to_bytes(self) -> bytes:
        return canonical({"format": HEADER_ANCHOR_FORMAT,
                          "header": base64.b64encode(self.header).decode("ascii"),
                          "signature": base64.b64encode(self.signature).decode("ascii"),
                          "anchor_sha256": self.anchor_sha256}) + b"\n"


# -- reading -----------------------------------------------------------------------------


def b64(value: object, where: str) -> bytes:
    if not isinstance(value, str):
        raise FormatError(_("directory: {where} is not base64").format(where=where))
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise FormatError(_("directory: {where} is not base64").format(where=where)) from None
    if base64.b64encode(raw).decode("ascii") != value:
        raise FormatError(_("directory: {where} is not canonical base64").format(where=where))
    return raw


@dataclass(frozen=True)
class Envelope:
    """A v2 file's members, structure checked, nothing verified yet."""

    header: bytes
    signature: bytes
    agencies: list[dict[str, Any]]
    policies: list[dict[str, Any]]
    members: dict[str, Any]


def decode_envelope(obj: Mapping[str, Any]) -> Envelope:
    if set(obj) != ENVELOPE_KEYS:
        raise FormatError(_("directory: not a {format} file").format(format=FORMAT))
    agencies, policies, members = obj["agencies"], obj["policies"], obj["members"]
    if not isinstance(agencies, list) or not isinstance(policies, list):
        raise FormatError(_("directory: agencies and policies must be lists"))
    if not all(isinstance(a, dict) for a in agencies) or not all(isinstance(p, dict) for p in policies):
        raise FormatError(_("directory: agencies and policies must be lists"))
    if not isinstance(members, dict):
        raise FormatError(_("directory: not a {format} file").format(format=FORMAT))
    return Envelope(b64(obj["header"], "header"), b64(obj["signature"], "signature"),
                    agencies, policies, members)


def decode_header_anchor(data: bytes) -> HeaderAnchor:
    """A ``directory.anchor-header.json``, structure checked (the signature is not)."""
    obj = load_json(data, max_bytes=2 * MAX_HEADER_BYTES, error=lambda reason: FormatError(
        Message("directory: the header is not valid ({reason})", reason=reason)))
    if not isinstance(obj, dict) or obj.get("format") != HEADER_ANCHOR_FORMAT or set(obj) != {
        "format", "header", "signature", "anchor_sha256"
    }:
        raise _bad("format")
    return HeaderAnchor(b64(obj["header"], "header"), b64(obj["signature"], "signature"),
                        _hex(obj["anchor_sha256"], "anchor_sha256"))


@dataclass(frozen=True)
class CheckedBody:
    """Everything under a header, each piece hashed to what the header says."""

    agency_leaves: list[bytes]
    agency_tree: list[list[bytes]]
    key_pairs: list[tuple[str, str]]
    key_leaves: list[bytes]
    key_tree: list[list[bytes]]
    policy_blobs: list[tuple[PolicyDigest, bytes, bytes | None]]
    member_blobs: dict[str, bytes]


def _mismatch(what: str) -> VerificationError:
    messages = {
        "agencies": _("the directory's agencies do not match its signed header"),
        "keys": _("the directory's keys do not match its signed header"),
        "policies": _("the directory's policies do not match its signed header"),
        "side members": _("the directory's side members do not match its signed header"),
    }
    return VerificationError(
        messages[what], hint=_("the file was altered or not signed by the authority; get a fresh copy"))


def check_body(header: Header, envelope: Envelope) -> CheckedBody:
    """Check the agencies, keys, policies and members of ``envelope`` against ``header``."""
    leaves = agency_leaves(envelope.agencies)
    head, tree = tree_head(leaves)
    if head.count != header.agencies.count or not hmac.compare_digest(head.root, header.agencies.root):
        raise _mismatch("agencies")
    pairs = key_pairs(envelope.agencies)
    key_leaf_list = [key_leaf(fp, code) for fp, code in pairs]
    keys_head, keys_tree = tree_head(key_leaf_list)
    if keys_head.count != header.keys.count or not hmac.compare_digest(keys_head.root, header.keys.root):
        raise _mismatch("keys")
    if len(envelope.policies) != len(header.policies):
        raise _mismatch("policies")
    blobs = []
    for entry, expected in zip(envelope.policies, header.policies, strict=True):
        source, compiled = split_policy(entry)
        if policy_digest(entry) != expected:
            raise _mismatch("policies")
        blobs.append((expected, source, compiled))
    if set(envelope.members) != set(header.members):
        raise _mismatch("side members")
    member_blobs = {}
    for name, value in envelope.members.items():
        blob = canonical(value)
        if not hmac.compare_digest(sha256_hex(blob), header.members[name]):
            raise _mismatch("side members")
        member_blobs[name] = blob
    return CheckedBody(leaves, tree, pairs, key_leaf_list, keys_tree, blobs, member_blobs)
