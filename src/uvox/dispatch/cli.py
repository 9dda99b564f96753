"""`uvox worker`: the dispatcher on its own, for scaling out on PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from uvox.platform import Platform

log = logging.getLogger("uvox.dispatch")


@click.command("worker", help="Run the dispatcher alone (any number of workers may share a PostgreSQL database).")
def worker() -> None:
    from uvox.config import get_settings
    from uvox.platform import Platform

    platform = Platform.open(get_settings(), migrate=True)
    try:
        asyncio.run(_run(platform))
    finally:
        platform.close()


async def _run(platform: Platform) -> None:
    from uvox.dispatch.dispatcher import Dispatcher

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    d = Dispatcher(platform)
    await d.start()
    log.info("worker %s running; SIGTERM stops it after in-flight messages", d.worker_id)
    await stop.wait()
    await d.stop()


def register(main: click.Group, admin: click.Group | None = None) -> None:
    main.add_command(worker)
