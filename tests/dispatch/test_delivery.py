"""End to end: HTTP send → database → dispatcher → SMPP socket → simulator → receipt → status.

Runs on SQLite and on PostgreSQL. Nothing here is mocked: the API is served over
HTTP, the dispatcher is the real one, SMPP goes through smpplib over TCP to the
simulator, and the assertions read the bytes the simulator received.
"""

from decimal import Decimal

import pytest
import sqlalchemy as sa

from uvox.billing import ledger
from uvox.db import schema as t

SEND = "/api/get-api/v1/sms-api"
STATUS = "/api/get-api/v1/sms-api/status"

pytestmark = pytest.mark.timeout(120)


def send(http, customer, to, text, **extra):
    r = http.post(SEND, data={**customer.auth, "to": to, "text": text, **extra})
    body = r.json()
    assert body["code"] in ("005", "009"), body
    return body


def status(http, customer, mid):
    return http.get(STATUS, params={**customer.auth, "messageId": mid}).json()


def wait_state(http, customer, mid, state, poll, timeout=20):
    got = poll(lambda: (s := status(http, customer, mid)).get("state") == state and s, timeout=timeout)
    assert got, status(http, customer, mid)
    return got


def sim_records(smsc, **kw):
    return smsc.call(lambda: smsc.sim.messages(**kw))


def assert_ledger_balances(platform, customer):
    """The cached balance equals the sum of the account's ledger rows (summed here, in Decimal)."""
    with platform.engine.connect() as c:
        amounts = c.execute(sa.select(t.ledger.c.amount).where(t.ledger.c.account_id == customer.id)).scalars().all()
        cached = c.execute(sa.select(t.accounts.c.balance).where(t.accounts.c.id == customer.id)).scalar_one()
    assert cached == sum(amounts, Decimal(0))


def test_gsm_ucs2_and_three_part_messages_are_delivered(platform, http, customer, smsc, connector_to, dispatcher, poll):
    connector_to(smsc)
    dispatcher().wait_bound(["carrier"])
    gsm = send(http, customer, "+1 305 555 0101", "Hola {Ana}: 5€ @ casa", **{"from": "UVox"})
    ucs = send(http, customer, "+34600000001", "Привет 😀 ¿qué tal?")
    long_text = ("Tres partes para un mensaje largo. " * 14)[:440]
    multi = send(http, customer, "+56912345678", long_text, **{"from": "+13055550000"})
    assert multi["segments"] == "3"

    s = wait_state(http, customer, gsm["id"], "delivered", poll)
    assert s["code"] == "013" and s["statecode"] == "110" and s["statetext"] == "Delivered"
    assert s["from"] == "UVox" and "simulated" not in s
    for m in (ucs, multi):
        s = wait_state(http, customer, m["id"], "delivered", poll)
        assert s["code"] == "013" and s["statecode"] == "110"

    [g] = sim_records(smsc, dest="13055550101")
    assert g["data_coding"] == 0 and g["esm_class"] == 0 and g["udh"] == ""
    assert g["text"] == "Hola {Ana}: 5€ @ casa"
    assert bytes.fromhex(g["short_message"]) == "Hola {Ana}: 5€ @ casa".encode("gsm03.38")
    assert g["source_addr"] == "UVox" and g["source_addr_ton"] == 5 and g["registered_delivery"] == 1

    [u] = sim_records(smsc, dest="34600000001")
    assert u["data_coding"] == 8 and bytes.fromhex(u["short_message"]) == "Привет 😀 ¿qué tal?".encode("utf-16-be")

    parts = sim_records(smsc, dest="56912345678")
    assert len(parts) == 3
    ref = int(multi["id"]) & 0xFF
    assert [p["udh"] for p in parts] == [f"050003{ref:02x}03{i:02x}" for i in (1, 2, 3)]
    assert all(p["esm_class"] == 0x40 and p["data_coding"] == 0 for p in parts)
    assert "".join(p["text"] for p in parts) == long_text
    assert parts[0]["source_addr"] == "13055550000" and parts[0]["source_addr_ton"] == 1

    with platform.engine.connect() as c:
        rows = c.execute(
            sa.select(t.message_parts.c.part_no, t.message_parts.c.smsc_message_id, t.message_parts.c.state)
            .where(t.message_parts.c.message_id == int(multi["id"]))
            .order_by(t.message_parts.c.part_no)
        ).all()
    assert [(r.part_no, r.smsc_message_id, r.state) for r in rows] == [
        (i, p["message_id"], "delivered") for i, p in enumerate(parts, start=1)
    ]
    assert_ledger_balances(platform, customer)


def test_permanent_rejection_fails_the_message_and_refunds_it(
    platform, http, make_customer, smsc, connector_to, dispatcher, poll
):
    customer = make_customer(balance="1")
    smsc.sim.set_rules([{"action": "reject", "dest": "^1305", "status": 0x0B}])
    connector_to(smsc)
    dispatcher().wait_bound(["carrier"])
    bad = send(http, customer, "+13055550102", "refused")
    good = send(http, customer, "+13125550102", "accepted")
    s = wait_state(http, customer, bad["id"], "failed", poll)
    assert s["code"] == "114" and s["statecode"] == "114" and "Invalid Destination Address" in s["error"]
    wait_state(http, customer, good["id"], "delivered", poll)
    with platform.engine.connect() as c:
        bal, _ = ledger.balance(c, customer.id)
    assert bal == Decimal("1") - Decimal(good["price"])
    kinds = [r["kind"] for r in ledger.history(platform.engine, customer.id)]
    assert kinds.count("refund") == 1
    assert_ledger_balances(platform, customer)


def test_receipt_states_reach_the_status(platform, http, customer, smsc, connector_to, dispatcher, poll):
    smsc.sim.set_rules(
        [
            {"action": "receipt", "dest": "^1888", "stat": "UNDELIV"},
            {"action": "receipt", "dest": "^1777", "stat": "EXPIRED"},
            {"action": "receipt", "dest": "^1666", "stat": "REJECTD"},
            {"action": "drop", "dest": "^1555"},
        ]
    )
    connector_to(smsc)
    dispatcher().wait_bound(["carrier"])
    ids = {
        to: send(http, customer, to, "x")["id"]
        for to in ("+18885550100", "+17775550100", "+16665550100", "+15555550100")
    }
    for to, state, code in (
        ("+18885550100", "undelivered", "111"),
        ("+17775550100", "expired", "112"),
        ("+16665550100", "rejected", "113"),
    ):
        s = wait_state(http, customer, ids[to], state, poll)
        assert s["code"] == "013" and s["statecode"] == code  # it did leave: "SMS Sent", then the outcome
        assert "stat:" in s["error"]
    s = wait_state(http, customer, ids["+15555550100"], "submitted", poll)
    assert s["code"] == "013" and "statecode" not in s  # no receipt: sent, outcome unknown
    assert_ledger_balances(platform, customer)


def test_throttling_slows_down_and_still_delivers(platform, http, customer, smsc, connector_to, dispatcher, poll):
    smsc.sim.set_rules([{"action": "throttle", "count": 4}])
    connector_to(smsc)
    d = dispatcher(connector_options=dict(reconnect_min=0.1, throttle_backoff_max=0.2))
    d.wait_bound(["carrier"])
    ids = [send(http, customer, f"+1312555{i:04d}", f"m{i}")["id"] for i in range(5)]
    for mid in ids:
        wait_state(http, customer, mid, "delivered", poll)
    recs = sim_records(smsc)
    assert sum(r["outcome"] == "throttled" for r in recs) == 4
    assert sorted(r["destination_addr"] for r in recs if r["outcome"] == "accepted") == [
        f"1312555{i:04d}" for i in range(5)
    ]


def test_longest_prefix_routing_and_failover(platform, http, customer, make_smsc, connector_to, dispatcher, poll):
    usa, world = make_smsc(), make_smsc()
    connector_to(usa, "usa", prefixes=["1"])
    connector_to(world, "world")
    d = dispatcher()
    d.wait_bound(["usa", "world"])
    a = send(http, customer, "+13125550001", "to usa")
    b = send(http, customer, "+34600000002", "to spain")
    wait_state(http, customer, a["id"], "delivered", poll)
    wait_state(http, customer, b["id"], "delivered", poll)
    assert [r["destination_addr"] for r in sim_records(usa)] == ["13125550001"]
    assert [r["destination_addr"] for r in sim_records(world)] == ["34600000002"]

    usa.stop()  # the carrier for +1 goes down: +1 fails over to the default route
    poll(lambda: not d.d.held["usa"], timeout=10)
    c = send(http, customer, "+13125550002", "failover")
    wait_state(http, customer, c["id"], "delivered", poll)
    assert [r["destination_addr"] for r in sim_records(world)] == ["34600000002", "13125550002"]
    with platform.engine.connect() as conn:
        assert (
            conn.execute(sa.select(t.messages.c.connector).where(t.messages.c.id == int(c["id"]))).scalar() == "world"
        )


def test_simulator_route_is_flagged_in_status(platform, http, customer, smsc, dispatcher, poll):
    # No connector configured and the simulator enabled: the simulator is the default route.
    d = dispatcher(settings=dict(smsc_sim=True, smsc_sim_port=smsc.sim.port))
    d.wait_bound(["smsc-sim"])
    m = send(http, customer, "+13125550003", "hello simulator")
    s = wait_state(http, customer, m["id"], "delivered", poll)
    assert s["simulated"] is True and "simulator" in s["notice"]
    assert [r["destination_addr"] for r in sim_records(smsc)] == ["13125550003"]


def test_transmitter_bind_gets_receipts_on_a_receiver_bind(
    platform, http, customer, smsc, connector_to, dispatcher, poll
):
    connector_to(smsc, bind_mode="transmitter")
    dispatcher().wait_bound(["carrier"])
    m = send(http, customer, "+13125550004", "tx + rx")
    wait_state(http, customer, m["id"], "delivered", poll)
    assert smsc.call(smsc.sim.stats)["binds"] == 2  # one transmitter, one receiver


def test_a_part_reported_twice_does_not_stop_the_writer(platform, http, customer, smsc, connector_to, dispatcher, poll):
    """An SMSC answer that outlives its timeout must not wedge every later write."""
    from uvox.dispatch.results import PartAccepted, Recorder

    connector_to(smsc)
    d = dispatcher()
    d.wait_bound(["carrier"])
    first = send(http, customer, "+13125550005", "one")
    wait_state(http, customer, first["id"], "delivered", poll)
    Recorder().apply(platform.engine, [PartAccepted(int(first["id"]), 1, "carrier", "duplicate-report")])
    second = send(http, customer, "+13125550006", "two")
    wait_state(http, customer, second["id"], "delivered", poll)
