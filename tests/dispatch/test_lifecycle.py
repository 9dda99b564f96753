"""Status callbacks, waiting for balance, validity expiry: what a customer sees over time."""

import hashlib
import hmac
import json
import threading
from datetime import timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa

from tests.helpers import closing_factory
from uvox.accounts import service as accounts
from uvox.billing.service import topup
from uvox.clock import now
from uvox.db import schema as t

SEND = "/api/get-api/v1/sms-api"
STATUS = "/api/get-api/v1/sms-api/status"

pytestmark = pytest.mark.timeout(120)


class Receiver:
    """A customer's callback endpoint: fails the first ``fail_first`` POSTs with HTTP 500."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.seen: list[tuple[dict, bytes]] = []
        self.lock = threading.Lock()
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with outer.lock:
                    outer.seen.append((dict(self.headers), body))
                    fail = len(outer.seen) <= outer.fail_first
                self.send_response(500 if fail else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    yield from closing_factory(Receiver)


def status(http, customer, mid):
    return http.get(STATUS, params={**customer.auth, "messageId": mid}).json()


def test_every_state_change_is_posted_signed_and_retried(
    platform, http, customer, smsc, connector_to, dispatcher, receiver, poll
):
    hook = receiver(fail_first=1)
    _, secret = accounts.set_callback(platform.engine, customer.id, hook.url)
    connector_to(smsc)
    dispatcher().wait_bound(["carrier"])
    mid = http.post(SEND, data={**customer.auth, "to": "+13125550100", "text": "call me back"}).json()["id"]

    assert poll(lambda: len([1 for h, b in hook.seen if b"delivered" in b]) == 1)
    bodies = []
    for headers, raw in hook.seen:
        expected = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        assert headers["X-UVox-Signature"] == expected
        assert headers["Content-Type"] == "application/json"
        bodies.append(json.loads(raw))
    # The first POST (submitted) got a 500 and was sent again; then delivered.
    assert [b["state"] for b in bodies] == ["submitted", "submitted", "delivered"]
    assert bodies[0] == bodies[1]
    last = bodies[-1]
    assert last["messageId"] == mid and last["to"] == "+13125550100"
    assert last["code"] == "110" and last["statusmessage"] == "Delivered" and last["simulated"] is False

    def outbox():
        with platform.engine.connect() as c:
            return c.execute(
                sa.select(t.callbacks.c.attempts, t.callbacks.c.delivered_at).order_by(t.callbacks.c.id)
            ).all()

    # The sender records a result just after the POST returns.
    assert poll(lambda: all(r.delivered_at for r in outbox()))
    assert [r.attempts for r in outbox()] == [2, 1]


def test_callback_url_given_with_the_request_wins(
    platform, http, customer, smsc, connector_to, dispatcher, receiver, poll
):
    account_hook, request_hook = receiver(), receiver()
    accounts.set_callback(platform.engine, customer.id, account_hook.url)
    connector_to(smsc)
    dispatcher().wait_bound(["carrier"])
    http.post(SEND, data={**customer.auth, "to": "+13125550101", "text": "x", "callback_url": request_hook.url})
    assert poll(lambda: len(request_hook.seen) == 2)
    assert account_hook.seen == []


def test_waiting_messages_are_released_fifo_by_a_topup_then_the_rest_expire(
    platform, http, make_customer, smsc, connector_to, dispatcher, poll
):
    customer = make_customer(balance="0")
    connector_to(smsc)
    dispatcher().wait_bound(["carrier"])
    # 0.0075 a segment to +1: each message below costs 0.0075.
    ids = []
    for i in range(3):
        r = http.post(SEND, data={**customer.auth, "to": f"+1312555020{i}", "text": f"wait {i}"}).json()
        assert r["code"] == "009"
        ids.append(r["id"])
    assert status(http, customer, ids[0])["code"] == "012"

    topup(platform.engine, customer.id, Decimal("0.015"))  # enough for two, oldest first
    for mid in ids[:2]:
        assert poll(lambda mid=mid: status(http, customer, mid).get("state") == "delivered")
    s = status(http, customer, ids[2])
    assert s["code"] == "012" and s["state"] == "waiting_balance"
    assert [r["destination_addr"] for r in smsc.call(lambda: smsc.sim.messages())] == ["13125550200", "13125550201"]

    # Its validity runs out (72 h by default; moved into the past here): it expires, unsent, uncharged.
    with platform.engine.begin() as c:
        c.execute(
            sa.update(t.messages).where(t.messages.c.id == int(ids[2])).values(expires_at=now() - timedelta(seconds=1))
        )
    assert poll(lambda: status(http, customer, ids[2]).get("state") == "expired")
    s = status(http, customer, ids[2])
    assert s["code"] == "112" and s["statecode"] == "112"
    with platform.engine.connect() as c:
        bal = c.execute(sa.select(t.accounts.c.balance).where(t.accounts.c.id == customer.id)).scalar()
    assert bal == Decimal("0")


def test_queued_message_that_expires_is_refunded(platform, http, make_customer, dispatcher, poll):
    customer = make_customer(balance="1")
    # No connector and no simulator: nothing can carry it.
    dispatcher()
    r = http.post(SEND, data={**customer.auth, "to": "+13125550300", "text": "nowhere to go"}).json()
    assert r["code"] == "005"
    assert status(http, customer, r["id"])["code"] == "011"
    with platform.engine.begin() as c:
        c.execute(
            sa.update(t.messages).where(t.messages.c.id == int(r["id"])).values(expires_at=now() - timedelta(seconds=1))
        )
    assert poll(lambda: status(http, customer, r["id"]).get("state") == "expired")
    with platform.engine.connect() as c:
        bal = c.execute(sa.select(t.accounts.c.balance).where(t.accounts.c.id == customer.id)).scalar()
        kinds = (
            c.execute(sa.select(t.ledger.c.kind).where(t.ledger.c.account_id == customer.id).order_by(t.ledger.c.id))
            .scalars()
            .all()
        )
    assert bal == Decimal("1") and kinds == ["topup", "charge", "refund"]
