"""A real ``sandi serve`` on a loopback port, over a real authority (no HTTP mocks).

One authority per test module (``served``): its base URL names the server's own port,
so the certificates it issues point at ``http://127.0.0.1:PORT/sandi/crl.der``. The
server runs as a child process through the real command line (``sandi serve``) and is
stopped at the end of the module.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import CliResult, invoke

ENV: dict[str, str | None] = {"SANDI_PASSPHRASE": "kata sandi server uji", "SANDI_SCRYPT_WORK_FACTOR": "10",
                              "SANDI_OPERATOR": "operator-test"}


# The tests may run as root (a container); the refusal itself is tested without the flag.
ROOT_OK = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Site:
    home: Path

    def sandi(self, *args: str | Path) -> CliResult:
        return invoke("--home", self.home, *args, env=ENV)

    def ok(self, *args: str | Path) -> CliResult:
        r = self.sandi(*args)
        assert r.code == 0, (self.home.name, args, r)
        return r


@dataclass
class Served:
    authority: Site
    base: str
    fingerprint: str
    folder: Path
    process: subprocess.Popen[bytes]

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.base + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def settle(self) -> None:
        """Wait until the server has seen the registry's newest publication (it re-reads
        the registry at most once per CACHE_SECONDS)."""
        from sandi_server.app import CACHE_SECONDS

        time.sleep(CACHE_SECONDS + 0.2)

    def workstation(self, name: str, code: str, *extra: str) -> Site:
        site = Site(self.folder / name)
        site.ok("init", "--agency", code, "--root-fingerprint", self.fingerprint, *extra)
        return site

    def enrol_by_file(self, site: Site, code: str) -> None:
        request = site.home.parent / f"{site.home.name}-{code}.request.json"
        response = site.home.parent / f"{site.home.name}-{code}.response.json"
        site.ok("keys", "request", code, "-o", request)
        self.authority.ok("keys", "certify", "--yes", request, "-o", response)
        site.ok("keys", "import-certs", response)
        self.settle()


def start_server(home: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDI_")}
    env.update({k: v for k, v in ENV.items() if v is not None})
    process = subprocess.Popen(
        [sys.executable, "-m", "sandi", "--home", str(home), "serve", "--host", "127.0.0.1",
         "--port", str(port), *ROOT_OK, *extra],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(process.stderr.read().decode() if process.stderr else "server exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("the server did not start")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("served")
    port = free_port()
    base = f"http://127.0.0.1:{port}/sandi"
    authority = Site(folder / "authority")
    created = json.loads(authority.ok("--json", "init", "--base-url", base).stdout)
    authority.ok("agency", "add", "DISKOMINFO", "--name", "Dinas Komunikasi dan Informatika")
    authority.ok("agency", "add", "BAPPEDA", "--name", "Badan Perencanaan Pembangunan Daerah")
    process = start_server(authority.home, port)
    try:
        yield Served(authority, base, created["root_fingerprint"], folder, process)
    finally:
        stop_server(process)
        if process.stderr is not None:
            process.stderr.close()
