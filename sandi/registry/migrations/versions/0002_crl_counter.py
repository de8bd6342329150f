"""The CRL counter: one row holding the last CRL number issued.

CRL numbers used to be the publication time in whole seconds x 10^6, which repeats
when two CRLs are built in one second. The counter continues that scale: the next
number is the larger of (last + 1) and the time-based value, so it is above every
number issued before this migration and strictly increasing from now on.

Revision ID: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "crl_counter",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("last_number", sa.BigInteger(), nullable=False),
    )
    # Seeded here, so allocating never has to create the row (and never races to).
    op.bulk_insert(table, [{"id": 1, "last_number": 0}])


def downgrade() -> None:
    op.drop_table("crl_counter")
