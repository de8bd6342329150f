"""``sandi db``: the registry database's schema: where it stands, and upgrading it.

Invariants: these commands show the database URL only with its password masked; ``db
status`` changes nothing; ``db upgrade`` runs all pending migrations in one transaction
(all or none), refuses a schema newer than this sandi, and makes no backup itself.
"""

from __future__ import annotations

import click

from sandi.i18n import _

from .context import CliContext, pass_cli


@click.group("db", help=_(
    "Registry database schema: status and upgrade (authority).\n"
    "\n"
    "The registry is SQLite in the home unless --database-url / SANDI_DATABASE_URL\n"
    "(or database_url in sandi.toml) points at PostgreSQL. See docs/operations.md.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi db status\n"
    "  SANDI_DATABASE_URL=postgresql+psycopg://sandi_owner@db.example/sandi sandi db upgrade"
))
def db() -> None:
    pass

@db.command("status", help=_(
    "Show the schema revision of the registry, the code's head revision and how they compare.\n"
    "\n"
    "Status is one of: current (ready), older (run 'sandi db upgrade'), newer (upgrade\n"
    "sandi first), empty (no schema yet). Changes nothing; exits 0 whatever the status,\n"
    "1 if the database cannot be reached.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  sandi db status\n"
    "  sandi --json db status"
))
@pass_cli
def status_cmd(obj: CliContext) -> None:
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
        "current": _("the schema matches this sandi"),
        "older": _("run 'sandi db upgrade' (back the database up first: docs/operations.md)"),
        "newer": _("this database was upgraded by a newer sandi: upgrade sandi here"),
        "empty": _("no schema yet: 'sandi init' for a new authority, or 'sandi db upgrade'"),
    }[status.value]
    obj.emit(data, [
        _("database: {redacted_url} ({dialect})").format(
            redacted_url=registry.redacted_url,
            dialect=registry.dialect,
        ),
        _("revision: {revision}").format(revision=revision or '-'),
        _("head:     {head}").format(head=head),
        _("status:   {value} ({advice})").format(value=status.value, advice=advice),
    ])


@db.command("upgrade", help=_(
    "Apply the schema migrations this sandi has and the database lacks.\n"
    "\n"
    "All pending migrations run in one transaction: either all apply or none does.\n"
    "A schema newer than this sandi is refused. This command makes no backup: back\n"
    "the database up first (pg_dump, or sqlite3 .backup; see docs/operations.md).\n"
    "Run it with a role allowed to change the schema (the owner role), not the\n"
    "operators' role.\n"
    "\n"
    "\b\n"
    "Example:\n"
    "  pg_dump -Fc -f registry-before-upgrade.dump sandi\n"
    "  SANDI_DATABASE_URL=postgresql+psycopg://sandi_owner@db.example/sandi sandi db upgrade"
))
@pass_cli
def upgrade_cmd(obj: CliContext) -> None:
    registry = obj.registry(require_current=False)
    before = registry.schema_revision()
    registry.upgrade()
    after = registry.schema_revision()
    changed = before != after
    obj.emit(
        {"url": registry.redacted_url, "dialect": registry.dialect, "from": before, "to": after,
         "changed": changed},
        _("upgraded {redacted_url} from {before} to {after}").format(
            redacted_url=registry.redacted_url,
            before=before or 'empty',
            after=after,
        ) if changed
        else _("{redacted_url} is already at {after}: nothing to do").format(
            redacted_url=registry.redacted_url,
            after=after,
        ),
    )
