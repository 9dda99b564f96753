"""Low-balance alerts as the account owner gets them: once, by a signed status callback
and by e-mail through a real SMTP server (aiosmtpd), from a real `uvox serve`."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal as D
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from tests.conftest import free_port
from uvox import mail
from uvox.db import schema as t
from uvox.db.session import write

API = "/api/get-api/v1/"


class Inbox:
    """aiosmtpd handler: keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        self.messages.append(envelope)
        return "250 OK"


class Receiver:
    """A customer's callback endpoint: an HTTP server that keeps each POST."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict, bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                raw = self.rfile.read(int(self.headers["content-length"]))
                outer.posts.append(({k.lower(): v for k, v in self.headers.items()}, raw))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self) -> list[tuple[dict, bytes]]:
        return [(h, raw) for h, raw in self.posts if json.loads(raw).get("event") == "low_balance"]


def wait_for(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


def test_a_charge_below_the_threshold_alerts_once_by_callback_and_email(uvox_server, smtp):
    from uvox.accounts import apikeys, service
    from uvox.billing import plans
    from uvox.billing.service import topup
    from uvox.config import Settings
    from uvox.platform import Platform

    controller, inbox = smtp
    receiver = Receiver()
    server = uvox_server(
        "sqlite",
        UVOX_SMTP_HOST="127.0.0.1",
        UVOX_SMTP_PORT=str(controller.port),
        UVOX_SMTP_FROM="alerts@uvox.test",
        UVOX_SMSC_SIM_PORT=str(free_port()),
        UVOX_SMSC_SIM_RECEIPT_DELAY="0.1",
    )
    ops = Platform.open(Settings(database_url=server.database_url))
    try:
        plans.create_plan(ops.engine, "retail", "US$")
        plans.import_rates(ops.engine, "retail", "dialprefix,destination,rateinitial,smsrate\n1,USA,0.01,0.0075\n")
        account = service.create_account(ops.engine, email="owner@example.com", password=None, plan="retail")
        topup(ops.engine, account.id, D("0.03"))
        key, _ = apikeys.create(ops.engine, account.id, "tests")
        _, secret = service.set_callback(ops.engine, account.id, receiver.url)

        with httpx.Client(base_url=server.url, timeout=30, headers={"Api-Key": key}) as http:
            r = http.post(API + "balance-alert", data={"threshold": "0.02"})
            assert r.status_code == 200
            assert {k: r.json()[k] for k in ("code", "threshold", "available", "alerted", "email")} == {
                "code": "143",
                "threshold": "0.02",
                "available": "0.03",
                "alerted": False,
                "email": "owner@example.com",
            }

            def send() -> None:
                assert http.post(API + "sms-api", data={"to": "+12125550100", "text": "hi"}).json()["code"] == "005"

            send()  # 0.0225 left: above the threshold (the one alert below says 0.015)
            send()  # 0.015 left: below, alert
            send()  # 0.0075 left: still below, no second alert
            wait_for(lambda: receiver.alerts() and inbox.messages)
            time.sleep(1.5)  # time for a wrong second alert to arrive (both outboxes poll within 1 s)
            ((headers, raw),) = receiver.alerts()
            body = json.loads(raw)
            assert {k: body[k] for k in ("event", "accountnumber", "currency", "available", "threshold")} == {
                "event": "low_balance",
                "accountnumber": account.number,
                "currency": "US$",
                "available": "0.015",
                "threshold": "0.02",
            }
            assert headers["x-uvox-signature"] == "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
            (email,) = inbox.messages
            assert email.mail_from == "alerts@uvox.test" and email.rcpt_tos == ["owner@example.com"]
            text = email.content.decode()
            assert account.number in text and "0.015 US$" in text and "low balance" in text
            assert http.post(API + "balance-alert").json()["alerted"] is True

            # Money back above the threshold re-arms the alert; not before.
            topup(ops.engine, account.id, D("0.01"))  # 0.0175
            assert http.post(API + "balance-alert").json()["alerted"] is True
            topup(ops.engine, account.id, D("1"))
            assert http.post(API + "balance-alert").json()["alerted"] is False
            assert http.post(API + "balance-alert", data={"threshold": "-1"}).json()["code"] == "144"
            removed = http.post(API + "balance-alert", data={"threshold": "none"}).json()
            assert removed["code"] == "143" and "threshold" not in removed
    finally:
        ops.close()
        receiver.server.shutdown()


def _run(coro):
    """Run a coroutine on a loop of its own, in a thread: a worker that already ran
    the Chromium tests has Playwright's loop running on its main thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def test_without_smtp_no_email_is_sent_and_that_is_logged_once(platform, caplog):
    with write(platform.engine) as conn:
        for n in range(2):
            mail.enqueue(conn, recipient="owner@example.com", subject=f"s{n}", body="b")
    mailer = mail.Mailer(platform.engine, platform.settings.with_(smtp_host=""))
    with caplog.at_level(logging.WARNING, logger="uvox.mail"):
        _run(mailer.once())
        with write(platform.engine) as conn:
            mail.enqueue(conn, recipient="owner@example.com", subject="later", body="b")
        _run(mailer.once())
    said = [r.getMessage() for r in caplog.records if "UVOX_SMTP_HOST" in r.getMessage()]
    assert len(said) == 1 and "2 message(s) dropped" in said[0]
    with platform.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.email_outbox.c.sent_at, t.email_outbox.c.dropped_at, t.email_outbox.c.last_error)
        ).all()
    assert len(rows) == 3 and all(r.sent_at is None and r.dropped_at is not None for r in rows)
    assert {r.last_error for r in rows} == {"no SMTP server configured"}
