"""What an operator runs: `uvox serve` with its built-in simulator, then with a real connector.

Real processes only: `uvox serve`, `uvox smsc-sim`, `uvox admin ...`, HTTP over sockets.
"""

import json
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from tests.conftest import free_port, uvox_env
from tests.dispatch.conftest import poll
from tests.helpers import serve_processes

SEND = "/api/get-api/v1/sms-api"
STATUS = "/api/get-api/v1/sms-api/status"

pytestmark = pytest.mark.timeout(120)

DECK = "dialprefix,destination,rateinitial,smsrate\n1,USA,0.01,0.0075\n34,Spain,0.015,0.04\n"


def delivered(base, auth, mid):
    return poll(
        lambda: (
            (s := httpx.get(base + STATUS, params={**auth, "messageId": mid}).json()).get("state") == "delivered" and s
        ),
        timeout=30,
    )


def test_fresh_install_sends_through_the_builtin_simulator_and_says_so(uvox_server):
    sim_port, control = free_port(), free_port()
    srv = uvox_server(
        UVOX_SMSC_SIM_PORT=str(sim_port), UVOX_SMSC_SIM_CONTROL_PORT=str(control), UVOX_SMSC_SIM_RECEIPT_DELAY="0.1"
    )
    auth = srv.customer(DECK)
    r = httpx.post(srv.url + SEND, data={**auth, "to": "+13125550900", "text": "first SMS", "from": "UVox"}).json()
    assert r["code"] == "005"
    s = delivered(srv.url, auth, r["id"])
    assert s, httpx.get(srv.url + STATUS, params={**auth, "messageId": r["id"]}).json()
    assert s["code"] == "013" and s["statecode"] == "110"
    assert s["simulated"] is True and "no real phone" in s["notice"]
    got = httpx.get(f"http://127.0.0.1:{control}/messages").json()
    assert [(m["destination_addr"], m["text"], m["source_addr"]) for m in got] == [("13125550900", "first SMS", "UVox")]
    log = srv.log.read_text()
    assert "SMSC SIMULATOR IN USE" in log and "NOT delivered to any phone" in log


def test_a_configured_connector_takes_over_from_the_simulator(uvox_server):
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvox",
            "smsc-sim",
            "--port",
            "0",
            "--control-port",
            "0",
            "--receipt-delay",
            "0.1",
            "--system-id",
            "acme",
            "--password",
            "s3cret",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=uvox_env("sqlite:///unused.db"),
    )
    try:
        info = json.loads(sim.stdout.readline())
        srv = uvox_server(UVOX_SMSC_SIM_PORT=str(free_port()))
        out = srv.admin(
            "connector",
            "add",
            "acme",
            "--host",
            "127.0.0.1",
            "--port",
            str(info["smpp_port"]),
            "--system-id",
            "acme",
            "--password",
            "s3cret",
            "--tps",
            "50",
        )
        assert out["name"] == "acme" and out["prefixes"] == [""] and "password" not in out
        auth = srv.customer(DECK)
        r = httpx.post(srv.url + SEND, data={**auth, "to": "+34600000900", "text": "real route"}).json()
        s = delivered(srv.url, auth, r["id"])
        assert s and "simulated" not in s
        got = httpx.get(f"http://127.0.0.1:{info['control_port']}/messages").json()
        assert [(m["destination_addr"], m["system_id"]) for m in got] == [("34600000900", "acme")]
        listed = srv.admin("connector", "list")["connectors"]
        assert [c["name"] for c in listed] == ["acme"]
    finally:
        sim.terminate()
        sim.wait(10)
        sim.stdout.close()


def _http_children(pid: int) -> set[int]:
    return serve_processes(pid).get("http", set())


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_workers_serve_http_in_several_processes_and_deliver_each_message_once(uvox_server, kind):
    sim_port, control = free_port(), free_port()
    srv = uvox_server(
        kind,
        UVOX_WORKERS="2",
        UVOX_SMSC_SIM_PORT=str(sim_port),
        UVOX_SMSC_SIM_CONTROL_PORT=str(control),
        UVOX_SMSC_SIM_RECEIPT_DELAY="0.1",
    )
    auth = srv.customer(DECK)
    assert poll(lambda: len(_http_children(srv.proc.pid)) == 2, timeout=30), "expected 2 HTTP worker processes"

    numbers = [f"+1312555{i:04d}" for i in range(120)]

    def send(chunk):
        with httpx.Client(base_url=srv.url, timeout=30) as c:  # keep-alive, like a customer's client
            return [c.post(SEND, data={**auth, "to": n, "text": f"hello {n}"}).json() for n in chunk]

    with ThreadPoolExecutor(8) as pool:
        replies = [r for part in pool.map(send, [numbers[i::8] for i in range(8)]) for r in part]
    assert [r["code"] for r in replies] == ["005"] * 120
    ids = {r["id"] for r in replies}
    assert len(ids) == 120

    got = poll(
        lambda: (m := httpx.get(f"http://127.0.0.1:{control}/messages").json()) and len(m) >= 120 and m, timeout=60
    )
    assert sorted(m["destination_addr"] for m in got) == sorted(n.lstrip("+") for n in numbers)  # each once
    assert httpx.get(f"http://127.0.0.1:{control}/stats").json()["binds"] == 1  # one dispatcher, one bind
    for mid in sorted(ids, key=int)[-3:]:
        assert delivered(srv.url, auth, mid)["code"] == "013"
    bal = httpx.get(srv.url + "/api/get-api/v1/balance", params=auth).json()
    assert bal["balance"] == "4.10"  # 5 - 120 x 0.0075, charged once each

    # An HTTP process that dies is replaced, and sends keep working meanwhile.
    victim = min(_http_children(srv.proc.pid))
    os.kill(victim, signal.SIGKILL)
    r = httpx.post(srv.url + SEND, data={**auth, "to": "+13125559999", "text": "after a crash"}).json()
    assert r["code"] == "005"
    assert poll(lambda: (k := _http_children(srv.proc.pid)) and len(k) == 2 and victim not in k, timeout=30)

    # So is the delivery process (a process of its own, beside the simulator's), and
    # what is accepted while it is away is delivered by its successor.
    roles = serve_processes(srv.proc.pid)
    assert len(roles["delivery"]) == 1 and len(roles["smsc-sim"]) == 1, roles
    (dead,) = roles["delivery"]
    os.kill(dead, signal.SIGKILL)
    r = httpx.post(srv.url + SEND, data={**auth, "to": "+13125559998", "text": "while delivery restarts"}).json()
    assert r["code"] == "005"
    assert poll(lambda: (d := serve_processes(srv.proc.pid).get("delivery")) and dead not in d, timeout=30)
    assert delivered(srv.url, auth, r["id"])["code"] == "013"
    sent = [m["destination_addr"] for m in httpx.get(f"http://127.0.0.1:{control}/messages").json()]
    assert sent.count("13125559998") == 1 and len(sent) == len(set(sent)), sent


VOICE_DECK = "dialprefix,destination,rateinitial,smsrate\n1,USA,0.6000,0.0075\n"


def test_workers_still_settle_calls_in_the_delivery_process(uvox_server):
    """uvox.app.DELIVERY (delivery, call settling) runs in the delivery process of --workers N:
    a call record Kamailio writes is charged without any HTTP request. Nothing else
    settles calls, so this fails if the settler is not wired into server.py."""
    import sqlalchemy as sa

    from uvox.accounts import service as accounts
    from uvox.billing import ledger, plans
    from uvox.config import Settings
    from uvox.db.kamailio_tables import acc_cdrs
    from uvox.platform import Platform
    from uvox.softphone import service as sip
    from uvox.voice import trunks
    from uvox.voice.authorize import authorize

    srv = uvox_server("postgresql", UVOX_WORKERS="2", UVOX_SIP_DOMAIN="sip.uvox.test")
    p = Platform.open(Settings.from_env(srv.env))
    try:
        plans.create_plan(p.engine, "voice", "US$")
        plans.import_rates(p.engine, "voice", VOICE_DECK)
        trunks.add_trunk(p.engine, "carrier", "127.0.0.1", 5090)
        acct = srv.admin("account", "create", "--email", f"v{free_port()}@example.com", "--plan", "voice")
        srv.admin("topup", acct["accountnumber"], "1")
        account_id = accounts.find(p.engine, acct["accountnumber"]).id
        user = sip.create_sip_account(p.engine, account_id, domain="sip.uvox.test").account.username
        call = authorize(
            p.engine, p.settings, caller=user, domain="sip.uvox.test", dialled="13055550100", sip_call_id="wiring-1"
        )
        end = datetime.now(UTC).replace(tzinfo=None)
        with p.engine.begin() as conn:
            conn.execute(
                sa.insert(acc_cdrs).values(
                    start_time=end - timedelta(seconds=60),
                    end_time=end,
                    duration=60.0,
                    uvox_call=str(call.call_id),
                    sip_code="200",
                    hangup="caller",
                    trunk="carrier",
                    callid="wiring-1",
                )
            )

        def balance():
            with p.engine.connect() as conn:
                return ledger.funds(conn, account_id)[0]

        assert poll(lambda: balance() == Decimal("0.4"), timeout=20), f"not settled: balance {balance()}"
    finally:
        p.close()
