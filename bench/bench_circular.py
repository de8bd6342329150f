"""Benchmark: a circular (issue 20) - seal and open at 1, 50 and 1,000 recipients.

One run builds a throwaway authority (the test template's: five agencies, real root)
and adds synthetic agencies with real X25519 keys and certificates issued by that root
and a root-signed policy naming them (``tests/circular_fixtures.py``). For each
recipient count it prints, side by side:

* ``sandi seal --to-file LIST`` (the real CLI in a subprocess: directory, certificate
  chain checks, policy sender -> every recipient, signature, manifest, audit) against
  the baseline a person would run by hand for the same recipients,
  ``age -e -R RECIPIENTS`` over the tar of the document and its signature (no policy,
  no signature made: the floor);
* ``sandi open`` as the *last* recipient (the worst case: every stanza before its own
  is tried) against ``age -d -i IDENTITY | tar -x``;
* the file sizes (sandi's and age's) and sandi's age header and manifest sizes;
* in-process: the policy check of sender -> every recipient alone
  (``DirectoryPolicy.before_seal``).

Times are the median of ``--repeat`` runs (wall clock, with the CPU time of the
command); a 1 KiB letter by default, so the figures show the per-recipient cost.

Usage:
  python bench/bench_circular.py                    # 1, 50, 1000 recipients
  python bench/bench_circular.py --counts 50,1000,2000 --repeat 5 --size 1M
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_seal import timed
from benchutil import Run, parse_size

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
_SCRIPT = Path(sys.executable).with_name("sandi")
SANDI = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "sandi"]


def median(runs: list[Run]) -> Run:
    return Run(statistics.median(r.seconds for r in runs), statistics.median(r.cpu for r in runs),
               max(r.max_rss_mib for r in runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", default="1,50,1000", help="recipient counts, comma-separated")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--size", default="1K", help="document size (1K, 1M, ...)")
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temporary one)")
    args = parser.parse_args()
    counts = sorted(int(c) for c in args.counts.split(","))
    os.environ.setdefault("SANDI_SCRYPT_WORK_FACTOR", "10")
    from tests.authority_fixtures import ENV, PASSPHRASE, build_authority
    from tests.circular_fixtures import add_circular_agencies

    work = Path(tempfile.mkdtemp(prefix="bench-circular-", dir=args.dir))
    env = {**os.environ, **{k: v for k, v in ENV.items() if v is not None},
           "SANDI_LANG": "en", "LANG": "C.UTF-8"}
    env.pop("SANDI_HOME", None)
    have_age = shutil.which("age") is not None and shutil.which("tar") is not None
    try:
        start = time.perf_counter()
        authority = build_authority(work)
        circular = add_circular_agencies(
            authority.path, PASSPHRASE, counts[-1], openers=[c - 1 for c in counts],
            identities=work / "identities",
            import_directory=lambda path: authority.ok("directory", "import", path))
        print(f"built an authority with {counts[-1]} synthetic agencies in "
              f"{time.perf_counter() - start:.1f} s", file=sys.stderr)
        rows = [measure(authority.path, circular, count, env, work, args.repeat, parse_size(args.size),
                        have_age) for count in counts]
        report(rows, have_age, args.size)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(home: Path, circular: object, count: int, env: dict[str, str], work: Path, repeat: int,
            size: int, have_age: bool) -> dict[str, object]:
    from sandi.documents import DirectoryPolicy, Workspace
    from sandi.formats.age import X25519Recipient, parse_header
    from sandi.home import Home
    from sandi.keystore import FixedPassphrase
    from tests.authority_fixtures import PASSPHRASE

    folder = work / f"n{count}"
    folder.mkdir()
    doc = folder / "edaran.pdf"
    doc.write_bytes(os.urandom(size))
    codes = list(circular.codes[:count])  # type: ignore[attr-defined]
    listing = folder / "penerima.txt"
    listing.write_text("\n".join(codes) + "\n")
    opener = codes[-1]
    sealed = folder / "edaran.pdf.sandi"
    base = [*SANDI, "--home", str(home)]
    seal_argv = [*base, "seal", str(doc), "--as", "DISKOMINFO", "--to-file", str(listing), "--class", "B",
                 "--force", "-o", str(sealed)]
    out = folder / "opened.pdf"
    open_argv = [*base, "open", str(sealed), "--as", opener, "--force", "-o", str(out)]
    seal_runs = [timed(seal_argv, env) for _ in range(repeat)]
    open_runs = [timed(open_argv, env) for _ in range(repeat)]
    assert out.read_bytes() == doc.read_bytes(), "sandi open did not give the document back"
    raw = sealed.read_bytes()
    header = parse_header(io.BytesIO(raw))
    row: dict[str, object] = {
        "count": count, "seal": median(seal_runs), "open": median(open_runs), "size": len(raw),
        "header": len(header.header_bytes), "manifest": _manifest_size(count),
    }
    ws = Workspace.open(Home(home), FixedPassphrase(PASSPHRASE))
    gate = DirectoryPolicy(ws.snapshot)
    gate.before_seal("DISKOMINFO", codes[:1], "B", ws.now())  # compile once, as a process does
    start = time.perf_counter()
    gate.before_seal("DISKOMINFO", codes, "B", ws.now())
    row["policy_ms"] = (time.perf_counter() - start) * 1000
    if have_age:
        recipients = folder / "recipients.txt"
        recipients.write_text("\n".join(
            X25519Recipient.from_public_bytes(ws.snapshot.agency(c).current("encryption")[0].public_key_bytes())
            .to_bech32() for c in codes) + "\n")
        (folder / "edaran.pdf.minisig").write_bytes(b"x" * 400)  # a signature's size
        tarball = folder / "plain.tar"
        subprocess.run(["tar", "-c", "-f", str(tarball), "-C", str(folder), "edaran.pdf",
                        "edaran.pdf.minisig"], check=True)
        age_file = folder / "plain.tar.age"
        age_seal = ["age", "-e", "-R", str(recipients), "-o", str(age_file), str(tarball)]
        identity = circular.identity_file(opener)  # type: ignore[attr-defined]
        extract = folder / "x"
        extract.mkdir()
        age_open = ["bash", "-c", f"age -d -i '{identity}' '{age_file}' | tar -x -C '{extract}'"]
        row["age_seal"] = median([timed(age_seal, env) for _ in range(repeat)])
        row["age_open"] = median([timed(age_open, env) for _ in range(repeat)])
        row["age_size"] = age_file.stat().st_size
    return row


def _manifest_size(count: int) -> int:
    """The manifest's size as seal writes it (0: the list is inline)."""
    from sandi.documents.metadata import MAX_INLINE_RECIPIENTS, KeyRef, encode_manifest
    from tests.circular_fixtures import agency_code

    if count <= MAX_INLINE_RECIPIENTS:
        return 0
    return len(encode_manifest(tuple(KeyRef(code=agency_code(i), key="0" * 64) for i in range(count))))


def report(rows: list[dict[str, object]], have_age: bool, size: str) -> None:
    print(f"document: {size}; times: median wall seconds (cpu seconds); open as the last recipient")
    head = (f"{'recipients':>10} {'sandi seal':>16} {'age -e':>16} {'sandi open':>16} {'age -d|tar':>16} "
            f"{'sandi bytes':>12} {'age bytes':>10} {'header':>8} {'manifest':>9} {'policy ms':>9}")
    print(head)
    print("-" * len(head))

    def fmt(run: object) -> str:
        if not isinstance(run, Run):
            return f"{'-':>16}"
        return f"{run.seconds:>8.3f} ({run.cpu:>5.2f})"

    for row in rows:
        print(f"{row['count']:>10} {fmt(row['seal'])} {fmt(row.get('age_seal'))} {fmt(row['open'])} "
              f"{fmt(row.get('age_open'))} {row['size']:>12} {row.get('age_size', '-'):>10} "
              f"{row['header']:>8} {row['manifest']:>9} {row['policy_ms']:>9.1f}")
    if not have_age:
        print("(age or tar not installed: no baseline)")


if __name__ == "__main__":
    main()
