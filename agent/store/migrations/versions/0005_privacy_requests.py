"""privacy requests (exports and erasures asked for through the API)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 03:00:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import agent.store.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "privacy_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("requested_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("contacts", sa.Integer(), nullable=False),
        sa.Column("subjects", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("archive_path", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("created_at", agent.store.types.UtcDateTime(), nullable=False),
        sa.Column("done_at", agent.store.types.UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_privacy_requests_created_at"), "privacy_requests", ["created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_privacy_requests_created_at"), table_name="privacy_requests")
    op.drop_table("privacy_requests")
