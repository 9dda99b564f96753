import threading
import time

import pytest

from uvox.smpp.connector import ConnectorConfig, SmppConnector
from uvox.smpp.simulator import SimulatorThread, SmscSimulator


@pytest.fixture
def smsc():
    """An in-process SMSC simulator on a free port, on its own event loop thread."""
    st = SimulatorThread(SmscSimulator("127.0.0.1", 0, receipt_delay=0.05)).start()
    yield st
    st.close()


class ReceiptSink:
    """Collects receipts the connector hands over, acknowledging them like the dispatcher."""

    def __init__(self, auto_ack: bool = True) -> None:
        self.auto_ack = auto_ack
        self.items = []
        self.acks = []
        self._cv = threading.Condition()

    def __call__(self, receipt, ack):
        with self._cv:
            self.items.append(receipt)
            self.acks.append(ack)
            self._cv.notify_all()
        if self.auto_ack:
            ack(True)

    def wait(self, n: int, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        with self._cv:
            while len(self.items) < n and time.monotonic() < deadline:
                self._cv.wait(deadline - time.monotonic())
            return list(self.items)


@pytest.fixture
def connect(smsc):
    """Factory: a started connector bound to the simulator, stopped after the test."""
    made = []

    def _make(sink=None, **overrides) -> SmppConnector:
        cfg = dict(
            host="127.0.0.1",
            port=smsc.sim.port,
            system_id="uvox",
            password="pw",
            system_type="",
            name="sim",
            reconnect_min=0.1,
            reconnect_max=0.5,
        )
        cfg.update(overrides)
        c = SmppConnector(ConnectorConfig(**cfg), on_receipt=sink).start()
        made.append(c)
        return c

    yield _make
    for c in made:
        c.stop()


def wait_until(pred, timeout: float = 10.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    return pred()


@pytest.fixture(name="ReceiptSink")
def _receipt_sink_cls():
    return ReceiptSink


@pytest.fixture(name="wait_until")
def _wait_until():
    return wait_until
