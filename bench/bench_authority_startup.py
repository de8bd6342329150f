"""Benchmark the fixed cost of an authority command: what it spends before doing anything.

    .venv/bin/python bench/bench_authority_startup.py [--runs 11] [--baseline-src CHECKOUT]

On an authority home with a few agencies it runs, interleaved, each command ``--runs``
times as a fresh process and prints the median wall and CPU (user + system) time:

* the floors: ``python -c pass`` and ``python -c "import sqlalchemy.orm"`` (what any
  command that opens the registry pays to import SQLAlchemy at all);
* ``sandi db status``, ``sandi agency list``, ``sandi agency show CODE`` (read-only:
  start-up, registry open, schema check, one listing; no directory republish).

With ``--baseline-src`` (another checkout of sandi, e.g. a ``git worktree`` of an older
commit) the same commands also run from that source on the same home, side by side:
before/after of a change. The baseline must understand the home's schema (same
migrations). Python may write bytecode (a private ``PYTHONPYCACHEPREFIX``) and every
command runs once untimed first, as an installed program's would be cached.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PASSPHRASE = "bench-passphrase-throwaway"  # a throwaway passphrase for a throwaway home


def run_timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    # cwd outside any checkout: ``python -m`` puts the working folder first on sys.path
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmarked command failed: {' '.join(argv)}\n{err}")
    return wall, usage.ru_utime + usage.ru_stime


def source_shim(checkout: Path, into: Path) -> Path:
    """A folder that puts ``checkout``'s ``sandi`` and ``sandi_cli`` first on sys.path."""
    into.mkdir(parents=True, exist_ok=True)
    (into / "sandi").symlink_to(checkout.resolve() / "sandi")
    (into / "sandi_cli").symlink_to(checkout.resolve() / "cli")
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--baseline-src", type=Path, help="a sandi checkout to compare with")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sandi-bench-") as tmp_name:
        tmp = Path(tmp_name)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SANDI_")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.update({"PYTHONPYCACHEPREFIX": str(tmp / "pycache"), "SANDI_PASSPHRASE": PASSPHRASE,
                    "SANDI_SCRYPT_WORK_FACTOR": "10", "SANDI_OPERATOR": "bench", "SANDI_LANG": "en"})
        home = tmp / "authority"
        sandi = [sys.executable, "-m", "sandi", "--home", str(home)]
        setup = [["init", "--province", "Provinsi Banten"]]
        setup += [["agency", "add", f"AG-{i:02d}", "--name", f"Agency {i}"] for i in range(5)]
        for step in setup:
            subprocess.run([*sandi, *step], env=env, cwd=tmp, check=True, capture_output=True)

        variants = {"sandi": env}
        if args.baseline_src:
            base_env = dict(env)
            base_env["PYTHONPATH"] = str(source_shim(args.baseline_src, tmp / "baseline"))
            base_env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache-baseline")
            variants = {"baseline": base_env, "sandi": env}

        floors = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "import sqlalchemy.orm": [sys.executable, "-c", "import sqlalchemy.orm"],
        }
        commands = {
            "db status": ["db", "status"],
            "agency list": ["agency", "list"],
            "agency show AG-01": ["agency", "show", "AG-01"],
        }
        jobs: list[tuple[str, str, list[str], dict[str, str]]] = [
            (name, "floor", argv, env) for name, argv in floors.items()]
        for variant, venv in variants.items():
            jobs += [(name, variant, [*sandi, *argv], venv) for name, argv in commands.items()]
        for _, _, argv, venv in jobs:  # warm the bytecode caches
            run_timed(argv, venv, tmp)
        times: dict[tuple[str, str], list[tuple[float, float]]] = {(n, v): [] for n, v, _, _ in jobs}
        for _ in range(args.runs):
            for name, variant, argv, venv in jobs:
                times[(name, variant)].append(run_timed(argv, venv, tmp))

        print(f"load average {os.getloadavg()[0]:.2f}; {args.runs} runs each, medians")
        print(f"{'command':<24}{'variant':<10}{'wall s':>8}{'cpu s':>8}")
        report = {}
        for (name, variant), samples in times.items():
            wall = statistics.median(s[0] for s in samples)
            cpu = statistics.median(s[1] for s in samples)
            report[f"{variant}: {name}"] = {"wall": round(wall, 3), "cpu": round(cpu, 3)}
            print(f"{name:<24}{variant:<10}{wall:>8.3f}{cpu:>8.3f}")
        if os.environ.get("BENCH_JSON"):
            Path(os.environ["BENCH_JSON"]).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
