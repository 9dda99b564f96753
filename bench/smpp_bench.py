"""Delivery throughput: SMPP submit_sm/s through one connector, and end to end under HTTP load.

    python bench/smpp_bench.py submit [--messages 30000] [--window 64]
    python bench/smpp_bench.py e2e [--rate 2500] [--seconds 20] [--connections 8] [--recipients 10]
                                   [--database-url URL] [--workers N] [--worker]
    python bench/smpp_bench.py drain [--seconds 10] [--database-url URL]

``submit``: one connector (smpplib, the platform's own SmppConnector) against
`uvox smsc-sim` running as its own process, delivery receipts on. Prints
submit_sm/s (each answered by submit_sm_resp with a message id) and receipts/s.

``e2e``: `uvox serve` (API + dispatcher) with a connector to `uvox smsc-sim`, driven
by wrk over keep-alive connections posting to sms-api (``--recipients`` numbers per
request). Every second the backlog (accepted, not yet answered by a receipt) is
sampled from the database. Prints messages accepted/s, messages delivered/s
(receipt stored) during the load, the backlog over time, the time to drain after
the load stops, and request→receipt latency. Sustained means the delivered rate
matches the accepted rate and the backlog does not grow.

``drain``: the dispatcher alone. The API (dispatcher off) queues messages for
``--seconds``; then `uvox worker` starts on the full queue and delivers it. Prints
msg/s delivered (receipt stored) and the worker's CPU time per message, counted
from its first delivered message (its start-up is left out). Linux only (reads
/proc for CPU time).

Needs `wrk` for e2e and drain (Debian: apt-get install wrk).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench.common import funded_account, uvox  # noqa: E402
from tests.conftest import free_port, uvox_env, wait_port  # noqa: E402


def start_sim(env: dict, receipt_delay: float) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen(
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
            str(receipt_delay),
        ],
        env={**env, "UVOX_LOG_LEVEL": "WARNING"},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    return proc, json.loads(proc.stdout.readline())


# ---------------------------------------------------------------- submit


def bench_submit(args) -> None:
    import logging

    from uvox.smpp.connector import ConnectorConfig, SmppConnector

    logging.basicConfig(level=logging.WARNING)
    env = uvox_env("sqlite:///unused.db")
    sim, info = start_sim(env, receipt_delay=0.2)
    receipts = [0]
    lock = threading.Lock()

    def on_receipt(r, ack):
        with lock:
            receipts[0] += 1
        ack(True)

    conn = SmppConnector(
        ConnectorConfig(host="127.0.0.1", port=info["smpp_port"], system_id="bench", window=args.window),
        on_receipt=on_receipt,
    ).start()
    try:
        assert conn.wait_bound(10), "cannot bind to the simulator"
        body = "Benchmark message: GSM 7-bit text of a typical OTP length 123456".encode("ascii")
        # warm-up
        for f in [
            conn.submit(source_addr="UVox", destination_addr="+13125550000", short_message=body) for _ in range(1000)
        ]:
            f.result(30)
        n = args.messages
        t0 = time.perf_counter()
        futs = [conn.submit(source_addr="UVox", destination_addr=f"+1312{i:07d}", short_message=body) for i in range(n)]
        ids = [f.result(60) for f in futs]
        dt = time.perf_counter() - t0
        deadline = time.monotonic() + 30
        while receipts[0] < n + 1000 and time.monotonic() < deadline:
            time.sleep(0.05)
        dt_r = time.perf_counter() - t0
    finally:
        conn.stop()
        sim.terminate()
        sim.wait(10)
    assert len(set(ids)) == n
    print(
        f"\nUVox SMPP benchmark — one connector, window {args.window}, {os.cpu_count()} cores, "
        f"simulator in its own process"
    )
    print(f"{'submit_sm accepted':32} {n:>8} in {dt:6.2f}s  = {n / dt:8.0f} submit_sm/s")
    print(
        f"{'delivery receipts received':32} {receipts[0] - 1000:>8} in {dt_r:6.2f}s  = "
        f"{(receipts[0] - 1000) / dt_r:8.0f} receipts/s (0.2 s receipt delay)"
    )


# ---------------------------------------------------------------- e2e

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Api-Key"] = "{key}"
counter = 0
math.randomseed(os.time())
local base = math.random(0, 899) * 10000
request = function()
  local tos = {{}}
  for i = 1, {recipients} do
    counter = counter + 1
    tos[i] = "1312" .. string.format("%07d", (base + counter) % 10000000)
  end
  return wrk.format(nil, nil, nil, "to=" .. table.concat(tos, "%2C") .. "&text=Your%20code%20is%20123456&from=UVox")
end
{delay_fn}
done = function(summary, latency, requests)
  io.write(string.format("JSON {{\\"requests\\": %d, \\"seconds\\": %f, \\"p50\\": %f, \\"p99\\": %f, \\"errors\\": %d, \\"non2xx\\": %d}}\\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, summary.errors.status))
end
"""


PACING = """
local ffi = require("ffi")
ffi.cdef[[
typedef struct {{ long tv_sec; long tv_nsec; }} uvox_timespec;
int clock_gettime(int clk_id, uvox_timespec *tp);
]]
local ts = ffi.new("uvox_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end
local next_due = nil
delay = function()
  local t = now_ms()
  if next_due == nil then next_due = t end
  local wait = next_due - t
  next_due = next_due + {interval}
  if wait < 0 then return 0 end
  return wait
end
"""


def setup_platform(args, prefix: str):
    """A fresh database with a funded account, its API key, and a connector to a
    `uvox smsc-sim` of its own: what both e2e and drain measure against."""
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk)")
    work = Path(tempfile.mkdtemp(prefix=prefix))
    db = args.database_url or f"sqlite:///{work / 'bench.db'}"
    env = uvox_env(db, UVOX_SMSC_SIM="0", UVOX_LOG_LEVEL="WARNING")
    sim, info = start_sim(env, receipt_delay=args.receipt_delay)
    key = funded_account(env, work)
    uvox(
        [
            "admin",
            "connector",
            "add",
            "sim",
            "--host",
            "127.0.0.1",
            "--port",
            str(info["smpp_port"]),
            "--system-id",
            "bench",
            "--password",
            "x",
            "--window",
            str(args.window),
        ],
        env,
    )
    return work, db, env, sim, info, key


def bench_e2e(args) -> None:
    import sqlalchemy as sa

    from uvox.config import normalise_database_url
    from uvox.db import schema as t

    work, db, env, sim, info, key = setup_platform(args, "uvox-smpp-bench-")

    port = free_port()
    serve_env = {**env, "UVOX_DISPATCHER": "0"} if args.worker else env
    server = subprocess.Popen(
        [sys.executable, "-m", "uvox", "serve", "--port", str(port), "--workers", str(args.workers)],
        env=serve_env,
        cwd=work,
        stderr=open(work / "serve.log", "wb"),
    )
    worker = None
    if args.worker:
        # The dispatcher in a process of its own: the API and delivery each get a core.
        worker = subprocess.Popen(
            [sys.executable, "-m", "uvox", "worker"], env=env, cwd=work, stderr=open(work / "worker.log", "wb")
        )
    engine = sa.create_engine(normalise_database_url(db))
    M = t.messages
    samples: list[tuple[float, int, int]] = []  # (t, accepted, backlog)
    stop = threading.Event()

    def sampler():
        t0 = time.monotonic()
        while not stop.is_set():
            with engine.connect() as c:
                rows = dict(c.execute(sa.select(M.c.state, sa.func.count()).group_by(M.c.state)).all())
            total = sum(rows.values())
            backlog = total - rows.get("delivered", 0) - rows.get("failed", 0) - rows.get("undelivered", 0)
            samples.append((time.monotonic() - t0, total, backlog, rows.get("delivered", 0)))
            stop.wait(1.0)

    try:
        wait_port(port, 30)
        url = f"http://127.0.0.1:{port}/api/get-api/v1/sms-api"
        lua = work / "load.lua"
        delay_fn = ""
        if args.rate:
            # Open loop at --rate messages a second (wrk2 is not packaged). Each wrk
            # thread hands out send times on a fixed schedule, one request every
            # `interval` ms, and delay() waits until the next free slot. A fixed pause
            # after each response would add the request's own latency to every cycle,
            # so the offered rate would fall short of --rate whenever latency is not ~0.
            # wrk's Lua has no sub-second clock; LuaJIT's ffi reaches clock_gettime.
            interval_ms = 1000.0 * 2 * args.recipients / args.rate  # 2 wrk threads
            delay_fn = PACING.format(interval=interval_ms)
        lua.write_text(LUA.format(key=key, recipients=args.recipients, delay_fn=delay_fn))
        th = threading.Thread(target=sampler, daemon=True)
        th.start()
        out = subprocess.run(
            ["wrk", "-t", "2", "-c", str(args.connections), "-d", f"{args.seconds}s", "--latency", "-s", str(lua), url],
            capture_output=True,
            text=True,
        )
        load_end = samples[-1][0] if samples else 0
        m = re.search(r"^JSON (.*)$", out.stdout, re.M)
        if not m:
            raise RuntimeError(out.stdout + out.stderr)
        w = json.loads(m.group(1))
        drain_start = time.monotonic()
        while time.monotonic() - drain_start < 120:
            if samples and samples[-1][2] == 0 and samples[-1][0] > load_end:
                break
            time.sleep(0.5)
        drain = time.monotonic() - drain_start
        stop.set()
        th.join(5)
        with engine.connect() as c:
            lat = [
                ((r.done_at - r.created_at).total_seconds())
                for r in c.execute(sa.select(M.c.created_at, M.c.done_at).where(M.c.state == "delivered"))
                if r.done_at and r.created_at
            ]
            final = dict(c.execute(sa.select(M.c.state, sa.func.count()).group_by(M.c.state)).all())
    finally:
        server.terminate()
        server.wait(20)
        if worker is not None:
            worker.terminate()
            worker.wait(20)
        sim.terminate()
        sim.wait(10)
    accepted = w["requests"] * args.recipients
    during = [s for s in samples if s[0] <= w["seconds"] + 0.5]
    first, last = during[1] if len(during) > 1 else during[0], during[-1]
    delivered_rate = (last[3] - first[3]) / max(0.001, last[0] - first[0])
    print(
        f"\nUVox end-to-end benchmark — {os.cpu_count()} cores, database {db.split(':')[0]}, "
        f"{args.connections} connections x {args.recipients} recipients/request, {args.seconds}s, "
        f"receipt delay {args.receipt_delay}s, window {args.window}, "
        f"offered {'%.0f msg/s' % args.rate if args.rate else 'as fast as accepted'}, "
        f"dispatcher {'in uvox worker' if args.worker else 'inside uvox serve'}, {args.workers} HTTP process(es)"
    )
    print(
        f"messages accepted (HTTP 005)      {accepted:8d}  = {accepted / w['seconds']:7.0f} msg/s "
        f"(p50 {w['p50']:.1f} ms, p99 {w['p99']:.1f} ms per request, errors {w['errors'] + w['non2xx']})"
    )
    print(f"messages delivered during load            = {delivered_rate:7.0f} msg/s (receipt stored)")
    print(
        "backlog (accepted, no receipt yet) each second: "
        + " ".join(str(s[2]) for s in samples[: int(w["seconds"]) + 3])
    )
    print(f"drained {drain:.1f}s after the load stopped; final states {final}")
    if lat:
        lat.sort()
        print(
            f"request → receipt latency: p50 {statistics.median(lat) * 1000:.0f} ms, "
            f"p99 {lat[int(len(lat) * 0.99) - 1] * 1000:.0f} ms"
        )
    shutil.rmtree(work, ignore_errors=True)


def bench_drain(args) -> None:
    import sqlalchemy as sa

    from uvox.config import normalise_database_url
    from uvox.db import schema as t

    work, db, env, sim, info, key = setup_platform(args, "uvox-drain-bench-")
    engine = sa.create_engine(normalise_database_url(db))
    M = t.messages
    tick = os.sysconf("SC_CLK_TCK")

    def cpu(pid: int) -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    def delivered() -> tuple[int, int]:
        with engine.connect() as c:
            rows = dict(c.execute(sa.select(M.c.state, sa.func.count()).group_by(M.c.state)).all())
        return sum(rows.values()), rows.get("delivered", 0)

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvox", "serve", "--port", str(port)],
        env={**env, "UVOX_DISPATCHER": "0"},
        cwd=work,
        stderr=subprocess.DEVNULL,
    )
    worker = None
    try:
        wait_port(port, 30)
        lua = work / "load.lua"
        lua.write_text(LUA.format(key=key, recipients=10, delay_fn=""))
        subprocess.run(
            [
                "wrk",
                "-t",
                "2",
                "-c",
                "8",
                "-d",
                f"{args.seconds}s",
                "-s",
                str(lua),
                f"http://127.0.0.1:{port}/api/get-api/v1/sms-api",
            ],
            capture_output=True,
            check=True,
        )
        server.terminate()
        server.wait(20)
        total, _ = delivered()
        worker = subprocess.Popen(
            [sys.executable, "-m", "uvox", "worker"], env=env, cwd=work, stderr=subprocess.DEVNULL
        )
        first = None  # (time, cpu, delivered) at the first delivery seen
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            now, c = time.monotonic(), cpu(worker.pid)
            _, done = delivered()
            if first is None and done:
                first = (now, c, done)
            if done >= total:
                break
            time.sleep(0.1)
        last = (now, c, done)
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(20)
        if server.poll() is None:
            server.terminate()
            server.wait(20)
        sim.terminate()
        sim.wait(10)
    n = last[2] - first[2]
    print(
        f"\nUVox dispatcher drain benchmark — {os.cpu_count()} cores, database {db.split(':')[0]}, "
        f"window {args.window}, receipt delay {args.receipt_delay}s, `uvox worker` on a full queue"
    )
    print(f"messages queued                   {total:8d}")
    print(
        f"delivered (receipt stored)        {n:8d} in {last[0] - first[0]:6.2f}s = "
        f"{n / max(0.001, last[0] - first[0]):7.0f} msg/s"
    )
    print(f"worker CPU per message            {1000 * (last[1] - first[1]) / max(1, n):8.3f} ms")
    shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="what", required=True)
    s = sub.add_parser("submit")
    s.add_argument("--messages", type=int, default=30000)
    s.add_argument("--window", type=int, default=64)
    e = sub.add_parser("e2e")
    e.add_argument("--seconds", type=int, default=20)
    e.add_argument("--connections", type=int, default=8)
    e.add_argument("--recipients", type=int, default=10)
    e.add_argument("--window", type=int, default=64)
    e.add_argument("--receipt-delay", type=float, default=0.5)
    e.add_argument("--rate", type=float, default=0.0, help="offered messages/s (0: as fast as the API accepts them)")
    e.add_argument("--database-url", default="")
    e.add_argument("--workers", type=int, default=1, help="uvox serve --workers N (HTTP processes)")
    e.add_argument(
        "--worker",
        action="store_true",
        help="run the dispatcher as `uvox worker` beside `uvox serve` instead of inside it",
    )
    d = sub.add_parser("drain")
    d.add_argument("--seconds", type=int, default=10, help="how long the API queues messages")
    d.add_argument("--window", type=int, default=64)
    d.add_argument("--receipt-delay", type=float, default=0.5)
    d.add_argument("--database-url", default="")
    args = ap.parse_args()
    {"submit": bench_submit, "e2e": bench_e2e, "drain": bench_drain}[args.what](args)


if __name__ == "__main__":
    main()
