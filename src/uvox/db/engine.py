"""Engine creation: one place that knows how SQLite and PostgreSQL are tuned."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from uvox.config import Settings


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers run beside the single writer; synchronous=FULL makes a commit
    # durable (fsync) before we answer "accepted", as the contract requires.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(settings: Settings) -> Engine:
    url = settings.database_url
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 10},
            pool_size=8,
            max_overflow=16,
            hide_parameters=True,  # errors are logged: never with numbers, texts or secrets
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN until the first write,
        # which lets two writers both read and then fail to upgrade their locks.
        # Take the write lock at BEGIN instead (BEGIN IMMEDIATE) for write sessions;
        # see uvox.db.session.write().
        sa.event.listen(engine, "connect", lambda c, r: setattr(c, "isolation_level", None))
        return engine
    return sa.create_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=20,
        pool_pre_ping=True,
        hide_parameters=True,  # errors are logged: never with numbers, texts or secrets
    )
