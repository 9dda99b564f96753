"""Portal security as a user (or an attacker) meets it, over real HTTP."""

from __future__ import annotations

import re

from tests.conftest import UvoxProcess
from tests.portal.conftest import PASSWORD, Browserless

API = "/api/get-api/v1/"


def _customer_with_password(make_customer, **kw):
    return make_customer(password=PASSWORD, **kw)


def test_password_is_stored_as_argon2id(platform, make_customer):
    import sqlalchemy as sa

    from uvox.db import schema as t

    c = _customer_with_password(make_customer)
    with platform.engine.connect() as conn:
        stored = conn.execute(sa.select(t.accounts.c.password_hash).where(t.accounts.c.id == c.id)).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_every_form_refuses_a_post_without_the_csrf_token(client, make_customer, platform):
    from uvox.accounts import apikeys

    c = _customer_with_password(make_customer)
    b = client()
    assert b.sign_in(c.email).status_code == 303
    keys_before = apikeys.list_keys(platform.engine, c.id, include_revoked=True)
    assert [k.description for k in keys_before] == ["tests"]
    for path, data in [
        ("/apikeys", {"description": "x"}),
        ("/sms/send", {"to": "13055550100", "text": "hi"}),
        ("/otp-templates", {"text": "code {code}"}),
        ("/settings", {"callback_url": "https://a.b/c"}),
        ("/password", {"current": PASSWORD, "password": "another pass", "password2": "another pass"}),
        ("/sign_out", {}),
    ]:
        for token in (None, "forged"):
            data_ = dict(data, **({"csrf_token": token} if token else {}))
            r = b.c.post(path, data=data_)
            assert r.status_code == 403, (path, token, r.status_code)
    # Nothing happened: no key (the refused POST to /apikeys, description "x", made
    # none), no message, still signed in.
    assert apikeys.list_keys(platform.engine, c.id, include_revoked=True) == keys_before
    assert b.c.get("/sms").text.count("data-id=") == 0
    assert b.c.get("/dashboard").status_code == 200
    # A sign-in form posted from another site (no cookie, no token) is refused too.
    r = client().c.post("/sign_in", data={"email": c.email, "password": PASSWORD})  # closed by the fixture
    assert r.status_code == 403 and "uvox_session" not in r.headers.get("set-cookie", "")


def test_session_cookie_flags(client, make_customer):
    c = _customer_with_password(make_customer)
    plain = client()
    r = plain.sign_in(c.email)
    cookie = [h for h in r.headers.get_list("set-cookie") if h.startswith("uvox_session=")][0].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    # Behind a TLS proxy (X-Forwarded-Proto: https) every cookie is Secure; httpx,
    # talking plain HTTP, would not send a Secure cookie back, so carry it by hand.
    behind_tls = client(**{"x-forwarded-proto": "https"})
    page = behind_tls.c.get("/sign_in")
    csrf_cookie = [h for h in page.headers.get_list("set-cookie") if h.startswith("uvox_csrf=")][0]
    assert "secure" in csrf_cookie.lower() and "httponly" in csrf_cookie.lower()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = behind_tls.c.post(
        "/sign_in",
        data={"csrf_token": token, "email": c.email, "password": PASSWORD},
        headers={"cookie": csrf_cookie.split(";")[0]},
    )
    assert r.status_code == 303
    cookie = [h for h in r.headers.get_list("set-cookie") if h.startswith("uvox_session=")][0].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" in cookie


def test_api_is_untouched_by_the_portal(http, customer):
    """No portal cookie or middleware on the API."""
    r = http.get(API + "balance", params=customer.auth)
    assert r.json()["code"] == "015"
    assert "set-cookie" not in r.headers


def test_no_page_shows_another_accounts_data(client, make_customer, platform):
    from uvox.accounts import apikeys
    from uvox.otp import service as otp

    alice = _customer_with_password(make_customer)
    bob = _customer_with_password(make_customer)
    a, b = client(), client()
    a.sign_in(alice.email)
    b.sign_in(bob.email)
    r = b.post("/sms/send", {"to": "13055559999", "text": "bob's secret text"})
    bob_msg = re.search(r"ids=(\d+)", r.headers["location"]).group(1)
    a.post("/sms/send", {"to": "13055550100", "text": "alice text"})
    bob_tpl = otp.create_template(platform.engine, bob.id, "Bob {code}")
    bob_key = apikeys.list_keys(platform.engine, bob.id)[0]

    assert a.c.get(f"/sms/{bob_msg}").status_code == 404
    for page in (
        "/sms",
        "/dashboard",
        "/sms?number=13055559999",
        "/sms/export.csv",
        f"/sms/export.csv?id={bob_msg}",
        "/otp-templates",
        "/apikeys",
    ):
        body = a.c.get(page).text
        assert "bob&#39;s secret" not in body and "bob's secret" not in body, page
        assert "+13055559999" not in body and f"/sms/{bob_msg}" not in body, page
        assert bob_tpl.ref_id not in body and bob.number not in body, page
    assert "data-id=" not in a.c.get("/sms?number=13055559999").text
    assert "alice text" in a.c.get("/sms/export.csv").text
    assert a.c.get(f"/otp-templates/{bob_tpl.id}").status_code == 404
    assert a.post(f"/otp-templates/{bob_tpl.id}", {"text": "hijack {code}"}).status_code == 404
    assert a.post(f"/otp-templates/{bob_tpl.id}/delete", {}).status_code == 404
    assert a.post(f"/apikeys/{bob_key.id}/revoke", {}).status_code == 404
    assert otp.list_templates(platform.engine, bob.id)[0].text == "Bob {code}"
    assert apikeys.list_keys(platform.engine, bob.id)
    # Customers do not even learn that the operator area exists.
    assert a.c.get("/operator").status_code == 404
    assert a.c.get("/operator/messages").status_code == 404


def test_sign_in_is_throttled_per_account_and_per_address_across_processes(client, make_customer, platform, tmp_path):
    from uvox.accounts import sessions

    victim = _customer_with_password(make_customer)
    other = _customer_with_password(make_customer)
    b = client()
    for _ in range(sessions.MAX_FAILS_PER_ACCOUNT):
        assert b.sign_in(victim.email, "wrong password").status_code == 401
    # Even the right password is refused now, and the refusal says why.
    r = b.sign_in(victim.email)
    assert r.status_code == 429 and "Too many failed attempts" in r.text

    # A second `uvox serve` process on the same database refuses too (shared state).
    proc = UvoxProcess(platform.settings.database_url, tmp_path).start()
    try:
        second = Browserless(proc.url)
        assert second.sign_in(victim.email).status_code == 429
        # Another account from the same address still works (per-account budget)...
        assert second.sign_in(other.email).status_code == 303
        # ...until the address has failed too often, whatever the e-mails tried.
        third = Browserless(proc.url)
        # (the victim's failures above came from this address too)
        for i in range(sessions.MAX_FAILS_PER_ADDRESS - sessions.MAX_FAILS_PER_ACCOUNT):
            assert third.sign_in(f"nobody{i}@example.com", "guess").status_code == 401
        assert third.sign_in(other.email).status_code == 429
        second.close()
        third.close()
    finally:
        proc.stop()


def test_sign_out_and_password_change_end_sessions(client, make_customer):
    c = _customer_with_password(make_customer)
    laptop, phone = client(), client()
    laptop.sign_in(c.email)
    phone.sign_in(c.email)
    r = laptop.post("/password", {"current": "not it", "password": "new password 1", "password2": "new password 1"})
    assert r.status_code == 400 and "current password is wrong" in r.text
    r = laptop.post("/password", {"current": PASSWORD, "password": "new password 1", "password2": "new password 1"})
    assert r.status_code == 303
    assert laptop.c.get("/dashboard").status_code == 200
    assert phone.c.get("/dashboard").headers["location"].startswith("/sign_in")  # signed out elsewhere
    assert phone.sign_in(c.email).status_code == 401
    assert phone.sign_in(c.email, "new password 1").status_code == 303
    stolen = phone.c.cookies.get("uvox_session")
    assert phone.post("/sign_out", {}).status_code == 303
    # The old cookie is dead on the server, not only deleted in the browser.
    replay = Browserless(str(phone.c.base_url))
    replay.c.cookies.set("uvox_session", stolen)
    assert replay.c.get("/dashboard").status_code == 303
    replay.close()


def test_sign_up_validation(client, make_customer):
    taken = _customer_with_password(make_customer)
    b = client()
    cases = [
        ({"email": "not-an-email", "password": PASSWORD, "password2": PASSWORD}, "valid e-mail"),
        ({"email": "x@example.com", "password": "short", "password2": "short"}, "at least 8"),
        ({"email": "x@example.com", "password": PASSWORD, "password2": PASSWORD + "!"}, "do not match"),
        ({"email": taken.email.upper(), "password": PASSWORD, "password2": PASSWORD}, "already exists"),
    ]
    for data, text in cases:
        r = b.post("/sign_up", data)
        assert r.status_code == 400 and text in r.text, (data, r.status_code)
    assert b.c.get("/dashboard").status_code == 303  # none of them signed in


def test_odd_input_gets_a_page_not_a_crash(client, make_customer):
    c = make_customer(password=PASSWORD)
    b = client()
    r = b.c.post("/sign_in", data={"csrf_token": "é∑ forged", "email": c.email, "password": PASSWORD})
    assert r.status_code == 403 and "reload the page" in r.text
    assert b.sign_in("x" * 5000 + "@example.com", "p" * 5000).status_code == 401
    b.sign_in(c.email)
    for path in (
        "/sms?page=abc&from=2026-13-45&state=nope&number=%00",
        "/rates?page=99999999&number=abc",
        "/sms/99999999999999999999",
        "/sms/abc",
        "/operator/customers/1",
        "/lang/fr",
    ):
        r = b.c.get(path)
        assert r.status_code in (200, 400, 404), (path, r.status_code)
        assert "Traceback" not in r.text
    headers = b.c.get("/dashboard").headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY" and headers["cache-control"] == "no-store"


def test_sign_ups_from_one_address_are_limited(client):
    from uvox.accounts import sessions

    b = client()
    for i in range(sessions.MAX_SIGNUPS_PER_ADDRESS):
        r = b.post("/sign_up", {"email": f"bulk{i}@example.com", "password": PASSWORD, "password2": PASSWORD})
        assert r.status_code == 303
        b.post("/sign_out", {})
    r = b.post("/sign_up", {"email": "one-more@example.com", "password": PASSWORD, "password2": PASSWORD})
    assert r.status_code == 429 and "Too many accounts" in r.text
