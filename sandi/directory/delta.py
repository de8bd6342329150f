"""Applying a directory delta (``sandi-directory-delta/v2``, docs/format.md §4.A.2).

A delta carries a new signed header and the agency entries, policy entries and side
members that changed since a base version. Applied to the installed directory of exactly
that base, it yields the new version's full directory (``directory.json``, its index and
anchors), byte for byte what importing the full envelope would install.

Invariants:

* the delta's header is verified against the trusted root before anything else, and
  must be newer than its base; the base must be the home's anchor (the highest
  directory it has installed, by the SHA-256 of its signed header): a delta never
  applies to an older directory, so rollback protection is the anchor's, as for a full
  import; an expired header is refused (freeze) as for a full import;
* the installed data the delta builds on (the index) is trusted for nothing: the
  result must hash to the new header's agency and key tree heads, policy digests and
  member hashes, or nothing is written (:class:`DeltaNotApplicable`: fetch the full
  directory);
* everything is written under the home's directory lock, each file atomically.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

from sandi.directory import v2
from sandi.directory.snapshot import DirectorySnapshot, check_fresh_header, snapshot_from_v2, verify_header
from sandi.errors import EXIT_VERIFICATION, FormatError, SandiError
from sandi.formats.bounded import load_json
from sandi.fsutil import atomic_write
from sandi.home import Home
from sandi.i18n import N_, Message, _

#: a delta of a whole national directory still fits (it is never larger than the full file)
MAX_DELTA_BYTES = 128 * 1024 * 1024
DELTA_KEYS = frozenset({"format", "base", "header", "signature", "agencies", "policies", "members"})


class DeltaNotApplicable(SandiError):
    """The delta does not start from the installed directory, or applying it did not
    give what its header signs: the full directory is needed. Nothing was installed."""

    exit_code = EXIT_VERIFICATION  # like any directory that does not verify
    default_hint = N_("nothing was installed; import the full directory ('directory.json') instead")


@dataclass(frozen=True)
class Delta:
    base_version: int
    base_header_sha256: str
    header: bytes
    signature: bytes
    upsert: list[dict[str, Any]]
    remove: list[str]
    policies: list[dict[str, Any]]
    members: dict[str, Any]


def is_delta(data: bytes) -> bool:
    """Whether ``data`` names the delta format (a cheap byte search; :func:`parse_delta`
    decides)."""
    return b'"' + v2.DELTA_FORMAT.encode("ascii") + b'"' in data


def _bad(reason: str) -> FormatError:
    return FormatError(_("directory delta: {reason}").format(reason=reason))


def parse_delta(data: bytes) -> Delta:
    """The delta's structure, checked (nothing verified yet)."""
    if len(data) > MAX_DELTA_BYTES:
        raise _bad(_("larger than {limit} bytes").format(limit=MAX_DELTA_BYTES))
    obj = load_json(data, max_bytes=MAX_DELTA_BYTES, error=lambda reason: FormatError(
        Message("directory delta: the file is not valid ({reason})", reason=reason)))
    if not isinstance(obj, dict) or set(obj) != DELTA_KEYS or obj.get("format") != v2.DELTA_FORMAT:
        raise _bad(_("not a {format} file").format(format=v2.DELTA_FORMAT))
    base, agencies, policies, members = obj["base"], obj["agencies"], obj["policies"], obj["members"]
    if (not isinstance(base, dict) or set(base) != {"version", "header_sha256"}
            or not isinstance(base["version"], int) or isinstance(base["version"], bool)
            or not isinstance(base["header_sha256"], str) or len(base["header_sha256"]) != 64):
        raise _bad(_("the base is not a version and a header hash"))
    if not isinstance(agencies, dict) or set(agencies) != {"upsert", "remove"}:
        raise _bad(_("agencies must hold 'upsert' and 'remove'"))
    upsert, remove = agencies["upsert"], agencies["remove"]
    if (not isinstance(upsert, list) or not all(isinstance(a, dict) and isinstance(a.get("code"), str)
                                                for a in upsert)
            or not isinstance(remove, list) or not all(isinstance(c, str) for c in remove)):
        raise _bad(_("agencies must hold 'upsert' and 'remove'"))
    codes = [a["code"] for a in upsert]
    if any(a >= b for a, b in pairwise(codes)) or any(a >= b for a, b in pairwise(remove)) or (
            set(codes) & set(remove)):
        raise _bad(_("the agencies are not sorted by code, or a code appears twice"))
    if not isinstance(policies, list) or not all(isinstance(p, dict) for p in policies) or not isinstance(
            members, dict):
        raise _bad(_("policies must be a list and members an object"))
    try:
        header = base64.b64decode(obj["header"], validate=True)
        signature = base64.b64decode(obj["signature"], validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise _bad(_("the header or signature is not base64")) from None
    return Delta(base["version"], base["header_sha256"].lower(), header, signature, upsert, remove,
                 policies, members)


@dataclass(frozen=True)
class _Installed:
    agencies: dict[str, bytes]
    keys: list[tuple[str, str]]
    policies: dict[tuple[str, int], dict[str, Any]]
    members: dict[str, bytes]


def _read_installed(home: Home, base_header: bytes) -> _Installed:
    """What the installed index holds, if it is the index of the base header (read only;
    checked afterwards through the new header, never trusted as read)."""
    path = home.directory_index_path
    if not path.is_file():
        raise DeltaNotApplicable(_("this home has no installed directory index to apply a delta to"))
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            row = db.execute("SELECT header FROM header WHERE id = 1").fetchone()
            if row is None or bytes(row[0]) != base_header:
                raise DeltaNotApplicable(_("the installed directory index is not of the delta's base"))
            agencies = {str(code): bytes(leaf)
                        for code, leaf in db.execute("SELECT code, leaf FROM agencies")}
            keys = [(str(fp), str(code)) for fp, code in db.execute("SELECT key_fingerprint, code FROM keys")]
            policies: dict[tuple[str, int], dict[str, Any]] = {}
            for policy_id, version, entry, compiled in db.execute(
                    "SELECT policy_id, version, entry, compiled FROM policies"):
                value = json.loads(bytes(entry))
                if compiled is not None:
                    value["compiled"] = json.loads(bytes(compiled))
                policies[(str(policy_id), int(version))] = value
            members = {str(name): bytes(value)
                       for name, value in db.execute("SELECT name, value FROM members")}
        finally:
            db.close()
    except (sqlite3.Error, ValueError) as exc:
        raise DeltaNotApplicable(_("the installed directory index cannot be read ({reason})").format(
            reason=exc.__class__.__name__)) from None
    return _Installed(agencies, keys, policies, members)


def _mismatch(what: str) -> DeltaNotApplicable:
    return DeltaNotApplicable(_("applying the delta does not give what its header signs ({what})").format(
        what=what))


def apply_delta(home: Home, data: bytes, *, now: datetime | None = None,
                expected_envelope: bytes | None = None) -> DirectorySnapshot:
    """Apply the delta ``data`` to the home's installed directory and install the result.

    Raises :class:`DeltaNotApplicable` when the home's directory is not the delta's base
    or the result does not verify (nothing written: fetch or import the full directory),
    FormatError / VerificationError for a malformed delta or a header the root did not
    sign, and the usual expiry error for an expired one. ``expected_envelope`` (the
    authority installing its own publication) must equal the result byte for byte.
    """
    from sandi.directory.index import read_header_anchor
    from sandi.directory.local import _locked, _write_header_anchor, _write_index, trusted_fingerprint

    now = now or datetime.now(UTC)
    delta = parse_delta(data)
    fingerprint = trusted_fingerprint(home)
    header = verify_header(delta.header, delta.signature, fingerprint)
    if header.version <= delta.base_version:
        raise _bad(_("version {version} does not follow its base {base}").format(
            version=header.version, base=delta.base_version))
    check_fresh_header(header.version, header.issued_at, header.expires_at, now)
    with _locked(home):
        anchor = read_header_anchor(home)
        if anchor is None or not hmac.compare_digest(hashlib.sha256(anchor.header).hexdigest(),
                                                     delta.base_header_sha256):
            raise DeltaNotApplicable(_("the delta starts from a directory this home does not hold "
                                       "as its newest (version {base})").format(base=delta.base_version))
        if v2.parse_header(anchor.header).version != delta.base_version:
            raise DeltaNotApplicable(_("the delta's base version is not this home's"))
        installed = _read_installed(home, anchor.header)

        leaves = dict(installed.agencies)
        for code in delta.remove:
            leaves.pop(code, None)
        for entry in delta.upsert:
            leaves[entry["code"]] = v2.canonical(entry)
        codes = sorted(leaves)
        leaf_list = [leaves[c] for c in codes]
        agencies_head, agency_tree = v2.tree_head(leaf_list)
        if agencies_head.count != header.agencies.count or not hmac.compare_digest(
                agencies_head.root, header.agencies.root):
            raise _mismatch(_("agencies"))

        changed = {e["code"] for e in delta.upsert} | set(delta.remove)
        pairs = sorted({p for p in installed.keys if p[1] not in changed} | set(v2.key_pairs(delta.upsert)))
        key_leaves = [v2.key_leaf(fp, code) for fp, code in pairs]
        keys_head, key_tree = v2.tree_head(key_leaves)
        if keys_head.count != header.keys.count or not hmac.compare_digest(keys_head.root, header.keys.root):
            raise _mismatch(_("keys"))

        available = dict(installed.policies)
        for entry in delta.policies:
            available[(str(entry.get("policy_id")), int(entry.get("version", 0)))] = entry
        policies, policy_blobs = [], []
        for digest in header.policies:
            policy = available.get((digest.policy_id, digest.version))
            if policy is None or v2.policy_digest(policy) != digest:
                raise _mismatch(_("policies"))
            source, compiled_blob = v2.split_policy(policy)
            policies.append(policy)
            policy_blobs.append((digest, source, compiled_blob))

        member_blobs = {name: blob for name, blob in installed.members.items() if name in header.members}
        member_blobs.update({name: v2.canonical(value) for name, value in delta.members.items()})
        if set(member_blobs) != set(header.members) or any(
                not hmac.compare_digest(v2.sha256_hex(blob), header.members[name])
                for name, blob in member_blobs.items()):
            raise _mismatch(_("side members"))
        members = {name: json.loads(blob) for name, blob in member_blobs.items()}

        envelope = v2.joined_envelope_bytes(delta.header, delta.signature, leaf_list, policies, members)
        if expected_envelope is not None and envelope != expected_envelope:
            raise _mismatch(_("the publication"))
        # The index is built from the checked pieces; it reads the codes of the agencies only.
        decoded = v2.Envelope(delta.header, delta.signature, [{"code": c} for c in codes], policies, members)
        checked = v2.CheckedBody(leaf_list, agency_tree, pairs, key_leaves, key_tree, policy_blobs,
                                 member_blobs)
        atomic_write(home.directory_path, envelope, mode=0o644)
        atomic_write(home.directory_anchor_path, envelope, mode=0o644)
        _write_header_anchor(home, envelope, decoded)
        _write_index(home, envelope, decoded, checked)
    return snapshot_from_v2(header, [], policies, members)
