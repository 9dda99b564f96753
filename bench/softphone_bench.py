"""Softphone figures: digest-authenticated REGISTER through Kamailio on the
platform's PostgreSQL, and the Zoiper balance / rate URLs of `uvox serve`.

Creates a throw-away PostgreSQL database, a customer and a SIP account with the
`uvox` CLI, renders the Kamailio configuration with `uvox sip kamailio-cfg`, runs
Kamailio and drives it with sipp (each registration = REGISTER, 401 challenge,
REGISTER with credentials checked by auth_db against `subscriber`, 200), then
drives the balance and rate URLs with wrk. Prints one table.

    python bench/softphone_bench.py [--registrations 5000] [--rate 1000] [--seconds 5]

Needs kamailio + kamailio-postgres-modules, sipp (sip-tester), wrk and PostgreSQL.
"""

from __future__ import annotations

import argparse
import csv
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from bench.api_bench import run_wrk, uvox  # noqa: E402
from tests.conftest import PG_ADMIN_URL, free_port, uvox_env, wait_port  # noqa: E402
from tests.softphone.conftest import REGISTER_SCENARIO, free_udp_port, sip_options_ok  # noqa: E402

DOMAIN = "sip.bench.test"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--registrations", type=int, default=5000)
    ap.add_argument("--rate", type=int, default=1000, help="new registrations started per second by sipp")
    ap.add_argument("--seconds", type=int, default=5, help="wrk duration per URL")
    ap.add_argument("--connections", type=int, default=16)
    args = ap.parse_args()
    for tool in ("kamailio", "sipp", "wrk"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed")
    work = Path(tempfile.mkdtemp(prefix="uvox-sip-bench-"))
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"uvox_bench_{secrets.token_hex(4)}"
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    db = sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    env = uvox_env(db, UVOX_DISPATCHER="0", UVOX_SMSC_SIM="0", UVOX_LOG_LEVEL="WARNING", UVOX_SIP_DOMAIN=DOMAIN)
    kam = server = None
    try:
        uvox(["admin", "plan", "create", "bench", "--currency", "US$"], env)
        deck = work / "deck.csv"
        deck.write_text("dialprefix,destination,rateinitial,smsrate\n1,USA,0.01,0.0075\n1305,USA Miami,0.012,0.008\n")
        uvox(["admin", "rates", "import", "bench", str(deck)], env)
        number = uvox(["admin", "account", "create", "--email", "bench@example.com", "--plan", "bench"], env)[
            "accountnumber"
        ]
        uvox(["admin", "topup", number, "100"], env)
        sip = uvox(["admin", "sip", "create", number], env)

        port = free_udp_port()
        cfg = subprocess.run(
            [sys.executable, "-m", "uvox", "sip", "kamailio-cfg", "--listen", f"udp:127.0.0.1:{port}"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        (work / "kamailio.cfg").write_text(cfg)
        kam = subprocess.Popen(
            [
                "kamailio",
                "-DD",
                "-E",
                "-f",
                str(work / "kamailio.cfg"),
                "-Y",
                str(work),
                "-P",
                str(work / "k.pid"),
                "-m",
                "64",
                "-M",
                "8",
            ],
            stdout=open(work / "kamailio.log", "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for _ in range(100):
            if sip_options_ok(port, DOMAIN):
                break
            time.sleep(0.1)
        scenario = work / "register.xml"
        scenario.write_text(REGISTER_SCENARIO.format(domain=DOMAIN, user=sip["username"], password=sip["password"]))
        started = time.monotonic()
        subprocess.run(
            [
                "sipp",
                f"127.0.0.1:{port}",
                "-sf",
                str(scenario),
                "-m",
                str(args.registrations),
                "-r",
                str(args.rate),
                "-l",
                "500",
                "-i",
                "127.0.0.1",
                "-p",
                str(free_udp_port()),
                "-nostdin",
                "-timeout",
                "120s",
                "-trace_stat",
                "-stf",
                str(work / "stat.csv"),
                "-fd",
                "60",
            ],
            cwd=work,
            capture_output=True,
            text=True,
        )
        elapsed = time.monotonic() - started
        with open(work / "stat.csv") as fh:
            last = list(csv.DictReader(fh, delimiter=";"))[-1]
        ok, failed = int(last["SuccessfulCall(C)"]), int(last["FailedCall(C)"])

        http_port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "uvox", "serve", "--port", str(http_port)],
            env=env,
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(http_port)
        base = f"http://127.0.0.1:{http_port}/softphone/zoiper"
        q = f"u={sip['username']}&p={sip['password']}"
        run_wrk(f"{base}/balance?{q}", 1, 4, "")  # warm-up
        balance = run_wrk(f"{base}/balance?{q}", args.seconds, args.connections, "")
        rate = run_wrk(f"{base}/rate?{q}&d=13055550100", args.seconds, args.connections, "")
    finally:
        if server:
            server.terminate()
            server.wait(10)
        if kam and kam.poll() is None:
            os.killpg(kam.pid, signal.SIGTERM)
            kam.wait(10)
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nUVox softphone benchmark — {os.cpu_count()} cores, PostgreSQL, Kamailio 4 workers")
    print(f"{'what':52} {'per s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    print(
        f"{'REGISTER with digest auth (auth_db on subscriber)':52} {ok / elapsed:9.0f} {'':>8} {'':>8} {failed:7d}"
        f"   ({ok} of {args.registrations} in {elapsed:.1f}s, sipp offered {args.rate}/s)"
    )
    for label, r in (
        ("Zoiper balance URL (ha1 check + balance)", balance),
        ("Zoiper rate URL (ha1 check + prefix)", rate),
    ):
        print(
            f"{label:52} {r['requests'] / r['seconds']:9.0f} {r['p50']:8.2f} {r['p99']:8.2f} {r['errors'] + r['non2xx']:7d}"
        )


if __name__ == "__main__":
    main()
