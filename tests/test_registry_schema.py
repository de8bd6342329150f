"""The registry's schema on SQLite and PostgreSQL: created and upgraded by the migrations,
refused when older or newer than the code, never left half-migrated."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
import sqlalchemy as sa

from sandi.errors import RegistryError
from sandi.registry import Registry, SchemaStatus
from sandi.registry import db as registry_db
from sandi.registry.base import Base
from sandi.registry.models import AgencyRow  # noqa: F401  (registers the tables)

T = TypeVar("T")

TABLES = {
    "authority", "agencies", "certificates", "revocations", "policy_versions", "audit_entries",
    "audit_head", "audit_checkpoints", "directory_versions", "crl_counter", "enrolment_tokens",
    "enrolment_requests", "officials", "directory_leaves", "directory_key_leaves", "directory_pending",
    "tsa_certificates", "directory_removed", "directory_archive_leaves",
}

# An extra migration after the real head, to see a real "older" schema upgraded.
EXTRA_MIGRATION = '''
"""A later test-only migration. Revision ID: 9001"""
import sqlalchemy as sa
from alembic import op

revision = "9001"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("upgrade_probe", sa.Column("id", sa.Integer(), primary_key=True))
    {extra}


def downgrade() -> None:
    op.drop_table("upgrade_probe")
'''


def _snapshot(url: str) -> dict[str, object]:
    """Tables, their columns, row counts and the stamped revision: what 'nothing changed' means."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            insp = sa.inspect(conn)
            out: dict[str, object] = {}
            for table in sorted(insp.get_table_names()):
                cols = [c["name"] for c in insp.get_columns(table)]
                count = conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
                out[table] = (cols, count)
            if "alembic_version" in out:
                out["revision"] = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
            return out
    finally:
        engine.dispose()


def _later_migrations(tmp_path: Path, *, extra: str = "pass") -> Path:
    """A copy of the migrations with one more revision after the real head."""
    target = tmp_path / "migrations"
    shutil.copytree(registry_db.MIGRATIONS_DIR, target,
                    ignore=shutil.ignore_patterns("__pycache__"))
    head = Registry("sqlite://").head_revision()
    (target / "versions" / "9001_probe.py").write_text(
        EXTRA_MIGRATION.format(head=head, extra=extra))
    return target


def test_upgrade_creates_the_schema(registry_url: str) -> None:
    reg = Registry(registry_url)
    assert reg.schema_status() is SchemaStatus.EMPTY
    assert reg.schema_revision() is None
    with pytest.raises(RegistryError, match="no registry schema") as info:
        reg.require_current()
    assert "db upgrade" in info.value.hint
    reg.upgrade()
    assert reg.schema_status() is SchemaStatus.CURRENT
    assert reg.schema_revision() == reg.head_revision()
    reg.require_current()
    tables = set(sa.inspect(reg.engine).get_table_names())
    assert tables == TABLES | {"alembic_version"}
    reg.dispose()


def test_migrations_match_the_models(registry_url: str) -> None:
    """What the migrations build is what models.py declares: same tables, same columns."""
    reg = Registry(registry_url)
    reg.upgrade()
    insp = sa.inspect(reg.engine)
    for table in Base.metadata.sorted_tables:
        got = {c["name"] for c in insp.get_columns(table.name)}
        assert got == {c.name for c in table.columns}, table.name
        uniques = {tuple(u["column_names"]) for u in insp.get_unique_constraints(table.name)}
        for col in table.columns:
            if col.unique:
                assert (col.name,) in uniques, f"{table.name}.{col.name} must be unique"
    reg.dispose()


def test_upgrade_twice_is_a_no_op(registry_url: str) -> None:
    reg = Registry(registry_url)
    reg.upgrade()
    before = _snapshot(registry_url)
    reg.upgrade()
    assert _snapshot(registry_url) == before
    reg.dispose()


def test_older_schema_is_refused_then_upgraded(
    registry_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = Registry(registry_url)
    reg.upgrade()
    with reg.transaction() as s:
        s.execute(sa.text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, :h)"), {"h": "0" * 64})
    monkeypatch.setattr(registry_db, "MIGRATIONS_DIR", _later_migrations(tmp_path))
    assert reg.schema_status() is SchemaStatus.OLDER
    with pytest.raises(RegistryError, match="older than this sandi") as info:
        reg.require_current()
    assert "sandi db upgrade" in info.value.hint
    reg.upgrade()
    assert reg.schema_revision() == "9001"
    assert reg.schema_status() is SchemaStatus.CURRENT
    assert "upgrade_probe" in sa.inspect(reg.engine).get_table_names()
    with reg.transaction() as s:  # the data survived the upgrade
        assert s.execute(sa.text("SELECT seq FROM audit_head")).scalar_one() == 0
    reg.dispose()


def test_failing_migration_leaves_nothing_half_done(
    registry_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = Registry(registry_url)
    reg.upgrade()
    before = _snapshot(registry_url)
    monkeypatch.setattr(registry_db, "MIGRATIONS_DIR", _later_migrations(
        tmp_path, extra='op.execute("SELECT * FROM no_such_table_here")'))
    with pytest.raises(RegistryError, match="migrating the registry failed") as info:
        reg.upgrade()
    assert "nothing was changed" in info.value.hint
    assert _snapshot(registry_url) == before  # no upgrade_probe table, still at the old head
    assert reg.schema_status() is SchemaStatus.OLDER
    reg.dispose()


def test_newer_schema_is_refused_and_left_alone(registry_url: str) -> None:
    reg = Registry(registry_url)
    reg.upgrade()
    with reg.transaction() as s:
        s.execute(sa.text("UPDATE alembic_version SET version_num = 'f00dfeed1234'"))
    before = _snapshot(registry_url)
    assert reg.schema_status() is SchemaStatus.NEWER
    with pytest.raises(RegistryError, match="newer than this sandi") as info:
        reg.require_current()
    assert "upgrade sandi" in info.value.hint
    with pytest.raises(RegistryError, match="newer than this sandi"):
        reg.upgrade()
    assert _snapshot(registry_url) == before
    reg.dispose()


def _at_once(registries: list[Registry], act: Callable[[Registry], T]) -> tuple[list[T], list[BaseException]]:
    """Run ``act`` on every registry in its own thread, all released at the same instant;
    what they returned and what they raised."""
    barrier = threading.Barrier(len(registries))
    results: list[T] = []
    errors: list[BaseException] = []

    def go(reg: Registry) -> None:
        barrier.wait()
        try:
            results.append(act(reg))
        except BaseException as exc:  # collected and asserted by the caller
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(r,)) for r in registries]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results, errors


def test_concurrent_upgrades_of_an_empty_database(registry_url: str) -> None:
    """Two operators run 'db upgrade' at the same moment: one migrates, the other finds it done."""
    registries = [Registry(registry_url) for _ in range(3)]
    _, errors = _at_once(registries, Registry.upgrade)
    assert errors == []
    assert all(r.schema_status() is SchemaStatus.CURRENT for r in registries)
    for r in registries:
        r.dispose()


def _journal_mode(reg: Registry) -> str:
    with reg.engine.connect() as conn:
        return str(conn.exec_driver_sql("PRAGMA journal_mode").scalar())


def test_first_connections_to_a_fresh_sqlite_file_wait_instead_of_failing(tmp_path: Path) -> None:
    """Switching a new file to WAL races between its first connections; SQLite answers
    "database is locked" at once there (no busy handler), so sandi must wait its turn."""
    for attempt in range(40):
        registries = [Registry(f"sqlite:///{tmp_path / f'fresh-{attempt}.db'}") for _ in range(6)]
        modes, errors = _at_once(registries, _journal_mode)
        for r in registries:
            r.dispose()
        assert errors == []
        assert modes == ["wal"] * 6


def test_revisions_from_file_names_are_alembics_chain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The schema check reads revisions from the migration files' names (no alembic at
    start-up); that list must be exactly the chain alembic runs, in order, also with a
    later migration added."""
    assert registry_db.migration_revisions() == registry_db.alembic_revisions()
    monkeypatch.setattr(registry_db, "MIGRATIONS_DIR", _later_migrations(tmp_path))
    assert registry_db.migration_revisions() == registry_db.alembic_revisions()
    assert registry_db.migration_revisions()[-1] == "9001"
