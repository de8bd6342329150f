"""Benchmark: provision N agencies (register + issue both keys) on SQLite, via the library.

    /work/venv/bin/python bench/bench_provision.py [--agencies 1000] [--cli 20] [--cli-bulk 200]

Each agency is one `add_agency` transaction and one `issue_keys` transaction (two
certificates signed by the root, two audit entries, two key files age-encrypted to
the file key store with O_EXCL + fsync). The key store's scrypt work factor only
affects unlocking the store (once), so it is lowered to keep setup fast.
Optionally also times the command line (`sandi agency add` + `sandi keys issue`,
in-process) for a few agencies, which adds startup, passphrase handling and a directory
republish per call; and `sandi keys issue --all` for agencies registered beforehand,
which republishes once for the whole batch.

``--cli-scale 50,10000`` is the provisioning benchmark of issue 20: for each size, a
fresh authority (``sandi init``) whose registry is filled to that many agencies by a
fast path (bulk rows through SQLAlchemy Core: each synthetic agency gets copies of a
real certificate under its own serial and key fingerprint, as bench_scale does, and one
directory is published from them), then ``--per-size`` new agencies are provisioned one
at a time through the real command line, each command a fresh process as an operator
runs it: ``sandi agency add CODE`` then ``sandi keys issue CODE`` (each republishes the
directory). Prints the median wall and CPU time per command at each size and the ratio
to the first size, and the delta a workstation takes for the first of those agencies
(its size, and ``sandi directory import`` of it on a workstation that imported the
directory before). Goals (issue 20): 10,000 within 1.5x of 50; a one-agency change
applied under 0.1 s and under 20 KB.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agencies", type=int, default=1000)
    parser.add_argument("--cli", type=int, default=0, help="also time this many agencies through the CLI")
    parser.add_argument("--cli-bulk", type=int, default=0,
                        help="also time 'sandi keys issue --all' for this many registered agencies")
    parser.add_argument("--cli-scale", help="comma-separated registry sizes, e.g. 50,10000")
    parser.add_argument("--per-size", type=int, default=3, help="agencies provisioned per size")
    args = parser.parse_args()
    os.environ.setdefault("SANDI_SCRYPT_WORK_FACTOR", "10")
    os.environ.setdefault("SANDI_OPERATOR", "bench")
    if args.cli_scale:
        cli_scale([int(n) for n in args.cli_scale.split(",")], args.per_size)
        return

    from sandi.authority.agencies import add_agency
    from sandi.authority.issuance import issue_keys, load_issuer
    from sandi.authority.profiles import load_profile
    from sandi.authority.root import create_root
    from sandi.home import Home, HomeConfig
    from sandi.keystore import FixedPassphrase, create_keystore
    from sandi.registry import Registry

    with tempfile.TemporaryDirectory(prefix="sandi-bench-") as tmp:
        home = Home(Path(tmp) / "authority")
        home.create(HomeConfig(role="authority", province="Provinsi Banten"))
        registry = Registry(home.database_url())
        registry.upgrade()
        keystore = create_keystore(home, FixedPassphrase("bench"))
        create_root(home, keystore, "Provinsi Banten", registry=registry)
        issuer = load_issuer(home, keystore)
        profile = load_profile()

        t0 = time.perf_counter()
        register = issue = 0.0
        for i in range(args.agencies):
            code = f"AG-{i:05d}"
            a = time.perf_counter()
            add_agency(registry, code, f"Agency {i}")
            b = time.perf_counter()
            issue_keys(registry, keystore, issuer, code, profile=profile)
            c = time.perf_counter()
            register += b - a
            issue += c - b
        total = time.perf_counter() - t0
        n = args.agencies
        print(f"library: {n} agencies provisioned in {total:.2f} s = {n / total:.1f} agencies/s "
              f"(register {1000 * register / n:.2f} ms, issue {1000 * issue / n:.2f} ms per agency)")
        _directory_figures(home, registry, issuer)

        if args.cli:
            from sandi_cli.main import main as cli_main

            os.environ["SANDI_PASSPHRASE"] = "bench"
            t0 = time.perf_counter()
            for i in range(args.cli):
                code = f"CLI-{i:05d}"
                for argv in (["--home", str(home.path), "agency", "add", code, "--name", f"CLI {i}"],
                             ["--home", str(home.path), "keys", "issue", code]):
                    try:
                        cli_main(argv)
                    except SystemExit as exc:
                        if exc.code:
                            raise
            total = time.perf_counter() - t0
            print(f"cli (in-process, output included): {args.cli} agencies in {total:.2f} s = "
                  f"{args.cli / total:.1f} agencies/s")

        if args.cli_bulk:
            from sandi_cli.main import main as cli_main

            os.environ["SANDI_PASSPHRASE"] = "bench"
            for i in range(args.cli_bulk):
                add_agency(registry, f"BULK-{i:05d}", f"Bulk {i}")
            t0 = time.perf_counter()
            try:
                cli_main(["--home", str(home.path), "keys", "issue", "--all"])
            except SystemExit as exc:
                if exc.code:
                    raise
            total = time.perf_counter() - t0
            print(f"cli 'keys issue --all' (in-process, output included): {args.cli_bulk} agencies in "
                  f"{total:.2f} s = {args.cli_bulk / total:.1f} agencies/s (directory already holds "
                  f"{args.agencies + args.cli} agencies)")


SCALE_PASSPHRASE = "bench-provision-passphrase"  # a throwaway passphrase for throwaway homes


def _timed_cli(env: dict[str, str], home: Path, *args: str) -> tuple[float, float]:
    """(wall s, CPU s) of one command in a fresh process (resource usage of that child)."""
    import subprocess
    import sys

    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "sandi", "--home", str(home), *args], env=env,
                            cwd=home.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"sandi {' '.join(args)} failed: {err}")
    return wall, usage.ru_utime + usage.ru_stime


def fill_registry(home_path: Path, agencies: int) -> None:
    """Bring the registry to ``agencies`` agencies fast: Core bulk inserts of synthetic
    agencies carrying copies of a real certificate (own serials and key fingerprints),
    then one publication (through the library) so the directory has that size too."""
    import hashlib
    from datetime import UTC, datetime

    from sqlalchemy import insert, select

    from sandi.authority.agencies import add_agency
    from sandi.authority.issuance import issue_keys, load_issuer
    from sandi.authority.profiles import load_profile
    from sandi.directory.publish import republish
    from sandi.home import Home
    from sandi.keystore import FixedPassphrase, open_keystore
    from sandi.registry import Registry
    from sandi.registry.changes import mark_agencies
    from sandi.registry.models import AgencyRow, CertificateRow

    home = Home(home_path)
    registry = Registry(home.database_url())
    keystore = open_keystore(home, FixedPassphrase(SCALE_PASSPHRASE))
    issuer = load_issuer(home, keystore)
    add_agency(registry, "TEMPLATE", "Template agency")
    issue_keys(registry, keystore, issuer, "TEMPLATE", profile=load_profile())
    now = datetime.now(UTC)
    with registry.transaction() as session:
        template = session.scalars(select(CertificateRow)).all()
        first_id = (session.scalar(select(AgencyRow.id).order_by(AgencyRow.id.desc()).limit(1)) or 0) + 1
        n = max(0, agencies - 1)
        session.execute(insert(AgencyRow), [
            {"id": first_id + i, "code": f"SYN{i:06d}", "name": f"Perangkat Daerah Sintetis {i}",
             "kind": "dinas", "status": "active", "created_at": now, "updated_at": now}
            for i in range(n)])
        session.execute(insert(CertificateRow), [
            {"serial": f"{0x5000000 + i:x}{j}", "agency_id": first_id + i, "purpose": c.purpose,
             "key_fingerprint": hashlib.sha256(f"SYN{i:06d}/{j}".encode()).hexdigest(),
             "public_key": c.public_key, "cert_pem": c.cert_pem, "not_before": c.not_before,
             "not_after": c.not_after, "issued_at": c.issued_at, "state": "current",
             "profile": c.profile}
            for i in range(n) for j, c in enumerate(template)])
        # Core inserts bypass the registry's change hook: mark them for the leaf store.
        mark_agencies(session, range(first_id, first_id + n))
    republish(home, registry, issuer)
    registry.dispose()


def cli_scale(sizes: list[int], per_size: int) -> None:
    import statistics
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDI_")}
    env.update({"SANDI_PASSPHRASE": SCALE_PASSPHRASE, "SANDI_SCRYPT_WORK_FACTOR": "10",
                "SANDI_OPERATOR": "bench", "SANDI_LANG": "en"})
    os.environ.update(env)
    rows = []
    with tempfile.TemporaryDirectory(prefix="sandi-bench-") as tmp:
        for size in sizes:
            home = Path(tmp) / f"authority-{size}"
            subprocess.run([sys.executable, "-m", "sandi", "--home", str(home), "init", "--province",
                            "Provinsi Banten"], env=env, cwd=tmp, check=True, capture_output=True)
            t = time.perf_counter()
            fill_registry(home, size)
            fill = time.perf_counter() - t
            _timed_cli(env, home, "agency", "list")  # warm the bytecode cache
            # A workstation holding this size's directory, to take the first change as a delta.
            shown = subprocess.run([sys.executable, "-m", "sandi", "--home", str(home), "--json", "directory",
                                    "show"], env=env, cwd=tmp, check=True, capture_output=True).stdout
            facts = json.loads(shown)
            station = Path(tmp) / f"station-{size}"
            subprocess.run([sys.executable, "-m", "sandi", "--home", str(station), "init", "--agency",
                            "TEMPLATE", "--root-fingerprint", facts["root_fingerprint"]],
                           env=env, cwd=tmp, check=True, capture_output=True)
            _timed_cli(env, station, "directory", "import", str(home / "directory.json"))
            add: list[tuple[float, float]] = []
            issue: list[tuple[float, float]] = []
            delta_bytes, apply, in_process = 0, (0.0, 0.0), (0.0, 0.0)
            for i in range(per_size):
                code = f"NEW-{i:03d}"
                add.append(_timed_cli(env, home, "agency", "add", code, "--name", f"New agency {i}"))
                issue.append(_timed_cli(env, home, "keys", "issue", code))
                if i == 0:  # one agency added and issued: the delta a workstation fetches
                    delta = Path(tmp) / f"delta-{size}.json"
                    _timed_cli(env, home, "directory", "delta", "--from", str(facts["version"]),
                               "-o", str(delta))
                    delta_bytes = delta.stat().st_size
                    full = home.joinpath("directory.json").read_bytes()  # the version it leads to
                    in_process = _in_process_apply(station, delta.read_bytes(), full)
                    apply = _timed_cli(env, station, "directory", "import", str(delta))
            size_mb = home.joinpath("directory.json").stat().st_size / 1e6
            rows.append((size, fill, size_mb,
                         statistics.median(w for w, _ in add), statistics.median(c for _, c in add),
                         statistics.median(w for w, _ in issue), statistics.median(c for _, c in issue),
                         delta_bytes, apply[0], apply[1], *in_process))
            print(f"  {size} agencies ready (filled in {fill:.1f} s)", flush=True)
    print(f"load average {os.getloadavg()[0]:.2f}; {per_size} agencies per size, each command a fresh "
          "process; medians (wall / CPU seconds)")
    print(f"{'agencies':>9} {'directory':>10} {'agency add':>17} {'keys issue':>17} {'ratio (cpu)':>12} "
          f"{'delta':>9} {'import delta':>17} {'apply':>7} {'full import':>12}")
    base = rows[0]
    for size, _, mb, aw, ac, iw, ic, dbytes, dw, dc, apply_cpu, full_cpu in rows:
        ratio = (ac + ic) / (base[4] + base[6])
        print(f"{size:>9,} {mb:>8.1f}MB {aw:>8.2f}/{ac:<8.2f} {iw:>8.2f}/{ic:<8.2f} {ratio:>11.2f}x "
              f"{dbytes:>8,}B {dw:>8.2f}/{dc:<8.2f} {apply_cpu:>7.3f} {full_cpu:>12.3f}")
    print("delta: 'sandi directory delta' after one agency's add + issue; import delta: 'sandi directory "
          "import' of it on a workstation holding the directory before them (a fresh process); apply / "
          "full import: CPU seconds in-process, the same workstation (copied) taking that version by "
          "apply_delta, and by importing the full directory of that version (the baseline)")


def _in_process_apply(station: Path, delta: bytes, full: bytes) -> tuple[float, float]:
    """CPU seconds of apply_delta on a copy of ``station`` and of import_envelope of the
    full directory of the same version on another copy (both sides, one run)."""
    import shutil

    from sandi.directory.delta import apply_delta
    from sandi.directory.local import import_envelope
    from sandi.home import Home

    out = []
    def by_delta(home: Home) -> object:
        return apply_delta(home, delta)

    def in_full(home: Home) -> object:
        return import_envelope(home, full)

    sides = (("apply", by_delta), ("full", in_full))
    for name, run in sides:
        copy = station.with_name(f"{station.name}-{name}")
        shutil.copytree(station, copy)
        start = time.process_time()
        run(Home(copy))
        out.append(time.process_time() - start)
        shutil.rmtree(copy)
    return out[0], out[1]


def _directory_figures(home: Any, registry: Any, issuer: Any) -> None:
    """What the province's size costs every command: publishing the directory (each
    change on an authority) and reading it (each document command, with its signature
    checked)."""
    import statistics

    from sandi.directory.local import installed_snapshot
    from sandi.directory.publish import republish

    publish = []
    for _ in range(3):
        t = time.perf_counter()
        snapshot = republish(home, registry, issuer)
        publish.append(time.perf_counter() - t)
    load = []
    for _ in range(5):
        t = time.perf_counter()
        installed_snapshot(home)
        load.append(time.perf_counter() - t)
    size = home.directory_path.stat().st_size
    print(f"directory: {len(snapshot.agencies)} agencies, {size / 1e6:.1f} MB; publish "
          f"{statistics.median(publish):.3f} s, read + verify {statistics.median(load):.3f} s (medians)")


if __name__ == "__main__":
    main()
