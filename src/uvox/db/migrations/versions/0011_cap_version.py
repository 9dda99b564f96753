"""accounts.cap_version: call holds checked against spend caps in their own statement

Every transaction that changes spend under an account's caps (a cap saved, a charge
or refund counted) adds one; call authorization reads it with the caps and its
conditional hold requires it unchanged (uvox.billing.caps, uvox.voice.authorize).

Revision ID: 0011_cap_version
Revises: 0010_sealed_carrier_passwords
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_cap_version"
down_revision = "0010_sealed_carrier_passwords"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as b:
        b.add_column(sa.Column("cap_version", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("accounts") as b:
        b.drop_column("cap_version")
