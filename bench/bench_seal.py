"""Benchmark: ``sandi seal`` / ``sandi open`` beside the same work done with standard tools.

One run builds a throwaway authority (two agencies), then, on one input file (1 GiB by
default), times in turns:

* seal: ``sandi seal`` against the pipeline a person would run by hand,
  ``minisign -S`` (with the agency's exported, passphrase-protected minisign key),
  then ``tar -c doc doc.minisig | age -e -r RECIPIENT``;
* open: ``sandi open`` against ``age -d -i IDENTITY | tar -x`` then ``minisign -V``;

and prints wall time, throughput, the sandi/pipeline ratio and the peak RSS of sandi
(GNU time's maximum resident set size of the child, the pipeline's largest process).
Then the library in-process: seals per second of a 1 KiB document to one recipient
(with the policy gate and the audit journal, as the CLI does), and the same without
the journal's fsync to show what the journal costs.

Every output is checked: the pipeline opens sandi's file and sandi opens... its own;
the documents written by both opens are compared with the input (SHA-256).

Targets (issue 5): ratio < 1.0 for seal and open, sandi peak RSS < 64 MiB.

Usage:
  python bench/bench_seal.py [--size 1G] [--dir /tmp] [--repeat 3] [--seals 300]

Notes: ``sandi`` writes under a temporary name and fsyncs before renaming into place
(``age -o`` and ``tar -x`` do not fsync), and appends one fsynced line to its audit
journal per operation; both are included in sandi's times.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchutil import Run, make_input, parse_size, sha256

PASSPHRASE = "bench-store-passphrase"
EXPORT_PASSPHRASE = "bench-export-passphrase"


def timed(argv: list[str], env: dict[str, str], stdin: bytes | None = None) -> Run:
    """Run ``argv`` under GNU time: wall time, CPU, peak RSS of the largest process.

    GNU time reports the child's own maximum RSS (through wait4 of *its* child, which it
    forks small); measured from this Python process, Linux would report at least this
    process's own high-water mark, which survives fork and exec.
    """
    gnu_time = "/usr/bin/time"
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss_file:
        full = [gnu_time, "-f", "%U %S %M", "-o", rss_file.name, *argv] if os.path.exists(gnu_time) else argv
        start = time.perf_counter()
        proc = subprocess.run(full, input=stdin, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace")
            raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {err}")
        if os.path.exists(gnu_time):
            user, system, kib = rss_file.read().split()[-3:]
            return Run(elapsed, float(user) + float(system), int(kib) / 1024)
    return Run(elapsed, float("nan"), float("nan"))


def pipeline(steps: list[list[str]], env: dict[str, str], stdin: bytes | None = None) -> Run:
    """Run a shell command list (``sh -c``) of standard tools, each under GNU time.

    Wall time is the whole; CPU is summed over every tool; RSS is the largest tool's.
    """
    with tempfile.TemporaryDirectory(prefix="rss-") as tmp:
        rss_files = [Path(tmp) / f"{i}.rss" for i in range(len(steps))]
        script = " ".join(
            " ".join(cmd) if cmd in (["|"], ["&&"]) else f"/usr/bin/time -f '%U %S %M' -o {f} {' '.join(cmd)}"
            for f, cmd in zip(rss_files, steps, strict=True)
        )
        start = time.perf_counter()
        proc = subprocess.run(["sh", "-c", script], input=stdin, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"pipeline failed ({proc.returncode}): {script}\n"
                             f"{proc.stderr.decode(errors='replace')}")
        cpu, rss = 0.0, 0.0
        for f, cmd in zip(rss_files, steps, strict=True):
            if cmd in (["|"], ["&&"]):
                continue
            user, system, kib = f.read_text().split()[-3:]
            cpu += float(user) + float(system)
            rss = max(rss, int(kib) / 1024)
        return Run(elapsed, cpu, rss)


def best(runs: list[Run]) -> Run:
    return Run(min(r.seconds for r in runs), min(r.cpu for r in runs), max(r.max_rss_mib for r in runs))


def sandi(env: dict[str, str], *args: str) -> str:
    exe = Path(sys.executable).with_name("sandi")
    proc = subprocess.run([str(exe), *args], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"sandi {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


def seals_per_second(home: Path, count: int, journal: bool) -> float:
    """In-process: seal a 1 KiB document to one recipient ``count`` times."""
    from sandi.documents import DirectoryPolicy, Workspace, seal
    from sandi.home import Home
    from sandi.keystore import FixedPassphrase

    ws = Workspace.open(Home(home), FixedPassphrase(PASSPHRASE))
    if not journal:
        ws.record = lambda *a, **k: None  # type: ignore[method-assign, assignment]
    policy = DirectoryPolicy(ws.snapshot)
    doc = os.urandom(1024)
    seal(io.BytesIO(doc), io.BytesIO(), workspace=ws, sender="DISKOMINFO", recipients=["BAPPEDA"],
         classification="B", policy=policy, size=len(doc), name="nota.txt")  # warm: keys, imports
    start = time.perf_counter()
    for _ in range(count):
        seal(io.BytesIO(doc), io.BytesIO(), workspace=ws, sender="DISKOMINFO", recipients=["BAPPEDA"],
             classification="B", policy=policy, size=len(doc), name="nota.txt")
    return count / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="1G", help="input size, e.g. 1G, 256M (default 1G)")
    ap.add_argument("--dir", default=tempfile.gettempdir(), help="work folder (default: the temp dir)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement, in turns; the best counts")
    ap.add_argument("--seals", type=int, default=300, help="in-process seals of a 1 KiB document")
    args = ap.parse_args()
    for tool in ("age", "minisign", "tar"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (scripts/install-tools.sh)")
    size = parse_size(args.size)
    work = Path(tempfile.mkdtemp(prefix="bench-seal-", dir=args.dir))
    home = work / "authority"
    env = {**os.environ, "SANDI_HOME": str(home), "SANDI_PASSPHRASE": PASSPHRASE,
           "SANDI_EXPORT_PASSPHRASE": EXPORT_PASSPHRASE, "SANDI_SCRYPT_WORK_FACTOR": "10"}
    env.pop("SANDI_DATABASE_URL", None)
    try:
        sandi(env, "init", "--province", "Provinsi Banten")
        for code in ("DISKOMINFO", "BAPPEDA"):
            sandi(env, "agency", "add", code, "--name", code.title())
            sandi(env, "keys", "issue", code)
        keys = work / "keys"
        keys.mkdir()
        sandi(env, "keys", "export", "DISKOMINFO", "--public", "-o", str(keys / "pub"))
        sandi(env, "keys", "export", "BAPPEDA", "--public", "-o", str(keys / "bappeda"))
        sandi(env, "keys", "export", "DISKOMINFO", "--minisign-secret-key", str(keys / "kominfo.key"))
        sandi(env, "keys", "export", "BAPPEDA", "--unencrypted-age-identity", str(keys / "bappeda.id"))
        recipient = (keys / "bappeda" / "BAPPEDA.age.txt").read_text().split()[-1]

        src_dir = work / "src"
        src_dir.mkdir()
        doc = src_dir / "dokumen.bin"
        make_input(doc, size)
        digest = sha256(doc)
        sealed_sandi, sealed_std = work / "sandi.sandi", work / "std.age"
        sig = src_dir / "dokumen.bin.minisig"
        out_sandi, out_std = work / "out-sandi", work / "out-std"
        exe = str(Path(sys.executable).with_name("sandi"))
        pw = (EXPORT_PASSPHRASE + "\n").encode()

        seal_runs: dict[str, list[Run]] = {"sandi seal": [], "minisign+tar+age": []}
        open_runs: dict[str, list[Run]] = {"sandi open": [], "age+tar+minisign": []}
        for _ in range(args.repeat):
            sealed_sandi.unlink(missing_ok=True)
            seal_runs["sandi seal"].append(timed(
                [exe, "seal", str(doc), "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "B",
                 "-o", str(sealed_sandi)], env))
            sealed_std.unlink(missing_ok=True)
            sig.unlink(missing_ok=True)
            seal_runs["minisign+tar+age"].append(pipeline([
                ["minisign", "-S", "-s", str(keys / "kominfo.key"), "-m", str(doc), "-x", str(sig),
                 "-t", "'sealed by hand'"],
                ["&&"],
                ["tar", "-c", "-C", str(src_dir), "-f", "-", doc.name, sig.name],
                ["|"],
                ["age", "-e", "-r", recipient, "-o", str(sealed_std)],
            ], env, stdin=pw))
        for _ in range(args.repeat):
            shutil.rmtree(out_sandi, ignore_errors=True)
            open_runs["sandi open"].append(timed(
                [exe, "open", str(sealed_sandi), "--as", "BAPPEDA", "--output-dir", str(out_sandi)], env))
            shutil.rmtree(out_std, ignore_errors=True)
            out_std.mkdir()
            open_runs["age+tar+minisign"].append(pipeline([
                ["age", "-d", "-i", str(keys / "bappeda.id"), str(sealed_std)],
                ["|"],
                ["tar", "-x", "-C", str(out_std), "-f", "-"],
                ["&&"],
                ["minisign", "-V", "-q", "-p", str(keys / "pub" / "DISKOMINFO.minisign.pub"),
                 "-m", str(out_std / doc.name), "-x", str(out_std / sig.name)],
            ], env))
        assert sha256(out_sandi / doc.name) == digest and sha256(out_std / doc.name) == digest
        # The standard tools open sandi's file too (its documented compatibility).
        check = work / "check"
        check.mkdir()
        pipeline([["age", "-d", "-i", str(keys / "bappeda.id"), str(sealed_sandi)], ["|"],
                  ["tar", "-x", "-C", str(check), "-f", "-"], ["&&"],
                  ["minisign", "-V", "-q", "-p", str(keys / "pub" / "DISKOMINFO.minisign.pub"),
                   "-m", str(check / doc.name)]], env)
        assert sha256(check / doc.name) == digest
        shutil.rmtree(check)

        with_journal = seals_per_second(home, args.seals, journal=True)
        without_journal = seals_per_second(home, args.seals, journal=False)

        mib = size / (1 << 20)
        print(f"sealed-document benchmark: {mib:.0f} MiB document, best of {args.repeat}, "
              f"work dir {args.dir}")
        print(f"{'operation':<6} {'tool':<18} {'wall s':>7} {'MiB/s':>6} {'ratio':>6} {'cpu s':>6} "
              f"{'peak RSS MiB':>13}")
        for op, runs in (("seal", seal_runs), ("open", open_runs)):
            results = {tool: best(rs) for tool, rs in runs.items()}
            ours, theirs = list(results.values())
            for tool, run in results.items():
                ratio = run.seconds / theirs.seconds
                print(f"{op:<6} {tool:<18} {run.seconds:>7.3f} {mib / run.seconds:>6.0f} {ratio:>6.2f} "
                      f"{run.cpu:>6.2f} {run.max_rss_mib:>13.1f}")
            verdict = "ok" if ours.seconds < theirs.seconds and ours.max_rss_mib < 64 else "MISSED"
            print(f"  -> {op}: ratio {ours.seconds / theirs.seconds:.2f} (target < 1.0), "
                  f"sandi peak RSS {ours.max_rss_mib:.1f} MiB (target < 64): {verdict}")
        print(f"library, in-process: {with_journal:.0f} seals/s of a 1 KiB document to one recipient "
              f"({without_journal:.0f}/s without the audit journal's fsync)")
        print("all documents verified (SHA-256); sandi's sealed file also opened with age | tar, minisign -V")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
