"""Initial registry schema: authority, agencies, certificates, revocations, policy
versions, audit entries / head / checkpoints, directory versions.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "authority",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("province", sa.String(200), nullable=False),
        sa.Column("root_cert_pem", sa.Text(), nullable=False),
        sa.Column("root_fingerprint", sa.String(64), nullable=False, unique=True),
        sa.Column("root_key_ref", sa.String(200), nullable=False),
        _ts("created_at"),
    )
    op.create_table(
        "agencies",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("parent_id", sa.Integer(), sa.ForeignKey("agencies.id"), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
    )
    op.create_table(
        "certificates",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("serial", sa.String(64), nullable=False, unique=True),
        sa.Column("agency_id", sa.Integer(), sa.ForeignKey("agencies.id"), nullable=False),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("key_fingerprint", sa.String(64), nullable=False),
        sa.Column("public_key", sa.LargeBinary(32), nullable=False),
        sa.Column("cert_pem", sa.Text(), nullable=False),
        _ts("not_before"),
        _ts("not_after"),
        _ts("issued_at"),
        sa.Column("state", sa.String(20), nullable=False),
        _ts("retired_at", nullable=True),
        sa.Column("profile", sa.String(64), nullable=False, server_default="default"),
    )
    op.create_index("ix_certificates_agency_id", "certificates", ["agency_id"])
    op.create_index("ix_certificates_key_fingerprint", "certificates", ["key_fingerprint"])
    op.create_table(
        "revocations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "certificate_id",
            sa.Integer(),
            sa.ForeignKey("certificates.id"),
            nullable=False,
            unique=True,
        ),
        sa.Column("reason", sa.String(40), nullable=False),
        _ts("revoked_at"),
        sa.Column("revoked_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "policy_versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("policy_id", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        _ts("effective_from"),
        _ts("expires_at", nullable=True),
        _ts("applied_at"),
        sa.Column("applied_by", sa.String(200), nullable=False),
        sa.UniqueConstraint("policy_id", "version"),
    )
    op.create_table(
        "audit_entries",
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("time", sa.String(40), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(80), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
    )
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.String(64), nullable=False),
        sa.Column("time", sa.String(40), nullable=False),
        sa.Column("signer", sa.String(200), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
    )
    op.create_table(
        "directory_versions",
        sa.Column("version", sa.BigInteger(), primary_key=True, autoincrement=False),
        _ts("issued_at"),
        _ts("expires_at"),
        sa.Column("sha256", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "directory_versions",
        "audit_checkpoints",
        "audit_head",
        "audit_entries",
        "policy_versions",
        "revocations",
        "certificates",
        "agencies",
        "authority",
    ):
        op.drop_table(table)
