"""Eight processes changing one registry at once, on SQLite and on PostgreSQL.

This test drives the registry directly (rows, constraints, row locks, the real audit
sink) with the same locking discipline the authority uses: lock the agency row before
deciding from it, append the audit entry last. What it must show: every operation is
either done exactly once or refused cleanly (RegistryConflict / a clear refusal),
unique things stay unique under races, nothing is lost, the counts add up and the
audit chain verifies.

The harness (:func:`run_workers`) is shared with the authority-level concurrency test.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue as queue_mod
import random
import secrets
import time
import traceback
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from sandi.audit.events import AuditEvent
from sandi.audit.registry_sink import append_in_session, iter_entries, read_checkpoints, read_head
from sandi.audit.verify import verify_chain
from sandi.errors import RegistryConflict, SandiError
from sandi.registry import Registry
from sandi.registry.models import AgencyRow, AuditEntryRow, CertificateRow, RevocationRow

WORKERS = 8
OPS = 60
AGENCY_POOL = 24  # codes shared by all workers: most adds collide
SERIAL_POOL = 10  # "hand-typed" serials shared by all workers: most collide

Outcome = tuple[str, str, str]  # (operation, "ok" | "refused:<ErrorClass>", key)


class Refused(SandiError):
    """The operation does not apply (nothing to renew, nothing to revoke)."""


def run_workers(target: Callable[..., list[Outcome]], args: list[tuple[Any, ...]],
                timeout: float = 240) -> list[list[Outcome]]:
    """Run ``target(*args[i])`` in separate processes started together; their outcomes.

    Processes, not threads: each has its own connections and its own interpreter, as
    operators on different desks do, and nothing in-process can serialise them.
    """
    # forkserver: a clean process (no connections, no threads of the test's own) that has
    # imported sandi once; each worker forks from it instead of importing everything again.
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload([
        "sqlalchemy.orm", "psycopg", "sandi.registry", "sandi.audit.registry_sink",
        "sandi.authority.issuance", "sandi.authority.lifecycle", "sandi.authority.revocation",
        target.__module__,
    ])
    queue = ctx.Queue()
    barrier = ctx.Barrier(len(args))
    procs = [ctx.Process(target=_worker_main, args=(i, target, a, barrier, queue))
             for i, a in enumerate(args)]
    for p in procs:
        p.start()
    results: dict[int, Any] = {}
    deadline = time.monotonic() + timeout
    try:
        while len(results) < len(procs):
            try:
                index, payload = queue.get(timeout=1)
                results[index] = payload
                continue
            except queue_mod.Empty:
                pass
            dead = [i for i, p in enumerate(procs) if not p.is_alive() and i not in results]
            # A child that died without reporting (crash at import) must not hang the test;
            # give its last message a moment to arrive through the queue first.
            if dead and queue.empty():
                time.sleep(1)
                if queue.empty():
                    raise AssertionError(f"worker(s) {dead} died without a result")
            if time.monotonic() > deadline:
                raise AssertionError(f"workers still running after {timeout} s")
    finally:
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
    failures = [r for r in results.values() if isinstance(r, str)]
    assert not failures, "a worker crashed:\n" + "\n".join(failures)
    return [results[i] for i in range(len(args))]


def _worker_main(index: int, target: Callable[..., list[Outcome]], args: tuple[Any, ...],
                 barrier: Any, queue: Any) -> None:
    try:
        barrier.wait(60)
        queue.put((index, target(*args)))
    except BaseException:
        queue.put((index, traceback.format_exc()))


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _audit(session: Any, action: str, subject: str) -> None:
    append_in_session(session, AuditEvent(actor=f"op{os.getpid()}", action=action, subject=subject))


def _add_agency(code: str) -> Callable[[Any], str]:
    def work(s: Any) -> str:
        now = _now()
        s.add(AgencyRow(code=code, name=f"Agency {code}", kind="agency", status="active",
                        created_at=now, updated_at=now))
        _audit(s, "agency.add", code)
        return code
    return work


def _issue(code: str, purpose: str, *, serial: str | None = None,
           renew: bool = False) -> Callable[[Any], str]:
    def work(s: Any) -> str:
        # Lock the agency first: concurrent issuances for one agency queue here, so
        # exactly one certificate per purpose stays current.
        agency = s.execute(select(AgencyRow).where(AgencyRow.code == code).with_for_update()).scalar()
        if agency is None:
            raise Refused(f"no agency {code}")
        current = s.execute(select(CertificateRow).where(
            CertificateRow.agency_id == agency.id, CertificateRow.purpose == purpose,
            CertificateRow.state == "current")).scalars().all()
        if renew and not current:
            raise Refused(f"nothing to renew for {code}")
        for cert in current:
            cert.state = "retired"
        now = _now()
        new_serial = serial or secrets.token_hex(16)
        s.add(CertificateRow(
            serial=new_serial, agency_id=agency.id, purpose=purpose,
            key_fingerprint=secrets.token_hex(32), public_key=secrets.token_bytes(32),
            cert_pem="-----BEGIN CERTIFICATE-----\n", not_before=now,
            not_after=now + timedelta(days=365), issued_at=now, state="current"))
        _audit(s, "key.renew" if renew else "key.issue", new_serial)
        return new_serial
    return work


def _revoke(rng: random.Random) -> Callable[[Any], str]:
    def work(s: Any) -> str:
        ids = s.execute(
            select(CertificateRow.id, CertificateRow.serial)
            .outerjoin(RevocationRow).where(RevocationRow.id.is_(None))
            .order_by(CertificateRow.id).limit(20)).all()
        if not ids:
            raise Refused("nothing to revoke")
        cert_id, serial = rng.choice(ids)
        # Two operators may pick the same certificate: the unique certificate_id
        # refuses the second (RegistryConflict), so no revocation is lost or doubled.
        s.add(RevocationRow(certificate_id=cert_id, reason="keyCompromise", revoked_at=_now(),
                            revoked_by="test"))
        _audit(s, "key.revoke", serial)
        return str(serial)
    return work


def registry_worker(url: str, seed: int, ops: int) -> list[Outcome]:
    rng = random.Random(seed)
    reg = Registry(url)
    out: list[Outcome] = []
    try:
        for i in range(ops):
            roll = rng.random()
            if i < 4 or roll < 0.25:
                op, work = "agency.add", _add_agency(f"A{rng.randrange(AGENCY_POOL):02d}")
            elif roll < 0.50:
                op = "key.issue"
                work = _issue(f"A{rng.randrange(AGENCY_POOL):02d}", rng.choice(["signing", "encryption"]))
            elif roll < 0.65:
                op = "key.renew"
                work = _issue(f"A{rng.randrange(AGENCY_POOL):02d}", "signing", renew=True)
            elif roll < 0.80:
                op, work = "key.revoke", _revoke(rng)
            else:
                op = "key.issue.fixed-serial"
                work = _issue(f"A{rng.randrange(AGENCY_POOL):02d}", "encryption",
                              serial=f"{rng.randrange(SERIAL_POOL):032x}")
            try:
                key = reg.run(work)
                out.append((op, "ok", key))
            except (RegistryConflict, Refused) as exc:
                out.append((op, f"refused:{type(exc).__name__}", ""))
    finally:
        reg.dispose()
    return out


def check_registry(url: str, outcomes: list[Outcome], *, expect_refusals: bool = True) -> dict[str, int]:
    """Everything the workers say they did is there exactly once, and nothing else."""
    reg = Registry(url)
    try:
        ok = Counter(op.removesuffix(".fixed-serial") for op, result, _ in outcomes if result == "ok")
        with reg.transaction() as s:
            n_agencies = s.scalar(select(sa.func.count()).select_from(AgencyRow))
            n_certs = s.scalar(select(sa.func.count()).select_from(CertificateRow))
            n_serials = s.scalar(select(sa.func.count(sa.distinct(CertificateRow.serial))))
            n_revocations = s.scalar(select(sa.func.count()).select_from(RevocationRow))
            n_revoked_certs = s.scalar(select(sa.func.count(sa.distinct(RevocationRow.certificate_id))))
            currents = s.execute(
                select(CertificateRow.agency_id, CertificateRow.purpose, sa.func.count())
                .where(CertificateRow.state == "current")
                .group_by(CertificateRow.agency_id, CertificateRow.purpose)).all()
            serials = set(s.scalars(select(CertificateRow.serial)))
            audit_actions = Counter(s.scalars(select(AuditEntryRow.action)))
            entries = list(iter_entries(s))
            report = verify_chain(entries, read_checkpoints(s), None, expected_head=read_head(s))
        assert report.ok, report.problem
        assert n_agencies == ok["agency.add"]
        assert n_certs == n_serials == ok["key.issue"] + ok["key.renew"]
        assert n_revocations == n_revoked_certs == ok["key.revoke"]
        assert all(count == 1 for *_, count in currents), "two current certificates for one purpose"
        assert audit_actions == ok, "one audit entry per completed operation, none for refused ones"
        assert report.entries == sum(ok.values()) == report.last_seq
        # Every serial a worker was told it got is in the registry (done once: counts above).
        told = [key for op, result, key in outcomes if result == "ok" and op.startswith("key.issue")]
        assert len(told) == len(set(told)) and set(told) <= serials
        refused = sum(1 for _, result, _ in outcomes if result != "ok")
        if expect_refusals:
            assert refused > 0, "the races this test sets up did not happen"
        return {"ok": sum(ok.values()), "refused": refused, "entries": report.entries}
    finally:
        reg.dispose()


@pytest.mark.slow
def test_eight_processes_on_one_registry(registry_url: str) -> None:
    Registry(registry_url).upgrade()
    outcomes = run_workers(registry_worker, [(registry_url, seed, OPS) for seed in range(WORKERS)])
    flat = [o for worker in outcomes for o in worker]
    assert len(flat) == WORKERS * OPS
    bad = [o for o in flat if not (o[1] == "ok" or o[1].startswith("refused:"))]
    assert bad == []
    stats = check_registry(registry_url, flat)
    # The shared pools make collisions certain: each code and fixed serial lands once.
    assert stats["ok"] + stats["refused"] == WORKERS * OPS
    reg = Registry(registry_url)
    with reg.transaction() as s:
        codes = s.scalars(select(AgencyRow.code)).all()
        fixed = [x for x in s.scalars(select(CertificateRow.serial)) if x.startswith("0" * 20)]
    reg.dispose()
    assert len(codes) == len(set(codes)) <= AGENCY_POOL
    assert len(fixed) == len(set(fixed)) <= SERIAL_POOL
