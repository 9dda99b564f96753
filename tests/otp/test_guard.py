"""SMS pumping protection of OTP-api (uvox.otp.guard), through the real HTTP server on
SQLite and PostgreSQL: each limit refuses at its threshold and not before, with its
own code, HTTP 429 and Retry-After, sending and charging nothing; the conversion-rate
alarm pauses a pumped prefix (callback, portal notice, resume) and leaves a normal
pattern alone; the limits hold across two `uvox serve` processes on PostgreSQL."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import sqlalchemy as sa

from tests.portal.conftest import PASSWORD, Browserless
from uvox import secretbox
from uvox.accounts import service as accounts
from uvox.db import schema as t
from uvox.otp import guard
from uvox.otp import service as otp

API = "/api/get-api/v1/"

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def template(platform, customer):
    return otp.create_template(platform.engine, customer.id, "Your code is {code}", "login")


def ask(http, customer, template, phone: str, **extra) -> httpx.Response:
    return http.post(API + "OTP-api", data={**customer.auth, "ref_id": template.ref_id, "phone_number": phone, **extra})


def balance(http, customer) -> Decimal:
    return Decimal(http.get(API + "balance", params=customer.auth).json()["balance"])


def messages(platform) -> int:
    with platform.engine.connect() as c:
        return c.execute(sa.select(sa.func.count()).select_from(t.messages)).scalar_one()


def refused(r: httpx.Response, code: str, window: int) -> dict:
    """A refusal by a limit: its code, 429, a Retry-After within the window."""
    body = r.json()
    assert (body["code"], r.status_code) == (code, 429), body
    assert 1 <= int(r.headers["retry-after"]) <= window + 1
    return body


def limit(platform, customer, **changes) -> None:
    guard.set_limits(platform.engine, platform.settings, customer.id, changes)


def number(i: int, prefix: str = "1305") -> str:
    return f"{prefix}555{i:04d}"


# --- limits -------------------------------------------------------------------------


def test_per_prefix_limit_refuses_at_its_threshold_sends_and_charges_nothing(http, platform, customer, template):
    limit(platform, customer, per_prefix=3)
    assert [ask(http, customer, template, number(i)).json()["code"] for i in range(3)] == ["022"] * 3
    before, sent = balance(http, customer), messages(platform)
    r = ask(http, customer, template, number(3))
    body = refused(r, "154", 3600)
    assert "Retry-After" in r.headers["access-control-expose-headers"]  # browser code may read it
    assert body["statusmessage"] == "Too many code requests to this number prefix, try again later"
    assert body["detail"] == "at most 3 codes to numbers starting +1305 every 3600 seconds"
    assert body["phone_number"] == "+13055550003" and "sessionID" not in body
    assert (balance(http, customer), messages(platform)) == (before, sent)
    # Another prefix of the same country is another count.
    assert ask(http, customer, template, number(4, "1212")).json()["code"] == "022"
    # Back to the default (100): allowed again.
    limit(platform, customer, per_prefix=None)
    assert ask(http, customer, template, number(5)).json()["code"] == "022"


def test_per_number_limit_is_the_operators_and_says_when_to_retry(http, platform, customer, template):
    limit(platform, customer, per_number=2)
    assert [ask(http, customer, template, number(1)).json()["code"] for _ in range(2)] == ["022"] * 2
    body = refused(ask(http, customer, template, number(1)), "102", 600)
    assert body["detail"] == "at most 2 codes per number every 600 seconds"
    assert ask(http, customer, template, number(2)).json()["code"] == "022"


def test_per_client_address_limit_counts_the_client_or_its_client_ip(http, platform, customer, template):
    limit(platform, customer, per_address=2)
    user = {"client_ip": "203.0.113.7"}
    assert [ask(http, customer, template, number(i), **user).json()["code"] for i in range(2)] == ["022"] * 2
    body = refused(ask(http, customer, template, number(2), **user), "155", 3600)
    assert body["statusmessage"] == "Too many code requests from this client address, try again later"
    # Another end user, and the HTTP client itself (127.0.0.1), have their own counts.
    assert ask(http, customer, template, number(3), client_ip="2001:db8::1").json()["code"] == "022"
    assert [ask(http, customer, template, number(4 + i)).json()["code"] for i in range(3)] == ["022", "022", "155"]
    bad = ask(http, customer, template, number(9), client_ip="not-an-ip")
    assert (bad.status_code, bad.json()["code"]) == (400, "016") and "client_ip" in bad.json()["detail"]


def test_per_account_limit_and_limits_are_per_account(http, platform, customer, make_customer, template):
    limit(platform, customer, per_account=3)
    phones = [number(1, "1305"), number(2, "1212"), "34612345678", "56221234567"]
    assert [ask(http, customer, template, p).json()["code"] for p in phones] == ["022", "022", "022", "153"]
    refused(ask(http, customer, template, number(7, "1415")), "153", 3600)
    other = make_customer()
    other_tpl = otp.create_template(platform.engine, other.id, "Code {code}")
    assert ask(http, other, other_tpl, number(1)).json()["code"] == "022"
    # 0 is no limit.
    limit(platform, customer, per_account=0)
    assert ask(http, customer, template, number(8, "1415")).json()["code"] == "022"


# --- the conversion-rate alarm ----------------------------------------------------------


class Receiver:
    """The customer's status callback endpoint."""

    def __init__(self) -> None:
        self.seen: list[tuple[dict, bytes]] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                outer.seen.append((dict(self.headers), self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def callbacks(platform):
    """A receiver, and a dispatcher (whose callback sender POSTs the outbox) on the test database."""
    from tests.dispatch.conftest import DispatcherThread

    with platform.engine.begin() as c:  # forget earlier tests' leases (the table emptying keeps meta)
        c.execute(
            sa.delete(t.meta).where(sa.or_(t.meta.c.key == "dispatcher_lease", t.meta.c.key.like("connector_up:%")))
        )
    receiver = Receiver()
    dispatcher = DispatcherThread(platform).start()
    yield receiver
    dispatcher.stop()
    receiver.close()


def code_of(platform, message_id: str) -> str:
    """The code the phone got (the SMS text, unsealed as the dispatcher does)."""
    with platform.engine.connect() as c:
        sealed = c.execute(sa.select(t.messages.c.secret_text).where(t.messages.c.id == int(message_id))).scalar_one()
    return secretbox.open_(platform.secret, sealed).rsplit(" ", 1)[1]


def verify(http, platform, customer, reply: dict) -> None:
    r = http.post(
        API + "OTP-api/verify",
        data={**customer.auth, "sessionid": reply["sessionID"], "otp_code": code_of(platform, reply["id"])},
    )
    assert r.json()["code"] == "027"


def wait_for(pred, timeout: float = 15.0):
    import time

    deadline = time.monotonic() + timeout
    while not (found := pred()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def test_a_pumping_pattern_pauses_the_prefix_tells_the_account_and_can_be_resumed(
    http, base_url, platform, make_customer, callbacks
):
    customer = make_customer(password=PASSWORD)
    template = otp.create_template(platform.engine, customer.id, "Your code is {code}")
    _, secret = accounts.set_callback(platform.engine, customer.id, callbacks.url)
    assert platform.settings.otp_alarm_min_requests == 20  # the documented defaults
    assert platform.settings.otp_alarm_min_verified_percent == 20

    # 20 codes to numbers of +1305, none verified: the 20th is still sent, and trips the alarm.
    assert [ask(http, customer, template, number(i)).json()["code"] for i in range(19)] == ["022"] * 19
    assert not callbacks.seen
    assert ask(http, customer, template, number(19)).json()["code"] == "022"
    before, sent = balance(http, customer), messages(platform)
    r = ask(http, customer, template, number(20))
    body = refused(r, "156", 3600)
    assert int(r.headers["retry-after"]) > 3500
    assert body["statusmessage"] == "Code requests to this number prefix are paused: few codes were verified"
    assert "+1305" in body["detail"]
    assert (balance(http, customer), messages(platform)) == (before, sent)
    # Only that prefix, and only for this account.
    assert ask(http, customer, template, number(1, "1212")).json()["code"] == "022"
    other = make_customer()
    assert (
        ask(http, other, otp.create_template(platform.engine, other.id, "{code}"), number(30)).json()["code"] == "022"
    )

    # The account hears of it by its status callback, signed like every callback.
    assert wait_for(lambda: callbacks.seen)
    ((headers, raw),) = callbacks.seen
    assert headers["X-UVox-Signature"] == "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    event = json.loads(raw)
    assert {
        k: event[k] for k in ("event", "accountnumber", "prefix", "country", "requested", "verified", "window_seconds")
    } == {
        "event": "otp_prefix_paused",
        "accountnumber": customer.number,
        "prefix": "+1305",
        "country": "US",
        "requested": "20",
        "verified": "0",
        "window_seconds": "3600",
    }
    assert event["paused_until"] > event["paused_at"]

    # ... and in the portal: a notice on the dashboard with the prefix and a button.
    browser = Browserless(base_url)
    try:
        assert browser.sign_in(customer.email).status_code == 303
        page = browser.c.get("/dashboard").text
        assert 'data-prefix="+1305"' in page and "Code requests to numbers starting +1305" in page
        assert "only 0 of the 20 codes" in page
        assert 'action="/otp-protection/resume"' in page
        assert 'data-prefix="+1305"' in browser.c.get("/otp-protection").text
        r = browser.post("/otp-protection/resume", {"prefix": "+1305", "next": "/dashboard"})
        assert r.status_code == 303 and r.headers["location"].startswith("/dashboard")
        after = browser.c.get(r.headers["location"]).text
        assert 'data-prefix="+1305"' not in after and "allowed again" in after
    finally:
        browser.close()
    # Resumed with a clean slate: the earlier unverified codes do not trip it again.
    assert [ask(http, customer, template, number(40 + i)).json()["code"] for i in range(3)] == ["022"] * 3


def test_a_verified_pattern_does_not_trip_and_the_ratio_is_the_threshold(http, platform, customer, template):
    # 25 codes, each verified: nothing happens.
    for i in range(25):
        reply = ask(http, customer, template, number(i)).json()
        assert reply["code"] == "022", (i, reply)
        verify(http, platform, customer, reply)
    assert guard.active_pauses(platform.engine, customer.id) == []
    # Another prefix: 20 codes of which 4 (20 %) were verified is not below the threshold ...
    for i in range(4):
        verify(http, platform, customer, ask(http, customer, template, number(i, "1212")).json())
    assert [ask(http, customer, template, number(i, "1212")).json()["code"] for i in range(4, 20)] == ["022"] * 16
    assert guard.active_pauses(platform.engine, customer.id) == []
    # ... 4 of 21 (19 %) is: that request is still sent, the next one is refused.
    assert ask(http, customer, template, number(20, "1212")).json()["code"] == "022"
    refused(ask(http, customer, template, number(21, "1212")), "156", 3600)
    assert [p.prefix for p in guard.active_pauses(platform.engine, customer.id)] == ["+1212"]


def test_a_pause_ends_by_itself_when_its_time_has_run(http, platform, customer, template):
    for i in range(20):
        assert ask(http, customer, template, number(i, "1202")).json()["code"] == "022"
    refused(ask(http, customer, template, number(20, "1202")), "156", 3600)
    # The clock cannot be moved (uvox.clock reads the real time): move the pause's end
    # back to its start, after every code it counted, as an hour's pause would end.
    with platform.engine.begin() as c:
        c.execute(
            sa.update(t.otp_pauses).where(t.otp_pauses.c.prefix == "+1202").values(until=t.otp_pauses.c.paused_at)
        )
    assert guard.active_pauses(platform.engine, customer.id) == []
    assert [ask(http, customer, template, number(21 + i, "1202")).json()["code"] for i in range(2)] == ["022"] * 2


# --- across processes ---------------------------------------------------------------------

DECK = "dialprefix,destination,rateinitial,smsrate\n1,USA,0.01,0.0075\n"


def test_limits_pauses_and_countries_hold_across_two_processes_and_the_operators_cli(uvox_server):
    """Two `uvox serve` HTTP processes on PostgreSQL share every count; the operator's
    commands (another process) change what both do on their next request."""
    server = uvox_server(
        "postgresql",
        UVOX_WORKERS="2",
        UVOX_SMSC_SIM="0",
        UVOX_DISPATCHER="0",
        UVOX_OTP_PREFIX_LIMIT="5",
        UVOX_OTP_ALARM_MIN_REQUESTS="6",
    )
    # Set up as the operator would, but through the domain functions the CLI calls (faster).
    from uvox.accounts import apikeys
    from uvox.billing import plans
    from uvox.billing.service import topup
    from uvox.config import Settings
    from uvox.platform import Platform

    p = Platform.open(Settings(database_url=server.database_url))
    try:
        plans.create_plan(p.engine, "retail", "US$")
        plans.import_rates(p.engine, "retail", DECK)
        acct = accounts.create_account(p.engine, email="pump@example.com", plan="retail")
        topup(p.engine, acct.id, Decimal("1"))
        key, _ = apikeys.create(p.engine, acct.id, "tests")
        ref_id = otp.create_template(p.engine, acct.id, "Code {code}").ref_id
    finally:
        p.close()

    def ask_once(i: int, prefix: str = "1305") -> httpx.Response:
        with httpx.Client(timeout=20) as h:  # a connection each: both HTTP processes get some
            return h.post(
                server.url + API + "OTP-api",
                headers={"Api-Key": key},
                data={"ref_id": ref_id, "phone_number": number(i, prefix)},
            )

    with ThreadPoolExecutor(12) as pool:
        replies = list(pool.map(ask_once, range(12)))
    assert sorted(r.json()["code"] for r in replies) == ["022"] * 5 + ["154"] * 7
    assert all(r.headers.get("retry-after") for r in replies if r.status_code == 429)
    with httpx.Client(timeout=10) as h:
        left = h.get(server.url + API + "balance", headers={"Api-Key": key}).json()["balance"]
    assert Decimal(left) == Decimal("1") - 5 * Decimal("0.0075")  # five codes charged, once each

    # The operator raises the prefix limit of this account: the 6th code goes, and trips
    # the alarm (6 requested, none verified); the 7th is refused as paused.
    shown = server.admin("account", "otp-limits", acct.number, "--per-prefix", "7")
    assert (shown["per_prefix"], shown["per_number"], shown["overridden"]) == (7, 5, ["per_prefix"])
    assert ask_once(20).json()["code"] == "022"
    assert ask_once(21).json()["code"] == "156"
    pauses = server.admin("account", "otp-pauses", acct.number)["pauses"]
    assert [(x["prefix"], x["country"], x["requested"], x["verified"]) for x in pauses] == [("+1305", "US", 6, 0)]
    assert server.admin("account", "otp-resume", acct.number, "1305")["resumed"] == "+1305"
    assert ask_once(22).json()["code"] == "022"

    # Countries set by the operator are obeyed by both processes at once.
    assert server.admin("account", "countries", acct.number, "--block", "cl,ng") == {
        "accountnumber": acct.number,
        "allowed": [],
        "blocked": ["CL", "NG"],
    }
    assert {ask_once(i, "5622").json()["code"] for i in range(4)} == {"152"}


# --- test mode: counted by no limit and no alarm ---------------------------------------


def _test_key(platform, customer):
    from tests.conftest import Customer
    from uvox.accounts import apikeys

    key, _ = apikeys.create(platform.engine, customer.id, "ci", test=True)
    return Customer(customer.id, customer.number, key, customer.email)


def test_test_mode_codes_use_up_no_limit_of_the_live_account(http, platform, customer, template):
    test = _test_key(platform, customer)
    limit(platform, customer, per_prefix=3, per_account=5)
    assert [ask(http, test, template, number(i)).json()["code"] for i in range(6)] == ["022"] * 6
    # A test key is checked like a live one, but its own codes were not counted either.
    assert [ask(http, customer, template, number(10 + i)).json()["code"] for i in range(3)] == ["022"] * 3
    refused(ask(http, customer, template, number(13)), "154", 3600)


def test_verified_test_codes_do_not_hide_live_pumping(http, platform, customer, template):
    """20 test codes verified with the fixed 000000 beside 20 unverified live codes to the
    same prefix: the live conversion rate is 0 %, and the alarm trips as without them."""
    test = _test_key(platform, customer)
    for i in range(20):
        reply = ask(http, test, template, number(i)).json()
        assert reply["code"] == "022" and reply["test"] == "1", reply
        assert (
            http.post(
                API + "OTP-api/verify", data={**test.auth, "sessionid": reply["sessionID"], "otp_code": "000000"}
            ).json()["code"]
            == "027"
        )
    assert guard.active_pauses(platform.engine, customer.id) == []  # test codes trip nothing
    assert [ask(http, customer, template, number(100 + i)).json()["code"] for i in range(20)] == ["022"] * 20
    refused(ask(http, customer, template, number(120)), "156", 3600)
    assert [(p.prefix, p.requested, p.verified) for p in guard.active_pauses(platform.engine, customer.id)] == [
        ("+1305", 20, 0)
    ]
