"""Delivery fixtures: an SMSC simulator, a dispatcher on its own loop, polling helpers."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from uvox.dispatch.dispatcher import Dispatcher
from uvox.smpp import registry
from uvox.smpp.simulator import SimulatorThread, SmscSimulator

FAST = dict(reconnect_min=0.1, reconnect_max=0.5, enquire_link_interval=5.0, response_timeout=5.0)


class DispatcherThread:
    """A real Dispatcher on a private event loop in a thread, as `uvox worker` runs it."""

    def __init__(self, platform, settings: dict | None = None, **opts) -> None:
        if settings:
            from uvox.platform import Platform

            platform = Platform(platform.settings.with_(**settings), platform.engine)
        opts.setdefault("connector_options", FAST)
        opts.setdefault("manage_interval", 0.3)
        opts.setdefault("poll", 0.05)
        opts.setdefault("expire_interval", 0.3)
        opts.setdefault("callback_backoff", 0.2)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.d = self.call(self._make(platform, opts))

    async def _make(self, platform, opts):
        return Dispatcher(platform, **opts)

    def call(self, coro, timeout: float = 30.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> DispatcherThread:
        self.call(self.d.start())
        self.call(self.d.wait_ready())
        return self

    def wait_bound(self, names, timeout: float = 10.0) -> None:
        names = set(names)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            held = self.d.held
            if all(held.get(n) for n in names):
                return
            time.sleep(0.05)
        raise AssertionError(f"connectors {names} not bound; held: {self.d.held}")

    def stop(self) -> None:
        if self.loop.is_closed() or not self.thread.is_alive():
            return
        try:
            self.call(self.d.stop(), timeout=60)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
            if not self.thread.is_alive():
                self.loop.close()


@pytest.fixture
def smsc():
    st = SimulatorThread(SmscSimulator("127.0.0.1", 0, receipt_delay=0.05)).start()
    yield st
    st.close()


@pytest.fixture
def make_smsc():
    made = []

    def make(**kw) -> SimulatorThread:
        kw.setdefault("receipt_delay", 0.05)
        st = SimulatorThread(SmscSimulator("127.0.0.1", 0, **kw)).start()
        made.append(st)
        return st

    yield make
    for st in made:
        st.close()


@pytest.fixture
def dispatcher(platform):
    """Factory: start a dispatcher on the test database; stopped at the end."""
    import sqlalchemy as sa

    from uvox.db import schema

    # The table emptying between tests keeps ``meta``; forget earlier tests' leases.
    with platform.engine.begin() as c:
        c.execute(
            sa.delete(schema.meta).where(
                sa.or_(schema.meta.c.key == "dispatcher_lease", schema.meta.c.key.like("connector_up:%"))
            )
        )
    made = []

    def make(**opts) -> DispatcherThread:
        dt = DispatcherThread(platform, **opts).start()
        made.append(dt)
        return dt

    yield make
    for dt in made:
        dt.stop()


@pytest.fixture
def connector_to(platform):
    """Factory: configure a connector to a simulator (default route unless prefixes are given)."""

    def add(sim: SimulatorThread, name: str = "carrier", **kw):
        kw.setdefault("system_id", "uvox")
        kw.setdefault("password", "pw")
        return registry.add(
            platform.engine, name, host="127.0.0.1", port=kw.pop("port", sim.sim.port), secret=platform.secret, **kw
        )

    return add


def poll(pred, timeout: float = 20.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)


@pytest.fixture(name="poll")
def _poll():
    return poll
