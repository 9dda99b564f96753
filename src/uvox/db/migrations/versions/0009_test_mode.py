"""test mode: api_keys.test, messages.test and the test_deliveries timer

Revision ID: 0009_test_mode
Revises: 0005_rate_limits
"""

import sqlalchemy as sa
from alembic import op

from uvox.db import schema

revision = "0009_test_mode"
down_revision = "0008_otp_guard"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # New columns with a constant default: PostgreSQL adds them without rewriting the
    # table, SQLite with a plain ALTER TABLE ADD COLUMN.
    with op.batch_alter_table("api_keys") as b:
        b.add_column(sa.Column("test", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("messages") as b:
        b.add_column(sa.Column("test", sa.Boolean(), nullable=False, server_default=sa.false()))
    schema.metadata.tables["test_deliveries"].create(op.get_bind())


def downgrade() -> None:
    op.drop_table("test_deliveries")
    with op.batch_alter_table("messages") as b:
        b.drop_column("test")
    with op.batch_alter_table("api_keys") as b:
        b.drop_column("test")
