"""The caches are the Platform's (db/caches.py): two platforms in one process, on two
databases, never answer from each other's entries."""

from __future__ import annotations

from decimal import Decimal

import pytest

from uvox.accounts import apikeys, service
from uvox.billing import plans
from uvox.config import Settings
from uvox.db.session import read
from uvox.platform import Platform


@pytest.fixture
def two(tmp_path):
    opened = [
        Platform.open(Settings(database_url=f"sqlite:///{tmp_path / name}.db"), migrate=True) for name in ("one", "two")
    ]
    yield opened
    for p in opened:
        p.close()


def test_two_platforms_have_their_own_caches(two):
    one, other = two
    assert one.caches is not other.caches
    assert one.caches.auth is not other.caches.auth and one.caches.decks is not other.caches.decks
    assert one.simulator_route is not other.simulator_route
    # A second Platform on the same engine (a test changing a setting) reads the same database.
    again = Platform(one.settings, one.engine)
    assert again.caches is one.caches and again.simulator_route is not one.simulator_route


def test_a_key_remembered_by_one_platform_is_unknown_to_another(two):
    one, other = two
    a = service.create_account(one.engine)
    key, _ = apikeys.create(one.engine, a.id)
    assert apikeys.authenticate(one.engine, key) == a
    assert apikeys.cached(one.engine, key) == a
    # Neither database ever changed a key: both tokens are the same (none), so a
    # process-wide cache answered the other platform with the first one's account.
    assert apikeys.cached(other.engine, key) is None
    assert apikeys.authenticate(other.engine, key) is None


def test_a_rate_deck_read_by_one_platform_is_not_used_by_another(two):
    one, other = two
    for p, rate in ((one, "0.01"), (other, "0.02")):
        plan = plans.create_plan(p.engine, "same", "US$")
        assert plan.id == 1  # the same plan id in both databases
        plans.import_rates(p.engine, "same", f"dialprefix,destination,rateinitial,smsrate\n1,US,0.1,{rate}\n")
    for p, rate in ((one, "0.01"), (other, "0.02"), (one, "0.01")):
        with read(p.engine) as conn:
            found = plans.lookup(conn, 1, "+13055550100")
        assert found is not None and found.sms_rate == Decimal(rate)
