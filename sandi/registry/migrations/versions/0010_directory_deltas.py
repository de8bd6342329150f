"""Directory deltas (issue 20, ADR 0019): each version keeps its signed header, leaves
record the version that last changed them (indexed), removed agencies are remembered.

A delta from version N is then the leaves changed after N, the codes removed after N,
and the newest header: no per-version copy of the whole directory is needed, so only
the newest publication keeps its full envelope (older ones drop it).

Revision ID: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("directory_versions") as batch:
        batch.add_column(sa.Column("header", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("signature", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("members", sa.LargeBinary(), nullable=True))
    op.create_index("ix_directory_leaves_version", "directory_leaves", ["version"])
    op.create_table(
        "directory_removed",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("version", sa.BigInteger(), nullable=False, index=True),
    )
