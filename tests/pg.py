"""A throwaway PostgreSQL server for the tests and the benchmark, and the fixtures on it.

Invariants:

* the server listens only on 127.0.0.1 (a free port) and on a unix socket inside its own
  temporary folder; it never touches a system cluster, ``/var/lib/postgresql`` or
  ``/etc/postgresql``;
* PostgreSQL refuses to run as root, so when the tests run as root (CI) every server
  binary runs as the ``postgres`` system user (``runuser``) in a folder that user owns;
* host connections need a password (scram-sha-256), so a wrong password is refused the
  way a production server refuses it;
* whoever starts a server stops it and deletes its folder (fixture finaliser, ``atexit``
  as a safety net);
* ``SANDI_TEST_POSTGRES_URL`` (a role allowed to ``CREATE DATABASE``) replaces the
  throwaway server; without server binaries and without that URL the postgres-marked
  tests are skipped with the reason, unless ``SANDI_REQUIRE_POSTGRES=1`` (CI), which
  turns the skip into a failure.

Each test gets its own database (``CREATE DATABASE ... OWNER sandi``), dropped afterwards;
under pytest-xdist each worker starts its own server, so workers share nothing.

By hand: ``python -m tests.pg`` starts a server, prints its URL and stops it on Enter.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from sandi.registry import Registry

ENV_URL = "SANDI_TEST_POSTGRES_URL"
ENV_REQUIRE = "SANDI_REQUIRE_POSTGRES"
ENV_BINDIR = "SANDI_PG_BINDIR"
ROLE = "sandi"

# Settings for a disposable server: durability off (the OS does not crash under a
# test; a killed postmaster still finds its data in the page cache) and small.
FAST_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "32MB",
    "max_connections": "100",
    "log_min_messages": "warning",
    "log_min_error_statement": "panic",
}
# For a server a test kills: every commit reaches the WAL (in the OS page cache, which a
# killed postmaster does not lose) before it is acknowledged.
CRASH_SETTINGS = {**FAST_SETTINGS, "synchronous_commit": "on"}
# The benchmark keeps PostgreSQL's durable defaults so that its figures mean something.
DURABLE_SETTINGS = {
    "shared_buffers": "64MB",
    "max_connections": "100",
    "log_min_messages": "warning",
    "log_min_error_statement": "panic",
}


class PgUnavailable(Exception):
    """No way to run a PostgreSQL server here (the reason is the message)."""


def _version_key(path: str) -> tuple[int, ...]:
    m = re.search(r"/postgresql/(\d+)(?:\.(\d+))?/", path)
    return tuple(int(g) for g in m.groups() if g) if m else (0,)


def find_bindir() -> Path:
    """The folder holding initdb and pg_ctl: $SANDI_PG_BINDIR, Debian's newest, or PATH."""
    candidates: list[Path] = []
    if os.environ.get(ENV_BINDIR):
        candidates.append(Path(os.environ[ENV_BINDIR]))
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key,
                                           reverse=True)]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for c in candidates:
        if (c / "initdb").is_file() and (c / "pg_ctl").is_file():
            return c
    raise PgUnavailable(
        "no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin or on PATH; "
        "install Debian's 'postgresql' package (scripts/install-tools.sh) or set " + ENV_URL
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """One private PostgreSQL cluster in a temporary folder."""

    def __init__(self, *, settings: dict[str, str] | None = None, bindir: Path | None = None) -> None:
        self.bindir = bindir or find_bindir()
        self.settings = dict(FAST_SETTINGS if settings is None else settings)
        self.run_as: str | None = None
        self.runuser = "runuser"
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise PgUnavailable("running as root and there is no 'postgres' user to run "
                                    "the server as") from None
            runuser = shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin")
            if runuser is None:
                raise PgUnavailable("running as root and 'runuser' is missing")
            self.runuser = runuser
            self.run_as = "postgres"
        self.base = Path(tempfile.mkdtemp(prefix="sandi-pg-"))
        self.data = self.base / "data"
        self.sockdir = self.base / "sock"
        self.log = self.base / "server.log"
        self.port = 0
        self.superuser_password = secrets.token_urlsafe(18)
        self.password = secrets.token_urlsafe(18)
        self.running = False
        self._cleaned = False

    # -- running the server binaries ----------------------------------------------------

    def _cmd(self, *args: str | os.PathLike[str], check: bool = True,
             timeout: float = 60) -> subprocess.CompletedProcess[str]:
        argv = [os.fspath(a) for a in args]
        if self.run_as:
            argv = [self.runuser, "-u", self.run_as, "--", *argv]
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "LANG": "C", "PGTZ": "UTC"}
        out = subprocess.run(argv, cwd=self.base, env=env, capture_output=True, text=True,
                             timeout=timeout, check=False)
        if check and out.returncode != 0:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{argv[-3:]} failed ({out.returncode}): {out.stderr.strip()}\n{tail}")
        return out

    def _chown(self, path: Path) -> None:
        if self.run_as:
            pw = pwd.getpwnam(self.run_as)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> PgServer:
        """initdb, configure loopback + socket-in-folder, start, create role ``sandi``."""
        atexit.register(self.cleanup)
        os.chmod(self.base, 0o700)
        self._chown(self.base)
        self.sockdir.mkdir(mode=0o700)
        self._chown(self.sockdir)
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.superuser_password + "\n")
        os.chmod(pwfile, 0o600)
        self._chown(pwfile)
        self._cmd(self.bindir / "initdb", "-D", self.data, "-U", "postgres", "-E", "UTF8",
                  "--no-locale", "--auth-local=trust", "--auth-host=scram-sha-256",
                  f"--pwfile={pwfile}", "--no-sync", "--no-instructions", timeout=120)
        pwfile.unlink()
        with (self.data / "postgresql.conf").open("a") as f:
            f.write("\ninclude 'sandi_test.conf'\n")
        # A free port can be taken between choosing and binding (another xdist worker):
        # try a few.
        for attempt in range(5):
            self.port = free_port()
            self._write_settings()
            try:
                self._start()
                break
            except RuntimeError:
                if attempt == 4:
                    raise
        self._bootstrap()
        return self

    def _write_settings(self) -> None:
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.sockdir}'",
            "password_encryption": "'scram-sha-256'",
            **self.settings,
        }
        path = self.data / "sandi_test.conf"
        path.write_text("".join(f"{k} = {v}\n" for k, v in conf.items()))
        self._chown(path)

    def _start(self) -> None:
        if self.log.exists():
            self.log.unlink()
        self._cmd(self.bindir / "pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60",
                  "start", timeout=90)
        self.running = True

    def restart(self) -> None:
        """Start again after :meth:`stop` or :meth:`kill` (same data, same port)."""
        self._start()

    def stop(self, mode: str = "fast") -> None:
        if self.running:
            self._cmd(self.bindir / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop",
                      check=False, timeout=90)
            self.running = False

    def kill(self) -> None:
        """Stop the way a power cut would: no checkpoint, connections cut (crash recovery next)."""
        self.stop("immediate")

    def cleanup(self) -> None:
        if self._cleaned:
            return
        self._cleaned = True
        with contextlib.suppress(Exception):
            self.stop("immediate" if self.running else "fast")
        shutil.rmtree(self.base, ignore_errors=True)

    # -- URLs and databases -------------------------------------------------------------

    def url(self, database: str = ROLE, *, user: str = ROLE, password: str | None = None,
            port: int | None = None) -> str:
        pw = self.password if password is None else password
        return f"postgresql+psycopg://{user}:{pw}@127.0.0.1:{port or self.port}/{database}"

    def admin_url(self, database: str = "postgres") -> str:
        return self.url(database, user="postgres", password=self.superuser_password)

    def _bootstrap(self) -> None:
        with _admin_connect(self.admin_url()) as conn:
            conn.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{self.password}'")
            conn.execute(f"CREATE DATABASE {ROLE} OWNER {ROLE}")


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@contextlib.contextmanager
def _admin_connect(url: str) -> Iterator[Any]:
    import psycopg

    with psycopg.connect(_libpq(url), autocommit=True, connect_timeout=10) as conn:
        yield conn


def create_database(admin_url: str, owner: str | None = None) -> str:
    """A new empty database (name returned); ``admin_url`` may CREATE DATABASE."""
    name = "t_" + uuid.uuid4().hex[:16]
    with _admin_connect(admin_url) as conn:
        clause = f" OWNER {owner}" if owner else ""
        conn.execute(f"CREATE DATABASE {name}{clause}")
    return name


def drop_database(admin_url: str, name: str) -> None:
    with _admin_connect(admin_url) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def with_database(url: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=name).render_as_string(hide_password=False)


# -- the pytest side -----------------------------------------------------------------------


class PgSource:
    """Where the tests' PostgreSQL databases come from: a throwaway server or an env URL."""

    def __init__(self, server: PgServer | None, admin_url: str, owner: str | None) -> None:
        self.server = server
        self.admin_url = admin_url
        self.owner = owner

    @contextlib.contextmanager
    def database(self) -> Iterator[str]:
        """A fresh database for one test, as an URL for the ``sandi`` role; dropped afterwards."""
        name = create_database(self.admin_url, self.owner)
        try:
            if self.server is not None:
                yield self.server.url(name)
            else:
                yield with_database(self.admin_url, name)
        finally:
            with contextlib.suppress(Exception):
                drop_database(self.admin_url, name)


def _unavailable(reason: str) -> None:
    if os.environ.get(ENV_REQUIRE) == "1":
        pytest.fail(f"PostgreSQL required ({ENV_REQUIRE}=1) but unavailable: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_source() -> Iterator[PgSource]:
    """The session's PostgreSQL: ``$SANDI_TEST_POSTGRES_URL`` or a server started here."""
    env_url = os.environ.get(ENV_URL)
    if env_url:
        yield PgSource(None, env_url, None)
        return
    try:
        server = PgServer()
    except PgUnavailable as exc:
        _unavailable(str(exc))
        return
    try:
        server.start()
    except Exception as exc:  # the reason (initdb/pg_ctl output) goes into the skip/failure
        server.cleanup()
        _unavailable(f"could not start a throwaway PostgreSQL server: {exc}")
        return
    try:
        yield PgSource(server, server.admin_url(), ROLE)
    finally:
        server.cleanup()


@pytest.fixture
def pg_url(pg_source: PgSource) -> Iterator[str]:
    """A fresh PostgreSQL database for this test (``postgresql+psycopg://...``)."""
    with pg_source.database() as url:
        yield url


@pytest.fixture(params=[pytest.param("sqlite", id="sqlite"),
                        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)])
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty registry database on each backend: SQLite in tmp_path, then PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    source: PgSource = request.getfixturevalue("pg_source")
    with source.database() as url:
        yield url


class DriverError(Exception):
    """What a database driver raises, with the SQLSTATE psycopg would attach: for
    injecting failures (``sqlalchemy.exc.OperationalError(stmt, None, DriverError(...))``)."""

    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


@pytest.fixture
def registry(registry_url: str) -> Iterator[Registry]:
    """A registry with its schema migrated, on each backend (see ``registry_url``)."""
    from sandi.registry import Registry

    reg = Registry(registry_url)
    reg.upgrade()
    yield reg
    reg.dispose()


@pytest.fixture
def pg_server(_pg_crash_server: PgServer) -> PgServer:
    """A server of this test module's own, running, that the test may stop, kill or
    restart (it is not the one other tests share)."""
    if not _pg_crash_server.running:
        _pg_crash_server.restart()
    return _pg_crash_server


@pytest.fixture(scope="module")
def _pg_crash_server() -> Iterator[PgServer]:
    if os.environ.get(ENV_URL):
        pytest.skip("this test needs its own server to stop; it cannot use " + ENV_URL)
    try:
        server = PgServer(settings=CRASH_SETTINGS)
    except PgUnavailable as exc:
        _unavailable(str(exc))
        return
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


def _main() -> None:  # pragma: no cover - a tool for people
    server = PgServer(settings=DURABLE_SETTINGS).start()
    try:
        print(server.url(), flush=True)
        print(f"(superuser: {server.admin_url()}; folder {server.base})", flush=True)
        with contextlib.suppress(KeyboardInterrupt, EOFError):
            input("press Enter to stop and delete the server\n")
    finally:
        server.cleanup()
        time.sleep(0)


if __name__ == "__main__":  # pragma: no cover
    _main()
