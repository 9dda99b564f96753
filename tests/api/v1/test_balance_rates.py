"""balance and rates."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.api.v1.helpers import HOWS, call


@pytest.mark.parametrize("how", HOWS)
def test_balance(http, customer, how, platform):
    from uvox.billing.service import set_credit_limit

    set_credit_limit(platform.engine, customer.id, Decimal("5"))
    r = call(http, "balance", how, customer.auth)
    assert r.status_code == 200
    assert r.json() == {
        "version": "1",
        "code": "015",
        "status": "success",
        "resultstring": "Success",
        "accountnumber": customer.number,
        "currency": "US$",
        "balance": "10.00",
        "credit": "5.00",
        "available": "15.00",
        "statusmessage": "Get Balance",
    }


def test_balance_keeps_sub_cent_precision(http, customer):
    call(http, "sms-api", "get", {**customer.auth, "to": "13058888888", "text": "x"})
    assert call(http, "balance", "get", customer.auth).json()["balance"] == "9.992"


def test_rates_exactly_the_manual_shape(http, customer):
    r = call(http, "rates", "get", customer.auth)
    assert r.status_code == 200
    rows = r.json()
    assert isinstance(rows, list)
    assert rows[2] == {"dialprefix": "56", "destination": "Chile", "rateinitial": "0.02850"}
    assert all(set(x) == {"dialprefix", "destination", "rateinitial"} for x in rows)
    assert all(isinstance(v, str) for x in rows for v in x.values())
    assert r.headers["access-control-allow-origin"] == "*"


def test_rates_of_account_without_plan_is_empty(http, make_customer):
    c = make_customer(plan=None)
    assert call(http, "rates", "get", c.auth).json() == []


def test_rates_errors_are_envelopes(http):
    assert call(http, "rates", "get", {}).json()["code"] == "016"
    assert call(http, "rates", "get", {"apikey": "x", "accountnumber": "1"}).json()["code"] == "001"


def test_rates_streams_a_100000_row_deck(http, make_customer, platform):
    from uvox.accounts import service
    from uvox.billing import plans

    lines = ["dialprefix,destination,rateinitial,smsrate"]
    lines += [f"{100000 + i},Dest {i},0.0{i % 10}1,0.005" for i in range(100_000)]
    plans.create_plan(platform.engine, "big", "US$")
    assert plans.import_rates(platform.engine, "big", "\n".join(lines)) == 100_000
    c = make_customer(plan="big", balance="0")
    with http.stream("GET", "/api/get-api/v1/rates", params=c.auth) as r:
        assert "content-length" not in r.headers  # streamed, not built in memory
        data = b"".join(r.iter_bytes())
    import orjson

    rows = orjson.loads(data)
    assert len(rows) == 100_000
    assert rows[0] == {"dialprefix": "100000", "destination": "Dest 0", "rateinitial": "0.00100"}
    a = service.find(platform.engine, c.number)
    with platform.engine.connect() as conn:
        assert plans.lookup(conn, a.plan_id, "+1000051234").prefix == "100005"
