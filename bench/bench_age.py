"""Benchmark: sandi's age codec beside the ``age`` command line on the same file.

Encrypts and decrypts one file (1 GiB by default) with ``age``, with the sandi library
(in a child process) and with the ``sandi`` command line, in the same run, and prints
wall times, throughput, the sandi/age time ratio and the peak RSS of every child
(from ``os.wait4``'s rusage). Every output is checked against the input's SHA-256.

Targets (issue 4): ratio <= 1.0 and sandi peak RSS < 64 MiB whatever the size.

Usage:
  python bench/bench_age.py [--size 1G] [--dir /tmp] [--repeat 3] [--armor]

Note: ``sandi encrypt/decrypt -o`` fsyncs the output before renaming it into place
(so a crash never leaves a half-written file under the final name); ``age`` does
not fsync. The CLI rows therefore include the cost of flushing the file to disk.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchutil import Run, make_input, parse_size, sha256

LIB_ENCRYPT = """
import sys
from sandi.formats.age import X25519Recipient, encrypt
with open(sys.argv[1], "rb") as src, open(sys.argv[2], "wb") as dst:
    encrypt(src, dst, [X25519Recipient.from_bech32(sys.argv[3])], armor=sys.argv[4] == "1")
"""
LIB_DECRYPT = """
import sys
from sandi.formats.age import decrypt, parse_identities
ids = parse_identities(open(sys.argv[3]).read())
with open(sys.argv[1], "rb") as src, open(sys.argv[2], "wb") as dst:
    decrypt(src, dst, ids)
"""


def timed(argv: list[str]) -> Run:
    """Run ``argv``; wall time and peak RSS.

    The peak RSS comes from GNU time when it is installed: measured through os.wait4
    from this (larger) Python process, Linux would report this process's own high-water
    mark for a child that is smaller, because it survives fork and exec.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss_file:
        gnu_time = shutil.which("time") or ("/usr/bin/time" if os.path.exists("/usr/bin/time") else None)
        full = [gnu_time, "-f", "%U %S %M", "-o", rss_file.name, *argv] if gnu_time else argv
        start = time.perf_counter()
        proc = subprocess.Popen(full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        err = proc.stderr.read() if proc.stderr else b""
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            raise SystemExit(f"{argv[0]} failed ({code}): {err.decode(errors='replace')}")
        if gnu_time:
            user, system, kib = rss_file.read().split()[-3:]
            return Run(elapsed, float(user) + float(system), int(kib) / 1024)
    return Run(elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def interleaved(commands: dict[str, tuple[list[str], Path]], repeat: int) -> dict[str, Run]:
    """Run every command ``repeat`` times, taking turns, so that load from other
    processes on the machine hits all tools alike; keep each tool's best time."""
    runs: dict[str, list[Run]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, (argv, output) in commands.items():
            output.unlink(missing_ok=True)
            runs[name].append(timed(argv))
    return {
        name: Run(min(r.seconds for r in rs), min(r.cpu for r in rs), max(r.max_rss_mib for r in rs))
        for name, rs in runs.items()
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="1G", help="input size, e.g. 1G, 256M (default 1G)")
    ap.add_argument("--dir", default=tempfile.gettempdir(), help="work folder (default: the temp dir)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best time counts")
    ap.add_argument("--armor", action="store_true", help="benchmark ASCII-armored files")
    args = ap.parse_args()
    for tool in ("age", "age-keygen"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (scripts/install-tools.sh)")
    sandi_cli = Path(sys.executable).with_name("sandi")
    size = parse_size(args.size)
    work = Path(tempfile.mkdtemp(prefix="bench-age-", dir=args.dir))
    try:
        key = work / "key.txt"
        subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
        recipient = subprocess.run(["age-keygen", "-y", str(key)], check=True, capture_output=True,
                                   text=True).stdout.strip()
        plain = work / "plain"
        make_input(plain, size)
        digest = sha256(plain)
        a = ["-a"] if args.armor else []
        flag = "1" if args.armor else "0"
        ct_age, ct_lib, ct_cli = work / "age.age", work / "lib.age", work / "cli.age"
        out = work / "out"
        py = sys.executable

        armor_opt = ["--armor"] if args.armor else []
        encrypt_runs = interleaved({
            "age": (["age", "-r", recipient, *a, "-o", str(ct_age), str(plain)], ct_age),
            "sandi library": ([py, "-c", LIB_ENCRYPT, str(plain), str(ct_lib), recipient, flag], ct_lib),
            "sandi CLI": ([str(sandi_cli), "encrypt", "-r", recipient, *armor_opt, "-o", str(ct_cli),
                           str(plain)], ct_cli),
        }, args.repeat)
        # Every tool decrypts age's own file; then age decrypts sandi's files.
        decrypt_runs = interleaved({
            "age": (["age", "-d", "-i", str(key), "-o", str(out), str(ct_age)], out),
            "sandi library": ([py, "-c", LIB_DECRYPT, str(ct_age), str(out), str(key)], out),
            "sandi CLI": ([str(sandi_cli), "decrypt", "-i", str(key), "-o", str(out), str(ct_age)], out),
        }, args.repeat)
        assert sha256(out) == digest
        for ct in (ct_lib, ct_cli):
            out.unlink(missing_ok=True)
            timed(["age", "-d", "-i", str(key), "-o", str(out), str(ct)])
            assert sha256(out) == digest
        rows = [("encrypt", tool, run) for tool, run in encrypt_runs.items()]
        rows += [("decrypt", tool, run) for tool, run in decrypt_runs.items()]

        mib = size / (1 << 20)
        print(f"age v1 benchmark: {mib:.0f} MiB, {'armored' if args.armor else 'binary'}, "
              f"best of {args.repeat}, work dir {args.dir}")
        print(f"{'operation':<9} {'tool':<14} {'wall s':>7} {'MiB/s':>6} {'ratio':>6} {'cpu s':>6} "
              f"{'cpu ratio':>9} {'peak RSS MiB':>13}")
        base = {op: run for op, tool, run in rows if tool == "age"}
        for op, tool, run in rows:
            # a tiny input can take no measurable CPU time
            cpu_ratio = run.cpu / base[op].cpu if base[op].cpu else float("nan")
            print(f"{op:<9} {tool:<14} {run.seconds:>7.3f} {mib / run.seconds:>6.0f} "
                  f"{run.seconds / base[op].seconds:>6.2f} {run.cpu:>6.2f} {cpu_ratio:>9.2f} "
                  f"{run.max_rss_mib:>13.1f}")
        print("all outputs verified (SHA-256); sandi's files decrypted by age")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
