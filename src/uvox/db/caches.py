"""What each process remembers of the database, owned by the Platform: no module globals.

A :class:`Caches` belongs to one engine (one database) and is made by the Platform
that opens it (``platform.caches``; Platforms that share an engine share it, which
is right: the same database). The domain functions that use it receive an engine or
a connection, not the Platform, so the Caches is also reachable from the engine
(:func:`caches_of`, one attribute read): two Platforms in one process (tests) never
see each other's entries, and nothing is left behind in a module when one is gone.

- :class:`AuthCache`: who an API key lets in, and values that change with it (the
  enabled trunks), forgotten through the database (accounts/authcache.py says how).
- ``decks``: the rate decks (billing/plans.py), a :class:`Memo`.

Memos of pure functions (``functools.lru_cache`` of numbers, countries, money; the
compiled INSERTs of db/bulk.py) stay in their modules: they depend on nothing a
Platform holds and are the same for every one.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Any

from sqlalchemy.engine import Engine

from uvox.db.listen import ListenThread

#: Entries of the API key cache live at most this long, in case a notification is lost.
CACHE_SECONDS = 30.0
#: The ``meta`` row whose new value tells SQLite processes that keys changed.
AUTH_TOKEN_KEY = "auth:generation"
#: What PostgreSQL processes LISTEN on for the same.
AUTH_CHANNEL = "uvox_auth"
MAX_ENTRIES = 10_000
_ATTRIBUTE = "_uvox_caches"
_attaching = threading.Lock()  # only so that two threads never make two Caches for one engine


class AuthCache:
    """Entries good only in the epoch they were read in (see accounts/authcache.py).

    The epoch on PostgreSQL changes on every ``uvox_auth`` notification and every
    reconnection of a :class:`ListenThread` started by the first :meth:`epoch`, and is
    ``None`` (remember nothing) while it is not listening; on SQLite it is the token
    row itself, read on every call. A hit takes no lock and allocates nothing on
    PostgreSQL.
    """

    def __init__(self, engine: Engine) -> None:
        # Weak: the listener ends once the engine is garbage.
        self._engine = weakref.ref(engine)
        self._postgres = engine.dialect.name == "postgresql"
        self._entries: dict[str, tuple[float, object, Any]] = {}
        self._values: dict[str, tuple[object, Any]] = {}
        self._epoch: int | None = None
        self._counter = 0
        self._lock = threading.Lock()
        self._listener: ListenThread | None = None
        self._sqlite: tuple[threading.Lock, Any] | None = None

    # --- the epoch ---------------------------------------------------------------

    def epoch(self) -> object | None:
        """What an entry must have been stored under to be good now; None: remember nothing."""
        if self._postgres:
            if self._listener is None:
                self._listen()
            return self._epoch
        return self._sqlite_token()

    def _listen(self) -> None:
        with self._lock:
            engine = self._engine()
            if self._listener is not None or engine is None:
                return
            self._listener = ListenThread(
                engine,
                [AUTH_CHANNEL],
                lambda _notifications: self.bump(),
                lambda: self.bump(listening=True),
                on_lost=self._not_listening,
                name="uvox-auth-listen",
                wait_seconds=5.0,
                trouble="API key cache: not listening for changes (%s); caching nothing meanwhile",
                logger=logging.getLogger("uvox.accounts.authcache"),
            ).start()

    def bump(self, listening: bool = False) -> None:
        """A new epoch: everything remembered before is forgotten."""
        with self._lock:
            if self._epoch is not None or listening:
                self._counter += 1
                self._epoch = self._counter

    def _not_listening(self) -> None:
        self._epoch = None

    def _sqlite_token(self) -> str:
        # One DBAPI connection of the pool kept for this one statement: through the
        # engine (a checkout, a Core statement) it cost a third of a request's CPU;
        # raw, a few microseconds. Autocommit (see db/engine.py): each read sees the
        # last commit.
        reader = self._sqlite
        if reader is None:
            with self._lock:
                reader = self._sqlite
                if reader is None:
                    engine = self._engine()
                    if engine is None:
                        return ""
                    reader = self._sqlite = (threading.Lock(), engine.raw_connection())
        lock, raw = reader
        with lock:
            row = raw.cursor().execute("SELECT value FROM meta WHERE key = ?", (AUTH_TOKEN_KEY,)).fetchone()
        return row[0] if row else ""

    # --- entries -------------------------------------------------------------------

    def get(self, key: str) -> Any | None:
        hit = self._entries.get(key)
        if hit is None or hit[0] <= time.monotonic():
            return None
        now_epoch = self.epoch()
        if now_epoch is None or hit[1] != now_epoch:
            return None
        return hit[2]

    def put(self, key: str, read_in: object | None, value: Any) -> None:
        """Remember ``value``, read after :meth:`epoch` returned ``read_in``."""
        if read_in is None:
            return
        if len(self._entries) > MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + CACHE_SECONDS, read_in, value)

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)

    # --- values kept for as long as their epoch, without a time limit --------------

    def recall(self, name: str, epoch: object | None) -> Any | None:
        hit = self._values.get(name)
        if epoch is None or hit is None or hit[0] != epoch:
            return None
        return hit[1]

    def remember(self, name: str, epoch: object | None, value: Any) -> None:
        if epoch is not None:
            self._values[name] = (epoch, value)

    # --- forgetting ------------------------------------------------------------------

    def changed(self) -> None:
        """This process changed who keys let in: forget at once, before the
        notification comes back."""
        self._entries.clear()
        self._values.clear()
        self.bump()

    def clear(self) -> None:
        self._entries.clear()
        self._values.clear()

    def close(self) -> None:
        if self._listener is not None:
            self._listener.stop()
        reader, self._sqlite = self._sqlite, None
        if reader is not None:
            with reader[0]:
                reader[1].close()
        self._epoch = None


class Memo:
    """A dict and the lock its writers take (the readers take none: a dict's get is atomic)."""

    def __init__(self) -> None:
        self.entries: dict[Any, Any] = {}
        self.lock = threading.Lock()

    def clear(self) -> None:
        self.entries.clear()


class TimedValue:
    """One value remembered for a while (a cheap answer to an expensive question)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._hit: tuple[float, Any] | None = None

    def get(self) -> Any | None:
        hit = self._hit
        if hit is None or hit[0] <= time.monotonic():
            return None
        return hit[1]

    def put(self, value: Any) -> None:
        self._hit = (time.monotonic() + self.seconds, value)

    def clear(self) -> None:
        self._hit = None


class Caches:
    """Every cache of one database's rows in this process."""

    def __init__(self, engine: Engine) -> None:
        self.auth = AuthCache(engine)
        self.decks = Memo()

    @classmethod
    def of(cls, engine: Engine) -> Caches:
        """The engine's caches, made on first use (the Platform makes them when it opens)."""
        with _attaching:
            found: Caches | None = engine.__dict__.get(_ATTRIBUTE)
            if found is None:
                found = cls(engine)
                found.attach(engine)
            return found

    def attach(self, engine: Engine) -> None:
        """Make these the caches of ``engine`` too (a second pool on the same database)."""
        setattr(engine, _ATTRIBUTE, self)

    def clear(self) -> None:
        """Forget everything (tests that empty tables behind the services' back)."""
        self.auth.clear()
        self.decks.clear()

    def close(self) -> None:
        self.auth.close()
        self.clear()


def caches_of(engine: Engine) -> Caches:
    """The caches of the database ``engine`` is on (one attribute read once made)."""
    try:
        return engine.__dict__[_ATTRIBUTE]  # type: ignore[no-any-return]
    except KeyError:
        return Caches.of(engine)
