"""The key agent (ADR 0018): a real agent process, real sockets, the real command line.

Each test starts an agent through ``sandi agent start`` (a background process of its
own) or, where a timeout must pass in seconds, the library's :class:`AgentServer` in a
thread (the command line refuses timeouts under a minute). Document commands then run
without any passphrase: they can only succeed through the agent.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandi.home import Home
from sandi.keystore import FixedPassphrase
from sandi.keystore.agent import (
    AgentClient,
    AgentPaths,
    AgentServer,
    AgentSettings,
    AgentUnavailable,
    check_settings,
)
from sandi.keystore.filestore import FileKeyStore, forget_unlocked
from tests import authority_fixtures as fx
from tests.authority_fixtures import PASSPHRASE, AuthorityHome
from tests.test_portable import windows_like

authority_template = fx.authority_template
authority = fx.authority

NO_PASSPHRASE: dict[str, str | None] = {"SANDI_PASSPHRASE": None}


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A short private runtime folder (socket paths are limited to ~100 bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="sa-", dir="/tmp"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(folder))
    yield folder
    # Whatever a test left running ends here.
    for sock in (folder / "sandi").glob("*.sock") if (folder / "sandi").exists() else []:
        client = AgentClient(AgentPaths(sock.parent, sock.name.removesuffix(".sock")))
        try:
            client.stop()
        except Exception:  # a test left it unreachable by token: end it by its pid
            pid = client._own_agent_pid()
            if pid is not None:
                os.kill(pid, signal.SIGTERM)
    subprocess.run(["rm", "-rf", str(folder)], check=False)


@pytest.fixture
def doc(tmp_path: Path) -> Path:
    path = tmp_path / "surat.txt"
    path.write_bytes(b"Dengan hormat, rapat koordinasi persandian.\n")
    return path


def start(home: AuthorityHome, *args: str) -> dict[str, object]:
    r = home.ok("--json", "agent", "start", *args)
    started = json.loads(r.stdout)
    assert started["started"] is True and started["locked"] is False
    return started


def client_of(home: AuthorityHome) -> AgentClient:
    found = AgentClient.find(Home(home.path).keys_dir)
    assert found is not None
    return found


def journal_actions(home: AuthorityHome) -> list[dict[str, object]]:
    lines = (home.path / "audit.journal").read_text().splitlines()
    return [entry for entry in map(json.loads, lines) if entry.get("type") == "entry"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (our child when started in-process) counts as gone.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            return False
    return True


def _wait_gone(pid: int) -> None:
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)


# -- the whole day: unlock once, then no passphrase ----------------------------------------


def test_seal_open_sign_decrypt_through_the_agent(authority: AuthorityHome, runtime: Path, doc: Path,
                                                  tmp_path: Path) -> None:
    started = start(authority, "--timeout", "1h", "--idle-timeout", "10m")
    assert started["keys"] == 10  # five agencies with a signing and an encryption key; never the root
    sealed = tmp_path / "surat.txt.sandi"
    authority.ok("seal", doc, "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "R", env=NO_PASSPHRASE)
    authority.ok("open", sealed, "--as", "BAPPEDA", "-o", tmp_path / "dibuka.txt", env=NO_PASSPHRASE)
    assert (tmp_path / "dibuka.txt").read_bytes() == doc.read_bytes()
    authority.ok("sign", doc, "--as", "DISKOMINFO", env=NO_PASSPHRASE)
    authority.ok("verify", doc, env=NO_PASSPHRASE)
    encrypted = tmp_path / "data.age"
    authority.ok("encrypt", "-r", "SETDA", "--as", "BAPPEDA", "--class", "B", "-o", encrypted, doc)
    authority.ok("decrypt", "--as", "SETDA", "-o", tmp_path / "data.txt", encrypted, env=NO_PASSPHRASE)
    assert (tmp_path / "data.txt").read_bytes() == doc.read_bytes()

    entries = journal_actions(authority)
    actions = [e["action"] for e in entries]
    unlock = next(e for e in entries if e["action"] == "agent.unlock")
    assert unlock["actor"] == "key-agent" and unlock["details"]["keys"] == 10  # type: ignore[index]
    assert actions.count("agent.unwrap") >= 2  # open and decrypt
    signs = [e for e in entries if e["action"] == "agent.sign"]
    assert {e["subject"] for e in signs} == {next(r for r in _refs(authority) if r.startswith("DISKOMINFO.signing"))}
    assert all(e["details"]["peer_pid"] == os.getpid() for e in signs)  # type: ignore[index]

    status = json.loads(authority.ok("--json", "agent", "status").stdout)
    assert status["running"] is True and status["locked"] is False and status["pid"] == started["pid"]
    limits = Path(f"/proc/{started['pid']}/limits").read_text()
    assert [line.split()[-3:-1] for line in limits.splitlines() if line.startswith("Max core file size")] == [
        ["0", "0"]]  # no core dump of the keys
    authority.ok("agent", "stop")
    _wait_gone(int(started["pid"]))  # type: ignore[call-overload]
    assert json.loads(authority.ok("--json", "agent", "status").stdout) == {"running": False}
    assert [e["action"] for e in journal_actions(authority)][-2:] == ["agent.lock", "agent.stop"]
    # Without the agent, the same command needs the passphrase again.
    r = authority.run("seal", doc, "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "R", "-o",
                      tmp_path / "again.sandi", env=NO_PASSPHRASE)
    assert r.code == 1 and "a passphrase is needed for the key store" in r.stderr, r


def _refs(home: AuthorityHome) -> list[str]:
    return FileKeyStore(Home(home.path).keys_dir, FixedPassphrase(PASSPHRASE)).refs()


def test_lock_makes_commands_ask_again(authority: AuthorityHome, runtime: Path, doc: Path,
                                       tmp_path: Path) -> None:
    start(authority)
    assert authority.ok("agent", "lock").stdout == "key agent locked: the keys are forgotten\n"
    status = json.loads(authority.ok("--json", "agent", "status").stdout)
    assert status["locked"] is True and status["locked_reason"] == "command" and status["keys"] == 0
    r = authority.run("seal", doc, "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "R", env=NO_PASSPHRASE)
    assert r.code == 1, r
    assert "error: a passphrase is needed for the key store and there is no terminal to ask on" in r.stderr
    assert not (tmp_path / "surat.txt.sandi").exists()
    # With the passphrase it works as it did before agents existed.
    authority.ok("seal", doc, "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "R")
    # 'start' replaces the locked agent with an unlocked one.
    old_pid = status["pid"]
    again = start(authority)
    assert again["pid"] != old_pid
    _wait_gone(int(old_pid))
    authority.ok("open", tmp_path / "surat.txt.sandi", "--as", "BAPPEDA", "-o", tmp_path / "o.txt",
                 env=NO_PASSPHRASE)
    actions = [e["action"] for e in journal_actions(authority)]
    lock = [e for e in journal_actions(authority) if e["action"] == "agent.lock"]
    assert [e["details"]["reason"] for e in lock] == ["command"]  # type: ignore[index]
    assert actions.count("agent.unlock") == 2 and actions.count("agent.stop") == 1


def test_start_refuses_a_wrong_passphrase_and_leaves_nothing(authority: AuthorityHome, runtime: Path) -> None:
    r = authority.run("agent", "start", env={"SANDI_PASSPHRASE": "not the passphrase at all"})
    assert r.code == 1, r
    assert "error: wrong passphrase for the key store" in r.stderr
    assert list((runtime / "sandi").glob("*.sock")) == [] and list((runtime / "sandi").glob("*.token")) == []
    journal = authority.path / "audit.journal"
    assert not journal.exists() or "agent.unlock" not in [e["action"] for e in journal_actions(authority)]


def test_a_second_start_finds_the_running_agent(authority: AuthorityHome, runtime: Path) -> None:
    first = start(authority)
    r = authority.ok("--json", "agent", "start", env=NO_PASSPHRASE)  # asks nothing
    again = json.loads(r.stdout)
    assert again["started"] is False and again["pid"] == first["pid"]


# -- timeouts (the library's server in a thread: seconds, not the CLI's minutes) ---------------


def _server(home: AuthorityHome, runtime: Path, settings: AgentSettings) -> tuple[AgentServer, threading.Thread]:
    h = Home(home.path)
    folder = runtime / "sandi"
    folder.mkdir(mode=0o700, exist_ok=True)
    server = AgentServer.unlock(h.path, h.keys_dir, h.journal_path, FixedPassphrase(PASSPHRASE), settings,
                                runtime_dir=folder)
    thread = threading.Thread(target=server.serve, kwargs={"poll_seconds": 0.05}, daemon=True)
    thread.start()
    return server, thread


def test_idle_timeout_locks_and_lifetime_ends(authority: AuthorityHome, runtime: Path, doc: Path) -> None:
    server, thread = _server(authority, runtime, AgentSettings(lifetime_seconds=3, idle_seconds=1))
    client = client_of(authority)
    assert len(client.keys()) == 10  # a use: the idle clock restarts
    deadline = time.monotonic() + 10
    while not client.status()["locked"] and time.monotonic() < deadline:
        time.sleep(0.1)
    status = client.status()
    assert status["locked"] is True and status["locked_reason"] == "idle" and status["keys"] == 0
    with pytest.raises(AgentUnavailable):
        client.keys()
    # A command now asks the passphrase (and has none here).
    r = authority.run("sign", doc, "--as", "DISKOMINFO", env=NO_PASSPHRASE)
    assert r.code == 1 and "a passphrase is needed" in r.stderr, r
    thread.join(timeout=10)
    assert not thread.is_alive() and not server.paths.socket.exists() and not server.paths.token.exists()
    reasons = [e["details"]["reason"] for e in journal_actions(authority)  # type: ignore[index]
               if e["action"] == "agent.lock"]
    assert reasons == ["idle"]  # the lifetime's end finds it locked already
    assert AgentClient.find(Home(authority.path).keys_dir) is None


def test_lifetime_ends_an_unlocked_agent(authority: AuthorityHome, runtime: Path) -> None:
    server, thread = _server(authority, runtime, AgentSettings(lifetime_seconds=1, idle_seconds=0))
    thread.join(timeout=10)
    assert not thread.is_alive() and not server.paths.socket.exists()
    reasons = [e["details"]["reason"] for e in journal_actions(authority)  # type: ignore[index]
               if e["action"] == "agent.lock"]
    assert reasons == ["timeout"]


def test_the_roots_stay_out_of_the_agent(authority: AuthorityHome, runtime: Path) -> None:
    from sandi.authority.pdfroot import PDF_ROOT_OWNER
    from sandi.authority.root import ROOT_OWNER
    from sandi.keystore.agent import ROOT_OWNERS

    assert set(ROOT_OWNERS) == {ROOT_OWNER, PDF_ROOT_OWNER}
    authority.ok("pdf-root", "init")
    start(authority)
    held = client_of(authority).keys()
    assert len(held) == 10 and not any(ref.startswith(("root.", "pdf-root.")) for ref in held)
    # Issuing still needs the passphrase: without it, it fails and the registry is unchanged.
    r = authority.run("keys", "renew", "SETDA", env=NO_PASSPHRASE)
    assert r.code == 1 and "a passphrase is needed" in r.stderr, r
    assert "agent.sign" not in [e["action"] for e in journal_actions(authority)]


def test_command_line_bounds() -> None:
    from sandi_cli.agent import parse_duration

    from sandi.errors import UsageError

    assert [parse_duration(t, "--timeout") for t in ("8h", "30m", "90s", "1d", "120", "off", "0")] == [
        28800, 1800, 90, 86400, 120, 0, 0]
    for bad in ("8 hours", "-1h", "1w", ""):
        with pytest.raises(UsageError):
            parse_duration(bad, "--timeout")
    with pytest.raises(UsageError):
        check_settings(30, 0)  # under a minute
    with pytest.raises(UsageError):
        check_settings(8 * 86400, 0)  # over a week
    with pytest.raises(UsageError):
        check_settings(3600, 7200)  # idle longer than the lifetime
    assert check_settings(3600, 0).idle_seconds == 0


# -- who may talk to it ------------------------------------------------------------------------


def _raw(path: Path, payload: bytes) -> dict[str, object]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    try:
        sock.connect(str(path))
        sock.sendall(payload)
        header = sock.recv(4)
        if len(header) < 4:
            return {}
        (size,) = struct.unpack(">I", header)
        data = b""
        while len(data) < size:
            chunk = sock.recv(size - len(data))
            if not chunk:
                break
            data += chunk
        answer = json.loads(data)
        assert isinstance(answer, dict)
        return answer
    finally:
        sock.close()


def _frame(obj: object) -> bytes:
    data = json.dumps(obj).encode()
    return struct.pack(">I", len(data)) + data


def test_a_wrong_token_is_refused_and_audited(authority: AuthorityHome, runtime: Path, doc: Path) -> None:
    started = start(authority)
    client = client_of(authority)
    answer = _raw(client.paths.socket, _frame({"v": 1, "op": "keys", "token": "0" * 64}))
    assert answer == {"error": "refused", "ok": False}
    assert _raw(client.paths.socket, _frame({"v": 1, "op": "keys"})) == {"error": "refused", "ok": False}
    refused = [e for e in journal_actions(authority) if e["action"] == "agent.refuse"]
    assert len(refused) == 2 and refused[0]["outcome"] == "denied" and refused[0]["subject"] == "token"
    # A token file that no longer matches (replaced): the command says so, loudly.
    client.paths.token.unlink()
    fd = os.open(client.paths.token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, b"f" * 64 + b"\n")
    os.close(fd)
    r = authority.run("sign", doc, "--as", "DISKOMINFO", env=NO_PASSPHRASE)
    assert r.code == 1 and "error: the key agent refused this client" in r.stderr, r
    # 'stop' still ends it: the socket's peer is this user's own agent process.
    assert authority.ok("agent", "stop").stdout == "key agent stopped\n"
    _wait_gone(int(started["pid"]))  # type: ignore[call-overload]
    assert not client.paths.socket.exists()


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="needs root to act as another user")
def test_another_user_is_refused(authority: AuthorityHome, runtime: Path, doc: Path) -> None:
    start(authority)
    client = client_of(authority)
    token = client.paths.token.read_text().strip()
    # Open the folder and the socket to everyone for a moment: the peer check must hold alone.
    os.chmod(runtime, 0o755)
    os.chmod(client.paths.folder, 0o711)
    os.chmod(client.paths.socket, 0o666)
    probe = textwrap.dedent("""
        import json, os, socket, struct, sys
        os.setgid(65534); os.setuid(65534)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.settimeout(10)
        s.connect(sys.argv[1])
        data = json.dumps({"v": 1, "op": "keys", "token": sys.argv[2]}).encode()
        s.sendall(struct.pack(">I", len(data)) + data)
        size = struct.unpack(">I", s.recv(4))[0]
        print(s.recv(size).decode())
    """)
    done = subprocess.run([sys.executable, "-c", probe, str(client.paths.socket), token], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"error": "refused", "ok": False}
    refused = [e for e in journal_actions(authority) if e["action"] == "agent.refuse"]
    assert refused[-1]["subject"] == "peer user" and refused[-1]["details"]["peer_uid"] == 65534  # type: ignore[index]
    os.chmod(client.paths.socket, 0o600)
    os.chmod(client.paths.folder, 0o700)

    # The client side: a socket that is not the user's own is not talked to.
    os.chown(client.paths.socket, 65534, 65534, follow_symlinks=False)
    r = authority.run("sign", doc, "--as", "DISKOMINFO", env=NO_PASSPHRASE)
    assert r.code == 1 and "is not this user's own" in r.stderr, r
    os.chown(client.paths.socket, 0, 0, follow_symlinks=False)
    # A runtime folder others may enter is not used at all: commands do without the agent.
    os.chmod(client.paths.folder, 0o755)
    r = authority.run("sign", doc, "--as", "DISKOMINFO", env=NO_PASSPHRASE)
    assert r.code == 1 and "a passphrase is needed" in r.stderr, r
    r = authority.run("agent", "status")
    assert r.code == 1 and "is not private to this user" in r.stderr, r
    os.chmod(client.paths.folder, 0o700)


# -- an agent that dies ------------------------------------------------------------------------


def test_a_killed_agent_leaves_commands_working(authority: AuthorityHome, runtime: Path, doc: Path,
                                                tmp_path: Path) -> None:
    started = start(authority)
    os.kill(int(started["pid"]), signal.SIGKILL)  # type: ignore[call-overload]
    _wait_gone(int(started["pid"]))  # type: ignore[call-overload]
    paths = client_of(authority).paths
    assert paths.socket.exists()  # left behind: nobody cleaned up
    # With the passphrase: as before; without: the usual clear error, no internal error.
    authority.ok("seal", doc, "--as", "DISKOMINFO", "--to", "BAPPEDA", "--class", "R")
    r = authority.run("open", tmp_path / "surat.txt.sandi", "--as", "BAPPEDA", "-o", tmp_path / "x.txt",
                      env=NO_PASSPHRASE)
    assert r.code == 1 and "a passphrase is needed" in r.stderr and "internal" not in r.stderr, r
    assert json.loads(authority.ok("--json", "agent", "status").stdout) == {"running": False}
    r = authority.run("agent", "lock")
    assert r.code == 1 and "error: no key agent runs for this home" in r.stderr, r
    # A new agent clears the stale socket.
    start(authority)
    authority.ok("open", tmp_path / "surat.txt.sandi", "--as", "BAPPEDA", "-o", tmp_path / "x.txt",
                 env=NO_PASSPHRASE)


# -- the protocol: bounded, and nothing secret on the wire ---------------------------------------


def test_malformed_requests_never_stop_the_agent(authority: AuthorityHome, runtime: Path) -> None:
    start(authority)
    client = client_of(authority)
    token = client.paths.token.read_text().strip()
    sock = client.paths.socket
    ref = next(r for r in _refs(authority) if r.startswith("BAPPEDA.encryption"))
    sref = next(r for r in _refs(authority) if r.startswith("DISKOMINFO.signing"))
    base = {"v": 1, "token": token}
    cases: list[tuple[bytes, str | None]] = [
        (struct.pack(">I", 2**31) + b"{}", "malformed"),  # a 2 GiB frame: refused before reading
        (struct.pack(">I", 0), "malformed"),
        (struct.pack(">I", 5) + b"nope!", "malformed"),
        (_frame([1, 2, 3]), "malformed"),
        (_frame({**base, "op": "fly"}), "malformed"),
        (_frame({**base, "v": 99, "op": "keys"}), "malformed"),
        (_frame({**base, "op": "sign", "ref": sref, "data": "***"}), "malformed"),
        (_frame({**base, "op": "sign", "ref": sref}), "malformed"),
        (_frame({**base, "op": "sign", "ref": sref, "data": base64.b64encode(b"x" * 70000).decode()}),
         "malformed"),
        (_frame({**base, "op": "sign", "ref": ref, "data": "eA=="}), "unknown key"),
        (_frame({**base, "op": "sign", "ref": "NOBODY.signing.0011223344556677", "data": "eA=="}), "unknown key"),
        (_frame({**base, "op": "unwrap", "ref": ref, "stanzas": "x"}), "malformed"),
        (_frame({**base, "op": "unwrap", "ref": ref, "stanzas": [{"type": "X25519"}] * 65}), "malformed"),
        (_frame({**base, "op": "unwrap", "ref": ref,
                 "stanzas": [{"type": "X25519", "args": ["AAAA"], "body": "AAAA"}]}), "failed"),
        (_frame({**base, "op": "unwrap", "ref": sref,
                 "stanzas": [{"type": "X25519", "args": ["AAAA"], "body": "AAAA"}]}), "unknown key"),
        (b"\x00\x00", None),  # half a length, then gone
        (b"", None),
    ]
    for payload, error in cases:
        answer = _raw(sock, payload)
        if error is None:
            assert answer == {}
        else:
            assert answer == {"ok": False, "error": error}, payload[:60]
        assert client.status()["locked"] is False  # still there, still unlocked
    # A client that connects and says nothing is dropped after a few seconds, others served meanwhile.
    idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    idle.connect(str(sock))
    assert len(client.keys()) == 10
    idle.close()


class _Relay:
    """A socket in the agent's place that passes everything on and keeps a copy."""

    def __init__(self, listen: Path, target: Path) -> None:
        self.captured = bytearray()
        self._lock = threading.Lock()
        self._target = target
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(listen))
        os.chmod(listen, 0o600)
        self._server.listen(8)
        self._server.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._pair, args=(conn,), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                with self._lock:
                    self.captured += data
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def _pair(self, conn: socket.socket) -> None:
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.connect(str(self._target))
        back = threading.Thread(target=self._pump, args=(upstream, conn))
        back.start()
        self._pump(conn, upstream)
        back.join()
        conn.close()
        upstream.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._server.close()


def test_no_private_key_crosses_the_socket(authority: AuthorityHome, runtime: Path, doc: Path,
                                           tmp_path: Path) -> None:
    start(authority)
    paths = client_of(authority).paths
    real = paths.folder / "real.sock"
    os.rename(paths.socket, real)  # the agent keeps listening on the moved socket
    relay = _Relay(paths.socket, real)
    try:
        authority.ok("seal", doc, "--as", "DISKOMINFO", "--to", "BAPPEDA", "--to", "SETDA", "--class", "R",
                     env=NO_PASSPHRASE)
        authority.ok("open", tmp_path / "surat.txt.sandi", "--as", "SETDA", "-o", tmp_path / "o.txt",
                     env=NO_PASSPHRASE)
        authority.ok("sign", doc, "--as", "DISKOMINFO", env=NO_PASSPHRASE)
        encrypted = tmp_path / "d.age"
        authority.ok("encrypt", "-r", "BAPPEDA", "--as", "SETDA", "--class", "B", "-o", encrypted, doc)
        authority.ok("decrypt", "--as", "BAPPEDA", "-o", tmp_path / "d.txt", encrypted, env=NO_PASSPHRASE)
    finally:
        relay.close()
        os.rename(real, paths.socket)
    traffic = bytes(relay.captured)
    assert b'"op":"sign"' in traffic and b'"op":"unwrap"' in traffic and b'"signature"' in traffic

    store = FileKeyStore(Home(authority.path).keys_dir, FixedPassphrase(PASSPHRASE))
    try:
        secrets: list[bytes] = []
        for ref in store.refs():
            kind = "signing" if ".signing." in ref else "encryption"
            raw = store.get_secret_unsafe(ref, kind)
            secrets += [raw, base64.b64encode(raw), raw.hex().encode(), raw.hex().upper().encode()]
            if kind == "encryption":
                secrets.append(store.get_encryption_key(ref).secret_bech32_unsafe().encode())
        store_identity = store._identity()
        secrets.append(store_identity.secret_bech32_unsafe().encode())
        secrets.append(store_identity.private_bytes_unsafe())
    finally:
        forget_unlocked()
    assert len(secrets) == 11 * 4 + 5 + 2
    for secret in secrets:
        assert secret not in traffic
    assert PASSPHRASE.encode() not in traffic


# -- where no agent can run ------------------------------------------------------------------


def test_windows_gets_a_clear_refusal_and_commands_still_work(authority: AuthorityHome, tmp_path: Path,
                                                               doc: Path) -> None:
    done = windows_like(tmp_path, "--home", authority.path, "agent", "start")
    assert done.returncode == 2, done
    assert "error: this system has no private local sockets for a key agent" in done.stderr
    assert "keyring key store (Windows Credential Manager)" in done.stderr
    done = windows_like(tmp_path, "--home", authority.path, "agent", "status")
    assert done.returncode == 2 and "Windows Credential Manager" in done.stderr, done
    done = windows_like(tmp_path, "--home", authority.path, "sign", doc, "--as", "DISKOMINFO")
    assert done.returncode == 0, done


def test_a_keyring_home_needs_no_agent(tmp_path: Path, runtime: Path) -> None:
    from tests.conftest import invoke

    home = tmp_path / "ring"
    home.mkdir()
    (home / "sandi.toml").write_text('format = 1\nrole = "workstation"\nprovince = "Provinsi Banten"\n'
                                      'keystore = "keyring"\nagency = "BAPPEDA"\n')
    r = invoke("--home", home, "agent", "start", env={"SANDI_PASSPHRASE": PASSPHRASE})
    assert r.code == 2 and "asks for no passphrase: a key agent has nothing to hold" in r.stderr, r


def test_a_pdf_signed_with_a_p256_key_through_the_agent(authority: AuthorityHome, runtime: Path,
                                                        tmp_path: Path) -> None:
    pytest.importorskip("pyhanko")
    from tests.test_pdf import make_letter

    authority.ok("pdf-root", "init")
    authority.ok("keys", "issue", "SETDA", "--purpose", "pdf-signing")
    letter = make_letter(tmp_path / "surat.pdf")
    start(authority)
    r = authority.ok("--json", "sign", letter, "--pdf", "--as", "SETDA", env=NO_PASSPHRASE)
    assert json.loads(r.stdout)["signer"] == "SETDA"
    authority.ok("verify", tmp_path / "surat.signed.pdf", env=NO_PASSPHRASE)
    p256_ref = next(r for r in _refs(authority) if r.startswith("SETDA.ecdsa-p256."))
    assert p256_ref in [e["subject"] for e in journal_actions(authority) if e["action"] == "agent.sign"]


def _on_a_terminal(argv: list[str], env: dict[str, str], answer: bytes) -> tuple[int, bytes]:
    """Run ``argv`` on a new pseudo-terminal; type ``answer`` when it asks; (exit code, screen)."""
    import pty
    import select

    pid, fd = pty.fork()
    if pid == 0:  # the child: the pty is its controlling terminal (/dev/tty works)
        os.execve(argv[0], argv, env)
    screen = b""
    answered = False
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        screen += chunk
        if not answered and b"Passphrase for the key store" in screen:
            os.write(fd, answer + b"\n")
            answered = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), screen


def test_after_lock_a_command_on_a_terminal_asks(authority: AuthorityHome, runtime: Path, doc: Path,
                                                 tmp_path: Path) -> None:
    start(authority)
    authority.ok("agent", "lock")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDI_")}
    env.update({"LANG": "C", "SANDI_OPERATOR": "operator-test"})
    argv = [sys.executable, "-m", "sandi", "--home", str(authority.path), "seal", str(doc), "--as",
            "DISKOMINFO", "--to", "BAPPEDA", "--class", "R", "-o", str(tmp_path / "asked.sandi")]
    code, screen = _on_a_terminal(argv, env, PASSPHRASE.encode())
    assert code == 0, screen
    assert b"Passphrase for the key store:" in screen and b"sealed surat.txt" in screen
    assert PASSPHRASE.encode() not in screen  # hidden input
    assert (tmp_path / "asked.sandi").exists()
