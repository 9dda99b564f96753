"""One queue, in the kernel, for every process that writes to a SQLite file.

SQLite has one write lock per database. A writer that finds it taken does not
wait in line: its busy handler sleeps and retries, 1, 2, 5, 10 ... 100 ms apart.
When several processes write continuously (``uvox serve --workers N``), the one
that just committed takes the lock again at once while the others sleep longer
and longer: measured here, p99 of a send went from 22 ms to 1.3 s, and requests
timed out. So before ``BEGIN IMMEDIATE`` every writer of ours takes an exclusive
``flock`` on a file beside the database; the kernel wakes a waiter the moment the
holder lets go, and the SQLite lock is then free. A process that dies lets go of
its flock with it. Other programs writing the file are still handled by SQLite's
own lock and busy timeout, so this is an optimisation, never what keeps data safe.
There is no timeout on the flock: its holder holds SQLite's write lock too (or waits
at most SQLite's busy timeout for it), so nobody could write meanwhile anyway.

No library offers this for SQLite; it is a few lines over ``fcntl.flock``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from collections.abc import Iterator

from sqlalchemy.engine import Engine

log = logging.getLogger("uvox.db")
_held = threading.local()
_unusable: set[str] = set()


def lock_path(engine: Engine) -> str | None:
    """The lock file of a file-backed SQLite database; None for anything else."""
    if engine.dialect.name != "sqlite":
        return None
    db = engine.url.database
    if not db or db == ":memory:" or db.startswith("file:"):
        return None
    return os.path.abspath(os.path.expanduser(db)) + "-writer.lock"


@contextlib.contextmanager
def exclusive(engine: Engine) -> Iterator[None]:
    """Hold the database's writer lock file for the duration of a write transaction.

    A new open file description each time, so that two threads of one process
    exclude each other as well as two processes do. A thread that already holds it
    does not wait for itself: a nested write then meets SQLite's own lock and busy
    timeout, as it would without this file.
    """
    path = lock_path(engine)
    held = getattr(_held, "paths", None)
    if held is None:
        held = _held.paths = set()
    if path is None or path in held:
        yield
        return
    fd = _open(path)
    if fd is None:
        yield
        return
    held.add(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        held.discard(path)
        os.close(fd)  # closing the only descriptor releases the flock


def _open(path: str) -> int | None:
    """The lock file, made like the database: its owner and mode, so that root running
    one `uvox admin` command does not lock the service's own user out of it. If it
    cannot be opened, SQLite's own locking still keeps the data safe: go on without."""
    if path in _unusable:
        return None
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        _unusable.add(path)
        log.warning("cannot open %s (%s): writers of several processes fall back to SQLite's busy wait", path, exc)
        return None
    with contextlib.suppress(OSError):
        db = os.stat(path[: -len("-writer.lock")])
        st = os.fstat(fd)
        if os.geteuid() == 0 and (st.st_uid, st.st_gid) != (db.st_uid, db.st_gid):
            os.fchown(fd, db.st_uid, db.st_gid)
        if st.st_mode & 0o777 != db.st_mode & 0o666:
            os.fchmod(fd, db.st_mode & 0o666)
    return fd
