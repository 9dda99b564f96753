"""The running platform's shared parts: settings, database engine, instance secret.

One object built at start-up and handed to the API, the portal, the CLI and the
dispatcher, so that none of them reads configuration or opens engines on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy.engine import Engine

from uvox.config import Settings
from uvox.db.caches import Caches, TimedValue
from uvox.db.engine import autocommit_engine, make_engine
from uvox.db.migrate import instance_secret, upgrade
from uvox.db.writer import Writer


class QueuedSignal:
    """Who to tell, in this process, that a transaction has just queued messages.

    The API, the portal and the operator's money actions call :meth:`notify` after
    they commit; an in-process dispatcher subscribes its wake-up, and on PostgreSQL
    the app subscribes the announcer that tells the dispatchers of other processes
    (dispatch/wake.py). Owned by the Platform rather than a module, so two platforms
    in one process (tests) do not wake each other's dispatchers and nothing is left
    subscribed after a platform is gone.
    """

    def __init__(self) -> None:
        self._listeners: list[Callable[[], None]] = []

    def subscribe(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def notify(self) -> None:
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:  # a sleepy dispatcher must never fail a send
                pass


#: How long the portal trusts its answer to "is the SMSC simulator a route?".
SIMULATOR_ROUTE_SECONDS = 2.0


@dataclass
class Platform:
    settings: Settings
    engine: Engine
    queued: QueuedSignal = field(default_factory=QueuedSignal)
    #: What this process remembers of the database (db/caches.py): the API keys,
    #: the enabled trunks, the rate decks. Shared with another Platform only on the
    #: same engine (tests that change a setting), i.e. the same database.
    caches: Caches = field(init=False)
    #: The portal's banner question (portal/web.simulator_route), which depends on
    #: this Platform's settings: its own, even beside another on the same engine.
    simulator_route: TimedValue = field(init=False)

    def __post_init__(self) -> None:
        self.caches = Caches.of(self.engine)
        self.simulator_route = TimedValue(SIMULATOR_ROUTE_SECONDS)

    @classmethod
    def open(cls, settings: Settings, migrate: bool = False) -> Platform:
        engine = make_engine(settings)
        if migrate:
            upgrade(engine, secret_key=settings.secret_key)
        return cls(settings, engine)

    @cached_property
    def writer(self) -> Writer:
        return Writer(self.engine)

    @cached_property
    def secret(self) -> bytes:
        return instance_secret(self.engine, self.settings.secret_key)

    @cached_property
    def calls_engine(self) -> Engine:
        """The pool Kamailio's call authorizations use (db.engine.autocommit_engine);
        opened by the first call or ``app``'s start-up, not by every command."""
        engine = autocommit_engine(self.engine, self.settings.db_pool_size)
        self.caches.attach(engine)  # the trunks a call set-up reads through it are this database's
        return engine

    def close(self) -> None:
        self.caches.close()
        if "calls_engine" in self.__dict__ and self.calls_engine is not self.engine:
            self.calls_engine.dispose()
        self.engine.dispose()
