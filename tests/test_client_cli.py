"""The customer command line (`uvox sms/otp/balance/rates`) as a process, against the real app."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import SRC, free_port
from tests.test_client import code_sent

# The command line is a client: the database behind the server changes nothing for it,
# and tests/test_client.py already runs the same calls on both backends.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@pytest.fixture
def run(tmp_path, base_url, customer):
    """Run `python -m uvox ...` with the customer's key in the environment (or as told)."""

    def run_(*args: str, env: dict[str, str] | None = None, key_env: bool = True) -> subprocess.CompletedProcess:
        base = {k: v for k, v in os.environ.items() if not k.startswith("UVOX_")}
        base.update(PYTHONPATH=str(SRC), HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "xdg"))
        if key_env:
            base.update(UVOX_URL=base_url, UVOX_ACCOUNT=customer.number, UVOX_API_KEY=customer.apikey)
        base.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "uvox", *args], env=base, capture_output=True, text=True, timeout=60
        )

    return run_


def test_send_then_status_from_the_environment(run):
    res = run("sms", "send", "--to", "+1 305 555 0101", "--to", "+58 412-555-0101", "--text", "Hola", "--from", "UVox")
    assert res.returncode == 0, res.stderr
    lines = [line.split("\t") for line in res.stdout.strip().splitlines()]
    assert [(line[0], line[2]) for line in lines] == [("+13055550101", "005"), ("+584125550101", "005")]
    status = run("sms", "status", lines[0][1], "--json")
    assert status.returncode == 0, status.stderr
    body = json.loads(status.stdout)
    assert body["id"] == lines[0][1] and body["code"] in {"011", "013"}
    assert res.stderr == "" and status.stderr == ""  # no request log lines for the customer


def test_a_refused_number_exits_1_and_says_why(run):
    res = run("sms", "send", "--to", "+13055550101,12ab", "--text", "Hi", "--json")
    assert res.returncode == 1
    results = json.loads(res.stdout)
    assert [r["code"] for r in results] == ["005", "002"]
    assert results[1]["statusmessage"] == "Invalid format in the destination number"


def test_key_from_the_config_file(run, tmp_path, base_url, customer):
    config = tmp_path / "client.toml"
    config.write_text(f'url = "{base_url}"\naccount = "{customer.number}"\napi_key = "{customer.apikey}"\n')
    config.chmod(0o600)
    res = run("balance", "--json", key_env=False, env={"UVOX_CONFIG": str(config)})
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == {
        "accountnumber": customer.number,
        "currency": "US$",
        "balance": "10.00",
        "credit": "0.00",
    }
    res = run("balance", key_env=False, env={"UVOX_CONFIG": str(config)})
    assert res.stdout.startswith("10.00 US$")


def test_rates_for_a_number(run):
    res = run("rates", "--number", "+58 412 555 0101")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().split("\t") == ["58412", "Venezuela Mobile Digitel", "0.11820"]
    everything = run("rates", "--json")
    assert len(json.loads(everything.stdout)) >= 8
    none = run("rates", "--number", "+8613800138000")
    assert none.returncode == 1 and "no rate" in none.stderr


def test_otp_request_and_verify(run, platform, customer):
    from uvox.otp import service

    tpl = service.create_template(platform.engine, customer.id, "Your code is {code}", "cli")
    res = run("otp", "request", "--ref-id", tpl.ref_id, "--phone", "+13055550100", "--json")
    assert res.returncode == 0, res.stderr
    session = json.loads(res.stdout)
    code = code_sent(platform, session["message_id"])
    wrong = run("otp", "verify", "--session", session["session_id"], "--code", f"{(int(code) + 1) % 1_000_000:06d}")
    assert wrong.returncode == 1 and "error 025: OTP Mismatch" in wrong.stderr
    ok = run("otp", "verify", "--session", session["session_id"], "--code", code)
    assert ok.returncode == 0 and ok.stdout.startswith("027\tOTP Matched")


def test_errors_exit_codes(run, customer):
    wrong = run("balance", env={"UVOX_API_KEY": "WRONG" + customer.apikey})
    assert wrong.returncode == 1 and "error 001: API Key Invalid or Not Available" in wrong.stderr
    down = run("balance", env={"UVOX_URL": f"http://127.0.0.1:{free_port()}"})
    assert down.returncode == 3 and "unreachable" in down.stderr
    nokey = run("balance", key_env=False)
    assert nokey.returncode == 2 and "UVOX_API_KEY" in nokey.stderr
    assert customer.apikey not in wrong.stderr + down.stderr
