"""``sandi db``: the registry database's schema: where it stands, and upgrading it.

Invariants: these commands show the database URL only with its password masked; ``db
status`` changes nothing; ``db upgrade`` runs all pending migrations in one transaction
(all or none), refuses a schema newer than this sandi, and makes no backup itself.
"""

from __future__ import annotations

import click

from .context import CliContext, pass_cli


@click.group("db")
def db() -> None:
    """Registry database schema: status and upgrade (authority).

    The registry is SQLite in the home unless --database-url / SANDI_DATABASE_URL
    (or database_url in sandi.toml) points at PostgreSQL. See docs/operations.md.

    \b
    Example:
      sandi db status
      SANDI_DATABASE_URL=postgresql+psycopg://sandi_owner@db.example/sandi sandi db upgrade
    """


@db.command("status")
@pass_cli
def status_cmd(obj: CliContext) -> None:
    """Show the schema revision of the registry, the code's head revision and how they compare.

    Status is one of: current (ready), older (run 'sandi db upgrade'), newer (upgrade
    sandi first), empty (no schema yet). Changes nothing; exits 0 whatever the status,
    1 if the database cannot be reached.

    \b
    Example:
      sandi db status
      sandi --json db status
    """
    registry = obj.registry(require_current=False)
    revision = registry.schema_revision()
    status = registry.schema_status()
    head = registry.head_revision()
    data = {
        "status": status.value,
        "revision": revision,
        "head": head,
        "dialect": registry.dialect,
        "url": registry.redacted_url,
    }
    advice = {
        "current": "the schema matches this sandi",
        "older": "run 'sandi db upgrade' (back the database up first: docs/operations.md)",
        "newer": "this database was upgraded by a newer sandi: upgrade sandi here",
        "empty": "no schema yet: 'sandi init' for a new authority, or 'sandi db upgrade'",
    }[status.value]
    obj.emit(data, [
        f"database: {registry.redacted_url} ({registry.dialect})",
        f"revision: {revision or '-'}",
        f"head:     {head}",
        f"status:   {status.value} ({advice})",
    ])


@db.command("upgrade")
@pass_cli
def upgrade_cmd(obj: CliContext) -> None:
    """Apply the schema migrations this sandi has and the database lacks.

    All pending migrations run in one transaction: either all apply or none does.
    A schema newer than this sandi is refused. This command makes no backup: back
    the database up first (pg_dump, or sqlite3 .backup; see docs/operations.md).
    Run it with a role allowed to change the schema (the owner role), not the
    operators' role.

    \b
    Example:
      pg_dump -Fc -f registry-before-upgrade.dump sandi
      SANDI_DATABASE_URL=postgresql+psycopg://sandi_owner@db.example/sandi sandi db upgrade
    """
    registry = obj.registry(require_current=False)
    before = registry.schema_revision()
    registry.upgrade()
    after = registry.schema_revision()
    changed = before != after
    obj.emit(
        {"url": registry.redacted_url, "dialect": registry.dialect, "from": before, "to": after,
         "changed": changed},
        f"upgraded {registry.redacted_url} from {before or 'empty'} to {after}" if changed
        else f"{registry.redacted_url} is already at {after}: nothing to do",
    )
