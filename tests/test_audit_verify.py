"""Tampering with the chain, in the journal and in the registry table, is caught and named.

Each scenario builds an 8-entry chain (optionally with checkpoints), changes it the
way an attacker with write access (but not the signing key) would, and checks that
verification names the first bad entry and what is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, text

from sandi.audit.checkpoint import sign_checkpoint
from sandi.audit.entry import GENESIS_HASH, canonical_json, entry_hash
from sandi.audit.events import AuditEvent
from sandi.audit.journal import Journal
from sandi.audit.registry_sink import append_in_session, checkpoint_in_session
from sandi.audit.verify import ChainBroken, verify_chain, verify_journal, verify_registry
from sandi.errors import VerificationError
from sandi.keystore.keys import SigningKey
from sandi.registry import Registry

N = 8
KEY = SigningKey.generate()
OTHER = SigningKey.generate()
HASHED = ("seq", "time", "actor", "action", "subject", "outcome", "details", "prev_hash")


def event(i: int) -> AuditEvent:
    return AuditEvent("operator", "agency.add", f"AGENCY{i}", details={"i": i})


def rehash(d: dict[str, Any]) -> dict[str, Any]:
    d["hash"] = entry_hash({k: d[k] for k in HASHED})
    return d


def rechain(entries: list[dict[str, Any]], start: int) -> None:
    """What a careful forger does: recompute every link from index ``start`` on."""
    for i in range(start, len(entries)):
        entries[i]["prev_hash"] = entries[i - 1]["hash"] if i else GENESIS_HASH
        rehash(entries[i])


# -- journal ------------------------------------------------------------------------------

Records = list[dict[str, Any]]


def build_journal(path: Path, checkpoint_at: tuple[int, ...] = ()) -> Journal:
    journal = Journal(path)
    for i in range(1, N + 1):
        journal.append(event(i))
        if i in checkpoint_at:
            journal.checkpoint(KEY)
    return journal


def read_records(path: Path) -> Records:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def write_records(path: Path, records: Records) -> None:
    path.write_bytes(b"".join(canonical_json(r) + b"\n" for r in records))


def idx(records: Records, seq: int) -> int:
    return next(i for i, r in enumerate(records) if r["type"] == "entry" and r["seq"] == seq)


def j_edit(records: Records) -> None:
    records[idx(records, 4)]["subject"] = "FORGED"


def j_edit_details(records: Records) -> None:
    records[idx(records, 4)]["details"] = {"i": 40}


def j_edit_rehash(records: Records) -> None:
    r = records[idx(records, 4)]
    r["subject"] = "FORGED"
    rehash(r)


def j_edit_time(records: Records) -> None:
    records[idx(records, 3)]["time"] = "2020-01-01T00:00:00.000000Z"


def j_delete(*seqs: int) -> Callable[[Records], None]:
    def mutate(records: Records) -> None:
        for s in seqs:
            del records[idx(records, s)]
    return mutate


def j_swap(records: Records) -> None:
    a, b = idx(records, 4), idx(records, 5)
    records[a], records[b] = records[b], records[a]


def j_move_to_end(records: Records) -> None:
    records.append(records.pop(idx(records, 2)))


def j_duplicate(records: Records) -> None:
    i = idx(records, 4)
    records.insert(i + 1, dict(records[i]))


def j_forged_insert(records: Records) -> None:
    # A well-formed entry 4 chained to entry 3, slipped in before the real entry 4.
    i = idx(records, 4)
    forged = dict(records[i], subject="FORGED", prev_hash=records[idx(records, 3)]["hash"])
    records.insert(i, rehash(forged))


def j_rewrite_from_3(records: Records) -> None:
    # Rewrite history from entry 3 with every later hash recomputed: only the signed
    # checkpoint can tell.
    entries = [r for r in records if r["type"] == "entry"]
    entries[2]["subject"] = "FORGED"
    rechain(entries, 2)


def j_renumber(records: Records) -> None:
    # Delete entry 4 and renumber the rest so the seqs look contiguous.
    del records[idx(records, 4)]
    for r in records:
        if r["type"] == "entry" and r["seq"] > 4:
            r["seq"] -= 1


def j_bad_signature(records: Records) -> None:
    cp = next(r for r in records if r["type"] == "checkpoint")
    sig = bytearray(__import__("base64").b64decode(cp["signature"]))
    sig[0] ^= 1
    cp["signature"] = __import__("base64").b64encode(bytes(sig)).decode()


def j_foreign_checkpoint(records: Records) -> None:
    cp = next(r for r in records if r["type"] == "checkpoint")
    forged = sign_checkpoint(OTHER, cp["seq"], cp["head_hash"])
    cp.update(forged.to_dict())


def j_lying_checkpoint(records: Records) -> None:
    # Signed by the right key but over a head that is not entry 6's.
    forged = sign_checkpoint(KEY, 6, "ab" * 32)
    records.append({"type": "checkpoint", **forged.to_dict()})


JOURNAL_CASES: list[tuple[str, tuple[int, ...], Callable[[Records], None], int, str]] = [
    ("edit-subject", (), j_edit, 4, "edited"),
    ("edit-details", (), j_edit_details, 4, "edited"),
    ("edit-time", (), j_edit_time, 3, "edited"),
    ("edit-and-rehash", (), j_edit_rehash, 4, "link"),
    ("delete-middle", (), j_delete(4), 4, "deleted"),
    ("delete-two", (), j_delete(4, 5), 4, "deleted"),
    ("delete-first", (), j_delete(1), 1, "deleted"),
    ("delete-and-renumber", (), j_renumber, 4, "edited"),
    ("swap-adjacent", (), j_swap, 4, "reordered"),
    ("move-to-end", (), j_move_to_end, 2, "reordered"),
    ("duplicate", (), j_duplicate, 4, "inserted"),
    ("forged-insert", (), j_forged_insert, 4, "inserted"),
    ("rewrite-with-rehash", (6,), j_rewrite_from_3, 6, "checkpoint-mismatch"),
    ("truncate-tail", (8,), j_delete(7, 8), 7, "truncated"),
    ("truncate-all-after-checkpoint", (5,), j_delete(5, 6, 7, 8), 5, "truncated"),
    ("bad-signature", (5,), j_bad_signature, 5, "checkpoint-signature"),
    ("foreign-signer", (5,), j_foreign_checkpoint, 5, "checkpoint-signature"),
    ("lying-checkpoint", (), j_lying_checkpoint, 6, "checkpoint-mismatch"),
]


def test_untouched_journal_verifies(tmp_path: Path) -> None:
    journal = build_journal(tmp_path / "audit.journal", checkpoint_at=(3, 8))
    report = verify_journal(journal, KEY.public_key_bytes())
    assert report.ok, report.problem
    assert (report.entries, report.checkpoints, report.last_seq, report.last_checkpoint_seq) == (N, 2, N, N)
    assert report.head_hash == journal.head()[1]
    assert report.unsigned_tail == 0 and report.signatures_checked
    report.raise_for_problem()


@pytest.mark.parametrize(("checkpoint_at", "mutate", "seq", "kind"),
                         [c[1:] for c in JOURNAL_CASES], ids=[c[0] for c in JOURNAL_CASES])
def test_journal_tampering_is_named(
    tmp_path: Path, checkpoint_at: tuple[int, ...], mutate: Callable[[Records], None], seq: int, kind: str
) -> None:
    path = tmp_path / "audit.journal"
    journal = build_journal(path, checkpoint_at)
    assert verify_journal(journal, KEY.public_key_bytes()).ok
    records = read_records(path)
    mutate(records)
    write_records(path, records)
    report = verify_journal(journal, KEY.public_key_bytes())
    assert report.problem is not None, "tampering went unnoticed"
    assert (report.problem.seq, report.problem.kind) == (seq, kind), report.problem
    with pytest.raises(ChainBroken) as caught:
        report.raise_for_problem()
    assert isinstance(caught.value, VerificationError) and caught.value.exit_code == 4
    assert f"entry {seq}" in str(caught.value) and caught.value.seq == seq


def test_checkpoint_signatures_unchecked_without_a_key_but_hashes_still_are(tmp_path: Path) -> None:
    path = tmp_path / "audit.journal"
    journal = build_journal(path, checkpoint_at=(5,))
    records = read_records(path)
    j_bad_signature(records)
    write_records(path, records)
    report = verify_journal(journal, None)
    assert report.ok and not report.signatures_checked
    j_lying_checkpoint(records)
    write_records(path, records)
    problem = verify_journal(journal, None).problem
    assert problem is not None and problem.kind == "checkpoint-mismatch"


def test_empty_chain_verifies() -> None:
    report = verify_chain([], [], KEY.public_key_bytes())
    assert report.ok and report.last_seq == 0 and report.head_hash == GENESIS_HASH


# -- registry ------------------------------------------------------------------------------


def build_registry(reg: Registry, checkpoint_at: tuple[int, ...] = ()) -> None:
    for i in range(1, N + 1):
        with reg.transaction() as session:
            append_in_session(session, event(i))
            if i in checkpoint_at:
                checkpoint_in_session(session, KEY)


def rows(conn: Connection) -> list[dict[str, Any]]:
    result = conn.execute(text("SELECT * FROM audit_entries ORDER BY seq"))
    out = []
    for row in result.mappings():
        d = dict(row)
        d["details"] = json.loads(d["details"])
        out.append(d)
    return out


def put(conn: Connection, entries: list[dict[str, Any]]) -> None:
    conn.execute(text("DELETE FROM audit_entries"))
    for d in entries:
        conn.execute(
            text("INSERT INTO audit_entries (seq, time, actor, action, subject, outcome, details, "
                 "prev_hash, hash) VALUES (:seq, :time, :actor, :action, :subject, :outcome, "
                 ":details, :prev_hash, :hash)"),
            d | {"details": canonical_json(d["details"]).decode()},
        )


def r_sql(statement: str) -> Callable[[Connection], None]:
    def mutate(conn: Connection) -> None:
        conn.execute(text(statement))
    return mutate


def r_rows(change: Callable[[list[dict[str, Any]]], None]) -> Callable[[Connection], None]:
    def mutate(conn: Connection) -> None:
        entries = rows(conn)
        change(entries)
        put(conn, entries)
    return mutate


def _rehash_4(entries: list[dict[str, Any]]) -> None:
    entries[3]["subject"] = "FORGED"
    rehash(entries[3])


def _swap_4_5(entries: list[dict[str, Any]]) -> None:
    entries[3]["seq"], entries[4]["seq"] = 5, 4


def _rewrite_from_3(entries: list[dict[str, Any]]) -> None:
    entries[2]["subject"] = "FORGED"
    rechain(entries, 2)


def _append_forged(entries: list[dict[str, Any]]) -> None:
    forged = dict(entries[-1], seq=N + 1, subject="FORGED", prev_hash=entries[-1]["hash"])
    entries.append(rehash(forged))


def _insert_renumbered(entries: list[dict[str, Any]]) -> None:
    forged = dict(entries[3], seq=5, subject="FORGED", prev_hash=entries[3]["hash"])
    for e in entries[4:]:
        e["seq"] += 1
    entries.insert(4, rehash(forged))


def _lying_checkpoint(conn: Connection) -> None:
    cp = sign_checkpoint(KEY, 6, "ab" * 32)
    conn.execute(
        text("INSERT INTO audit_checkpoints (seq, head_hash, time, signer, signature) "
             "VALUES (:seq, :head_hash, :time, :signer, :signature)"),
        cp.to_dict(),
    )


def _foreign_checkpoint(conn: Connection) -> None:
    row = conn.execute(text("SELECT seq, head_hash FROM audit_checkpoints")).one()
    cp = sign_checkpoint(OTHER, row[0], row[1])
    conn.execute(text("UPDATE audit_checkpoints SET signer = :signer, signature = :signature"),
                 cp.to_dict())


def _truncate_with_head(conn: Connection) -> None:
    # Cut the tail and move the head row back too: only the checkpoint at 8 remembers.
    conn.execute(text("DELETE FROM audit_entries WHERE seq > 6"))
    conn.execute(text("UPDATE audit_head SET seq = 6, hash = (SELECT hash FROM audit_entries "
                      "WHERE seq = 6)"))


def _rewrite_last_with_head(conn: Connection) -> None:
    # A consistent rewrite of the last two entries and the head row: the chain alone
    # cannot tell (the unsigned tail); the checkpoint over entry 8 can.
    entries = rows(conn)
    entries[-2]["subject"] = "FORGED"
    rechain(entries, len(entries) - 2)
    put(conn, entries)
    conn.execute(text("UPDATE audit_head SET hash = :h"), {"h": entries[-1]["hash"]})


REGISTRY_CASES: list[tuple[str, tuple[int, ...], Callable[[Connection], None], int, str]] = [
    ("edit-subject", (), r_sql("UPDATE audit_entries SET subject = 'FORGED' WHERE seq = 4"), 4, "edited"),
    ("edit-details", (), r_sql("UPDATE audit_entries SET details = '{\"i\":  40}' WHERE seq = 4"),
     4, "edited"),
    ("edit-outcome", (), r_sql("UPDATE audit_entries SET outcome = 'denied' WHERE seq = 2"), 2, "edited"),
    ("edit-and-rehash", (), r_rows(_rehash_4), 4, "link"),
    ("delete-middle", (), r_sql("DELETE FROM audit_entries WHERE seq = 4"), 4, "deleted"),
    ("delete-first", (), r_sql("DELETE FROM audit_entries WHERE seq = 1"), 1, "deleted"),
    ("reorder-swap-seqs", (), r_rows(_swap_4_5), 4, "edited"),
    ("insert-renumbered", (), r_rows(_insert_renumbered), 6, "edited"),
    ("append-behind-head", (), r_rows(_append_forged), N + 1, "inserted"),
    ("truncate-tail-head-row", (), r_sql("DELETE FROM audit_entries WHERE seq > 6"), 7, "truncated"),
    ("truncate-tail-and-head", (8,), _truncate_with_head, 7, "truncated"),
    ("rewrite-last-and-head", (8,), _rewrite_last_with_head, 8, "checkpoint-mismatch"),
    ("rewrite-with-rehash", (6,), r_rows(_rewrite_from_3), 6, "checkpoint-mismatch"),
    ("bad-signature", (5,), r_sql("UPDATE audit_checkpoints SET signature = "
                                  "'AAAA' || substr(signature, 5)"), 5, "checkpoint-signature"),
    ("foreign-signer", (5,), _foreign_checkpoint, 5, "checkpoint-signature"),
    ("lying-checkpoint", (), _lying_checkpoint, 6, "checkpoint-mismatch"),
]


def test_untouched_registry_verifies(registry: Registry) -> None:
    build_registry(registry, checkpoint_at=(4,))
    with registry.transaction() as session:
        report = verify_registry(session, KEY.public_key_bytes())
    assert report.ok, report.problem
    assert (report.entries, report.checkpoints, report.last_checkpoint_seq, report.unsigned_tail) == (
        N, 1, 4, 4)


@pytest.mark.parametrize(("checkpoint_at", "mutate", "seq", "kind"),
                         [c[1:] for c in REGISTRY_CASES], ids=[c[0] for c in REGISTRY_CASES])
def test_registry_tampering_is_named(
    registry: Registry, checkpoint_at: tuple[int, ...], mutate: Callable[[Connection], None],
    seq: int, kind: str,
) -> None:
    build_registry(registry, checkpoint_at)
    with registry.engine.begin() as conn:
        mutate(conn)
    with registry.transaction() as session:
        report = verify_registry(session, KEY.public_key_bytes())
    assert report.problem is not None, "tampering went unnoticed"
    assert (report.problem.seq, report.problem.kind) == (seq, kind), report.problem


# -- periodic checkpoints --------------------------------------------------------------------


def test_maybe_checkpoint_journal_every_n(tmp_path: Path) -> None:
    from sandi.audit.anchor import maybe_checkpoint

    journal = Journal(tmp_path / "audit.journal")
    assert maybe_checkpoint(journal, KEY, every=3) is None  # empty: nothing to sign
    made = []
    for i in range(1, 8):
        journal.append(event(i))
        cp = maybe_checkpoint(journal, KEY, every=3)
        made.append(cp.seq if cp else None)
    assert made == [None, None, 3, None, None, 6, None]
    report = verify_journal(journal, KEY.public_key_bytes())
    assert report.ok and report.checkpoints == 2 and report.unsigned_tail == 1


def test_maybe_checkpoint_registry_every_n(registry: Registry) -> None:
    from sandi.audit.anchor import maybe_checkpoint

    made = []
    for i in range(1, 8):
        with registry.transaction() as session:
            append_in_session(session, event(i))
            cp = maybe_checkpoint(session, KEY, every=3)
            made.append(cp.seq if cp else None)
    assert made == [None, None, 3, None, None, 6, None]
    with registry.transaction() as session:
        report = verify_registry(session, KEY.public_key_bytes())
    assert report.ok and report.checkpoints == 2 and report.last_checkpoint_seq == 6
