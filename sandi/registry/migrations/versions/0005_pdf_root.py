"""The province's PDF root (ADR 0014, decision 3): a self-signed ECDSA P-256 CA beside the
Ed25519 root, whose certificate the directory publishes and whose key is in the authority's
key store. Registries from before this migration have none (``sandi pdf-root init``).

Revision ID: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("authority") as batch:
        batch.add_column(sa.Column("pdf_root_cert_pem", sa.Text(), nullable=True))
        batch.add_column(sa.Column("pdf_root_key_ref", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("authority") as batch:
        batch.drop_column("pdf_root_key_ref")
        batch.drop_column("pdf_root_cert_pem")
