"""Test mode as a client sees it: the marks on every reply to a test key, the same
answers as a live key otherwise, and nothing charged (sms/testmode.py)."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa

from tests.api.v1.helpers import call, envelope_ok
from uvox.accounts import apikeys
from uvox.db import schema as t
from uvox.otp import service as otp


def _test_auth(platform, customer) -> dict:
    key, _ = apikeys.create(platform.engine, customer.id, "ci", test=True)
    return {"accountnumber": customer.number, "apikey": key}


def test_every_reply_to_a_test_key_is_marked_and_a_live_key_sees_the_manual_unchanged(http, platform, customer):
    test = _test_auth(platform, customer)
    live_balance = call(http, "balance", "get", customer.auth)
    assert "x-uvox-test" not in live_balance.headers and "test" not in live_balance.json()
    r = call(http, "balance", "get", {}, header_key=test["apikey"])
    body = r.json()
    envelope_ok(body)
    assert r.status_code == 200 and r.headers["x-uvox-test"] == "1"
    assert "X-UVox-Test" in r.headers["access-control-expose-headers"]
    # The real balance (reading is harmless), the manual's fields, plus the mark.
    assert body == {**live_balance.json(), "test": "1"}

    sent = call(http, "sms-api", "form", {**test, "to": "13055550100,+15005550001", "text": "free"}).json()
    assert sent["code"] == "005" and sent["accepted"] == "2"
    assert call(http, "balance", "get", customer.auth).json() == live_balance.json()  # nothing charged

    rates = call(http, "rates", "get", test)
    assert rates.headers["x-uvox-test"] == "1" and rates.json() == call(http, "rates", "get", customer.auth).json()

    for path, variables, code in [
        ("sms-api", {"to": "13055550100", "text": " "}, "003"),
        ("sms-api", {"to": "13055550100"}, "016"),
        ("sms-api", {"to": "12x", "text": "x"}, "002"),
        ("sms-api", {"to": "+819012345678", "text": "x"}, "014"),
        ("sms-api/status", {"messageId": "999999"}, "010"),
        ("OTP-api", {"ref_id": "nope", "phone_number": "13055550100"}, "020"),
    ]:
        as_test, as_live = (
            call(http, path, "form", {**test, **variables}),
            call(http, path, "form", {**customer.auth, **variables}),
        )
        assert as_test.json()["code"] == code and as_test.status_code == as_live.status_code, (path, variables)
        assert as_test.headers["x-uvox-test"] == "1" and as_test.json() == {**as_live.json(), "test": "1"}
        assert "x-uvox-test" not in as_live.headers
    # A wrong key is no test key: nothing to mark.
    wrong = test["apikey"][:-1] + ("X" if test["apikey"][-1] != "X" else "Y")  # one key in 32 ends in X
    bad = call(http, "balance", "get", {**test, "apikey": wrong})
    assert bad.json()["code"] == "001" and "x-uvox-test" not in bad.headers and "test" not in bad.json()


def test_test_sends_answer_like_live_ones_but_never_wait_or_charge(http, platform, make_customer):
    broke = make_customer(balance="0")
    test = _test_auth(platform, broke)
    live = call(http, "sms-api", "form", {**broke.auth, "to": "13055550100", "text": "hola"}).json()
    sent = call(http, "sms-api", "form", {**test, "to": "13055550100", "text": "hola"}).json()
    assert live["code"] == "009"  # a live key waits for money; a test key is never charged, so never waits
    assert sent["code"] == "005" and sent["test"] == "1"
    assert {k: v for k, v in sent.items() if k not in ("id", "test")} == {
        **{k: v for k, v in live.items() if k != "id"},
        "code": "005",
        "status": "success",
        "statusmessage": "Message sent successfully",
    }
    # Its status, with either key, says it is a test message.
    for auth in (test, broke.auth):
        s = call(http, "sms-api/status", "get", {**auth, "messageId": sent["id"]}).json()
        assert s["code"] == "013" and s["state"] == "submitted" and s["test"] == "1"
        assert "nothing was charged" in s["notice"] and s["price"] == live["price"]

    # OTP: the documented fixed code, verified as a live code is; nothing charged.
    tpl = otp.create_template(platform.engine, broke.id, "Code {code}")
    o = call(http, "OTP-api", "form", {**test, "ref_id": tpl.ref_id, "phone_number": "+15005550001"}).json()
    assert o["code"] == "022" and o["test"] == "1"
    wrong = call(http, "OTP-api/verify", "form", {**test, "sessionid": o["sessionID"], "otp_code": "123456"}).json()
    assert wrong["code"] == "025" and wrong["test"] == "1"
    ok = call(http, "OTP-api/verify", "form", {**test, "sessionid": o["sessionID"], "otp_code": "000000"}).json()
    assert ok["code"] == "027"
    again = call(http, "OTP-api/verify", "form", {**test, "sessionid": o["sessionID"], "otp_code": "000000"}).json()
    assert again["code"] == "026"
    with platform.engine.connect() as c:
        assert (
            c.execute(
                sa.select(sa.func.count()).select_from(t.ledger).where(t.ledger.c.account_id == broke.id)
            ).scalar_one()
            == 0
        )
        otp_row = c.execute(sa.select(t.messages).where(t.messages.c.id == int(o["id"]))).one()
    assert otp_row.test and not otp_row.charged and otp_row.secret_text is None and otp_row.text == "Code ******"
    assert call(http, "balance", "get", test).json()["balance"] == "0.00"
    assert Decimal(call(http, "balance", "get", broke.auth).json()["balance"]) == 0


def test_openapi_and_docs_describe_test_mode(http):
    spec = http.get("/openapi.json").json()
    assert all(n in spec["info"]["description"] for n in ("+15005550001", "+15005550004", "000000", "X-UVox-Test"))
    # Its callbacks are marked, and say no phone got the message.
    assert all(n in spec["info"]["description"] for n in ('`"test":"1"`', '`"simulated":true`'))
    send = spec["paths"]["/api/get-api/v1/sms-api"]["post"]["responses"]["200"]
    assert (
        "X-UVox-Test" in send["headers"]
        and send["content"]["application/json"]["examples"]["test"]["value"]["test"] == "1"
    )
    assert spec["components"]["schemas"]["Envelope"]["properties"]["test"]["enum"] == ["1"]
    page = http.get("/docs").text
    assert "Test mode" in page and "+15005550002" in page


def test_a_test_keys_retry_with_an_idempotency_key_replays_its_test_mark(http, platform, customer):
    """A reply kept under an Idempotency-Key is sent again byte for byte: with a test key,
    that includes the "test" mark and the X-UVox-Test header, like the first answer."""
    test = _test_auth(platform, customer)
    variables = {**test, "to": "+15005550001", "text": "retried", "idempotency_key": "order-77"}
    first = call(http, "sms-api", "form", variables)
    again = call(http, "sms-api", "form", variables)
    assert first.json()["code"] == "005" and first.json()["test"] == "1"
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
    assert again.headers["x-uvox-test"] == "1"


def test_a_test_key_reads_settings_but_cannot_change_them(http, platform, customer):
    """A test key given to CI must not weaken the live account: setting spend caps,
    country rules or the low-balance alert with it is refused (108) and changes nothing."""
    test = _test_auth(platform, customer)
    live_set = [
        ("spend-caps", {"service": "sms", "day": "5.00"}, "141"),
        ("countries", {"blocked": "NG"}, "150"),
        ("balance-alert", {"threshold": "3.00"}, "143"),
    ]
    for path, variables, code in live_set:
        assert call(http, path, "form", {**customer.auth, **variables}).json()["code"] == code, path
    before = {path: call(http, path, "get", customer.auth).json() for path, _, _ in live_set}
    writes = [
        ("spend-caps", {"service": "sms", "day": "none"}),
        ("spend-caps", {"month": "1000"}),
        ("countries", {"blocked": ""}),
        ("countries", {"allowed": "NG"}),
        ("balance-alert", {"threshold": "none"}),
        ("balance-alert", {"threshold": "x"}),
    ]
    for path, variables in writes:
        for how in ("form", "get", "json"):
            r = call(http, path, how, {**test, **variables})
            body = r.json()
            assert (r.status_code, body["code"], body["test"]) == (403, "108", "1"), (path, variables, how, body)
            assert body["statusmessage"] == "Not allowed with a test key" and "live key" in body["detail"]
    # Nothing changed; and reading with the test key shows what the live key set.
    for path, _, code in live_set:
        assert call(http, path, "get", customer.auth).json() == before[path], path
        as_test = call(http, path, "get", test).json()
        assert as_test["code"] == code and as_test == {**before[path], "test": "1"}, path
    # The live key still may.
    assert call(http, "spend-caps", "form", {**customer.auth, "service": "sms", "day": "none"}).json()["caps"] == []


def test_the_test_key_refusal_is_documented(http):
    spec = http.get("/openapi.json").json()
    assert spec["x-codes"]["108"] == {"message": "Not allowed with a test key", "http": 403}
    for path in ("spend-caps", "countries", "balance-alert"):
        examples = spec["paths"][f"/api/get-api/v1/{path}"]["post"]["responses"]["4XX"]["content"]["application/json"][
            "examples"
        ]
        assert examples["e108"]["value"]["code"] == "108", path
    assert "108" in spec["info"]["description"]
    assert 'id="code-108"' in http.get("/docs").text


def test_test_sends_are_checked_against_neither_balance_nor_caps_and_the_docs_say_so(http, platform, customer):
    """What a live send gets 140 for, a test send gets 005 for (nothing is charged, so
    nothing counts under the cap); the documentation says exactly that."""
    test = _test_auth(platform, customer)
    assert call(http, "spend-caps", "form", {**customer.auth, "service": "sms", "day": "0.01"}).json()["code"] == "141"
    many = {"to": "13055550100,13055550101", "text": "over the cap"}  # 2 x 0.0080 > 0.01
    assert call(http, "sms-api", "form", {**customer.auth, **many}).json()["code"] == "140"
    sent = call(http, "sms-api", "form", {**test, **many}).json()
    assert sent["code"] == "005" and sent["test"] == "1"
    caps = call(http, "spend-caps", "get", customer.auth).json()["caps"]
    assert [c["spent"] for c in caps] == ["0.00"]  # counted under no cap
    description = http.get("/openapi.json").json()["info"]["description"]
    assert "checked against neither the balance nor the spend caps" in description and "never 140" in description
