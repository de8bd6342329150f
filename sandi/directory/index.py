"""The installed directory index, ``directory.index`` (docs/format.md §4.A.1, ADR 0015).

Import verifies a v2 directory in full and writes this SQLite file; a document command
then reads only the header and the agencies it needs.

Invariants:

* nothing read from the index is used before it is checked: the header against the
  trusted root's signature and against the home's header anchor (byte for byte: an
  index of another version, older or newer, is not used), then every agency or key leaf
  against the header's tree heads along its audit path, every policy entry and side
  member against its hash in the header;
* "no agency has this key" and "no agency has this code" are proved, not assumed: the
  two adjacent leaves around the missing value, each on its path (the trees are sorted);
* an index that cannot be used (missing, unreadable, another version, a failed check)
  raises :class:`IndexUnusable` at opening; a failed check during a command switches
  the command to the full ``directory.json`` (which the caller verifies), records the
  failure in the journal and adds one notice: never silently trusted;
* the index is opened read-only (``mode=ro``) by readers; only import writes it, as a
  whole file renamed into place (the caller holds the directory lock).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, overload

from sandi.directory import v2
from sandi.directory.snapshot import (
    AgencyEntry,
    DirectorySnapshot,
    check_fresh_header,
    snapshot_from_v2,
    verify_header,
)
from sandi.errors import FormatError, SandiError
from sandi.formats import merkle
from sandi.formats.bounded import load_json
from sandi.home import Home
from sandi.i18n import Message, _

SCHEMA = "sandi-directory-index/2"
USER_VERSION = 2
_MAX_LEAF_BYTES = 16 * 1024 * 1024

_TABLES = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE header (id INTEGER PRIMARY KEY CHECK (id = 1), header BLOB NOT NULL, "
    "signature BLOB NOT NULL)",
    # Rowid tables: leaves are kilobytes, which WITHOUT ROWID stores badly. An agency's leaf
    # is kept by code and its tree position apart, so a delta that shifts positions (a new
    # code sorts in) rewrites small rows, never the leaves (schema 2, ADR 0019).
    "CREATE TABLE agencies (code TEXT PRIMARY KEY, leaf BLOB NOT NULL)",
    "CREATE TABLE agency_positions (position INTEGER PRIMARY KEY, code TEXT NOT NULL UNIQUE)",
    "CREATE TABLE keys (position INTEGER PRIMARY KEY, key_fingerprint TEXT NOT NULL, code TEXT NOT NULL, "
    "leaf BLOB NOT NULL, UNIQUE (key_fingerprint, code))",
    "CREATE TABLE nodes (tree TEXT NOT NULL, level INTEGER NOT NULL, position INTEGER NOT NULL, "
    "hash BLOB NOT NULL, PRIMARY KEY (tree, level, position)) WITHOUT ROWID",
    "CREATE TABLE policies (policy_id TEXT NOT NULL, version INTEGER NOT NULL, entry BLOB NOT NULL, "
    "compiled BLOB, PRIMARY KEY (policy_id, version))",
    "CREATE TABLE members (name TEXT PRIMARY KEY, value BLOB NOT NULL)",
)


# The queries a reader makes (fixed text: the tree name only picks one).
_NODE = "SELECT hash FROM nodes WHERE tree = ? AND level = ? AND position = ?"
_COLUMN = {"agencies": "code", "keys": "key_fingerprint"}
_AT = {"agencies": "SELECT a.leaf FROM agency_positions p JOIN agencies a ON a.code = p.code "
                   "WHERE p.position = ?",
       "keys": "SELECT leaf FROM keys WHERE position = ?"}
_MATCHING = {"agencies": "SELECT p.position, a.leaf FROM agency_positions p JOIN agencies a "
                         "ON a.code = p.code WHERE p.code = ? ORDER BY p.position",
             "keys": "SELECT position, leaf FROM keys WHERE key_fingerprint = ? ORDER BY position"}
_BELOW = {"agencies": "SELECT position FROM agency_positions WHERE code < ? ORDER BY code DESC LIMIT 1",
          "keys": "SELECT position FROM keys WHERE key_fingerprint < ? "
                  "ORDER BY key_fingerprint DESC, position DESC LIMIT 1"}


class IndexUnusable(SandiError):
    """The index cannot be used for this command; the caller reads directory.json."""


# -- writing -----------------------------------------------------------------------------


def installed_stamp(path: Path) -> str:
    """Size and modification time of the installed ``directory.json``: an index is used
    only while they are what they were when it was built, so a file copied over it (an
    older one, say) is noticed at the cost of one ``stat`` and verified in full."""
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


#: a leaf is ~2 KiB: with SQLite's default 4 KiB pages each would take a page of its own
PAGE_SIZE = 32 * 1024


def write_index(path: Path, envelope: v2.Envelope, checked: v2.CheckedBody, envelope_sha256: str,
                stamp: str) -> None:
    """Write ``directory.index`` at ``path`` for a verified v2 envelope installed with
    ``stamp``: built beside it under a fixed name (the caller holds the directory lock),
    synced, then renamed over it, so a reader sees the old index or the new, never half."""
    from sandi import portable

    building = path.with_name(path.name + ".new")
    building.unlink(missing_ok=True)  # a build killed earlier
    try:
        _fill(building, envelope, checked, envelope_sha256, stamp)
        fd = os.open(building, os.O_RDONLY | portable.BINARY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(building, path)
    except BaseException:
        building.unlink(missing_ok=True)
        raise
    portable.fsync_dir(path.parent)
    with contextlib.suppress(OSError):
        path.chmod(0o644)


def _fill(path: Path, envelope: v2.Envelope, checked: v2.CheckedBody, envelope_sha256: str,
          stamp: str) -> None:
    db = sqlite3.connect(path)
    try:
        db.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        db.execute("PRAGMA journal_mode = OFF")  # a new file, renamed into place only once whole
        db.execute("PRAGMA synchronous = OFF")  # synced once, before the rename
        for statement in _TABLES:
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {USER_VERSION}")
        db.executemany("INSERT INTO meta VALUES (?, ?)",
                       [("schema", SCHEMA), ("envelope_sha256", envelope_sha256),
                        ("directory_stamp", stamp)])
        db.execute("INSERT INTO header VALUES (1, ?, ?)", (envelope.header, envelope.signature))
        codes = [agency["code"] for agency in envelope.agencies]
        db.executemany("INSERT INTO agencies VALUES (?, ?)", zip(codes, checked.agency_leaves, strict=True))
        db.executemany("INSERT INTO agency_positions VALUES (?, ?)", enumerate(codes))
        db.executemany("INSERT INTO keys VALUES (?, ?, ?, ?)", (
            (position, fingerprint, code, leaf)
            for position, ((fingerprint, code), leaf) in enumerate(zip(checked.key_pairs, checked.key_leaves,
                                                                       strict=True))))
        for name, tree in (("agencies", checked.agency_tree), ("keys", checked.key_tree)):
            db.executemany("INSERT INTO nodes VALUES (?, ?, ?, ?)", (
                (name, level, position, node)
                for level, hashes in enumerate(tree) for position, node in enumerate(hashes)))
        db.executemany("INSERT INTO policies VALUES (?, ?, ?, ?)", (
            (digest.policy_id, digest.version, entry, compiled)
            for digest, entry, compiled in checked.policy_blobs))
        db.executemany("INSERT INTO members VALUES (?, ?)", checked.member_blobs.items())
        db.commit()
    finally:
        db.close()


# -- reading -----------------------------------------------------------------------------


def _unusable(reason: str) -> IndexUnusable:
    return IndexUnusable(reason)


class IndexReader:
    """An opened index whose header verified; every read below checks what it returns."""

    def __init__(self, path: Path, trusted_root_fingerprint: str) -> None:
        try:
            self._db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True,
                                       check_same_thread=False)
        except (sqlite3.Error, OSError, ValueError):
            raise _unusable(Message("the directory index cannot be opened")) from None
        try:
            self._check_schema()
            row = self._one("SELECT header, signature FROM header WHERE id = 1")
            if row is None or not isinstance(row[0], bytes) or not isinstance(row[1], bytes):
                raise _unusable(Message("the directory index has no header"))
            self.header_bytes: bytes = row[0]
            self.signature: bytes = row[1]
            try:
                self.header = verify_header(self.header_bytes, self.signature, trusted_root_fingerprint)
            except SandiError as exc:
                raise _unusable(Message("the directory index's header does not verify ({reason})",
                                        reason=exc.message)) from None
        except BaseException:
            self._db.close()
            raise

    def stamp(self) -> str | None:
        row = self._one("SELECT value FROM meta WHERE key = 'directory_stamp'")
        return None if row is None else str(row[0])

    def close(self) -> None:
        self._db.close()

    def _one(self, sql: str, args: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        try:
            row: tuple[Any, ...] | None = self._db.execute(sql, args).fetchone()
        except sqlite3.Error:
            raise _unusable(Message("the directory index is damaged")) from None
        return row

    def _all(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return list(self._db.execute(sql, args).fetchall())
        except sqlite3.Error:
            raise _unusable(Message("the directory index is damaged")) from None

    def _check_schema(self) -> None:
        version = self._one("PRAGMA user_version")
        schema = None
        if version == (USER_VERSION,):
            schema = self._one("SELECT value FROM meta WHERE key = 'schema'")
        if schema != (SCHEMA,):
            raise _unusable(Message("the directory index is not of this release's kind"))

    # -- leaves and their paths ------------------------------------------------------

    def _tree(self, tree: str) -> v2.TreeHead:
        return self.header.agencies if tree == "agencies" else self.header.keys

    def _checked(self, tree: str, position: object, leaf: object) -> dict[str, Any]:
        """The parsed leaf at ``position`` of ``tree`` once its audit path verifies."""
        head = self._tree(tree)
        if (not isinstance(position, int) or not isinstance(leaf, bytes)
                or not 0 <= position < head.count):
            raise _unusable(Message("the directory index is damaged"))
        path: list[bytes] = []
        for level, sibling in merkle.path_positions(position, head.count):
            row = self._one(_NODE, (tree, level, sibling))
            path.append(row[0] if row is not None and isinstance(row[0], bytes) else b"")
        if not merkle.verify_inclusion(merkle.leaf_hash(leaf), position, head.count, path, head.root):
            raise _unusable(Message("an entry of the directory index does not match the signed "
                                    "directory (it was edited)"))
        try:
            value = load_json(leaf, max_bytes=_MAX_LEAF_BYTES, error=FormatError)
        except FormatError:
            raise _unusable(Message("the directory index is damaged")) from None
        if not isinstance(value, dict):
            raise _unusable(Message("the directory index is damaged"))
        return value

    def _at(self, tree: str, position: int) -> dict[str, Any] | None:
        if not 0 <= position < self._tree(tree).count:
            return None
        row = self._one(_AT[tree], (position,))
        if row is None:
            raise _unusable(Message("the directory index is damaged"))
        return self._checked(tree, position, row[0])

    def _matching(self, tree: str, value: str) -> list[dict[str, Any]]:
        """Every leaf of ``tree`` whose ``column`` is ``value``, proved complete: the leaves
        just before and after the run (or around the gap) are checked to differ."""
        column = _COLUMN[tree]
        rows = self._all(_MATCHING[tree], (value,))
        leaves = [self._checked(tree, position, leaf) for position, leaf in rows]
        if any(leaf.get(column) != value for leaf in leaves):
            raise _unusable(Message("the directory index is damaged"))
        if rows:
            first, last = rows[0][0], rows[-1][0]
            if last - first + 1 != len(rows):
                raise _unusable(Message("the directory index is damaged"))
        else:
            below = self._one(_BELOW[tree], (value,))
            first = 0 if below is None else int(below[0]) + 1
            last = first - 1
        before, after = self._at(tree, first - 1), self._at(tree, last + 1)
        if (before is not None and not str(before.get(column)) < value) or (
                after is not None and not str(after.get(column)) > value):
            raise _unusable(Message("the directory index is damaged"))
        return leaves

    # -- what a snapshot needs ---------------------------------------------------------

    def agency(self, code: str) -> AgencyEntry | None:
        found = self._matching("agencies", code)
        return AgencyEntry.from_json(found[0], code) if found else None

    def agency_at(self, position: int) -> AgencyEntry:
        leaf = self._at("agencies", position)
        if leaf is None:
            raise IndexError(position)
        return AgencyEntry.from_json(leaf, f"agencies[{position}]")

    def all_agencies(self) -> list[AgencyEntry]:
        """Every agency, in order, checked as a whole: the tree over all leaves must give
        the header's root (one pass; for commands that show or export the directory)."""
        rows = self._all("SELECT p.position, a.leaf FROM agency_positions p JOIN agencies a "
                         "ON a.code = p.code ORDER BY p.position")
        head = self.header.agencies
        if [position for position, _leaf in rows] != list(range(head.count)) or not all(
                isinstance(leaf, bytes) for _position, leaf in rows):
            raise _unusable(Message("the directory index is damaged"))
        import hmac

        if not hmac.compare_digest(merkle.root([merkle.leaf_hash(leaf) for _p, leaf in rows]), head.root):
            raise _unusable(Message("an entry of the directory index does not match the signed "
                                    "directory (it was edited)"))
        out = []
        for position, leaf in rows:
            value = self._json(leaf)
            if not isinstance(value, dict):
                raise _unusable(Message("the directory index is damaged"))
            out.append(AgencyEntry.from_json(value, f"agencies[{position}]"))
        return out

    def key_codes(self, key_fingerprint: str) -> list[str]:
        return [str(leaf.get("code")) for leaf in self._matching("keys", key_fingerprint)]

    def policies(self) -> list[dict[str, Any]]:
        """Every policy entry as in the envelope (the compiled form put back in), each part
        checked against its hash in the header."""
        rows = self._all("SELECT policy_id, version, entry, compiled FROM policies "
                         "ORDER BY policy_id, version")
        if len(rows) != len(self.header.policies):
            raise _unusable(Message("the directory index is damaged"))
        entries: list[dict[str, Any]] = []
        for (policy_id, version, entry, compiled), digest in zip(rows, self.header.policies, strict=True):
            compiled_sha256 = None if compiled is None else v2.sha256_hex(bytes(compiled))
            if (not isinstance(entry, bytes) or (policy_id, version) != (digest.policy_id, digest.version)
                    or v2.sha256_hex(entry) != digest.sha256 or compiled_sha256 != digest.compiled_sha256):
                raise _unusable(Message("a policy in the directory index does not match the signed "
                                        "directory (it was edited)"))
            value = self._hashed_json(entry)
            if not isinstance(value, dict):
                raise _unusable(Message("the directory index is damaged"))
            if compiled is not None:
                value["compiled"] = self._hashed_json(bytes(compiled))
            entries.append(value)
        return entries

    def members(self) -> dict[str, Any]:
        rows = self._all("SELECT name, value FROM members")
        found = {name: value for name, value in rows}
        if set(found) != set(self.header.members) or any(
                not isinstance(value, bytes) or v2.sha256_hex(value) != self.header.members[name]
                for name, value in found.items()):
            raise _unusable(Message("a side member in the directory index does not match the signed "
                                    "directory (it was edited)"))
        return {name: self._json(value) for name, value in found.items()}

    def _hashed_json(self, blob: bytes) -> Any:
        """A blob whose SHA-256 was just found in the signed header: the exact bytes the
        root published and import parsed within the limits, so the bounded reader's scans
        (a third of a command's cost with a 5 MB policy) need not run again; anything that
        still fails to parse makes the index unusable."""
        try:
            return json.loads(blob)
        except (ValueError, RecursionError):
            raise _unusable(Message("the directory index is damaged")) from None

    def _json(self, blob: bytes) -> Any:
        try:
            return load_json(blob, max_bytes=len(blob) + 1, error=FormatError)
        except FormatError:
            raise _unusable(Message("the directory index is damaged")) from None


# -- the snapshot a document command works with -------------------------------------------


class _LazyAgencies(Sequence[AgencyEntry]):
    """All agencies, each read and checked when asked for (whole-directory uses only)."""

    def __init__(self, source: IndexSource) -> None:
        self._source = source

    def __len__(self) -> int:
        return self._source.count()

    @overload
    def __getitem__(self, index: int) -> AgencyEntry: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[AgencyEntry]: ...

    def __getitem__(self, index: int | slice) -> AgencyEntry | Sequence[AgencyEntry]:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self))[index]]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._source.agency_at(index)

    def __iter__(self) -> Iterator[AgencyEntry]:
        return iter(self._source.all())

    def __add__(self, other: tuple[AgencyEntry, ...]) -> tuple[AgencyEntry, ...]:
        """``agencies + (more,)``, as with the tuple a parsed directory holds."""
        return (*self, *other)


@dataclass
class IndexSource:
    """The agencies of an indexed snapshot: from the index, each checked; after a failed
    check, from the full directory (``fallback``) for the rest of the command."""

    reader: IndexReader
    fallback: Callable[[], DirectorySnapshot]
    on_failure: Callable[[str], None]
    notices: list[str]
    _full: DirectorySnapshot | None = None
    _cache: dict[str, AgencyEntry | None] = field(default_factory=dict)

    def _switch(self, exc: IndexUnusable) -> DirectorySnapshot:
        if self._full is None:
            self.on_failure(exc.message)
            self.notices.append(Message(
                "the directory index could not be used ({reason}); directory.json was verified in "
                "full instead (slower). Import the directory again to rebuild the index",
                reason=exc.message))
            full = self.fallback()
            if full.version != self.reader.header.version:
                from sandi.errors import VerificationError

                raise VerificationError(
                    _("directory.json (version {version}) and its index (version {indexed}) disagree")
                    .format(version=full.version, indexed=self.reader.header.version),
                    hint=_("import the newest directory the authority published"))
            self._full = full
        return self._full

    def agency(self, code: str) -> AgencyEntry | None:
        if self._full is not None:
            return self._full.agency_or_none(code)
        if code not in self._cache:
            try:
                self._cache[code] = self.reader.agency(code)
            except IndexUnusable as exc:
                return self._switch(exc).agency_or_none(code)
        return self._cache[code]

    def key_owners(self, key_fingerprint: str) -> list[AgencyEntry]:
        if self._full is None:
            try:
                codes = self.reader.key_codes(key_fingerprint)
                owners = [self.reader.agency(code) for code in codes]
                if all(owner is not None and key_fingerprint in _fingerprints(owner) for owner in owners):
                    return [owner for owner in owners if owner is not None]
                raise _unusable(Message("the directory index is damaged"))
            except IndexUnusable as exc:
                self._switch(exc)
        assert self._full is not None
        return _owners(self._full, key_fingerprint)

    def all(self) -> Sequence[AgencyEntry]:
        if self._full is None:
            try:
                return self.reader.all_agencies()
            except IndexUnusable as exc:
                self._switch(exc)
        assert self._full is not None
        return self._full.agencies

    def count(self) -> int:
        return len(self._full.agencies) if self._full is not None else self.reader.header.agencies.count

    def agency_at(self, position: int) -> AgencyEntry:
        if self._full is None:
            try:
                return self.reader.agency_at(position)
            except IndexUnusable as exc:
                self._switch(exc)
        assert self._full is not None
        return self._full.agencies[position]


def _fingerprints(agency: AgencyEntry) -> set[str]:
    """The keys an agency's leaf puts in the key tree: its own and its officials'."""
    return {c.key_fingerprint for c in agency.certificates} | {
        c.key_fingerprint for official in agency.officials for c in official.certificates}


def _owners(snapshot: DirectorySnapshot, key_fingerprint: str) -> list[AgencyEntry]:
    seen: dict[str, AgencyEntry] = {}
    for agency, _cert in snapshot.key_owners(key_fingerprint):
        seen.setdefault(agency.code, agency)
    for agency, _official, _cert in snapshot.find_official_key(key_fingerprint):
        seen.setdefault(agency.code, agency)
    return sorted(seen.values(), key=lambda a: a.code)


def open_indexed(home: Home, trusted_root_fingerprint: str, now: datetime, *,
                 fallback: Callable[[], DirectorySnapshot],
                 on_failure: Callable[[str], None]) -> DirectorySnapshot:
    """The installed snapshot read from the index, or :class:`IndexUnusable`.

    Checks, in this order and each at constant cost: the header's signature by the trusted
    root; that it is byte for byte the header anchor's (the highest directory this home
    installed; anything else — older, newer, another — is not used); that it is fresh.
    Policies and side members are read and checked now (few, and every command needs
    them); agencies when asked for.
    """
    path = home.directory_index_path
    if not path.is_file():
        raise _unusable(Message("there is no directory index"))
    anchor = read_header_anchor(home)
    if anchor is None or not home.directory_anchor_path.is_file():
        raise _unusable(Message("this home keeps no record of the highest directory's header"))
    reader = IndexReader(path, trusted_root_fingerprint)
    try:
        import hmac

        if not hmac.compare_digest(reader.header_bytes, anchor.header):
            raise _unusable(Message("the directory index (version {version}) is not the highest directory "
                                    "this home installed", version=reader.header.version))
        try:
            stamp = installed_stamp(home.directory_path)
        except OSError:
            stamp = None
        if stamp is None or stamp != reader.stamp():
            raise _unusable(Message("directory.json changed since the index was built"))
        check_fresh_header(reader.header.version, reader.header.issued_at, reader.header.expires_at, now)
        base = snapshot_from_v2(reader.header, (), reader.policies(), reader.members())
    except BaseException:
        reader.close()
        raise
    notices: list[str] = []
    source = IndexSource(reader, fallback, on_failure, notices)
    from dataclasses import replace

    return replace(base, agencies=_LazyAgencies(source), source=source, notices=notices)


def read_header_anchor(home: Home) -> v2.HeaderAnchor | None:
    """The header anchor as written (unverified), or None when there is none readable."""
    try:
        data = home.directory_anchor_header_path.read_bytes()
    except OSError:
        return None
    try:
        return v2.decode_header_anchor(data)
    except FormatError:
        return None


def peek_header(home: Home) -> v2.Header | None:
    """The installed index's header, parsed but NOT verified (for deciding whether to warn
    or refresh, never for trusting); None without a readable index."""
    try:
        db = sqlite3.connect(home.directory_index_path.resolve().as_uri() + "?mode=ro", uri=True)
    except (sqlite3.Error, OSError, ValueError):
        return None
    try:
        row = db.execute("SELECT header FROM header WHERE id = 1").fetchone()
        return v2.parse_header(row[0]) if row is not None and isinstance(row[0], bytes) else None
    except (sqlite3.Error, FormatError):
        return None
    finally:
        db.close()
