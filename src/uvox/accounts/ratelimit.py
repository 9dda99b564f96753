"""Per-account API request rate limits, shared by every API process and machine.

The operator sets a number of requests a second for an account (``uvox admin
account set-limit ACCOUNT --per-second N``); a request beyond it within the same
second is refused with code 107 (HTTP 429) and ``Retry-After: 1``. Accounts
without a limit cost nothing here.

Counted in the database every API process already shares, so N processes on any
number of machines allow N requests a second in all, not N each: one fixed window
a second per account, ``INSERT ... ON CONFLICT DO UPDATE SET count = count + 1
RETURNING count``, atomic on both databases. On PostgreSQL the table is UNLOGGED,
so a count costs no WAL fsync; on SQLite it is written on a connection of its own
with ``synchronous=OFF`` for the same reason (a count lost in a power cut lets a
few extra requests through, nothing else). A fixed window lets up to twice the
limit through across a second's boundary; a sliding log would cost a row per
request, and this is a guard against runaway clients, not billing.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import weakref
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from uvox.db import schema as t
from uvox.db.session import write

RC = t.rate_counts


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    count: int
    retry_after: int = 1


def _upsert(dialect: str):
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(RC).values(account_id=sa.bindparam("a"), second=sa.bindparam("s"), count=1)
    return stmt.on_conflict_do_update(
        index_elements=[RC.c.account_id, RC.c.second], set_={"count": RC.c.count + 1}
    ).returning(RC.c.count)


_PG_UPSERT = _upsert("postgresql")
_OLD = sa.delete(RC).where(RC.c.account_id == sa.bindparam("a"), RC.c.second < sa.bindparam("s"))
_sqlite_conns: weakref.WeakKeyDictionary[Engine, tuple[threading.Lock, sqlite3.Connection]] = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()


def take(engine: Engine, account_id: int, per_second: int, *, at: float | None = None) -> Verdict:
    """Count one request of the account in the current second; allowed while the
    count is within ``per_second``."""
    second = int(at if at is not None else time.time())
    if engine.dialect.name == "postgresql":
        with write(engine) as conn:
            # Only an UNLOGGED table is written: its commit has nothing to wait for.
            conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            count = conn.execute(_PG_UPSERT, {"a": account_id, "s": second}).scalar_one()
            if count == 1:  # the account's first request this second: drop its old windows
                conn.execute(_OLD, {"a": account_id, "s": second})
    else:
        count = _sqlite_take(engine, account_id, second)
    return Verdict(count <= per_second, count)


def _sqlite_take(engine: Engine, account_id: int, second: int) -> int:
    entry = _sqlite_conns.get(engine)
    if entry is None:
        with _lock:
            entry = _sqlite_conns.get(engine)
            if entry is None:
                path = sa.engine.make_url(str(engine.url)).database
                conn = sqlite3.connect(path or ":memory:", timeout=10, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA synchronous=OFF")
                conn.execute("PRAGMA busy_timeout=10000")
                entry = _sqlite_conns[engine] = (threading.Lock(), conn)
    lock, conn = entry
    with lock:
        # BEGIN IMMEDIATE: SQLite's write lock, as every writer of the platform takes it.
        conn.execute("BEGIN IMMEDIATE")
        try:
            count = conn.execute(
                "INSERT INTO rate_counts (account_id, second, count) VALUES (?, ?, 1) "
                "ON CONFLICT (account_id, second) DO UPDATE SET count = count + 1 RETURNING count",
                (account_id, second),
            ).fetchone()[0]
            if count == 1:
                conn.execute("DELETE FROM rate_counts WHERE account_id = ? AND second < ?", (account_id, second))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return count
