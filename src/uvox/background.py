"""What `uvox serve` runs beside HTTP: the one list of it.

Started by the app's lifespan when ``uvox serve`` is one process (``--workers 1``),
or by server.py in processes of their own when HTTP runs in worker processes (the
default on a machine of several cores): the simulator's process runs
:data:`SIMULATOR`, the delivery process :data:`DELIVERY`. A module of its own, apart
from the app, so that those processes import what they run and not the web stack.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from uvox.dispatch.hooks import start_dispatcher, start_simulator
from uvox.mail import start_mailing
from uvox.platform import Platform
from uvox.voice.hooks import start_settling

#: An async callable run at start-up with the Platform; it may return an async
#: callable run at shutdown.
StartupHook = Callable[[Platform], Awaitable[Callable[[], Awaitable[None]] | None]]
#: The SMSC simulator when it is a route: first, so the dispatcher finds it listening.
SIMULATOR: StartupHook = start_simulator
#: Delivery, in start order (stopped in reverse): the dispatcher, the settling of
#: call records, and the e-mail outbox.
DELIVERY: tuple[StartupHook, ...] = (start_dispatcher, start_settling, start_mailing)
#: Everything, in start order, when `uvox serve` is one process.
BACKGROUND: tuple[StartupHook, ...] = (SIMULATOR, *DELIVERY)
