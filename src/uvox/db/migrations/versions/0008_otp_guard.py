"""SMS pumping protection: countries per account, OTP limits and pauses per prefix

Revision ID: 0008_otp_guard
Revises: 0005_rate_limits
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_otp_guard"
down_revision = "0007_spend_caps"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as b:
        b.add_column(sa.Column("allowed_countries", sa.String(length=1000), nullable=True))
        b.add_column(sa.Column("blocked_countries", sa.String(length=1000), nullable=True))
    with op.batch_alter_table("otp_sessions") as b:
        b.add_column(sa.Column("prefix", sa.String(length=20), nullable=True))
        b.add_column(sa.Column("address", sa.String(length=64), nullable=True))
    op.create_index("ix_otp_sessions_account", "otp_sessions", ["account_id", "created_at"], unique=False)
    op.create_index("ix_otp_sessions_prefix", "otp_sessions", ["account_id", "prefix", "created_at"], unique=False)
    op.create_index("ix_otp_sessions_address", "otp_sessions", ["account_id", "address", "created_at"], unique=False)
    op.create_table(
        "otp_limits",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("per_number", sa.Integer(), nullable=True),
        sa.Column("per_prefix", sa.Integer(), nullable=True),
        sa.Column("per_address", sa.Integer(), nullable=True),
        sa.Column("per_account", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_otp_limits_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_otp_limits")),
    )
    op.create_table(
        "otp_pauses",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("prefix", sa.String(length=20), nullable=False),
        sa.Column("country", sa.String(length=3), nullable=False),
        sa.Column("requested", sa.Integer(), nullable=False),
        sa.Column("verified", sa.Integer(), nullable=False),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lifted_by", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_otp_pauses_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("account_id", "prefix", name=op.f("pk_otp_pauses")),
    )


def downgrade() -> None:
    op.drop_table("otp_pauses")
    op.drop_table("otp_limits")
    op.drop_index("ix_otp_sessions_address", table_name="otp_sessions")
    op.drop_index("ix_otp_sessions_prefix", table_name="otp_sessions")
    op.drop_index("ix_otp_sessions_account", table_name="otp_sessions")
    with op.batch_alter_table("otp_sessions") as b:
        b.drop_column("address")
        b.drop_column("prefix")
    with op.batch_alter_table("accounts") as b:
        b.drop_column("blocked_countries")
        b.drop_column("allowed_countries")
