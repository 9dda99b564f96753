"""carrier passwords sealed: connectors.sealed_password, trunks.sealed_password

The SMPP bind password and the trunk digest password must be read back, so they
cannot be hashed; from here on they are AES-GCM sealed under the instance secret
(uvox.secretbox, purposes "smpp-password" and "trunk-password"; "" stays "": no
password). The existing clear ``password`` columns are sealed into new columns and
dropped, so no clear password remains. The key is the configured UVOX_SECRET_KEY
(``uvox db upgrade`` and ``uvox serve`` pass it) or the database's generated one.

A database created at 0004 or later by this code base already has
``trunks.sealed_password`` (0004 creates ``trunks`` from the current schema): then
there is nothing to convert there. ``ALTER TABLE ... DROP COLUMN`` needs SQLite
3.35 (2021); a batch copy of ``connectors`` would trip the routes' foreign key.

Revision ID: 0010_sealed_carrier_passwords
Revises: 0009_test_mode
"""

import functools
from collections.abc import Callable

import sqlalchemy as sa
from alembic import context, op

from uvox import secretbox
from uvox.db.migrate import migration_secret

revision = "0010_sealed_carrier_passwords"
down_revision = "0009_test_mode"
branch_labels = None
depends_on = None

_TABLES = (("connectors", secretbox.SMPP_PASSWORD, 9), ("trunks", secretbox.TRUNK_PASSWORD, 100))


def _columns(table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def _secret() -> bytes:
    return migration_secret(op.get_bind(), context.config.attributes.get("secret_key"))


def _convert(table: str, source: str, target: str, length: int, transform: Callable[[str], str]) -> None:
    """Add ``target``, fill it with ``transform(source)`` row by row, drop ``source``."""
    bind = op.get_bind()
    op.add_column(table, sa.Column(target, sa.String(length), nullable=False, server_default=""))
    t = sa.table(table, sa.column("id", sa.Integer), sa.column(source, sa.String), sa.column(target, sa.String))
    for row_id, value in bind.execute(sa.select(t.c.id, t.c[source])).all():
        if value:
            bind.execute(sa.update(t).where(t.c.id == row_id).values({target: transform(value)}))
    op.execute(f"ALTER TABLE {table} DROP COLUMN {source}")


def upgrade() -> None:
    secret = _secret()
    for table, purpose, _ in _TABLES:
        if "password" not in _columns(table):
            continue  # created with sealed_password already
        _convert(table, "password", "sealed_password", 255, functools.partial(_seal, secret, purpose=purpose))


def downgrade() -> None:
    secret = _secret()
    for table, purpose, length in _TABLES:
        _convert(table, "sealed_password", "password", length, functools.partial(_open, secret, purpose=purpose))


def _seal(secret: bytes, value: str, purpose: bytes) -> str:
    return secretbox.seal(secret, value, purpose)


def _open(secret: bytes, value: str, purpose: bytes) -> str:
    return secretbox.open_(secret, value, purpose)
