"""Intake throughput of the v1 API, with a bare Starlette endpoint as the ceiling.

Starts `uvox serve` (dispatcher and simulator off: this measures intake, i.e. a
message accepted, priced, charged and durably stored before the reply) on a fresh
database, and drives it with wrk over keep-alive connections. Prints one table.

With --with-delivery the dispatcher runs inside `uvox serve`, as users run it, so
the accepted messages are also being sent (SMPP) while intake is measured and both
share the process. The SMSC is `uvox smsc-sim` in a process of its own, standing in
for the carrier's SMSC, which in production is never inside our process.

    python bench/api_bench.py [--seconds 10] [--connections 32] [--database-url URL] [--with-delivery] [--workers N]

With --as-readme it runs `uvox serve` exactly as the README's first command does
(SQLite, every default: HTTP processes by core, delivery and the SMSC simulator in
processes of their own) and sends single-
recipient SMS for --seconds (default 60 there): accepted/s, delivered/s (handed to
the SMSC and answered), the backlog at the start and the end, p50/p99, the server's
CPU per message and the memory of all its processes (RSS and PSS, and the largest
RSS of each process name), once a second, beside
the bare Starlette ceiling measured in the same run.

Needs `wrk` (Debian: apt-get install wrk).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from bench.common import USA_DECK, funded_account  # noqa: E402
from tests.conftest import free_port, uvox_env, wait_port  # noqa: E402
from tests.robustness.harness import process_memory  # noqa: E402

BARE_APP = textwrap.dedent(
    """
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def ping(request):
        return JSONResponse({"version": "1", "code": "015", "status": "success"})

    app = Starlette(routes=[Route("/ping", ping, methods=["GET", "POST"])])
    """
)

LUA_POST = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Api-Key"] = "{key}"
counter = 0
request = function()
  counter = counter + 1
  local body = "to=" .. {to_expr} .. "&text=Benchmark%20message&from=UVox"
  return wrk.format(nil, nil, nil, body)
end
"""

LUA_DONE = """
done = function(summary, latency, requests)
  io.write(string.format("JSON {\\"requests\\": %d, \\"seconds\\": %f, \\"p50\\": %f, \\"p99\\": %f, \\"errors\\": %d, \\"non2xx\\": %d}\\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, summary.errors.status))
end
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process and its children have used so far (Linux
    /proc; 0 elsewhere). With --workers the server is several processes.

    The machine is shared and noisy: requests/s move with whatever else runs, while
    the server's CPU time per request is a steadier figure of what a request costs.
    """
    if not pid:
        return 0.0
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stats[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                pass
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        fields = stats.get(p)
        if fields is None:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        todo.extend(c for c, f in stats.items() if int(f[1]) == p)
    return total


def run_wrk(url: str, seconds: int, connections: int, script: str, threads: int = 2, pid: int = 0) -> dict:
    cpu_before = cpu_seconds(pid)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(script + LUA_DONE)
        path = fh.name
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--latency", "-s", path, url],
        capture_output=True,
        text=True,
    )
    os.unlink(path)
    m = re.search(r"^JSON (.*)$", out.stdout, re.M)
    if not m:
        raise RuntimeError(out.stdout + out.stderr)
    result = json.loads(m.group(1))
    result["cpu"] = cpu_seconds(pid) - cpu_before
    return result


WAITING = ("queued", "submitting", "waiting_balance", "waiting_plan")


def message_counts(db_path: Path) -> tuple[int, int]:
    """(waiting to be sent, handed to the SMSC) read from the server's SQLite file."""
    import sqlite3

    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        rows = dict(con.execute("SELECT state, count(*) FROM messages GROUP BY state").fetchall())
    finally:
        con.close()
    waiting = sum(n for st, n in rows.items() if st in WAITING)
    return waiting, sum(rows.values()) - waiting


def as_readme(args) -> None:
    """The README's `uvox serve`, measured from outside for args.seconds."""
    import threading
    import time

    work = Path(tempfile.mkdtemp(prefix="uvox-bench-"))
    db_path = work / "uvox.db"
    env = uvox_env(f"sqlite:///{db_path}", UVOX_LOG_LEVEL="WARNING")
    port = free_port()
    env.update(UVOX_PORT=str(port), UVOX_SMSC_SIM_PORT=str(free_port()), UVOX_SMSC_SIM_CONTROL_PORT=str(free_port()))
    if args.workers:  # to compare with a setting; the README's run sets none
        env["UVOX_WORKERS"] = str(args.workers)
    server = subprocess.Popen([sys.executable, "-m", "uvox", "serve"], env=env, cwd=work)
    bare_port = free_port()
    (work / "bare.py").write_text(BARE_APP)
    bare = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bare:app",
            "--port",
            str(bare_port),
            "--no-access-log",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--log-level",
            "warning",
        ],
        cwd=work,
    )
    samples: list[tuple[float, int, int, float]] = []
    pss: list[float] = []
    by_name: dict[str, float] = {}
    try:
        wait_port(port)
        wait_port(bare_port)
        key = funded_account(env, work)
        script = LUA_POST.format(key=key, to_expr='"1305555" .. string.format("%04d", counter % 10000)')
        base = f"http://127.0.0.1:{port}/api/get-api/v1/sms-api"
        run_wrk(base, 2, 8, script)  # warm-up
        bare_r = run_wrk(f"http://127.0.0.1:{bare_port}/ping", 10, args.connections, "", pid=bare.pid)
        time.sleep(3)  # let the warm-up's messages go out
        start_counts = message_counts(db_path)
        stop = threading.Event()

        def sample() -> None:
            t0 = time.monotonic()
            while not stop.wait(1.0):
                waiting, sent = message_counts(db_path)
                procs = process_memory(server.pid).values()
                samples.append((time.monotonic() - t0, waiting, sent, sum(rss for _, rss, _ in procs)))
                pss.append(sum(p for *_, p in procs))
                now: dict[str, float] = {}
                for name, rss, _ in procs:
                    now[name] = now.get(name, 0.0) + rss
                for name, rss in now.items():
                    by_name[name] = max(by_name.get(name, 0.0), rss)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        single = run_wrk(base, args.seconds, args.connections, script, pid=server.pid)
        stop.set()
        sampler.join()
        end_counts = message_counts(db_path)
    finally:
        server.terminate()
        bare.terminate()
        server.wait(30)
        bare.wait(10)
    secs = single["seconds"]
    accepted = single["requests"] - single["non2xx"]
    delivered = end_counts[1] - start_counts[1]
    cpu = single["cpu"] / accepted * 1e6 if accepted else 0.0
    mem = [m for *_, m in samples]
    after10 = [m for t, _, _, m in samples if t >= 10] or mem
    how = f"UVOX_WORKERS={args.workers}, every other default" if args.workers else "every default"
    print(
        f"\nUVox as the README runs it (`uvox serve`, {how}: SQLite, delivery and SMSC simulator "
        f"in processes of their own): single-recipient sends, {args.connections} keep-alive connections, {secs:.0f} s, "
        f"{os.cpu_count()} cores"
    )
    rows = [
        ("bare Starlette JSON endpoint, req/s (ceiling)", f"{bare_r['requests'] / bare_r['seconds']:.0f}"),
        ("accepted/s", f"{accepted / secs:.0f}"),
        ("delivered/s (handed to the SMSC)", f"{delivered / secs:.0f}"),
        ("backlog at start / end (messages)", f"{start_counts[0]} / {end_counts[0]}"),
        ("p50 / p99 ms", f"{single['p50']:.2f} / {single['p99']:.2f}"),
        ("errors", f"{single['errors'] + single['non2xx']}"),
        ("server CPU per accepted message, us", f"{cpu:.0f}"),
        ("memory of all processes, max MB: RSS / PSS", f"{max(mem, default=0):.0f} / {max(pss, default=0):.0f}"),
        ("memory after 10 s, min / max MB", f"{min(after10, default=0):.0f} / {max(after10, default=0):.0f}"),
    ]
    for name, value in rows:
        print(f"{name:46} {value:>14}")
    print("largest RSS by process name, MB: " + ", ".join(f"{n} {m:.0f}" for n, m in sorted(by_name.items())))
    print("backlog every 10 s: " + ", ".join(str(w) for t, w, _, _ in samples if int(t) % 10 == 0))
    shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=0, help="per run (default 10; 60 with --as-readme)")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--database-url", default="")
    ap.add_argument(
        "--workers",
        type=int,
        default=0,
        help="HTTP processes of `uvox serve --workers N` (and of the bare Starlette server; default 1; "
        "with --as-readme: uvox serve's own default unless given)",
    )
    ap.add_argument(
        "--with-delivery", action="store_true", help="run the dispatcher and the SMSC simulator in the server too"
    )
    ap.add_argument(
        "--as-readme",
        action="store_true",
        help="measure `uvox serve` with every default, as the README runs it, for 60 s",
    )
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk)")
    if args.as_readme:
        args.seconds = args.seconds or 60
        as_readme(args)
        return
    args.seconds = args.seconds or 10
    args.workers = args.workers or 1
    work = Path(tempfile.mkdtemp(prefix="uvox-bench-"))
    db = args.database_url or f"sqlite:///{work / 'bench.db'}"
    smsc = None
    if args.with_delivery:
        smsc_port = free_port()
        smsc = subprocess.Popen(
            [sys.executable, "-m", "uvox", "smsc-sim", "--port", str(smsc_port)],
            env=uvox_env(db),
            stdout=subprocess.DEVNULL,
        )
        wait_port(smsc_port)
        # The simulator is the route; its port being taken, `uvox serve` uses the one there.
        delivery = dict(UVOX_DISPATCHER="1", UVOX_SMSC_SIM="1", UVOX_SMSC_SIM_PORT=str(smsc_port))
    else:
        delivery = dict(UVOX_DISPATCHER="0", UVOX_SMSC_SIM="0")
    env = uvox_env(db, UVOX_LOG_LEVEL="WARNING", **delivery)
    key = funded_account(env, work, USA_DECK + "1305,USA Miami,0.012,0.008\n")

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvox", "serve", "--port", str(port), "--workers", str(args.workers)], env=env, cwd=work
    )
    bare_port = free_port()
    (work / "bare.py").write_text(BARE_APP)
    bare = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bare:app",
            "--port",
            str(bare_port),
            "--no-access-log",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--log-level",
            "warning",
            "--workers",
            str(args.workers),
        ],
        cwd=work,
    )
    rows = []
    try:
        wait_port(port)
        wait_port(bare_port)
        base = f"http://127.0.0.1:{port}/api/get-api/v1/sms-api"
        # warm-up
        run_wrk(base, 2, 8, LUA_POST.format(key=key, to_expr='"1305555" .. string.format("%04d", counter % 10000)'))
        bare_r = run_wrk(f"http://127.0.0.1:{bare_port}/ping", args.seconds, args.connections, "", pid=bare.pid)
        single = run_wrk(
            base,
            args.seconds,
            args.connections,
            LUA_POST.format(key=key, to_expr='"1305555" .. string.format("%04d", counter % 10000)'),
            pid=server.pid,
        )
        batch_to = "%2C".join(f"1305555{i:04d}" for i in range(200))
        batch = run_wrk(
            base, args.seconds, args.connections, LUA_POST.format(key=key, to_expr=f'"{batch_to}"'), pid=server.pid
        )
        rows = [
            ("bare Starlette JSON endpoint (ceiling)", bare_r, 1),
            ("sms-api, 1 recipient per request", single, 1),
            ("sms-api, 200 recipients per request", batch, 200),
        ]
    finally:
        server.terminate()
        bare.terminate()
        server.wait(10)
        bare.wait(10)
        if smsc is not None:
            smsc.terminate()
            smsc.wait(10)
    print(
        f"\nUVox intake benchmark — {args.connections} keep-alive connections, {args.seconds}s each, "
        f"{os.cpu_count()} cores, {args.workers} HTTP process(es), database {db.split(':')[0]}, "
        f"{'dispatcher running, SMSC simulator in its own process' if args.with_delivery else 'dispatcher off'}"
    )
    print(f"{'what':42} {'req/s':>9} {'msg/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'cpu us/req':>11}")
    for name, r, per in rows:
        rps = r["requests"] / r["seconds"]
        cpu = r["cpu"] / r["requests"] * 1e6 if r["requests"] else 0.0
        print(
            f"{name:42} {rps:9.0f} {rps * per:9.0f} {r['p50']:8.2f} {r['p99']:8.2f} {r['errors'] + r['non2xx']:7d} "
            f"{cpu:11.0f}"
        )
    print("cpu us/req: the server's user+system CPU time (all its processes) divided by the requests answered")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
