"""The OTP protection page: the account sets its countries (and the API obeys), sees
its limits, in English and Spanish. The alarm's notice and its Resume button are in
tests/otp/test_guard.py, where a pumping pattern trips them."""

from __future__ import annotations

from tests.portal.conftest import PASSWORD

API = "/api/get-api/v1/"


def test_countries_set_in_the_portal_hold_for_the_api(client, make_customer, http, platform):
    from uvox.otp import service as otp

    c = make_customer(password=PASSWORD)
    tpl = otp.create_template(platform.engine, c.id, "Code {code}")
    b = client()
    assert b.sign_in(c.email).status_code == 303
    page = b.c.get("/otp-protection")
    assert page.status_code == 200 and "<h1>OTP protection</h1>" in page.text
    assert 'href="/otp-protection"' in b.c.get("/dashboard").text  # in the menu
    # The limits in force, with their codes.
    for text in ("Per number prefix", "154", "Per client address", "155", "For the whole account", "1000"):
        assert text in page.text, text

    bad = b.post("/otp-protection", {"allowed": "es, Narnia", "blocked": ""})
    assert bad.status_code == 400 and "NARNIA" in bad.text and 'value="es, Narnia"' in bad.text
    ok = b.post("/otp-protection", {"allowed": "es, us", "blocked": " ve"})
    assert ok.status_code == 303
    shown = b.c.get(ok.headers["location"]).text
    assert "Your country rules have been saved." in shown
    assert 'title="Spain">ES<' in shown and 'title="Venezuela">VE<' in shown
    assert http.get(API + "countries", params=c.auth).json()["allowed"] == "ES,US"

    r = http.post(API + "OTP-api", data={**c.auth, "ref_id": tpl.ref_id, "phone_number": "56221234567"})
    assert r.json()["code"] == "152"
    assert (
        http.post(API + "OTP-api", data={**c.auth, "ref_id": tpl.ref_id, "phone_number": "34612345678"}).json()["code"]
        == "022"
    )


def test_the_page_speaks_spanish(client, make_customer):
    c = make_customer(password=PASSWORD)
    b = client(**{"accept-language": "es"})
    b.sign_in(c.email)
    page = b.c.get("/otp-protection").text
    assert "<h1>Protección OTP</h1>" in page and "Países bloqueados" in page
