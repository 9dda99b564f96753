"""uvox.client (sync and async) against the real app over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import concurrent.futures
from decimal import Decimal

import pytest
import sqlalchemy as sa

from tests.conftest import free_port
from uvox import secretbox
from uvox.client import (
    AsyncClient,
    Client,
    UVoxConnectionError,
    UVoxError,
    best_rate,
)
from uvox.db import schema


def code_sent(platform, message_id: str) -> str:
    """What the phone reads: the real OTP text, unsealed as the dispatcher does."""
    with platform.engine.connect() as c:
        row = c.execute(sa.select(schema.messages).where(schema.messages.c.id == int(message_id))).one()
    return secretbox.open_(platform.secret, row.secret_text).rsplit(" ", 1)[1]


@pytest.fixture
def template(platform, customer):
    from uvox.otp import service

    return service.create_template(platform.engine, customer.id, "Your UVox code is {code}", "login")


@pytest.fixture
def client(base_url, customer):
    with Client(customer.number, customer.apikey, url=base_url) as c:
        yield c


def test_send_and_follow_one_message(client):
    sent = client.send_sms("+1 305-555-0101", "Hello from the client", sender="UVox")
    assert sent.accepted and not sent.queued_for_balance
    assert (sent.code, sent.to) == ("005", "+13055550101")
    assert sent.id and sent.id.isdigit()
    status = client.sms_status(sent.id)
    assert status.id == sent.id
    assert status.code in {"011", "013"} and status.state in {"queued", "submitting", "submitted", "delivered"}
    assert not status.delivered or status.state == "delivered"


def test_bulk_send_gives_one_result_per_number_and_splits_past_200(client):
    results = client.send_bulk(["+13055550101", "12ab", "+999 1234 5678", "+58 412 555 0101"], "Promo")
    assert [r.code for r in results] == ["005", "002", "014", "005"]
    assert [r.accepted for r in results] == [True, False, False, True]
    assert results[1].to == "12ab" and results[1].id is None
    assert len({r.id for r in results if r.accepted}) == 2

    many = [f"+1305555{i:04d}" for i in range(205)]
    results = client.send_bulk(many, "Bulk")
    assert len(results) == 205 and all(r.accepted for r in results)
    assert [r.to for r in results] == many


def test_every_refusal_is_an_exception_with_the_manuals_code(client, base_url, customer):
    with pytest.raises(UVoxError) as err:
        client.send_sms("12ab", "Hello")
    assert err.value.code == "002" and err.value.http_status == 400
    with pytest.raises(UVoxError) as err:
        client.send_sms("+13055550101", "   ")
    assert err.value.code == "003"
    with pytest.raises(UVoxError) as err:
        client.send_sms("+13055550101", "Hello", sender="MyCompanyNameTooLong")
    assert err.value.code == "104" and err.value.detail
    with pytest.raises(UVoxError) as err:
        client.sms_status("99999999")
    assert err.value.code == "010"
    with Client(customer.number, "WRONG" + customer.apikey, url=base_url) as wrong:
        with pytest.raises(UVoxError) as err:
            wrong.balance()
    assert err.value.code == "001" and err.value.message == "API Key Invalid or Not Available"
    assert err.value.http_status == 401


def test_the_key_alone_is_enough(base_url, customer):
    with Client(None, customer.apikey, url=base_url) as c:
        assert c.balance().accountnumber == customer.number


def test_no_balance_queues_instead_of_failing(base_url, make_customer):
    poor = make_customer(balance="0")
    with Client(poor.number, poor.apikey, url=base_url) as c:
        sent = c.send_sms("+13055550101", "Waiting")
        assert sent.accepted and sent.queued_for_balance and sent.code == "009"
        status = c.sms_status(sent.id)
        assert status.code == "012" and status.pending and status.state == "waiting_balance"


def test_balance_and_rates_are_exact_decimals(client):
    before = client.balance()
    assert before.balance == Decimal("10") and before.currency == "US$"
    client.send_sms("+13055550101", "one segment")
    after = client.balance()
    assert after.balance == Decimal("10") - Decimal("0.0080")  # USA Miami smsrate in the test deck
    rates = client.rates()
    assert all(isinstance(r.rateinitial, Decimal) for r in rates)
    assert best_rate(rates, "+58 412 555 0101").destination == "Venezuela Mobile Digitel"
    assert best_rate(rates, "+13055550101").rateinitial == Decimal("0.012")


def test_otp_request_and_verify(client, platform, template):
    session = client.otp_request(template.ref_id, "+1 305 555 0100")
    assert session.code == "022" and session.phone_number == "+13055550100" and session.session_id
    code = code_sent(platform, session.message_id)
    with pytest.raises(UVoxError) as err:
        client.otp_verify(session.session_id, f"{(int(code) + 1) % 1_000_000:06d}")
    assert err.value.code == "025"
    ok = client.otp_verify(session.session_id, code)
    assert ok.matched and ok.code == "027"
    with pytest.raises(UVoxError) as err:
        client.otp_verify(session.session_id, code)
    assert err.value.code == "026"
    with pytest.raises(UVoxError) as err:
        client.otp_verify("no-such-session", "123456")
    assert err.value.code == "024"
    with pytest.raises(UVoxError) as err:
        client.otp_request("no-such-template", "+13055550100")
    assert err.value.code == "020"


def test_otp_without_balance_keeps_the_session(base_url, make_customer, platform):
    from uvox.otp import service

    poor = make_customer(balance="0")
    tpl = service.create_template(platform.engine, poor.id, "Code {code}")
    with Client(poor.number, poor.apikey, url=base_url) as c, pytest.raises(UVoxError) as err:
        c.otp_request(tpl.ref_id, "+13055550100")
    assert err.value.code == "021" and err.value.session_id


def test_unreachable_platform_is_a_connection_error():
    with Client("1", "k", url=f"http://127.0.0.1:{free_port()}", timeout=2) as c:
        with pytest.raises(UVoxConnectionError) as err:
            c.balance()
    assert err.value.code is None and "unreachable" in err.value.message


def run_async(coro):
    """Run a coroutine on its own event loop in a fresh thread: the portal's session-wide
    Playwright (sync API) keeps a loop running in the main thread, where asyncio.run() and
    pytest-asyncio both refuse to start another."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result(timeout=60)


def test_async_client_covers_the_same_calls(base_url, customer, platform, template):
    run_async(_async_calls(base_url, customer, platform, template))


async def _async_calls(base_url, customer, platform, template):
    async with AsyncClient(customer.number, customer.apikey, url=base_url + "/api/get-api/v1/") as c:
        sent = await c.send_sms("+13055550101", "async")
        assert sent.accepted
        assert (await c.sms_status(sent.id)).id == sent.id
        bulk = await c.send_bulk("+13055550102,+584125550101", "async bulk")
        assert [r.code for r in bulk] == ["005", "005"]
        assert (await c.balance()).balance < Decimal("10")
        assert await c.rates()
        session = await c.otp_request(template.ref_id, "+13055550100")
        assert (await c.otp_verify(session.session_id, code_sent(platform, session.message_id))).matched
        with pytest.raises(UVoxError) as err:
            await c.send_sms("12ab", "x")
        assert err.value.code == "002"


def test_status_follows_a_message_to_delivered_or_undelivered(uvox_server, tmp_path):
    """Through a real `uvox serve` with its dispatcher and SMSC simulator."""
    import time

    import httpx

    from tests.conftest import DECK
    from tests.integrations.test_vtiger import require_delivery_engine

    require_delivery_engine()
    control = free_port()
    server = uvox_server(
        UVOX_SMSC_SIM_PORT=str(free_port()), UVOX_SMSC_SIM_CONTROL_PORT=str(control), UVOX_SMSC_SIM_RECEIPT_DELAY="0.1"
    )
    deck = tmp_path / "deck.csv"
    deck.write_text(DECK)
    server.admin("plan", "create", "test", "--currency", "US$")
    server.admin("rates", "import", "test", str(deck))
    account = server.admin("account", "create", "--email", "client@example.com", "--plan", "test")["accountnumber"]
    server.admin("topup", account, "5")
    key = server.admin("apikey", "create", account)["apikey"]
    httpx.post(
        f"http://127.0.0.1:{control}/rules", json=[{"action": "receipt", "dest": "13055550199$", "stat": "UNDELIV"}]
    )

    with Client(account, key, url=server.url) as c:
        good = c.send_sms("+13055550101", "to be delivered")
        bad = c.send_sms("+13055550199", "to be lost")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            statuses = [c.sms_status(good.id), c.sms_status(bad.id)]
            if all(s.state in ("delivered", "undelivered") for s in statuses):
                break
            time.sleep(0.2)
    assert statuses[0].state == "delivered" and statuses[0].delivered and statuses[0].code == "013"
    assert statuses[1].state == "undelivered" and not statuses[1].delivered and statuses[1].error


def test_send_and_otp_with_an_idempotency_key_are_sent_once(client, base_url, customer, template, platform):
    first = client.send_sms("+13055550101", "Order 4711 shipped", idempotency_key="order-4711")
    assert client.send_sms("+13055550101", "Order 4711 shipped", idempotency_key="order-4711") == first
    with pytest.raises(UVoxError) as err:
        client.send_sms("+13055550101", "Order 4712 shipped", idempotency_key="order-4711")
    assert err.value.code == "130" and err.value.http_status == 422

    async def otp_twice():
        async with AsyncClient(api_key=customer.apikey, url=base_url) as c:
            one = await c.otp_request(template.ref_id, "+13055550100", idempotency_key="signin-1")
            two = await c.otp_request(template.ref_id, "+13055550100", idempotency_key="signin-1")
            return one, two

    one, two = run_async(otp_twice())
    assert one.session_id == two.session_id
    with platform.engine.connect() as c:
        assert c.execute(sa.select(sa.func.count()).select_from(schema.messages)).scalar_one() == 2
