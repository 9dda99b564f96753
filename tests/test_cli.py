"""The operator command line, run as a user runs it: `uvox ...` in its own process."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.conftest import new_database_url, run_uvox


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path_factory, pg_databases):
    return new_database_url(request.param, tmp_path_factory, pg_databases)


def admin(db_url, *args) -> dict:
    res = run_uvox(["admin", *args, "--json"], db_url)
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 1, res.stdout  # exactly one JSON object on stdout
    return json.loads(lines[0])


def test_help_lists_the_commands():
    res = run_uvox(["--help"], "sqlite:///:memory:")
    for cmd in ("serve", "db", "admin"):
        assert cmd in res.stdout
    res = run_uvox(["admin", "--help"], "sqlite:///:memory:")
    for cmd in ("account", "apikey", "topup", "credit-limit", "plan", "rates", "otp-template"):
        assert cmd in res.stdout


def test_operator_journey(db_url, tmp_path):
    assert run_uvox(["db", "upgrade"], db_url).returncode == 0
    assert admin(db_url, "plan", "create", "retail", "--currency", "US$")["plan"] == "retail"
    deck = tmp_path / "deck.csv"
    deck.write_text("dialprefix,destination,rateinitial,smsrate\n1,USA,0.01,0.0075\n56,Chile,0.0285,0.03\n")
    assert admin(db_url, "rates", "import", "retail", str(deck))["rates"] == 2
    acct = admin(db_url, "account", "create", "--email", "ana@example.com", "--plan", "retail")
    number = acct["accountnumber"]
    assert number.isdigit() and acct["currency"] == "US$"
    key = admin(db_url, "apikey", "create", number, "--description", "web shop")
    assert key["accountnumber"] == number and len(key["apikey"]) >= 24
    assert admin(db_url, "topup", number, "25.50")["balance"] == "25.50"
    assert admin(db_url, "credit-limit", number, "5")["credit"] == "5.00"
    tpl = admin(db_url, "otp-template", "create", number, "--text", "Your code is {code}")
    assert tpl["ref_id"]
    keys = admin(db_url, "apikey", "list", number)["keys"]
    assert len(keys) == 1 and key["apikey"] not in json.dumps(keys)
    admin(db_url, "apikey", "create", number)
    admin(db_url, "apikey", "create", number)
    res = run_uvox(["admin", "apikey", "create", number, "--json"], db_url)
    assert res.returncode == 1 and "at most 3" in json.loads(res.stdout)["error"]


def test_admin_errors_are_clear(db_url, tmp_path):
    res = run_uvox(["admin", "topup", "nobody", "10", "--json"], db_url)
    assert res.returncode == 1 and "no account" in json.loads(res.stdout)["error"]
    admin(db_url, "plan", "create", "p", "--currency", "US$")
    bad = tmp_path / "bad.csv"
    bad.write_text("dialprefix,destination,rateinitial,smsrate\n1,USA,cheap,0.1\n")
    res = run_uvox(["admin", "rates", "import", "p", str(bad), "--json"], db_url)
    assert res.returncode == 1 and "line 2" in json.loads(res.stdout)["error"]
    acct = admin(db_url, "account", "create", "--email", "x@example.com")
    res = run_uvox(["admin", "topup", acct["accountnumber"], "ten", "--json"], db_url)
    assert res.returncode == 1 and "Traceback" not in res.stderr


def test_serve_from_cli_to_sms(uvox_server):
    """The README's quick start: sign-up by CLI to an SMS sent with HTTP."""
    srv = uvox_server("sqlite", UVOX_SMSC_SIM="0", UVOX_DISPATCHER="0")
    srv.admin("plan", "create", "default", "--currency", "US$")
    acct = srv.admin("account", "create", "--email", "demo@example.com", "--plan", "default")
    key = srv.admin("apikey", "create", acct["accountnumber"])["apikey"]
    r = httpx.get(f"{srv.url}/api/get-api/v1/balance", headers={"Api-Key": key})
    assert r.json()["code"] == "015" and r.json()["accountnumber"] == acct["accountnumber"]


def test_negative_topup_corrects_a_balance(db_url):
    acct = admin(db_url, "account", "create", "--email", "fix@example.com")
    assert admin(db_url, "topup", acct["accountnumber"], "10")["balance"] == "10.00"
    assert admin(db_url, "topup", acct["accountnumber"], "-2.50")["balance"] == "7.50"


def test_usage_errors_with_json_are_one_json_object(db_url):
    for args in (
        ["admin", "topup", "--json"],
        ["admin", "nosuch", "--json"],
        ["admin", "credit-limit", "123", "-1", "--json"],
    ):
        res = run_uvox(args, db_url)
        assert res.returncode == 2, res
        lines = res.stdout.strip().splitlines()
        assert len(lines) == 1 and json.loads(lines[0])["error"], res.stdout + res.stderr
    res = run_uvox(["admin", "topup"], db_url)  # without --json: click's usage text, as before
    assert res.returncode == 2 and "Usage:" in res.stderr


def test_set_plan_releases_messages_that_waited_for_a_plan(uvox_server):
    """issue 12: the plan change's rule lives in billing.service.change_plan, for every front end."""
    srv = uvox_server("sqlite", UVOX_SMSC_SIM="0", UVOX_DISPATCHER="0")
    srv.admin("plan", "create", "default", "--currency", "US$")
    (srv.cwd / "deck.csv").write_text("dialprefix,destination,rateinitial,smsrate\n1,USA,0.01,0.0075\n")
    srv.admin("rates", "import", "default", str(srv.cwd / "deck.csv"))
    acct = srv.admin("account", "create", "--email", "noplan@example.com")
    srv.admin("topup", acct["accountnumber"], "1")
    key = srv.admin("apikey", "create", acct["accountnumber"])["apikey"]
    sent = httpx.post(
        f"{srv.url}/api/get-api/v1/sms-api", headers={"Api-Key": key}, data={"to": "+13055550100", "text": "hola"}
    ).json()
    assert sent["code"] == "009"
    status = f"{srv.url}/api/get-api/v1/sms-api/status"
    assert httpx.get(status, headers={"Api-Key": key}, params={"messageId": sent["id"]}).json()["code"] == "012"

    out = srv.admin("account", "set-plan", acct["accountnumber"], "default")
    assert out["released"] == 1
    st = httpx.get(status, headers={"Api-Key": key}, params={"messageId": sent["id"]}).json()
    assert st["code"] == "011" and st["price"] == "0.0075"


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_says_in_one_line_that_it_cannot_reach_the_database(workers):
    """A wrong URL or a database that is down: exit status 1 and one line naming the
    database (its password hidden), not a traceback; also when `uvox serve` prepares
    the database in a process of its own before its HTTP processes (workers > 1)."""
    url = "postgresql://bob:hunter2secret@127.0.0.1:1/nothing"
    res = run_uvox(["serve", "--workers", workers], url, UVOX_PORT="1")
    assert res.returncode == 1, res
    out = res.stdout + res.stderr
    assert "cannot start: the database at postgresql+psycopg://bob:***@127.0.0.1:1/nothing" in out, out
    assert "Traceback" not in out and "hunter2secret" not in out, out
