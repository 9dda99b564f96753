"""Who may use the API, remembered per process and forgotten through the database.

Authentication is on every request and the key table rarely changes, so each
process remembers which account a key belongs to. Whatever may change who a key
lets in (a key revoked, an account disabled, a plan changed) calls
:func:`invalidate` in its own transaction, from whichever process or machine, and
the next request of every process sees it:

- PostgreSQL: :func:`invalidate` NOTIFYs ``uvox_auth``; each process LISTENs on a
  connection of its own and starts a new epoch on every notification. An entry is
  good only in the epoch it was read in, and only while the listener is connected
  (otherwise nothing is cached). No query on the request path.
- SQLite (one machine): :func:`invalidate` writes a new token in ``meta``; a request
  reads that one row (microseconds on a local file) and uses an entry only if it was
  read under the same token.

``CACHE_SECONDS`` still bounds an entry's life, in case a notification is lost.

The trunks call set-up routes to (voice/trunks.py) are remembered by the same
epochs: a trunk change calls :func:`invalidate` too.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import weakref
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from uvox.db import schema as t
from uvox.db.engine import autocommit_connection

log = logging.getLogger(__name__)
CACHE_SECONDS = 30.0
TOKEN_KEY = "auth:generation"
CHANNEL = "uvox_auth"
MAX_ENTRIES = 10_000


def invalidate(conn: Connection) -> None:
    """Make every process forget what it remembered (inside the change's transaction:
    the notification is delivered when it commits)."""
    token = secrets.token_hex(8)
    dialect = conn.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as upsert
    else:
        from sqlalchemy.dialects.sqlite import insert as upsert
    stmt = upsert(t.meta).values(key=TOKEN_KEY, value=token)
    conn.execute(stmt.on_conflict_do_update(index_elements=[t.meta.c.key], set_={"value": token}))
    if dialect == "postgresql":
        conn.execute(sa.text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})
    # This process's own change is seen at once, before its notification comes back.
    _entries.clear()
    for listener in list(_listeners.values()):
        listener.bump()


class _Listener:
    """LISTEN uvox_auth on a connection of its own; ``epoch`` changes on every
    notification and every reconnection, and is ``None`` while not listening."""

    def __init__(self, engine: Engine) -> None:
        # Weak: the thread ends (within 5 s) once the engine is gone, as in tests
        # that open and close many platforms.
        self._engine = weakref.ref(engine)
        self.epoch: int | None = None
        self._counter = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="uvox-auth-listen", daemon=True)
        self._thread.start()

    def bump(self, listening: bool = False) -> None:
        with self._lock:
            if self.epoch is not None or listening:
                self._counter += 1
                self.epoch = self._counter

    def _run(self) -> None:
        warned = False
        while (engine := self._engine()) is not None:
            try:
                with autocommit_connection(engine) as driver:
                    del engine
                    driver.execute(f"LISTEN {CHANNEL}")
                    self.bump(listening=True)
                    warned = False
                    while self._engine() is not None:
                        for _ in driver.notifies(timeout=5.0):
                            self.bump()
                return
            except Exception as exc:  # the database went away: remember nothing until back
                self.epoch = None
                if not warned:  # once an outage, not every second of it
                    log.warning("API key cache: not listening for changes (%s); caching nothing meanwhile", exc)
                    warned = True
                time.sleep(1.0)


_listeners: weakref.WeakKeyDictionary[Engine, _Listener] = weakref.WeakKeyDictionary()
_listeners_lock = threading.Lock()
_entries: dict[str, tuple[float, object, Any]] = {}


def epoch(engine: Engine) -> object | None:
    """What an entry must have been stored under to be good now; None: remember nothing."""
    if engine.dialect.name == "postgresql":
        listener = _listeners.get(engine)
        if listener is None:
            with _listeners_lock:
                listener = _listeners.get(engine)
                if listener is None:
                    listener = _listeners[engine] = _Listener(engine)
        return listener.epoch
    return _sqlite_token(engine)


_sqlite_readers: weakref.WeakKeyDictionary[Engine, tuple[threading.Lock, Any]] = weakref.WeakKeyDictionary()


def _sqlite_token(engine: Engine) -> str:
    # One DBAPI connection of the pool kept for this one statement: through the
    # engine (a checkout, a Core statement) it cost a third of a request's CPU; raw,
    # a few microseconds. Autocommit (see db/engine.py): each read sees the last commit.
    reader = _sqlite_readers.get(engine)
    if reader is None:
        with _listeners_lock:
            reader = _sqlite_readers.get(engine)
            if reader is None:
                reader = _sqlite_readers[engine] = (threading.Lock(), engine.raw_connection())
    lock, raw = reader
    with lock:
        row = raw.cursor().execute("SELECT value FROM meta WHERE key = ?", (TOKEN_KEY,)).fetchone()
    return row[0] if row else ""


def get(engine: Engine, digest: str) -> Any | None:
    hit = _entries.get(digest)
    if hit is None or hit[0] <= time.monotonic():
        return None
    now_epoch = epoch(engine)
    if now_epoch is None or hit[1] != now_epoch:
        return None
    return hit[2]


def put(digest: str, read_in: object | None, value: Any) -> None:
    """Remember ``value``, read after :func:`epoch` returned ``read_in``."""
    if read_in is None:
        return
    if len(_entries) > MAX_ENTRIES:
        _entries.clear()
    _entries[digest] = (time.monotonic() + CACHE_SECONDS, read_in, value)


def forget(digest: str) -> None:
    _entries.pop(digest, None)


def clear() -> None:
    _entries.clear()
