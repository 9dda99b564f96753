"""Spend caps and the low-balance alert on the settings page, in Spanish and English:
what is set there is what the API enforces, and the other way round."""

from __future__ import annotations

import re

import pytest

from tests.portal.conftest import PASSWORD

API = "/api/get-api/v1/"


# The pages are the same on either database; the rules under them are tested on both (tests/billing).
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_caps_and_alert_set_in_the_portal_are_enforced_by_the_api(client, make_customer, http):
    c = make_customer(password=PASSWORD)
    b = client(**{"accept-language": "es"})
    assert b.sign_in(c.email).status_code == 303
    page = b.c.get("/settings").text
    assert "Límites de gasto" in page and "Aviso de saldo bajo" in page and "Sin límites de gasto" in page

    # Wrong input: the form says why, in the page's language, and saves nothing.
    bad = b.post("/settings", {"action": "cap", "service": "sms", "period": "day", "country": "XX", "amount": "1"})
    assert bad.status_code == 400 and "código de dos letras" in bad.text
    bad = b.post("/settings", {"action": "cap", "service": "sms", "period": "day", "country": "", "amount": "-1"})
    assert bad.status_code == 400 and "hasta 6 decimales" in bad.text
    assert http.post(API + "spend-caps", headers={"Api-Key": c.apikey}).json()["caps"] == []

    saved = b.post(
        "/settings", {"action": "cap", "service": "sms", "period": "day", "country": "us", "amount": "0.0075"}
    )
    assert saved.status_code == 303 and "cap_saved" in saved.headers["location"]
    table = b.c.get("/settings").text
    assert re.search(r"SMS y códigos OTP</td><td>Por día</td>\s*<td>US</td><td>0.0075 US\$</td>", table), table
    # The API sees the cap and enforces it: one message to the US fits, the next does not.
    api = http.post(API + "spend-caps", headers={"Api-Key": c.apikey}).json()["caps"]
    assert [(x["service"], x["period"], x["country"], x["limit"]) for x in api] == [("sms", "day", "US", "0.0075")]
    send = {"to": "+12125550100", "text": "hola"}
    assert http.post(API + "sms-api", data=send, headers={"Api-Key": c.apikey}).json()["code"] == "005"
    assert http.post(API + "sms-api", data=send, headers={"Api-Key": c.apikey}).json()["code"] == "140"
    # The portal's send form goes through the same rule and says so.
    form = b.post("/sms/send", {"to": "+12125550100", "text": "hola"})
    assert "result=140" in form.headers["location"]
    assert "Límite de gasto alcanzado" in b.c.get(form.headers["location"]).text

    removed = b.post("/settings", {"action": "cap_remove", "service": "sms", "period": "day", "country": "US"})
    assert removed.status_code == 303
    assert http.post(API + "spend-caps", headers={"Api-Key": c.apikey}).json()["caps"] == []

    assert b.post("/settings", {"action": "alert", "threshold": "abc"}).status_code == 400
    assert b.post("/settings", {"action": "alert", "threshold": "2.50"}).status_code == 303
    alert = http.post(API + "balance-alert", headers={"Api-Key": c.apikey}).json()
    assert (alert["threshold"], alert["alerted"], alert["email"]) == ("2.50", False, c.email)
    en = client(**{"accept-language": "en"})
    assert en.sign_in(c.email).status_code == 303
    english = en.c.get("/settings").text
    assert "Low-balance alert" in english and 'value="2.50"' in english and f"E-mails go to {c.email}" in english
    assert en.post("/settings", {"action": "alert", "threshold": ""}).status_code == 303
    assert "threshold" not in http.post(API + "balance-alert", headers={"Api-Key": c.apikey}).json()
