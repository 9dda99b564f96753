"""Shared fixtures: databases (SQLite and PostgreSQL), a real HTTP server, accounts.

Every test that takes ``platform`` (or anything built on it) runs once on SQLite
and once on PostgreSQL. PostgreSQL is the server at 127.0.0.1:5432 (or
UVOX_TEST_PG_URL); each test session creates its own database and drops it at the
end, so concurrent runs never share state. Between tests every table is emptied.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from uvox.config import Settings
from uvox.db import schema
from uvox.platform import Platform

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
PG_ADMIN_URL = os.environ.get("UVOX_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def uvox_require(condition: bool, reason: str) -> None:
    """Skip when a needed tool or service is missing, unless UVOX_REQUIRE_ALL=1 (CI), then fail."""
    if condition:
        return
    if os.environ.get("UVOX_REQUIRE_ALL") == "1":
        pytest.fail(f"UVOX_REQUIRE_ALL=1 and {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 20.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


def _pg_available() -> bool:
    try:
        eng = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with eng.connect() as c:
            c.execute(sa.text("SELECT 1"))
        eng.dispose()
        return True
    except Exception:
        return False


class PgDatabases:
    """Creates throw-away PostgreSQL databases and drops them at the end of the session."""

    def __init__(self) -> None:
        self.admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        self.created: list[str] = []

    def create(self) -> str:
        name = f"uvox_t_{secrets.token_hex(6)}"
        with self.admin.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self.admin.connect() as c:
            for name in self.created:
                c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


@pytest.fixture(scope="session")
def pg_databases():
    if not _pg_available():
        yield None
        return
    dbs = PgDatabases()
    yield dbs
    dbs.drop_all()


def new_database_url(kind: str, tmp_path_factory, pg_databases) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'uvox.db'}"
    uvox_require(pg_databases is not None, f"PostgreSQL does not answer at {PG_ADMIN_URL}")
    return pg_databases.create()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def session_platform(backend, tmp_path_factory, pg_databases):
    url = new_database_url(backend, tmp_path_factory, pg_databases)
    settings = Settings.from_env({"UVOX_DATABASE_URL": url, "UVOX_SMSC_SIM": "0", "UVOX_DISPATCHER": "0"})
    p = Platform.open(settings, migrate=True)
    yield p
    p.close()


_KEEP = {"meta", "alembic_version"}


def _empty_tables(p: Platform) -> None:
    names = [t.name for t in reversed(schema.metadata.sorted_tables) if t.name not in _KEEP]
    with p.engine.begin() as c:
        if p.engine.dialect.name == "postgresql":
            c.execute(sa.text("TRUNCATE " + ", ".join(f'"{n}"' for n in names) + " RESTART IDENTITY CASCADE"))
        else:
            for n in names:
                c.execute(sa.text(f'DELETE FROM "{n}"'))
            c.execute(sa.text("DELETE FROM sqlite_sequence")) if c.execute(
                sa.text("SELECT 1 FROM sqlite_master WHERE name='sqlite_sequence'")
            ).first() else None
    p.caches.clear()
    p.simulator_route.clear()


@pytest.fixture
def platform(session_platform) -> Platform:
    """A Platform on an empty database (SQLite or PostgreSQL)."""
    _empty_tables(session_platform)
    return session_platform


class _ThreadServer:
    """uvicorn serving the real app in a thread, on a real socket."""

    def __init__(self, app) -> None:
        import uvicorn

        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False, lifespan="on", loop="asyncio"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> _ThreadServer:
        self.thread.start()
        wait_port(self.port)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="session")
def session_server(session_platform):
    from uvox.app import create_app

    srv = _ThreadServer(create_app(session_platform, run_hooks=False)).start()
    yield srv
    srv.stop()


@pytest.fixture
def base_url(platform, session_server) -> str:
    """Base URL of a real HTTP server running the app on the test database."""
    return f"http://127.0.0.1:{session_server.port}"


@pytest.fixture
def http(base_url):
    with httpx.Client(base_url=base_url, timeout=30) as c:
        yield c


@dataclass
class Customer:
    id: int
    number: str
    apikey: str
    email: str

    @property
    def auth(self) -> dict:
        return {"accountnumber": self.number, "apikey": self.apikey}


DECK = """dialprefix,destination,rateinitial,smsrate
1,USA,0.01000,0.0075
1305,USA Miami,0.01200,0.0080
56,Chile,0.02850,0.0300
5611,Chile Audiotext,3.15000,0.0300
58,Venezuela,0.02025,0.0500
5841,Venezuela Mobile,0.04410,0.0600
58412,Venezuela Mobile Digitel,0.11820,0.0700
34,Spain,0.01500,0.0400
"""


@pytest.fixture
def make_customer(platform):
    """Factory: a customer on plan "test" (created once) with a balance and an API key."""
    from uvox.accounts import apikeys, service
    from uvox.billing import plans
    from uvox.billing.service import topup

    counter = {"n": 0}

    def make(
        balance: str = "10", plan: str | None = "test", email: str | None = None, password: str | None = None
    ) -> Customer:
        if plan == "test":
            try:
                plans.get_plan(platform.engine, "test")
            except Exception:
                plans.create_plan(platform.engine, "test", "US$")
                plans.import_rates(platform.engine, "test", DECK)
        counter["n"] += 1
        email = email or f"c{counter['n']}-{secrets.token_hex(3)}@example.com"
        a = service.create_account(platform.engine, email=email, password=password, plan=plan)
        if Decimal(balance):
            topup(platform.engine, a.id, Decimal(balance))
        key, _ = apikeys.create(platform.engine, a.id, "tests")
        return Customer(a.id, a.number, key, email)

    return make


@pytest.fixture
def customer(make_customer) -> Customer:
    return make_customer()


def uvox_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UVOX_") or k in ("UVOX_REQUIRE_ALL",)}
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    env["UVOX_DATABASE_URL"] = database_url
    env.update(extra)
    return env


def run_uvox(args: list[str], database_url: str, **extra: str) -> subprocess.CompletedProcess:
    """Run the real `uvox` command line (as `python -m uvox`)."""
    return subprocess.run(
        [sys.executable, "-m", "uvox", *args],
        env=uvox_env(database_url, **extra),
        capture_output=True,
        text=True,
        timeout=120,
    )


class UvoxProcess:
    """`python -m uvox serve` as its own process: what a user runs."""

    def __init__(self, database_url: str, cwd: Path, **extra: str) -> None:
        self.port = free_port()
        self.database_url = database_url
        self.log = cwd / f"serve-{self.port}.log"
        # One process unless a test asks for more: the README's default (one HTTP
        # process per core, UVOX_WORKERS unset or "0") is tried by the tests that say
        # so, and one process a server keeps the suite within its time and connections.
        extra.setdefault("UVOX_WORKERS", "1")
        self.env = uvox_env(database_url, UVOX_PORT=str(self.port), **extra)
        self.proc: subprocess.Popen | None = None
        self.cwd = cwd

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> UvoxProcess:
        for attempt in range(3):
            with self.log.open("ab") as fh:  # the server keeps its own copy
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "uvox", "serve", "--port", str(self.port)],
                    env=self.env,
                    cwd=self.cwd,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                )
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                        return self
                except OSError:
                    time.sleep(0.05)
            self.stop()
            log = self.log.read_text()
            # free_port() only says the port was free a moment ago; an outgoing
            # connection may have been given it since. Then try another.
            if self.proc.returncode is not None and "address already in use" in log.lower() and attempt < 2:
                self.port = free_port()
                self.env["UVOX_PORT"] = str(self.port)
                continue
            raise RuntimeError(f"uvox serve did not start:\n{log[-3000:]}")
        raise AssertionError("unreachable")

    def customer(self, deck: str, balance: str = "5") -> dict:
        """What an operator sets up by CLI for a first customer: plan "retail" with
        ``deck``, an account on it with ``balance``, an API key. The manual's auth variables."""
        path = self.cwd / f"deck-{self.port}.csv"
        path.write_text(deck)
        self.admin("plan", "create", "retail", "--currency", "US$")
        self.admin("rates", "import", "retail", str(path))
        acct = self.admin("account", "create", "--email", f"ops{free_port()}@example.com", "--plan", "retail")
        self.admin("topup", acct["accountnumber"], balance)
        key = self.admin("apikey", "create", acct["accountnumber"])
        return {"accountnumber": acct["accountnumber"], "apikey": key["apikey"]}

    def admin(self, *args: str) -> dict:
        import json

        res = run_uvox(
            ["admin", *args, "--json"],
            self.database_url,
            **{k: v for k, v in self.env.items() if k.startswith("UVOX_") and k != "UVOX_DATABASE_URL"},
        )
        if res.returncode != 0:
            raise RuntimeError(f"uvox admin {' '.join(args)} failed: {res.stdout}{res.stderr}")
        return json.loads(res.stdout.strip().splitlines()[-1])

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def uvox_server(tmp_path, tmp_path_factory, pg_databases):
    """Factory: start the real `uvox serve` process on a new database.

    ``uvox_server()`` uses SQLite; ``uvox_server("postgresql")`` a new PostgreSQL
    database. Extra UVOX_* settings are keyword arguments. Stopped at test end.
    """
    started: list[UvoxProcess] = []

    def start(kind: str = "sqlite", **extra: str) -> UvoxProcess:
        url = new_database_url(kind, tmp_path_factory, pg_databases)
        proc = UvoxProcess(url, tmp_path, **extra).start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture(scope="session")
def node_smpp_ready() -> None:
    """node-smpp (tests/interop/smsc.js) can run: node is there and npm installed it."""
    import shutil

    from tests.helpers import npm_install_node_smpp

    uvox_require(shutil.which("node") is not None, "node is not installed (the interop SMSC is node-smpp)")
    reason = npm_install_node_smpp()
    uvox_require(reason is None, reason or "")


@pytest.fixture
def node_smsc(node_smpp_ready):
    """Factory: start an independent SMSC (tests.helpers.NodeSmsc); stopped at the end of the test."""
    from tests.helpers import NodeSmsc, closing_factory

    yield from closing_factory(NodeSmsc)


_FIGURES: list[tuple[str, str]] = []


def pytest_runtest_logreport(report) -> None:
    """Collect what tests/robustness measured (also from xdist workers, whose reports carry it)."""
    if report.when == "teardown":
        _FIGURES.extend((report.nodeid, v) for k, v in report.user_properties if k == "robustness_figures")


def pytest_terminal_summary(terminalreporter) -> None:
    if _FIGURES:
        terminalreporter.section("robustness figures")
        for nodeid, line in sorted(_FIGURES):
            terminalreporter.write_line(f"{nodeid}: {line}")
