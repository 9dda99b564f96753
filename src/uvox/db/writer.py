"""Group commit: many requests' writes in one transaction, one fsync.

SQLite has one writer at a time. Letting each request's thread fight for the write
lock means busy-wait sleeps and one fsync per message; instead every write job goes
to one writer thread, which takes all jobs waiting, runs each inside its own
SAVEPOINT (a failing job rolls back alone), commits once, and only then answers the
jobs' callers. A reply still means "durably stored": nobody hears back before the
COMMIT that contains their rows has returned.

PostgreSQL has many writers, but one account's sends all update that account's
balance row, and its lock is held until COMMIT: one transaction per request made
a busy account's sends queue on that row one fsync at a time (measured: 600 sends/s,
p50 48 ms). So PostgreSQL batches the same way, one writer thread per process; the
processes and machines beside it are coordinated by row locks as before. One
writer thread must not wait behind one locked row (a long top-up, a refund in another
process, an operator's open psql session) while every other account's sends queue
behind it: its transactions give up on a row lock after LOCK_TIMEOUT, and the jobs
that met the lock are run again, each in its own transaction, on a small pool of
threads where waiting harms nobody else. A batch PostgreSQL aborts as a deadlock or
serialization failure, or that finds its connection closed before COMMIT, is rolled
back and run again whole, and at last job by job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sqlalchemy.engine import Connection, Engine, RootTransaction
from sqlalchemy.exc import DBAPIError

from uvox.db.session import write
from uvox.db.writelock import exclusive

log = logging.getLogger("uvox.db.writer")

Job = Callable[[Connection], Any]
#: What became of a job: (True, its result), (False, its exception), or (_DEFER, None).
Outcome = tuple[bool | str, Any]
#: A job as queued: the job, the loop of its caller and the future it waits on.
Queued = tuple[Job, asyncio.AbstractEventLoop, "asyncio.Future[Any]"]
MAX_BATCH = 512
#: How many times a batch that PostgreSQL aborted (deadlock, serialization, lost
#: connection) is run again whole before its jobs run one transaction each.
BATCH_RETRIES = 2
_RETRY_SQLSTATES = {"40P01", "40001"}  # deadlock_detected, serialization_failure
#: PostgreSQL: how long a batch waits for a row lock before its waiting jobs are
#: handed to threads of their own (a batch normally holds its locks a few ms).
LOCK_TIMEOUT = "500ms"
_DEFER = "defer"  # an outcome: run this job alone, off the writer thread


class _Retry(Exception):
    """A job hit an error that aborts the whole batch, not just the job."""


class _Busy(Exception):
    """The batch's only job waited too long for a row lock."""


def _lock_busy(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) == "55P03"  # lock_not_available


def _retryable(exc: BaseException) -> bool:
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    return getattr(exc.orig, "sqlstate", None) in _RETRY_SQLSTATES


class Writer:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._queue: queue.SimpleQueue[Queued] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._conn: Connection | None = None  # used by the writer thread only
        self._running = False
        self._busy = False  # this transaction met a lock it could not get in time
        self._alone_pool: ThreadPoolExecutor | None = None

    async def run(self, job: Job) -> Any:
        """Run ``job(conn)`` in a write transaction; returns its result once committed.

        A job may run more than once (its batch retried after PostgreSQL aborted
        it): it must do nothing but database work on ``conn``.
        """
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

    def _run_group(self, conn: Connection, jobs: list[Job], outcomes: list[Outcome]) -> None:
        """Jobs that share a ``merge_key`` run as one (``run_merged``); if that fails,
        each runs alone, so one bad request cannot fail its neighbours."""
        merge = getattr(type(jobs[0]), "run_merged", None)
        if merge is not None and len(jobs) > 1:
            conn.exec_driver_sql("SAVEPOINT grp")
            try:
                results = merge(conn, jobs)
            except Exception as exc:
                if _retryable(exc):
                    raise _Retry() from exc
                conn.exec_driver_sql("ROLLBACK TO grp")
                conn.exec_driver_sql("RELEASE grp")
                if _lock_busy(exc):
                    self._busy = True
                    outcomes.extend((_DEFER, None) for _ in jobs)
                    return
            else:
                conn.exec_driver_sql("RELEASE grp")
                outcomes.extend((True, r) for r in results)
                return
        for job in jobs:
            if self._busy:  # a row lock is held elsewhere: the rest would wait for it too
                outcomes.append((_DEFER, None))
                continue
            conn.exec_driver_sql("SAVEPOINT job")
            try:
                result = job(conn)
            except BaseException as exc:  # the job's own failure: undo only its writes
                if _retryable(exc):
                    raise _Retry() from exc
                conn.exec_driver_sql("ROLLBACK TO job")
                conn.exec_driver_sql("RELEASE job")
                if _lock_busy(exc):
                    self._busy = True
                    outcomes.append((_DEFER, None))
                else:
                    outcomes.append((False, exc))
                continue
            conn.exec_driver_sql("RELEASE job")
            outcomes.append((True, result))

    def _transaction(self, jobs: list[Job]) -> list[Outcome]:
        """All jobs in one transaction, each in a savepoint; their outcomes once committed."""
        outcomes: list[Outcome] = []
        # The writer keeps its one connection between batches instead of a pool
        # check-out and reset per batch; a failed batch drops it.
        if self._conn is None:
            self._conn = self.engine.connect()
        conn = self._conn
        self._busy = False
        with exclusive(self.engine):  # see uvox.db.writelock (SQLite only)
            try:
                trans = self._begin(conn)
            except BaseException as exc:
                if _retryable(exc):  # a kept connection the server has since closed
                    raise _Retry() from exc
                raise
            try:
                if len(jobs) == 1:
                    try:
                        outcomes.append((True, jobs[0](conn)))
                    except BaseException as exc:
                        if _lock_busy(exc):
                            raise _Busy() from exc
                        raise  # a retryable one becomes _Retry below
                else:
                    # consecutive jobs of one kind form a group
                    start = 0
                    for i in range(1, len(jobs) + 1):
                        if (
                            i == len(jobs)
                            or getattr(jobs[i], "merge_key", None) != getattr(jobs[start], "merge_key", None)
                            or getattr(jobs[i], "merge_key", None) is None
                        ):
                            self._run_group(conn, jobs[start:i], outcomes)
                            start = i
            except BaseException as exc:
                with contextlib.suppress(Exception):
                    conn.exec_driver_sql("ROLLBACK") if trans is None else trans.rollback()
                if not isinstance(exc, (_Retry, _Busy)) and _retryable(exc):
                    raise _Retry() from exc  # e.g. the connection closed under a SAVEPOINT
                raise
            # Never retried: a COMMIT whose answer was lost may have happened.
            conn.exec_driver_sql("COMMIT") if trans is None else trans.commit()
        return outcomes

    def _begin(self, conn: Connection) -> RootTransaction | None:
        """SQLite: BEGIN IMMEDIATE by hand (pysqlite's own BEGIN is off, see
        uvox.db.engine). PostgreSQL: SQLAlchemy's transaction."""
        if self.engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            return None
        trans = conn.begin()
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        return trans

    def _alone_outcome(self, job: Job) -> Outcome:
        """``job`` in a transaction of its own; one PostgreSQL aborts as a deadlock is run again."""
        for attempt in range(BATCH_RETRIES + 2):
            try:
                return True, self._run_alone(job)
            except BaseException as exc:
                if attempt <= BATCH_RETRIES and _retryable(exc):
                    continue
                return False, exc
        raise AssertionError("unreachable")

    def _run_elsewhere(self, job: Job, loop: asyncio.AbstractEventLoop, fut: asyncio.Future[Any]) -> None:
        """Run a job that met a busy row lock in its own transaction, on another thread."""
        if self._alone_pool is None:
            self._alone_pool = ThreadPoolExecutor(4, thread_name_prefix="uvox-writer-alone")

        def done(f: Future[Outcome]) -> None:
            ok, value = f.result()
            with contextlib.suppress(RuntimeError):  # that loop has closed
                loop.call_soon_threadsafe(_settle_all, [(fut, ok, value)])

        self._alone_pool.submit(self._alone_outcome, job).add_done_callback(done)

    def _commit_batch(self, batch: list[Queued]) -> None:
        jobs = [job for job, _loop, _fut in batch]
        outcomes: list[Outcome] | None = None
        for attempt in range(BATCH_RETRIES + 1):
            try:
                outcomes = self._transaction(jobs)
                break
            except _Busy:
                outcomes = [(_DEFER, None)]
                break
            except _Retry as exc:
                log.warning(
                    "group commit of %d jobs aborted by the database (%s); %s",
                    len(jobs),
                    _describe(exc.__cause__),
                    "running it again" if attempt < BATCH_RETRIES else "running its jobs one by one",
                )
                self._drop_connection()
            except BaseException as exc:
                log.exception("group commit of %d jobs failed", len(jobs))
                outcomes = [(False, exc)] * len(jobs)
                self._drop_connection()
                break
        if outcomes is None:
            outcomes = [self._alone_outcome(job) for job in jobs]
        # One wake-up per event loop per batch, not one per job: each
        # call_soon_threadsafe is a write to the loop's wake-up pipe and a loop turn.
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool | str, Any]]] = {}
        for (ok, value), item in zip(outcomes, batch):
            if ok is _DEFER:
                self._run_elsewhere(*item)
                continue
            _job, loop, fut = item
            by_loop.setdefault(loop, []).append((fut, ok, value))
        for loop, settled in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle_all, settled)
            except RuntimeError:  # that loop has closed: nobody is waiting any more
                pass


def _describe(exc: BaseException | None) -> str:
    """An error without its SQL parameters (phone numbers, texts) for the log."""
    if isinstance(exc, DBAPIError):
        return f"{type(exc.orig).__name__} (SQLSTATE {getattr(exc.orig, 'sqlstate', None)})"
    return type(exc).__name__


def _settle_all(settled: list[tuple[asyncio.Future[Any], bool | str, Any]]) -> None:
    for fut, ok, value in settled:
        if fut.done():
            continue
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)
