"""per-account API rate limits: accounts.rate_limit and the shared rate_counts

Revision ID: 0005_rate_limits
Revises: 0004_voice
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_rate_limits"
down_revision = "0004_voice"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as b:
        b.add_column(sa.Column("rate_limit", sa.Integer(), nullable=True))
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "rate_counts",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("second", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "second", name=op.f("pk_rate_counts")),
        prefixes=["UNLOGGED"] if postgres else [],
    )


def downgrade() -> None:
    op.drop_table("rate_counts")
    with op.batch_alter_table("accounts") as b:
        b.drop_column("rate_limit")
