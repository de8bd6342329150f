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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

from sandi.directory import v2
from sandi.directory.snapshot import DirectorySnapshot, check_fresh_header, snapshot_from_v2, verify_header
from sandi.errors import EXIT_VERIFICATION, FormatError, SandiError
from sandi.formats import merkle
from sandi.formats.bounded import load_json
from sandi.fsutil import AtomicOutput, atomic_write
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


def _mismatch(what: str) -> DeltaNotApplicable:
    return DeltaNotApplicable(_("applying the delta does not give what its header signs ({what})").format(
        what=what))


def apply_delta(home: Home, data: bytes, *, now: datetime | None = None,
                expected_envelope: bytes | None = None) -> DirectorySnapshot:
    """Apply the delta ``data`` to the home's installed directory and install the result.

    The index is updated in place, in one SQLite transaction (only the changed leaf, key
    and position rows, the tree nodes above them, the policies and members the header
    changed, and the header row); the recomputed tree heads, policy digests and member
    hashes are compared with the delta's signed header before anything is committed, and
    any mismatch rolls the transaction back. Then ``directory.json`` and the anchors are
    written and the transaction committed: a command cut short leaves the old index
    (SQLite's journal) whose header no longer matches the header anchor, so it is not
    used and the next command verifies ``directory.json`` in full and rebuilds it.

    Raises :class:`DeltaNotApplicable` when the home's directory is not the delta's base
    or the result does not verify (nothing written: fetch or import the full directory),
    FormatError / VerificationError for a malformed delta or a header the root did not
    sign, and the usual expiry error for an expired one. ``expected_envelope`` (the
    authority installing its own publication, verified when it was signed) is written as
    ``directory.json`` instead of joining the index's leaves again.
    """
    from sandi.directory.index import read_header_anchor
    from sandi.directory.local import _locked, trusted_fingerprint

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
        index = home.directory_index_path
        building = index.with_name(index.name + ".new")
        notices: list[str] = []
        db = _open_copy(index, building)
        try:
            try:
                db.execute("BEGIN IMMEDIATE")
                applied = _apply_in_place(db, anchor.header, delta, header,
                                          join_leaves=expected_envelope is None)
                if expected_envelope is None:
                    parts = v2.joined_envelope_parts(delta.header, delta.signature, applied.leaves,
                                                     applied.policies, applied.members)
                else:
                    # The authority's own publication, verified as it was signed: the index
                    # now hashes to the same signed header, so joining its leaves again to
                    # compare (20 MB at 10,000 agencies) would prove nothing more.
                    parts = [expected_envelope]
                digest = hashlib.sha256()
                for part in parts:
                    digest.update(part)
                envelope_sha256 = digest.hexdigest()
                for path in (home.directory_path, home.directory_anchor_path):
                    with AtomicOutput(path, mode=0o644, overwrite=True) as out:
                        out.file.writelines(parts)
                        out.commit()
                from sandi.directory.index import installed_stamp

                db.executemany("UPDATE meta SET value = ? WHERE key = ?", (
                    (envelope_sha256, "envelope_sha256"),
                    (installed_stamp(home.directory_path), "directory_stamp")))
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise DeltaNotApplicable(_("the installed directory index cannot be updated ({reason})")
                                         .format(reason=exc.__class__.__name__)) from None
            finally:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                db.close()
            # As an import does: the header anchor, then the index renamed into place. Until
            # both agree the index is not used (a reader compares its header with the header
            # anchor's), and a command that had the old index open keeps reading the old file.
            atomic_write(home.directory_anchor_header_path, v2.HeaderAnchor(
                delta.header, delta.signature, envelope_sha256).to_bytes(), mode=0o644)
            try:
                _replace_index(building, index)
            except OSError as exc:
                # Windows will not replace a file another command has open: as for an
                # import, the old index no longer matches the header anchor and is not used.
                building.unlink(missing_ok=True)
                notices.append(Message(
                    "the directory index could not be written ({reason}); commands verify "
                    "directory.json in full until it is rebuilt", reason=exc.strerror or type(exc).__name__))
        except BaseException:
            building.unlink(missing_ok=True)
            raise
    snapshot = snapshot_from_v2(header, [], applied.policies, applied.members)
    snapshot.notices.extend(notices)
    return snapshot


def _open_copy(index: Path, building: Path) -> sqlite3.Connection:
    """A copy of the installed index at ``building``, opened for the update (explicit
    BEGIN/COMMIT), if the index is of this release's schema. The update is made on a copy
    (a sequential file copy, no row parsed) and renamed into place, so the installed index
    is never changed under a reader that has it open, and an apply cut short leaves it as
    it was (ADR 0015: only an install replaces the index, whole)."""
    import shutil

    from sandi.directory.index import SCHEMA, USER_VERSION

    if not index.is_file():
        raise DeltaNotApplicable(_("this home has no installed directory index to apply a delta to"))
    building.unlink(missing_ok=True)  # an apply or a build killed earlier
    try:
        shutil.copyfile(index, building)
        db = sqlite3.connect(building, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        building.unlink(missing_ok=True)
        raise DeltaNotApplicable(_("the installed directory index cannot be read ({reason})").format(
            reason=exc.__class__.__name__)) from None
    try:
        db.execute("PRAGMA journal_mode = MEMORY")  # a private copy: the rollback needs no file
        db.execute("PRAGMA synchronous = OFF")  # synced once, before the rename
        schema = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if db.execute("PRAGMA user_version").fetchone() != (USER_VERSION,) or schema != (SCHEMA,):
            raise DeltaNotApplicable(_("the installed directory index is not of this release's kind"))
    except sqlite3.Error as exc:
        db.close()
        building.unlink(missing_ok=True)
        raise DeltaNotApplicable(_("the installed directory index cannot be read ({reason})").format(
            reason=exc.__class__.__name__)) from None
    except BaseException:
        db.close()
        building.unlink(missing_ok=True)
        raise
    return db


def _replace_index(building: Path, index: Path) -> None:
    import contextlib
    import os

    from sandi import portable

    fd = os.open(building, os.O_RDONLY | portable.BINARY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(building, index)
    portable.fsync_dir(index.parent)
    with contextlib.suppress(OSError):
        index.chmod(0o644)


@dataclass(frozen=True)
class _Applied:
    leaves: list[bytes]
    policies: list[dict[str, Any]]
    members: dict[str, Any]


def _changed_positions(old: Sequence[object], new: Sequence[object]) -> list[int]:
    """Positions whose value differs, and every position only one of the lists has."""
    common = min(len(old), len(new))
    changed = [i for i in range(common) if old[i] != new[i]]
    changed.extend(range(common, max(len(old), len(new))))
    return changed


def _rewrite_tree(db: sqlite3.Connection, tree: str, levels: list[list[bytes]], changed: list[int]) -> None:
    """Write the nodes of ``tree`` that differ: a node depends only on the leaves below
    it, so at each level only the parents of changed positions can change."""
    positions = set(changed)
    for level, hashes in enumerate(levels):
        if level:
            positions = {p >> 1 for p in positions}
        width, ordered = len(hashes), sorted(positions)
        if ordered and len(ordered) > 64 and ordered[-1] - ordered[0] + 1 == len(ordered):
            # A shifted tail (a code sorted in or out): one range delete and plain inserts
            # in key order cost far less than replacing row by row.
            db.execute("DELETE FROM nodes WHERE tree = ? AND level = ? AND position >= ?",
                       (tree, level, ordered[0]))
            db.executemany("INSERT INTO nodes VALUES (?, ?, ?, ?)", (
                (tree, level, p, hashes[p]) for p in range(ordered[0], width)))
            continue
        db.execute("DELETE FROM nodes WHERE tree = ? AND level = ? AND position >= ?", (tree, level, width))
        db.executemany("INSERT OR REPLACE INTO nodes VALUES (?, ?, ?, ?)", (
            (tree, level, p, hashes[p]) for p in ordered if p < width))
    db.execute("DELETE FROM nodes WHERE tree = ? AND level >= ?", (tree, len(levels)))


def _rewrite_positions(db: sqlite3.Connection, table: str, count: int,
                       row: Callable[[int], tuple[Any, ...]], changed: list[int]) -> None:
    """Rows keyed by position whose content moved or changed: deleted first (their unique
    columns may have moved to another position), then written again."""
    delete, beyond, insert = {
        "agency_positions": ("DELETE FROM agency_positions WHERE position = ?",
                             "DELETE FROM agency_positions WHERE position >= ?",
                             "INSERT INTO agency_positions VALUES (?, ?)"),
        "keys": ("DELETE FROM keys WHERE position = ?", "DELETE FROM keys WHERE position >= ?",
                 "INSERT INTO keys VALUES (?, ?, ?, ?)"),
    }[table]
    if len(changed) > 64 and changed[-1] - changed[0] + 1 == len(changed) and changed[-1] >= count - 1:
        db.execute(beyond, (changed[0],))  # a shifted tail to the end: one range delete
    else:
        db.executemany(delete, ((p,) for p in changed))
        db.execute(beyond, (count,))
    db.executemany(insert, (row(p) for p in changed if p < count))


def _level0(db: sqlite3.Connection, tree: str, count: int) -> list[bytes]:
    hashes = [bytes(h) for (h,) in db.execute(
        "SELECT hash FROM nodes WHERE tree = ? AND level = 0 ORDER BY position", (tree,))]
    if len(hashes) != max(count, 1):
        raise _mismatch(_("agencies") if tree == "agencies" else _("keys"))
    return hashes[:count]


def _apply_in_place(db: sqlite3.Connection, base_header: bytes, delta: Delta, header: v2.Header, *,
                    join_leaves: bool = True) -> _Applied:
    """Change the index (in the caller's transaction) from ``base_header``'s directory to
    ``header``'s; raises DeltaNotApplicable when the result is not what ``header`` signs
    (the caller rolls back). The stored rows are trusted for nothing: the recomputed
    heads must be the signed ones, and the leaves joined for ``directory.json`` are hashed
    again against the new tree."""
    row = db.execute("SELECT header FROM header WHERE id = 1").fetchone()
    if row is None or bytes(row[0]) != base_header:
        raise DeltaNotApplicable(_("the installed directory index is not of the delta's base"))
    base = v2.parse_header(base_header)

    # -- agencies: positions, leaves, tree -------------------------------------------------
    old_codes = [str(code) for (code,) in db.execute("SELECT code FROM agency_positions ORDER BY position")]
    old_hashes = _level0(db, "agencies", base.agencies.count)
    if len(old_codes) != base.agencies.count:
        raise _mismatch(_("agencies"))
    by_code = dict(zip(old_codes, old_hashes, strict=True))
    upserted = {entry["code"]: v2.canonical(entry) for entry in delta.upsert}
    for code in delta.remove:
        by_code.pop(code, None)
    by_code.update({code: merkle.leaf_hash(leaf) for code, leaf in upserted.items()})
    codes = sorted(by_code)
    agency_levels = merkle.levels([by_code[c] for c in codes])
    if len(codes) != header.agencies.count or not hmac.compare_digest(agency_levels[-1][0],
                                                                      header.agencies.root):
        raise _mismatch(_("agencies"))
    db.executemany("DELETE FROM agencies WHERE code = ?", ((c,) for c in delta.remove))
    db.executemany("INSERT OR REPLACE INTO agencies VALUES (?, ?)", upserted.items())
    _rewrite_positions(db, "agency_positions", len(codes), lambda i: (i, codes[i]),
                       _changed_positions(old_codes, codes))
    old_level0 = old_hashes or [merkle.empty_root()]
    _rewrite_tree(db, "agencies", agency_levels, _changed_positions(old_level0, agency_levels[0]))

    # -- keys ----------------------------------------------------------------------------------
    old_pairs = [(str(fp), str(code)) for fp, code in db.execute(
        "SELECT key_fingerprint, code FROM keys ORDER BY position")]
    old_key_hashes = _level0(db, "keys", base.keys.count)
    if len(old_pairs) != base.keys.count:
        raise _mismatch(_("keys"))
    changed_codes = set(upserted) | set(delta.remove)
    key_hash = {pair: h for pair, h in zip(old_pairs, old_key_hashes, strict=True)
                if pair[1] not in changed_codes}
    for fp, code in v2.key_pairs(delta.upsert):
        key_hash[(fp, code)] = merkle.leaf_hash(v2.key_leaf(fp, code))
    pairs = sorted(key_hash)
    key_levels = merkle.levels([key_hash[p] for p in pairs])
    if len(pairs) != header.keys.count or not hmac.compare_digest(key_levels[-1][0], header.keys.root):
        raise _mismatch(_("keys"))
    _rewrite_positions(db, "keys", len(pairs), lambda i: (i, *pairs[i], v2.key_leaf(*pairs[i])),
                       _changed_positions(old_pairs, pairs))
    _rewrite_tree(db, "keys", key_levels, _changed_positions(old_key_hashes or [merkle.empty_root()],
                                                             key_levels[0]))

    # -- policies and side members --------------------------------------------------------------
    available: dict[tuple[str, int], tuple[bytes, bytes | None]] = {
        (str(policy_id), int(version)): (bytes(entry), None if compiled is None else bytes(compiled))
        for policy_id, version, entry, compiled in db.execute(
            "SELECT policy_id, version, entry, compiled FROM policies")}
    for entry in delta.policies:
        available[(str(entry.get("policy_id")), int(entry.get("version", 0)))] = v2.split_policy(entry)
    policies: list[dict[str, Any]] = []
    db.execute("DELETE FROM policies")
    for digest in header.policies:
        blobs = available.get((digest.policy_id, digest.version))
        if blobs is None or v2.sha256_hex(blobs[0]) != digest.sha256 or (
                None if blobs[1] is None else v2.sha256_hex(blobs[1])) != digest.compiled_sha256:
            raise _mismatch(_("policies"))
        policy = json.loads(blobs[0])
        if blobs[1] is not None:
            policy["compiled"] = json.loads(blobs[1])
        policies.append(policy)
        db.execute("INSERT INTO policies VALUES (?, ?, ?, ?)", (digest.policy_id, digest.version, *blobs))

    member_blobs = {str(name): bytes(value) for name, value in db.execute("SELECT name, value FROM members")
                    if name in header.members}
    member_blobs.update({name: v2.canonical(value) for name, value in delta.members.items()})
    if set(member_blobs) != set(header.members) or any(
            not hmac.compare_digest(v2.sha256_hex(blob), header.members[name])
            for name, blob in member_blobs.items()):
        raise _mismatch(_("side members"))
    db.execute("DELETE FROM members")
    db.executemany("INSERT INTO members VALUES (?, ?)", member_blobs.items())
    members = {name: json.loads(blob) for name, blob in member_blobs.items()}

    db.execute("UPDATE header SET header = ?, signature = ? WHERE id = 1", (delta.header, delta.signature))

    # -- the leaves directory.json joins, checked against the new tree -------------------------
    if not join_leaves:
        return _Applied([], policies, members)
    leaves = [bytes(leaf) for (leaf,) in db.execute(
        "SELECT a.leaf FROM agency_positions p JOIN agencies a ON a.code = p.code ORDER BY p.position")]
    if len(leaves) != len(codes) or any(merkle.leaf_hash(leaf) != h
                                        for leaf, h in zip(leaves, agency_levels[0], strict=False)):
        raise _mismatch(_("agencies"))
    return _Applied(leaves, policies, members)
