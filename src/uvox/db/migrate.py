"""Apply Alembic migrations from code (``uvox db upgrade`` and at ``uvox serve`` start).

On PostgreSQL several ``uvox serve`` / ``uvox worker`` processes may start at once;
a transaction-level advisory lock makes exactly one of them migrate while the
others wait, then find nothing to do.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from uvox.db import schema

if TYPE_CHECKING:
    # Alembic (with Mako and Pygments behind it) is imported where a migration runs,
    # not by every process that merely opens the Platform: about 10 MB each.
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
_LOCK_KEY = 0x5576_6F78  # "Uvox"


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def upgrade(engine: Engine, revision: str = "head", secret_key: str = "") -> None:
    """``secret_key`` is the configured instance secret (``Settings.secret_key``,
    UVOX_SECRET_KEY): migrations that seal or open secrets (0010) use it, or the
    database's generated one when it is empty, as the running platform does."""
    from alembic import command

    _run(engine, secret_key, lambda cfg: command.upgrade(cfg, revision))


def downgrade(engine: Engine, revision: str, secret_key: str = "") -> None:
    """Back to ``revision`` (tests of a migration; an operator's way back)."""
    from alembic import command

    _run(engine, secret_key, lambda cfg: command.downgrade(cfg, revision), ensure_secret=False)


def _run(engine: Engine, secret_key: str, step: Callable[[Config], None], ensure_secret: bool = True) -> None:
    cfg = alembic_config()
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        cfg.attributes["connection"] = conn
        cfg.attributes["secret_key"] = secret_key
        step(cfg)
        if ensure_secret:
            _ensure_secret(conn)
        conn.commit()


def current_heads(engine: Engine) -> frozenset[str]:
    """The revisions the database is at (empty before the first upgrade)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return frozenset(MigrationContext.configure(conn).get_current_heads())


def _ensure_secret(conn: Connection) -> None:
    """A per-installation secret, shared by every process through the database."""
    found = conn.execute(sa.select(schema.meta.c.value).where(schema.meta.c.key == "secret_key")).first()
    if found is None:
        conn.execute(sa.insert(schema.meta).values(key="secret_key", value=secrets.token_hex(32)))


def migration_secret(conn: Connection, configured: str | None) -> bytes:
    """The instance secret a migration seals and opens with: the configured one, else
    the database's own (generated now if this database has none yet)."""
    if configured:
        return configured.encode()
    _ensure_secret(conn)
    value = conn.execute(sa.select(schema.meta.c.value).where(schema.meta.c.key == "secret_key")).scalar()
    return str(value).encode()


def instance_secret(engine: Engine, configured: str = "") -> bytes:
    if configured:
        return configured.encode()
    with engine.connect() as conn:
        value = conn.execute(sa.select(schema.meta.c.value).where(schema.meta.c.key == "secret_key")).scalar()
    if value is None:
        raise RuntimeError("database not initialised: run `uvox db upgrade`")
    return str(value).encode()
