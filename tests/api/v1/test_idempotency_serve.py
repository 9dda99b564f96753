"""Idempotent sends as an operator runs them: `uvox serve` with its SMSC simulator on
SQLite, and two `uvox serve` processes on one PostgreSQL database. Concurrent
duplicates with one key reach the SMSC once and are charged once."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import UvoxProcess, free_port, new_database_url
from tests.dispatch.conftest import poll

pytestmark = pytest.mark.timeout(120)

API = "/api/get-api/v1/"
DECK = "dialprefix,destination,rateinitial,smsrate\n1,USA,0.01,0.0075\n"


def _at_once(sends):
    """Every callable of ``sends`` in a thread of its own, released together; their replies."""
    gate = threading.Barrier(len(sends))

    def one(send):
        gate.wait()
        return send()

    with ThreadPoolExecutor(len(sends)) as pool:
        return list(pool.map(one, sends))


def _post(url: str, endpoint: str, data: dict, key: str):
    def send() -> httpx.Response:
        with httpx.Client(timeout=30) as c:
            return c.post(url + API + endpoint, data=data, headers={"Idempotency-Key": key})

    return send


def _at_smsc(control: int, expected: int) -> list[dict]:
    """What the simulator received, once it has ``expected`` messages and a moment
    has passed in which a duplicate would have arrived too."""
    poll(lambda: len(httpx.get(f"http://127.0.0.1:{control}/messages").json()) >= expected, timeout=30)
    time.sleep(1.0)  # the dispatcher polls every 0.2 s: a second copy would be there by now
    return httpx.get(f"http://127.0.0.1:{control}/messages").json()


def test_concurrent_duplicates_reach_the_smsc_once_sqlite(uvox_server):
    control = free_port()
    srv = uvox_server(
        UVOX_SMSC_SIM_PORT=str(free_port()), UVOX_SMSC_SIM_CONTROL_PORT=str(control), UVOX_SMSC_SIM_RECEIPT_DELAY="0.1"
    )
    auth = srv.customer(DECK)
    ref = srv.admin("otp-template", "create", auth["accountnumber"], "--text", "Your code is {code}")["ref_id"]

    sms = {**auth, "to": "+13125550100", "text": "one and only"}
    otp = {**auth, "ref_id": ref, "phone_number": "+13125550199"}
    replies = _at_once([_post(srv.url, "sms-api", sms, "sms-1")] * 6 + [_post(srv.url, "OTP-api", otp, "otp-1")] * 6)
    assert len({r.content for r in replies[:6]}) == 1 and replies[0].json()["code"] == "005"
    assert len({r.content for r in replies[6:]}) == 1 and replies[6].json()["code"] == "022"

    got = _at_smsc(control, 2)
    assert sorted(m["destination_addr"] for m in got) == ["13125550100", "13125550199"]
    bal = httpx.get(srv.url + API + "balance", params=auth).json()
    assert bal["balance"] == "4.985"  # 5 - 2 x 0.0075: charged once each


def test_concurrent_duplicates_through_two_processes_on_postgresql(tmp_path, tmp_path_factory, pg_databases):
    url = new_database_url("postgresql", tmp_path_factory, pg_databases)
    control = free_port()
    # One process delivers (dispatcher and simulator), the other only answers HTTP: two API
    # processes, as behind a load balancer, sharing nothing but the database.
    a = UvoxProcess(
        url,
        tmp_path,
        UVOX_SMSC_SIM_PORT=str(free_port()),
        UVOX_SMSC_SIM_CONTROL_PORT=str(control),
        UVOX_SMSC_SIM_RECEIPT_DELAY="0.1",
    ).start()
    b = None
    try:
        auth = a.customer(DECK)
        b = UvoxProcess(url, tmp_path, UVOX_DISPATCHER="0", UVOX_SMSC_SIM="0").start()
        sms = {**auth, "to": "+13125550100", "text": "one and only"}
        replies = _at_once([_post(a.url, "sms-api", sms, "sms-1"), _post(b.url, "sms-api", sms, "sms-1")] * 5)
        assert {r.status_code for r in replies} == {200}
        assert len({r.content for r in replies}) == 1, [r.text for r in replies]
        assert sum("idempotent-replayed" not in r.headers for r in replies) == 1
        # Another request with the key is refused by either process.
        other = httpx.post(
            b.url + API + "sms-api", data={**sms, "text": "another"}, headers={"Idempotency-Key": "sms-1"}
        )
        assert other.status_code == 422 and other.json()["code"] == "130"

        got = _at_smsc(control, 1)
        assert [m["destination_addr"] for m in got] == ["13125550100"]
        bal = httpx.get(b.url + API + "balance", params=auth).json()
        assert bal["balance"] == "4.9925"  # 5 - 0.0075, once
    finally:
        if b is not None:
            b.stop()
        a.stop()
