"""General codes: 001, 004, 016, 017, 500, CORS, content types, and keys kept out of logs."""

from __future__ import annotations

import logging

import pytest

from tests.api.v1.helpers import call, envelope_ok

ENDPOINTS = ["sms-api", "sms-api/status", "OTP-api", "OTP-api/verify", "balance", "rates"]


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("method", ["DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE"])
def test_other_methods_are_004_405(http, path, method):
    r = http.request(method, "/api/get-api/v1/" + path)
    assert r.status_code == 405
    if method != "HEAD":
        body = r.json()
        assert body == {
            "version": "1.00",
            "code": "004",
            "status": "error",
            "resultstring": "Failure",
            "statusmessage": "405, Method Not Allowed",
        }


@pytest.mark.parametrize(
    "path", ["/api/get-api/v1/nothing", "/api/get-api/v2/sms-api", "/api/", "/api/x/y", "/api/get-api/v1/sms-api/other"]
)
def test_unknown_api_path_is_017_404(http, path):
    r = http.get(path)
    assert r.status_code == 404
    assert r.json()["code"] == "017" and r.json()["statusmessage"] == "404, HTTP 404 Not Found"


def test_method_is_checked_before_path(http):
    assert http.delete("/api/get-api/v1/nothing").json()["code"] == "004"


@pytest.mark.parametrize("path", ENDPOINTS)
def test_no_credentials_is_016(http, path):
    r = http.get("/api/get-api/v1/" + path)
    assert r.status_code == 400 and r.json()["code"] == "016"
    assert r.json()["version"] == "1"


@pytest.mark.parametrize("path", ENDPOINTS)
def test_wrong_key_is_001(http, customer, path):
    for variables, header in [
        ({"accountnumber": customer.number, "apikey": "WRONG"}, None),
        ({}, "WRONG"),
        ({"accountnumber": "00000000", "apikey": customer.apikey}, None),
    ]:
        r = call(http, path, "get", variables, header_key=header)
        assert r.status_code == 401
        assert r.json() == {
            "version": "1.00",
            "code": "001",
            "status": "error",
            "resultstring": "Failure",
            "statusmessage": "API Key Invalid or Not Available",
        }


def test_key_without_accountnumber_is_016(http, customer):
    assert call(http, "balance", "get", {"apikey": customer.apikey}).json()["code"] == "016"


def test_revoked_key_is_001(http, customer, platform):
    from uvox.accounts import apikeys

    assert call(http, "balance", "get", customer.auth).json()["code"] == "015"
    (key,) = apikeys.list_keys(platform.engine, customer.id)
    apikeys.revoke(platform.engine, customer.id, key.id)
    assert call(http, "balance", "get", customer.auth).json()["code"] == "001"


def test_auth_checked_before_variables(http):
    # wrong key and missing variables: 001 comes first
    assert call(http, "sms-api", "get", {"accountnumber": "1", "apikey": "x"}).json()["code"] == "001"


def test_vnd_api_json_accept(http, customer):
    r = call(http, "balance", "get", {}, header_key=customer.apikey, accept="application/vnd.api+json")
    assert r.headers["content-type"].startswith("application/vnd.api+json")
    assert r.json()["code"] == "015"
    r = call(http, "balance", "get", {}, header_key=customer.apikey)
    assert r.headers["content-type"] == "application/json; charset=utf-8"


def test_cors_on_every_reply_and_preflight(http, customer):
    for r in (
        call(http, "balance", "get", customer.auth),
        http.get("/api/get-api/v1/nothing"),
        call(http, "balance", "get", {"apikey": "x", "accountnumber": "1"}),
    ):
        assert r.headers["access-control-allow-origin"] == "*"
    r = http.options(
        "/api/get-api/v1/sms-api",
        headers={
            "Origin": "https://shop.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Api-Key, Content-Type",
        },
    )
    assert r.status_code == 204
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "Api-Key" in r.headers["access-control-allow-headers"]
    assert r.headers["access-control-allow-origin"] == "*"


def test_invalid_json_body_is_016(http, customer):
    r = http.post(
        "/api/get-api/v1/balance",
        content=b"{not json",
        headers={"Content-Type": "application/json", "Api-Key": customer.apikey},
    )
    assert r.json()["code"] == "016"
    r = http.post(
        "/api/get-api/v1/balance",
        content=b"[1,2]",
        headers={"Content-Type": "application/json", "Api-Key": customer.apikey},
    )
    assert r.json()["code"] == "016"


def test_internal_error_is_500_with_request_id_and_no_traceback(http, customer, caplog, monkeypatch):
    from uvox.api.v1 import endpoints

    def broken(*args):
        raise RuntimeError("database on fire")

    monkeypatch.setitem(endpoints.HANDLERS, "balance", broken)
    with caplog.at_level(logging.INFO, logger="uvox.api"):
        r = call(http, "balance", "get", customer.auth)
    body = r.json()
    assert r.status_code == 500
    assert body["code"] == "500" and body["statusmessage"] == "Internal problem, please tray again"
    assert "Traceback" not in r.text and "fire" not in r.text
    assert body["requestid"] in caplog.text and "database on fire" in caplog.text


def test_api_keys_never_logged(http, customer, caplog):
    with caplog.at_level(logging.DEBUG):
        call(http, "sms-api", "get", {**customer.auth, "to": "13058888888", "text": "x"})
        call(http, "balance", "get", {"accountnumber": customer.number, "apikey": customer.apikey + "X"})
        call(http, "balance", "get", {}, header_key=customer.apikey)
    # The test's own HTTP client (httpx) logs the URLs it calls; the server must not.
    server_lines = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore")))
    assert customer.apikey not in server_lines
    assert "sms-api" in server_lines  # the request was logged, just not its key


def test_replies_are_envelopes(http, customer):
    for path in ["sms-api", "sms-api/status", "OTP-api", "OTP-api/verify", "balance"]:
        envelope_ok(call(http, path, "get", customer.auth).json())


def test_nul_bytes_in_any_variable_are_refused_cleanly(http, customer):
    """PostgreSQL refuses NUL in text: such input must get a code, never reach the database."""
    nul = "a\x00b"
    cases = [
        ("sms-api", {"to": "13058888888", "text": "x", "callback_url": "https://x.example/\x00"}, "016"),
        ("sms-api", {"to": nul, "text": "x"}, "002"),
        ("sms-api", {"to": "13058888888", "text": "x", "from": nul}, "104"),
        ("sms-api/status", {"messageId": nul}, "010"),
        ("OTP-api", {"ref_id": nul, "phone_number": "13058888888"}, "020"),
        ("OTP-api/verify", {"sessionid": nul, "otp_code": "123456"}, "024"),
    ]
    for path, variables, code in cases:
        for how in ("get", "json"):
            r = call(http, path, how, {**customer.auth, **variables})
            assert r.json()["code"] == code, (path, variables, r.json())


def test_endpoint_names_ignore_case(http, customer):
    r = http.get("/api/get-api/v1/otp-api", params={**customer.auth, "phone_number": "13058888888"})
    assert r.status_code == 400 and r.json()["code"] == "016"  # found: it asks for ref_id, not 017
    assert http.get("/api/get-api/v1/BALANCE", params=customer.auth).json()["code"] == "015"


def test_text_plain_bodies_are_read_by_their_shape(http, customer):
    """fetch() with a JSON.stringify body and no Content-Type, or xhr.send("a=b"), send
    text/plain: the one body type a browser posts cross-origin without a preflight."""
    import json

    body = json.dumps({"accountnumber": customer.number, "apikey": customer.apikey})
    r = http.post(
        "/api/get-api/v1/balance", content=body.encode(), headers={"Content-Type": "text/plain;charset=UTF-8"}
    )
    assert r.json()["code"] == "015"
    form = f"accountnumber={customer.number}&apikey={customer.apikey}&to=13058888888&text=Hola%20texto"
    r = http.post("/api/get-api/v1/sms-api", content=form.encode(), headers={"Content-Type": "text/plain"})
    assert r.json()["code"] == "005"
    r = http.post("/api/get-api/v1/balance", content=b"just words", headers={"Content-Type": "text/plain"})
    assert r.json()["code"] == "016"
