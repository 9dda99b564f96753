"""A connector's bind password is stored sealed and still binds: the dispatcher opens
it with the instance secret and the SMSC simulator (which checks it) accepts the
bind; a wrong one is refused. On SQLite and PostgreSQL."""

from __future__ import annotations

import time

import sqlalchemy as sa

from uvox.db import schema
from uvox.smpp import registry


def _raw_connector(platform) -> str:
    with platform.engine.connect() as c:
        row = c.execute(sa.select(schema.connectors)).one()
    return " ".join(str(v) for v in row)


def _bound_within(dt, name: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if dt.d.held.get(name):
            return True
        time.sleep(0.05)
    return False


def test_sealed_password_binds_and_a_wrong_one_is_refused(platform, make_smsc, dispatcher):
    sim = make_smsc(system_id="acme", password="Pw8chars")
    registry.add(
        platform.engine,
        "carrier",
        host="127.0.0.1",
        port=sim.sim.port,
        system_id="acme",
        password="Pw8chars",
        secret=platform.secret,
    )
    assert "Pw8chars" not in _raw_connector(platform)  # the row holds the sealed token only
    d = dispatcher()
    assert _bound_within(d, "carrier", 10), d.d.held
    assert sim.sim.counters["binds"] == 1

    # A new password the SMSC does not know: the dispatcher binds again with it and is refused.
    registry.set_password(platform.engine, "carrier", "wrong", platform.secret)
    assert "wrong" not in _raw_connector(platform)
    deadline = time.monotonic() + 10
    while d.d.held.get("carrier") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _bound_within(d, "carrier", 1.5), d.d.held
    assert sim.sim.counters["binds"] == 1

    # And the right one again: bound again.
    registry.set_password(platform.engine, "carrier", "Pw8chars", platform.secret)
    assert _bound_within(d, "carrier", 10), d.d.held
    assert sim.sim.counters["binds"] == 2


def test_a_password_sealed_under_another_key_is_not_bound(platform, make_smsc, dispatcher):
    sim = make_smsc(system_id="acme", password="pw")
    registry.add(
        platform.engine,
        "carrier",
        host="127.0.0.1",
        port=sim.sim.port,
        system_id="acme",
        password="pw",
        secret=b"another instance's secret",
    )
    d = dispatcher()
    assert not _bound_within(d, "carrier", 1.5)
    assert "carrier" not in d.d.held and sim.sim.counters["binds"] == 0
