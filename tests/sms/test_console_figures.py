"""The console's figures count live traffic only: a test key's messages (sms/testmode.py)
never reach a carrier and are never charged, so the functions behind the customer's
dashboard and the operator's overview leave them out.

Sent through the real API with a live and a test key of one account; the test messages
are ended by the dispatcher's own test-mode round (``dispatch.testmode.advance``), the
live ones are given the receipts a carrier would have sent.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from tests.api.v1.helpers import call
from uvox.accounts import apikeys
from uvox.db import schema as t
from uvox.dispatch import status
from uvox.dispatch import testmode as timer
from uvox.sms import history
from uvox.sms.states import MessageState

MIAMI = ["13055550100", "13055550101", "13055550102", "13055550103"]  # USA Miami
MAGIC = ["+15005550001", "+15005550002", "+15005550003", "+15005550004"] * 2  # 8 test sends, 6 not delivered


def live_and_test_traffic(platform, http, customer) -> list[int]:
    """Four live messages delivered through carrier-a; eight test sends ended by their
    timer (two delivered, six not). Returns the live messages' ids."""
    key, _ = apikeys.create(platform.engine, customer.id, "ci", test=True)
    test = {"accountnumber": customer.number, "apikey": key}
    for number in MAGIC:
        assert call(http, "sms-api", "form", {**test, "to": number, "text": "test"}).json()["code"] == "005"
    live = call(http, "sms-api", "form", {**customer.auth, "to": ",".join(MIAMI), "text": "live"}).json()
    ids = [int(r["id"]) for r in live["results"]]
    # Test messages still waiting for their timer are no queue of the platform's either.
    assert status.queue(platform.engine).depth[MessageState.SUBMITTED] == 0
    with platform.engine.begin() as conn:
        conn.execute(sa.update(t.test_deliveries).values(due_at=datetime.now(UTC) - timedelta(seconds=1)))
        timer.advance(conn)
        m = t.messages
        conn.execute(sa.update(m).where(m.c.id.in_(ids)).values(state="delivered", connector="carrier-a"))
    with platform.engine.connect() as conn:
        ended = conn.execute(sa.select(m.c.state).where(m.c.test.is_(True))).scalars().all()
    assert len(ended) == 8 and ended.count("delivered") == 2, ended  # the test traffic is there, and final
    return ids


def test_console_figures_leave_test_messages_out(platform, http, customer):
    live_and_test_traffic(platform, http, customer)

    today = history.per_day(platform.engine, customer.id)[-1]
    assert (today.messages, today.segments) == (4, 4)
    assert history.per_day(platform.engine, None)[-1].messages == 4

    rows = history.by_destination(platform.engine, customer.id)
    assert [(r.messages, r.delivered, r.not_delivered, r.rate) for r in rows] == [(4, 4, 0, 100)], rows

    traffic = status.traffic_by_connector(platform.engine)
    assert [(r.connector, r.messages, r.delivered, r.errors) for r in traffic] == [("carrier-a", 4, 4, 0)], traffic
    assert sum(status.queue(platform.engine).depth.values()) == 0
