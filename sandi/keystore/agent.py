"""The key agent: a home's file key store unlocked once, its keys held by one process.

Like ``ssh-agent`` / ``gpg-agent`` (ADR 0018): ``sandi agent start`` asks the passphrase
once and starts a background process (:class:`AgentServer`) that unlocks the store, reads
every key into its memory and then serves signatures and age unwraps over a Unix socket;
document commands use it (:class:`AgentKeyStore`) instead of paying the scrypt unlock
(~0.8 s, 256 MiB at the default work factor) each time.

Invariants:

* a private key never leaves the agent: the socket carries data to sign and signatures,
  recipient stanzas and file keys, public keys; never a private key, never the passphrase
  (that reaches the agent once, on its standard input, from the process that started it);
* the agent writes no key anywhere; locking (``sandi agent lock``, the idle timeout, the
  lifetime, ``stop``, SIGTERM) drops every key object at once; it also forgets the
  unlocked store identity right after reading the keys;
* only the user reaches the agent: its socket and token lie in the user's private
  runtime folder (0700, checked by both sides), the server checks the peer's user id
  (``SO_PEERCRED``, Linux) before it acts on a request, and every request carries the 256-bit
  token from the 0600 token file, compared in constant time; the client also checks the
  folder, the socket's owner and the token file before it connects;
* one request per connection, a 4-byte length and a JSON object of at most
  :data:`MAX_FRAME` bytes; anything else is answered with an error code and the
  connection closed: a malformed request never stops the agent;
* the agent audits to the home's journal: the unlock, every lock (with its reason), each
  signature and each unwrap it makes, and every refused client; a use whose audit entry
  cannot be written is refused (fail closed);
* whenever the agent is absent, dead, locked or lacks a key, :class:`AgentKeyStore` does
  what the store does without it (unlock with the passphrase), so commands behave as
  before the agent existed.

The OS-specific parts (runtime folder, peer credentials, detaching) are in
:mod:`sandi.portable`; where the OS has no private local sockets (Windows),
:func:`agent_support_problem` says so and no agent runs.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandi import portable
from sandi.errors import (
    AlreadyExistsError,
    AuditError,
    ConfigError,
    CredentialError,
    NotFoundError,
    SandiError,
)
from sandi.i18n import _
from sandi.keystore.base import KeyKind, KeyStore, StoredKey, check_ref
from sandi.keystore.keys import P256Signer, Signer, fingerprint, verify_ed25519

if TYPE_CHECKING:
    from sandi.formats.age import Identity, Stanza
    from sandi.keystore.passphrase import PassphraseSource

PROTOCOL = 1
#: one request or answer; a hybrid stanza is ~1.6 KiB of base64, a signed TBS a few KiB
MAX_FRAME = 128 * 1024
#: data signed through the agent (digests, signed attributes, certificates); larger
#: data is signed in the command's own process after an unlock
MAX_SIGN_DATA = 64 * 1024
MAX_STANZAS = 64
MAX_CONNECTIONS = 16
#: how long a connected client may take to send its request
CLIENT_SECONDS = 5.0
#: how long a client waits for an answer (an audit append fsyncs)
ANSWER_SECONDS = 60.0
MAX_LIFETIME_SECONDS = 7 * 24 * 3600
DEFAULT_LIFETIME_SECONDS = 8 * 3600
DEFAULT_IDLE_SECONDS = 3600
ACTOR = "key-agent"
_LENGTH = struct.Struct(">I")

#: error codes of the protocol (the client turns them into its own messages)
LOCKED = "locked"
REFUSED = "refused"
MALFORMED = "malformed"
UNKNOWN_KEY = "unknown key"
AUDIT_FAILED = "audit failed"
FAILED = "failed"


def agent_support_problem() -> str | None:
    """Why no key agent can run here (an OS without private local sockets), or None."""
    return portable.agent_unsupported_reason()


def require_agent_support() -> None:
    """Raise ConfigError, saying what to use instead, where no key agent can run."""
    problem = agent_support_problem()
    if problem is not None:
        raise ConfigError(problem, hint=_(
            "on Windows, use the keyring key store (Windows Credential Manager), which asks no "
            "passphrase: 'sandi init --keystore keyring'"))


# -- where an agent lives ----------------------------------------------------------------


@dataclass(frozen=True)
class AgentPaths:
    """The socket, token and lock file of the agent of one home, in the runtime folder."""

    folder: Path
    name: str

    @classmethod
    def of(cls, keys_dir: Path, folder: Path | None = None, *, create: bool = True) -> AgentPaths | None:
        """The agent of the key folder ``keys_dir`` (one agent per home); checks the
        private runtime folder, and creates it with ``create`` (else None if it is not
        there: no agent ever ran)."""
        digest = hashlib.sha256(str(keys_dir.resolve()).encode("utf-8", "surrogateescape")).hexdigest()
        try:
            runtime = folder if folder is not None else portable.agent_runtime_dir(create=create)
            portable.check_private_runtime_dir(runtime)
        except FileNotFoundError:
            if not create:
                return None
            raise CredentialError(_("the key agent's folder {path} is not private to this user").format(
                path=folder)) from None
        except OSError as exc:
            raise CredentialError(
                _("the key agent's folder {path} is not private to this user").format(
                    path=exc.filename or folder),
                hint=_("remove it (it is recreated with mode 0700), or set XDG_RUNTIME_DIR"),
            ) from None
        paths = cls(runtime, f"agent-{digest[:16]}")
        if len(os.fsencode(paths.socket)) > portable.MAX_SOCKET_PATH:
            raise ConfigError(
                _("the key agent's socket path {path} is too long for this system").format(
                    path=paths.socket),
                hint=_("set XDG_RUNTIME_DIR to a short folder"),
            )
        return paths

    @property
    def socket(self) -> Path:
        return self.folder / f"{self.name}.sock"

    @property
    def token(self) -> Path:
        return self.folder / f"{self.name}.token"

    @property
    def lock(self) -> Path:
        return self.folder / f"{self.name}.lock"


# -- framing ---------------------------------------------------------------------------------


class _Malformed(Exception):
    """The peer broke the protocol (too large, not JSON, wrong fields)."""


def send_frame(sock: socket.socket, message: dict[str, Any]) -> None:
    data = json.dumps(message, separators=(",", ":"), sort_keys=True).encode()
    if len(data) > MAX_FRAME:
        raise _Malformed("frame too large")
    sock.sendall(_LENGTH.pack(len(data)) + data)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks: list[bytes] = []
    left = size
    while left:
        chunk = sock.recv(min(left, 65536))
        if not chunk:
            raise _Malformed("connection closed early")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def recv_frame(sock: socket.socket) -> dict[str, Any]:
    """One frame; the length is checked before anything is read into memory."""
    (size,) = _LENGTH.unpack(_recv_exact(sock, _LENGTH.size))
    if not 0 < size <= MAX_FRAME:
        raise _Malformed("bad frame length")
    try:
        obj = json.loads(_recv_exact(sock, size))
    except (ValueError, UnicodeDecodeError):
        raise _Malformed("not JSON") from None
    if not isinstance(obj, dict):
        raise _Malformed("not an object")
    return obj


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: object, *, max_bytes: int) -> bytes:
    if not isinstance(value, str) or len(value) > (max_bytes + 2) // 3 * 4:
        raise _Malformed("bad base64 field")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _Malformed("bad base64 field") from None


def _field(request: dict[str, Any], name: str) -> str:
    value = request.get(name)
    if not isinstance(value, str) or len(value) > 1024:
        raise _Malformed(f"bad field {name}")
    return value


# -- the agent ---------------------------------------------------------------------------------


@dataclass
class _HeldKey:
    kind: KeyKind
    public: bytes
    key: Any  # SigningKey, X25519Identity or MLKEM768X25519Identity


@dataclass(frozen=True)
class AgentSettings:
    lifetime_seconds: int = DEFAULT_LIFETIME_SECONDS
    #: 0: no idle timeout
    idle_seconds: int = DEFAULT_IDLE_SECONDS


def check_settings(lifetime_seconds: int, idle_seconds: int) -> AgentSettings:
    from sandi.errors import UsageError

    if not 60 <= lifetime_seconds <= MAX_LIFETIME_SECONDS:
        raise UsageError(_("the agent's timeout must be between 1 minute and 7 days"))
    if idle_seconds and not 60 <= idle_seconds <= lifetime_seconds:
        raise UsageError(_("the agent's idle timeout must be between 1 minute and its timeout (or 0: off)"))
    return AgentSettings(lifetime_seconds, idle_seconds)


class AgentServer:
    """The agent process's state and loop. Build with :meth:`unlock`, then :meth:`serve`."""

    def __init__(self, home_path: Path, journal: Path, paths: AgentPaths, keys: dict[str, _HeldKey],
                 settings: AgentSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.home_path = home_path
        self.journal = journal
        self.paths = paths
        self.settings = settings
        # Timeouts run on a monotonic clock (a changed wall clock neither ends nor
        # prolongs the agent); wall-clock times are only for status.
        self._clock = clock
        self._wall_offset = time.time() - clock()
        self._keys = keys
        self._lock = threading.Lock()
        self._started = clock()
        self._last_use = self._started
        self._locked_reason: str | None = None
        self._stopping = threading.Event()
        self._token = ""
        self._listener: socket.socket | None = None
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def __repr__(self) -> str:
        return f"AgentServer({str(self.home_path)!r}, {len(self._keys)} keys)"

    # -- start ---------------------------------------------------------------------------

    @classmethod
    def unlock(cls, home_path: Path, keys_dir: Path, journal: Path, passphrase: PassphraseSource,
               settings: AgentSettings, *, runtime_dir: Path | None = None) -> AgentServer:
        """Unlock the file store of ``keys_dir``, read every key, bind the socket, write
        the token and audit the unlock; nothing is left behind if any step fails.

        The agent process calls :func:`sandi.portable.harden_secret_process` first (a
        process-wide setting, so its entry point does, not this)."""
        from sandi.keystore.filestore import FileKeyStore, forget_unlocked

        require_agent_support()
        paths = AgentPaths.of(keys_dir, runtime_dir)
        assert paths is not None
        store = FileKeyStore(keys_dir, passphrase)
        try:
            keys = {ref: _read_key(store, ref) for ref in store.refs() if _served_kind(ref) is not None}
        finally:
            forget_unlocked()  # the agent holds the keys, not the store identity
        if not keys:
            # A wrong passphrase is only noticed on the first read: make sure of it.
            store._identity()
            forget_unlocked()
        server = cls(home_path, journal, paths, keys, settings)
        server._bind()
        try:
            server._audit("agent.unlock", str(home_path), details={
                "keys": len(keys), "pid": os.getpid(), "lifetime_seconds": settings.lifetime_seconds,
                "idle_seconds": settings.idle_seconds})
        except BaseException:
            server._wipe()
            server._unbind()
            raise
        return server

    def _bind(self) -> None:
        with portable.exclusive_lock(self.paths.lock):
            if self.paths.socket.exists() or self.paths.socket.is_symlink():
                if _answers(self.paths.socket):
                    raise AlreadyExistsError(
                        _("a key agent runs already for this home"),
                        hint=_("'sandi agent status' shows it; 'sandi agent stop' ends it"))
                # Left by a killed agent: nobody listens.
                self.paths.socket.unlink()
            with contextlib.suppress(FileNotFoundError):
                self.paths.token.unlink()
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            old_umask = os.umask(0o177)
            try:
                listener.bind(str(self.paths.socket))
            finally:
                os.umask(old_umask)
            listener.listen(MAX_CONNECTIONS)
            self._listener = listener
            self._token = secrets.token_hex(32)
            from sandi.fsutil import write_new_secret

            try:
                write_new_secret(self.paths.token, (self._token + "\n").encode("ascii"))
            except BaseException:
                self._unbind()
                raise

    def _unbind(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for path in (self.paths.socket, self.paths.token):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    # -- state ---------------------------------------------------------------------------

    @property
    def locked(self) -> bool:
        return self._locked_reason is not None

    def _wipe(self) -> None:
        # Dropping the objects frees their OpenSSL keys, which OpenSSL cleanses.
        self._keys.clear()

    def lock(self, reason: str) -> None:
        """Forget every key (once) and audit why. The agent keeps answering ``status``."""
        with self._lock:
            if self._locked_reason is not None:
                return
            self._wipe()
            self._locked_reason = reason
        with contextlib.suppress(AuditError):
            # Locking must happen even if the journal is unwritable; the keys are gone.
            self._audit("agent.lock", str(self.home_path), details={"reason": reason, "pid": os.getpid()})

    def _check_timeouts(self) -> None:
        now = self._clock()
        if now - self._started >= self.settings.lifetime_seconds:
            self.lock("timeout")
            self._stopping.set()  # past its lifetime an agent has nothing left to do
        elif self.settings.idle_seconds and now - self._last_use >= self.settings.idle_seconds:
            self.lock("idle")

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {
                "pid": os.getpid(),
                "home": str(self.home_path),
                "locked": self.locked,
                "locked_reason": self._locked_reason,
                "keys": len(self._keys),
                "started_at": int(self._wall_offset + self._started),
                "expires_at": int(self._wall_offset + self._started + self.settings.lifetime_seconds),
                "idle_seconds": self.settings.idle_seconds,
                "last_use_at": int(self._wall_offset + self._last_use),
            }

    def _audit(self, action: str, subject: str, outcome: str = "ok",
               details: dict[str, Any] | None = None) -> None:
        from sandi.audit.journal import record_by_operator

        record_by_operator(self.journal, ACTOR, action, subject, outcome, details)  # type: ignore[arg-type]

    # -- the loop ------------------------------------------------------------------------

    def serve(self, *, poll_seconds: float = 0.5) -> None:
        """Answer clients until stopped (``stop``, SIGTERM/SIGINT, the lifetime); then wipe
        the keys and remove the socket and the token."""
        assert self._listener is not None
        listener = self._listener
        listener.settimeout(poll_seconds)
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_args: self._stopping.set())
        try:
            while not self._stopping.is_set():
                self._check_timeouts()
                try:
                    conn, _addr = listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    if self._stopping.is_set():
                        break
                    raise
                if not self._slots.acquire(blocking=False):
                    conn.close()  # too many at once: the client falls back
                    continue
                threading.Thread(target=self._handle, args=(conn,), daemon=True).start()
        finally:
            self.lock("stop")
            with contextlib.suppress(AuditError):
                self._audit("agent.stop", str(self.home_path), details={"pid": os.getpid()})
            self._unbind()  # last: a client that saw the socket go finds the journal complete

    def _handle(self, conn: socket.socket) -> None:
        try:
            with conn:
                conn.settimeout(CLIENT_SECONDS)
                self._answer(conn)
        except OSError:
            pass  # the client went away; nothing was done for it
        finally:
            self._slots.release()

    def _answer(self, conn: socket.socket) -> None:
        peer = portable.peer_credentials(conn)
        peer_pid = peer[0] if peer is not None else None
        try:
            request = recv_frame(conn)  # bounded; read even from a stranger, so it sees the answer
        except _Malformed:
            request = None
        if peer is not None and peer[1] != portable.own_uid():
            self._refuse(conn, "peer user", {"peer_uid": peer[1], "peer_pid": peer_pid})
            return
        if request is None:
            self._reply(conn, {"ok": False, "error": MALFORMED})
            return
        token = request.get("token")
        if not isinstance(token, str) or not hmac.compare_digest(token.encode(), self._token.encode()):
            self._refuse(conn, "token", {"peer_pid": peer_pid})
            return
        if request.get("v") != PROTOCOL:
            self._reply(conn, {"ok": False, "error": MALFORMED})
            return
        try:
            answer = self._dispatch(request, peer_pid)
        except _Malformed:
            answer = {"ok": False, "error": MALFORMED}
        except AuditError:
            answer = {"ok": False, "error": AUDIT_FAILED}
        except SandiError:
            answer = {"ok": False, "error": FAILED}
        self._reply(conn, answer)
        if request.get("op") == "stop":
            self._stopping.set()

    def _refuse(self, conn: socket.socket, reason: str, details: dict[str, Any]) -> None:
        with contextlib.suppress(AuditError):
            self._audit("agent.refuse", reason, "denied", details={"reason": reason, **details})
        self._reply(conn, {"ok": False, "error": REFUSED})

    @staticmethod
    def _reply(conn: socket.socket, answer: dict[str, Any]) -> None:
        with contextlib.suppress(OSError, _Malformed):
            send_frame(conn, answer)

    def _dispatch(self, request: dict[str, Any], peer_pid: int | None) -> dict[str, Any]:
        op = request.get("op")
        if op == "status":
            return {"ok": True, "status": self.status()}
        if op == "lock":
            self.lock("command")
            return {"ok": True}
        if op == "stop":
            return {"ok": True}
        if op not in ("keys", "sign", "unwrap"):
            raise _Malformed("unknown op")
        with self._lock:
            if self.locked:
                return {"ok": False, "error": LOCKED}
            self._last_use = self._clock()
            if op == "keys":
                return {"ok": True, "keys": [{"ref": ref, "kind": held.kind, "public": _b64(held.public)}
                                             for ref, held in sorted(self._keys.items())]}
            ref = _field(request, "ref")
            held = self._keys.get(ref)
            if held is None:
                return {"ok": False, "error": UNKNOWN_KEY}
            if op == "sign":
                if held.kind not in SIGNING_KINDS:
                    return {"ok": False, "error": UNKNOWN_KEY}
                data = _unb64(request.get("data"), max_bytes=MAX_SIGN_DATA)
                if len(data) > MAX_SIGN_DATA:
                    raise _Malformed("data too large")
                # Audited before the signature leaves: no entry, no signature.
                self._audit("agent.sign", ref, details={"bytes": len(data), "peer_pid": peer_pid})
                return {"ok": True, "signature": _b64(held.key.sign(data))}
            if held.kind in SIGNING_KINDS:
                return {"ok": False, "error": UNKNOWN_KEY}
            file_key = held.key.unwrap(_stanzas(request.get("stanzas")))
            if file_key is None:
                return {"ok": True, "file_key": None}
            self._audit("agent.unwrap", ref, details={"peer_pid": peer_pid})
            return {"ok": True, "file_key": _b64(file_key)}


#: what the agent holds: Ed25519 and ECDSA P-256 keys sign, X25519 and hybrid keys unwrap
SIGNING_KINDS: tuple[KeyKind, ...] = ("signing", "ecdsa-p256")
SERVED_KINDS: tuple[KeyKind, ...] = ("signing", "ecdsa-p256", "encryption", "encryption-pq")


#: owners whose keys the agent never holds: the province's root and PDF root (the
#: authority's ``ROOT_OWNER`` / ``PDF_ROOT_OWNER``, kept equal by tests/test_agent.py).
#: Certificates, CRLs, policies and directories keep asking the passphrase: an unlocked
#: agent must not let any process of the user issue certificates.
ROOT_OWNERS = ("root", "pdf-root")


def _served_kind(ref: str) -> KeyKind | None:
    """The kind of ``ref`` if the agent serves it (a kind added later, and the roots' keys,
    stay in the store)."""
    try:
        kind = _kind_of_ref(ref)
    except SandiError:
        return None
    if ref.split(".", 1)[0] in ROOT_OWNERS:
        return None
    return kind if kind in SERVED_KINDS else None


def _read_key(store: KeyStore, ref: str) -> _HeldKey:
    from sandi.keystore.base import identity_public_bytes

    kind = _kind_of_ref(ref)
    if kind == "signing":
        key = store.get_signing_key(ref)
        return _HeldKey("signing", key.public_key_bytes(), key)
    if kind == "ecdsa-p256":
        p256 = store.get_p256_key(ref)
        return _HeldKey(kind, p256.public_key_bytes(), p256)
    if kind == "encryption-pq":
        hybrid = store.get_hybrid_key(ref)
        return _HeldKey(kind, hybrid.recipient.public_bytes, hybrid)
    identity = store.get_encryption_key(ref)
    return _HeldKey(kind, identity_public_bytes(identity), identity)


def _kind_of_ref(ref: str) -> KeyKind:
    from sandi.keystore.base import KINDS

    parts = check_ref(ref).split(".")
    purpose = parts[1] if len(parts) == 3 else ""
    for kind in KINDS:
        if kind == purpose:
            return kind
    raise NotFoundError(_("{ref} is not a key reference sandi made").format(ref=ref))


def _stanzas(value: object) -> list[Stanza]:
    from sandi.formats.age import Stanza

    if not isinstance(value, list) or not 0 < len(value) <= MAX_STANZAS:
        raise _Malformed("bad stanzas")
    out: list[Stanza] = []
    for item in value:
        if not isinstance(item, dict):
            raise _Malformed("bad stanza")
        kind, args = item.get("type"), item.get("args")
        if not isinstance(kind, str) or len(kind) > 64 or not isinstance(args, list) or len(args) > 4 \
                or not all(isinstance(a, str) and len(a) <= 4096 for a in args):
            raise _Malformed("bad stanza")
        out.append(Stanza(kind, tuple(args), _unb64(item.get("body"), max_bytes=4096)))
    return out


def _answers(path: Path) -> bool:
    """Something listens on the socket ``path`` (a live agent), as opposed to a stale file."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(2.0)
    try:
        probe.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        probe.close()


# -- the client ------------------------------------------------------------------------------


class AgentUnavailable(Exception):
    """No agent answers (none started, killed, locked, busy): do without it."""


class AgentClient:
    """Talks to the agent of one key folder. Every call is one connection."""

    def __init__(self, paths: AgentPaths) -> None:
        self.paths = paths

    def __repr__(self) -> str:
        return f"AgentClient({str(self.paths.socket)!r})"

    @classmethod
    def find(cls, keys_dir: Path, runtime_dir: Path | None = None) -> AgentClient | None:
        """The client of the agent of ``keys_dir`` if its socket exists, else None (cheap:
        no connection yet). None too where the OS runs no agent."""
        if agent_support_problem() is not None:
            return None
        paths = AgentPaths.of(keys_dir, runtime_dir, create=False)
        if paths is None or not (paths.socket.exists() or paths.socket.is_symlink()):
            return None
        return cls(paths)

    def _token(self) -> str:
        try:
            portable.check_own_socket(self.paths.socket)
            from sandi.fsutil import check_private_file

            check_private_file(self.paths.token)
            if os.lstat(self.paths.token).st_uid != portable.own_uid():
                raise PermissionError(self.paths.token)
            with open(self.paths.token, "rb") as f:
                text = f.read(200).decode("ascii").strip()
        except FileNotFoundError:
            raise AgentUnavailable from None
        except PermissionError:
            raise CredentialError(
                _("the key agent's socket or token in {path} is not this user's own").format(
                    path=self.paths.folder),
                hint=_("someone else may have planted it: remove the folder and start the agent again"),
            ) from None
        except (OSError, UnicodeDecodeError):
            raise AgentUnavailable from None
        return text

    def call(self, op: str, **fields: Any) -> dict[str, Any]:
        """One request; raises AgentUnavailable when no agent answers or it is locked,
        CredentialError when it refuses this client."""
        request = {"v": PROTOCOL, "op": op, "token": self._token(), **fields}
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(ANSWER_SECONDS)
        try:
            sock.connect(str(self.paths.socket))
            send_frame(sock, request)
            answer = recv_frame(sock)
        except (OSError, _Malformed):
            raise AgentUnavailable from None
        finally:
            sock.close()
        if answer.get("ok") is True:
            return answer
        error = answer.get("error")
        if error == REFUSED:
            raise CredentialError(
                _("the key agent refused this client"),
                hint=_("the agent's token file was replaced: 'sandi agent stop', then start it again"))
        if error == AUDIT_FAILED:
            raise AuditError(_("the key agent could not write the audit journal; it refused to use the key"),
                             hint=_("check the journal of this home ('sandi audit verify')"))
        raise AgentUnavailable(error)

    def status(self) -> dict[str, Any]:
        status = self.call("status").get("status")
        if not isinstance(status, dict):
            raise AgentUnavailable("status")
        return status

    def lock(self) -> None:
        self.call("lock")

    def stop(self, *, wait_seconds: float = 10.0) -> None:
        """Ask the agent to stop; one that refuses this client (its token file was replaced)
        but is this user's own process, as the socket's peer credentials say, gets SIGTERM."""
        try:
            self.call("stop")
        except CredentialError:
            pid = self._own_agent_pid()
            if pid is None:
                raise
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + wait_seconds
        while self.paths.socket.exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    def _own_agent_pid(self) -> int | None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(5.0)
        try:
            sock.connect(str(self.paths.socket))
            peer = portable.peer_credentials(sock)
        except OSError:
            return None
        finally:
            sock.close()
        if peer is None or peer[1] != portable.own_uid() or peer[0] <= 0:
            return None
        return peer[0]

    def keys(self) -> dict[str, tuple[KeyKind, bytes]]:
        listed = self.call("keys").get("keys")
        out: dict[str, tuple[KeyKind, bytes]] = {}
        if not isinstance(listed, list):
            raise AgentUnavailable("keys")
        for item in listed:
            try:
                ref = check_ref(item["ref"])
                kind = _kind_of_ref(ref)
                public = base64.b64decode(item["public"], validate=True)
            except (KeyError, TypeError, ValueError, SandiError):
                raise AgentUnavailable("keys") from None
            if kind != item.get("kind") or not fingerprint(public).startswith(ref.rsplit(".", 1)[1]):
                raise AgentUnavailable("keys")
            out[ref] = (kind, public)
        return out

    def sign(self, ref: str, data: bytes) -> bytes:
        answer = self.call("sign", ref=ref, data=_b64(data))
        try:
            return base64.b64decode(answer["signature"], validate=True)
        except (KeyError, TypeError, ValueError):
            raise AgentUnavailable("sign") from None

    def unwrap(self, ref: str, stanzas: Sequence[Stanza]) -> bytes | None:
        answer = self.call("unwrap", ref=ref, stanzas=[
            {"type": s.type, "args": list(s.args), "body": _b64(s.body)} for s in stanzas])
        value = answer.get("file_key")
        if value is None:
            return None
        try:
            return base64.b64decode(value, validate=True)
        except (TypeError, ValueError):
            raise AgentUnavailable("unwrap") from None


# -- the key store in front of the agent ------------------------------------------------------


class AgentKeyStore(KeyStore):
    """A key store whose signing and unwrapping go to the agent when it holds the key.

    Everything else (listing, writing, exports, keys the agent lacks) and everything
    once the agent is gone goes to the store itself, which unlocks with the passphrase as
    it would without an agent."""

    def __init__(self, inner: KeyStore, client: AgentClient) -> None:
        self.inner = inner
        self.kind = inner.kind
        self.hardware = inner.hardware
        self._client: AgentClient | None = client
        self._held: dict[str, tuple[KeyKind, bytes]] | None = None

    def __repr__(self) -> str:
        return f"AgentKeyStore({self.inner!r})"

    def held(self, ref: str) -> tuple[KeyKind, bytes] | None:
        """The kind and public key of ``ref`` if the agent holds it (asked once)."""
        if self._held is None:
            if self._client is None:
                return None
            try:
                self._held = self._client.keys()
            except AgentUnavailable:
                self.forget_agent()
                return None
        return self._held.get(ref)

    def forget_agent(self) -> None:
        """Do without the agent for the rest of this store's life."""
        self._client = None
        self._held = {}

    @property
    def client(self) -> AgentClient | None:
        return self._client

    # -- raw operations: the store's own -------------------------------------------------

    def _write(self, record: StoredKey) -> None:
        self.inner._write(record)

    def _read(self, ref: str) -> StoredKey:
        return self.inner._read(ref)

    def refs(self) -> list[str]:
        return self.inner.refs()

    def delete(self, ref: str) -> None:
        self.inner.delete(ref)

    def location(self, ref: str) -> str:
        return self.inner.location(ref)

    def close(self) -> None:
        self.inner.close()

    # -- where the agent helps -----------------------------------------------------------

    def signer(self, ref: str) -> Signer:
        held = self.held(check_ref(ref))
        if held is None or held[0] != "signing":
            return self.inner.signer(ref)
        return AgentSigner(self, ref, held[1])

    def p256_signer(self, ref: str) -> P256Signer:
        held = self.held(check_ref(ref))
        if held is None or held[0] != "ecdsa-p256":
            return self.inner.p256_signer(ref)
        return AgentP256Signer(self, ref, held[1])

    def opening_key(self, ref: str) -> tuple[str, Identity]:
        held = self.held(check_ref(ref))
        if held is None or held[0] in SIGNING_KINDS:
            return self.inner.opening_key(ref)
        return fingerprint(held[1]), AgentIdentity(self, ref)


class AgentSigner(Signer):
    """Signs with a key the agent holds; without the agent, with the store's own key."""

    __slots__ = ("_public", "_ref", "_store")

    def __init__(self, store: AgentKeyStore, ref: str, public: bytes) -> None:
        self._store = store
        self._ref = ref
        self._public = public

    def __repr__(self) -> str:
        return f"AgentSigner({self._ref!r})"

    def public_key_bytes(self) -> bytes:
        return self._public

    def sign(self, data: bytes) -> bytes:
        client = self._store.client
        if client is not None and len(data) <= MAX_SIGN_DATA:
            try:
                signature = client.sign(self._ref, bytes(data))
            except AgentUnavailable:
                self._store.forget_agent()
            else:
                # An agent that answers with anything but a valid signature is not used.
                try:
                    verify_ed25519(self._public, signature, bytes(data))
                except SandiError:
                    self._store.forget_agent()
                else:
                    return signature
        return self._store.inner.signer(self._ref).sign(data)

    def sign_x509(self, builder: Any) -> Any:
        return builder.sign(_AgentPrivateKey(self), None)


class AgentP256Signer(P256Signer):
    """Signs (ECDSA P-256, SHA-256) with a key the agent holds; without the agent, with the
    store's own key. Certificates and CRLs (the PDF root's work) are signed by the store."""

    __slots__ = ("_public", "_ref", "_store")

    def __init__(self, store: AgentKeyStore, ref: str, public: bytes) -> None:
        self._store = store
        self._ref = ref
        self._public = public

    def __repr__(self) -> str:
        return f"AgentP256Signer({self._ref!r})"

    def public_key_bytes(self) -> bytes:
        return self._public

    def public_key(self) -> Any:
        from cryptography.hazmat.primitives.asymmetric import ec

        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), self._public)

    def sign(self, data: bytes) -> bytes:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        client = self._store.client
        if client is not None and len(data) <= MAX_SIGN_DATA:
            try:
                signature = client.sign(self._ref, bytes(data))
                self.public_key().verify(signature, bytes(data), ec.ECDSA(hashes.SHA256()))
            except AgentUnavailable:
                self._store.forget_agent()
            except (InvalidSignature, ValueError):
                self._store.forget_agent()  # not a valid signature: do not use this agent
            else:
                return signature
        return self._store.inner.p256_signer(self._ref).sign(data)

    def sign_x509(self, builder: Any) -> Any:
        return self._store.inner.p256_signer(self._ref).sign_x509(builder)


def _agent_private_key_class() -> type:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

    class AgentPrivateKey(Ed25519PrivateKey):
        """The ``cryptography`` face of an agent key, so certificate and CRL builders sign
        with it; every way to read the private key raises."""

        def __init__(self, signer: AgentSigner) -> None:
            self._signer = signer

        def public_key(self) -> Ed25519PublicKey:
            return self._signer.public_key()

        def sign(self, data: bytes | bytearray | memoryview) -> bytes:
            return self._signer.sign(bytes(data))

        def private_bytes(self, *args: object, **kwargs: object) -> Any:
            raise TypeError("an agent key never leaves the agent")

        def private_bytes_raw(self) -> Any:
            raise TypeError("an agent key never leaves the agent")

        def __copy__(self) -> Any:
            raise TypeError("an agent key is not copied")

        def __deepcopy__(self, memo: object) -> Any:
            raise TypeError("an agent key is not copied")

    return AgentPrivateKey


def _AgentPrivateKey(signer: AgentSigner) -> Any:  # noqa: N802 - a class made on first use
    global _PRIVATE_KEY_CLASS
    if _PRIVATE_KEY_CLASS is None:
        _PRIVATE_KEY_CLASS = _agent_private_key_class()
    return _PRIVATE_KEY_CLASS(signer)


_PRIVATE_KEY_CLASS: type | None = None


class AgentIdentity:
    """An age identity whose unwrap happens in the agent (X25519 or hybrid, as the key
    is); without the agent, the store's own identity unwraps."""

    __slots__ = ("_ref", "_store")

    def __init__(self, store: AgentKeyStore, ref: str) -> None:
        self._store = store
        self._ref = ref

    def __repr__(self) -> str:
        return f"AgentIdentity({self._ref!r})"

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        from sandi.formats.age import MLKEM768X25519_TYPE
        from sandi.formats.age.keys import X25519_TYPE

        wanted = MLKEM768X25519_TYPE if _kind_of_ref(self._ref) == "encryption-pq" else X25519_TYPE
        mine = [s for s in stanzas if s.type == wanted]
        client = self._store.client
        if client is not None:
            try:
                for start in range(0, len(mine), MAX_STANZAS // 2):
                    file_key = client.unwrap(self._ref, mine[start:start + MAX_STANZAS // 2])
                    if file_key is not None:
                        return file_key
                return None
            except AgentUnavailable:
                self._store.forget_agent()
        return self._store.inner.opening_key(self._ref)[1].unwrap(stanzas)


def with_agent(store: KeyStore, keys_dir: Path) -> KeyStore:
    """``store`` in front of the agent of ``keys_dir`` when one may run, else ``store``."""
    try:
        client = AgentClient.find(keys_dir)
    except SandiError:
        # A runtime folder that is not private: refuse to talk to what lies in it, and
        # do without (the error shows on 'sandi agent status').
        return store
    return store if client is None else AgentKeyStore(store, client)
