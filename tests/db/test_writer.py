"""The group-commit writer against a real database: what callers of Writer.run see."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import new_database_url
from uvox.config import Settings
from uvox.db.engine import make_engine
from uvox.db.writer import Writer


def _engine(url: str):
    return make_engine(Settings.from_env({"UVOX_DATABASE_URL": url}))


def _run(make_coro):
    """asyncio.run in a thread of its own: an earlier test in this process may have left
    an event loop set on the main thread (Playwright's sync API does)."""
    out: list = []
    t = threading.Thread(target=lambda: out.append(asyncio.run(make_coro())))
    t.start()
    t.join(60)
    assert out, "the writer did not answer within 60 s"
    return out[0]


def test_batches_that_deadlock_on_postgresql_are_run_again_not_failed(tmp_path_factory, pg_databases):
    """Two processes' writers lock two rows in opposite orders. The batches give up
    (lock timeout, or PostgreSQL aborts one as a deadlock); callers must still get
    their results, and each job's writes land once."""
    url = new_database_url("postgresql", tmp_path_factory, pg_databases)
    one, two = _engine(url), _engine(url)
    with one.begin() as c:
        c.exec_driver_sql("CREATE TABLE counters (id integer PRIMARY KEY, n integer NOT NULL)")
        c.exec_driver_sql("INSERT INTO counters VALUES (1, 0), (2, 0)")
    both_hold_one = threading.Barrier(2)

    def job(first: int, second: int):
        runs = []

        def run(conn):
            runs.append(1)
            conn.exec_driver_sql(f"UPDATE counters SET n = n + 1 WHERE id = {first}")
            if len(runs) == 1:
                both_hold_one.wait(10)  # each holds its first row: the next UPDATEs deadlock
            conn.exec_driver_sql(f"UPDATE counters SET n = n + 1 WHERE id = {second}")
            return len(runs)

        return run

    async def main():
        return await asyncio.gather(Writer(one).run(job(1, 2)), Writer(two).run(job(2, 1)))

    try:
        runs = _run(main)
        with one.connect() as c:
            counts = dict(c.execute(sa.text("SELECT id, n FROM counters")).all())
    finally:
        one.dispose()
        two.dispose()
    assert counts == {1: 2, 2: 2}  # both jobs applied, each exactly once
    assert max(runs) >= 2  # rolled back (lock timeout or deadlock) and run again


def test_a_failing_job_fails_alone_in_its_batch(tmp_path_factory, pg_databases):
    for kind in ("sqlite", "postgresql"):
        engine = _engine(new_database_url(kind, tmp_path_factory, pg_databases))
        with engine.begin() as c:
            c.exec_driver_sql("CREATE TABLE t (id integer PRIMARY KEY)")
        writer = Writer(engine)

        def insert(i):
            return lambda conn: conn.exec_driver_sql(f"INSERT INTO t VALUES ({i})").rowcount

        async def main():
            # 3 is inserted twice in one batch: the second fails, its neighbours do not
            return await asyncio.gather(*(writer.run(insert(i)) for i in (1, 2, 3, 3, 4)), return_exceptions=True)  # noqa: B023 (awaited here)

        try:
            out = _run(main)
            with engine.connect() as c:
                ids = sorted(c.execute(sa.text("SELECT id FROM t")).scalars())
        finally:
            engine.dispose()
        assert out[:3] == [1, 1, 1] and out[4] == 1, (kind, out)
        assert isinstance(out[3], sa.exc.IntegrityError), (kind, out)
        assert ids == [1, 2, 3, 4], kind


def test_a_row_locked_elsewhere_does_not_hold_up_other_accounts_sends(platform, http, make_customer):
    """PostgreSQL: an operator's open transaction (or a long top-up in another process)
    holds account A's row. A's send waits for it; B's send must not wait behind A's."""
    if platform.engine.dialect.name != "postgresql":
        pytest.skip("on SQLite every write waits for the one write lock, by design")
    a, b = make_customer("1"), make_customer("1")
    send = "/api/get-api/v1/sms-api"
    with ThreadPoolExecutor(2) as pool:
        with platform.engine.connect() as other:
            other.execute(sa.text("SELECT id FROM accounts WHERE id = :id FOR UPDATE"), {"id": a.id})
            a_reply = pool.submit(http.post, send, data={**a.auth, "to": "+13055550001", "text": "A waits"})
            with httpx.Client(base_url=str(http.base_url), timeout=30) as c2:
                b_reply = pool.submit(c2.post, send, data={**b.auth, "to": "+13055550002", "text": "B goes"})
                assert b_reply.result(30).json()["code"] == "005"
            assert not a_reply.done()  # B was answered while A's row was still locked
            other.rollback()
        assert a_reply.result(30).json()["code"] == "005"
    with platform.engine.connect() as c:
        balances = dict(c.execute(sa.text("SELECT id, balance FROM accounts")).all())
    assert balances[a.id] == balances[b.id] == Decimal("0.992")  # 1 - 0.0080, each charged once
