"""Many rows into one table, in one executemany, with SQLAlchemy's own value conversion.

``conn.execute(insert(table), rows)`` runs every value of every row through the
column type's bind processor (a datetime becomes SQLite's text form, Money becomes
micro-units). In a group commit of a few dozen messages that per-value Python is the
writer thread's largest cost, and the values repeat: one timestamp for the whole
batch, a handful of prices. So we convert each distinct value object once, with the
same processors SQLAlchemy would use, and hand the driver ready parameters for one
short statement.

On PostgreSQL SQLAlchemy would instead render "insertmanyvalues": one INSERT with
a VALUES list of every row, a new long string per batch, which psycopg then parses
for placeholders without its cache (py-spy: most of the writer thread for a batch of
200-recipient sends). One short INSERT given to psycopg's executemany is parsed
once and sent pipelined.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

_Compiled = tuple[str, list[str], list[Any]]  # SQL, bind names, bind processors (or None)
# Module-level on purpose, unlike the Platform's caches (db/caches.py): a memo of
# compiling our own static schema for a dialect, a pure function of its key (dialect,
# table, columns) that reads no rows, so it is the same for every Platform, never
# goes stale and needs no invalidation; bounded by the (table, columns) pairs the
# code inserts. Racing threads at worst compile the same statement twice.
_compiled: dict[tuple[str, str, tuple[str, ...]], _Compiled] = {}


def _statement(conn: Connection, table: sa.Table, keys: tuple[str, ...]) -> _Compiled:
    cache_key = (conn.dialect.name, table.name, keys)
    found = _compiled.get(cache_key)
    if found is not None:
        return found
    hit: _Compiled
    # inline(): no RETURNING of the primary key, which PostgreSQL would add
    compiled = sa.insert(table).inline().compile(dialect=conn.dialect, column_keys=list(keys))
    names = list(compiled.positiontup or compiled.bind_names.values())
    if sorted(names) != sorted(keys):  # a default or a renamed bind: let SQLAlchemy do it
        hit = ("", [], [])
    else:
        procs = [table.c[name].type.dialect_impl(conn.dialect).bind_processor(conn.dialect) for name in names]
        hit = (str(compiled), names, procs)
    _compiled[cache_key] = hit
    return hit


def insert_rows(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys, every column they need given)."""
    if not rows:
        return
    sql = ""
    named = conn.dialect.paramstyle == "pyformat"
    if named or conn.dialect.paramstyle == "qmark":
        sql, names, procs = _statement(conn, table, tuple(rows[0]))
    if not sql:
        conn.execute(sa.insert(table), rows)
        return
    memo: dict[tuple[int, int], Any] = {}  # (column, id(value)): the objects live in rows meanwhile
    params = []
    width = len(names)
    for row in rows:
        if len(row) != width:
            raise ValueError("insert_rows: every row needs the same keys")
        values = []
        for i, name in enumerate(names):
            value = row[name]
            proc = procs[i]
            if proc is not None and value is not None:
                key = (i, id(value))
                done = memo.get(key, memo)
                if done is memo:
                    done = memo[key] = proc(value)
                value = done
            values.append(value)
        params.append(dict(zip(names, values)) if named else tuple(values))
    conn.exec_driver_sql(sql, params)
