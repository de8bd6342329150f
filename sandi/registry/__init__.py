"""The registry: the authority's database (SQLAlchemy 2.x; SQLite or PostgreSQL).

Invariants:

* the schema is created and upgraded only by the migrations in ``migrations/``;
  opening a registry whose schema is older or newer than the code is an error;
* every command runs in one transaction (:meth:`Registry.transaction`); the audit
  entry of a change is written in the same transaction, so either both land or
  neither does;
* SQLite runs with foreign keys on, WAL, and write transactions that take the
  write lock up front (``BEGIN IMMEDIATE``) so concurrent writers serialise
  instead of failing half-way;
* reads that change nothing use :meth:`Registry.reading`: one snapshot, never
  committed, and no write lock, so a long read does not stop the writers.

Importing this package imports SQLAlchemy: only authority-side code does.
"""

from sandi.registry.db import Registry, SchemaStatus

__all__ = ["Registry", "SchemaStatus"]
