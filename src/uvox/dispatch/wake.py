"""Waking dispatchers in other processes when messages are queued (PostgreSQL).

A dispatcher in the process that queued a message is woken directly
(``platform.queued``). The others (the delivery process beside `uvox serve
--workers N`'s HTTP processes, `uvox worker` on other machines) would find the
message only at their next poll; on PostgreSQL they are woken at once instead:

- :class:`Announcer`, in every process that queues, sends ``NOTIFY uvox_queued``
  after the queueing transaction has committed, from a connection of its own (a
  db/listen.py ``ConnectionThread``, connecting again every second while the
  database is away, with one warning an outage). Not
  inside the transaction: PostgreSQL serializes the commits of transactions that
  notify (a global lock while the commit record is flushed), which would undo the
  group commit that intake's throughput rests on. Announcements are coalesced: while
  one is on its way, any number of sends ask for just one more.
- :class:`Listener`, in every dispatcher, LISTENs on ``uvox_queued`` and calls its
  callback (the claim loop's wake-up) on every notification, and on every
  (re)connection, since what was announced meanwhile went unheard: a
  db/listen.py ``ListenThread``.

Both only make delivery prompter: the dispatcher's poll still finds everything
(a notification lost in a reconnection is at most one poll late), so nothing here
can lose or double a message. SQLite has no notifications; one machine, one
delivery process, which polls.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine

from uvox.db.listen import ConnectionThread, ListenThread

log = logging.getLogger("uvox.dispatch")
CHANNEL = "uvox_queued"
RECONNECT_SECONDS = 1.0


class Announcer(ConnectionThread):
    """``announce()`` (cheap, thread-safe, never blocks) asks for one NOTIFY soon; a
    thread of its own (started at once) sends it."""

    def __init__(self, engine: Engine) -> None:
        self._wanted = threading.Event()
        super().__init__(
            engine,
            name="uvox-queued-announce",
            # A fixed pause while the database is away (no backoff).
            reconnect_seconds=RECONNECT_SECONDS,
            max_reconnect_seconds=RECONNECT_SECONDS,
            # The dispatchers' polls cover what is not announced.
            trouble="could not announce queued messages to other processes (%s); their dispatchers poll meanwhile",
            logger=log,
        )
        self.start()

    def announce(self) -> None:
        self._wanted.set()

    def _interrupt(self) -> None:
        self._wanted.set()

    def _use(self, driver: Any) -> None:
        self._connected()
        while True:
            self._wanted.wait()
            if self._stopped.is_set():
                return
            # Cleared before the NOTIFY: a send committed while it is on its way asks
            # for the next one.
            self._wanted.clear()
            driver.execute(f"NOTIFY {CHANNEL}")


class Listener(ListenThread):
    """Calls ``wake()`` on every ``uvox_queued`` notification, from a thread of its own
    (started at once); ``listening`` is set while it listens."""

    def __init__(self, engine: Engine, wake: Callable[[], None]) -> None:
        super().__init__(
            engine,
            [CHANNEL],
            lambda _notifications: wake(),
            wake,
            name="uvox-queued-listen",
            reconnect_seconds=RECONNECT_SECONDS,
            trouble="not listening for queued messages (%s); polling meanwhile",
            logger=log,
        )
        self.start()
