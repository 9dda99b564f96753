"""Group commit: many requests' writes in one transaction, one fsync.

SQLite has one writer at a time. Letting each request's thread fight for the write
lock means busy-wait sleeps and one fsync per message; instead every write job goes
to one writer thread, which takes all jobs waiting, runs each inside its own
SAVEPOINT (a failing job rolls back alone), commits once, and only then answers the
jobs' callers. A reply still means "durably stored": nobody hears back before the
COMMIT that contains their rows has returned.

On PostgreSQL there are many writers already; jobs run in the thread pool, each in
its own transaction, and row locks do the coordination.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from typing import Any, Callable

from sqlalchemy.engine import Connection, Engine
from starlette.concurrency import run_in_threadpool

from uvox.db.session import write

log = logging.getLogger("uvox.db.writer")

Job = Callable[[Connection], Any]
MAX_BATCH = 512


class Writer:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.grouped = engine.dialect.name == "sqlite"
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._conn: Connection | None = None  # used by the writer thread only
        self._running = False

    async def run(self, job: Job) -> Any:
        """Run ``job(conn)`` in a write transaction; returns its result once committed."""
        if not self.grouped:
            return await run_in_threadpool(self._run_alone, job)
        self._ensure_thread()
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._queue.put((job, loop, fut))
        return await fut

    def _run_alone(self, job: Job) -> Any:
        with write(self.engine) as conn:
            return job(conn)

    def _ensure_thread(self) -> None:
        if self._running:  # a plain flag: Thread.is_alive() takes a lock, on every send
            return
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._loop, name="uvox-writer", daemon=True)
                    self._thread.start()

    def _loop(self) -> None:
        self._running = True
        try:
            self._serve()
        finally:
            self._running = False

    def _serve(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._commit_batch(batch)

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.invalidate()
            except Exception:
                pass

    def _run_group(self, conn: Connection, jobs: list[Job], outcomes: list[tuple[bool, Any]]) -> None:
        """Jobs that share a ``merge_key`` run as one (``run_merged``); if that fails,
        each runs alone, so one bad request cannot fail its neighbours."""
        merge = getattr(type(jobs[0]), "run_merged", None)
        if merge is not None and len(jobs) > 1:
            conn.exec_driver_sql("SAVEPOINT grp")
            try:
                results = merge(conn, jobs)
            except Exception:
                conn.exec_driver_sql("ROLLBACK TO grp")
                conn.exec_driver_sql("RELEASE grp")
            else:
                conn.exec_driver_sql("RELEASE grp")
                outcomes.extend((True, r) for r in results)
                return
        for job in jobs:
            conn.exec_driver_sql("SAVEPOINT job")
            try:
                result = job(conn)
            except BaseException as exc:  # the job's own failure: undo only its writes
                conn.exec_driver_sql("ROLLBACK TO job")
                conn.exec_driver_sql("RELEASE job")
                outcomes.append((False, exc))
                continue
            conn.exec_driver_sql("RELEASE job")
            outcomes.append((True, result))

    def _commit_batch(self, batch: list) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            # The writer keeps its one connection between batches instead of a pool
            # check-out and reset per batch; a failed batch drops it (see below).
            if self._conn is None:
                self._conn = self.engine.connect()
            conn = self._conn
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                jobs = [job for job, _loop, _fut in batch]
                if len(jobs) == 1:
                    outcomes.append((True, jobs[0](conn)))
                else:
                    # consecutive jobs of one kind form a group
                    start = 0
                    for i in range(1, len(jobs) + 1):
                        if i == len(jobs) or getattr(jobs[i], "merge_key", None) != getattr(jobs[start], "merge_key", None) \
                                or getattr(jobs[i], "merge_key", None) is None:
                            self._run_group(conn, jobs[start:i], outcomes)
                            start = i
                conn.exec_driver_sql("COMMIT")
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
        except BaseException as exc:
            log.exception("group commit of %d jobs failed", len(batch))
            outcomes = [(False, exc)] * len(batch)
            self._drop_connection()
        # One wake-up per event loop per batch, not one per job: each
        # call_soon_threadsafe is a write to the loop's wake-up pipe and a loop turn.
        by_loop: dict[asyncio.AbstractEventLoop, list] = {}
        for (ok, value), (_job, loop, fut) in zip(outcomes, batch):
            by_loop.setdefault(loop, []).append((fut, ok, value))
        for loop, settled in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle_all, settled)
            except RuntimeError:  # that loop has closed: nobody is waiting any more
                pass


def _settle_all(settled: list[tuple[asyncio.Future, bool, Any]]) -> None:
    for fut, ok, value in settled:
        if fut.done():
            continue
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)
