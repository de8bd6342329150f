"""RFC 3161 time-stamps: ``POST /timestamp`` of ``sandi serve --tsa`` beside ``openssl ts``.

Builds an authority in a temporary folder, issues its TSA key (``sandi keys tsa``),
starts ``sandi serve --tsa`` on loopback, and measures:

* **sandi, sequential**: one client, a new connection per token (what a workstation
  does: one token per seal or sign); p50/p99 latency and tokens per second;
* **sandi, concurrent**: ``--threads`` clients at once;
* **baseline**: ``openssl ts -reply`` with the same key and certificate, one process per
  token (OpenSSL's own TSA, no HTTP): the cost of a token made by the standard tool;
* the extra hash ``open`` now always computes (SHA-256 beside minisign's BLAKE2b-512)
  on ``--mib`` MiB in memory.

Every token is checked once with ``openssl ts -verify``.

    .venv/bin/python bench/bench_timestamp.py [--tokens 200] [--threads 8] [--mib 256]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ENV = {"SANDI_PASSPHRASE": "kata sandi bench tsa", "SANDI_SCRYPT_WORK_FACTOR": "10",
       "SANDI_OPERATOR": "bench"}


def sandi(home: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDI_")} | ENV
    r = subprocess.run([sys.executable, "-m", "sandi", "--home", str(home), *args], env=env,
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise SystemExit(f"sandi {' '.join(args)} failed: {r.stderr}")
    return r.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post(url: str, body: bytes) -> bytes:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/timestamp-query"})
    with urllib.request.urlopen(request, timeout=30) as r:
        data: bytes = r.read()
        return data


def summary(name: str, seconds: list[float], wall: float) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return (f"{name:<44} {len(ms) / wall:8.0f} tokens/s   p50 {statistics.median(ms):6.2f} ms   "
            f"p99 {p99:6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--mib", type=int, default=256)
    args = parser.parse_args()
    from sandi.formats.timestamp import make_query, token_from_reply

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        port = free_port()
        base = f"http://127.0.0.1:{port}/sandi"
        home = folder / "authority"
        sandi(home, "init", "--base-url", base)
        tsa = folder / "tsa"
        tsa.mkdir()
        sandi(home, "keys", "tsa", "--out", str(tsa))
        env = {k: v for k, v in os.environ.items() if not k.startswith("SANDI_")} | ENV
        extra = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
        server = subprocess.Popen([sys.executable, "-m", "sandi", "--home", str(home), "serve", "--port",
                                   str(port), "--tsa", str(tsa), *extra], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.1)
            url = base + "/timestamp"
            queries = [make_query("sha256", secrets.token_bytes(32), nonce=secrets.randbits(128))
                       for _ in range(args.tokens)]
            post(url, queries[0])  # warm up

            def timed(query: bytes) -> float:
                start = time.perf_counter()
                token_from_reply(post(url, query))
                return time.perf_counter() - start

            start = time.perf_counter()
            sequential = [timed(q) for q in queries]
            seq_wall = time.perf_counter() - start
            with ThreadPoolExecutor(args.threads) as pool:
                start = time.perf_counter()
                concurrent = list(pool.map(timed, queries))
                con_wall = time.perf_counter() - start

            # One token checked by the standard tool.
            data = folder / "data.bin"
            data.write_bytes(b"bench")
            query = make_query("sha256", hashlib.sha256(b"bench").digest(), nonce=1)
            (folder / "reply.tsr").write_bytes(post(url, query))
            (folder / "root.pem").write_text((home / "root.pem").read_text())
            check = subprocess.run(["openssl", "ts", "-verify", "-data", str(data), "-in",
                                    str(folder / "reply.tsr"), "-CAfile", str(folder / "root.pem"),
                                    "-untrusted", str(tsa / "tsa.pem")], capture_output=True, text=True)
            verified = "Verification: OK" in check.stdout
        finally:
            server.terminate()
            server.wait(timeout=10)

        # Baseline: OpenSSL's TSA, one process per token, same key and certificate.
        config = folder / "tsa.cnf"
        config.write_text(
            "[ tsa ]\ndefault_tsa = tsa_config\n[ tsa_config ]\n"
            f"serial = {folder / 'serial'}\nsigner_cert = {tsa / 'tsa.pem'}\nsigner_key = {tsa / 'tsa.key'}\n"
            "signer_digest = sha256\ndefault_policy = 2.25.96640368957475592623039154372901474828\n"
            "digests = sha256, sha384, sha512\naccuracy = secs:1\ness_cert_id_alg = sha256\n"
            "ess_cert_id_chain = no\n")
        (folder / "serial").write_text("01\n")
        n = min(args.tokens, 100)
        baseline: list[float] = []
        start = time.perf_counter()
        for i in range(n):
            q = folder / "q.tsq"
            q.write_bytes(queries[i])
            t0 = time.perf_counter()
            subprocess.run(["openssl", "ts", "-reply", "-config", str(config), "-queryfile", str(q),
                            "-out", str(folder / "r.tsr")], check=True, capture_output=True)
            baseline.append(time.perf_counter() - t0)
        base_wall = time.perf_counter() - start

    print(f"tokens: {args.tokens} per run; {os.cpu_count()} CPUs; openssl ts -verify of a sandi token: "
          f"{'OK' if verified else 'FAILED'}")
    print(summary("sandi POST /timestamp, 1 client", sequential, seq_wall))
    print(summary(f"sandi POST /timestamp, {args.threads} clients", concurrent, con_wall))
    print(summary("openssl ts -reply, a process per token", baseline, base_wall))

    block = os.urandom(1024 * 1024)
    for name, make in (("blake2b-512 (minisign)", lambda: hashlib.blake2b(digest_size=64)),
                       ("sha-256 (time-stamp imprint)", hashlib.sha256)):
        h = make()
        start = time.perf_counter()
        for _ in range(args.mib):
            h.update(block)
        took = time.perf_counter() - start
        print(f"{name:<44} {args.mib / took:8.0f} MiB/s")


if __name__ == "__main__":
    main()
