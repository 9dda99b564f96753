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

What is remembered lives in the Platform's caches (db/caches.py ``AuthCache``, one
per database; its LISTEN is a db/listen.py ``ListenThread``), reached from the engine.

The trunks call set-up routes to (voice/trunks.py) are remembered by the same
epochs: a trunk change calls :func:`invalidate` too.
"""

from __future__ import annotations

import secrets
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from uvox.db import schema as t
from uvox.db.caches import AUTH_CHANNEL, AUTH_TOKEN_KEY, CACHE_SECONDS, caches_of

__all__ = ["CACHE_SECONDS", "CHANNEL", "TOKEN_KEY", "clear", "epoch", "forget", "get", "invalidate", "put"]
TOKEN_KEY = AUTH_TOKEN_KEY
CHANNEL = AUTH_CHANNEL


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
    caches_of(conn.engine).auth.changed()


def epoch(engine: Engine) -> object | None:
    """What an entry must have been stored under to be good now; None: remember nothing."""
    return caches_of(engine).auth.epoch()


def get(engine: Engine, digest: str) -> Any | None:
    return caches_of(engine).auth.get(digest)


def put(engine: Engine, digest: str, read_in: object | None, value: Any) -> None:
    """Remember ``value``, read after :func:`epoch` returned ``read_in``."""
    caches_of(engine).auth.put(digest, read_in, value)


def forget(engine: Engine, digest: str) -> None:
    caches_of(engine).auth.forget(digest)


def clear(engine: Engine) -> None:
    caches_of(engine).auth.clear()
