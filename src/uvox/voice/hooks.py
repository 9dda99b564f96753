"""Settle call records inside ``uvox serve`` (PostgreSQL only).

Listed in ``uvox.background``, beside delivery.

A thread waits on PostgreSQL's ``LISTEN uvox_cdr`` (the trigger of migration
0004 notifies on every record Kamailio writes), so an ended call is charged
within a tenth of a second (records arriving together are settled together); it also polls every few seconds, settles at start-up whatever ended while
the platform was down, and sweeps holds of calls that never reported.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable

from uvox.db.engine import autocommit_connection
from uvox.platform import Platform

log = logging.getLogger("uvox.voice")
POLL_SECONDS = 2.0
SWEEP_SECONDS = 30.0
COALESCE_SECONDS = 0.1


class Settler:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="uvox-voice-settle", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        from uvox.voice import records

        engine, settings = self.platform.engine, self.platform.settings
        last_sweep = 0.0
        while not self._stop.is_set():
            try:
                with autocommit_connection(engine) as driver:
                    driver.execute("LISTEN uvox_cdr")
                    while not self._stop.is_set():
                        records.settle(engine)
                        if time.monotonic() - last_sweep > SWEEP_SECONDS:
                            records.sweep(engine, settings.voice_hold_grace_seconds)
                            last_sweep = time.monotonic()
                        # Wake on the first notification or after POLL_SECONDS, then let
                        # the records of the next COALESCE_SECONDS gather: at 200 calls a
                        # second ending, one batch of ~20 instead of 20 transactions of one,
                        # each competing with call set-up for the process and the database.
                        # Money is safe meanwhile: the holds still cover the calls.
                        woken = False
                        for _ in driver.notifies(timeout=POLL_SECONDS, stop_after=1):
                            woken = True
                        if woken and not self._stop.wait(COALESCE_SECONDS):
                            for _ in driver.notifies(timeout=0):
                                pass  # drain: they are all settled by the next pass
            except Exception:
                log.exception("settling call records failed; retrying in 2 s")
                self._stop.wait(2)


async def start_settling(platform: Platform) -> Callable[[], Awaitable[None]] | None:
    if not platform.settings.is_postgres:
        return None
    settler = Settler(platform)
    settler.start()

    async def stop() -> None:
        import asyncio

        await asyncio.to_thread(settler.stop)

    return stop
