"""Start delivery inside `uvox serve`: the SMSC simulator (when it is the route) and the dispatcher.

Listed in ``uvox.app.BACKGROUND``, which the lifespan (one process) or server.py's
delivery process (``--workers N``) runs.
"""

from __future__ import annotations

import logging

from uvox.platform import Platform

log = logging.getLogger("uvox.dispatch")


async def start_delivery(platform: Platform):
    import asyncio

    from uvox.db.session import read
    from uvox.dispatch import routing
    from uvox.dispatch.dispatcher import Dispatcher
    from uvox.smpp.simulator import SIMULATOR_WARNING, SmscSimulator

    settings = platform.settings
    sim = None
    if settings.smsc_sim:
        def _sim_is_route() -> bool:
            with read(platform.engine) as conn:
                return routing.simulator_is_route(conn, settings)

        if await asyncio.to_thread(_sim_is_route):
            sim = SmscSimulator(settings.smsc_sim_host, settings.smsc_sim_port,
                                receipt_delay=settings.smsc_sim_receipt_delay,
                                control_port=settings.smsc_sim_control_port or None)
            try:
                await sim.start()
            except OSError as e:
                log.warning("SMSC simulator port %s:%s is taken (%s): using the simulator already there",
                            settings.smsc_sim_host, settings.smsc_sim_port, e)
                sim = None
            log.warning("%s", SIMULATOR_WARNING)
    dispatcher = None
    if settings.dispatcher:
        dispatcher = Dispatcher(platform)
        await dispatcher.start()

    async def stop() -> None:
        if dispatcher is not None:
            await dispatcher.stop()
        if sim is not None:
            await sim.stop()
            sim.close_control()

    return stop
