"""db/listen.py's ListenThread on a real PostgreSQL: what it hears, and what it does
when its connection is cut."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from uvox.db.listen import ListenThread

pytestmark = [pytest.mark.timeout(60), pytest.mark.parametrize("backend", ["postgresql"], indirect=True)]
CHANNEL = "uvox_test_listen"


@pytest.fixture
def poll():
    def until(pred, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return True
            time.sleep(0.02)
        return bool(pred())

    return until


class Heard:
    def __init__(self) -> None:
        self.payloads: list[str] = []
        self.reconnects = 0
        self.lost = 0
        self.lock = threading.Lock()

    def notify(self, notifications) -> None:
        with self.lock:
            self.payloads.extend(n.payload for n in notifications)

    def reconnect(self) -> None:
        self.reconnects += 1

    def on_lost(self) -> None:
        self.lost += 1


def _notify(engine, payload: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT pg_notify(:c, :p)"), {"c": CHANNEL, "p": payload})


def _listener_pids(engine) -> list[int]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query = :q"),
                {"q": f"LISTEN {CHANNEL}"},
            ).scalars()
        )


def _start(platform, heard: Heard, **kw) -> ListenThread:
    return ListenThread(
        platform.engine, [CHANNEL], heard.notify, heard.reconnect, on_lost=heard.on_lost, name="test-listen", **kw
    ).start()


def test_a_notification_is_delivered_with_its_payload(platform, poll):
    heard = Heard()
    listener = _start(platform, heard)
    try:
        assert poll(listener.listening.is_set, timeout=10)
        assert heard.reconnects == 1  # on_reconnect comes with the first connection too
        _notify(platform.engine, "one")
        _notify(platform.engine, "two")
        assert poll(lambda: heard.payloads == ["one", "two"], timeout=10), heard.payloads
    finally:
        listener.stop()
    assert not listener.listening.is_set() and heard.lost >= 1


def test_a_terminated_backend_is_reconnected_and_on_reconnect_called(platform, poll):
    heard = Heard()
    listener = _start(platform, heard, reconnect_seconds=0.1)
    try:
        assert poll(listener.listening.is_set, timeout=10)
        pids = _listener_pids(platform.engine)
        assert len(pids) == 1
        with platform.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pids[0]}).scalar()
        assert poll(lambda: heard.lost >= 1, timeout=10)
        assert poll(lambda: heard.reconnects == 2 and listener.listening.is_set(), timeout=10)
        assert listener.connections == 2
        new = _listener_pids(platform.engine)
        assert len(new) == 1 and new != pids
        _notify(platform.engine, "after")  # heard on the new connection
        assert poll(lambda: heard.payloads == ["after"], timeout=10), heard.payloads
    finally:
        listener.stop()


def test_stop_is_at_once_and_leaves_no_connection(platform, poll):
    heard = Heard()
    listener = _start(platform, heard, wait_seconds=30.0)
    assert poll(listener.listening.is_set, timeout=10)
    started = time.monotonic()
    listener.stop()
    assert time.monotonic() - started < 2.0
    assert not listener._thread.is_alive()
    assert poll(lambda: _listener_pids(platform.engine) == [], timeout=10)


def test_a_failing_callback_is_logged_and_listening_goes_on(platform, poll, caplog):
    heard = Heard()

    def fails(notifications) -> None:
        heard.notify(notifications)
        if any(n.payload == "boom" for n in notifications):
            raise RuntimeError("bug")

    listener = ListenThread(
        platform.engine, [CHANNEL], fails, heard.reconnect, name="test-listen", reconnect_seconds=0.1
    ).start()
    try:
        assert poll(listener.listening.is_set, timeout=10)
        _notify(platform.engine, "boom")
        assert poll(lambda: heard.reconnects == 2 and listener.listening.is_set(), timeout=10)
        _notify(platform.engine, "fine")
        assert poll(lambda: heard.payloads == ["boom", "fine"], timeout=10), heard.payloads
        assert "a callback failed" in caplog.text
    finally:
        listener.stop()


def test_timeouts_are_called_when_nothing_comes(platform, poll):
    ticks: list[float] = []
    listener = ListenThread(
        platform.engine,
        [CHANNEL],
        lambda n: None,
        name="test-listen",
        wait_seconds=0.1,
        on_timeout=lambda: ticks.append(time.monotonic()),
    ).start()
    try:
        assert poll(lambda: len(ticks) >= 3, timeout=10)
    finally:
        listener.stop()


def test_coalesced_notifications_come_in_one_call(platform, poll):
    calls: list[list[str]] = []
    listener = ListenThread(
        platform.engine,
        [CHANNEL],
        lambda ns: calls.append([n.payload for n in ns]),
        name="test-listen",
        coalesce_seconds=0.5,
    ).start()
    try:
        assert poll(listener.listening.is_set, timeout=10)
        _notify(platform.engine, "a")
        _notify(platform.engine, "b")
        _notify(platform.engine, "c")
        assert poll(lambda: sum(len(c) for c in calls) == 3, timeout=10)
        assert calls == [["a", "b", "c"]]
    finally:
        listener.stop()


def test_the_api_key_cache_remembers_nothing_while_its_listener_is_cut(platform, poll):
    """What was notified while it was not listening is lost: a reconnection starts a
    new epoch, so nothing remembered before it is used after it."""
    from uvox.accounts import apikeys, service

    auth = platform.caches.auth
    a = service.create_account(platform.engine)
    key, _ = apikeys.create(platform.engine, a.id)
    assert poll(lambda: auth.epoch() is not None, timeout=10)
    assert apikeys.authenticate(platform.engine, key) == a
    assert apikeys.cached(platform.engine, key) == a
    before = auth.epoch()
    with platform.engine.connect() as conn:
        assert (
            conn.execute(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND query = 'LISTEN uvox_auth'"
                )
            ).scalar()
            == 1
        )
    assert poll(lambda: auth.epoch() not in (None, before), timeout=15)
    assert apikeys.cached(platform.engine, key) is None
    assert apikeys.authenticate(platform.engine, key) == a
    assert apikeys.cached(platform.engine, key) == a


def test_stop_without_start(platform):
    listener = ListenThread(platform.engine, [CHANNEL], lambda n: None, name="test-listen")
    listener.stop()
    assert listener._wake_r == listener._wake_w == -1
