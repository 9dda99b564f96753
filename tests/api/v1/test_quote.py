"""sms-api/quote and calls/quote through the real HTTP server: a quote is what the
send (or the call) then charges, and sends, charges and records nothing itself."""

from __future__ import annotations

import html
import json
import math
import re
import subprocess
from decimal import ROUND_HALF_UP, Decimal

import pytest
import sqlalchemy as sa
from openapi_spec_validator import validate

from tests.api.v1.helpers import BASE, call, envelope_ok
from uvox.api.v1.codes import CODES
from uvox.db import schema

GSM = "Your code is 123456"
GSM_LONG = "Dear customer, " + "your parcel is on its way. " * 7  # 204 characters: two segments
GSM_EXT = "Pay 5€ at {shop} [now] ~ ^ | \\ " * 6  # extension characters count two septets each
UCS2 = "Hola 😀 ¿qué tal? " * 5  # 😀 is two UTF-16 units
ONE = ["13055550123"]
SEVERAL = ["13055550123", "56912345678", "+58 412 555 0101", "34600000000"]


def balance(http, customer) -> Decimal:
    return Decimal(call(http, "balance", "get", customer.auth).json()["balance"])


def messages(platform, account_id: int) -> int:
    with platform.engine.connect() as c:
        return c.execute(
            sa.select(sa.func.count()).select_from(schema.messages).where(schema.messages.c.account_id == account_id)
        ).scalar_one()


CASES = [
    (GSM, "GSM-7", 1, 160 - 19),
    (GSM_LONG, "GSM-7", 2, 153 - (204 - 153)),
    # Extension characters (€ { } [ ] ~ ^ | \\) count two septets each; parts are cut between
    # characters, never through an escape.
    (GSM_EXT, "GSM-7", 2, None),
    (UCS2, "UCS-2", 2, None),
]


def test_a_quote_is_what_the_send_then_charges(http, platform, customer):
    for to in (ONE, SEVERAL):
        for text, encoding, segments, remaining in CASES:
            _quote_then_send(http, platform, customer, to, text, encoding, segments, remaining)


def _quote_then_send(http, platform, customer, to, text, encoding, segments, remaining):
    variables = {**customer.auth, "to": ",".join(to), "text": text, "from": "UVox"}
    before = balance(http, customer)
    sent_before = messages(platform, customer.id)
    q = call(http, "sms-api/quote", "form", variables)
    assert q.status_code == 200, q.text
    quote = q.json()
    envelope_ok(quote)
    assert quote["code"] == "132" and quote["statusmessage"] == "SMS quote" and quote["currency"] == "US$"
    assert quote["encoding"] == encoding and quote["segments"] == str(segments), text
    if remaining is not None:
        assert quote["remaining"] == str(remaining)
    # Nothing sent, charged or recorded.
    assert balance(http, customer) == before and messages(platform, customer.id) == sent_before

    sent = call(http, "sms-api", "form", variables).json()
    assert sent["code"] == "005"
    sent_rows = sent.get("results") or [sent]
    assert len(quote["results"]) == len(sent_rows) == len(to)
    for qr, sr in zip(quote["results"], sent_rows):
        assert qr["to"] == sr["to"]
        assert qr["encoding"] == encoding
        assert qr["segments"] == sr["segments"] == str(segments)  # segment for segment
        assert Decimal(qr["price"]) == Decimal(sr["price"]) == Decimal(qr["unitprice"]) * segments
    spent = before - balance(http, customer)
    assert Decimal(quote["total"]) == spent == sum(Decimal(r["price"]) for r in quote["results"])


def test_remaining_destination_and_prices_per_recipient(http, customer):
    # 81 €: 162 septets, two parts; a part holds 76 € (152 septets, a 77th would split
    # its escape), so the second holds 5 € and has 153 - 10 left.
    q = call(http, "sms-api/quote", "json", {**customer.auth, "to": "13055550123", "text": "€" * 81}).json()
    assert (q["segments"], q["remaining"]) == ("2", "143")
    q = call(http, "sms-api/quote", "json", {**customer.auth, "to": "13055550123", "text": "€" * 80}).json()
    assert (q["segments"], q["remaining"]) == ("1", "0")
    q = call(
        http,
        "sms-api/quote",
        "get",
        {**customer.auth, "to": "+1 305-555-0123,58412555 0101,abc,999123", "text": "x" * 161},
    ).json()
    assert q["code"] == "132" and q["accepted"] == "2" and q["rejected"] == "2"
    miami, digitel, bad, unroutable = q["results"]
    assert (miami["to"], miami["destination"], Decimal(miami["unitprice"]), Decimal(miami["price"])) == (
        "+13055550123",
        "USA Miami",
        Decimal("0.008"),
        Decimal("0.016"),
    )
    assert (digitel["to"], digitel["destination"], Decimal(digitel["unitprice"]), Decimal(digitel["price"])) == (
        "+584125550101",
        "Venezuela Mobile Digitel",
        Decimal("0.07"),
        Decimal("0.14"),
    )
    assert (bad["to"], bad["code"]) == ("abc", "002") and "price" not in bad
    assert (unroutable["to"], unroutable["code"]) == ("999123", "014")
    assert Decimal(q["total"]) == Decimal("0.156") and q["to"] == "+13055550123,+584125550101"


def test_quote_refuses_what_the_send_refuses(http, customer, make_customer):
    def quote(**v):
        return call(http, "sms-api/quote", "form", {**customer.auth, **v})

    assert quote(to="13055550123").json()["code"] == "016"
    assert quote(to="13055550123", text=" ").json()["code"] == "003"
    assert (
        quote(to="13055x", text="hi").json()
        == call(http, "sms-api", "form", {**customer.auth, "to": "13055x", "text": "hi"}).json()
    )  # 002, echoing `to`, exactly as sms-api
    assert quote(to="999123", text="hi").json()["code"] == "014"
    assert quote(to="13055550123", text="hi", **{"from": "a-very-long-sender"}).json()["code"] == "104"
    assert quote(to=",".join(["13055550123"] * 201), text="hi").json()["code"] == "101"
    planless = make_customer(plan=None)
    r = call(http, "sms-api/quote", "form", {**planless.auth, "to": "13055550123", "text": "hi"})
    assert r.status_code == 402 and r.json()["code"] == "021" and "no plan" in r.json()["detail"]
    r = call(
        http, "sms-api/quote", "form", {"accountnumber": customer.number, "apikey": "wrong", "to": "1", "text": "x"}
    )
    assert r.status_code == 401 and r.json()["code"] == "001"
    # Endpoint names are case-insensitive, like the others.
    r = http.get(BASE + "SMS-API/Quote", params={**customer.auth, "to": "13055550123", "text": "hi"})
    assert r.json()["code"] == "132"
    r = http.get(BASE + "Calls/QUOTE", params={**customer.auth, "to": "13055550123"})
    assert r.json()["code"] == "133"


# --- calls/quote -------------------------------------------------------------------

VOICE_DECK = """dialprefix,destination,rateinitial,smsrate,connectcharge,initblock,billingblock
1,USA,0.0100,0.0075,,,
1305,USA Miami,0.0123,0.0080,0.05,30,7
44,United Kingdom,0.0333,0.0400,0,0,1
"""


@pytest.fixture
def caller(platform):
    from uvox.accounts import apikeys, service
    from uvox.billing import plans

    plans.create_plan(platform.engine, "voice", "US$")
    plans.import_rates(platform.engine, "voice", VOICE_DECK)
    account = service.create_account(platform.engine, email="caller@example.com", plan="voice")
    key, _ = apikeys.create(platform.engine, account.id, "tests")
    return {"accountnumber": account.number, "apikey": key}


def formula(rate: str, connect: str, init: int, block: int, seconds: int) -> tuple[int, Decimal]:
    """VOICE.md, written out again: billed seconds and price."""
    billed = init if seconds <= init else init + math.ceil((seconds - init) / block) * block
    price = (Decimal(connect) + Decimal(rate) * billed / 60).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)
    return billed, price


def test_a_call_quote_is_the_formula_and_refuses_what_a_call_would(http, caller, make_customer):
    for to, minutes, row in [
        ("+1 305 555 0100", None, ("USA Miami", "0.0123", "0.05", 30, 7)),
        ("0013055550100", "7", ("USA Miami", "0.0123", "0.05", 30, 7)),
        ("12125550100", "3", ("USA", "0.0100", "0", 60, 60)),
        ("442079460000", "61", ("United Kingdom", "0.0333", "0", 0, 1)),
    ]:
        destination, rate, connect, init, block = row
        variables = {**caller, "to": to} | ({"minutes": minutes} if minutes else {})
        r = call(http, "calls/quote", "get", variables)
        assert r.status_code == 200, r.text
        q = r.json()
        envelope_ok(q)
        n = int(minutes or 1)
        billed, price = formula(rate, connect, init, block, n * 60)
        assert q["code"] == "133" and q["statusmessage"] == "Call quote"
        assert q["destination"] == destination and q["to"].startswith("+") and q["to"][1:].isdigit()
        assert Decimal(q["rate"]) == Decimal(rate) and Decimal(q["connectcharge"]) == Decimal(connect)
        assert (q["initblock"], q["billingblock"], q["minutes"]) == (str(init), str(block), str(n))
        assert q["billed"] == str(billed) and Decimal(q["price"]) == price and q["currency"] == "US$", to

    def quote(**v):
        return call(http, "calls/quote", "form", {**caller, **v})

    assert quote().json()["code"] == "016"
    for bad in ("0", "-1", "1.5", "x", "1441"):
        r = quote(to="13055550100", minutes=bad)
        assert r.status_code == 400 and r.json()["code"] == "016" and "minutes" in r.json()["detail"]
    assert quote(to="call me").json()["code"] == "002"
    assert quote(to="9991234567").json() == {
        "version": "1.00",
        "code": "014",
        "status": "error",
        "resultstring": "Failure",
        "to": "9991234567",
        "statusmessage": "Invalid destination number",
    }
    planless = make_customer(plan=None)
    assert call(http, "calls/quote", "form", {**planless.auth, "to": "13055550100"}).json()["code"] == "021"


# --- the docs' examples, pasted into a shell ---------------------------------------


def _samples(http) -> list[str]:
    page = http.get("/docs").text
    return [html.unescape(s) for s in re.findall(r"<pre class='sample'>(.*?)</pre>", page, re.S)]


def _run(sample: str, key: str) -> str:
    script = sample.replace("API_KEY='your-api-key'", f"API_KEY='{key}'")
    assert script != sample
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30, check=True).stdout


def test_the_docs_describe_the_extensions_and_their_curl_examples_work_when_pasted(http, platform, customer, caller):
    samples = _samples(http)
    sends = ("sms-api/quote", "calls/quote", "sms-api")  # the settings' samples: tests/api/v1/test_docs_page.py
    by_endpoint = {next(e for e in sends if e in s): s for s in samples if any(e in s for e in sends)}
    assert set(by_endpoint) == {"sms-api", "sms-api/quote", "calls/quote"}
    quote = json.loads(_run(by_endpoint["sms-api/quote"], customer.apikey))
    assert quote["code"] == "132" and quote["accepted"] == "2" and quote["encoding"] == "GSM-7"
    first = _run(by_endpoint["sms-api"], customer.apikey)
    assert json.loads(first)["code"] == "005"
    assert _run(by_endpoint["sms-api"], customer.apikey) == first  # pasted twice: sent once
    assert messages(platform, customer.id) == 1
    call_quote = json.loads(_run(by_endpoint["calls/quote"], caller["apikey"]))
    assert call_quote["code"] == "133" and call_quote["minutes"] == "5" and call_quote["destination"] == "USA Miami"

    spec = http.get("/openapi.json").json()
    validate(spec)
    for path in ("sms-api/quote", "calls/quote"):
        assert set(spec["paths"][f"/api/get-api/v1/{path}"]) == {"get", "post", "put"}
    for path in ("sms-api", "OTP-api"):
        names = {p["name"] for p in spec["paths"][f"/api/get-api/v1/{path}"]["post"]["parameters"]}
        assert {"Idempotency-Key", "idempotency_key"} <= names
    shown = {}
    for ops in spec["paths"].values():
        for status, resp in ops["get"]["responses"].items():
            for ex in resp["content"].get("application/json", {}).get("examples", {}).values():
                shown[ex["value"]["code"]] = status
    assert shown["130"] == "4XX" and shown["131"] == "4XX" and shown["132"] == "200" and shown["133"] == "200"
    assert CODES["130"].http == 422 and CODES["131"].http == 400
    page = http.get("/docs").text
    for text in (
        "/api/get-api/v1/sms-api/quote",
        "/api/get-api/v1/calls/quote",
        "Idempotency-Key",
        "Idempotency key already used for a different request",
        "Invalid idempotency key",
    ):
        assert text in page
