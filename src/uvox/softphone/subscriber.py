"""Kamailio's own tables, kept in the platform's PostgreSQL.

Column names, types and the ``version`` row (``subscriber`` = 7) are those of
Kamailio 5.6's ``utils/kamctl/postgres/auth_db-create.sql`` and
``standard-create.sql``: auth_db refuses to start if the version row differs.
One addition Kamailio ignores: ``sip_account_id``, a foreign key with ON
DELETE CASCADE, so a subscriber row can never outlive its SIP account (not
even when a whole customer account is deleted).

They live in a MetaData of their own because they exist on PostgreSQL only
(SQLite installations have no Kamailio) and Alembic autogenerate must not try
to create them on SQLite.
"""

from __future__ import annotations

import sqlalchemy as sa

SUBSCRIBER_TABLE_VERSION = 7

kamailio_metadata = sa.MetaData()

version = sa.Table(
    "version",
    kamailio_metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("table_name", sa.String(32), nullable=False, unique=True),
    sa.Column("table_version", sa.Integer, nullable=False, server_default="0"),
)

subscriber = sa.Table(
    "subscriber",
    kamailio_metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, server_default=""),
    sa.Column("domain", sa.String(64), nullable=False, server_default=""),
    sa.Column("password", sa.String(64), nullable=False, server_default=""),
    sa.Column("ha1", sa.String(128), nullable=False, server_default=""),
    sa.Column("ha1b", sa.String(128), nullable=False, server_default=""),
    sa.Column("sip_account_id", sa.Integer, nullable=True, unique=True),
    sa.UniqueConstraint("username", "domain", name="subscriber_account_idx"),
)


def enabled(conn: sa.engine.Connection) -> bool:
    """Kamailio sync happens on PostgreSQL only."""
    return conn.dialect.name == "postgresql"
