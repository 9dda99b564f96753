"""Alembic environment: the engine comes from uvox settings, never from alembic.ini."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from uvox.db.schema import metadata

config = context.config
connection = config.attributes.get("connection")


def run() -> None:
    if connection is None:
        from uvox.config import get_settings
        from uvox.db.engine import make_engine

        settings = get_settings()
        config.attributes.setdefault("secret_key", settings.secret_key)  # 0010 seals with it
        engine = make_engine(settings)
        with engine.connect() as conn:
            _run_with(conn)
            conn.commit()
    else:
        _run_with(connection)


# Kamailio's tables (uvox.softphone.subscriber, migration 0002, PostgreSQL only)
# are not in ``metadata``: keep autogenerate from proposing to drop them.
_NOT_OURS = {"subscriber", "version"}


def _include_name(name: str | None, type_: str, parent_names: object) -> bool:
    return not (type_ == "table" and name in _NOT_OURS)


def _run_with(conn: Connection) -> None:
    context.configure(
        connection=conn,
        target_metadata=metadata,
        include_name=_include_name,
        render_as_batch=conn.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
