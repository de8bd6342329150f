"""Crash consistency: kill -9 sandi commands at random moments, then check the home.

An authority home (SQLite registry, the Banten policy, keys for a few agencies) is
built in a temporary folder. Each trial starts one of

    keys issue CODE        keys rotate CODE --yes        policy apply FILE (a newer version)
    directory publish -o F seal DOC -o F (4 MiB)         open SEALED --output-dir D

as a separate process and sends it SIGKILL after a random delay, uniform between 0
and the command's own duration (measured un-killed first, and again whenever a command
finishes before its kill, so kills land anywhere from start-up to the last write).
Then it checks, in this process:

1. the registry opens (``keys list``) and ``audit verify`` passes;
2. the next command works: the same kind of command, with fresh arguments, runs to
   completion (exit 0);
3. every current certificate in every published directory (the home's and each
   ``-o`` file) has its private key in the key store, matching its public key;
4. nothing half-written or plaintext is left: no ``.part``/``.tmp`` file of sandi's
   naming anywhere in the home or the output folders; every sealed output opens
   (``inspect --as``, which verifies everything); every opened output equals the
   document byte for byte; every directory output verifies against the root.

After a killed ``open`` the next ``open`` writes into the same output folder, so on
filesystems without anonymous files (``--fat``) its leftovers must be gone after it.

A failed check is printed and counted; the home is then rebuilt from the template
so later trials start sound. Exit status 0 only if no trial failed.

With ``--fat`` the output folders lie on a real FAT filesystem (a ``mkfs.vfat`` image
mounted with ``fusefat``, as a USB stick): no hard links, no ``O_TMPFILE``.

    .venv/bin/python bench/crash_consistency.py [--trials 240] [--seed N] [--fat] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import click.testing

REPO = Path(__file__).resolve().parent.parent
POLICY = REPO / "policies" / "banten.toml"
PASSPHRASE = "crash trial passphrase, not a secret"
DOC_SIZE = 4 * 1024 * 1024
OPS = ("issue", "rotate", "policy", "publish", "seal", "open")
ISSUED_AT_START = ("DISKOMINFO", "BAPPEDA", "SETDA", "KESBANGPOL")
ROTATED = ("SETDA", "KESBANGPOL")  # not the seal/open pair: their old documents must still open
STALE = re.compile(r"\A\..+\.[0-9a-f]{12}\.(?:part|tmp)\Z", re.DOTALL)
CLI = "import sys; from sandi_cli.main import main; main(sys.argv[1:])"


def env_for(home: Path) -> dict[str, str]:
    return {"SANDI_HOME": str(home), "SANDI_PASSPHRASE": PASSPHRASE, "SANDI_SCRYPT_WORK_FACTOR": "10",
            "SANDI_OPERATOR": "crash-trials", "LANG": "C"}


def sandi(home: Path, *args: str | Path) -> tuple[int, str]:
    """``sandi ARGS`` in this process (no interpreter start-up); (exit code, stdout + stderr)."""
    from sandi_cli.main import main

    runner = click.testing.CliRunner()
    with runner.isolation(env=env_for(home)) as (out, err, _):
        try:
            main([os.fspath(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        return code, out.getvalue().decode("utf-8", "replace") + err.getvalue().decode("utf-8", "replace")


def must(home: Path, *args: str | Path) -> str:
    code, text = sandi(home, *args)
    if code != 0:
        raise RuntimeError(f"sandi {' '.join(map(str, args))} -> {code}: {text.strip()}")
    return text


@dataclass
class Lane:
    """One authority home and the outputs made against it."""

    root: Path
    home: Path
    doc: Path
    sealed: Path
    out: Path
    unissued: list[str]
    policy_version: int = 1
    counter: int = 0
    directories: list[Path] = field(default_factory=list)
    last_open: Path | None = None  # the output folder of the last killed open

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter:04d}"


def build_template(root: Path) -> Path:
    home = root / "home"
    must(home, "init", "--province", "Provinsi Banten")
    must(home, "agency", "add", "--from-policy", POLICY)
    must(home, "policy", "apply", POLICY)
    for code in ISSUED_AT_START:
        must(home, "keys", "issue", code)
    doc = root / "laporan.bin"
    doc.write_bytes(random.Random(1).randbytes(DOC_SIZE))
    must(home, "seal", doc, "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "B",
         "-o", root / "laporan.sandi")
    return root


def lane_from(template: Path, root: Path, outputs: Path) -> Lane:
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(template, root, symlinks=True)
    home = root / "home"
    listed = json.loads(must(home, "--json", "agency", "list"))
    unissued = [a["code"] for a in listed if a["code"] not in ISSUED_AT_START and a["status"] == "active"]
    out = outputs / "out"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()
    return Lane(root, home, root / "laporan.bin", root / "laporan.sandi", out, unissued)


def command(lane: Lane, op: str) -> list[str]:
    """The arguments of one fresh command of kind ``op`` (consumes what it uses)."""
    if op == "issue":
        return ["keys", "issue", lane.unissued.pop(0)]
    if op == "rotate":
        lane.counter += 1  # alternate between the two agencies
        return ["keys", "rotate", ROTATED[lane.counter % 2], "--yes"]
    if op == "policy":
        lane.policy_version += 1
        text = POLICY.read_text(encoding="utf-8")
        text = re.sub(r"(?m)^version\s*=\s*\d+", f"version = {lane.policy_version}", text, count=1)
        path = lane.root / f"policy-v{lane.policy_version}.toml"
        path.write_text(text, encoding="utf-8")
        return ["policy", "apply", str(path)]
    if op == "publish":
        target = lane.out / (lane.fresh("directory") + ".json")
        lane.directories.append(target)
        return ["directory", "publish", "-o", str(target)]
    if op == "seal":
        return ["seal", str(lane.doc), "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "B",
                "-o", str(lane.out / (lane.fresh("sealed") + ".sandi"))]
    if op == "open":
        folder, lane.last_open = lane.last_open or lane.out / lane.fresh("opened"), None
        return ["open", str(lane.sealed), "--as", "BAPPEDA", "--output-dir", str(folder)]
    raise ValueError(op)


def run_child(lane: Lane, args: list[str], kill_after: float | None) -> tuple[float, bool]:
    """Run ``sandi ARGS`` as a process; kill -9 it after ``kill_after`` s. (seconds, finished)."""
    env = {**os.environ, **env_for(lane.home)}
    start = time.monotonic()
    child = subprocess.Popen([sys.executable, "-c", CLI, *args], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if kill_after is None:
        _, err = child.communicate(timeout=300)
        if child.returncode != 0:
            raise RuntimeError(f"sandi {' '.join(args)} -> {child.returncode}: {err.decode()[-500:]}")
        return time.monotonic() - start, True
    try:
        child.wait(timeout=kill_after)
        finished = True
    except subprocess.TimeoutExpired:
        child.send_signal(signal.SIGKILL)
        child.wait()
        finished = False
    assert child.stderr is not None
    child.stderr.close()
    return time.monotonic() - start, finished


def mount_fat(work: Path) -> Path:
    """A fresh 256 MiB FAT image mounted with fusefat: the USB stick."""
    image, stick = work / "stick.img", work / "stick"
    subprocess.run(["mkfs.vfat", "-C", str(image), str(256 * 1024)], check=True, capture_output=True)
    stick.mkdir()
    subprocess.run(["fusefat", "-o", "rw+", str(image), str(stick)], check=True, capture_output=True)
    for _ in range(100):
        if os.path.ismount(stick):
            return stick
        time.sleep(0.05)
    raise RuntimeError("fusefat did not mount the image")


def check(lane: Lane, op: str) -> list[str]:
    """Everything that must hold after a kill; the problems found."""
    problems: list[str] = []
    code, text = sandi(lane.home, "--json", "keys", "list", "SETDA")
    if code != 0:
        problems.append(f"registry does not open: {text.strip()[:300]}")
    code, text = sandi(lane.home, "audit", "verify")
    if code != 0:
        problems.append(f"audit verify failed: {text.strip()[:300]}")
    next_args = command(lane, op)
    code, text = sandi(lane.home, *next_args)
    if code != 0:
        problems.append(f"next command failed: sandi {' '.join(next_args)}: {text.strip()[:300]}")
    problems += keys_held(lane)
    problems += leftovers(lane)
    return problems


def keys_held(lane: Lane) -> list[str]:
    from sandi.directory.local import installed_snapshot
    from sandi.directory.snapshot import parse_envelope
    from sandi.home import Home
    from sandi.keystore import FixedPassphrase, open_keystore
    from sandi.keystore.base import identity_fingerprint, key_ref

    home = Home(lane.home)
    problems: list[str] = []
    try:
        snapshots = [installed_snapshot(home)]
        root_fp = home.load_config().root_fingerprint or ""
        for path in lane.directories:
            if path.exists():
                snapshots.append(parse_envelope(path.read_bytes(), root_fp))
        store = open_keystore(home, FixedPassphrase(PASSPHRASE))
    except Exception as exc:
        return [f"cannot read the published directories or the key store: {exc}"]
    for snapshot in snapshots:
        for agency in snapshot.agencies:
            for cert in agency.certificates:
                if cert.state != "current" or cert.revocation is not None:
                    continue
                ref = key_ref(agency.code, cert.purpose, cert.key_fingerprint)
                try:
                    if cert.purpose == "signing":
                        held = store.get_signing_key(ref).fingerprint
                    else:
                        held = identity_fingerprint(store.get_encryption_key(ref))
                except Exception as exc:
                    problems.append(f"directory v{snapshot.version}: no private key for {ref} ({exc})")
                    continue
                if held != cert.key_fingerprint:
                    problems.append(f"directory v{snapshot.version}: {ref} holds another key")
    return problems


def leftovers(lane: Lane) -> list[str]:
    problems = [f"left behind: {p}" for folder in (lane.home, lane.out)
                for p in folder.rglob("*") if STALE.match(p.name)]
    expected = lane.doc.read_bytes()
    for path in sorted(lane.out.iterdir()):
        if path.name.startswith("sealed-"):
            code, text = sandi(lane.home, "inspect", path, "--as", "BAPPEDA")
            if code != 0:
                problems.append(f"half-written sealed output {path.name}: {text.strip()[:200]}")
        elif path.name.startswith("opened-"):
            for item in path.iterdir():
                if item.name != "laporan.bin" or item.read_bytes() != expected:
                    problems.append(f"wrong or half-written opened output {item}")
        elif path.name == "directory-archive.json":
            # The archive of retired certificates published beside the directory: written
            # atomically, so whole (it may belong to the next version if the kill fell
            # between the two files; the next publication rewrites both).
            from sandi.directory.archive import FORMAT as ARCHIVE_FORMAT

            try:
                whole = json.loads(path.read_bytes()).get("format") == ARCHIVE_FORMAT
            except ValueError:
                whole = False
            if not whole:
                problems.append(f"half-written archive output {path.name}")
        elif path.name.startswith("directory-"):
            from sandi.directory.snapshot import parse_envelope
            from sandi.home import Home

            try:
                parse_envelope(path.read_bytes(), Home(lane.home).load_config().root_fingerprint or "")
            except Exception as exc:
                problems.append(f"half-written directory output {path.name}: {exc}")
    # Verified outputs are removed, so the next trial's checks stay quick.
    for path in list(lane.out.iterdir()):
        if path.name.startswith("sealed-") or path.name.startswith("opened-"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=240)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument("--fat", action="store_true", help="write the outputs onto a FAT image (fusefat)")
    opts = parser.parse_args()
    seed = opts.seed if opts.seed is not None else random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    work = opts.keep or Path(tempfile.mkdtemp(prefix="sandi-crash-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"seed {seed}; work folder {work}", flush=True)
    started = time.monotonic()
    template = build_template(work / "template")
    outputs = mount_fat(work) if opts.fat else work
    lane = lane_from(template, work / "lane", outputs)
    durations = {op: run_child(lane, command(lane, op), None)[0] for op in OPS}
    print("un-killed durations: " + ", ".join(f"{op} {d:.2f}s" for op, d in durations.items()), flush=True)

    killed: Counter[str] = Counter()
    finished: Counter[str] = Counter()
    failures: list[str] = []
    parts_after_kills = 0
    for trial in range(1, opts.trials + 1):
        op = OPS[(trial - 1) % len(OPS)] if trial <= len(OPS) else rng.choice(OPS)
        if op == "issue" and len(lane.unissued) < 2:
            lane = lane_from(template, work / "lane", outputs)
        delay = rng.uniform(0, durations[op])
        args = command(lane, op)
        elapsed, done = run_child(lane, args, delay)
        (finished if done else killed)[op] += 1
        if done:  # the machine got faster than measured: aim the next kills within the real time
            durations[op] = (durations[op] + elapsed) / 2
        opened = Path(args[-1]) / lane.doc.name
        if op == "open" and not (opened.exists() and opened.stat().st_size == DOC_SIZE):
            lane.last_open = Path(args[-1])  # not written (a kill after the commit is "done")
        # What the kill left in the outputs (FAT: part files the next write must remove).
        parts_after_kills += sum(1 for p in lane.out.rglob("*") if STALE.match(p.name))
        problems = check(lane, op)
        state = "finished" if done else f"killed at {delay:.2f}s"
        if problems:
            failures.append(f"trial {trial} ({op}, {state}): " + "; ".join(problems))
            print(f"FAIL trial {trial} {op} ({state}): " + "\n    ".join(problems), flush=True)
            lane = lane_from(template, work / "lane", outputs)
        elif trial % 10 == 0:
            print(f"trial {trial}: ok ({op}, {state}); so far killed mid-way {sum(killed.values())}, "
                  f"failures {len(failures)}", flush=True)
    print(f"trials: {opts.trials}; killed mid-way: {sum(killed.values())}; finished before the kill: "
          f"{sum(finished.values())}; failures: {len(failures)}; {time.monotonic() - started:.0f}s")
    print(f"part files found right after a kill (removed by the next write): {parts_after_kills}")
    for op in OPS:
        print(f"  {op:8s} killed {killed[op]:3d}  finished {finished[op]:3d}")
    for failure in failures:
        print("  " + failure)
    if opts.fat:
        subprocess.run(["fusermount", "-u", str(outputs)], capture_output=True)
    if opts.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
