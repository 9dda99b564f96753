"""The processes `uvox serve` supervises beside its HTTP ones: ``python -m uvox.supervised ROLE FD``.

ROLE is ``smsc-sim`` (the SMSC simulator, when it is the route) or ``delivery``
(uvox.background.DELIVERY: the dispatcher, call settling, the mail outbox). The
process writes one line on the pipe FD: ``ready`` once its hooks have started, or
why they could not; then it runs until SIGTERM, when it stops its hooks in reverse
order (the dispatcher drains what it has in flight). Started by a fresh
interpreter rather than multiprocessing's spawn, which would import the ``uvox``
command's whole CLI first: the simulator's process imports no database or web
modules at all.

The process-level calls every child of `uvox serve` makes, HTTP processes
included (:func:`~uvox.process.die_with_parent`, :func:`~uvox.process.name_process`,
:func:`~uvox.process.configure_logging`), are in uvox.process.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable

from uvox.process import configure_logging, die_with_parent, name_process

log = logging.getLogger("uvox")

ROLES = ("smsc-sim", "delivery")

Stop = Callable[[], Awaitable[None]]


async def _start(role: str) -> tuple[list[Stop], Callable[[], None]]:
    """Start ROLE's hooks; returns their stops and what closes the rest."""
    from uvox.config import get_settings

    settings = get_settings()
    stops: list[Stop] = []
    if role == "smsc-sim":
        # The supervisor has seen that the simulator is a route; the settings are
        # all it takes.
        from uvox.dispatch.hooks import open_simulator

        stop = await open_simulator(settings)
        if stop is not None:
            stops.append(stop)
        return stops, lambda: None
    from uvox.background import DELIVERY
    from uvox.platform import Platform

    platform = Platform.open(settings)
    try:
        for hook in DELIVERY:
            stop = await hook(platform)
            if stop is not None:
                stops.append(stop)
    except BaseException:
        for stop in reversed(stops):
            with contextlib.suppress(Exception):
                await stop()
        platform.close()
        raise
    return stops, platform.close


async def _run(role: str, ready_fd: int) -> int:
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    try:
        stops, close = await _start(role)
    except Exception as exc:
        log.exception("the %s process could not start", role)
        os.write(ready_fd, f"{type(exc).__name__}: {exc}\n".encode())
        return 1
    os.write(ready_fd, b"ready\n")
    os.close(ready_fd)
    gc.collect()
    gc.freeze()  # as app's lifespan does: start-up's objects out of the collector's sight
    try:
        await stopping.wait()
    finally:
        for stop in reversed(stops):
            try:
                await stop()
            except Exception:
                log.exception("the %s process did not stop cleanly", role)
        close()
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ROLES or not argv[1].isdigit():
        print(
            f"usage: python -m uvox.supervised {{{','.join(ROLES)}}} READY_FD (started by `uvox serve`)",
            file=sys.stderr,
        )
        return 2
    role, ready_fd = argv[0], int(argv[1])
    die_with_parent()
    name_process(f"uvox-{role}")
    # Ctrl+C reaches every process of the terminal's group; the supervisor decides
    # when this one stops (after the HTTP processes), by SIGTERM.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from uvox.config import get_settings

    configure_logging(get_settings())
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:  # pragma: no cover - uvloop is a dependency
        runner = asyncio.Runner()
    with runner:
        return runner.run(_run(role, ready_fd))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
