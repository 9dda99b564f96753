"""Engine creation: one place that knows how SQLite and PostgreSQL are tuned."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from uvox.config import Settings

log = logging.getLogger(__name__)


def _sqlite_pragmas(dbapi_conn: Any, _record: object) -> None:
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


def autocommit_engine(engine: Engine, pool_size: int) -> Engine:
    """A second pool on the same PostgreSQL database, for statements that each commit
    on their own on a path somebody waits on (Kamailio's call authorization).

    Its connections stay in autocommit for life, so a checkout neither switches them
    in and out of it nor rolls back on return, and they are not pinged before use:
    each of those is Python work or a round trip on every call (py-spy of
    bench/voice_bench.py: a fifth of the authorization's CPU). The price of no ping is
    that a connection PostgreSQL dropped is found out by the statement itself, so
    its caller must retry once when the error says the connection was lost
    (``DBAPIError.connection_invalidated``); SQLAlchemy then replaces every older
    connection of the pool. SQLite has nothing to gain: the engine itself."""
    if engine.dialect.name == "sqlite":
        return engine
    return sa.create_engine(
        engine.url,
        isolation_level="AUTOCOMMIT",
        pool_size=pool_size,
        max_overflow=20,
        pool_pre_ping=False,
        pool_reset_on_return=None,
        hide_parameters=True,
    )


def warm(engine: Engine, connections: int, prepare: Callable[[sa.Connection], None] | None = None) -> None:
    """Open ``connections`` pooled connections at once, before the first request.

    A PostgreSQL connection costs a backend fork and authentication (milliseconds);
    opened lazily, the first burst of requests after a start (Kamailio does not slow
    down because ``uvox serve`` restarted) each waited for one: 100-300 ms of call
    set-up in the first second of bench/voice_bench.py. SQLite connections are
    cheap and are not warmed.

    ``prepare`` runs on each of them: the hot paths' statements, so that every
    backend has read its catalog before the first request needs it."""
    if engine.dialect.name == "sqlite" or connections <= 0:
        return
    held = []
    try:
        for _ in range(connections):
            conn = engine.connect()
            held.append(conn)
            conn.exec_driver_sql("SELECT 1")
            conn.rollback()
            if prepare is not None:
                prepare(conn)
    except sa.exc.SQLAlchemyError as exc:  # a database away at start-up: /ready says so
        log.warning("could not open the database connections ahead of the first request: %s", exc)
    finally:
        for conn in held:
            conn.close()


class autocommit_connection:  # lower case: used like a function, ``with autocommit_connection(e) as driver``
    """The driver connection of one pooled connection, in autocommit, for LISTEN and
    NOTIFY; thrown away afterwards, never given back to the pool.

    Given back, it would stay in autocommit (SQLAlchemy resets only what it set), and
    the next ``write()`` transaction on it would run statement by statement: a
    ``SELECT ... FOR UPDATE`` would lock nothing (seen as an OTP attempt limit passed
    by concurrent guesses after a dispatcher had stopped in the same process).

    A class rather than ``@contextmanager``, which keeps its arguments: listeners drop
    their reference to the engine once inside, and end when it is garbage
    (authcache, wake)."""

    def __init__(self, engine: Engine) -> None:
        self._raw = engine.raw_connection()

    def __enter__(self) -> Any:
        driver = self._raw.driver_connection
        assert driver is not None  # a live checkout always has its driver connection
        driver.autocommit = True
        return driver

    def __exit__(self, *exc: object) -> None:
        self._raw.invalidate()
