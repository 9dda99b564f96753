"""While the SMSC simulator is the route, every portal page says so."""

from __future__ import annotations

import pytest

from tests.portal.conftest import PASSWORD

BANNER_ES = "Entrega simulada"
BANNER_EN = "Simulated delivery"


@pytest.fixture
def simulator_on(platform):
    before = platform.settings
    platform.settings = before.with_(smsc_sim=True)
    platform.simulator_route.clear()
    yield platform
    platform.settings = before
    platform.simulator_route.clear()


def test_banner_while_simulated_gone_with_a_connector(simulator_on, client, make_customer):
    from uvox.smpp import registry

    c = make_customer(password=PASSWORD)
    b = client()
    assert b.sign_in(c.email).status_code == 303
    for page in ("/dashboard", "/sms", "/apikeys"):
        assert BANNER_ES in b.c.get(page, headers={"Accept-Language": "es"}).text
    assert (
        BANNER_EN in b.c.get("/dashboard", headers={"Accept-Language": "en"}).text
        or BANNER_EN in b.c.get("/dashboard?lang=en").text
    )
    registry.add(
        simulator_on.engine,
        "carrier",
        host="127.0.0.1",
        port=2775,
        system_id="x",
        password="y",
        secret=simulator_on.secret,
    )
    simulator_on.simulator_route.clear()
    assert BANNER_ES not in b.c.get("/dashboard").text


def test_no_banner_when_simulator_disabled(platform, client, make_customer):
    platform.simulator_route.clear()
    c = make_customer(password=PASSWORD)
    b = client()
    b.sign_in(c.email)
    assert BANNER_ES not in b.c.get("/dashboard").text
