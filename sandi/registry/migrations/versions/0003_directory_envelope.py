"""The signed directory itself, kept beside its version.

``sandi serve`` answers from the registry (one registry, several server processes or
replicas), so the envelope every publication signs is stored with its version row.
Rows from before this migration have none; the server serves the newest row that has.

Revision ID: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("directory_versions") as batch:
        batch.add_column(sa.Column("envelope", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("directory_versions") as batch:
        batch.drop_column("envelope")
