"""One thread that LISTENs on PostgreSQL channels and calls back, whatever happens to its connection;
and what it rests on, a thread that keeps a connection of its own (:class:`ConnectionThread`).

Used by the API key cache (accounts/authcache.py through db/caches.py: ``uvox_auth``),
the dispatcher's wake-up (dispatch/wake.py: ``uvox_queued``) and the call settler
(voice/hooks.py: ``uvox_cdr``), which each had a thread and a reconnect loop of their own.

:class:`ListenThread` keeps a dedicated driver connection in autocommit
(db.engine.autocommit_connection: thrown away afterwards, never given back to the
pool), sends ``LISTEN`` for its channels, and waits on the connection's socket with
``select`` and a timeout (and on a pipe of its own, so that :meth:`stop` is at once).

- ``on_notify(notifications)``: once per wake-up, with every notification that came
  (psycopg ``Notify`` objects: ``channel``, ``payload``, ``pid``); with
  ``coalesce_seconds``, after waiting that long for more.
- ``on_timeout()``: a wait of ``wait_seconds`` ended with no notification (a poll).
- ``on_reconnect()``: after ``LISTEN`` on every connection, the first one included.
  Whatever was notified while not listening is lost, so the user treats everything
  as changed here.
- ``on_lost()``: the connection is lost (or a callback failed), and when the thread ends.

A lost connection (or a failing callback) is reconnected after ``reconnect_seconds``,
doubled on every failed try up to ``max_reconnect_seconds``, with one warning an
outage. The thread ends on :meth:`stop` or once its engine is garbage (it keeps only a
weak reference, so that tests which open and close many platforms leave no threads).
Callbacks run on the thread; they must not block for long.

That connecting again, its backoff and its one warning are :class:`ConnectionThread`'s,
which the dispatcher's NOTIFY sender (dispatch/wake.py's ``Announcer``) uses too.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any, Self

from sqlalchemy.engine import Engine

from uvox.db.engine import autocommit_connection

log = logging.getLogger(__name__)


def _nothing() -> None:
    pass


class ConnectionThread:
    """A thread that keeps a dedicated driver connection of its own (autocommit) and
    runs :meth:`_use` on it until stopped. A lost connection is connected again after
    ``reconnect_seconds``, doubled on every failed try up to ``max_reconnect_seconds``
    (equal: a fixed pause), with one warning (``trouble``, ``%s`` the error) an
    outage. Ends on :meth:`stop` or once its engine is garbage (a weak reference)."""

    def __init__(
        self,
        engine: Engine,
        *,
        name: str,
        reconnect_seconds: float,
        max_reconnect_seconds: float,
        trouble: str,
        logger: logging.Logger,
    ) -> None:
        self._engine = weakref.ref(engine)
        self.reconnect_seconds = reconnect_seconds
        self.max_reconnect_seconds = max_reconnect_seconds
        self._trouble = trouble
        self._log = logger
        self._stopped = threading.Event()
        self._delay = reconnect_seconds
        self._warned = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """End the thread (at once: :meth:`_interrupt` ends its wait) and close its connection."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._interrupt()
        if self._thread.ident is None:  # never started
            self._never_started()
        elif self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def _use(self, driver: Any) -> None:
        """Work on the connection until stopped (return) or it is lost (raise). Call
        :meth:`_connected` once it works."""
        raise NotImplementedError

    def _connected(self) -> None:
        """The connection works: the next outage warns again, and retries from the first pause."""
        self._warned = False
        self._delay = self.reconnect_seconds

    def _interrupt(self) -> None:
        """Wake :meth:`_use` from its wait, :meth:`stop` having been asked."""

    def _never_started(self) -> None:
        """:meth:`stop` before :meth:`start`: free what the thread would have."""

    def _lost(self) -> None:
        """The connection is lost, and the thread ends."""

    def _trouble_with(self, exc: Exception) -> None:
        """Log why the connection was lost: once an outage, not every second of it."""
        if not self._warned:
            self._log.warning(self._trouble, exc)
            self._warned = True

    def _run(self) -> None:
        self._delay = self.reconnect_seconds
        self._warned = False
        try:
            while not self._stopped.is_set():
                engine = self._engine()
                if engine is None:
                    return
                try:
                    with autocommit_connection(engine) as driver:
                        del engine  # only a weak reference while waiting
                        self._use(driver)
                    return  # stopped, or the engine is gone
                except Exception as exc:
                    self._lost()
                    self._trouble_with(exc)
                    if self._stopped.wait(self._delay):
                        return
                    self._delay = min(self._delay * 2, self.max_reconnect_seconds)
        finally:
            self._lost()


class ListenThread(ConnectionThread):
    def __init__(
        self,
        engine: Engine,
        channels: Iterable[str],
        on_notify: Callable[[list[Any]], None],
        on_reconnect: Callable[[], None] = _nothing,
        *,
        name: str,
        on_lost: Callable[[], None] = _nothing,
        on_timeout: Callable[[], None] = _nothing,
        wait_seconds: float = 1.0,
        coalesce_seconds: float = 0.0,
        reconnect_seconds: float = 1.0,
        max_reconnect_seconds: float = 8.0,
        trouble: str = "not listening for database notifications (%s); retrying",
        logger: logging.Logger = log,
    ) -> None:
        self.channels = tuple(channels)
        for channel in self.channels:  # they go into SQL as identifiers
            if not channel.replace("_", "").isalnum() or not channel.isascii():
                raise ValueError(f"not a channel name: {channel!r}")
        super().__init__(
            engine,
            name=name,
            reconnect_seconds=reconnect_seconds,
            max_reconnect_seconds=max_reconnect_seconds,
            trouble=trouble,
            logger=logger,
        )
        self._on_notify = on_notify
        self._on_reconnect = on_reconnect
        self._on_lost = on_lost
        self._on_timeout = on_timeout
        self.wait_seconds = wait_seconds
        self.coalesce_seconds = coalesce_seconds
        #: Set while LISTENing on a live connection.
        self.listening = threading.Event()
        #: How many connections have been LISTENing so far (1 after the first).
        self.connections = 0
        self._wake_r, self._wake_w = os.pipe()
        self._pipe_lock = threading.Lock()  # never write to the pipe's numbers once closed (reused)

    def _interrupt(self) -> None:
        with self._pipe_lock:
            if self._wake_w >= 0:
                try:
                    os.write(self._wake_w, b"x")
                except OSError:
                    pass

    def _never_started(self) -> None:
        self._close_pipe()

    def _use(self, driver: Any) -> None:
        for channel in self.channels:
            driver.execute(f"LISTEN {channel}")
        self.listening.set()
        self.connections += 1
        self._connected()
        self._call(self._on_reconnect)
        self._serve(driver)

    def _trouble_with(self, exc: Exception) -> None:
        if isinstance(exc, _CallbackFailed):  # a bug, or the database away for the callback's work
            self._log.error("%s: a callback failed; listening again", self._thread.name, exc_info=exc.__cause__)
        else:
            super()._trouble_with(exc)

    def _run(self) -> None:
        try:
            super()._run()
        finally:
            self._close_pipe()

    def _close_pipe(self) -> None:
        with self._pipe_lock:
            for fd in (self._wake_r, self._wake_w):
                if fd >= 0:
                    os.close(fd)
            self._wake_r = self._wake_w = -1

    def _lost(self) -> None:
        self.listening.clear()
        try:
            self._on_lost()
        except Exception:
            self._log.exception("%s: on_lost failed", self._thread.name)

    def _serve(self, driver: Any) -> None:
        sock = driver.fileno()
        while not self._stopped.is_set() and self._engine() is not None:
            # Notifications may already be in the driver's buffer (they came with a
            # reply): drain first, then wait on the socket.
            got = list(driver.notifies(timeout=0))
            if not got:
                ready, _, _ = select.select([sock, self._wake_r], [], [], self.wait_seconds)
                if self._stopped.is_set():
                    return
                if not ready:
                    self._call(self._on_timeout)
                    continue
                got = list(driver.notifies(timeout=0))  # raises when the connection was lost
                if not got:
                    continue
            if self.coalesce_seconds > 0 and not self._stopped.wait(self.coalesce_seconds):
                got.extend(driver.notifies(timeout=0))
            self._call(self._on_notify, got)

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:
            raise _CallbackFailed from exc


class _CallbackFailed(Exception):
    pass
