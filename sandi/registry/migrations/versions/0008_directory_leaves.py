"""The directory's per-agency leaves kept in the registry (issue 20, ADR 0019).

``directory_leaves`` holds each agency's canonical leaf and its Merkle leaf hash,
``directory_key_leaves`` the key tree's leaf hashes, and ``directory_pending`` the agencies
changed since their leaves were last brought up to date. Every existing agency starts
pending, so the first publication after the upgrade computes all leaves once.

Revision ID: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "directory_leaves",
        sa.Column("agency_id", sa.Integer(), sa.ForeignKey("agencies.id"), primary_key=True),
        sa.Column("code", sa.String(64), nullable=False, unique=True),
        sa.Column("leaf", sa.LargeBinary(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "directory_key_leaves",
        sa.Column("key_fingerprint", sa.String(64), primary_key=True),
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("agency_id", sa.Integer(), sa.ForeignKey("agencies.id"), nullable=False, index=True),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
    )
    op.create_table(
        "directory_pending",
        sa.Column("agency_id", sa.Integer(), primary_key=True),
    )
    op.execute("INSERT INTO directory_pending (agency_id) SELECT id FROM agencies")
