"""Kamailio subscriber and version tables (PostgreSQL only)

Kamailio's auth_db reads SIP credentials from ``subscriber`` and checks the
``version`` row of that table at start. The platform writes ``subscriber``
in the same transaction as each SIP account change (uvox.softphone.service).
SQLite installations have no Kamailio, so nothing is created there.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    # An operator may point UVox at a database that already served Kamailio:
    # keep an existing version table, only add our rows.
    op.execute(
        "CREATE TABLE IF NOT EXISTS version ("
        " id SERIAL PRIMARY KEY NOT NULL,"
        " table_name VARCHAR(32) NOT NULL,"
        " table_version INTEGER DEFAULT 0 NOT NULL,"
        " CONSTRAINT version_table_name_idx UNIQUE (table_name))"
    )
    if sa.inspect(bind).has_table("subscriber"):
        # A database Kamailio already used: keep its table (Kamailio's own
        # columns), add the link UVox needs.
        op.add_column("subscriber", sa.Column("sip_account_id", sa.Integer, nullable=True))
        _link(["sip_account_id"])
    else:
        op.create_table(
            "subscriber",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("username", sa.String(64), nullable=False, server_default=""),
            sa.Column("domain", sa.String(64), nullable=False, server_default=""),
            sa.Column("password", sa.String(64), nullable=False, server_default=""),
            sa.Column("ha1", sa.String(128), nullable=False, server_default=""),
            sa.Column("ha1b", sa.String(128), nullable=False, server_default=""),
            sa.Column("sip_account_id", sa.Integer, nullable=True),
            sa.UniqueConstraint("username", "domain", name="subscriber_account_idx"),
        )
        op.create_index("subscriber_username_idx", "subscriber", ["username"])
        _link(["sip_account_id"])
    op.execute(
        "INSERT INTO version (table_name, table_version) VALUES ('version', 1), ('subscriber', 7)"
        " ON CONFLICT (table_name) DO UPDATE SET table_version = EXCLUDED.table_version"
    )


def _link(cols: list[str]) -> None:
    op.create_foreign_key(
        "fk_subscriber_sip_account_id_sip_accounts", "subscriber", "sip_accounts", cols, ["id"], ondelete="CASCADE"
    )
    op.create_unique_constraint("uq_subscriber_sip_account_id", "subscriber", cols)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    # Rows UVox wrote go; a table Kamailio had before UVox stays, minus our column.
    op.execute("DELETE FROM subscriber WHERE sip_account_id IS NOT NULL")
    op.drop_constraint("uq_subscriber_sip_account_id", "subscriber", type_="unique")
    op.drop_constraint("fk_subscriber_sip_account_id_sip_accounts", "subscriber", type_="foreignkey")
    op.drop_column("subscriber", "sip_account_id")
