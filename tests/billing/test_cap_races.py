"""Spend caps where things happen at once, and refunds: the races of issue 14.

- Calls set up at the same instant on an account whose call cap has room for one
  call's hold: exactly one is authorized (the cap is checked in the hold's own
  statement, not only in the read before it).
- A cap saved while a send waits for the account's row is seen by that send.
- A refund gives back the room under the cap, in the period of the original charge.

Real PostgreSQL (and SQLite where the race does not apply), the real authorization,
API and ledger; USA (+1) SMS cost 0.0075 (tests/conftest.py's deck).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal as D

import httpx
import pytest
import sqlalchemy as sa

from uvox.billing import caps, ledger, plans
from uvox.clock import now
from uvox.db import schema as t
from uvox.db.session import write
from uvox.softphone import service as sip
from uvox.voice import authorize, trunks

from .test_caps import US, VOICE_DECK, money, send, set_cap

DOMAIN = "sip.uvox.test"


def _voice_customer(platform, make_customer, balance: str = "100"):
    plans.create_plan(platform.engine, "voice", "US$")
    plans.import_rates(platform.engine, "voice", VOICE_DECK)
    trunks.add_trunk(platform.engine, "carrier", "127.0.0.1", 5090)
    c = make_customer(balance=balance, plan="voice")
    user = sip.create_sip_account(platform.engine, c.id, domain=DOMAIN).account.username
    return c, user


def _held(platform, account_id: int) -> D:
    with platform.engine.connect() as conn:
        return conn.execute(sa.select(t.accounts.c.held).where(t.accounts.c.id == account_id)).scalar_one()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)  # calls run on Kamailio's PostgreSQL
def test_calls_set_up_at_once_never_hold_past_a_call_cap(platform, http, make_customer):
    c, user = _voice_customer(platform, make_customer)
    # 0.01 a second; the money allows hours, the day cap 0.05: one call of 5 s.
    set_cap(http, c.apikey, service="calls", day="0.05")
    for attempt in range(5):
        start = threading.Barrier(10)

        def one(i: int, attempt: int = attempt, start: threading.Barrier = start) -> authorize.Decision:
            start.wait()
            return authorize.authorize(
                platform.engine,
                platform.settings,
                caller=user,
                domain=DOMAIN,
                dialled="+13055550100",
                sip_call_id=f"race-{attempt}-{i}",
            )

        with ThreadPoolExecutor(10) as pool:
            decisions = list(pool.map(one, range(10)))
        codes = sorted(d.code for d in decisions)
        assert codes == [200] + [402] * 9, (attempt, codes)
        assert [d.limit for d in decisions if d.code == 200] == [5]
        assert _held(platform, c.id) == D("0.05")  # never more than the cap
        with platform.engine.begin() as conn:  # the call never happened: its hold goes back for the next round
            conn.execute(sa.update(t.accounts).where(t.accounts.c.id == c.id).values(held=0))
            conn.execute(sa.delete(t.calls))


def test_a_hold_never_takes_more_than_the_room_under_the_cap(platform, http, make_customer):
    """A call's limit is the least of what the money and the caps allow, also when
    another call's hold already took part of the room."""
    c, user = _voice_customer(platform, make_customer)
    set_cap(http, c.apikey, service="calls", day="0.08")

    def ask(callid: str) -> authorize.Decision:
        return authorize.authorize(
            platform.engine, platform.settings, caller=user, domain=DOMAIN, dialled="+13055550100", sip_call_id=callid
        )

    first = ask("room-1")
    assert (first.code, first.limit) == (200, 8)
    with platform.engine.begin() as conn:  # the first call's hold shrinks to 0.05 (3 s of room left)
        conn.execute(sa.update(t.accounts).where(t.accounts.c.id == c.id).values(held=D("0.05")))
    second = ask("room-2")
    assert (second.code, second.limit) == (200, 3)
    assert _held(platform, c.id) == D("0.08")


def _lock_waiters(platform) -> int:
    with platform.engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ).scalar_one()


def _wait_for_waiters(platform, n: int) -> None:
    deadline = time.monotonic() + 10
    while _lock_waiters(platform) < n:
        assert time.monotonic() < deadline, f"fewer than {n} transactions wait for the account's row"
        time.sleep(0.02)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)  # SQLite: one writer at a time, no race
def test_a_cap_saved_while_a_send_waits_for_the_account_is_seen_by_it(platform, base_url, make_customer):
    c = make_customer(balance="10")
    balance_before, _ = money(platform, c.id)
    # Something holds the account's row (a top-up, say); a cap save and then a send queue behind it.
    with platform.engine.connect() as blocker:
        tx = blocker.begin()
        blocker.execute(sa.select(t.accounts.c.id).where(t.accounts.c.id == c.id).with_for_update()).all()
        with ThreadPoolExecutor(2) as pool:
            saved = pool.submit(caps.set_caps, platform.engine, c.id, "sms", "", {"day": D(0)})
            _wait_for_waiters(platform, 1)
            with httpx.Client(base_url=base_url, timeout=30) as client:
                sent = pool.submit(send, client, c.apikey, US)
                _wait_for_waiters(platform, 2)
                tx.commit()
                assert [s.cap.amount for s in saved.result(timeout=30)] == [D(0)]
                # The cap was committed before the send could charge: the send sees it.
                assert sent.result(timeout=30)["code"] == "140"
    assert money(platform, c.id) == (balance_before, 0)


def _message_ids(platform, account_id: int) -> list[int]:
    with platform.engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(t.messages.c.id)
                .where(t.messages.c.account_id == account_id, t.messages.c.charged.is_(True))
                .order_by(t.messages.c.id)
            ).scalars()
        )


def _refund(platform, message_id: int) -> None:
    """What the dispatcher does when no carrier accepted a message (dispatch/results.py)."""
    with write(platform.engine) as conn:
        conn.execute(sa.update(t.messages).where(t.messages.c.id == message_id).values(state="failed"))
        assert ledger.refund_message(conn, message_id, "refund: refused by the carrier")


def _spent(http, apikey: str) -> dict[str, str]:
    return {s["period"]: s["spent"] for s in set_cap(http, apikey)["caps"]}


def test_a_refund_gives_back_the_room_under_the_cap(platform, http, make_customer):
    c = make_customer(balance="10")
    set_cap(http, c.apikey, service="sms", day="0.0075", month="0.0075")
    assert send(http, c.apikey, US)["code"] == "005"
    assert send(http, c.apikey, US)["code"] == "140"
    (first,) = _message_ids(platform, c.id)
    _refund(platform, first)
    assert _spent(http, c.apikey) == {"day": "0.00", "month": "0.00"}
    # The same message fits again, and only once.
    assert send(http, c.apikey, US)["code"] == "005"
    assert send(http, c.apikey, US)["code"] == "140"
    # Caps saved again recount from the ledger: the refund stays given back.
    set_cap(http, c.apikey, service="sms", day="0.0075", month="0.0075")
    assert _spent(http, c.apikey) == {"day": "0.0075", "month": "0.0075"}
    assert money(platform, c.id) == (D("9.9925"), 2)  # refused sends store nothing


def test_a_refund_gives_back_room_only_in_the_periods_of_its_charge(platform, http, make_customer):
    c = make_customer(balance="10")
    set_cap(http, c.apikey, service="sms", day="1", month="1")
    assert send(http, c.apikey, US)["code"] == "005"
    assert send(http, c.apikey, US)["code"] == "005"
    old, new = _message_ids(platform, c.id)
    # The first was charged yesterday: today's counters do not have it.
    yesterday = now() - timedelta(days=1)
    with platform.engine.begin() as conn:
        conn.execute(sa.update(t.ledger).where(t.ledger.c.message_id == old).values(created_at=yesterday))
    same_month = caps.period_keys(yesterday)["month"] == caps.period_keys(now())["month"]
    month = "0.015" if same_month else "0.0075"
    set_cap(http, c.apikey, service="sms", day="1", month="1")  # recount from the ledger
    assert _spent(http, c.apikey) == {"day": "0.0075", "month": month}
    # Its refund today gives back month room (when yesterday was this month), no day room.
    _refund(platform, old)
    assert _spent(http, c.apikey) == {"day": "0.0075", "month": "0.0075"}
    set_cap(http, c.apikey, service="sms", day="1", month="1")
    assert _spent(http, c.apikey) == {"day": "0.0075", "month": "0.0075"}
    _refund(platform, new)
    assert _spent(http, c.apikey) == {"day": "0.00", "month": "0.00"}
