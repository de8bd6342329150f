"""Benchmark: hybrid post-quantum (mlkem768x25519) recipients beside X25519 ones.

Encrypts (seals the age layer of) a small and a large file to 1 and to 50 recipients of
each kind, then decrypts with the identity of the *last* stanza (the worst case: every
stanza before it is tried first), and prints the times and the header size. The large
file is read from disk; its timed encryption goes to a discarding sink, so the figures
are sandi's CPU and not the disk's write-back. Every
decryption is checked against the input's SHA-256. In-process, with the sandi library:
the age layer is what a sealed document spends on its recipients (the signature and
the ustar framing do not depend on the recipient kind).

Usage:
  python bench/bench_pq.py                     # 1 KiB and 64 MiB (a quick run)
  python bench/bench_pq.py --large 1G          # the issue's 1 GiB
  python bench/bench_pq.py --recipients 1,50 --repeat 5 --dir /tmp
"""

from __future__ import annotations

import argparse
import hashlib
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchutil import make_input, parse_size, sha256

from sandi.formats.age import DecryptReader, EncryptWriter, MLKEM768X25519Identity, X25519Identity

KINDS: dict[str, Callable[[], Any]] = {
    "x25519": X25519Identity.generate,
    "mlkem768x25519": MLKEM768X25519Identity.generate,
}


class _Sink:
    """A write-only file that hashes what it gets (decryption output, timed encryption)."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()

    def write(self, data: bytes | memoryview) -> int:
        self.hash.update(data)
        return len(data)


def _encrypt(src: Path | bytes, dst: Any, recipients: Sequence[Any]) -> int:
    with EncryptWriter(dst, recipients) as writer:
        if isinstance(src, bytes):
            writer.write(src)
        else:
            with open(src, "rb") as f:
                writer.write_from(f)
    return len(writer.header_bytes)


def _decrypt(src: Any, identity: Any) -> str:
    sink = _Sink()
    for chunk in DecryptReader(src, [identity]).chunks():
        sink.write(chunk)
    return sink.hash.hexdigest()


def run_case(kind: str, count: int, size: int, workdir: Path, repeat: int) -> dict[str, Any]:
    identities = [KINDS[kind]() for _ in range(count)]
    recipients = [i.recipient for i in identities]
    last = identities[-1]
    small = size <= 1 << 20
    plain: Path | bytes
    if small:
        plain = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        expected = hashlib.sha256(plain).hexdigest()
    else:
        plain = workdir / f"plain-{size}"
        if not plain.exists():
            make_input(plain, size)
        expected = sha256(plain)
    enc_times, dec_times = [], []
    header = 0
    if not small:
        # The ciphertext decryption reads, written once outside the timings.
        with open(workdir / "ct.age", "wb") as ct:
            _encrypt(plain, ct, recipients)
    for _ in range(repeat):
        # Encrypt into memory (small) or a discarding sink (large): the time is sandi's,
        # not the disk's (the payload costs the same for both kinds; the header differs).
        target: Any = io.BytesIO() if small else _Sink()
        start = time.perf_counter()
        header = _encrypt(plain, target, recipients)
        enc_times.append(time.perf_counter() - start)
        source: Any = io.BytesIO(target.getvalue()) if small else open(workdir / "ct.age", "rb")  # noqa: SIM115
        start = time.perf_counter()
        digest = _decrypt(source, last)
        dec_times.append(time.perf_counter() - start)
        source.close()
        if digest != expected:
            raise SystemExit(f"{kind} x{count}: the decrypted output differs from the input")
    return {"kind": kind, "recipients": count, "size": size, "header": header,
            "encrypt": statistics.median(enc_times), "decrypt": statistics.median(dec_times)}


def _fmt_size(n: int) -> str:
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= div:
            return f"{n / div:g} {unit}"
    return f"{n} B"


def _fmt_time(s: float) -> str:
    return f"{s * 1000:9.2f} ms" if s < 1 else f"{s:9.3f} s "


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", default="1K", help="the small file [default: 1K]")
    ap.add_argument("--large", default="64M", help="the large file (the issue's figure is 1G) [default: 64M]")
    ap.add_argument("--recipients", default="1,50", help="recipient counts [default: 1,50]")
    ap.add_argument("--repeat", type=int, default=3, help="runs per case; the median is shown [default: 3]")
    ap.add_argument("--dir", type=Path, default=None, help="where the large files go [default: a temp dir]")
    args = ap.parse_args(argv)
    counts = [int(c) for c in args.recipients.split(",")]
    sizes = [parse_size(args.small), parse_size(args.large)]
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        rows = []
        for size in sizes:
            repeat = args.repeat if size <= 1 << 20 else max(1, args.repeat // 3)
            rows += [run_case(kind, count, size, Path(tmp), repeat) for count in counts for kind in KINDS]
    print(f"{'size':>9} {'recipients':>10} {'kind':>15} {'header':>10} {'encrypt':>12} {'decrypt':>12}")
    for r in rows:
        print(f"{_fmt_size(r['size']):>9} {r['recipients']:>10} {r['kind']:>15} {r['header']:>8} B "
              f"{_fmt_time(r['encrypt'])} {_fmt_time(r['decrypt'])}")
    print("decrypt uses the identity of the last stanza (all earlier stanzas are tried first)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
