"""Portal page timings on a realistic account: prints figures, asserts nothing.

    PYTHONPATH=src python bench/portal_pages.py [--rates 100000] [--messages 20000] [--database-url URL]

Builds a throw-away database (SQLite by default), a plan with N rates and an account
with M messages, serves the real app with uvicorn in a thread, signs in over HTTP and
times the pages a customer uses most (median of a few runs each).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import threading
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from uvox.accounts import service  # noqa: E402
from uvox.app import create_app  # noqa: E402
from uvox.billing import plans  # noqa: E402
from uvox.billing.service import topup  # noqa: E402
from uvox.clock import now  # noqa: E402
from uvox.config import Settings  # noqa: E402
from uvox.db import schema as t  # noqa: E402
from uvox.platform import Platform  # noqa: E402


def timed(fn, runs: int = 5) -> tuple[float, int]:
    samples, size = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        size = fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), size


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", type=int, default=100_000)
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--database-url", default="")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="uvox-bench-")
    url = args.database_url or f"sqlite:///{tmp}/bench.db"
    p = Platform.open(
        Settings.from_env({"UVOX_DATABASE_URL": url, "UVOX_DISPATCHER": "0", "UVOX_SMSC_SIM": "0"}), migrate=True
    )

    plan = f"bench-{int(time.time())}"
    plans.create_plan(p.engine, plan, "US$")
    deck = "dialprefix,destination,rateinitial,smsrate\n" + "\n".join(
        f"{1000000 + i},Destination {i % 2000},0.0{i % 90 + 10},0.00{i % 9 + 1}" for i in range(args.rates)
    )
    start = time.perf_counter()
    plans.import_rates(p.engine, plan, deck)
    print(f"rate deck import: {args.rates} rows in {time.perf_counter() - start:.2f} s")

    email = f"bench-{int(time.time())}@example.com"
    acct = service.create_account(p.engine, email=email, password="bench password", plan=plan)
    topup(p.engine, acct.id, Decimal(100))
    stamp = now()
    rows = [
        {
            "account_id": acct.id,
            "kind": "sms",
            "sender": "UVox",
            "recipient": f"+1305555{i % 10000:04d}",
            "destination": "USA",
            "text": f"message {i}",
            "encoding": "gsm7",
            "segments": 1,
            "price": Decimal("0.0075"),
            "currency": "US$",
            "state": ("submitted", "delivered", "queued")[i % 3],
            "charged": True,
            "simulated": True,
            "attempts": 1,
            "created_at": stamp - timedelta(minutes=i),
            "updated_at": stamp,
        }
        for i in range(args.messages)
    ]
    with p.engine.begin() as conn:
        for i in range(0, len(rows), 5000):
            conn.execute(sa.insert(t.messages), rows[i : i + 5000])

    import uvicorn

    sock_port = __import__("socket").socket()
    sock_port.bind(("127.0.0.1", 0))
    port = sock_port.getsockname()[1]
    sock_port.close()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(p, run_hooks=False), host="127.0.0.1", port=port, log_level="warning", access_log=False
        )
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)

    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as c:
        token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/sign_in").text).group(1)
        start = time.perf_counter()
        r = c.post("/sign_in", data={"csrf_token": token, "email": email, "password": "bench password"})
        assert r.status_code == 303, r.status_code
        print(f"sign-in (argon2id verify + session): {(time.perf_counter() - start) * 1000:.0f} ms")
        print(f"database: {p.engine.dialect.name}; {args.rates} rates, {args.messages} messages")
        for label, path in [
            ("dashboard", "/dashboard"),
            ("rates page 1", "/rates"),
            ("rates last page", f"/rates?page={max(1, -(-args.rates // 50))}"),
            ("rates by number (longest prefix)", "/rates?number=10012345678"),
            ("rates by destination", "/rates?destination=Destination 1999"),
            ("sms history page 1", "/sms"),
            ("sms history filtered by number", "/sms?number=13055550042"),
            ("sms history filtered by state", "/sms?state=delivered"),
            ("documentation", "/documentation"),
        ]:
            ms, size = timed(lambda path=path: len(c.get(path).content))
            print(f"{label:36s} {ms:8.1f} ms  ({size / 1024:.0f} KiB)")
        ms, size = timed(lambda: len(c.get("/sms/export.csv").content), runs=3)
        print(f"{'csv export, all messages':36s} {ms:8.1f} ms  ({size / 1024:.0f} KiB, {args.messages} rows)")
    server.should_exit = True
    p.close()


if __name__ == "__main__":
    main()
