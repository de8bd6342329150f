"""Opening the registry, its transactions, and its schema version."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from sandi.errors import RegistryConflict, RegistryError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


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


class Registry:
    """A handle on one registry database. Cheap to create; connects lazily."""

    def __init__(self, url: str, *, engine: Engine | None = None) -> None:
        self.url = url
        self.engine = engine or _make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def __repr__(self) -> str:
        return f"Registry({_redact(self.url)!r})"

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    # -- schema ---------------------------------------------------------------------------

    def schema_revision(self) -> str | None:
        try:
            with self.engine.connect() as conn:
                if not inspect(conn).has_table("alembic_version"):
                    return None
                row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
                return None if row is None else str(row[0])
        except SQLAlchemyError as exc:
            raise _connection_error(self.url, exc) from None

    def schema_status(self) -> SchemaStatus:
        current = self.schema_revision()
        if current is None:
            return SchemaStatus.EMPTY
        script = _script_directory()
        head = script.get_current_head()
        if current == head:
            return SchemaStatus.CURRENT
        known = {rev.revision for rev in script.walk_revisions()}
        return SchemaStatus.OLDER if current in known else SchemaStatus.NEWER

    def head_revision(self) -> str:
        head = _script_directory().get_current_head()
        assert head is not None
        return str(head)

    def upgrade(self) -> None:
        """Run every migration not yet applied (creates the schema on an empty database)."""
        if self.schema_status() is SchemaStatus.NEWER:
            raise RegistryError(
                "the registry schema is newer than this sandi",
                hint="upgrade sandi before using this registry",
            )
        from alembic import command

        cfg = _alembic_config()
        try:
            with self.engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except SQLAlchemyError as exc:
            raise RegistryError(f"migrating the registry failed: {exc.__class__.__name__}") from None

    def require_current(self) -> None:
        status = self.schema_status()
        if status is SchemaStatus.CURRENT:
            return
        if status is SchemaStatus.EMPTY:
            raise RegistryError(
                f"no registry schema in {_redact(self.url)}",
                hint="run 'sandi init' for a new authority, or 'sandi db upgrade'",
            )
        if status is SchemaStatus.OLDER:
            raise RegistryError(
                "the registry schema is older than this sandi",
                hint="run 'sandi db upgrade' (back the database up first)",
            )
        raise RegistryError(
            "the registry schema is newer than this sandi", hint="upgrade sandi on this machine"
        )

    # -- transactions --------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One transaction: committed if the block returns, rolled back if it raises."""
        session = self._sessions()
        try:
            with session.begin():
                yield session
        except IntegrityError as exc:
            raise RegistryConflict(
                "the registry refused the change: it conflicts with what is there "
                f"({_first_line(exc)})",
                hint="another operator may have made the same change; nothing was changed",
            ) from None
        except (OperationalError, DBAPIError) as exc:
            raise _connection_error(self.url, exc) from None
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()


def _make_engine(url: str) -> Engine:
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 60}
    try:
        engine = create_engine(url, **kwargs)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise RegistryError(
            f"cannot use database URL {_redact(url)}: {exc}",
            hint="give an SQLAlchemy URL such as sqlite:///path or postgresql+psycopg://...",
        ) from None
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling defers BEGIN; take control so that every
    # transaction starts with BEGIN IMMEDIATE (writers queue on the lock, no
    # upgrade deadlocks) and foreign keys and WAL are on for every connection.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = FULL")
        cur.execute("PRAGMA busy_timeout = 60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _first_line(exc: Exception) -> str:
    text_ = str(getattr(exc, "orig", exc)).strip()
    return text_.splitlines()[0] if text_ else exc.__class__.__name__


def _connection_error(url: str, exc: Exception) -> RegistryError:
    detail = _first_line(exc)
    return RegistryError(
        f"registry database error ({_redact(url)}): {detail}",
        hint="check that the database is reachable and the credentials are right; nothing was changed",
    )


def _alembic_config() -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def _script_directory() -> Any:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config())
