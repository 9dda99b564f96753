"""Transactions.

``write(engine)`` opens a transaction that will write. On SQLite it begins with
``BEGIN IMMEDIATE`` so that the write lock is taken up front: a conditional debit
(read balance, write charge) can then never interleave with another writer. On
PostgreSQL it is an ordinary transaction; row locks and conditional UPDATEs do the
rest.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Connection, Engine

from uvox.db.writelock import exclusive


@contextmanager
def write(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            with exclusive(engine):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.exec_driver_sql("ROLLBACK")
                    raise
                else:
                    conn.exec_driver_sql("COMMIT")
        else:
            with conn.begin():
                yield conn


@contextmanager
def read(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN")
            try:
                yield conn
            finally:
                conn.exec_driver_sql("ROLLBACK")
        else:
            with conn.begin():
                yield conn
