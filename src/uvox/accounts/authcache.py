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
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from uvox.db import schema as t

log = logging.getLogger(__name__)
CACHE_SECONDS = 30.0
TOKEN_KEY = "auth:generation"
CHANNEL = "uvox_auth"
MAX_ENTRIES = 10_000
_TOKEN = sa.select(t.meta.c.value).where(t.meta.c.key == TOKEN_KEY)


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
        self.engine = engine
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
        while True:
            try:
                with self.engine.raw_connection() as raw:
                    driver = raw.driver_connection
                    driver.autocommit = True
                    driver.execute(f"LISTEN {CHANNEL}")
                    self.bump(listening=True)
                    for _ in driver.notifies():
                        self.bump()
            except Exception as exc:  # the database went away: remember nothing until back
                self.epoch = None
                log.warning("API key cache: not listening for changes (%s); caching nothing meanwhile", exc)
                time.sleep(1.0)


_listeners: dict[int, _Listener] = {}
_listeners_lock = threading.Lock()
_entries: dict[str, tuple[float, object, Any]] = {}


def epoch(engine: Engine) -> object | None:
    """What an entry must have been stored under to be good now; None: remember nothing."""
    if engine.dialect.name == "postgresql":
        listener = _listeners.get(id(engine))
        if listener is None:
            with _listeners_lock:
                listener = _listeners.get(id(engine))
                if listener is None:
                    listener = _listeners[id(engine)] = _Listener(engine)
        return listener.epoch
    with engine.connect() as conn:
        return conn.execute(_TOKEN).scalar() or ""


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
