"""Idempotent sends: an Idempotency-Key (header or variable) on sms-api and OTP-api,
through the real HTTP server, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
import sqlalchemy as sa

from tests.api.v1.helpers import BASE, HOWS, call
from uvox.db import schema

SMS = {"to": "13055550123", "text": "Your order 4711 has shipped"}


def balance(http, customer) -> Decimal:
    return Decimal(call(http, "balance", "get", customer.auth).json()["balance"])


def count(platform, table, account_id: int) -> int:
    with platform.engine.connect() as c:
        return c.execute(
            sa.select(sa.func.count()).select_from(table).where(table.c.account_id == account_id)
        ).scalar_one()


def charges(platform, account_id: int) -> int:
    with platform.engine.connect() as c:
        return c.execute(
            sa.select(sa.func.count())
            .select_from(schema.ledger)
            .where(schema.ledger.c.account_id == account_id, schema.ledger.c.kind == "charge")
        ).scalar_one()


def keyed(http, how: str, variables: dict, key: str, customer) -> httpx.Response:
    """A send with the key as the header ("header") or as a variable in every way the API reads one."""
    if how == "header":
        return http.post(BASE + "sms-api", data={**customer.auth, **variables}, headers={"Idempotency-Key": key})
    return call(http, "sms-api", how, {**customer.auth, **variables, "idempotency_key": key})


def test_a_retry_gets_the_first_reply_byte_for_byte_and_sends_nothing_again(http, platform, customer):
    for n, how in enumerate(["header", *HOWS], start=1):  # the key as a header, and as a variable every way
        before = balance(http, customer)
        first = keyed(http, how, SMS, f"order-{how}", customer)
        assert first.status_code == 200 and first.json()["code"] == "005", how
        assert "idempotent-replayed" not in first.headers
        again = keyed(http, how, SMS, f"order-{how}", customer)
        assert again.status_code == 200
        assert again.content == first.content, how  # the same message id, the same everything
        assert again.headers["idempotent-replayed"] == "true"
        assert again.headers["x-request-id"] != first.headers["x-request-id"]
        assert count(platform, schema.messages, customer.id) == n and charges(platform, customer.id) == n, how
        assert balance(http, customer) == before - Decimal("0.0080")


def test_what_a_key_covers(http, platform, customer, make_customer):
    """Not the credentials nor the encoding; the endpoint, the account and every other variable."""
    first = call(http, "sms-api", "get", {**customer.auth, **SMS, "idempotency_key": "k1"})
    # The same variables in a JSON body, the key now as a header and the API key as a header too.
    again = http.post(BASE + "sms-api", json=SMS, headers={"Api-Key": customer.apikey, "Idempotency-Key": "k1"})
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
    assert count(platform, schema.messages, customer.id) == 1
    # Several recipients, some refused: the whole reply is replayed.
    variables = {**SMS, "to": "13055550123,56912345678,999123"}
    first = keyed(http, "json", variables, "batch-1", customer)
    body = first.json()
    assert body["code"] == "005" and body["accepted"] == "2" and body["rejected"] == "1"
    again = keyed(http, "form", variables, "batch-1", customer)
    assert again.content == first.content
    assert count(platform, schema.messages, customer.id) == 3 and charges(platform, customer.id) == 3
    # Keys are per account: another account's "batch-1" is its own.
    other = make_customer()
    theirs = keyed(http, "json", variables, "batch-1", other)
    assert theirs.json()["code"] == "005" and theirs.json()["id"] != body["id"]
    assert count(platform, schema.messages, other.id) == 2
    # A key of sms-api is not a key of OTP-api: another endpoint is another request.
    from uvox.otp import service

    tpl = service.create_template(platform.engine, customer.id, "Code {code}", "login")
    r = call(
        http,
        "OTP-api",
        "form",
        {**customer.auth, "ref_id": tpl.ref_id, "phone_number": "13055550100", "idempotency_key": "batch-1"},
    )
    assert r.status_code == 422 and r.json()["code"] == "130"


def test_the_same_key_with_another_request_is_130(http, platform, customer):
    first = keyed(http, "form", SMS, "order-4711", customer).json()
    for change in (
        {"text": "Your order 4712 has shipped"},
        {"to": "13055550124"},
        {"from": "UVox"},
        {"callback_url": "https://example.com/cb"},
    ):
        r = keyed(http, "form", {**SMS, **change}, "order-4711", customer)
        assert r.status_code == 422, change
        body = r.json()
        assert body["code"] == "130" and body["status"] == "error" and body["resultstring"] == "Failure"
        assert body["statusmessage"] == "Idempotency key already used for a different request"
        assert "new key" in body["detail"]
    assert count(platform, schema.messages, customer.id) == 1
    # ... and the first request's retry still gets its own reply.
    assert keyed(http, "form", SMS, "order-4711", customer).json() == first


def test_a_bad_key_is_131_and_a_refused_send_keeps_no_key(http, platform, customer):
    for key, why in (("x" * 256, "at most 255"), ("", "empty"), ("  ", "empty"), ("a\tb", "control characters")):
        r = keyed(http, "form", SMS, key, customer)
        assert r.status_code == 400, key
        body = r.json()
        assert body["code"] == "131" and body["statusmessage"] == "Invalid idempotency key" and why in body["detail"]
    assert count(platform, schema.messages, customer.id) == 0
    r = http.post(
        BASE + "sms-api", data={**customer.auth, **SMS, "idempotency_key": "a"}, headers={"Idempotency-Key": "b"}
    )
    assert r.status_code == 400 and r.json()["code"] == "131" and "two different" in r.json()["detail"]
    assert count(platform, schema.messages, customer.id) == 0
    # A refused send leaves its key unused.
    r = keyed(http, "form", {**SMS, "to": "999123"}, "k", customer)
    assert r.json()["code"] == "014"
    # Nothing was sent under the key: the corrected request may use it.
    ok = keyed(http, "form", SMS, "k", customer)
    assert ok.json()["code"] == "005" and "idempotent-replayed" not in ok.headers


def _age_keys(platform, account_id: int, by: timedelta) -> None:
    """uvox.clock reads the real time: move the keys' times back instead of the clock forward."""
    k = schema.idempotency_keys
    with platform.engine.begin() as c:  # in Python: SQLite has no date arithmetic on stored times
        for row in c.execute(
            sa.select(k.c.id, k.c.created_at, k.c.expires_at).where(k.c.account_id == account_id)
        ).all():
            c.execute(
                sa.update(k)
                .where(k.c.id == row.id)
                .values(created_at=row.created_at - by, expires_at=row.expires_at - by)
            )


def test_after_24_hours_the_key_is_free_again(http, platform, customer):
    from uvox.accounts import idempotency

    first = keyed(http, "form", SMS, "daily", customer).json()
    _age_keys(platform, customer.id, timedelta(hours=23, minutes=59))
    assert keyed(http, "form", SMS, "daily", customer).json() == first  # still within its 24 hours
    _age_keys(platform, customer.id, timedelta(minutes=2))
    again = keyed(http, "form", SMS, "daily", customer)
    assert again.json()["code"] == "005" and again.json()["id"] != first["id"]
    assert "idempotent-replayed" not in again.headers
    assert count(platform, schema.messages, customer.id) == 2 and charges(platform, customer.id) == 2
    # Expired, the key also takes another request; the sweep deletes only expired keys.
    _age_keys(platform, customer.id, timedelta(hours=25))
    other = keyed(http, "form", {**SMS, "text": "another text"}, "daily", customer).json()
    assert other["code"] == "005"
    keyed(http, "form", SMS, "fresh", customer)
    assert idempotency.sweep(platform.engine) == 0  # both keys are live
    _age_keys(platform, customer.id, timedelta(hours=25))
    assert idempotency.sweep(platform.engine) == 2
    assert count(platform, schema.idempotency_keys, customer.id) == 0


def _at_once(n: int, send):
    """``send()`` from ``n`` threads released together; the replies in order."""
    gate = threading.Barrier(n)

    def one(_):
        gate.wait()
        return send()

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_concurrent_duplicates_send_and_charge_once(base_url, platform, customer):
    def send():
        with httpx.Client(base_url=base_url, timeout=30) as c:
            return c.post(BASE + "sms-api", data={**customer.auth, **SMS}, headers={"Idempotency-Key": "burst"})

    replies = _at_once(8, send)
    assert {r.status_code for r in replies} == {200}
    assert len({r.content for r in replies}) == 1, [r.text for r in replies]
    assert sum("idempotent-replayed" not in r.headers for r in replies) == 1  # one sent, seven replayed
    assert count(platform, schema.messages, customer.id) == 1 and charges(platform, customer.id) == 1


@pytest.fixture
def template(platform, customer):
    from uvox.otp import service

    return service.create_template(platform.engine, customer.id, "Tu código UVox es {code}", "login")


def test_otp_retry_gets_the_same_session_and_no_second_code(base_url, http, platform, customer, template):
    variables = {**customer.auth, "ref_id": template.ref_id, "phone_number": "13055550100"}

    def request():
        with httpx.Client(base_url=base_url, timeout=30) as c:
            return c.post(BASE + "OTP-api", data=variables, headers={"Idempotency-Key": "signin-77"})

    replies = _at_once(6, request)
    assert len({r.content for r in replies}) == 1, [r.text for r in replies]
    body = replies[0].json()
    assert body["code"] == "022" and body["sessionID"]
    assert count(platform, schema.messages, customer.id) == 1 and count(platform, schema.otp_sessions, customer.id) == 1
    # A later retry as a variable, in JSON: the same reply again.
    again = call(http, "OTP-api", "json", {**variables, "idempotency_key": "signin-77"})
    assert again.content == replies[0].content
    # Without a key, a second request is a second code, as before.
    assert call(http, "OTP-api", "form", variables).json()["sessionID"] != body["sessionID"]
    assert count(platform, schema.messages, customer.id) == 2
