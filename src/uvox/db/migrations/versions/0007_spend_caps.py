"""spend caps, spend counters, low-balance alerts and the e-mail outbox

Four new tables; nothing existing changes.

Revision ID: 0007_spend_caps
Revises: 0005_rate_limits
"""

from alembic import op

from uvox.db import schema

revision = "0007_spend_caps"
down_revision = "0006_idempotency"
branch_labels = None
depends_on = None

TABLES = ("spend_caps", "spend_counters", "balance_alerts", "email_outbox")


def upgrade() -> None:
    bind = op.get_bind()
    for name in TABLES:
        schema.metadata.tables[name].create(bind)


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name)
