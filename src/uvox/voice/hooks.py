"""Settle call records inside ``uvox serve`` (PostgreSQL only).

Listed in ``uvox.background``, beside delivery.

A thread waits on PostgreSQL's ``LISTEN uvox_cdr`` (the trigger of migration
0004 notifies on every record Kamailio writes), so an ended call is charged
within a tenth of a second (records arriving together are settled together); it also polls every few seconds, settles at start-up whatever ended while
the platform was down (and after every reconnection: a record notified meanwhile
went unheard), and sweeps holds of calls that never reported. The thread is a
db/listen.py ``ListenThread``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from uvox.db.listen import ListenThread
from uvox.platform import Platform
from uvox.voice import records

log = logging.getLogger("uvox.voice")
POLL_SECONDS = 2.0
SWEEP_SECONDS = 30.0
COALESCE_SECONDS = 0.1


class Settler:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self._last_sweep = 0.0
        # Wake on the first notification or after POLL_SECONDS, then let the records
        # of the next COALESCE_SECONDS gather: at 200 calls a second ending, one batch
        # of ~20 instead of 20 transactions of one, each competing with call set-up
        # for the process and the database. Money is safe meanwhile: the holds still
        # cover the calls. A pass that fails (the database away) is logged, and the
        # thread connects again and settles everything (on_reconnect).
        self._listener = ListenThread(
            platform.engine,
            ["uvox_cdr"],
            lambda _notifications: self._settle(),
            self._settle,
            name="uvox-voice-settle",
            on_timeout=self._settle,
            wait_seconds=POLL_SECONDS,
            coalesce_seconds=COALESCE_SECONDS,
            reconnect_seconds=2.0,
            trouble="settling call records: not listening for them (%s); retrying",
            logger=log,
        )

    def start(self) -> None:
        self._listener.start()

    def stop(self) -> None:
        self._listener.stop(10)

    def _settle(self) -> None:
        records.settle(self.platform.engine)
        if time.monotonic() - self._last_sweep > SWEEP_SECONDS:
            records.sweep(self.platform.engine, self.platform.settings.voice_hold_grace_seconds)
            self._last_sweep = time.monotonic()


async def start_settling(platform: Platform) -> Callable[[], Awaitable[None]] | None:
    if not platform.settings.is_postgres:
        return None
    settler = Settler(platform)
    settler.start()

    async def stop() -> None:
        import asyncio

        await asyncio.to_thread(settler.stop)

    return stop
