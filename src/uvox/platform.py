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


@dataclass
class Platform:
    settings: Settings
    engine: Engine
    queued: QueuedSignal = field(default_factory=QueuedSignal)

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
        return autocommit_engine(self.engine, self.settings.db_pool_size)

    def close(self) -> None:
        if "calls_engine" in self.__dict__ and self.calls_engine is not self.engine:
            self.calls_engine.dispose()
        self.engine.dispose()
