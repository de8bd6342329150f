"""Benchmark: document commands on a workstation as the directory grows (issue 20).

One run builds a throwaway authority (the Banten policy and its agencies, a real root
made by ``sandi init``) and one workstation enrolled as DISKOMINFO. From the
authority's first published directory it then makes, for every size asked, a
directory of that many agencies: the real ones plus synthetic agencies, each with a
signing and an encryption certificate (copies of a real certificate's PEM under their
own serials and key fingerprints, so the file is as large as a real one; the commands
parse certificates lazily, only those they use). Each is signed by the real root key
with a higher version, so the workstation imports them in turn, as it would the
authority's weekly snapshots.

For each size it prints, side by side: ``directory import`` (wall, CPU, peak RSS), the
installed size (``directory.json`` and ``directory.index`` with the anchors), and the
wall time (median of ``--repeat``), CPU time (user + system: steadier than wall time on
a shared machine) and peak RSS (GNU time, the largest of the runs) of ``seal``,
``open``, ``verify``, ``inspect`` and ``inspect --as`` through the real CLI in a
subprocess, on a 1 KiB letter; then the ratio of each figure to the first (home-sized)
directory. Goals (issue 20): document commands at 30,000 agencies within 1.2x of 50;
the import of 30,000 under 10 s.

The key stores use a cheap scrypt work factor (``SANDI_SCRYPT_WORK_FACTOR``, default
10 here) so the figures show the directory's cost, not the unlock's.

Usage:
  python bench/bench_scale.py                      # quick: 50 and 1,000 agencies
  python bench/bench_scale.py --sizes 50,1000,10000,30000 --repeat 3
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench_seal import timed
from benchutil import Run

REPO = Path(__file__).resolve().parent.parent
POLICY = REPO / "policies" / "banten.toml"
PASSPHRASE = "bench-scale-passphrase"
SENDER = "DISKOMINFO"
_SCRIPT = Path(sys.executable).with_name("sandi")
#: the installed console script (what a person runs), else the module
SANDI = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "sandi"]


def sandi(env: dict[str, str], home: Path, *args: str | Path) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run([*SANDI, "--home", str(home), *map(str, args)],
                          env=env, capture_output=True)
    if proc.returncode != 0:
        raise SystemExit(f"sandi {' '.join(map(str, args))} failed ({proc.returncode}): "
                         f"{proc.stderr.decode(errors='replace')}")
    return proc


def build_homes(work: Path, env: dict[str, str]) -> tuple[Path, Path, bytes]:
    """The authority and one enrolled workstation; returns them and the first directory."""
    authority, station = work / "authority", work / "station"
    created = json.loads(sandi(env, authority, "--json", "init", "--province", "Provinsi Banten").stdout)
    fingerprint = created["root_fingerprint"]
    sandi(env, authority, "agency", "add", "--from-policy", POLICY)
    sandi(env, authority, "policy", "apply", POLICY)
    sandi(env, station, "init", "--agency", SENDER, "--root-fingerprint", fingerprint)
    request, response = work / "request", work / "response"
    sandi(env, station, "keys", "request", SENDER, "-o", request)
    sandi(env, authority, "keys", "certify", "--yes", request, "-o", response)
    sandi(env, station, "keys", "import-certs", response)
    first = work / "directory-first.json"
    sandi(env, authority, "directory", "publish", "-o", first)
    sandi(env, station, "directory", "import", first)
    return authority, station, first.read_bytes()


def grown_directory(authority: Path, base: bytes, agencies: int, version: int) -> bytes:
    """``base`` with synthetic agencies up to ``agencies``, signed by the real root."""
    from sandi.authority.root import load_root_signer
    from sandi.directory.snapshot import AgencyEntry, parse_envelope, sign_snapshot
    from sandi.home import Home
    from sandi.keystore import open_keystore
    from sandi.keystore.passphrase import FixedPassphrase

    home = Home(authority)
    signer = load_root_signer(home, open_keystore(home, FixedPassphrase(PASSPHRASE)))
    snapshot = parse_envelope(base, hashlib.sha256(signer.public_key_bytes()).hexdigest())
    template = next(a for a in snapshot.agencies if a.certificates)
    extra: list[AgencyEntry] = []
    for i in range(max(0, agencies - len(snapshot.agencies))):
        code = f"SYN{i:06d}"
        certs = tuple(replace(c, serial=f"{0x5000000 + i:x}{j}",
                              key_fingerprint=hashlib.sha256(f"{code}/{j}".encode()).hexdigest())
                      for j, c in enumerate(template.certificates))
        extra.append(AgencyEntry(code=code, name=f"Perangkat Daerah Sintetis {i}", kind="dinas",
                                 status="active", parent=None, certificates=certs))
    now = datetime.now(UTC)
    grown = replace(snapshot, version=version, issued_at=now - timedelta(minutes=1),
                    expires_at=now + timedelta(days=7), agencies=(*snapshot.agencies, *extra))
    return sign_snapshot(grown, signer)


def measure(env: dict[str, str], station: Path, folder: Path, repeat: int) -> dict[str, Run]:
    letter = folder / "surat.txt"
    letter.write_bytes(os.urandom(512).hex().encode())  # 1 KiB
    base = [*SANDI, "--home", str(station)]
    sealed = folder / "surat.txt.age"
    commands = {
        "seal": [*base, "seal", str(letter), "--to", SENDER, "--class", "B", "--force", "-o", str(sealed)],
        "open": [*base, "open", str(sealed), "--force", "-o", str(folder / "opened.txt")],
        "verify": [*base, "verify", str(letter), "--sig", str(folder / "surat.txt.minisig")],
        "inspect": [*base, "inspect", str(sealed)],
        "inspect --as": [*base, "inspect", str(sealed), "--as", SENDER],
    }
    subprocess.run([*base, "sign", str(letter), "--class", "B", "--force", "-o",
                    str(folder / "surat.txt.minisig")], env=env, check=True, capture_output=True)
    out: dict[str, Run] = {}
    for name, argv in commands.items():
        runs = [timed(argv, env) for _ in range(repeat)]
        out[name] = Run(statistics.median(r.seconds for r in runs), statistics.median(r.cpu for r in runs),
                        max(r.max_rss_mib for r in runs))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="50,1000", help="agency counts, comma-separated")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench-scale-", dir=args.dir))
    env = {**os.environ, "SANDI_PASSPHRASE": PASSPHRASE,
           "SANDI_SCRYPT_WORK_FACTOR": os.environ.get("SANDI_SCRYPT_WORK_FACTOR", "10"),
           "SANDI_LANG": "en", "LANG": "C.UTF-8"}
    env.pop("SANDI_HOME", None)
    os.environ["SANDI_SCRYPT_WORK_FACTOR"] = env["SANDI_SCRYPT_WORK_FACTOR"]
    try:
        authority, station, first = build_homes(work, env)
        rows: list[Row] = []
        version = 1000
        for size in sizes:
            version += 1
            envelope = grown_directory(authority, first, size, version)
            path = work / f"directory-{size}.json"
            path.write_bytes(envelope)
            try:
                imported = timed([*SANDI, "--home", str(station), "directory", "import", str(path)], env)
            except SystemExit as exc:
                reason = str(exc).strip().splitlines()[-1]
                rows.append(Row(size, None, len(envelope), 0, {}, reason))
                print(f"{size:>7} agencies: import refused ({reason})", file=sys.stderr)
                continue
            installed = sum(p.stat().st_size for p in station.iterdir()
                            if p.is_file() and p.name.startswith("directory"))
            index_path = station / "directory.index"
            index = index_path.stat().st_size if index_path.exists() else 0
            folder = work / f"docs-{size}"
            folder.mkdir()
            rows.append(Row(size, imported, installed, index, measure(env, station, folder, args.repeat), ""))
            print(f"{size:>7} agencies: measured", file=sys.stderr)
        report(rows)
    finally:
        if args.keep:
            print(f"work folder kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


@dataclass
class Row:
    size: int
    imported: Run | None  # None: the import was refused
    installed: int  # bytes of directory.json, directory.index and the anchors
    index: int  # bytes of directory.index
    runs: dict[str, Run]
    reason: str


NAMES = ("seal", "open", "verify", "inspect", "inspect --as")


def report(rows: list[Row]) -> None:
    head = (f"{'agencies':>9} {'import s':>9} {'cpu s':>6} {'MiB':>6} {'installed MB':>13} {'index MB':>9} "
            + " ".join(f"{n + ' s':>9} {'cpu s':>6} {'MiB':>6}" for n in NAMES))
    print(head)
    print("-" * len(head))
    for row in rows:
        if row.imported is None:
            print(f"{row.size:>9} import refused: {row.reason} ({row.installed / 1e6:.1f} MB)")
            continue
        imp = row.imported
        print(f"{row.size:>9} {imp.seconds:>9.2f} {imp.cpu:>6.2f} {imp.max_rss_mib:>6.1f} "
              f"{row.installed / 1e6:>13.2f} {row.index / 1e6:>9.2f} " + " ".join(
                  f"{row.runs[n].seconds:>9.3f} {row.runs[n].cpu:>6.2f} {row.runs[n].max_rss_mib:>6.1f}"
                  for n in NAMES))
    home = next((r for r in rows if r.imported is not None), None)
    if home is None or home.imported is None:
        return
    print(f"\nratio to {home.size} agencies (document commands: wall, cpu, peak RSS):")
    for row in rows:
        if row.imported is None:
            continue
        print(f"{row.size:>9} " + " ".join(
            f"{n}: {row.runs[n].seconds / home.runs[n].seconds:.2f} {row.runs[n].cpu / home.runs[n].cpu:.2f} "
            f"{row.runs[n].max_rss_mib / home.runs[n].max_rss_mib:.2f}" for n in NAMES))


if __name__ == "__main__":
    main()
