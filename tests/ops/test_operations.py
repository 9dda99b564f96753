"""/health, /ready and /metrics, as an operator's load balancer and Prometheus see them:
a real `uvox serve` (one process, and --workers 2), real SMS through the simulator,
a real PostgreSQL database taken away under it."""

from __future__ import annotations

import time

import httpx
import sqlalchemy as sa

from tests.conftest import PG_ADMIN_URL, free_port
from tests.helpers import sample

SEND = "/api/get-api/v1/sms-api"
DECK = "dialprefix,destination,rateinitial,smsrate\n1,USA,0.01,0.0075\n"


def wait_ready(url: str, timeout: float = 15) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        r = httpx.get(url + "/ready")
        if r.status_code == 200 or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


def test_health_ready_and_metrics_of_a_fresh_install_with_two_http_processes(uvox_server):
    srv = uvox_server(UVOX_WORKERS="2", UVOX_SMSC_SIM_PORT=str(free_port()), UVOX_SMSC_SIM_RECEIPT_DELAY="0.1")
    assert httpx.get(srv.url + "/health").json() == {"status": "ok"}
    r = wait_ready(srv.url)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok", "connectors": "ok"},
        "connectors": {"smsc-sim": "bound"},
    }
    auth = srv.customer(DECK)
    with httpx.Client(base_url=srv.url) as c:  # new connections: both processes answer some
        for i in range(10):
            assert (
                c.post(
                    SEND, data={**auth, "to": f"+1312555{i:04d}", "text": "hi"}, headers={"connection": "close"}
                ).json()["code"]
                == "005"
            )
        assert c.get("/api/get-api/v1/balance", params={**auth, "apikey": "wrong"}).json()["code"] == "001"
    deadline = time.monotonic() + 15
    while True:
        m = httpx.get(srv.url + "/metrics")
        assert m.status_code == 200 and m.headers["content-type"].startswith("text/plain")
        done = sample(m.text, "uvox_sms_dispatched_total", connector="smsc-sim", outcome="submitted")
        if done >= 10 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    text = m.text
    # Counted in whichever process answered, added up across processes.
    assert sample(text, "uvox_http_requests_total", endpoint="sms-api", code="005", status="200") == 10
    assert sample(text, "uvox_http_requests_total", endpoint="balance", code="001") == 1
    assert sample(text, "uvox_http_request_duration_seconds_count", endpoint="sms-api") == 10
    assert done == 10
    assert sample(text, "uvox_sms_dispatch_duration_seconds_count", connector="smsc-sim") == 10
    assert sample(text, "uvox_connector_up", connector="smsc-sim") == 1
    assert "uvox_queue_depth 0.0" in text
    assert 'uvox_messages_in_flight{state="queued"}' in text
    assert auth["apikey"] not in text


def test_ready_names_what_is_wrong(uvox_server):
    srv = uvox_server(UVOX_SMSC_SIM_PORT=str(free_port()))
    assert wait_ready(srv.url).status_code == 200
    # A carrier link that cannot bind: the simulator stops being the route, nothing is bound.
    srv.admin(
        "connector",
        "add",
        "carrier",
        "--host",
        "127.0.0.1",
        "--port",
        str(free_port()),
        "--system-id",
        "uvox",
        "--password",
        "pw",
    )
    deadline = time.monotonic() + 15
    while (r := httpx.get(srv.url + "/ready")).json()["connectors"] != {"carrier": "down"}:
        assert time.monotonic() < deadline, r.text
        time.sleep(0.3)
    assert r.status_code == 503 and r.json()["checks"]["connectors"] == "down: carrier"
    # A database behind the code's migrations.
    eng = sa.create_engine(srv.database_url)
    with eng.begin() as c:
        (head,) = c.execute(sa.text("SELECT version_num FROM alembic_version")).one()
        c.execute(sa.text("UPDATE alembic_version SET version_num = '0001'"))
    r = httpx.get(srv.url + "/ready")
    assert r.status_code == 503 and "run uvox db upgrade" in r.json()["checks"]["migrations"]
    with eng.begin() as c:
        c.execute(sa.text("UPDATE alembic_version SET version_num = :h"), {"h": head})
    eng.dispose()
    assert httpx.get(srv.url + "/health").status_code == 200


def test_database_gone_is_not_ready_but_alive(uvox_server):
    srv = uvox_server("postgresql")
    assert wait_ready(srv.url).json()["checks"]["database"] == "ok"
    name = sa.engine.make_url(srv.database_url).database
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()
    r = httpx.get(srv.url + "/ready")
    assert r.status_code == 503 and r.json()["checks"]["database"].startswith("unreachable"), r.text
    assert r.json()["status"] == "not ready"
    assert httpx.get(srv.url + "/health").json() == {"status": "ok"}
    # Prometheus still gets the process counters, and is told the database is away.
    m = httpx.get(srv.url + "/metrics")
    assert m.status_code == 200 and sample(m.text, "uvox_database_up") == 0
    assert sample(m.text, "uvox_http_requests_total", endpoint="/ready", status="503") >= 1


def test_a_metrics_directory_the_operator_names_is_made_and_emptied(uvox_server, tmp_path):
    where = tmp_path / "not-yet" / "metrics"
    where.parent.mkdir()
    (where.parent / "stale").mkdir()
    srv = uvox_server(PROMETHEUS_MULTIPROC_DIR=str(where), UVOX_SMSC_SIM_PORT=str(free_port()))
    auth = srv.customer(DECK)
    for _ in range(3):
        assert httpx.post(srv.url + SEND, data={**auth, "to": "+13125550100", "text": "hi"}).json()["code"] == "005"
    m = httpx.get(srv.url + "/metrics")
    assert sample(m.text, "uvox_http_requests_total", endpoint="sms-api", code="005") == 3
    assert sample(m.text, "uvox_database_up") == 1
    srv.stop()
    # A second run starts from zero, not from the counts the first one left on disk.
    assert any(where.iterdir())
    srv = uvox_server(PROMETHEUS_MULTIPROC_DIR=str(where), UVOX_SMSC_SIM_PORT=str(free_port()))
    m = httpx.get(srv.url + "/metrics")
    assert sample(m.text, "uvox_http_requests_total", endpoint="sms-api", code="005") == 0


def test_metrics_token(uvox_server):
    srv = uvox_server(UVOX_METRICS_TOKEN="m3trics-t0ken", UVOX_SMSC_SIM_PORT=str(free_port()))
    r = httpx.get(srv.url + "/metrics")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert httpx.get(srv.url + "/metrics", headers={"authorization": "Bearer wrong"}).status_code == 401
    ok = httpx.get(srv.url + "/metrics", headers={"authorization": "Bearer m3trics-t0ken"})
    assert ok.status_code == 200 and "uvox_queue_depth" in ok.text


def test_json_logs_carry_the_request_id_the_client_got(uvox_server):
    import json

    srv = uvox_server(UVOX_LOG_FORMAT="json", UVOX_SMSC_SIM_PORT=str(free_port()))
    auth = srv.customer(DECK)
    r = httpx.post(srv.url + SEND, data={**auth, "to": "+13125550100", "text": "hi"})
    rid = r.headers["x-request-id"]
    # Every other reply names its request too: health, the portal, the docs, a 404.
    others = [
        httpx.get(srv.url + path).headers.get("x-request-id")
        for path in ("/health", "/sign_in", "/docs", "/no-such-page", "/health")
    ]
    assert all(others) and len(set(others + [rid])) == 6, others
    srv.stop()
    lines = [ln for ln in srv.log.read_text().splitlines() if ln.strip()]
    records = [json.loads(ln) for ln in lines]  # every line, uvicorn's own included, is one JSON object
    mine = [rec for rec in records if rec.get("request_id") == rid]
    assert len(mine) == 1 and mine[0]["logger"] == "uvox.api" and mine[0]["level"] == "INFO", mine
    assert "code=005" in mine[0]["message"] and {"time", "level", "logger", "message"} <= set(mine[0])
    assert auth["apikey"] not in srv.log.read_text()


def test_oversized_headers_and_bodies_get_their_own_codes(uvox_server):
    srv = uvox_server(UVOX_SMSC_SIM_PORT=str(free_port()))
    auth = srv.customer(DECK)
    with httpx.Client(base_url=srv.url) as c:
        r = c.get("/api/get-api/v1/balance", params=auth, headers={"x-padding": "a" * 100_000})
        assert (r.status_code, r.json()["code"]) == (431, "106") and "at most 8192" in r.json()["detail"]
        many = {f"x-pad-{i}": "b" * 8000 for i in range(10)}  # each allowed, together too many
        r = c.get("/api/get-api/v1/balance", params=auth, headers=many)
        assert (r.status_code, r.json()["code"]) == (431, "106")
        assert c.get("/sign_in", headers={"x-padding": "a" * 9000}).status_code == 431
        # The body: refused by its length, and also when it arrives without one (chunked).
        big = {**auth, "to": "+13125550100", "text": "x" * 1_100_000}
        r = c.post(SEND, data=big)
        assert (r.status_code, r.json()["code"]) == (413, "105") and "1000000" in r.json()["detail"]
        chunks = (part for part in [b"to=%2B13125550100&text=", *[b"y" * 65536] * 20])
        r = c.post(SEND, params=auth, content=chunks, headers={"content-type": "application/x-www-form-urlencoded"})
        assert (r.status_code, r.json()["code"]) == (413, "105")
        # Chunked multipart: no length to refuse it by, and each field under the limit.
        boundary = "b0undary"
        field = (
            f'--{boundary}\r\ncontent-disposition: form-data; name="pad"\r\n\r\n'.encode() + b"z" * 600_000 + b"\r\n"
        )
        multi = (part for part in [field, field, f"--{boundary}--\r\n".encode()])
        r = c.post(
            SEND,
            params={**auth, "to": "+13125550100", "text": "hi"},
            content=multi,
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
        assert (r.status_code, r.json()["code"]) == (413, "105")
        # Pages and softphone URLs have limits of their own, read the same way.
        r = c.post(
            "/softphone/zoiper/balance",
            content=(b"a" * 65536 for _ in range(3)),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 413 and "65536" in r.text
        r = c.post(
            "/sign_in",
            content=(b"a" * 1_000_000 for _ in range(21)),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 413
        # Nothing was sent or charged, and normal requests go on.
        assert c.get("/api/get-api/v1/balance", params=auth).json()["balance"] == "5.00"
