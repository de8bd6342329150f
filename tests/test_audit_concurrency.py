"""Concurrent appenders in separate processes: no lost entries, one valid chain."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from sandi.audit.events import AuditEvent
from sandi.audit.journal import Journal
from sandi.audit.registry_sink import append_in_session, iter_entries
from sandi.audit.verify import verify_journal, verify_registry
from sandi.keystore.keys import SigningKey
from sandi.registry import Registry

PER_PROCESS = 25


def _journal_worker(path: str, worker: int, count: int, start: Any) -> None:
    start.wait()
    journal = Journal(path)
    key = SigningKey.generate() if worker == 0 else None
    for i in range(count):
        journal.append(AuditEvent(f"w{worker}", "document.seal", f"w{worker}-{i}"))
        if key is not None and i % 10 == 9:
            journal.checkpoint(key)  # checkpoints interleave with other writers' entries


def _registry_worker(url: str, worker: int, count: int, start: Any) -> None:
    registry = Registry(url)
    start.wait()
    for i in range(count):
        with registry.transaction() as session:
            append_in_session(session, AuditEvent(f"w{worker}", "agency.add", f"w{worker}-{i}"))
    registry.dispose()


def _run(target: Any, arg: str, processes: int) -> None:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=target, args=(arg, w, PER_PROCESS, start)) for w in range(processes)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(timeout=240)
    codes = [p.exitcode for p in procs]
    assert codes == [0] * processes, codes


def _check_subjects(subjects: list[str], processes: int) -> None:
    counts = Counter(subjects)
    expected = {f"w{w}-{i}" for w in range(processes) for i in range(PER_PROCESS)}
    assert set(counts) == expected, "entries were lost"
    assert all(c == 1 for c in counts.values()), "entries were duplicated"


@pytest.mark.parametrize("processes", [2, 4, 8])
def test_concurrent_journal_appends_keep_one_chain(tmp_path: Path, processes: int) -> None:
    path = tmp_path / "audit.journal"
    _run(_journal_worker, str(path), processes)
    journal = Journal(path)
    entries = list(journal.entries())
    assert [e.seq for e in entries] == list(range(1, processes * PER_PROCESS + 1))
    _check_subjects([e.subject for e in entries], processes)
    report = verify_journal(journal, None)  # worker 0's key is gone; hashes still checked
    assert report.ok, report.problem
    assert report.checkpoints == 2  # worker 0 checkpointed after its 10th and 20th entries


@pytest.mark.parametrize("processes", [2, 4, 8])
def test_concurrent_registry_appends_keep_one_chain(registry_url: str, processes: int) -> None:
    Registry(registry_url).upgrade()  # the head row is created lazily, under contention
    _run(_registry_worker, registry_url, processes)
    registry = Registry(registry_url)
    with registry.transaction() as session:
        entries = list(iter_entries(session))
        report = verify_registry(session, None)
    registry.dispose()
    assert [e.seq for e in entries] == list(range(1, processes * PER_PROCESS + 1))
    _check_subjects([e.subject for e in entries], processes)
    assert report.ok, report.problem
