"""Online enrolment for officials and PDF signing keys (issue 22): a token names what it
may enrol - an agency's keys (``agency``, every token made before), one official's
personal keys (``official``, with the official's NIP) or the agency's PDF signing key
(``pdf-signing``).

Revision ID: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("enrolment_tokens") as batch:
        batch.add_column(sa.Column("kind", sa.String(20), nullable=False, server_default="agency"))
        batch.add_column(sa.Column("official_nip", sa.String(18), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("enrolment_tokens") as batch:
        batch.drop_column("official_nip")
        batch.drop_column("kind")
