"""voice: rate deck blocks, holds, trunks, call records; Kamailio's dialog and acc tables

Our tables exist on SQLite too (trunks and records can be managed anywhere);
Kamailio's (``dialog``, ``dialog_vars``, ``acc_cdrs`` and their ``version`` rows)
on PostgreSQL only, created here so that ``uvox db upgrade`` is all an operator
runs: no Kamailio SQL script. A trigger on ``acc_cdrs`` NOTIFYs ``uvox_cdr`` so
the platform rates a finished call at once instead of at its next poll.

Revision ID: 0004_voice
Revises: 0003_portal
"""

import sqlalchemy as sa
from alembic import op

from uvox.db import schema
from uvox.db.kamailio_tables import TABLE_VERSIONS, voice_kamailio_metadata

revision = "0004_voice"
down_revision = "0003_portal"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    money = schema.Money()
    with op.batch_alter_table("rates") as b:
        b.add_column(sa.Column("connect_charge", money, nullable=False, server_default="0"))
        b.add_column(sa.Column("init_block", sa.Integer, nullable=False, server_default="60"))
        b.add_column(sa.Column("billing_block", sa.Integer, nullable=False, server_default="60"))
    with op.batch_alter_table("accounts") as b:
        b.add_column(sa.Column("held", money, nullable=False, server_default="0"))
    with op.batch_alter_table("ledger") as b:
        b.add_column(sa.Column("call_id", sa.Integer, nullable=True))
    op.create_index("uq_ledger_call_id", "ledger", ["call_id"], unique=True)
    for name in ("trunks", "trunk_prefixes", "calls"):
        schema.metadata.tables[name].create(bind)
    if bind.dialect.name != "postgresql":
        return
    inspector = sa.inspect(bind)
    for table in voice_kamailio_metadata.sorted_tables:
        if not inspector.has_table(table.name):
            table.create(bind)
        elif table.name == "acc_cdrs":
            # A database Kamailio already used: add what our cdr_extra and settlement need.
            have = {c["name"] for c in inspector.get_columns("acc_cdrs")}
            for col in table.columns:
                if col.name not in have:
                    op.add_column("acc_cdrs", col.copy())
    for name, version in TABLE_VERSIONS.items():
        op.execute(
            sa.text(
                "INSERT INTO version (table_name, table_version) VALUES (:n, :v)"
                " ON CONFLICT (table_name) DO UPDATE SET table_version = EXCLUDED.table_version"
            ).bindparams(n=name, v=version)
        )
    op.execute(
        "CREATE OR REPLACE FUNCTION uvox_cdr_notify() RETURNS trigger AS $$"
        " BEGIN PERFORM pg_notify('uvox_cdr', NEW.id::text); RETURN NEW; END; $$ LANGUAGE plpgsql"
    )
    op.execute("DROP TRIGGER IF EXISTS uvox_cdr_notify ON acc_cdrs")
    op.execute(
        "CREATE TRIGGER uvox_cdr_notify AFTER INSERT ON acc_cdrs FOR EACH ROW EXECUTE FUNCTION uvox_cdr_notify()"
    )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS uvox_cdr_notify ON acc_cdrs")
        op.execute("DROP FUNCTION IF EXISTS uvox_cdr_notify()")
        for table in reversed(voice_kamailio_metadata.sorted_tables):
            table.drop(bind, checkfirst=True)
        op.execute(sa.text("DELETE FROM version WHERE table_name IN ('dialog', 'dialog_vars', 'acc_cdrs')"))
    for name in ("calls", "trunk_prefixes", "trunks"):
        schema.metadata.tables[name].drop(bind)
    op.drop_index("uq_ledger_call_id", "ledger")
    with op.batch_alter_table("ledger") as b:
        b.drop_column("call_id")
    with op.batch_alter_table("accounts") as b:
        b.drop_column("held")
    with op.batch_alter_table("rates") as b:
        b.drop_column("init_block")
        b.drop_column("billing_block")
        b.drop_column("connect_charge")
