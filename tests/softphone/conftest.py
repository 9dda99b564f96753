"""Fixtures of the softphone tests: a fresh database per test module, on
SQLite and on the real PostgreSQL server, migrated with the platform's own
migrations, and a customer account with a plan to hang SIP accounts on."""

from __future__ import annotations

import os
import secrets
from decimal import Decimal

import pytest
import sqlalchemy as sa

from uvox.config import Settings
from uvox.db import migrate
from uvox.db.engine import make_engine

PG_ADMIN_URL = os.environ.get("UVOX_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _require(condition: bool, reason: str) -> None:
    if condition:
        return
    if os.environ.get("UVOX_REQUIRE_ALL") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def require():
    """``require(condition, reason)``: skip, or fail under UVOX_REQUIRE_ALL=1."""
    return _require


@pytest.fixture(scope="module")
def pg_url():
    """URL of a brand-new PostgreSQL database, dropped afterwards."""
    name = f"uvox_sp_{secrets.token_hex(6)}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        _require(False, f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
    url = sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as c:
        c.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
    admin.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db_url(request, tmp_path_factory):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sp') / 'uvox.db'}"
    return request.getfixturevalue("pg_url")


def _engine_for(url: str):
    engine = make_engine(Settings(database_url=url))
    migrate.upgrade(engine)
    return engine


@pytest.fixture(scope="module")
def engine(db_url):
    e = _engine_for(db_url)
    yield e
    e.dispose()


@pytest.fixture(scope="module")
def pg_engine(pg_url):
    e = _engine_for(pg_url)
    yield e
    e.dispose()


def _make_customer(engine, *, balance="12.50", currency="US$", rates=()):
    """A plan with ``rates`` [(prefix, destination, per_minute, sms)] and an
    account on it topped up with ``balance``, through the billing and accounts
    services; returns (account_id, account_number)."""
    from uvox.accounts import service as accounts
    from uvox.billing import plans
    from uvox.billing import service as billing

    name = f"plan-{secrets.token_hex(4)}"
    plans.create_plan(engine, name, currency)
    deck = "dialprefix,destination,rateinitial,smsrate\n" + "".join(f"{p},{d},{m},{s}\n" for p, d, m, s in rates)
    if rates:
        plans.import_rates(engine, name, deck)
    account = accounts.create_account(engine, email=f"{name}@example.com", plan=name)
    if Decimal(balance):
        billing.topup(engine, account.id, Decimal(balance))
    return account.id, account.number


@pytest.fixture(scope="session")
def make_customer():
    """``make_customer(engine, balance=..., currency=..., rates=[...])`` -> (account_id, number)."""
    return _make_customer


# ------------------------------------------------------------------ Kamailio + sipp

import shutil
import signal
import socket
import subprocess
import time

REGISTER_SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="uvox register">
  <send retrans="500">
    <![CDATA[
      REGISTER sip:{domain} SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{user}@{domain}>;tag=[pid]SIPpTag00[call_number]
      To: <sip:{user}@{domain}>
      Call-ID: [call_id]
      CSeq: 1 REGISTER
      Contact: <sip:{user}@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Expires: 300
      Content-Length: 0

    ]]>
  </send>
  <recv response="401" auth="true"/>
  <send retrans="500">
    <![CDATA[
      REGISTER sip:{domain} SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{user}@{domain}>;tag=[pid]SIPpTag00[call_number]
      To: <sip:{user}@{domain}>
      Call-ID: [call_id]
      CSeq: 2 REGISTER
      Contact: <sip:{user}@[local_ip]:[local_port];transport=[transport]>
      [authentication username={user} password={password}]
      Max-Forwards: 70
      Expires: 300
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
</scenario>
"""


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sip_options_ok(port: int, domain: str, timeout: float = 0.5) -> bool:
    """Send a SIP OPTIONS keepalive; True if the server answers 200."""
    msg = (
        f"OPTIONS sip:{domain} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK{secrets.token_hex(6)}\r\n"
        f"From: <sip:probe@{domain}>;tag=1\r\nTo: <sip:{domain}>\r\nCall-ID: {secrets.token_hex(8)}\r\n"
        "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.bind(("127.0.0.1", 0))
        s.sendto(msg.replace("127.0.0.1:9", f"127.0.0.1:{s.getsockname()[1]}").encode(), ("127.0.0.1", port))
        try:
            data, _ = s.recvfrom(65535)
        except OSError:
            return False
    return data.startswith(b"SIP/2.0 200")


class Kamailio:
    """A real Kamailio process on 127.0.0.1 with a given configuration text."""

    def __init__(self, cfg_text: str, port: int, domain: str, workdir):
        self.port, self.domain, self.workdir = port, domain, workdir
        self.cfg = workdir / "kamailio.cfg"
        self.cfg.write_text(cfg_text)
        self.log = workdir / "kamailio.log"
        self.proc = None

    def start(self) -> None:
        check = subprocess.run(["kamailio", "-c", "-f", str(self.cfg)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr[-2000:]
        self.proc = subprocess.Popen(
            ["kamailio", "-DD", "-E", "-f", str(self.cfg), "-Y", str(self.workdir),
             "-P", str(self.workdir / "kamailio.pid"), "-m", "32", "-M", "4"],
            stdout=open(self.log, "wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"kamailio exited: {self.log.read_text()[-3000:]}")
            if sip_options_ok(self.port, self.domain):
                return
            time.sleep(0.1)
        raise AssertionError(f"kamailio did not answer: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def sipp_register(port: int, domain: str, user: str, password: str, workdir) -> int:
    """REGISTER with digest auth through sipp; returns the final status code
    Kamailio answered to the authenticated request (200, 401, ...)."""
    run_dir = workdir / f"sipp-{secrets.token_hex(4)}"
    run_dir.mkdir()
    scenario = run_dir / "register.xml"
    scenario.write_text(REGISTER_SCENARIO.format(domain=domain, user=user, password=password))
    proc = subprocess.run(
        ["sipp", f"127.0.0.1:{port}", "-sf", str(scenario), "-m", "1", "-i", "127.0.0.1",
         "-p", str(free_udp_port()), "-timeout", "10s", "-recv_timeout", "5000", "-nostdin",
         "-trace_msg", "-message_file", str(run_dir / "messages.log")],
        cwd=run_dir, capture_output=True, text=True, timeout=30,
    )
    log = (run_dir / "messages.log").read_text() if (run_dir / "messages.log").exists() else ""
    codes = [int(line.split()[1]) for line in log.splitlines() if line.startswith("SIP/2.0 ")]
    assert len(codes) >= 2, f"sipp got no answer to the authenticated REGISTER (rc={proc.returncode}): {proc.stdout[-1500:]}{proc.stderr[-1500:]}"
    # sipp's exit status agrees with what it received: 0 only when it got the 200.
    assert (proc.returncode == 0) == (codes[-1] == 200), (proc.returncode, codes)
    return codes[-1]


@pytest.fixture(scope="session")
def sip_tools():
    _require(shutil.which("kamailio") is not None, "kamailio is not installed (apt: kamailio kamailio-postgres-modules)")
    _require(shutil.which("sipp") is not None, "sipp is not installed (apt: sip-tester)")
    _require(
        os.path.exists("/usr/lib/x86_64-linux-gnu/kamailio/modules/db_postgres.so")
        or bool(subprocess.run(["sh", "-c", "ls /usr/lib/*/kamailio/modules/db_postgres.so"], capture_output=True).stdout),
        "Kamailio's db_postgres module is not installed (apt: kamailio-postgres-modules)",
    )
    return {"Kamailio": Kamailio, "register": sipp_register, "free_udp_port": free_udp_port}


# ------------------------------------------------------------ the real processes

import json as _json
import sys
from pathlib import Path

import httpx

SRC = str(Path(__file__).resolve().parents[2] / "src")


def platform_env(db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UVOX_")}
    env.update(PYTHONPATH=SRC, UVOX_DATABASE_URL=db_url, UVOX_DISPATCHER="0", UVOX_SMSC_SIM="0", **extra)
    return env


class UvoxCli:
    """Runs ``python -m uvox ...`` as an operator would."""

    def __init__(self, env: dict[str, str]):
        self.env = env

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "uvox", *args], env=self.env,
                              capture_output=True, text=True, timeout=60)

    def json(self, *args: str) -> dict:
        proc = self.run(*args, "--json")
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr[-2000:])
        return _json.loads(proc.stdout)


class LiveServer:
    """``python -m uvox serve`` on a free port."""

    def __init__(self, env: dict[str, str], workdir: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "serve.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvox", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env={**env, "UVOX_PUBLIC_URL": self.url}, stdout=open(self.log, "wb"), stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(self.log.read_text()[-3000:])
            try:
                httpx.get(self.url + "/openapi.json", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError("uvox serve did not start: " + self.log.read_text()[-3000:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture(scope="session")
def processes():
    return {"UvoxCli": UvoxCli, "LiveServer": LiveServer, "env": platform_env}
