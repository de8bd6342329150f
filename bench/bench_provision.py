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
"""

from __future__ import annotations

import argparse
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
    args = parser.parse_args()
    os.environ.setdefault("SANDI_SCRYPT_WORK_FACTOR", "10")
    os.environ.setdefault("SANDI_OPERATOR", "bench")

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
