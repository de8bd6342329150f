"""The archive of retired certificates (issue 20, ADR 0019 "The archive").

``directory_archive_leaves`` holds one leaf per retired agency certificate (keyed by
serial, with its agency), which leaves the agency's current leaf. Every agency is marked
pending, so the first publication after the upgrade moves the retired certificates once.

Revision ID: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "directory_archive_leaves",
        sa.Column("serial", sa.String(64), primary_key=True),
        sa.Column("agency_id", sa.Integer(), sa.ForeignKey("agencies.id"), nullable=False, index=True),
        sa.Column("leaf", sa.LargeBinary(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
    )
    op.execute("INSERT INTO directory_pending (agency_id) SELECT id FROM agencies "
               "WHERE id NOT IN (SELECT agency_id FROM directory_pending)")


def downgrade() -> None:
    op.drop_table("directory_archive_leaves")
