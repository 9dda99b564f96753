"""OTP-api and OTP-api/verify: every code 020–027 and the 1xx extensions."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.api.v1.helpers import HOWS, call
from uvox import secretbox
from uvox.db import schema


@pytest.fixture
def template(platform, customer):
    from uvox.otp import service

    return service.create_template(platform.engine, customer.id, "Tu código UVox es {code}", "login")


def code_sent(platform, message_id: str) -> str:
    """What the phone reads: the real SMS text, unsealed as the dispatcher does."""
    with platform.engine.connect() as c:
        row = c.execute(sa.select(schema.messages).where(schema.messages.c.id == int(message_id))).one()
    assert row.text == "Tu código UVox es ******"  # stored masked
    return secretbox.open_(platform.secret, row.secret_text).rsplit(" ", 1)[1]


@pytest.mark.parametrize("how", HOWS)
def test_request_and_verify(http, platform, customer, template, how):
    r = call(http, "OTP-api", how, {**customer.auth, "ref_id": template.ref_id, "phone_number": "1305 555-0100"})
    body = r.json()
    assert r.status_code == 200
    assert body["code"] == "022" and body["status"] == "success" and body["version"] == "1.00"
    assert body["statusmessage"] == "Message sent successfully"
    assert body["phone_number"] == "+13055550100"
    sid = body["sessionID"]
    assert len(sid) >= 32
    code = code_sent(platform, body["id"])
    assert len(code) == 6 and code.isdigit()
    v = call(http, "OTP-api/verify", how, {**customer.auth, "sessionid": sid, "otp_code": code}).json()
    assert v == {
        "version": "1.00",
        "code": "027",
        "status": "success",
        "resultstring": "Success",
        "sessionID": sid,
        "statusmessage": "OTP Matched",
    }
    again = call(http, "OTP-api/verify", how, {**customer.auth, "sessionid": sid, "otp_code": code}).json()
    assert again["code"] == "026" and again["statusmessage"] == "OTP already used"


def test_code_is_never_stored_in_clear(http, platform, customer, template):
    body = call(
        http, "OTP-api", "get", {**customer.auth, "ref_id": template.ref_id, "phone_number": "13055550100"}
    ).json()
    code = code_sent(platform, body["id"])
    with platform.engine.connect() as c:
        rows = [dict(r._mapping) for r in c.execute(sa.select(schema.otp_sessions))]
        msgs = [dict(r._mapping) for r in c.execute(sa.select(schema.messages))]
    assert code not in repr(rows)
    assert code not in repr([{k: v for k, v in m.items() if k != "secret_text"} for m in msgs])


def test_bad_ref_id_is_020(http, customer, make_customer, platform, template):
    other = make_customer()
    for ref in ["", "nope", " "]:
        r = call(http, "OTP-api", "get", {**customer.auth, "ref_id": ref, "phone_number": "13055550100"})
        assert r.json()["code"] == "020" and r.json()["statusmessage"] == "Invalid or empty Message ref_id"
    # another account's template is not yours
    r = call(http, "OTP-api", "get", {**other.auth, "ref_id": template.ref_id, "phone_number": "13055550100"})
    assert r.json()["code"] == "020"


def test_missing_variables_016(http, customer, template):
    assert call(http, "OTP-api", "get", {**customer.auth, "ref_id": template.ref_id}).json()["code"] == "016"
    assert call(http, "OTP-api", "get", {**customer.auth, "phone_number": "1305"}).json()["code"] == "016"
    assert call(http, "OTP-api/verify", "get", {**customer.auth, "otp_code": "1"}).json()["code"] == "016"


def test_bad_phone_numbers(http, customer, template):
    r = call(http, "OTP-api", "get", {**customer.auth, "ref_id": template.ref_id, "phone_number": "1305xxxxxxxx"})
    assert r.json()["code"] == "002"
    r = call(http, "OTP-api", "get", {**customer.auth, "ref_id": template.ref_id, "phone_number": "999123456789"})
    assert r.json()["code"] == "014"


def test_no_balance_is_021_with_session(http, make_customer, platform):
    from uvox.otp import service

    poor = make_customer(balance="0")
    tpl = service.create_template(platform.engine, poor.id, "Code {code}")
    r = call(http, "OTP-api", "get", {**poor.auth, "ref_id": tpl.ref_id, "phone_number": "13055550100"})
    body = r.json()
    assert r.status_code == 402
    assert body["code"] == "021" and body["statusmessage"] == "No Plan or Balance in account"
    assert body["sessionID"]


def _request(http, customer, template):
    return call(
        http, "OTP-api", "get", {**customer.auth, "ref_id": template.ref_id, "phone_number": "13055550100"}
    ).json()


def test_expired_is_023(http, platform, customer, template):
    body = _request(http, customer, template)
    code = code_sent(platform, body["id"])
    with platform.engine.begin() as c:
        created = c.execute(sa.select(schema.otp_sessions.c.created_at)).scalar_one()
        c.execute(sa.update(schema.otp_sessions).values(expires_at=created - timedelta(seconds=1)))
    r = call(http, "OTP-api/verify", "get", {**customer.auth, "sessionid": body["sessionID"], "otp_code": code})
    assert r.json()["code"] == "023" and r.json()["statusmessage"] == "OTP Expired"


def test_ttl_comes_from_settings(platform, customer, template, http):
    _request(http, customer, template)
    with platform.engine.connect() as c:
        row = c.execute(sa.select(schema.otp_sessions)).one()
    assert (row.expires_at - row.created_at).total_seconds() == platform.settings.otp_ttl_seconds == 600


def test_unknown_or_foreign_session_is_024(http, customer, make_customer, template):
    body = _request(http, customer, template)
    other = make_customer()
    for auth, sid in [(customer.auth, "nope"), (other.auth, body["sessionID"]), (customer.auth, "")]:
        r = call(http, "OTP-api/verify", "get", {**auth, "sessionid": sid, "otp_code": "123456"})
        assert r.json()["code"] == "024"
        assert r.json()["statusmessage"] == "Invalid API / SessionId Combination - No Entry Exists"


def test_mismatch_then_locked_after_five(http, platform, customer, template):
    body = _request(http, customer, template)
    code = code_sent(platform, body["id"])
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        r = call(http, "OTP-api/verify", "get", {**customer.auth, "sessionid": body["sessionID"], "otp_code": wrong})
        assert r.json()["code"] == "025" and r.json()["statusmessage"] == "OTP Mismatch"
    r = call(http, "OTP-api/verify", "get", {**customer.auth, "sessionid": body["sessionID"], "otp_code": code})
    assert r.json()["code"] == "103"


def test_sends_per_number_are_limited(http, customer, template):
    codes = [_request(http, customer, template)["code"] for _ in range(6)]
    assert codes == ["022"] * 5 + ["102"]
    # another number is not affected
    r = call(http, "OTP-api", "get", {**customer.auth, "ref_id": template.ref_id, "phone_number": "13055550101"})
    assert r.json()["code"] == "022"


def test_the_manuals_forms_and_urls_work_copied_verbatim(http, platform, customer, template):
    """The manual's OTP forms write ``value={ref_id}"/>`` and ``value={sessionid}"/>``
    (a browser sends ``abc"/``) and its verify URL ends ``otp_code={otp_code}]``."""
    r = call(
        http,
        "OTP-api",
        "form",
        {**customer.auth, "ref_id": template.ref_id + '"/', "phone_number": "13055550100", "Submit": "Submit"},
    )
    body = r.json()
    assert body["code"] == "022", body
    sid, code = body["sessionID"], code_sent(platform, body["id"])
    v = call(
        http, "OTP-api/verify", "form", {**customer.auth, "sessionid": sid + '"/', "otp_code": code, "Submit": "Submit"}
    ).json()
    assert v == {
        "version": "1.00",
        "code": "027",
        "status": "success",
        "resultstring": "Success",
        "sessionID": sid,
        "statusmessage": "OTP Matched",
    }
    body = call(
        http, "OTP-api", "get", {**customer.auth, "ref_id": template.ref_id, "phone_number": "13055550100"}
    ).json()
    sid, code = body["sessionID"], code_sent(platform, body["id"])
    url = (
        f"/api/get-api/v1/OTP-api/verify?accountnumber={customer.number}&apikey={customer.apikey}"
        f"&sessionid={sid}&otp_code={code}]"
    )
    v = http.get(url).json()
    assert v["code"] == "027" and v["sessionID"] == sid
