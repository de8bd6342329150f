"""Alembic environment: sandi always passes its own connection."""

from __future__ import annotations

from alembic import context

from sandi.registry import models  # noqa: F401  (registers the tables on Base.metadata)
from sandi.registry.base import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - sandi never runs alembic without a connection
    raise RuntimeError("sandi's migrations run through 'sandi db upgrade'")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
