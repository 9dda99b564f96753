"""Start delivery inside `uvox serve`: the SMSC simulator (when it is the route) and the dispatcher.

Two hooks, because they may run in different processes: listed in
``uvox.background.BACKGROUND``, which the lifespan runs in one process (``--workers 1``);
with HTTP in worker processes server.py runs the simulator in a process of its own
and the dispatcher in the delivery process (``uvox.background.SIMULATOR`` and ``DELIVERY``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the simulator's process imports this module without the database's
    from uvox.config import Settings
    from uvox.platform import Platform

log = logging.getLogger("uvox.dispatch")


async def start_simulator(platform: Platform):
    """The SMSC simulator, when the settings ask for it and it is a route."""
    import asyncio

    from uvox.db.session import read
    from uvox.dispatch import routing

    settings = platform.settings
    if not settings.smsc_sim:
        return None

    def _sim_is_route() -> bool:
        with read(platform.engine) as conn:
            return routing.simulator_is_route(conn, settings)

    if not await asyncio.to_thread(_sim_is_route):
        return None
    return await open_simulator(settings)


#: How many submit_sm the built-in simulator keeps for its control port's /messages.
BUILT_IN_RECORDS = 100_000


async def open_simulator(settings: Settings):
    """Start the simulator the settings describe; what it takes is the settings alone,
    so server.py's simulator process needs no database (nor its modules' memory)."""
    from uvox.smpp.simulator import SIMULATOR_WARNING, SmscSimulator

    sim = SmscSimulator(
        settings.smsc_sim_host,
        settings.smsc_sim_port,
        receipt_delay=settings.smsc_sim_receipt_delay,
        control_port=settings.smsc_sim_control_port or None,
        # Records are only read through the control port: without it they
        # were memory that grew with every text (about 1 kB each).
        max_records=BUILT_IN_RECORDS if settings.smsc_sim_control_port else 0,
    )
    try:
        await sim.start()
    except OSError as e:
        log.warning(
            "SMSC simulator port %s:%s is taken (%s): using the simulator already there",
            settings.smsc_sim_host,
            settings.smsc_sim_port,
            e,
        )
        return None
    log.warning("%s", SIMULATOR_WARNING)

    async def stop() -> None:
        await sim.stop()
        sim.close_control()

    return stop


async def start_dispatcher(platform: Platform):
    """The dispatcher, unless the settings turn it off (``UVOX_DISPATCHER=0``)."""
    from uvox.dispatch.dispatcher import Dispatcher

    if not platform.settings.dispatcher:
        return None
    dispatcher = Dispatcher(platform)
    await dispatcher.start()
    return dispatcher.stop
