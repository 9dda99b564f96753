"""sms-api and sms-api/status through the real HTTP server, every way of calling it."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa

from tests.api.v1.helpers import HOWS, call, envelope_ok
from uvox.db import schema


@pytest.mark.parametrize("how", HOWS)
def test_send_one_sms_every_way(http, customer, how):
    r = call(
        http,
        "sms-api",
        how,
        {**customer.auth, "from": "13779999999", "to": "13058888888", "text": "Este es un mensaje de prueba"},
    )
    assert r.status_code == 200
    body = r.json()
    envelope_ok(body)
    assert body["code"] == "005"
    assert body["status"] == "success" and body["resultstring"] == "Success"
    assert body["statusmessage"] == "Message sent successfully"
    assert body["version"] == "1"
    assert body["to"] == "+13058888888"
    assert body["id"].isdigit()


def test_send_with_api_key_header_only(http, customer):
    r = call(http, "sms-api", "get", {"to": "+1 305-888-8888", "text": "hola"}, header_key=customer.apikey)
    assert r.json()["code"] == "005"
    assert r.json()["to"] == "+13058888888"


def test_header_with_wrong_accountnumber_is_001(http, customer, make_customer):
    other = make_customer()
    r = call(
        http,
        "sms-api",
        "get",
        {"accountnumber": other.number, "to": "13058888888", "text": "x"},
        header_key=customer.apikey,
    )
    assert r.status_code == 401 and r.json()["code"] == "001"


def test_price_is_segments_times_longest_prefix_rate(http, customer, platform):
    text = "x" * 161  # two GSM segments
    r = call(http, "sms-api", "form", {**customer.auth, "to": "13055550123", "text": text})
    body = r.json()
    assert body["code"] == "005"
    assert body["segments"] == "2"
    assert Decimal(body["price"]) == Decimal("0.0160")  # 1305 (0.0080) beats 1 (0.0075)
    bal = call(http, "balance", "get", customer.auth).json()
    assert Decimal(bal["balance"]) == Decimal("10") - Decimal("0.016")


def test_ucs2_segments(http, customer):
    r = call(http, "sms-api", "json", {**customer.auth, "to": "56912345678", "text": "Hola 😀" * 12})
    assert r.json()["code"] == "005"
    assert r.json()["segments"] == "2"  # 84 UTF-16 units > 70 → 67 per part


def test_gsm_extension_characters_count_twice(http, customer):
    r = call(http, "sms-api", "json", {**customer.auth, "to": "56912345678", "text": "€" * 81})
    assert r.json()["segments"] == "2"
    r = call(http, "sms-api", "json", {**customer.auth, "to": "56912345678", "text": "€" * 80})
    assert r.json()["segments"] == "1"


@pytest.mark.parametrize("text", ["", "   ", "a\x00b", "x" * 1601])
def test_bad_text_is_003(http, customer, text):
    r = call(http, "sms-api", "form", {**customer.auth, "to": "13058888888", "text": text})
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == "003" and body["statusmessage"] == "Invalid or empty text"
    assert body["version"] == "1.00" and body["status"] == "error" and body["resultstring"] == "Failure"


@pytest.mark.parametrize("to", ["13055454xx", "abc", "+", "1305++555", "13.05"])
def test_malformed_number_is_002_and_echoes_to(http, customer, to):
    r = call(http, "sms-api", "get", {**customer.auth, "to": to, "text": "hi"})
    body = r.json()
    assert body["code"] == "002", body
    assert body["to"] == to
    assert body["statusmessage"] == "Invalid format in the destination number"


@pytest.mark.parametrize("to", ["999123456789", "123", "1234567890123456", "4400"])
def test_unroutable_number_is_014(http, customer, to):
    r = call(http, "sms-api", "get", {**customer.auth, "to": to, "text": "hi"})
    assert r.json()["code"] == "014", r.json()
    assert r.json()["statusmessage"] == "Invalid destination number"


def test_number_without_rate_in_plan_is_014(http, customer):
    # +44 is a real country but the test plan has no rate for it.
    r = call(http, "sms-api", "get", {**customer.auth, "to": "447911123456", "text": "hi"})
    assert r.json()["code"] == "014"


def test_no_balance_queues_with_009_and_status_012(http, make_customer):
    poor = make_customer(balance="0")
    r = call(http, "sms-api", "get", {**poor.auth, "to": "13058888888", "text": "hi"})
    body = r.json()
    assert r.status_code == 200
    assert body["code"] == "009" and body["status"] == "no_plan"
    assert body["statusmessage"] == "No Plan or Balance in account (SMS queued)"
    st = call(http, "sms-api/status", "get", {**poor.auth, "messageId": body["id"]}).json()
    assert st["code"] == "012" and st["statusmessage"] == "No plan available to send or Credit"


def test_no_plan_queues_with_009(http, make_customer):
    c = make_customer(plan=None)
    r = call(http, "sms-api", "get", {**c.auth, "to": "13058888888", "text": "hi"})
    assert r.json()["code"] == "009"


def test_topup_releases_waiting_messages_fifo(http, make_customer, platform):
    from uvox.billing.service import topup

    poor = make_customer(balance="0")
    ids = [
        call(http, "sms-api", "get", {**poor.auth, "to": "13058888888", "text": f"m{i}"}).json()["id"] for i in range(3)
    ]
    topup(platform.engine, poor.id, Decimal("0.016"))  # enough for two at 0.0080
    codes = [call(http, "sms-api/status", "get", {**poor.auth, "messageId": i}).json()["code"] for i in ids]
    assert codes == ["011", "011", "012"]


def test_status_to_send_then_sent(http, customer, platform):
    sent = call(http, "sms-api", "get", {**customer.auth, "to": "13058888888", "text": "hi"}).json()
    st = call(http, "sms-api/status", "get", {**customer.auth, "messageId": sent["id"]}).json()
    assert st["code"] == "011" and st["statusmessage"] == "To send" and st["version"] == "1"
    assert st["state"] == "queued" and st["to"] == "+13058888888"
    # What the dispatcher records once the SMSC accepted it:
    with platform.engine.begin() as c:
        c.execute(sa.update(schema.messages).values(state="submitted"))
    st = call(http, "sms-api/status", "get", {**customer.auth, "messageId": sent["id"]}).json()
    assert st["code"] == "013" and st["statusmessage"] == "SMS Sent"


def test_status_of_unknown_or_foreign_id_is_010(http, customer, make_customer):
    other = make_customer()
    mine = call(http, "sms-api", "get", {**customer.auth, "to": "13058888888", "text": "hi"}).json()["id"]
    for mid in ["999999", "abc", "", "-1", mine + "0"]:
        r = call(http, "sms-api/status", "get", {**other.auth, "messageId": mid})
        assert r.json()["code"] == "010", (mid, r.json())
    r = call(http, "sms-api/status", "get", {**other.auth, "messageId": mine})
    assert r.json()["code"] == "010"
    assert r.json()["statusmessage"] == "Error validating SMS, please verify ID"


def test_status_without_message_id_is_016(http, customer):
    r = call(http, "sms-api/status", "get", customer.auth)
    assert r.json()["code"] == "016"


def test_several_recipients_one_result_each(http, customer):
    r = call(
        http, "sms-api", "form", {**customer.auth, "to": "13058888888, 56912345678,12ab,999123456789", "text": "hola"}
    )
    body = r.json()
    assert body["code"] == "005"
    res = body["results"]
    assert [x["code"] for x in res] == ["005", "005", "002", "014"]
    assert [x["to"] for x in res] == ["+13058888888", "+56912345678", "12ab", "999123456789"]
    assert all(isinstance(x["id"], str) for x in res[:2])


def test_repeated_to_and_json_array(http, customer):
    r = http.get(
        "/api/get-api/v1/sms-api",
        params=[
            ("accountnumber", customer.number),
            ("apikey", customer.apikey),
            ("to", "13058888888"),
            ("to", "56912345678"),
            ("text", "x"),
        ],
    )
    assert len(r.json()["results"]) == 2
    r = call(
        http, "sms-api", "json", {**customer.auth, "to": ["13058888888", "56912345678", "34612345678"], "text": "x"}
    )
    assert [x["code"] for x in r.json()["results"]] == ["005", "005", "005"]


def test_php_style_repeated_to(http, customer):
    """PHP's http_build_query() and forms with name="to[]" send to[]=… or to[0]=…."""
    body = urlencode(
        [
            ("accountnumber", customer.number),
            ("apikey", customer.apikey),
            ("to[]", "13058888888"),
            ("to[]", "56912345678"),
            ("text", "x"),
        ]
    )
    r = http.post(
        "/api/get-api/v1/sms-api", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert [x["to"] for x in r.json()["results"]] == ["+13058888888", "+56912345678"]
    r = http.get(
        "/api/get-api/v1/sms-api",
        params=[
            ("accountnumber", customer.number),
            ("apikey", customer.apikey),
            ("to[0]", "13058888888"),
            ("to[1]", "34612345678"),
            ("text", "x"),
        ],
    )
    assert [x["code"] for x in r.json()["results"]] == ["005", "005"]


def test_form_from_a_latin1_page_keeps_its_accents(http, customer, platform):
    """Browsers send a form on an ISO-8859-1 page in windows-1252 (ñ is %F1, € is %80)."""
    body = (
        f"accountnumber={customer.number}&apikey={customer.apikey}&to=13058888888"
        "&text=Ma%F1ana%3A+c%F3digo+%BFs%ED%3F+%805&Submit=Submit"
    )
    r = http.post(
        "/api/get-api/v1/sms-api", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    sent = r.json()
    assert sent["code"] == "005", sent
    r = http.get(
        f"/api/get-api/v1/sms-api?accountnumber={customer.number}&apikey={customer.apikey}&to=13058888888&text=Espa%F1a"
    )
    assert r.json()["code"] == "005"
    with platform.engine.connect() as c:
        texts = c.execute(sa.select(schema.messages.c.text).order_by(schema.messages.c.id)).scalars().all()
    assert texts == ["Mañana: código ¿sí? €5", "España"]
    # UTF-8, as every modern page sends, is read as UTF-8.
    r = http.get(
        f"/api/get-api/v1/sms-api?accountnumber={customer.number}&apikey={customer.apikey}"
        "&to=13058888888&text=Espa%C3%B1a"
    )
    with platform.engine.connect() as c:
        assert (
            c.execute(sa.select(schema.messages.c.text).where(schema.messages.c.id == int(r.json()["id"]))).scalar_one()
            == "España"
        )


def test_200_recipients_accepted_201_refused(http, customer, platform):
    from uvox.billing.service import topup

    topup(platform.engine, customer.id, Decimal("100"))
    many = ",".join(f"1305555{i:04d}" for i in range(200))
    r = call(http, "sms-api", "form", {**customer.auth, "to": many, "text": "batch"})
    assert r.json()["code"] == "005" and len(r.json()["results"]) == 200
    r = call(http, "sms-api", "form", {**customer.auth, "to": many + ",13055559999", "text": "batch"})
    assert r.status_code == 400 and r.json()["code"] == "101"
    with platform.engine.connect() as c:
        assert c.execute(sa.select(sa.func.count()).select_from(schema.messages)).scalar() == 200


def test_partial_balance_charges_in_order(http, make_customer):
    c = make_customer(balance="0.016")  # two messages at 0.0080
    r = call(http, "sms-api", "form", {**c.auth, "to": "13058888881,13058888882,13058888883", "text": "x"})
    assert r.json()["code"] == "009"
    assert [x["code"] for x in r.json()["results"]] == ["005", "005", "009"]


@pytest.mark.parametrize("sender", ["UVox", "13779999999", "+13779999999", "My Shop", "Promo 24/7!"])
def test_good_senders(http, customer, sender):
    r = call(http, "sms-api", "get", {**customer.auth, "from": sender, "to": "13058888888", "text": "x"})
    assert r.json()["code"] == "005"


@pytest.mark.parametrize("sender", ["ThisIsTooLongSender", "1234567890123456", "bad{sender}", "Caf\u00e9"])
def test_bad_sender_is_104(http, customer, sender):
    r = call(http, "sms-api", "get", {**customer.auth, "from": sender, "to": "13058888888", "text": "x"})
    assert r.json()["code"] == "104"


def test_missing_variables_is_016(http, customer):
    for missing in ("to", "text"):
        v = {**customer.auth, "to": "13058888888", "text": "x"}
        del v[missing]
        r = call(http, "sms-api", "get", v)
        assert r.status_code == 400 and r.json()["code"] == "016"
        assert r.json()["statusmessage"] == "Missing variables in your request"


def test_body_wins_over_query(http, customer):
    r = http.post(
        "/api/get-api/v1/sms-api", params={**customer.auth, "to": "bad", "text": "x"}, data={"to": "13058888888"}
    )
    assert r.json()["code"] == "005"
