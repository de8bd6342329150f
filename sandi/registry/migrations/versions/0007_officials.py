"""Officials of an agency and their personal signing certificates (issue 22, ADR 0017).

A personal certificate is a row of ``certificates`` whose ``official_id`` names the
official; the agency's own certificates keep ``official_id`` NULL.

Revision ID: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "officials",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("agency_id", sa.Integer(), sa.ForeignKey("agencies.id"), nullable=False),
        sa.Column("nip", sa.String(18), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("agency_id", "nip"),
    )
    with op.batch_alter_table("certificates") as batch:
        batch.add_column(sa.Column("official_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_certificates_official_id", "officials", ["official_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("certificates") as batch:
        batch.drop_constraint("fk_certificates_official_id", type_="foreignkey")
        batch.drop_column("official_id")
    op.drop_table("officials")
