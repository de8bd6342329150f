"""The compiled policy, made once at ``policy apply``, kept beside its source.

``compiled`` is the canonical compiled text (sandi.policy.compiled) and
``compiled_signature`` the root's signature over it; the directory publishes both so
workstations decide without parsing TOML (ADR 0016). Versions applied before this
migration have neither; their workstations keep compiling the source.

Revision ID: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("policy_versions") as batch:
        batch.add_column(sa.Column("compiled", sa.Text(), nullable=True))
        batch.add_column(sa.Column("compiled_signature", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("policy_versions") as batch:
        batch.drop_column("compiled_signature")
        batch.drop_column("compiled")
