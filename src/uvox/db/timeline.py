"""Counting by UTC day, the same way on SQLite and PostgreSQL, with the indexes that exist.

The console's charts (messages, spend, minutes per day over 30 days) group rows by
the UTC day of a timestamp. Two things differ between the backends:

- the day of a timestamp: SQLite stores ``DateTime`` as UTC text
  (``2026-12-05 13:02:11.123456``), whose first ten characters are the day;
  PostgreSQL stores ``timestamptz``, whose day depends on the session's time zone
  unless it is asked in UTC. :class:`utc_day` is one SQL expression that compiles
  to each (SQLAlchemy's documented way to add a construct per dialect);
- no table has an index on its time column (every insert would pay for one on the
  hottest table), but ids are handed out in time order: a row's ``created_at`` is
  the time of the transaction that inserted it. :func:`first_id_since` finds, by
  a binary search on the primary key, an id below which every row is older than
  the window, so a query for the last 30 days reads
  ``WHERE account_id = :a AND id >= :bound`` through the ``(account_id, id)``
  index, or a primary-key range for all accounts, however long the history.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from uvox.clock import aware, now

#: Rows written out of id order by concurrent transactions are at most seconds
#: apart; the bound is looked up this much before the window, and the window
#: itself is still a condition on the time column.
SLACK = timedelta(hours=1)


class utc_day(FunctionElement[Any]):  # lower case: used like a SQL function
    """The UTC day of a timestamp column: ``YYYY-MM-DD`` text on SQLite, a ``date`` on
    PostgreSQL (formatting each row as text there took half the query's time); read
    the values with :func:`day_key`."""

    type = sa.String()
    inherit_cache = True
    name = "utc_day"


@compiles(utc_day)
def _utc_day_sqlite(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLAlchemy writes SQLite datetimes as ISO text, in UTC everywhere in UVox.
    return f"substr({compiler.process(element.clauses, **kw)}, 1, 10)"


@compiles(utc_day, "postgresql")
def _utc_day_postgresql(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(({compiler.process(element.clauses, **kw)}) AT TIME ZONE 'UTC' AS DATE)"


def day_key(value: Any) -> str:
    """A :class:`utc_day` value as ``YYYY-MM-DD``, from either backend."""
    return value.isoformat() if isinstance(value, date) else str(value)[:10]


def window(days: int, today: date | None = None) -> tuple[list[date], datetime]:
    """The last ``days`` UTC days, oldest first (today last), and the start of the first."""
    last = today or now().date()
    first = last - timedelta(days=days - 1)
    return [first + timedelta(days=i) for i in range(days)], datetime.combine(first, time.min, UTC)


def first_id_since(conn: Connection, table: sa.Table, column: sa.Column[Any], since: datetime) -> int:
    """An id such that every row of ``table`` whose ``column`` is at or after
    ``since`` has an id at least this (rows before it may still be in the window's
    slack: the caller keeps its condition on ``column``).

    About 30 primary-key lookups for a billion ids, against a scan of the rows."""
    pk = table.c.id
    # Two statements: SQLite answers min() or max() alone from the key, both at once by a scan.
    low = conn.execute(sa.select(sa.func.min(pk))).scalar()
    high = conn.execute(sa.select(sa.func.max(pk))).scalar()
    if low is None or high is None:
        return 0
    target = since - SLACK
    probe = sa.select(pk, column).where(pk >= sa.bindparam("at")).order_by(pk).limit(1)
    # Invariant: rows from ``target`` on have ids >= low, and high + 1 bounds the answer.
    high += 1
    while low < high:
        mid = (low + high) // 2
        row = conn.execute(probe, {"at": mid}).first()
        if row is None or aware(row[1]) >= target:
            high = mid
        else:
            low = row[0] + 1
    return int(low)
