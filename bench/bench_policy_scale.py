"""Benchmark: seal and open with a large policy, from its source and from its compiled form.

Issue 20: "a large-policy seal (1,000 entities / 50,000 relations) within 1.2x of the
Banten policy". One run builds a throwaway authority (a real root made by ``sandi
init``, the Banten policy applied) and one workstation enrolled as DISKOMINFO, then
measures ``seal`` and ``open`` through the real CLI on a 1 KiB letter under four
installed directories, each signed by the real root with a higher version:

* ``banten  source``   — the Banten policy without its compiled form (what a directory
  published before the compiled form carried: the workstation parses and compiles TOML);
* ``banten  compiled`` — the same with the compiled form the authority made at apply;
* ``large   source`` / ``large   compiled`` — the same after the authority applied a
  generated policy of 1,000 entities (DISKOMINFO among them), 100 groups, 50,000
  relations and 500 forbids as the newer version in force (bench/bench_policy.py's
  generator).

Per command: wall time (median of ``--repeat``), CPU time (user + system, median:
steadier than wall time on a shared machine) and peak RSS (GNU time, the largest of the
runs); then each large figure's ratio to the same mode's Banten figure. The key stores
use a cheap scrypt work factor so the figures show the policy's cost, not the unlock's.

Usage:
  python bench/bench_policy_scale.py [--repeat 3] [--entities 1000] [--relations 50000]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from bench_policy import generate
from bench_scale import PASSPHRASE, SANDI, SENDER, build_homes, sandi
from bench_seal import timed
from benchutil import Run

if TYPE_CHECKING:
    from sandi.directory.snapshot import PolicyEntry

MODES = ("source", "compiled")


def large_policy(entities: int, relations: int, groups: int) -> str:
    """The generated policy as a newer version of banten-phks, DISKOMINFO one of its entities."""
    text = generate(entities, relations, groups)
    text = text.replace('id = "bench"', 'id = "banten-phks"', 1).replace("version = 1", "version = 2", 1)
    text = text.replace("effective = 2026-01-01", "effective = 2026-06-01", 1)
    text = re.sub(r"\bE00000\b", SENDER, text)
    # the letter goes to the sender itself (the one enrolled workstation): a rule must allow it
    return text + (f'\n[[relation]]\nid = "r-bench-self"\nfrom = "{SENDER}"\nto = "{SENDER}"\n'
                   'max = "SR"\ndirection = "one-way"\n')


def resigned(authority: Path, envelope: bytes, version: int, *, compiled: bool) -> tuple[bytes, PolicyEntry]:
    """``envelope`` re-signed by the real root as ``version``, its policies with or
    without their compiled forms."""
    from sandi.authority.root import load_root_signer
    from sandi.directory.snapshot import parse_envelope, sign_snapshot
    from sandi.home import Home
    from sandi.keystore import open_keystore
    from sandi.keystore.passphrase import FixedPassphrase

    home = Home(authority)
    signer = load_root_signer(home, open_keystore(home, FixedPassphrase(PASSPHRASE)))
    snapshot = parse_envelope(envelope, hashlib.sha256(signer.public_key_bytes()).hexdigest())
    policies = snapshot.policies if compiled else tuple(
        replace(p, compiled=None, compiled_signature=None) for p in snapshot.policies)
    if compiled and not all(p.compiled for p in policies):
        raise SystemExit("the authority published a policy without its compiled form")
    now = datetime.now(UTC)
    signed = sign_snapshot(replace(snapshot, version=version, issued_at=now - timedelta(minutes=1),
                                   expires_at=now + timedelta(days=7), policies=policies), signer)
    return signed, max(policies, key=lambda p: p.version)


def in_process(station: Path, entry: PolicyEntry) -> dict[str, float]:
    """CPU seconds, in this process, of what a document command does with the installed
    directory: verify and parse it whole (v1), then get the policy in force ready and
    decide once, from the source (signature, TOML parse, compile) or from the compiled
    form (signature, load, the rows the decision reads). Best of five."""
    from sandi.directory.local import installed_snapshot
    from sandi.home import Home
    from sandi.policy.versions import compile_verified, load_verified

    home = Home(station)
    snapshot = installed_snapshot(home)
    key = snapshot.root_certificate.public_key().public_bytes_raw()  # type: ignore[union-attr]
    at = datetime.now(UTC)

    def best(work: Callable[[], object]) -> float:
        times = []
        for _ in range(5):
            start = time.process_time()
            work()
            times.append(time.process_time() - start)
        return min(times)

    return {
        "directory": best(lambda: installed_snapshot(home)),
        "source": best(lambda: compile_verified(entry, key).decide(SENDER, SENDER, "B", at)),
        "compiled": best(lambda: load_verified(entry, key).decide(SENDER, SENDER, "B", at)),
    }


def measure(env: dict[str, str], station: Path, folder: Path, repeat: int) -> dict[str, Run]:
    folder.mkdir()
    letter = folder / "surat.txt"
    letter.write_bytes(os.urandom(512).hex().encode())  # 1 KiB
    sealed = folder / "surat.txt.age"
    base = [*SANDI, "--home", str(station)]
    commands = {
        "seal": [*base, "seal", str(letter), "--to", SENDER, "--class", "B", "--force", "-o", str(sealed)],
        "open": [*base, "open", str(sealed), "--force", "-o", str(folder / "opened.txt")],
    }
    out: dict[str, Run] = {}
    for name, argv in commands.items():
        runs = [timed(argv, env) for _ in range(repeat)]
        out[name] = Run(statistics.median(r.seconds for r in runs), statistics.median(r.cpu for r in runs),
                        max(r.max_rss_mib for r in runs))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--entities", type=int, default=1000)
    parser.add_argument("--relations", type=int, default=50_000)
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-policy-scale-"))
    env = {**os.environ, "SANDI_PASSPHRASE": PASSPHRASE,
           "SANDI_SCRYPT_WORK_FACTOR": os.environ.get("SANDI_SCRYPT_WORK_FACTOR", "10"),
           "SANDI_LANG": "en", "LANG": "C.UTF-8"}
    env.pop("SANDI_HOME", None)
    os.environ["SANDI_SCRYPT_WORK_FACTOR"] = env["SANDI_SCRYPT_WORK_FACTOR"]
    results: dict[tuple[str, str], dict[str, Run]] = {}
    breakdown: dict[str, dict[str, float]] = {}
    sizes: dict[str, tuple[int, int, int]] = {}
    try:
        authority, station, banten_envelope = build_homes(work, env)
        policy = work / "large.toml"
        policy.write_text(large_policy(args.entities, args.relations, args.groups))
        start = time.perf_counter()
        sandi(env, authority, "policy", "apply", policy)
        apply_seconds = time.perf_counter() - start
        large_envelope = work / "directory-large.json"
        sandi(env, authority, "directory", "publish", "-o", large_envelope)
        version = 1000
        for name, envelope in (("banten", banten_envelope), ("large", large_envelope.read_bytes())):
            for mode in MODES:
                version += 1
                path = work / f"directory-{name}-{mode}.json"
                signed, entry = resigned(authority, envelope, version, compiled=mode == "compiled")
                path.write_bytes(signed)
                sandi(env, station, "directory", "import", path)
                results[(name, mode)] = measure(env, station, work / f"docs-{name}-{mode}", args.repeat)
                print(f"{name} {mode}: measured", file=sys.stderr)
                if mode == "compiled":
                    breakdown[name] = in_process(station, entry)
            sizes[name] = (path.stat().st_size, len(entry.source.encode()),
                           len((entry.compiled or "").encode()))
        report(results, sizes, apply_seconds, args)
        print("\nin process, CPU s (best of 5): verify + parse the installed directory.json | "
              "policy ready + first decision from the TOML source | from the compiled form")
        for name, figures in breakdown.items():
            print(f"{name:>7}: directory {figures['directory']:.3f} | source {figures['source']:.3f} | "
                  f"compiled {figures['compiled']:.4f}")
    finally:
        if args.keep:
            print(f"work folder kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def report(results: dict[tuple[str, str], dict[str, Run]], sizes: dict[str, tuple[int, int, int]],
           apply_seconds: float, args: argparse.Namespace) -> None:
    print(f"large policy: {args.entities} entities, {args.groups} groups, {args.relations} relations, "
          f"{args.relations // 100} forbids; 'policy apply' (parse, compile, sign, store) "
          f"{apply_seconds:.1f} s wall")
    for name, (directory, source, compiled) in sizes.items():
        print(f"{name:>7}: directory.json {directory / 1e6:.2f} MB, policy source {source / 1e6:.2f} MB, "
              f"compiled form {compiled / 1e6:.2f} MB")
    head = f"{'policy':>7} {'workstation decides from':>25} " + " ".join(
        f"{n + ' s':>8} {'cpu s':>6} {'MiB':>6}" for n in ("seal", "open"))
    print(head)
    print("-" * len(head))
    for (name, mode), runs in results.items():
        label = "TOML source (before)" if mode == "source" else "compiled form (after)"
        print(f"{name:>7} {label:>25} " + " ".join(
            f"{runs[n].seconds:>8.3f} {runs[n].cpu:>6.2f} {runs[n].max_rss_mib:>6.1f}"
            for n in ("seal", "open")))
    print("\nlarge / banten (goal: seal within 1.2x):")
    for mode in MODES:
        large, banten = results[("large", mode)], results[("banten", mode)]
        label = "TOML source (before)" if mode == "source" else "compiled form (after)"
        print(f"{'':>7} {label:>25} " + " ".join(
            f"{large[n].seconds / banten[n].seconds:>8.2f} {large[n].cpu / banten[n].cpu:>6.2f} "
            f"{large[n].max_rss_mib / banten[n].max_rss_mib:>6.2f}" for n in ("seal", "open")))


if __name__ == "__main__":
    main()
