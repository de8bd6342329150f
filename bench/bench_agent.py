"""Benchmark: a day of seals with the key agent (one unlock) beside today's per-command unlock.

One run builds a throwaway authority home (DISKOMINFO and BAPPEDA with keys) whose file
key store has the default scrypt work factor (18, as ``sandi init`` makes it; the
``--work-factor`` option lowers it for a smoke pass only), then seals the same 1 KiB
letter N times (``--seals``, 100 by default) with ``sandi seal`` as separate commands,
DISKOMINFO -> BAPPEDA:

* **without agent**: every command gets the passphrase (``SANDI_PASSPHRASE``) and
  unlocks the store itself: one scrypt each;
* **with agent**: ``sandi agent start`` once (the one unlock, counted in the total), then
  the same N commands with no passphrase at all: they can only sign through the agent.
  The agent process's own CPU and peak RSS are added (read from ``/proc`` before it is
  stopped: it is not our child).

Printed side by side: total wall time, total CPU (user + system, every process), the
largest peak RSS of one command, the agent's own peak RSS, and per-seal wall time.
The first, the last and every tenth sealed file of each run are opened afterwards
(through the agent) and compared with the letter. ``--json``
prints the figures as JSON. Linux only (GNU time, ``/proc``).

Usage:
  python bench/bench_agent.py [--seals 100] [--work-factor 18] [--dir /tmp] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchutil import Run

PASSPHRASE = "bench-agent-store-passphrase 2026"


def timed(argv: list[str], env: dict[str, str]) -> Run:
    """Run ``argv`` under GNU time: wall, user + system CPU, the child's own peak RSS."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss_file:
        start = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", rss_file.name, *argv], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.decode()}")
        user, system, kib = rss_file.read().split()[-3:]
    return Run(elapsed, float(user) + float(system), int(kib) / 1024)


def process_figures(pid: int) -> tuple[float, float, float]:
    """CPU seconds (user + system), peak RSS and current RSS in MiB of a running process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    status = {line.split(":")[0]: line.split()[1] for line in lines if line.startswith(("VmHWM:", "VmRSS:"))}
    return cpu, int(status["VmHWM"]) / 1024, int(status["VmRSS"]) / 1024


def build_home(root: Path, env: dict[str, str]) -> Path:
    home = root / "home"
    sandi = [sys.executable, "-m", "sandi", "--home", str(home)]
    steps = [["init", "--province", "Provinsi Banten"],
             ["agency", "add", "DISKOMINFO", "--name", "Dinas Komunikasi dan Informatika"],
             ["agency", "add", "BAPPEDA", "--name", "Badan Perencanaan Pembangunan Daerah"],
             ["keys", "issue", "DISKOMINFO", "BAPPEDA"]]
    for step in steps:
        subprocess.run([*sandi, *step], env=env, check=True, stdout=subprocess.DEVNULL)
    return home


def seal_day(home: Path, letter: Path, out: Path, seals: int, env: dict[str, str]) -> list[Run]:
    out.mkdir()
    sandi = [sys.executable, "-m", "sandi", "--home", str(home)]
    return [timed([*sandi, "seal", str(letter), "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "B",
                   "-o", str(out / f"surat-{i:03d}.sandi")], env) for i in range(seals)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seals", type=int, default=100)
    parser.add_argument("--work-factor", type=int, default=18,
                        help="scrypt work factor of the store (18 is sandi's default; lower only for smoke)")
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not Path("/usr/bin/time").exists() or not Path("/proc/self/status").exists():
        raise SystemExit("needs GNU time (/usr/bin/time) and /proc (Linux)")

    root = Path(tempfile.mkdtemp(prefix="bench-agent-", dir=args.dir))
    runtime = Path(tempfile.mkdtemp(prefix="ba-", dir="/tmp"))  # short: socket paths are limited
    base = {k: v for k, v in os.environ.items() if not k.startswith("SANDI_")}
    base.update({"XDG_RUNTIME_DIR": str(runtime), "SANDI_OPERATOR": "bench", "LANG": "C"})
    with_pass = {**base, "SANDI_PASSPHRASE": PASSPHRASE, "SANDI_SCRYPT_WORK_FACTOR": str(args.work_factor)}
    sandi_home: Path | None = None
    try:
        sandi_home = build_home(root, with_pass)
        letter = root / "surat.txt"
        letter.write_bytes(b"Dengan hormat, rapat koordinasi persandian.\n" * 23)  # ~1 KiB

        started = time.perf_counter()
        without = seal_day(sandi_home, letter, root / "without", args.seals, with_pass)
        without_wall = time.perf_counter() - started

        sandi = [sys.executable, "-m", "sandi", "--home", str(sandi_home)]
        started = time.perf_counter()
        start_run = timed([*sandi, "agent", "start", "--timeout", "8h", "--idle-timeout", "1h"], with_pass)
        status = json.loads(subprocess.run([*sandi, "--json", "agent", "status"], env=base, check=True,
                                           capture_output=True).stdout)
        agent_pid = int(status["pid"])
        with_agent = seal_day(sandi_home, letter, root / "with", args.seals, base)  # no passphrase
        with_wall = time.perf_counter() - started
        # Documents of both runs open (through the agent; not timed): the first, the last
        # and every tenth of each.
        for sealed in [p for run in ("with", "without") for i, p in enumerate(sorted((root / run).iterdir()))
                       if i % 10 == 0 or i == args.seals - 1]:
            subprocess.run([*sandi, "open", str(sealed), "--as", "BAPPEDA", "-o", str(root / "opened.txt"),
                            "--force"], env=base, check=True, stdout=subprocess.DEVNULL)
            if (root / "opened.txt").read_bytes() != letter.read_bytes():
                raise SystemExit(f"{sealed} did not open to the letter")
        agent_cpu, agent_rss, agent_rss_now = process_figures(agent_pid)
        subprocess.run([*sandi, "agent", "stop"], env=base, check=True, stdout=subprocess.DEVNULL)
    finally:
        if sandi_home is not None:
            subprocess.run([sys.executable, "-m", "sandi", "--home", str(sandi_home), "agent", "stop"],
                           env=base, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(runtime, ignore_errors=True)

    figures = {
        "seals": args.seals,
        "work_factor": args.work_factor,
        "without_agent": {
            "wall_s": round(without_wall, 2),
            "cpu_s": round(sum(r.cpu for r in without), 2),
            "peak_rss_mib": round(max(r.max_rss_mib for r in without), 1),
            "per_seal_wall_s": round(without_wall / args.seals, 3),
            "unlocks": args.seals,
        },
        "with_agent": {
            "wall_s": round(with_wall, 2),
            "cpu_s": round(start_run.cpu + agent_cpu + sum(r.cpu for r in with_agent), 2),
            "peak_rss_mib": round(max(r.max_rss_mib for r in with_agent), 1),
            "agent_start_wall_s": round(start_run.seconds, 2),
            "agent_start_peak_rss_mib": round(start_run.max_rss_mib, 1),
            "agent_peak_rss_mib": round(agent_rss, 1),
            "agent_rss_after_day_mib": round(agent_rss_now, 1),
            "agent_cpu_s": round(agent_cpu, 2),
            "per_seal_wall_s": round(sum(r.seconds for r in with_agent) / args.seals, 3),
            "unlocks": 1,
        },
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    w, a = figures["without_agent"], figures["with_agent"]
    print(f"{args.seals} seals, scrypt work factor {args.work_factor}, DISKOMINFO -> BAPPEDA, 1 KiB letter")
    print(f"{'':38}{'without agent':>16}{'with agent':>16}")
    rows = [
        ("unlocks (scrypt)", w["unlocks"], a["unlocks"]),
        ("total wall time (s)", w["wall_s"], a["wall_s"]),
        ("total CPU, all processes (s)", w["cpu_s"], a["cpu_s"]),
        ("wall time per seal (s)", w["per_seal_wall_s"], a["per_seal_wall_s"]),
        ("peak RSS of one seal (MiB)", w["peak_rss_mib"], a["peak_rss_mib"]),
        ("peak RSS of the agent (MiB)", "-", a["agent_peak_rss_mib"]),
        ("RSS of the agent after the day (MiB)", "-", a["agent_rss_after_day_mib"]),
        ("CPU of the agent process (s)", "-", a["agent_cpu_s"]),
        ("agent start: wall (s) / RSS (MiB)", "-",
         f"{a['agent_start_wall_s']} / {a['agent_start_peak_rss_mib']}"),
    ]
    for name, left, right in rows:
        print(f"{name:38}{left!s:>16}{right!s:>16}")
    print(f"speed-up of the day: {w['wall_s'] / a['wall_s']:.1f}x wall, {w['cpu_s'] / a['cpu_s']:.1f}x CPU")  # type: ignore[operator]


if __name__ == "__main__":
    main()
