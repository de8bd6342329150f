"""Audit log benchmark: appends per second (journal, SQLite registry) and verify time.

    /work/venv/bin/python bench/bench_audit.py [--verify-entries 1000000] [--appends 2000]

Figures:
* journal appends: one ``Journal.append`` each (open, flock, read tail, write, fsync);
* registry (SQLite, synchronous=FULL, WAL): one entry per transaction (the way commands
  record: each change with its entry) and, for comparison, 100 entries per transaction;
* verify: a journal of N entries (default 1,000,000) with a checkpoint every 10,000,
  written directly with the same chain logic, then ``verify_journal`` on it (parse every
  line, recompute every hash, check every link and checkpoint signature); and
  ``verify_registry`` on a registry of ``--registry-verify-entries`` rows.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from sandi.audit.checkpoint import sign_checkpoint
from sandi.audit.entry import GENESIS_HASH, make_entry
from sandi.audit.events import AuditEvent
from sandi.audit.journal import Journal, checkpoint_line, entry_line
from sandi.audit.registry_sink import append_in_session
from sandi.audit.verify import verify_journal, verify_registry
from sandi.keystore.keys import SigningKey
from sandi.registry import Registry


def event(i: int) -> AuditEvent:
    return AuditEvent("operator", "document.seal", f"surat-{i}.pdf",
                      details={"to": ["BAPPEDA", "DISKOMINFO"], "class": "R", "size": 1000 + i})


def bench_journal(folder: Path, n: int) -> float:
    journal = Journal(folder / "append.journal")
    start = time.perf_counter()
    for i in range(n):
        journal.append(event(i))
    return n / (time.perf_counter() - start)


def bench_registry(folder: Path, n: int, per_tx: int) -> float:
    registry = Registry(f"sqlite:///{folder / f'r{per_tx}.db'}")
    registry.upgrade()
    start = time.perf_counter()
    for b in range(n // per_tx):
        with registry.transaction() as session:
            for i in range(per_tx):
                append_in_session(session, event(b * per_tx + i))
    rate = (n // per_tx) * per_tx / (time.perf_counter() - start)
    registry.dispose()
    return rate


def build_journal(path: Path, n: int, key: SigningKey, every: int) -> None:
    seq, head = 0, GENESIS_HASH
    with open(path, "wb", buffering=1 << 20) as f:
        for i in range(n):
            entry = make_entry(event(i), prev_seq=seq, prev_hash=head)
            f.write(entry_line(entry))
            seq, head = entry.seq, entry.hash
            if seq % every == 0:
                f.write(checkpoint_line(sign_checkpoint(key, seq, head)))


def build_registry(url: str, n: int) -> None:
    registry = Registry(url)
    registry.upgrade()
    batch = 10_000
    for b in range(0, n, batch):
        with registry.transaction() as session:
            for i in range(b, min(n, b + batch)):
                append_in_session(session, event(i))
    registry.dispose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--appends", type=int, default=2000)
    ap.add_argument("--verify-entries", type=int, default=1_000_000)
    ap.add_argument("--registry-verify-entries", type=int, default=100_000)
    args = ap.parse_args()
    key = SigningKey.generate()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        folder = Path(tmp)
        print(f"python {sys.version.split()[0]}, folder {folder}", flush=True)
        rate = bench_journal(folder, args.appends)
        print(f"journal append (flock + fsync each):        {rate:8.0f} entries/s", flush=True)
        rate = bench_registry(folder, args.appends // 2, 1)
        print(f"registry SQLite, 1 entry per transaction:   {rate:8.0f} entries/s", flush=True)
        rate = bench_registry(folder, args.appends, 100)
        print(f"registry SQLite, 100 entries per transaction:{rate:7.0f} entries/s", flush=True)

        path = folder / "big.journal"
        start = time.perf_counter()
        build_journal(path, args.verify_entries, key, every=10_000)
        built = time.perf_counter() - start
        size = path.stat().st_size
        print(f"built a {args.verify_entries}-entry journal ({size / 1e6:.0f} MB) in {built:.1f} s",
              flush=True)
        start = time.perf_counter()
        report = verify_journal(Journal(path), key.public_key_bytes())
        took = time.perf_counter() - start
        assert report.ok and report.last_seq == args.verify_entries, report
        print(f"verify journal, {report.entries} entries, {report.checkpoints} checkpoints: "
              f"{took:.1f} s ({report.entries / took:.0f} entries/s)", flush=True)

        n = args.registry_verify_entries
        url = f"sqlite:///{folder / 'verify.db'}"
        build_registry(url, n)
        registry = Registry(url)
        start = time.perf_counter()
        with registry.transaction() as session:
            report = verify_registry(session, key.public_key_bytes())
        took = time.perf_counter() - start
        assert report.ok and report.last_seq == n, report
        print(f"verify registry SQLite, {n} entries: {took:.1f} s ({n / took:.0f} entries/s; "
              f"1,000,000 would take ~{1_000_000 * took / n:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
