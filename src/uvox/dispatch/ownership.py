"""Who holds a connector's SMPP bind: exactly one dispatcher at a time.

PostgreSQL: a session-level advisory lock per connector, taken on a connection the
dispatcher keeps open. If the dispatcher dies (even by SIGKILL) its connection
closes and PostgreSQL frees the lock at once, so another worker takes over within
one management tick. The same connection's ``application_name`` lets dispatchers
count each other to share connectors out fairly.

Whether a connector is bound (up) is published in the ``meta`` table as
``connector_up:<name>`` with a timestamp, so every worker routes around a
connector that is down wherever it is held.

SQLite: one dispatcher per database by design (the in-process one of ``uvox
serve``), so it simply holds everything.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import uuid
import zlib
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from uvox.clock import aware, now
from uvox.db import schema as t

log = logging.getLogger("uvox.dispatch")

_LOCK_NS = 0x55_44_53  # "UDS": uvox dispatch, first key of the two-int advisory lock
APP_NAME = "uvox-dispatch"
UP_PREFIX = "connector_up:"
#: A published "bound" older than this is not believed.
UP_FRESH = timedelta(seconds=10)


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _key(name: str) -> int:
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def _gone(owner: str) -> bool:
    """Whether a dispatcher id (host:pid:nonce) names a process of this machine that
    no longer exists. SQLite is one machine's database, so the holder of its lease is
    normally here: a restart after a SIGKILL then takes the lease at once instead of
    waiting LEASE out. Another host's id, or a pid that exists (even reused by some
    other program), counts as alive: the lease then runs out as before."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False  # this process: a dispatcher of ours that stopped, not a dead one
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class LocalOwnership:
    """SQLite: one dispatcher per database, enforced by a lease row in ``meta``.

    ``uvox serve`` dispatches by default; an operator who also starts ``uvox
    worker`` on the same SQLite file would otherwise send everything twice. The
    lease (renewed every management round, stale after ``LEASE``) makes the second
    one wait, idle, and take over only when the first stops or dies: at once when
    its process is gone from this machine (``_gone``), else after ``LEASE``.
    """

    LEASE = timedelta(seconds=10)
    KEY = "dispatcher_lease"

    def __init__(self, engine: Engine, worker_id: str) -> None:
        self.engine = engine
        self.worker_id = worker_id
        self.holding = False
        self._warned = False

    def open(self) -> None:
        pass

    def close(self) -> None:
        if self.holding:
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        sa.delete(t.meta).where(t.meta.c.key == self.KEY, t.meta.c.value.like(f'%"{self.worker_id}"%'))
                    )
            except Exception:
                pass
        self.holding = False

    def healthy(self) -> bool:
        """Renew (or take) the lease; False while another live dispatcher holds it."""
        from uvox.db.session import write
        from uvox.dispatch import claims

        stamp = now()
        value = json.dumps({"owner": self.worker_id, "at": stamp.isoformat()})
        try:
            with write(self.engine) as conn:
                row = conn.execute(sa.select(t.meta.c.value).where(t.meta.c.key == self.KEY)).first()
                mine = free = False
                if row is None:
                    free = True
                else:
                    try:
                        d = json.loads(row.value)
                        mine = d.get("owner") == self.worker_id
                        from datetime import datetime

                        free = aware(datetime.fromisoformat(d["at"])) < stamp - self.LEASE or _gone(
                            str(d.get("owner") or "")
                        )
                    except (ValueError, KeyError, TypeError):
                        free = True
                if mine or free:
                    if row is None:
                        conn.execute(sa.insert(t.meta).values(key=self.KEY, value=value))
                    else:
                        conn.execute(sa.update(t.meta).where(t.meta.c.key == self.KEY).values(value=value))
        except Exception:
            log.exception("dispatch: cannot renew the dispatcher lease")
            return self.holding
        was = self.holding
        self.holding = mine or free
        if self.holding and not was:
            # Whatever a previous dispatcher left half-way is ours now.
            claims.requeue_submitting(self.engine, None)
        if not self.holding and not self._warned:
            self._warned = True
            log.warning(
                "dispatch: another dispatcher holds this SQLite database (%s); waiting. "
                "On SQLite run either `uvox serve` (dispatcher inside) or `uvox worker`, not both; "
                "use PostgreSQL for several workers.",
                row.value if row else "?",
            )
        return self.holding or not was

    def try_acquire(self, name: str) -> bool:
        return self.holding

    def release(self, name: str) -> None:
        pass

    def live_dispatchers(self) -> int:
        return 1

    def alive(self, worker_id: str) -> bool:
        """Never asked: one dispatcher per SQLite database, so no other one's binds to respect."""
        return False


class PgOwnership:
    def __init__(self, engine: Engine, worker_id: str) -> None:
        self.engine = engine
        self.worker_id = worker_id
        self._conn: Connection | None = None
        # A connection of its own, outside the pool, in autocommit: its life is the lease,
        # and closing it really disconnects (a pooled one would keep our locks and name).
        self._own_engine = sa.create_engine(engine.url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")

    def open(self) -> None:
        self._conn = self._own_engine.connect()
        self._conn.execute(
            sa.text("SELECT set_config('application_name', :n, false)"), {"n": f"{APP_NAME} {self.worker_id}"[:63]}
        )

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(sa.text("SELECT pg_advisory_unlock_all()"))
                self._conn.close()
            except Exception:
                pass
            self._conn = None

    def _lock_conn(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("dispatch: the lock connection is not open")
        return self._conn

    def healthy(self) -> bool:
        """False when the lock connection is gone: every lock it held is gone with it."""
        try:
            self._lock_conn().execute(sa.text("SELECT 1"))
            return True
        except Exception:
            log.error("dispatch: lost the database connection holding connector locks")
            try:
                self._lock_conn().close()
            except Exception:
                pass
            self.open()
            return False

    def try_acquire(self, name: str) -> bool:
        return bool(
            self._lock_conn()
            .execute(sa.text("SELECT pg_try_advisory_lock(:ns, :k)"), {"ns": _LOCK_NS, "k": _key(name)})
            .scalar()
        )

    def release(self, name: str) -> None:
        self._lock_conn().execute(sa.text("SELECT pg_advisory_unlock(:ns, :k)"), {"ns": _LOCK_NS, "k": _key(name)})

    def alive(self, worker_id: str) -> bool:
        """Whether that dispatcher is connected to the database (its lock connection
        carries its id in application_name, see open())."""
        return bool(
            self._lock_conn()
            .execute(
                sa.text("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name = :n"),
                {"n": f"{APP_NAME} {worker_id}"[:63]},
            )
            .first()
        )

    def live_dispatchers(self) -> int:
        n = (
            self._lock_conn()
            .execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND application_name LIKE :p"
                ),
                {"p": APP_NAME + " %"},
            )
            .scalar()
        )
        return max(1, int(n or 1))


def make(engine: Engine, worker_id: str) -> LocalOwnership | PgOwnership:
    if engine.dialect.name == "postgresql":
        return PgOwnership(engine, worker_id)
    return LocalOwnership(engine, worker_id)


def fair_share(total: int, dispatchers: int) -> int:
    return max(1, math.ceil(total / max(1, dispatchers)))


# ---------------------------------------------------------------- up/down, shared


def publish(engine: Engine, states: dict[str, bool], worker_id: str) -> None:
    """Record which of our connectors are bound, for the other workers' routing."""
    if not states:
        return
    stamp = now()
    M = t.meta
    with engine.begin() as conn:
        for name, bound in states.items():
            value = json.dumps({"bound": bound, "at": stamp.isoformat(), "owner": worker_id})
            key = UP_PREFIX + name
            done = conn.execute(sa.update(M).where(M.c.key == key).values(value=value)).rowcount
            if not done:
                try:
                    with conn.begin_nested():
                        conn.execute(sa.insert(M).values(key=key, value=value))
                except sa.exc.IntegrityError:
                    conn.execute(sa.update(M).where(M.c.key == key).values(value=value))


def read_up(engine: Engine) -> set[str]:
    """Connectors some worker has recently reported bound."""
    return set(read_owners(engine))


def read_owners(engine: Engine) -> dict[str, str]:
    """Connectors some worker has recently reported bound, and that worker's id."""
    M = t.meta
    cutoff = now() - UP_FRESH
    up: dict[str, str] = {}
    with engine.connect() as conn:
        for key, value in conn.execute(sa.select(M.c.key, M.c.value).where(M.c.key.like(UP_PREFIX + "%"))):
            try:
                d = json.loads(value)
                from datetime import datetime

                at = aware(datetime.fromisoformat(d["at"]))
            except (ValueError, KeyError, TypeError):
                continue
            if d.get("bound") and at >= cutoff:
                up[key[len(UP_PREFIX) :]] = str(d.get("owner") or "")
    return up
