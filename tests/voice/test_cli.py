"""`uvox admin trunk ...` and `uvox admin calls list`, run as an operator runs them:
the real `uvox` command in its own process, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from tests.conftest import new_database_url, run_uvox
from uvox.db import schema as t

SECRET = "Hunter2-xyz"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path_factory, pg_databases):
    return new_database_url(request.param, tmp_path_factory, pg_databases)


@pytest.fixture
def sqlite_url(tmp_path_factory, pg_databases):
    """The error paths print what the service raises, the same on either database (tests/voice/
    test_trunks.py checks the service on both): one database keeps the suite's time down."""
    return new_database_url("sqlite", tmp_path_factory, pg_databases)


def is_sqlite(db_url: str) -> bool:
    return db_url.startswith("sqlite")


def run(db_url, *args, code: int = 0) -> dict:
    """`uvox admin ARGS --json`: exactly one JSON object on stdout, never a traceback."""
    res = run_uvox(["admin", *args, "--json"], db_url)
    assert res.returncode == code, res.stdout + res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 1, res.stdout
    return json.loads(lines[0])


def check_notice(db_url, doc: dict) -> None:
    """On SQLite every voice command says calls need PostgreSQL; on PostgreSQL it says nothing."""
    if is_sqlite(db_url):
        assert "PostgreSQL" in doc["notice"]
    else:
        assert "notice" not in doc


def test_help_shows_the_commands():
    res = run_uvox(["admin", "--help"], "sqlite:///:memory:")
    assert "trunk" in res.stdout and "calls" in res.stdout
    res = run_uvox(["admin", "trunk", "add", "--help"], "sqlite:///:memory:")
    for opt in (
        "--host",
        "--port",
        "--transport",
        "--prefix",
        "--priority",
        "--strip",
        "--add-prefix",
        "--username",
        "--password",
        "--max-channels",
        "--json",
    ):
        assert opt in res.stdout


def test_trunk_journey(db_url):
    added = run(
        db_url,
        "trunk",
        "add",
        "carrier-es",
        "--host",
        "sip.carrier.example",
        "--port",
        "5080",
        "--transport",
        "tcp",
        "--prefix",
        "34",
        "--prefix",
        "+351",
        "--priority",
        "5",
        "--strip",
        "2",
        "--add-prefix",
        "0011",
        "--username",
        "acme",
        "--password",
        SECRET,
        "--max-channels",
        "30",
    )
    check_notice(db_url, added)
    assert {
        k: added[k]
        for k in (
            "name",
            "host",
            "port",
            "transport",
            "prefixes",
            "priority",
            "strip",
            "add_prefix",
            "username",
            "auth",
            "max_channels",
            "enabled",
        )
    } == {
        "name": "carrier-es",
        "host": "sip.carrier.example",
        "port": 5080,
        "transport": "tcp",
        "prefixes": ["34", "351"],
        "priority": 5,
        "strip": 2,
        "add_prefix": "0011",
        "username": "acme",
        "auth": True,
        "max_channels": 30,
        "enabled": True,
    }
    assert SECRET not in json.dumps(added) and "password" not in added

    world = run(db_url, "trunk", "add", "world", "--host", "192.0.2.7")
    assert (world["port"], world["transport"], world["prefixes"], world["priority"]) == (5060, "udp", [], 10)
    assert (world["username"], world["auth"], world["max_channels"]) == ("", False, 0)

    listed = run(db_url, "trunk", "list")
    check_notice(db_url, listed)
    assert [x["name"] for x in listed["trunks"]] == ["carrier-es", "world"]
    assert listed["trunks"][0]["auth"] is True and listed["trunks"][1]["auth"] is False
    assert SECRET not in json.dumps(listed)
    assert all("password" not in x for x in listed["trunks"])

    off = run(db_url, "trunk", "disable", "world")
    check_notice(db_url, off)
    assert (off["trunk"], off["enabled"]) == ("world", False)
    assert [x["enabled"] for x in run(db_url, "trunk", "list")["trunks"]] == [True, False]
    assert run(db_url, "trunk", "enable", "world")["enabled"] is True
    assert [x["enabled"] for x in run(db_url, "trunk", "list")["trunks"]] == [True, True]

    gone = run(db_url, "trunk", "remove", "carrier-es")
    check_notice(db_url, gone)
    assert gone["removed"] == "carrier-es"
    assert [x["name"] for x in run(db_url, "trunk", "list")["trunks"]] == ["world"]


def test_trunk_text_output(db_url):
    res = run_uvox(
        [
            "admin",
            "trunk",
            "add",
            "gw",
            "--host",
            "2001:db8::5",
            "--prefix",
            "58",
            "--username",
            "acme",
            "--password",
            SECRET,
        ],
        db_url,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "trunk gw added (udp [2001:db8::5]:5060, prefixes 58, priority 10)"
    assert ("PostgreSQL" in res.stderr) == is_sqlite(db_url)
    res = run_uvox(["admin", "trunk", "list"], db_url)
    assert res.returncode == 0, res.stderr
    [line] = res.stdout.strip().splitlines()
    assert line.startswith("gw\tudp:[2001:db8::5]:5060\ton\t58\tpriority 10") and "auth acme" in line
    assert SECRET not in res.stdout + res.stderr
    assert ("PostgreSQL" in res.stderr) == is_sqlite(db_url)
    res = run_uvox(["admin", "trunk", "disable", "gw"], db_url)
    assert res.returncode == 0 and res.stdout.strip() == "trunk gw disabled"
    assert "\toff\t" in run_uvox(["admin", "trunk", "list"], db_url).stdout
    res = run_uvox(["admin", "trunk", "remove", "gw"], db_url)
    assert res.returncode == 0 and res.stdout.strip() == "trunk gw removed"
    assert run_uvox(["admin", "trunk", "list"], db_url).stdout.strip() == "no trunks"


ADD_ERRORS = [
    (["--host", "sip.example.com:5060"], "host 'sip.example.com:5060' must be a hostname or an IPv4/IPv6"),
    (["--host", "h.example.com", "--port", "70000"], "port must be a whole number from 1 to 65535"),
    (["--host", "h.example.com", "--transport", "tls"], "transport 'tls' must be udp or tcp"),
    (["--host", "h.example.com", "--prefix", "34x"], "prefix '34x' must be 1 to 20 digits"),
    (["--host", "h.example.com", "--priority", "-1"], "priority must be"),
    (["--host", "h.example.com", "--strip", "-1"], "strip must be"),
    (["--host", "h.example.com", "--add-prefix", "+1"], "add-prefix '+1' must be"),
    (["--host", "h.example.com", "--username", "acme"], "give both username and password"),
    (["--host", "h.example.com", "--password", "x"], "give both username and password"),
    (["--host", "h.example.com", "--username", "a;b", "--password", "x"], "username must be"),
    (["--host", "h.example.com", "--username", "a", "--password", "x=y"], "password must be"),
    (["--host", "h.example.com", "--max-channels", "-3"], "max-channels must be"),
]


def test_add_errors_in_json(sqlite_url):
    db_url = sqlite_url
    for args, message in ADD_ERRORS:
        doc = run(db_url, "trunk", "add", "bad", *args, code=1)
        assert message in doc["error"], (args, doc)
        check_notice(db_url, doc)
    assert run(db_url, "trunk", "list")["trunks"] == []  # nothing half-stored


def test_bad_names_and_duplicates(sqlite_url):
    db_url = sqlite_url
    assert (
        "trunk name 'my trunk'" in run(db_url, "trunk", "add", "my trunk", "--host", "h.example.com", code=1)["error"]
    )
    run(db_url, "trunk", "add", "carrier", "--host", "a.example.com")
    doc = run(db_url, "trunk", "add", "carrier", "--host", "b.example.com", code=1)
    assert doc["error"] == "a trunk named 'carrier' exists"
    assert [x["host"] for x in run(db_url, "trunk", "list")["trunks"]] == ["a.example.com"]
    for cmd in ("enable", "disable", "remove"):
        assert run(db_url, "trunk", cmd, "nope", code=1)["error"] == "no trunk 'nope'"


def test_errors_in_text_go_to_stderr(sqlite_url):
    db_url = sqlite_url
    res = run_uvox(["admin", "trunk", "remove", "nope"], db_url)
    assert res.returncode == 1 and res.stdout == ""
    assert "error: no trunk 'nope'" in res.stderr and "Traceback" not in res.stderr
    res = run_uvox(["admin", "trunk", "add", "x", "--host", "h.example.com", "--transport", "sctp"], db_url)
    assert res.returncode == 1 and "error: transport 'sctp' must be udp or tcp" in res.stderr


def test_usage_errors_in_json(sqlite_url):
    db_url = sqlite_url
    for args in (
        ["trunk", "add", "x", "--host", "h.example.com", "--port", "abc"],
        ["trunk", "add", "x"],  # no --host
        ["calls", "list", "1", "--limit", "0"],
        ["calls", "list", "1", "--limit", "1001"],
    ):
        doc = run(db_url, *args, code=2)
        assert doc["error"]


def _calls_setup(db_url) -> tuple[str, sa.Engine, int]:
    acct = run(db_url, "account", "create", "--email", "caller@example.com")["accountnumber"]
    engine = sa.create_engine(db_url)
    with engine.connect() as c:
        account_id = c.execute(sa.select(t.accounts.c.id).where(t.accounts.c.number == acct)).scalar_one()
    return acct, engine, account_id


def _call(account_id: int, started: datetime, **kw) -> dict:
    row = dict(
        account_id=account_id,
        sip_username="ana1",
        caller="ana1",
        callee="34911234567",
        destination="Spain",
        direction="outbound",
        status="answered",
        sip_code=200,
        hangup="caller",
        started_at=started,
        answered_at=started + timedelta(seconds=5),
        ended_at=started + timedelta(seconds=70),
        duration=65,
        billed=120,
        rate=Decimal("0.012"),
        connect_charge=Decimal(0),
        init_block=60,
        billing_block=60,
        price=Decimal("0.024"),
        currency="US$",
        trunk="carrier-es",
        limit_seconds=3600,
        hold=Decimal(0),
        settled_at=started + timedelta(seconds=71),
        created_at=started,
    )
    row.update(kw)
    return row


def test_calls_list(db_url):
    acct, engine, account_id = _calls_setup(db_url)
    empty = run(db_url, "calls", "list", acct)
    check_notice(db_url, empty)
    assert empty["calls"] == []

    t0 = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    with engine.begin() as c:
        c.execute(
            sa.insert(t.calls),
            [
                _call(account_id, t0, sip_call_id="a"),
                _call(
                    account_id,
                    t0 + timedelta(hours=1),
                    callee="ana2",
                    destination="",
                    direction="onnet",
                    status="busy",
                    sip_code=486,
                    answered_at=None,
                    duration=0,
                    billed=0,
                    rate=Decimal(0),
                    price=Decimal(0),
                    trunk=None,
                    sip_call_id="b",
                ),
                # In progress: not a record yet.
                _call(
                    account_id,
                    t0 + timedelta(hours=2),
                    status="in_progress",
                    answered_at=None,
                    ended_at=None,
                    settled_at=None,
                    sip_call_id="c",
                ),
            ],
        )
    engine.dispose()

    doc = run(db_url, "calls", "list", acct)
    check_notice(db_url, doc)
    assert [c["status"] for c in doc["calls"]] == ["busy", "answered"]  # newest first
    busy, answered = doc["calls"]
    assert (answered["from"], answered["to"], answered["direction"], answered["sip_username"]) == (
        "ana1",
        "34911234567",
        "outbound",
        "ana1",
    )
    assert (answered["duration"], answered["billed"], answered["sip_code"]) == ("65", "120", "200")
    assert Decimal(answered["price"]) == Decimal("0.024") and answered["currency"] == "US$"
    assert answered["trunk"] == "carrier-es" and answered["started_at"].startswith("2025-01-02T03:04:05")
    assert (busy["direction"], busy["status"], busy["sip_code"], Decimal(busy["price"])) == (
        "onnet",
        "busy",
        "486",
        Decimal(0),
    )

    assert [c["status"] for c in run(db_url, "calls", "list", acct, "--limit", "1")["calls"]] == ["busy"]
    # By e-mail too, as every admin command.
    assert len(run(db_url, "calls", "list", "caller@example.com")["calls"]) == 2

    res = run_uvox(["admin", "calls", "list", acct], db_url)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 2 and "ana1 -> 34911234567" in lines[1] and "65s" in lines[1]
    assert ("PostgreSQL" in res.stderr) == is_sqlite(db_url)


def test_calls_list_unknown_account(db_url):
    doc = run(db_url, "calls", "list", "999999", code=1)
    assert "no account '999999'" in doc["error"]
    res = run_uvox(["admin", "calls", "list", "nobody@example.com"], db_url)
    assert res.returncode == 1 and "error: no account 'nobody@example.com'" in res.stderr


def test_database_down_is_one_clear_error():
    down = "postgresql+psycopg://postgres@127.0.0.1:1/uvox"  # nothing listens on port 1
    for args in (["trunk", "list"], ["trunk", "add", "x", "--host", "h.example.com"], ["calls", "list", "1"]):
        doc = run(down, *args, code=1)
        assert doc["error"].startswith("database error: ") and "127.0.0.1" in doc["error"]
    res = run_uvox(["admin", "trunk", "list"], down)
    assert res.returncode == 1 and res.stderr.startswith("error: database error: ")
    assert "Traceback" not in res.stderr
