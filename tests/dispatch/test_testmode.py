"""Test mode end to end: a test key's sends reach their final states on a timer, with the
callbacks a live send fires, while the SMSC sees nothing and the ledger stays as it was.

Real HTTP server, real dispatcher and SMPP simulator, a real callback endpoint; the
only thing that differs from a live send is the key.
"""

import json
from decimal import Decimal

import httpx
import pytest
import sqlalchemy as sa

from tests.dispatch.conftest import poll as poll_for
from tests.dispatch.test_lifecycle import Receiver
from tests.helpers import closing_factory
from uvox.accounts import apikeys
from uvox.accounts import service as accounts
from uvox.db import schema as t
from uvox.otp import service as otp

API = "/api/get-api/v1/"
pytestmark = pytest.mark.timeout(120)

MAGIC = {
    "+15005550001": ("delivered", "110", None),
    "+15005550002": ("undelivered", "111", "stat:UNDELIV err:000"),
    "+15005550003": ("rejected", "113", "stat:REJECTD err:000"),
    "+15005550004": ("expired", "112", "stat:EXPIRED err:000"),
    "+13125550142": ("delivered", "110", None),
}  # any other number: delivered


@pytest.fixture
def receiver():
    yield from closing_factory(Receiver)


def _ledger(platform, account_id):
    with platform.engine.connect() as c:
        rows = c.execute(
            sa.select(t.ledger.c.kind, t.ledger.c.amount, t.ledger.c.message_id)
            .where(t.ledger.c.account_id == account_id)
            .order_by(t.ledger.c.id)
        ).all()
        balance = c.execute(sa.select(t.accounts.c.balance).where(t.accounts.c.id == account_id)).scalar_one()
    return [tuple(r) for r in rows], balance


def test_test_key_reaches_each_final_state_with_live_callbacks_and_nothing_leaves(
    platform, http, customer, smsc, connector_to, dispatcher, receiver, poll
):
    hook = receiver()
    accounts.set_callback(platform.engine, customer.id, hook.url)
    tpl = otp.create_template(platform.engine, customer.id, "Your code is {code}")
    test_key, _ = apikeys.create(platform.engine, customer.id, "ci", test=True)
    test_auth = {"accountnumber": customer.number, "apikey": test_key}
    ledger_before, balance_before = _ledger(platform, customer.id)

    # Sent before any dispatcher runs: the timer is rows in the database, not a sleep.
    r = http.post(API + "sms-api", data={**test_auth, "to": ",".join(MAGIC), "text": "integration test"})
    sent = r.json()
    assert r.status_code == 200 and r.headers["x-uvox-test"] == "1"
    assert sent["code"] == "005" and sent["test"] == "1" and sent["accepted"] == "5"
    ids = {res["to"]: res["id"] for res in sent["results"]}
    assert [res["code"] for res in sent["results"]] == ["005"] * 5 and set(ids) == set(MAGIC)
    assert all(res["price"] == "0.0075" for res in sent["results"])  # what a live send would cost
    o = http.post(API + "OTP-api", data={**test_auth, "ref_id": tpl.ref_id, "phone_number": "+15005550001"}).json()
    assert o["code"] == "022" and o["test"] == "1"
    s = http.get(API + "sms-api/status", params={**test_auth, "messageId": ids["+15005550002"]}).json()
    assert s["code"] == "013" and s["state"] == "submitted" and "statecode" not in s

    connector_to(smsc)
    dispatcher().wait_bound(["carrier"])
    live = http.post(API + "sms-api", data={**customer.auth, "to": "+13125550100", "text": "live"}).json()
    assert live["code"] == "005" and "test" not in live

    def reaches(mid, state):
        return poll(
            lambda: (
                (st := http.get(API + "sms-api/status", params={**test_auth, "messageId": mid}).json())["state"]
                == state
                and st
            ),
            timeout=15,
        )

    for to, (state, statecode, error) in MAGIC.items():
        got = reaches(ids[to], state)
        assert got, (to, state)
        assert got["code"] == "013" and got["statecode"] == statecode and got.get("error") == error
        assert got["test"] == "1" and "nothing was charged" in got["notice"]
    assert (
        http.post(API + "OTP-api/verify", data={**test_auth, "sessionid": o["sessionID"], "otp_code": "000000"}).json()[
            "code"
        ]
        == "027"
    )

    # Callbacks: "submitted" then the final state, for each test message, with a live message's body
    # marked as a test one.
    def bodies():
        return [json.loads(raw) for _, raw in hook.seen]

    every = set(ids.values()) | {o["id"], live["id"]}
    assert poll(lambda: {b["messageId"] for b in bodies() if b["state"] != "submitted"} >= every, timeout=15), bodies()
    live_keys = {k for b in bodies() if b["messageId"] == live["id"] for k in b}
    for to, (state, statecode, error) in MAGIC.items():
        mine = [b for b in bodies() if b["messageId"] == ids[to]]
        assert [(b["state"], b["code"]) for b in mine] == [("submitted", "013"), (state, statecode)], to
        # A live message's fields, plus the test mark; and no phone got it: simulated.
        assert all(set(b) == live_keys | {"test"} for b in mine) and mine[-1]["error"] == error and mine[-1]["to"] == to
        assert all(b["test"] == "1" and b["simulated"] is True for b in mine), mine
    live_bodies = [b for b in bodies() if b["messageId"] == live["id"]]
    assert all("test" not in b and b["simulated"] is False for b in live_bodies), live_bodies

    # The SMSC got the live message only, the ledger charged the live message only.
    assert [m["destination_addr"] for m in smsc.call(lambda: smsc.sim.messages())] == ["13125550100"]
    ledger_after, balance_after = _ledger(platform, customer.id)
    assert ledger_after == ledger_before + [("charge", -Decimal(live["price"]), int(live["id"]))]
    assert balance_after == balance_before - Decimal(live["price"])
    with platform.engine.connect() as c:
        assert c.execute(sa.select(sa.func.count()).select_from(t.test_deliveries)).scalar_one() == 0
        assert (
            c.execute(
                sa.select(sa.func.count())
                .select_from(t.messages)
                .where(t.messages.c.test.is_(True), t.messages.c.charged.is_(False))
            ).scalar_one()
            == 6
        )


def test_operator_made_test_key_on_a_fresh_install(uvox_server):
    """What an operator runs: `uvox serve` with its built-in simulator, a test key from the CLI."""
    from tests.conftest import free_port
    from uvox.billing import plans
    from uvox.billing.service import topup
    from uvox.config import Settings
    from uvox.platform import Platform

    control = free_port()
    srv = uvox_server(
        UVOX_SMSC_SIM_PORT=str(free_port()), UVOX_SMSC_SIM_CONTROL_PORT=str(control), UVOX_TEST_MODE_DELAY_SECONDS="1"
    )
    # The customer is set up in-process on the server's database (the CLI for each step is
    # tests/test_cli.py's; each command is a process start); the test key by the CLI.
    p = Platform.open(Settings(database_url=srv.database_url))
    try:
        plans.create_plan(p.engine, "retail", "US$")
        plans.import_rates(p.engine, "retail", "dialprefix,destination,rateinitial,smsrate\n34,Spain,0.015,0.04\n")
        acct = accounts.create_account(p.engine, email="ops@example.com", plan="retail")
        topup(p.engine, acct.id, Decimal("5"))
        live_key, _ = apikeys.create(p.engine, acct.id, "web")
    finally:
        p.close()
    auth = {"accountnumber": acct.number, "apikey": live_key}
    key = srv.admin("apikey", "create", auth["accountnumber"], "--test", "--description", "ci")
    assert key["test"] is True
    test_auth = {"accountnumber": auth["accountnumber"], "apikey": key["apikey"]}
    # +1 is not on this plan: a live key gets 014, a test key may still use the magic numbers.
    assert (
        httpx.post(srv.url + API + "sms-api", data={**auth, "to": "+15005550003", "text": "x"}).json()["code"] == "014"
    )
    r = httpx.post(srv.url + API + "sms-api", data={**test_auth, "to": "+15005550003", "text": "x"}).json()
    assert r["code"] == "005" and r["test"] == "1" and Decimal(r["price"]) == 0
    assert (
        httpx.post(srv.url + API + "sms-api", data={**test_auth, "to": "+34600000001", "text": "y"}).json()["code"]
        == "005"
    )
    assert (
        httpx.post(srv.url + API + "sms-api", data={**test_auth, "to": "+819012345678", "text": "z"}).json()["code"]
        == "014"
    )
    done = poll_for(
        lambda: (
            (s := httpx.get(srv.url + API + "sms-api/status", params={**test_auth, "messageId": r["id"]}).json())[
                "state"
            ]
            == "rejected"
            and s
        ),
        timeout=15,
    )
    assert done and done["statecode"] == "113"
    live = httpx.post(srv.url + API + "sms-api", data={**auth, "to": "+34600000002", "text": "live"}).json()
    assert poll_for(lambda: httpx.get(f"http://127.0.0.1:{control}/messages").json(), timeout=15)
    assert [m["destination_addr"] for m in httpx.get(f"http://127.0.0.1:{control}/messages").json()] == ["34600000002"]
    bal = httpx.get(srv.url + API + "balance", params=test_auth)
    assert bal.headers["x-uvox-test"] == "1" and bal.json()["test"] == "1"
    assert Decimal(bal.json()["balance"]) == Decimal("5") - Decimal(live["price"])
