"""An account's allowed and blocked destination countries (uvox.accounts.countries):
set by API (the ``countries`` extension), by the operator (CLI) and read by every
process (the CLI's part is in tests/otp/test_guard.py, against two `uvox serve`
processes); OTP-api and sms-api refuse other countries with 152, charging nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from uvox.accounts import countries
from uvox.otp import service as otp

API = "/api/get-api/v1/"


@pytest.fixture
def template(platform, customer):
    return otp.create_template(platform.engine, customer.id, "Code {code}")


def rules(http, customer, **changes) -> dict:
    return http.post(API + "countries", data={**customer.auth, **changes}).json()


def code_request(http, customer, template, phone: str):
    return http.post(API + "OTP-api", data={**customer.auth, "ref_id": template.ref_id, "phone_number": phone})


def balance(http, customer) -> Decimal:
    return Decimal(http.get(API + "balance", params=customer.auth).json()["balance"])


def test_numbers_are_placed_in_their_country_by_phonenumbers():
    assert countries.country_of("+13055550100") == "US"
    assert countries.country_of("+14165550100") == "CA"
    assert countries.country_of("+584121234567") == "VE"
    assert countries.country_of("+34612345678") == "ES"
    assert countries.country_of("+80012345678") == "001"  # international freephone: no single country
    assert countries.parse(" es, ve VE ") == ("ES", "VE")
    with pytest.raises(countries.BadCountry, match="XX, ZZ"):
        countries.parse("ES,xx,zz")


def test_blocked_and_allowed_countries_refuse_otp_and_sms_with_152(http, platform, customer, template):
    empty = rules(http, customer)
    assert (empty["code"], empty["allowed"], empty["blocked"]) == ("150", "", "")
    assert empty["statusmessage"] == "Country rules"
    assert rules(http, customer, blocked="ve")["blocked"] == "VE"
    spent = balance(http, customer)

    r = code_request(http, customer, template, "584121234567")
    body = r.json()
    assert (r.status_code, body["code"], body["country"]) == (403, "152", "VE")
    assert body["statusmessage"] == "Destination country not allowed for this account" and "sessionID" not in body
    r = http.post(API + "sms-api", data={**customer.auth, "to": "584121234567", "text": "hola"})
    assert (r.status_code, r.json()["code"]) == (403, "152")
    assert balance(http, customer) == spent  # nothing charged

    # In a send to several numbers, the refused one is reported and the others go.
    mixed = http.post(
        API + "sms-api", json={**customer.auth, "to": ["13055550100", "584121234567"], "text": "hola"}
    ).json()
    assert mixed["code"] == "005" and (mixed["accepted"], mixed["rejected"]) == ("1", "1")
    assert [x["code"] for x in mixed["results"]] == ["005", "152"]
    assert balance(http, customer) == spent - Decimal("0.0080")  # Miami's SMS rate, once

    # An allow list: only those countries (the block list still holds).
    both = rules(http, customer, allowed="ES, US")
    assert (both["allowed"], both["blocked"]) == ("ES,US", "VE")
    assert code_request(http, customer, template, "56221234567").json()["code"] == "152"  # Chile
    assert code_request(http, customer, template, "34612345678").json()["code"] == "022"
    assert code_request(http, customer, template, "13055550101").json()["code"] == "022"
    # Cleared: any country again.
    assert rules(http, customer, allowed="", blocked="")["code"] == "150"
    assert code_request(http, customer, template, "56221234567").json()["code"] == "022"


def test_an_unknown_country_code_is_151_and_changes_nothing(http, customer):
    rules(http, customer, blocked="NG")
    r = http.post(API + "countries", data={**customer.auth, "allowed": "ES,XX", "blocked": ""})
    body = r.json()
    assert (r.status_code, body["code"]) == (400, "151")
    assert body["statusmessage"] == "Invalid country code" and "XX" in body["detail"]
    assert rules(http, customer)["blocked"] == "NG"
