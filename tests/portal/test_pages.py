"""Portal pages over real HTTP: keys, templates, history filters and CSV, rates,
documentation, settings, and the operator area."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import sqlalchemy as sa

from tests.portal.conftest import PASSWORD

API = "/api/get-api/v1/"


def _signed_in(client, make_customer, **kw):
    c = make_customer(password=PASSWORD, **kw)
    b = client()
    assert b.sign_in(c.email).status_code == 303
    return c, b


def test_api_keys_at_most_three_shown_once_and_revocable(client, make_customer, http):
    c, b = _signed_in(client, make_customer)  # the fixture made one key already
    keys = []
    for d in ("web", "crm"):
        r = b.post("/apikeys", {"description": d})
        assert r.status_code == 200
        keys.append(re.search(r'id="new-key">([^<]+)<', r.text).group(1))
    listing = b.c.get("/apikeys").text
    assert all(k not in listing for k in keys) and "web" in listing and "crm" in listing
    assert "Create new API KEY" not in listing  # three active: no form
    r = b.post("/apikeys", {"description": "fourth"})
    assert r.status_code == 409 and "Revoke one" in r.text
    assert http.get(API + "balance", params={"accountnumber": c.number, "apikey": keys[0]}).json()["code"] == "015"
    key_id = re.findall(r'action="/apikeys/(\d+)/revoke"', listing)[1]
    assert b.post(f"/apikeys/{key_id}/revoke", {}).status_code == 303
    assert http.get(API + "balance", params={"accountnumber": c.number, "apikey": keys[0]}).json()["code"] == "001"
    assert "Create new API KEY" in b.c.get("/apikeys").text


def test_otp_templates_create_edit_delete(client, make_customer, http):
    c, b = _signed_in(client, make_customer)
    r = b.post("/otp-templates", {"name": "Login", "text": "no placeholder"})
    assert r.status_code == 400 and "{code}" in r.text
    r = b.post("/otp-templates", {"name": "Login", "text": "Code {code}", "sender": "A name far too long"})
    assert r.status_code == 400 and "up to 11 characters" in r.text
    b.post("/otp-templates", {"name": "Login", "text": "Your code is {code}"})
    page = b.c.get("/otp-templates").text
    ref_id = re.search(r'data-ref-id="([^"]+)"', page).group(1)
    tid = re.search(r'href="/otp-templates/(\d+)"', page).group(1)
    assert b.post(f"/otp-templates/{tid}", {"name": "Login", "text": "Código: {code}"}).status_code == 303
    assert "Código: {code}" in b.c.get("/otp-templates").text
    r = http.post(API + "OTP-api", data={**c.auth, "ref_id": ref_id, "phone_number": "13055550100"}).json()
    assert r["code"] == "022"
    assert b.post(f"/otp-templates/{tid}/delete", {}).status_code == 303
    assert ref_id not in b.c.get("/otp-templates").text
    r = http.post(API + "OTP-api", data={**c.auth, "ref_id": ref_id, "phone_number": "13055550100"}).json()
    assert r["code"] == "020"


def _send(b, to, text="hello"):
    r = b.post("/sms/send", {"to": to, "text": text})
    assert r.status_code == 303
    return r.headers["location"]


def test_send_form_uses_the_api_rules(client, make_customer):
    c, b = _signed_in(client, make_customer, balance="0")
    assert "result=009" in _send(b, "13055550100")  # no balance: queued, as the API says
    assert "result=002" in _send(b, "12ab")
    assert "result=003" in _send(b, "13055550100", text="   ")
    assert "result=014" in _send(b, "99912345678")
    loc = _send(b, "13055550101, 13055550102")
    assert "result=009" in loc and re.search(r"ids=\d+%2C\d+", loc)
    page = b.c.get(loc).text
    assert "No Plan or Balance in account (SMS queued)" in page
    assert page.count('data-state="waiting_balance"') == 3
    assert "No plan available to send or Credit" in page


def test_history_filters_and_csv_export(client, make_customer, platform):
    c, b = _signed_in(client, make_customer, balance="10")
    _send(b, "13055550100", "first")
    _send(b, "584125550000", "=cmd|' /C calc'!A0")  # a formula must not run in a spreadsheet
    _send(b, "34911234567", "tercero")
    from uvox.db import schema as t

    with platform.engine.begin() as conn:
        rows = conn.execute(sa.select(t.messages.c.id, t.messages.c.recipient).order_by(t.messages.c.id)).all()
        ids = {r.recipient: r.id for r in rows}
        # One was sent, one is old.
        conn.execute(sa.update(t.messages).where(t.messages.c.id == ids["+584125550000"]).values(state="submitted"))
        old = conn.execute(
            sa.select(t.messages.c.created_at).where(t.messages.c.id == ids["+34911234567"])
        ).scalar_one()
        conn.execute(
            sa.update(t.messages)
            .where(t.messages.c.id == ids["+34911234567"])
            .values(created_at=old - timedelta(days=40))
        )

    def shown(query):
        return [int(x) for x in re.findall(r'<tr data-id="(\d+)"', b.c.get("/sms" + query).text)]

    assert shown("") == sorted(ids.values(), reverse=True)
    assert shown("?number=58412") == [ids["+584125550000"]]
    assert shown("?state=sent") == [ids["+584125550000"]]
    assert "SMS Sent" in b.c.get("/sms?state=sent").text
    assert shown("?state=to_send") == [ids["+34911234567"], ids["+13055550100"]]
    recent = (old - timedelta(days=5)).date().isoformat()
    assert ids["+34911234567"] not in shown(f"?from={recent}")
    assert shown(f"?to={recent}") == [ids["+34911234567"]]
    assert "were not valid" in b.c.get("/sms?from=yesterday").text

    r = b.c.get("/sms/export.csv?state=sent")
    assert r.headers["content-type"].startswith("text/csv")
    assert f"sms-{c.number}.csv" in r.headers["content-disposition"]
    data = list(csv.DictReader(io.StringIO(r.text)))
    assert [d["id"] for d in data] == [str(ids["+584125550000"])]
    assert data[0]["status"] == "SMS Sent" and data[0]["segments"] == "1" and data[0]["price"] == "0.07"
    assert data[0]["text"].startswith("'=")
    assert len(list(csv.DictReader(io.StringIO(b.c.get("/sms/export.csv").text)))) == 3


def test_rates_search_by_number_destination_and_pages_of_100000(client, make_customer, platform):
    from uvox.billing import plans

    c, b = _signed_in(client, make_customer)
    page = b.c.get("/rates?number=+58 412 555 1234").text
    assert re.search(r'id="applied">[^<]*prefix 58412 applies \(Venezuela Mobile Digitel\)', page)
    assert re.search(r'<tr class="applies"><td>58412</td>', page)
    # The shorter prefixes that did not win are listed too, longest first.
    assert re.findall(r"<tr[^>]*><td>(\d+)</td>", page) == ["58412", "5841", "58"]
    page = b.c.get("/rates?destination=chile").text
    assert re.findall(r"<tr[^>]*><td>(\d+)</td>", page) == ["56", "5611"]
    assert "refused (code 014)" in b.c.get("/rates?number=999").text

    deck = "dialprefix,destination,rateinitial,smsrate\n" + "\n".join(
        f"{100000 + i},Place {i % 1000},0.01,0.002" for i in range(100_000)
    )
    plans.create_plan(platform.engine, "big", "US$")
    plans.import_rates(platform.engine, "big", deck)
    from uvox.billing.service import change_plan

    change_plan(platform.engine, c.id, "big")
    first = b.c.get("/rates").text
    assert "Page 1 of 2000" in first and "Rates found: 100000" in first
    last = b.c.get("/rates?page=2000").text
    assert re.findall(r"<tr[^>]*><td>(\d+)</td>", last)[-1] == "199999"
    assert 'rel="next"' not in last and 'rel="prev"' in last
    found = b.c.get("/rates?destination=Place 999").text
    assert "Rates found: 100" in found and "Page 1 of 2" in found
    assert "page=2" in re.search(r'rel="next" href="([^"]+)"', found).group(1).replace("&amp;", "&")


def test_documentation_fills_in_the_account_number_everywhere(client, make_customer, base_url):
    c, b = _signed_in(client, make_customer)
    html = b.c.get("/documentation").text
    assert "{account-number}" not in html
    blocks = re.findall(r'<pre><code id="code-([a-z-]+)-\d+">(.*?)</code></pre>', html, re.S)
    # twelve endpoints, each as URL, curl, HTML, JavaScript, PHP, Python; test mode the same and its status by curl
    assert len(blocks) == 12 * 6 + 7
    for section, code in blocks:
        assert base_url + "/api/get-api/v1/" in code, section
        # curl authenticates with the Api-Key header alone (the key names the account).
        if "curl -H" not in code:
            assert c.number in code, (section, code)
    assert f'value="{c.number}"' in html  # the working form posts the account number


def test_settings_callback_url_and_secret(client, make_customer):
    c, b = _signed_in(client, make_customer)
    assert b.post("/settings", {"action": "save", "callback_url": "ftp://x"}).status_code == 400
    assert b.post("/settings", {"action": "save", "callback_url": "https://example.com/hook"}).status_code == 303
    page = b.c.get("/settings").text
    secret = re.search(r'id="callback-secret">([0-9a-f]+)<', page).group(1)
    assert 'value="https://example.com/hook"' in page
    b.post("/settings", {"action": "rotate"})
    assert secret not in b.c.get("/settings").text


def test_operators_plan_change_releases_messages_that_waited_for_a_plan(client, make_customer, platform, http):
    """issue 12: the same rule as `uvox admin account set-plan` (billing.service.change_plan)."""
    from uvox.accounts import service
    from uvox.billing import plans

    customer = make_customer(balance="1", plan=None)
    sent = http.post("/api/get-api/v1/sms-api", data={**customer.auth, "to": "+13055550100", "text": "hola"}).json()
    assert sent["code"] == "009"
    plans.create_plan(platform.engine, "late", "US$")
    plans.import_rates(platform.engine, "late", "dialprefix,destination,rateinitial,smsrate\n1,USA,0.01,0.0075\n")
    service.create_account(platform.engine, email="staff2@example.com", password=PASSWORD, is_staff=True)
    staff = client()
    assert staff.sign_in("staff2@example.com").status_code == 303
    page = f"/operator/customers/{customer.id}"
    assert staff.post(page, {"action": "plan", "plan": "late"}, csrf_from=page).status_code == 303
    st = http.get("/api/get-api/v1/sms-api/status", params={**customer.auth, "messageId": sent["id"]}).json()
    assert st["code"] == "011" and st["price"] == "0.0075"


def test_operator_area(client, make_customer, platform):
    from uvox.accounts import service

    customer = make_customer(balance="0")
    service.create_account(platform.engine, email="staff@example.com", password=PASSWORD, is_staff=True)
    staff = client()
    assert staff.sign_in("staff@example.com").status_code == 303
    listing = staff.c.get(f"/operator?q={customer.number}").text
    assert customer.email in listing
    page = f"/operator/customers/{customer.id}"
    r = staff.post(page, {"action": "topup", "amount": "12.50"}, csrf_from=page)
    assert r.status_code == 303  # redirected: a refresh cannot top up twice
    r = staff.c.get(r.headers["location"])
    assert "Top-up recorded" in r.text and re.search(r'id="c-balance">US\$ 12.50<', r.text)
    assert staff.post(page, {"action": "credit", "amount": "-1"}, csrf_from=page).status_code == 400
    r = staff.c.get(staff.post(page, {"action": "credit", "amount": "3"}, csrf_from=page).headers["location"])
    assert re.search(r'id="c-credit">US\$ 3.00<', r.text)

    deck = "dialprefix,destination,rateinitial,smsrate\n57,Colombia,0.02,0.01\n573,Colombia Mobile,0.03,0.02\n"
    staff.post("/operator/plans", {"action": "create", "name": "latam", "currency": "US$"}, csrf_from="/operator/plans")
    r = staff.post(
        "/operator/plans",
        {"action": "upload", "plan": "latam"},
        files={"deck": ("deck.csv", deck.encode(), "text/csv")},
        csrf_from="/operator/plans",
    )
    assert r.status_code == 200 and "Rates: 2." in r.text
    r = staff.post(
        "/operator/plans",
        {"action": "upload", "plan": "latam"},
        files={"deck": ("deck.csv", b"prefix,cost\n1,2\n", "text/csv")},
        csrf_from="/operator/plans",
    )
    assert r.status_code == 400 and "missing column" in r.text

    with platform.engine.begin() as conn:
        from uvox.clock import now
        from uvox.db import schema as t

        conn.execute(
            sa.insert(t.connectors).values(
                name="carrier-a",
                host="smsc.example",
                port=2775,
                system_id="uvox",
                sealed_password="",
                system_type="",
                bind_mode="transceiver",
                tps=50,
                window=64,
                accepts_alphanumeric=True,
                enabled=True,
                created_at=now(),
            )
        )
    r = staff.c.get("/operator/connectors").text
    assert "carrier-a" in r and "smsc.example:2775" in r

    other = client()
    assert other.sign_in(customer.email).status_code == 401  # the fixture customer has no password
    msg = make_customer(password=PASSWORD)
    m = client()
    m.sign_in(msg.email)
    m.post("/sms/send", {"to": "13055550100", "text": "find me"})
    found = staff.c.get(f"/operator/messages?account={msg.number}").text
    assert "+13055550100" in found and msg.number in found
    assert "+13055550100" not in staff.c.get(f"/operator/messages?account={customer.number}").text
