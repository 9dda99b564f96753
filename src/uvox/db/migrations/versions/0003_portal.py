"""portal: server-side sessions and sign-in attempts (throttling across processes)

Revision ID: 0003_portal
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_portal"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "portal_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_portal_sessions_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_portal_sessions_token_hash")),
    )
    op.create_index(op.f("ix_portal_sessions_account_id"), "portal_sessions", ["account_id"], unique=False)
    op.create_table(
        "signin_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signin_attempts")),
    )
    op.create_index("ix_signin_attempts_email", "signin_attempts", ["email", "created_at"], unique=False)
    op.create_index("ix_signin_attempts_address", "signin_attempts", ["address", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_signin_attempts_address", table_name="signin_attempts")
    op.drop_index("ix_signin_attempts_email", table_name="signin_attempts")
    op.drop_table("signin_attempts")
    op.drop_index(op.f("ix_portal_sessions_account_id"), table_name="portal_sessions")
    op.drop_table("portal_sessions")
