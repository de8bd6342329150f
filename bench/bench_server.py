"""Load and bad-input benchmark of ``sandi serve`` on loopback.

Builds an authority (a temporary home, a few agencies with keys, so the directory is a
realistic size), starts ``sandi serve`` with 1 worker and then 2, and for each:

* **load**: ``--clients`` (200) concurrent keep-alive clients, each making ``--requests``
  requests for ``/directory.json``, alternately plain (200, the whole file) and
  conditional (``If-None-Match`` with the current ETag, 304); p50/p99 latency and
  requests per second, split by kind;
* **bad input** (with ``--bad``): as many connections sending what a hostile or broken
  client sends: a declared 1 GB body, an endless chunked body, garbage bytes, a 64 KiB
  header, 200 header fields, a malformed request line, a JSON bomb to /enrol, and slow
  clients trickling their request a byte at a time. It counts the status codes and
  checks zero 5xx, that the server is still alive and still answers /healthz.

Loopback only; bounded in count (``--clients`` x ``--requests``) and in time (every
client has a deadline). The client is the standard library's asyncio (raw HTTP/1.1),
so a run measures the server, within what one Python client process can drive.

    .venv/bin/python bench/bench_server.py [--clients 200] [--requests 20] [--workers 1,2] [--bad]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = {"SANDI_PASSPHRASE": "kata sandi bench server", "SANDI_SCRYPT_WORK_FACTOR": "10",
       "SANDI_OPERATOR": "bench"}
AGENCIES = ["DISKOMINFO", "BAPPEDA", "SETDA", "KESBANGPOL", "SETDPRD", "DINKES", "DINSOS", "DISPAR"]


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


def build_authority(folder: Path, base: str, agencies: int) -> Path:
    home = folder / "authority"
    sandi(home, "init", "--base-url", base)
    for code in AGENCIES[:agencies]:
        sandi(home, "agency", "add", code, "--name", f"Perangkat Daerah {code}")
        sandi(home, "keys", "issue", code)
    return home


def start(home: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDI_")} | ENV
    root_ok = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    command = [sys.executable, "-m", "sandi", "--home", str(home), "serve", "--port", str(port),
               "--workers", str(workers), *root_ok]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("server exited: " + (process.stderr.read().decode() if process.stderr else ""))
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/sandi/healthz", timeout=1) as r:
                if r.status == 200:
                    return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("server did not start")


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    return status, body


async def client(port: int, path: str, etag: str, requests: int, deadline: float,
                 out: list[tuple[str, float, int]]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for i in range(requests):
            if time.monotonic() > deadline:
                break
            conditional = i % 2 == 1
            extra = f"If-None-Match: {etag}\r\n" if conditional else ""
            start = time.perf_counter()
            writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n{extra}\r\n".encode())
            await writer.drain()
            status, _ = await read_response(reader)
            out.append(("304" if conditional else "200", time.perf_counter() - start, status))
    finally:
        writer.close()


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


async def load(port: int, clients: int, requests: int, etag: str, budget: float) -> dict[str, object]:
    out: list[tuple[str, float, int]] = []
    deadline = time.monotonic() + budget
    start = time.perf_counter()
    results = await asyncio.gather(*(client(port, "/sandi/directory.json", etag, requests, deadline, out)
                                     for _ in range(clients)), return_exceptions=True)
    wall = time.perf_counter() - start
    errors = [r for r in results if isinstance(r, BaseException)]
    statuses = Counter(s for _, _, s in out)
    figures: dict[str, object] = {"requests": len(out), "seconds": round(wall, 2),
                                  "rps": round(len(out) / wall, 1), "statuses": dict(statuses),
                                  "client_errors": len(errors)}
    for kind in ("200", "304"):
        lat = [t for k, t, _ in out if k == kind]
        if lat:
            figures[kind] = {"p50_ms": round(pct(lat, 0.50), 1), "p99_ms": round(pct(lat, 0.99), 1),
                             "mean_ms": round(statistics.fmean(lat) * 1000, 1)}
    return figures


# -- bad input -------------------------------------------------------------------------

BAD: dict[str, bytes] = {
    "huge-declared-body": b"POST /sandi/enrol HTTP/1.1\r\nHost: b\r\nContent-Length: 1000000000\r\n\r\n",
    "garbage": bytes(random.Random(1).randrange(256) for _ in range(4096)),
    "huge-header": b"GET /sandi/directory.json HTTP/1.1\r\nHost: b\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n",
    "many-headers": b"GET /sandi/directory.json HTTP/1.1\r\nHost: b\r\n"
                    + b"".join(b"X-%d: v\r\n" % i for i in range(200)) + b"\r\n",
    "bad-request-line": b"GET\x00/ HTTP/9.9\r\n\r\n",
    "bad-content-length": b"POST /sandi/enrol HTTP/1.1\r\nHost: b\r\nContent-Length: -5\r\n\r\n",
    "json-bomb": (lambda body: b"POST /sandi/enrol HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)(b"[" * 30000 + b"]" * 30000),
    "not-json": b"POST /sandi/enrol HTTP/1.1\r\nHost: b\r\nContent-Length: 5\r\n\r\nhello",
    "bad-handle": b"GET /sandi/enrol/..%2F..%2Fetc HTTP/1.1\r\nHost: b\r\n\r\n",
    "chunked-endless": b"POST /sandi/enrol HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\n\r\n"
                       + b"".join(b"4000\r\n" + b"x" * 0x4000 + b"\r\n" for _ in range(8)),
}


async def bad_one(port: int, kind: str, payload: bytes, slow: bool, wait: float) -> int | str:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as exc:
        return f"connect:{type(exc).__name__}"
    try:
        if slow:  # a byte every 50 ms for at most 3 s, then the rest
            for i in range(min(60, len(payload))):
                writer.write(payload[i:i + 1])
                await writer.drain()
                await asyncio.sleep(0.05)
            payload = payload[60:]
        writer.write(payload)
        await writer.drain()
        head = await asyncio.wait_for(reader.read(200), timeout=wait)
    except (ConnectionError, TimeoutError, asyncio.IncompleteReadError) as exc:
        return f"closed:{type(exc).__name__}"
    finally:
        writer.close()
    if not head:
        return "closed"
    try:
        return int(head.split(b" ")[1])
    except (IndexError, ValueError):
        return "unparsable"


async def bad_input(port: int, connections: int, wait: float) -> dict[str, object]:
    kinds = list(BAD)
    tasks = [bad_one(port, kinds[i % len(kinds)], BAD[kinds[i % len(kinds)]], slow=i % 5 == 0, wait=wait)
             for i in range(connections)]
    start = time.perf_counter()
    results = await asyncio.gather(*tasks)
    by_kind: dict[str, Counter[str]] = {}
    for i, result in enumerate(results):
        by_kind.setdefault(kinds[i % len(kinds)], Counter())[str(result)] += 1
    five = sum(1 for r in results if isinstance(r, int) and r >= 500)
    return {"connections": connections, "seconds": round(time.perf_counter() - start, 2), "5xx": five,
            "by_kind": {k: dict(v) for k, v in by_kind.items()}}


def run(home: Path, port: int, workers: int, args: argparse.Namespace) -> dict[str, object]:
    process = start(home, port, workers)
    result: dict[str, object] = {"workers": workers}
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/sandi/directory.json", timeout=5) as r:
            etag, size = r.headers["ETag"], len(r.read())
        result["directory_bytes"] = size
        asyncio.run(load(port, 20, 5, etag, 30))  # warm-up
        result["load"] = asyncio.run(load(port, args.clients, args.requests, etag, 120))
        if args.bad:
            result["bad_input"] = asyncio.run(bad_input(port, args.clients, args.bad_wait))
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/sandi/healthz", timeout=10) as r:
                result["healthy_after"] = r.status == 200
            result["alive_after"] = process.poll() is None
    finally:
        process.terminate()
        try:
            _, err = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate()
        result["tracebacks_in_log"] = err.decode(errors="replace").count("Traceback")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--requests", type=int, default=20, help="per client (half conditional)")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--bad", action="store_true", help="also the bad-input run")
    parser.add_argument("--bad-wait", type=float, default=20.0,
                        help="seconds a bad client waits for an answer (garbage gets none: h11 waits for "
                             "the end of the headers; a reverse proxy times it out)")
    parser.add_argument("--agencies", type=int, default=len(AGENCIES), help="agencies with keys (size)")
    parser.add_argument("--keep", type=Path, help="build the authority here and keep it")
    args = parser.parse_args()
    if not 1 <= args.clients <= 1000 or not 1 <= args.requests <= 200 or not 0 < args.bad_wait <= 60:
        raise SystemExit("bounded: --clients 1..1000, --requests 1..200")
    folder = args.keep or Path(tempfile.mkdtemp(prefix="sandi-bench-server-"))
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    agencies = max(0, min(args.agencies, len(AGENCIES)))
    home = build_authority(folder, f"http://127.0.0.1:{port}/sandi", agencies)
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs", file=sys.stderr)
    results = [run(home, port, int(w), args) for w in args.workers.split(",")]
    print(json.dumps(results, indent=2))
    bad = [r for r in results if "bad_input" in r]
    if any(r["bad_input"]["5xx"] or not r.get("alive_after") or not r.get("healthy_after")  # type: ignore[index]
           or r.get("tracebacks_in_log") for r in bad):
        raise SystemExit("bad input caused a 5xx, a crash or a traceback")


if __name__ == "__main__":
    main()
