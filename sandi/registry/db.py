"""Opening the registry, its transactions, and its schema version."""

from __future__ import annotations

import contextlib
import enum
import os
import random
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.exc import (
    DBAPIError,
    IntegrityError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)
from sqlalchemy.orm import Session, sessionmaker

from sandi.errors import CommitOutcomeUnknown, RegistryConflict, RegistryError
from sandi.i18n import N_, _

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

#: seconds to wait for a PostgreSQL server to answer a connection attempt
CONNECT_TIMEOUT = 10
#: milliseconds a statement may wait for a row lock (PostgreSQL) or the write lock (SQLite)
LOCK_TIMEOUT_MS = 60_000
# Key for pg_advisory_xact_lock: one 'sandi db upgrade' at a time per database.
_MIGRATION_LOCK_KEY = 0x53414E4449  # "SANDI"
# SQLSTATEs after which the whole transaction may simply be run again.
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected

T = TypeVar("T")

# Execution option marking the connections of Registry.reading() on SQLite.
_READ_ONLY = "sandi_read_only"


class ConcurrentUpdate(RegistryConflict):
    """The database aborted the transaction because of a concurrent one; it may be retried."""


class SchemaStatus(enum.Enum):
    EMPTY = "empty"  # no schema at all: run the migrations
    CURRENT = "current"
    OLDER = "older"  # the code is newer: 'sandi db upgrade'
    NEWER = "newer"  # the database was upgraded by a newer sandi


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


def _password(url: str) -> str | None:
    from sqlalchemy.engine import make_url

    try:
        pw = make_url(url).password
    except Exception:
        return None
    return None if pw is None else str(pw)


class Registry:
    """A handle on one registry database. Cheap to create; connects lazily."""

    def __init__(self, url: str, *, engine: Engine | None = None) -> None:
        self.url = url
        self.engine = engine or _make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        from sandi.registry.changes import track_changes

        track_changes(self._sessions)  # agencies changed -> their directory leaves are due
        # Read-only transactions: a deferred BEGIN on SQLite (see _configure_sqlite), a
        # READ ONLY REPEATABLE READ snapshot on PostgreSQL.
        read_options: dict[str, Any] = (
            {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
            if self.engine.dialect.name == "postgresql" else {_READ_ONLY: True}
        )
        self._read_sessions = sessionmaker(self.engine.execution_options(**read_options),
                                           expire_on_commit=False)

    def __repr__(self) -> str:
        return f"Registry({_redact(self.url)!r})"

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def redacted_url(self) -> str:
        """The URL with its password masked: the only form of it sandi ever shows."""
        return _redact(self.url)

    # -- schema ---------------------------------------------------------------------------

    def schema_revision(self) -> str | None:
        try:
            with self.engine.connect() as conn:
                return _revision_on(conn)
        except SQLAlchemyError as exc:
            raise database_error(self.url, exc) from None

    def schema_status(self) -> SchemaStatus:
        current = self.schema_revision()
        if current is None:
            return SchemaStatus.EMPTY
        revisions = migration_revisions()
        if current == revisions[-1]:
            return SchemaStatus.CURRENT
        return SchemaStatus.OLDER if current in revisions else SchemaStatus.NEWER

    def head_revision(self) -> str:
        return migration_revisions()[-1]

    def upgrade(self) -> None:
        """Run every migration not yet applied (creates the schema on an empty database).

        All the migrations run in one transaction (DDL is transactional on both
        PostgreSQL and SQLite): a failure leaves the schema as it was. Concurrent
        upgrades of one database queue (advisory lock on PostgreSQL, the write lock on
        SQLite) and the later one finds nothing left to do. A schema newer than the
        code is refused before anything runs.
        """
        if self.schema_status() is SchemaStatus.NEWER:
            raise _newer_error()
        from alembic import command

        cfg = _alembic_config()
        try:
            with self.engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
                # Re-read under the lock: another operator may have upgraded meanwhile.
                if _revision_on(conn) not in (None, *migration_revisions()):
                    raise _newer_error()
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except (OperationalError, DBAPIError) as exc:
            raise database_error(self.url, exc, N_("migrating the registry failed")) from None
        except SQLAlchemyError as exc:
            raise RegistryError(
                _("migrating the registry failed: {name}").format(name=exc.__class__.__name__),
                hint=_("nothing was changed: the migrations run in one transaction"),
            ) from None

    def require_current(self) -> None:
        status = self.schema_status()
        if status is SchemaStatus.CURRENT:
            return
        if status is SchemaStatus.EMPTY:
            raise RegistryError(
                _("no registry schema in {redact}").format(redact=_redact(self.url)),
                hint=_("run 'sandi init' for a new authority, or 'sandi db upgrade'"),
            )
        if status is SchemaStatus.OLDER:
            raise RegistryError(
                _("the registry schema is older than this sandi"),
                hint=_("run 'sandi db upgrade' (back the database up first)"),
            )
        raise _newer_error()

    # -- transactions --------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One transaction: committed if the block returns, rolled back if it raises.

        On SQLite the transaction holds the database's write lock from its first
        statement, so transactions run one after another. On PostgreSQL they run side
        by side (READ COMMITTED): code that reads a row to decide what to write locks
        it first (``select(...).with_for_update()``), and constraints catch the rest.
        A serialisation failure or deadlock raises :class:`ConcurrentUpdate`, which
        :meth:`run` retries. A connection lost during the COMMIT itself raises
        :class:`~sandi.errors.CommitOutcomeUnknown`: the server may have committed.
        """
        session = self._sessions()
        committing = False
        try:
            with session.begin():
                yield session
                session.flush()  # the change's own errors surface here, before the COMMIT
                committing = True
        except IntegrityError as exc:
            raise RegistryConflict(
                _("the registry refused the change: it conflicts with what is there ({scrub})").format(
                    scrub=_scrub(_first_line(exc), self.url),
                ),
                hint=_("another operator may have made the same change; nothing was changed"),
            ) from None
        except (OperationalError, DBAPIError) as exc:
            if committing and _lost_connection(exc):
                raise CommitOutcomeUnknown(
                    _("the connection to the registry database {redact} was lost while it "
                      "committed the change ({scrub}): the change may or may not have been saved").format(
                        redact=_redact(self.url),
                        scrub=_scrub(_first_line(exc), self.url),
                    ),
                    hint=_("once the database is reachable, look before repeating the command ('sandi "
                           "audit log' shows every saved change)"),
                ) from None
            raise database_error(self.url, exc) from None
        finally:
            session.close()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only transaction over one consistent view of the registry.

        For listings and audit reads, which may be long (``audit verify`` of a large
        chain): on SQLite it takes no write lock (a WAL reader keeps its snapshot and
        neither waits for nor holds up writers); on PostgreSQL it is READ ONLY and
        REPEATABLE READ, so it sees one state from start to end. It is always rolled
        back: nothing done in it is ever committed.
        """
        session = self._read_sessions()
        try:
            session.begin()
            yield session
        except (OperationalError, DBAPIError) as exc:
            raise database_error(self.url, exc) from None
        finally:
            session.close()  # rolls the transaction back and returns the connection

    def run(self, work: Callable[[Session], T], *, attempts: int = 5) -> T:
        """``work(session)`` in one transaction, run again from the start if the
        database aborted it for a concurrent one (serialisation failure, deadlock).

        ``work`` must do nothing outside the session that it cannot repeat (it may be
        called up to ``attempts`` times; only the last call's changes are committed).
        """

        def once() -> T:
            with self.transaction() as session:
                return work(session)

        return self.retrying(once, attempts=attempts)

    def retrying(self, operation: Callable[[], T], *, attempts: int = 5) -> T:
        """``operation()``, called again if the database aborted its transaction for a
        concurrent one. For operations that open their own transaction and undo, when
        they fail, whatever they did outside it (keys written to a key store)."""
        for attempt in range(1, attempts + 1):
            try:
                return operation()
            except ConcurrentUpdate:
                if attempt == attempts:
                    raise
                # Back off with jitter so the same transactions do not collide again.
                time.sleep(random.uniform(0, 0.02 * 2**attempt))  # noqa: S311 - not a secret
        raise AssertionError("unreachable")  # pragma: no cover

    def dispose(self) -> None:
        self.engine.dispose()


def _make_engine(url: str) -> Engine:
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": LOCK_TIMEOUT_MS / 1000}
        _create_private_sqlite_file(url)
    elif url.startswith("postgresql"):
        # Fail in seconds, not minutes, when the server is down; check pooled
        # connections before use (a server restart leaves dead ones behind); wait for
        # a row lock as long as SQLite waits for its write lock, then fail cleanly.
        kwargs["pool_pre_ping"] = True
        kwargs["connect_args"] = {
            "connect_timeout": CONNECT_TIMEOUT,
            "application_name": "sandi",
            "options": f"-c lock_timeout={LOCK_TIMEOUT_MS}",
        }
    try:
        engine = create_engine(url, **kwargs)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise RegistryError(
            _("cannot use database URL {redact}: {exc}").format(redact=_redact(url), exc=exc),
            hint=_("give an SQLAlchemy URL such as sqlite:///path or postgresql+psycopg://..."),
        ) from None
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return engine


def _create_private_sqlite_file(url: str) -> None:
    """Create a new SQLite file as 0600 (SQLite gives its -wal/-shm files the same mode)."""
    from sqlalchemy.engine import make_url

    try:
        database = make_url(url).database
    except Exception:
        return
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if path.parent.is_dir() and not path.exists():
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling defers BEGIN; take control so that every
    # transaction starts with BEGIN IMMEDIATE (writers queue on the lock, no
    # upgrade deadlocks) and foreign keys and WAL are on for every connection.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {LOCK_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys = ON")
        _enable_wal(cur)
        cur.execute("PRAGMA synchronous = FULL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Registry.reading() marks its connections: a deferred BEGIN, a snapshot without the lock.
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(_READ_ONLY) else "BEGIN IMMEDIATE")


def _enable_wal(cur: Any) -> None:
    """Put the database in WAL mode, waiting for the lock like any other statement.

    The mode is stored in the file, so this is a read once the file is set up. Only on
    a fresh file, when several first connections race to switch it, does SQLite answer
    "database is locked" at once instead of calling the busy handler; wait and retry
    within the usual lock timeout rather than fail an operator's command for it.
    """
    import sqlite3

    deadline = time.monotonic() + LOCK_TIMEOUT_MS / 1000
    delay = 0.005
    while True:
        try:
            cur.execute("PRAGMA journal_mode = WAL")
            cur.fetchall()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc).lower() or time.monotonic() >= deadline:
                raise
        time.sleep(random.uniform(delay / 2, delay))  # noqa: S311 - not a secret
        delay = min(delay * 2, 0.25)


def _first_line(exc: Exception) -> str:
    text_ = str(getattr(exc, "orig", exc)).strip()
    return text_.splitlines()[0] if text_ else exc.__class__.__name__


def _scrub(message: str, url: str) -> str:
    # Drivers do not echo passwords today; make sure no future one leaks it through us.
    pw = _password(url)
    return message.replace(pw, "***") if pw else message


def _sqlstate(exc: Exception) -> str | None:
    orig = getattr(exc, "orig", None)
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return str(state) if state else None


def _lost_connection(exc: Exception) -> bool:
    """Whether the database could not be reached, or the connection to it broke."""
    state = _sqlstate(exc) or ""
    lowered = str(getattr(exc, "orig", exc)).lower()
    return state.startswith(("57P", "08")) or any(s in lowered for s in (
        "connection refused", "could not connect", "connection failed", "failed to resolve host",
        "timeout expired", "server closed the connection", "terminating connection",
        "connection is closed", "consuming input failed", "no route to host",
    ))


def database_error(url: str, exc: Exception, what: str = N_("registry database error")) -> RegistryError:
    """The clear error for a failed database call: what happened, where, what to do."""
    where = _redact(url)
    detail = _scrub(_first_line(exc), url)
    lowered = str(getattr(exc, "orig", exc)).lower()
    state = _sqlstate(exc) or ""
    if state in _RETRYABLE_SQLSTATES:
        return ConcurrentUpdate(
            _("{what}: another operator changed the same records at the same time ({detail})").format(
                what=_(what), detail=detail),
            hint=_("nothing was changed; run the command again"),
        )
    if state.startswith("28") or "password authentication failed" in lowered:
        return RegistryError(
            _("{what}: the database refused the credentials for {where}").format(what=_(what), where=where),
            hint=_("check the user name and password in the database URL (or ~/.pgpass); nothing was "
                   "changed"),
        )
    if state == "3D000" or re.search(r'database ".*" does not exist', lowered):
        return RegistryError(
            _("{what}: the database in {where} does not exist ({detail})").format(
                what=_(what),
                where=where,
                detail=detail,
            ),
            hint=_("create it (see docs/operations.md), then run 'sandi db upgrade'"),
        )
    if state == "55P03" or "database is locked" in lowered:
        return RegistryError(
            _("{what}: the registry stayed locked by another operator for too long ({detail})").format(
                what=_(what),
                detail=detail,
            ),
            hint=_("nothing was changed; try again when the other operation has finished"),
        )
    if _lost_connection(exc):
        return RegistryError(
            _("{what}: cannot reach the registry database {where} ({detail})").format(
                what=_(what),
                where=where,
                detail=detail,
            ),
            hint=_("check that the database server is running and reachable from here; an interrupted "
                   "change is rolled back as a whole, so check its result before repeating it"),
        )
    if "unable to open database file" in lowered:
        return RegistryError(
            _("{what}: cannot open the registry database {where}").format(what=_(what), where=where),
            hint=_("check that the folder exists and is writable; nothing was changed"),
        )
    if isinstance(exc, ProgrammingError) or "no such table" in lowered or state == "42P01":
        return RegistryError(
            f"{what} ({where}): {detail}",
            hint=_("the schema may not match this sandi: see 'sandi db status'; nothing was changed"),
        )
    return RegistryError(
        f"{what} ({where}): {detail}",
        hint=_("check that the database is reachable and the credentials are right; nothing was changed"),
    )



def _newer_error() -> RegistryError:
    return RegistryError(
        _("the registry schema is newer than this sandi"),
        hint=_("upgrade sandi on this machine; nothing was changed"),
    )


def _revision_on(conn: Any) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    return None if row is None else str(row[0])


def migration_revisions() -> tuple[str, ...]:
    """The migrations' revisions, oldest first, read from their file names (``NNNN_what.py``
    declares ``revision = "NNNN"``) without importing alembic: every command that opens the
    registry checks its schema, and alembic with its script directory cost ~0.15 s per
    command. tests/test_registry_schema.py checks this agrees with alembic's own chain."""
    names = sorted(p.name for p in (MIGRATIONS_DIR / "versions").glob("[0-9]*_*.py"))
    revisions = tuple(name.split("_", 1)[0] for name in names)
    if not revisions:  # pragma: no cover - a broken installation
        raise RegistryError(_("this sandi has no registry migrations"),
                            hint=_("reinstall sandi"))
    return revisions


def _alembic_config() -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def alembic_revisions() -> tuple[str, ...]:
    """The migration chain as alembic walks it, oldest first (tests compare it with
    :func:`migration_revisions`)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config())
    return tuple(reversed([str(rev.revision) for rev in script.walk_revisions()]))
