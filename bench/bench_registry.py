"""Issuances per second with 1, 4 and 8 concurrent operator processes, SQLite vs PostgreSQL.

Each operator is a separate process that loads the root signer once, then issues keys
(two key pairs, two X.509 certificates, one audit entry, one transaction) for its own
agencies as fast as it can; all operators start together. The figure is the number of
completed issuances divided by the wall time from the first start to the last finish.

SQLite is the home's registry (WAL, synchronous=FULL). PostgreSQL is a throwaway server
started here on 127.0.0.1 with its durable defaults (fsync and synchronous_commit on),
stopped and deleted at the end (needs the server binaries; see tests/pg.py).

    python bench/bench_registry.py                 # both backends, 1 4 8 operators
    python bench/bench_registry.py --per-operator 20 --operators 1 8 --json
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PASSPHRASE = "bench passphrase, not a secret"


def _sandi(*args: str) -> None:
    from sandi_cli.main import main

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            main(list(args))
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise RuntimeError(f"sandi {' '.join(args[:6])} failed ({exc.code})") from None


def _operator(home: str, url: str, codes: list[str], barrier: Any, out: Any) -> None:
    from sandi.authority.issuance import issue_keys, load_issuer
    from sandi.home import Home
    from sandi.keystore import FixedPassphrase, MemoryKeyStore, open_keystore
    from sandi.registry import Registry

    h = Home(Path(home))
    registry = Registry(url)
    issuer = load_issuer(h, open_keystore(h, FixedPassphrase(PASSPHRASE)))
    keys = MemoryKeyStore()
    registry.schema_status()  # connect before the clock starts
    barrier.wait()
    start = time.perf_counter()
    for code in codes:
        issue_keys(registry, keys, issuer, code)
    out.put((start, time.perf_counter(), len(codes)))
    registry.dispose()


def run(home: Path, url: str, operators: int, per_operator: int, tag: str) -> float:
    from sandi.authority.agencies import add_agency
    from sandi.registry import Registry

    registry = Registry(url)
    plan = [[f"{tag}-N{operators}-W{w}-{i:03d}" for i in range(per_operator)] for w in range(operators)]
    for codes in plan:
        for code in codes:
            add_agency(registry, code, f"Bench agency {code}")
    registry.dispose()
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(operators), ctx.Queue()
    procs = [ctx.Process(target=_operator, args=(str(home), url, codes, barrier, out)) for codes in plan]
    for p in procs:
        p.start()
    results = [out.get(timeout=900) for _ in procs]
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"an operator process failed ({p.exitcode})")
    wall = max(end for _, end, _ in results) - min(start for start, _, _ in results)
    return sum(n for *_, n in results) / wall


def bench_backend(name: str, url: str | None, operators: list[int], per_operator: int,
                  workdir: Path) -> dict[int, float]:
    home = workdir / f"home-{name}"
    args = ["--home", str(home)] + (["--database-url", url] if url else [])
    _sandi(*args, "init", "--province", "Provinsi Bench")
    db_url = url or f"sqlite:///{home / 'registry.db'}"
    figures = {}
    for n in operators:
        figures[n] = run(home, db_url, n, per_operator, "B")
        print(f"{name:10s} {n} operator(s): {figures[n]:7.1f} issuances/s", file=sys.stderr, flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--operators", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--per-operator", type=int, default=40, help="issuances per operator and run")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--json", action="store_true")
    opts = parser.parse_args()

    os.environ.setdefault("SANDI_SCRYPT_WORK_FACTOR", "10")  # key store unlock is not measured
    os.environ["SANDI_PASSPHRASE"] = PASSPHRASE
    os.environ.setdefault("SANDI_OPERATOR", "bench")
    results: dict[str, dict[int, float]] = {}
    with tempfile.TemporaryDirectory(prefix="sandi-bench-") as tmp:
        work = Path(tmp)
        if opts.backend in ("sqlite", "both"):
            results["sqlite"] = bench_backend("sqlite", None, opts.operators, opts.per_operator, work)
        if opts.backend in ("postgresql", "both"):
            from tests.pg import DURABLE_SETTINGS, PgServer, PgUnavailable

            try:
                server = PgServer(settings=DURABLE_SETTINGS)
            except PgUnavailable as exc:
                print(f"postgresql skipped: {exc}", file=sys.stderr)
            else:
                try:
                    server.start()
                    results["postgresql"] = bench_backend(
                        "postgresql", server.url(), opts.operators, opts.per_operator, work)
                finally:
                    server.cleanup()
    info = {"cpus": os.cpu_count(), "per_operator": opts.per_operator, "issuances_per_second": results}
    if opts.json:
        print(json.dumps(info, indent=2))
        return
    print(f"issuances per second ({os.cpu_count()} CPUs, {opts.per_operator} issuances per operator)")
    print(f"{'operators':>10s} " + " ".join(f"{b:>11s}" for b in results))
    for n in opts.operators:
        print(f"{n:>10d} " + " ".join(f"{results[b][n]:>11.1f}" for b in results))


if __name__ == "__main__":
    main()
