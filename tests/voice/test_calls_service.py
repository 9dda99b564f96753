"""Authorization, holds, settlement and records, on SQLite and PostgreSQL.

Kamailio's part of the contract is a row in ``acc_cdrs``; these tests write that
row the way Kamailio's acc module does (``tests/voice/test_sip_calls.py`` makes a
real Kamailio write it) and check what the customer then sees: the balance, the
ledger, the call records and the ``calls`` endpoint.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
import sqlalchemy as sa

from uvox.billing import ledger, plans
from uvox.db import schema as t
from uvox.db.kamailio_tables import acc_cdrs
from uvox.softphone import service as sip
from uvox.voice import records, trunks
from uvox.voice.authorize import authorize
from uvox.voice.http import kamailio_reply, kamailio_secret

DOMAIN = "sip.uvox.test"
VOICE_DECK = """dialprefix,destination,rateinitial,smsrate,connectcharge,initblock,billingblock
1,USA,0.6000,0.0075,0,1,1
58,Venezuela,0.0202,0.0500,0.05,30,6
34,Spain,0.0150,0.0400,,,
"""


@pytest.fixture
def voice(platform, make_customer):
    if platform.engine.dialect.name == "postgresql":
        with platform.engine.begin() as c:
            c.execute(sa.delete(acc_cdrs))
    plans.create_plan(platform.engine, "voice", "US$")
    plans.import_rates(platform.engine, "voice", VOICE_DECK)
    trunks.add_trunk(platform.engine, "carrier", "127.0.0.1", 5090)

    def make(balance: str = "1"):
        c = make_customer(balance=balance, plan="voice")
        cred = sip.create_sip_account(platform.engine, c.id, domain=DOMAIN)
        return c, cred.account.username

    return make


def ask(platform, user: str, dialled: str, callid: str | None = None):
    return authorize(
        platform.engine,
        platform.settings,
        caller=user,
        domain=DOMAIN,
        dialled=dialled,
        sip_call_id=callid or f"{user}-{dialled}-{threading.get_ident()}-{datetime.now().timestamp()}",
    )


def funds(platform, account_id):
    with platform.engine.connect() as c:
        return ledger.funds(c, account_id)


def test_outbound_call_is_authorized_with_a_limit_a_hold_and_the_trunks(platform, voice, http):
    c, user = voice("0.03")
    d = ask(platform, user, "+1 305-555-0100", "call-1")
    assert d.code == 200 and d.limit == 3 and not d.onnet
    reply = kamailio_reply(d, platform.secret)
    assert reply.startswith(
        f"code=200;call={d.call_id};limit=3;onnet=0;n=1;t0_name=carrier;t0_host=127.0.0.1;t0_port=5090"
    )
    assert "t0_ruser=13055550100" in reply
    assert funds(platform, c.id) == (D("0.03"), D("0"), D("0.03"))
    r = http.get("/api/get-api/v1/balance", headers={"Api-Key": c.apikey}).json()
    assert r["balance"] == "0.03" and r["available"] == "0.00" and r["held"] == "0.03"
    # A retransmitted INVITE asks again: same call, no second hold.
    again = ask(platform, user, "+1 305-555-0100", "call-1")
    assert (again.code, again.call_id, again.limit) == (200, d.call_id, 3)
    assert funds(platform, c.id)[2] == D("0.03")


def test_refusals_follow_the_contract_order_and_charge_nothing(platform, voice):
    c, user = voice("0.005")
    assert ask(platform, user, "13055550100").code == 402  # 0.6/min: one second costs 0.01
    assert ask(platform, user, "4420000000").code == 404  # no rate for 44
    assert ask(platform, user, "12ab").code == 404  # not a number
    with platform.engine.begin() as conn:
        conn.execute(sa.update(t.accounts).where(t.accounts.c.id == c.id).values(disabled=True))
    assert ask(platform, user, "13055550100").code == 403
    assert funds(platform, c.id) == (D("0.005"), D("0"), D("0"))
    calls, _ = records.list_calls(platform.engine, c.id)
    assert [(x.status, x.sip_code, x.price) for x in calls] == [
        ("refused", 403, D(0)),
        ("refused", 404, D(0)),
        ("refused", 404, D(0)),
        ("refused", 402, D(0)),
    ]


def test_no_trunk_is_503_and_holds_nothing(platform, voice):
    c, user = voice("5")
    trunks.set_enabled(platform.engine, "carrier", False)
    d = ask(platform, user, "34911000000")
    assert d.code == 503
    assert funds(platform, c.id)[2] == D("0")


def test_onnet_needs_no_rate_and_no_money(platform, voice):
    a, user_a = voice("0")
    b, user_b = voice("0")
    d = ask(platform, user_a, user_b)
    assert d.code == 200 and d.onnet and d.callee_user == user_b
    assert kamailio_reply(d, platform.secret).endswith(f"onnet=1;ruser={user_b};n=0")
    assert funds(platform, a.id) == (D("0"), D("0"), D("0"))


@pytest.mark.parametrize("calls", [2, 10])
def test_concurrent_calls_on_a_balance_for_one_get_one_authorization(platform, voice, calls):
    c, user = voice("0.05")  # 5 seconds at 0.6/min
    results = []
    barrier = threading.Barrier(calls)

    def go(i):
        barrier.wait()
        results.append(ask(platform, user, "13055550100", f"race-{i}").code)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(calls)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(results) == [200] + [402] * (calls - 1)
    bal, credit, held = funds(platform, c.id)
    assert held == D("0.05") and bal + credit - held == 0


def test_sms_cannot_spend_money_a_call_holds(platform, voice, http):
    c, user = voice("0.05")
    assert ask(platform, user, "13055550100").code == 200
    r = http.get("/api/get-api/v1/sms-api", params={**c.auth, "to": "13055550100", "text": "hola"}).json()
    assert r["code"] == "009"  # waits for balance instead of taking the call's money


def _cdr(platform, call_id, *, duration=0.0, sip_code="200", hangup="", trunk="carrier", answered_ago=60):
    end = datetime.now(UTC).replace(tzinfo=None)
    start = end - timedelta(seconds=duration)
    with platform.engine.begin() as conn:
        conn.execute(
            sa.insert(acc_cdrs).values(
                start_time=start,
                end_time=end,
                duration=duration,
                uvox_call=str(call_id),
                sip_code=sip_code,
                hangup=hangup,
                trunk=trunk,
                callid=f"c{call_id}",
            )
        )


#: Call records come from Kamailio, which runs on PostgreSQL only.
on_postgres = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


@pytest.fixture
def pg(platform):
    return platform


@on_postgres
@pytest.mark.parametrize("taken, expect", [("0.02", (200, 3, D("0.03"))), ("0.05", (402, 0, D("0")))])
def test_money_taken_between_the_read_and_the_hold_gives_a_shorter_limit_or_402(pg, voice, taken, expect):
    """The hold is optimistic: another call of the account that holds money after
    this one read the balance makes this hold's conditional UPDATE find too little;
    the limit is then computed again from what is left, never from what was read."""
    c, user = voice("0.05")  # 5 seconds at 0.6/min
    engine = pg.engine
    fired = []

    def meanwhile(conn, cursor, statement, params, context, executemany):
        if not fired and "UPDATE ACCOUNTS SET HELD" in statement.upper():  # the hold, alone or in a WITH
            fired.append(True)
            with engine.begin() as other:  # the other call, committed before this hold
                other.execute(
                    sa.update(t.accounts).where(t.accounts.c.id == c.id).values(held=t.accounts.c.held + D(taken))
                )

    sa.event.listen(engine, "before_cursor_execute", meanwhile)
    try:
        d = ask(pg, user, "13055550100")
    finally:
        sa.event.remove(engine, "before_cursor_execute", meanwhile)
    assert fired
    code, limit, hold = expect
    assert (d.code, d.limit) == (code, limit)
    bal, credit, held = funds(pg, c.id)
    assert held == D(taken) + hold and bal + credit - held >= 0
    with engine.connect() as conn:
        row = conn.execute(sa.select(t.calls).where(t.calls.c.id == d.call_id)).one()
    assert row.hold == hold and row.limit_seconds == limit
    assert row.status == ("in_progress" if code == 200 else "refused")


@on_postgres
def test_answered_call_is_charged_by_the_formula_once(pg, voice, http):
    c, user = voice("1")
    d = ask(pg, user, "582121234567")  # 0.0202/min + 0.05, 30 s then 6 s blocks
    _cdr(pg, d.call_id, duration=31.2, hangup="caller")
    assert records.settle(pg.engine) == 1
    # d = 32 s -> billed 36 s -> 0.05 + 0.0202 * 36 / 60 = 0.06212
    bal, _, held = funds(pg, c.id)
    assert (bal, held) == (D("0.937880"), D("0"))
    assert ledger.audit(pg.engine, c.id) == (bal, bal)
    # Kamailio retried the write: the same call reported twice charges nothing more.
    _cdr(pg, d.call_id, duration=31.2, hangup="caller")
    assert records.settle(pg.engine) == 1
    assert funds(pg, c.id)[0] == D("0.937880")
    body = http.get("/api/get-api/v1/calls", headers={"Api-Key": c.apikey}).json()
    assert body["code"] == "120" and len(body["calls"]) == 1 and "next_cursor" not in body
    rec = body["calls"][0]
    assert {
        k: rec[k]
        for k in (
            "status",
            "sip_code",
            "hangup",
            "duration",
            "billed",
            "rate",
            "connectcharge",
            "price",
            "to",
            "direction",
            "trunk",
            "destination",
        )
    } == {
        "status": "answered",
        "sip_code": "200",
        "hangup": "caller",
        "duration": "32",
        "billed": "36",
        "rate": "0.02020",
        "connectcharge": "0.05",
        "price": "0.06212",
        "to": "+582121234567",
        "direction": "outbound",
        "trunk": "carrier",
        "destination": "Venezuela",
    }
    assert rec["answered_at"].endswith("Z") and rec["ended_at"].endswith("Z")


@on_postgres
def test_a_batch_of_records_charges_each_call_once_also_a_call_reported_twice_in_it(pg, voice):
    """Records settled together (the settler takes up to 200 at once): each call gets
    its own price, and a record Kamailio wrote twice before anyone settled charges once."""
    c, user = voice("20")  # four calls held at the longest limit at once
    made = [ask(pg, user, "582121234567", callid=f"batch-{i}") for i in range(4)]
    assert all(d.code == 200 for d in made)
    for i, d in enumerate(made):
        _cdr(pg, d.call_id, duration=31.2 + 6 * i, hangup="caller")  # billed 36, 42, 48, 54 s
    _cdr(pg, made[0].call_id, duration=31.2, hangup="caller")  # the first one again
    assert records.settle(pg.engine) == 5
    prices = [D("0.05") + D("0.0202") * b / 60 for b in (36, 42, 48, 54)]
    bal, _, held = funds(pg, c.id)
    assert held == 0 and bal == D("20") - sum(prices)
    assert ledger.audit(pg.engine, c.id) == (bal, bal)
    with pg.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.calls.c.id, t.calls.c.price, t.calls.c.billed, t.calls.c.status)
            .where(t.calls.c.id.in_([d.call_id for d in made]))
            .order_by(t.calls.c.id)
        ).all()
        charges = conn.execute(
            sa.select(sa.func.count())
            .select_from(t.ledger)
            .where(t.ledger.c.kind == "call", t.ledger.c.account_id == c.id)
        ).scalar()
        unsettled = conn.execute(
            sa.select(sa.func.count()).select_from(acc_cdrs).where(acc_cdrs.c.settled.is_(False))
        ).scalar()
    assert [(r.price, r.billed, r.status) for r in rows] == [
        (p, b, "answered") for p, b in zip(prices, (36, 42, 48, 54))
    ]
    assert charges == 4 and unsettled == 0


@on_postgres
def test_call_ended_by_its_limit_costs_exactly_the_limit(pg, voice):
    c, user = voice("0.03")
    d = ask(pg, user, "13055550100")
    assert d.limit == 3
    _cdr(pg, d.call_id, duration=3.04, hangup="limit")
    records.settle(pg.engine)
    (rec,), _ = records.list_calls(pg.engine, c.id)
    assert (rec.duration, rec.billed, rec.price, rec.hangup) == (3, 3, D("0.03"), "limit")
    assert funds(pg, c.id) == (D("0"), D("0"), D("0"))


@on_postgres
def test_a_dialog_timer_that_fires_long_before_the_limit_bills_what_the_call_lasted(pg, voice):
    """Kamailio's dialog timer also ends a call whose ACK never passed through it (a
    trunk that drops Record-Route): seen billed the 3-hour limit in a trial."""
    c, user = voice("10")
    d = ask(pg, user, "13055550100")  # 0.6/min, 1 s blocks: 10 pay 1000 s
    assert d.limit == 1000
    _cdr(pg, d.call_id, duration=76.07, hangup="limit")
    records.settle(pg.engine)
    (rec,), _ = records.list_calls(pg.engine, c.id)
    assert (rec.duration, rec.billed, rec.price, rec.hangup) == (77, 77, D("0.77"), "system")
    assert funds(pg, c.id) == (D("9.23"), D("0"), D("0"))


@on_postgres
@pytest.mark.parametrize(
    "code,status,hangup",
    [
        ("486", "busy", "trunk"),
        ("487", "cancelled", "caller"),
        ("408", "no_answer", "trunk"),
        ("500", "failed", "trunk"),
    ],
)
def test_unanswered_calls_cost_nothing_and_release_the_hold(pg, voice, code, status, hangup):
    c, user = voice("1")
    d = ask(pg, user, "13055550100")
    _cdr(pg, d.call_id, sip_code=code)
    records.settle(pg.engine)
    (rec,), _ = records.list_calls(pg.engine, c.id)
    assert (rec.status, rec.sip_code, rec.price, rec.hangup, rec.billed) == (status, int(code), D(0), hangup, 0)
    assert funds(pg, c.id) == (D("1"), D("0"), D("0"))
    with pg.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).where(t.ledger.c.kind == "call")).scalar() == 0


@on_postgres
def test_every_trunk_full_before_any_try_is_refused(pg, voice):
    c, user = voice("1")
    d = ask(pg, user, "13055550100")
    _cdr(pg, d.call_id, sip_code="503", trunk="")
    records.settle(pg.engine)
    (rec,), _ = records.list_calls(pg.engine, c.id)
    assert (rec.status, rec.sip_code) == ("refused", 503)


@on_postgres
def test_sweeper_releases_a_hold_whose_call_never_reported(pg, voice):
    c, user = voice("0.03")
    d = ask(pg, user, "13055550100")
    assert records.sweep(pg.engine, 300) == 0  # still within limit + ringing + grace
    later = datetime.now(UTC) + timedelta(seconds=3 + 60 + 301)
    assert records.sweep(pg.engine, 300, at=later) == 1
    assert funds(pg, c.id) == (D("0.03"), D("0"), D("0"))
    # The record turns up after all: it is charged then, once.
    _cdr(pg, d.call_id, duration=2.5, hangup="callee")
    records.settle(pg.engine)
    _cdr(pg, d.call_id, duration=2.5, hangup="callee")
    records.settle(pg.engine)
    assert funds(pg, c.id)[0] == D("0.000000")
    (rec,), _ = records.list_calls(pg.engine, c.id)
    assert (rec.status, rec.billed, rec.price) == ("answered", 3, D("0.03"))


def test_calls_endpoint_pages_with_a_cursor_and_exports_csv(platform, voice, http):
    c, user = voice("0.005")
    for i in range(5):
        ask(platform, user, f"1305555010{i}")  # 402, refused records
    h = {"Api-Key": c.apikey}
    first = http.get("/api/get-api/v1/calls", params={"limit": "2"}, headers=h).json()
    assert first["code"] == "120" and first["statusmessage"] == "Call records"
    assert [x["to"] for x in first["calls"]] == ["+13055550104", "+13055550103"]
    second = http.post("/api/get-api/v1/calls", data={"limit": "2", "cursor": first["next_cursor"]}, headers=h).json()
    assert [x["to"] for x in second["calls"]] == ["+13055550102", "+13055550101"]
    last = http.get("/api/get-api/v1/calls", params={"limit": "2", "cursor": second["next_cursor"]}, headers=h).json()
    assert [x["to"] for x in last["calls"]] == ["+13055550100"] and "next_cursor" not in last
    csv = http.get("/api/get-api/v1/calls", params={"format": "csv"}, headers=h)
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.strip().splitlines()
    assert lines[0] == ",".join(records.CSV_COLUMNS) and len(lines) == 6
    for bad in ({"limit": "0"}, {"limit": "1001"}, {"limit": "x"}, {"cursor": "abc"}, {"since": "yesterday"}):
        r = http.get("/api/get-api/v1/calls", params=bad, headers=h)
        assert r.status_code == 400 and r.json()["code"] == "016", bad
    future = http.get("/api/get-api/v1/calls", params={"since": "2999-01-01T00:00:00Z"}, headers=h).json()
    assert future["calls"] == []


def test_a_trunk_disabled_from_another_process_is_out_of_the_next_call(platform, voice):
    """Call set-up keeps the enabled trunks in memory; a change made by the CLI (another
    process) reaches it through the database before the next call."""
    from tests.conftest import run_uvox

    c, user = voice("5")
    assert ask(platform, user, "34911000000").code == 200  # the trunks are now remembered here
    url = platform.settings.database_url
    assert run_uvox(["admin", "trunk", "disable", "carrier"], url).returncode == 0
    assert ask(platform, user, "34911000001").code == 503
    assert run_uvox(["admin", "trunk", "enable", "carrier"], url).returncode == 0
    d = ask(platform, user, "34911000002")
    assert d.code == 200 and [tr.name for tr in d.trunks] == ["carrier"]


def test_kamailio_endpoint_refuses_without_the_shared_secret(platform, voice, http):
    c, user = voice("1")
    form = {"caller": user, "dialled": "13055550100", "callid": "x1", "domain": DOMAIN}
    assert http.post("/voice/kamailio/authorize", data=form).status_code == 403
    assert http.post("/voice/kamailio/authorize", data=form, headers={"X-UVox-Secret": "0" * 40}).status_code == 403
    secret = {"X-UVox-Secret": kamailio_secret(platform)}
    ok = http.post("/voice/kamailio/authorize", data=form, headers=secret)
    assert ok.status_code == 200 and ok.text.startswith("code=200;call=")
    assert ok.headers["content-type"].startswith("text/plain") and ok.headers["x-request-id"]
    held = funds(platform, c.id)[2]
    assert held > 0
    # The same question as a query string (GET); a retransmission: same call, nothing more held.
    again = http.get("/voice/kamailio/authorize", params=form, headers=secret)
    assert again.status_code == 200 and again.text == ok.text and funds(platform, c.id)[2] == held
    assert http.post("/voice/kamailio/authorize", data={**form, "caller": ""}, headers=secret).text == "code=403"
    assert http.put("/voice/kamailio/authorize", data=form, headers=secret).status_code == 405
    big = http.post(
        "/voice/kamailio/authorize",
        content=b"caller=" + b"x" * 5000,
        headers={**secret, "content-type": "application/x-www-form-urlencoded"},
    )
    assert big.status_code == 413 and big.text == "code=403"


@on_postgres
def test_kamailios_pool_survives_connections_postgresql_dropped_and_holds_once(pg, voice):
    """Kamailio's pool (Platform.calls_engine) does not ping a connection before use: a
    call set up after PostgreSQL dropped its connections (a restart) must still get
    its answer, on a new connection, with its money held once."""
    c, user = voice("1000")  # enough for two calls at the longest limit
    engine = pg.calls_engine
    assert engine is not pg.engine
    first = authorize(engine, pg.settings, caller=user, domain=DOMAIN, dialled="13055550100", sip_call_id="lost-1")
    assert first.code == 200
    with pg.engine.connect() as conn:  # every connection of the pool, as a restart would
        conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    held = funds(pg, c.id)[2]
    d = authorize(engine, pg.settings, caller=user, domain=DOMAIN, dialled="13055550101", sip_call_id="lost-2")
    assert d.code == 200 and d.limit == first.limit
    with pg.engine.connect() as conn:
        row = conn.execute(sa.select(t.calls).where(t.calls.c.sip_call_id == "lost-2")).one()
    assert funds(pg, c.id)[2] == held + row.hold
    # The same Call-ID asked again (Kamailio retransmitting) holds nothing more.
    again = authorize(engine, pg.settings, caller=user, domain=DOMAIN, dialled="13055550101", sip_call_id="lost-2")
    assert again.call_id == d.call_id and funds(pg, c.id)[2] == held + row.hold


@on_postgres
def test_metrics_show_calls_in_progress_their_holds_and_unrated_records(pg, voice, http):
    from tests.helpers import sample

    c, user = voice("0.03")
    before = http.get("/metrics").text
    d = ask(pg, user, "13055550100")
    text = http.get("/metrics").text
    assert sample(text, "uvox_calls_in_progress") == sample(before, "uvox_calls_in_progress") + 1
    assert round(sample(text, "uvox_call_holds") - sample(before, "uvox_call_holds"), 6) == 0.03
    _cdr(pg, d.call_id, duration=1.2, hangup="caller")
    assert sample(http.get("/metrics").text, "uvox_call_records_unrated") >= 1
    records.settle(pg.engine)
    after = http.get("/metrics").text
    assert sample(after, "uvox_calls_in_progress") == sample(before, "uvox_calls_in_progress")
    assert sample(after, "uvox_call_records_unrated") == 0


@on_postgres
def test_a_call_kamailio_never_set_up_gets_its_hold_back_without_waiting_for_its_limit(pg, voice):
    """The platform said yes, but Kamailio's request had timed out and it refused the
    INVITE: no dialog, no CDR. Seen under load: the money stayed held for hours."""
    from uvox.db.kamailio_tables import dialog

    c, user = voice("400")  # three calls' holds (10800 s at 0.6/min = 108 each)
    lost = ask(pg, user, "13055550100", "lost-call")
    live = ask(pg, user, "13055550100", "live-call")
    ringing = ask(pg, user, "13055550100", "late-cdr")
    assert funds(pg, c.id)[2] > 0
    with pg.engine.begin() as conn:  # what Kamailio's dialog module writes at the answer
        conn.execute(
            sa.insert(dialog).values(
                hash_entry=1,
                hash_id=1,
                callid="live-call",
                from_uri="sip:a@x",
                from_tag="f",
                to_uri="sip:b@x",
                to_tag="t",
                caller_cseq="1",
                callee_cseq="1",
                caller_contact="sip:a@x",
                callee_contact="sip:b@x",
                caller_sock="udp:127.0.0.1:5060",
                callee_sock="udp:127.0.0.1:5060",
                state=4,
                start_time=0,
                req_uri="sip:b@x",
            )
        )
    _cdr(pg, ringing.call_id, duration=0, sip_code="487")  # its record is there, not yet rated
    soon = datetime.now(UTC) + timedelta(seconds=60)
    assert records.sweep(pg.engine, 300, at=soon) == 0  # a call may still be ringing
    later = datetime.now(UTC) + timedelta(seconds=records.ORPHAN_SECONDS + 1)
    assert records.sweep(pg.engine, 300, at=later) == 1
    with pg.engine.connect() as conn:
        status = dict(conn.execute(sa.select(t.calls.c.id, t.calls.c.status)).all())
        conn.execute(sa.delete(dialog))
        conn.commit()
    assert (status[lost.call_id], status[live.call_id], status[ringing.call_id]) == (
        "failed",
        "in_progress",
        "in_progress",
    )
    with pg.engine.connect() as conn:
        still = conn.execute(sa.select(sa.func.sum(t.calls.c.hold)).where(t.calls.c.status == "in_progress")).scalar()
    bal, _, held = funds(pg, c.id)
    assert bal == D("400") and held == still == D("216")  # only the lost call's hold came back
