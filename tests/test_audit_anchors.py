"""A log cannot silently lose its signed past (issue 13, item 5; ADR 0010).

Each row is an attack by someone who can write the database or the journal file but
holds no signing key. Before the anchors, ``audit verify`` said ok to every one (or
exit 1 for a garbage line); now each exits 4 and names what happened. The checkpoints
that catch them live outside the store: the home's anchor files, the checkpoint every
signed directory carries (the authority's own copies, and a workstation's as
``--witness``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, delete, insert, select, text

from sandi.audit.entry import canonical_json, entry_hash
from sandi.registry import Registry
from sandi.registry import models as registry_models
from tests import test_authority_support as support
from tests.conftest import CliResult, invoke
from tests.test_workstations_flow import LETTER, Province, build_province

# -- the registry of an authority home, on both backends ------------------------------------


@dataclass
class Authority:
    home: Path
    url: str
    witness: Path  # a directory as a workstation holds it (the last one published)

    def sandi(self, *args: str | Path) -> CliResult:
        return invoke("--home", self.home, "--database-url", self.url, *args, env=ENV)


def _rows(conn: Connection) -> list[dict[str, Any]]:
    out = []
    for row in conn.execute(text("SELECT * FROM audit_entries ORDER BY seq")).mappings():
        d = dict(row)
        d["details"] = json.loads(d["details"])
        out.append(d)
    return out


def _rechain_from(conn: Connection, entries: list[dict[str, Any]], start: int) -> None:
    """Recompute every hash from index ``start`` on, rewrite the rows and move the head:
    what an insider with the database but not the root key can do."""
    for i in range(start, len(entries)):
        if i > 0:
            entries[i]["prev_hash"] = entries[i - 1]["hash"]
        fields = {k: v for k, v in entries[i].items() if k != "hash"}
        entries[i]["hash"] = entry_hash(fields)
    conn.execute(text("DELETE FROM audit_entries"))
    for d in entries:
        conn.execute(text(
            "INSERT INTO audit_entries (seq, time, actor, action, subject, outcome, details, prev_hash, "
            "hash) VALUES (:seq, :time, :actor, :action, :subject, :outcome, :details, :prev_hash, :hash)"),
            d | {"details": canonical_json(d["details"]).decode()})
    conn.execute(text("UPDATE audit_head SET seq = :s, hash = :h"),
                 {"s": entries[-1]["seq"], "h": entries[-1]["hash"]})


def _rewrite_history(conn: Connection) -> None:
    conn.execute(text("DELETE FROM audit_checkpoints"))
    entries = _rows(conn)
    entries[1]["subject"] = "FORGED"
    _rechain_from(conn, entries, 1)


def _cut_tail(conn: Connection) -> None:
    last = conn.execute(text("SELECT max(seq) FROM audit_entries")).scalar_one()
    keep = last - 3
    conn.execute(text("DELETE FROM audit_entries WHERE seq > :k"), {"k": keep})
    conn.execute(text("DELETE FROM audit_checkpoints WHERE seq > :k"), {"k": keep})
    conn.execute(text("UPDATE audit_head SET seq = :k, hash = (SELECT hash FROM audit_entries "
                      "WHERE seq = :k)"), {"k": keep})


def _sql(*statements: str) -> Callable[[Connection], None]:
    def run(conn: Connection) -> None:
        for statement in statements:
            conn.execute(text(statement))
    return run


def _forget_home_witnesses(a: Authority) -> None:
    """The insider controls the authority's home too: anchors and directories go."""
    for name in HOME_WITNESSES:
        (a.home / name).unlink()


DELETE_ALL = _sql("DELETE FROM audit_entries", "DELETE FROM audit_checkpoints", "DELETE FROM audit_head")

# name, database change, home change, use the workstation's directory, expected kind
REGISTRY_ATTACKS: list[tuple[str, Callable[[Connection], None], Callable[[Authority], None] | None,
                             bool, str]] = [
    ("delete-checkpoints-rewrite-rechain-move-head", _rewrite_history, None, False, "checkpoint-mismatch"),
    ("delete-checkpoints-only", _sql("DELETE FROM audit_checkpoints"), None, False, "checkpoint-missing"),
    ("delete-head-row", _sql("DELETE FROM audit_head"), None, False, "head-missing"),
    ("delete-entries-checkpoints-head", DELETE_ALL, None, False, "truncated"),
    ("cut-tail-checkpoints-and-head", _cut_tail, None, False, "truncated"),
    # the insider also removes every witness in the authority's home: a workstation's
    # copy of the directory still remembers
    ("rewrite-and-clear-home-witness-kept", _rewrite_history, _forget_home_witnesses, True,
     "checkpoint-mismatch"),
    ("delete-all-and-clear-home-witness-kept", DELETE_ALL, _forget_home_witnesses, True, "truncated"),
]


ENV: dict[str, str | None] = {"SANDI_SCRYPT_WORK_FACTOR": "10", "SANDI_PASSPHRASE": support.PASSPHRASE,
       "SANDI_OPERATOR": "operator-test"}
HOME_WITNESSES = ("audit.registry.anchor", "directory.json", "directory.anchor.json")
AUDIT_TABLES = [registry_models.AuditEntryRow.metadata.tables[name]
                for name in ("audit_entries", "audit_checkpoints", "audit_head")]


@dataclass
class _Saved:
    authority: Authority
    files: dict[str, bytes]
    tables: list[tuple[Any, list[dict[str, Any]]]]


@pytest.fixture(scope="module", params=[pytest.param("sqlite", id="sqlite"),
                                        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)])
def _authority_template(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                        ) -> Iterator[_Saved]:
    """One authority per backend and module; each test restores its audit tables and files."""
    root = tmp_path_factory.mktemp("authority")
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{root / 'registry.db'}"
        else:
            url = stack.enter_context(request.getfixturevalue("pg_source").database())
        a = Authority(root / "home", url, root / "handed-out.json")
        for args in (["init", "--province", "Provinsi Banten"],
                     ["agency", "add", "DISKOMINFO", "--name", "Dinas Komunikasi"],  # republishes
                     ["directory", "publish", "-o", str(a.witness)],
                     ["audit", "verify"]):
            r = a.sandi(*args)
            assert r.code == 0, (args, r)
        registry = Registry(url)
        try:
            with registry.engine.begin() as conn:
                tables = [(t, [dict(row) for row in conn.execute(select(t)).mappings()])
                          for t in AUDIT_TABLES]
        finally:
            registry.dispose()
        yield _Saved(a, {name: (a.home / name).read_bytes() for name in HOME_WITNESSES}, tables)


@pytest.fixture
def authority(_authority_template: _Saved) -> Authority:
    saved = _authority_template
    registry = Registry(saved.authority.url)
    try:
        with registry.engine.begin() as conn:
            for table in AUDIT_TABLES:
                conn.execute(delete(table))
            for table, rows in saved.tables:
                conn.execute(insert(table), rows)
    finally:
        registry.dispose()
    for name, data in saved.files.items():
        (saved.authority.home / name).write_bytes(data)
    return saved.authority


@pytest.mark.parametrize(("db_change", "home_change", "with_witness", "kind"),
                         [row[1:] for row in REGISTRY_ATTACKS], ids=[row[0] for row in REGISTRY_ATTACKS])
def test_registry_history_cannot_be_lost_silently(
    authority: Authority, db_change: Callable[[Connection], None],
    home_change: Callable[[Authority], None] | None, with_witness: bool, kind: str,
) -> None:
    registry = Registry(authority.url)
    try:
        with registry.engine.begin() as conn:
            db_change(conn)
    finally:
        registry.dispose()
    if home_change is not None:
        home_change(authority)
        r = authority.sandi("--json", "audit", "verify")
        assert r.code == 0, "the row must show what only the witness catches"
    args = ["--witness", str(authority.witness)] if with_witness else []
    r = authority.sandi("--json", "audit", "verify", *args)
    assert r.code == 4, r
    problem = json.loads(r.stdout)["registry"]["problem"]
    assert problem["kind"] == kind, problem
    assert f": {kind}: " in r.stderr


def test_a_forged_witness_is_refused(authority: Authority, tmp_path: Path) -> None:
    forged = tmp_path / "forged.json"
    envelope = json.loads(authority.witness.read_bytes())
    envelope["signature"] = "A" * 86 + "=="
    forged.write_text(json.dumps(envelope))
    r = authority.sandi("audit", "verify", "--witness", forged)
    assert r.code == 4 and "signature does not verify" in r.stderr, r


# -- a workstation's journal -------------------------------------------------------------------


@dataclass
class Workstation:
    province: Province
    pristine: dict[str, bytes]

    @property
    def home(self) -> Path:
        return self.province.diskominfo.home

    @property
    def journal(self) -> Path:
        return self.home / "audit.journal"

    def truncate_to_empty(self) -> None:
        self.journal.write_bytes(b"")


@pytest.fixture(scope="module")
def _workstation_template(tmp_path_factory: pytest.TempPathFactory) -> Workstation:
    p = build_province(tmp_path_factory.mktemp("province"))
    site = p.diskominfo
    for name in ("a.pdf", "b.pdf"):
        doc = site.folder / name
        doc.write_bytes(LETTER)
        site.ok("seal", doc, "--to", "BAPPEDA", "--class", "R")
        if name == "a.pdf":
            site.ok("audit", "checkpoint")  # the journal's checkpoint, and its anchor
    site.ok("audit", "verify")
    files = ("audit.journal", "audit.journal.anchor")
    return Workstation(p, {f: (site.home / f).read_bytes() for f in files if (site.home / f).exists()})


@pytest.fixture
def workstation(_workstation_template: Workstation) -> Workstation:
    for name, data in _workstation_template.pristine.items():  # each row starts untouched
        (_workstation_template.home / name).write_bytes(data)
    return _workstation_template


def _lines(ws: Workstation) -> list[dict[str, Any]]:
    return [json.loads(line) for line in ws.journal.read_bytes().splitlines()]


def _write(ws: Workstation, records: list[dict[str, Any]]) -> None:
    ws.journal.write_bytes(b"".join(canonical_json(r) + b"\n" for r in records))


def _checkpoint_index(records: list[dict[str, Any]]) -> int:
    return next(i for i, r in enumerate(records) if r["type"] == "checkpoint")


def _cut_past_checkpoint(ws: Workstation) -> None:
    records = _lines(ws)
    _write(ws, records[:_checkpoint_index(records) - 1])


def _delete_checkpoint_line(ws: Workstation) -> None:
    records = _lines(ws)
    del records[_checkpoint_index(records)]
    _write(ws, records)


def _rechain_without_checkpoint(ws: Workstation) -> None:
    records = [r for r in _lines(ws) if r["type"] == "entry"]
    records[0]["subject"] = "FORGED"
    for i, r in enumerate(records):
        if i:
            r["prev_hash"] = records[i - 1]["hash"]
        r["hash"] = entry_hash({k: v for k, v in r.items() if k not in ("hash", "type")})
    _write(ws, records)


def _append(data: bytes) -> Callable[[Workstation], None]:
    def run(ws: Workstation) -> None:
        with ws.journal.open("ab") as f:
            f.write(data)
    return run


def _cut_last_line(ws: Workstation) -> None:
    data = ws.journal.read_bytes()
    ws.journal.write_bytes(data[:-40])


JOURNAL_ATTACKS: list[tuple[str, Callable[[Workstation], None], str]] = [
    ("cut-back-past-the-checkpoint", _cut_past_checkpoint, "truncated"),
    ("delete-the-checkpoint-line", _delete_checkpoint_line, "checkpoint-missing"),
    ("re-chain-after-deleting-the-checkpoint", _rechain_without_checkpoint, "checkpoint-mismatch"),
    ("empty-the-file", lambda ws: ws.truncate_to_empty(), "truncated"),
    ("delete-the-file", lambda ws: ws.journal.unlink(), "truncated"),
    ("garbage-last-line", _append(b"\x00\xffnot json at all\n"), "malformed"),
    ("cut-last-line", _cut_last_line, "malformed"),
]


@pytest.mark.parametrize(("change", "kind"), [row[1:] for row in JOURNAL_ATTACKS],
                         ids=[row[0] for row in JOURNAL_ATTACKS])
def test_journal_history_cannot_be_lost_silently(
    workstation: Workstation, change: Callable[[Workstation], None], kind: str
) -> None:
    change(workstation)
    r = workstation.province.diskominfo.sandi("--json", "audit", "verify")
    assert r.code == 4, r
    problem = json.loads(r.stdout)["journal"]["problem"]
    assert problem["kind"] == kind, problem


def test_a_damaged_journal_anchor_is_refused(workstation: Workstation) -> None:
    anchor = workstation.home / "audit.journal.anchor"
    anchor.write_text('{"format":"sandi-audit-anchor/v1","chain":"journal"}\n')
    r = workstation.province.diskominfo.sandi("audit", "verify")
    assert r.code == 4 and "is damaged" in r.stderr, r
    assert anchor.read_text().endswith('"journal"}\n')  # left for a person to look at


def test_verify_raises_the_anchor_to_the_highest_checkpoint(workstation: Workstation) -> None:
    site = workstation.province.diskominfo
    anchor = workstation.home / "audit.journal.anchor"
    before = json.loads(anchor.read_bytes())["checkpoint"]["seq"]
    site.ok("audit", "checkpoint")
    assert json.loads(anchor.read_bytes())["checkpoint"]["seq"] > before
    anchor.write_bytes(workstation.pristine["audit.journal.anchor"])  # an older anchor...
    site.ok("audit", "verify")  # ... is raised again by a verify that saw the newer checkpoint
    assert json.loads(anchor.read_bytes())["checkpoint"]["seq"] > before
