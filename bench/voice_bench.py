"""Call setup through Kamailio with the platform's authorization, beside the same
Kamailio routing without it (the ceiling), and call records rated per second.

One run, on one machine, everything real: PostgreSQL, `uvox serve`, Kamailio with
the configuration `uvox sip kamailio-cfg` renders, sipp as the softphones (digest
auth on every INVITE) and sipp as the carrier trunk (answers at once, waits for BYE).

1. ceiling: the rendered configuration with the HTTP authorization replaced by a
   fixed answer (no platform, no hold, no record): what Kamailio and sipp do alone.
2. uvox: the configuration as shipped; every call asks the platform, which holds
   money for it and records it.
   Both: sipp offers --rate new calls a second, each lasting --hold seconds, so about
   rate x hold calls are in progress; setup time is sipp's response time from the
   authenticated INVITE to the 200 OK.
3. rating: `uvox serve` is stopped while the calls of run 2 are still talking; they
   end, Kamailio writes their records with nobody to rate them; `uvox serve` starts
   again and the time to settle that backlog gives records rated per second.
   Then: every answered call rated exactly once, ledger == sum of records.

    python bench/voice_bench.py [--rate 200] [--hold 10] [--seconds 20] [--accounts 1] [--workers CORES]

Needs kamailio (+ postgres and utils modules), sipp and PostgreSQL at 127.0.0.1:5432.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from tests.conftest import PgDatabases, UvoxProcess, run_uvox  # noqa: E402
from tests.softphone.conftest import Kamailio, free_udp_port  # noqa: E402

DOMAIN = "sip.bench.test"
CEILING_CDRS = "bench_ceiling_cdrs"

UAC = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="bench caller">
  <send retrans="500"><![CDATA[
      INVITE sip:[service]@{domain} SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{user}@{domain}>;tag=[pid]T[call_number]
      To: <sip:[service]@{domain}>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:{user}@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0

    ]]></send>
  <recv response="100" optional="true"/>
  <recv response="407" auth="true"/>
  <send><![CDATA[
      ACK sip:[service]@{domain} SIP/2.0
      [last_Via:]
      From: <sip:{user}@{domain}>;tag=[pid]T[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]></send>
  <send retrans="500" start_rtd="setup"><![CDATA[
      INVITE sip:[service]@{domain} SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{user}@{domain}>;tag=[pid]T[call_number]
      To: <sip:[service]@{domain}>
      Call-ID: [call_id]
      CSeq: 2 INVITE
      Contact: <sip:{user}@[local_ip]:[local_port]>
      [authentication username={user} password={password}]
      Max-Forwards: 70
      Content-Length: 0

    ]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true" rtd="setup"/>
  <send><![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{user}@{domain}>;tag=[pid]T[call_number]
      To: <sip:[service]@{domain}>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 ACK
      [routes]
      Max-Forwards: 70
      Content-Length: 0

    ]]></send>
  <pause milliseconds="{hold_ms}"/>
  <send retrans="500"><![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:{user}@{domain}>;tag=[pid]T[call_number]
      To: <sip:[service]@{domain}>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 3 BYE
      [routes]
      Max-Forwards: 70
      Content-Length: 0

    ]]></send>
  <recv response="200"/>
</scenario>
"""

UAS = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="bench trunk">
  <recv request="INVITE" rrs="true"/>
  <send><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]U[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      [last_Record-Route:]
      Contact: <sip:trunk@[local_ip]:[local_port]>
      Content-Length: 0

    ]]></send>
  <recv request="ACK"/>
  <recv request="BYE"/>
  <send><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]></send>
</scenario>
"""


def ceiling_cfg(cfg: str) -> str:
    """The shipped routing with the platform's answer fixed: no HTTP, no hold, no record."""
    fixed = (
        '$var(answer) = "code=200;call=0;limit=3600;onnet=0;n=1;t0_name=bench;t0_host=127.0.0.1;'
        't0_port=TRUNKPORT;t0_proto=udp;t0_ruser=$rU;t0_max=0;t0_user=;t0_pass=";\n\t$var(http) = 200;'
    )
    # Its records go to a table of their own, which the platform does not settle:
    # the same writes for Kamailio and PostgreSQL, no work for uvox serve meanwhile.
    cfg = cfg.replace('modparam("acc", "cdrs_table", "acc_cdrs")', f'modparam("acc", "cdrs_table", "{CEILING_CDRS}")')
    out, n = re.subn(r"http_client_query\([^;]*\);\s*\n\s*\$var\(http\) = \$rc;", lambda _m: fixed, cfg, flags=re.S)
    if n != 1:
        raise SystemExit("could not find the authorization call in kamailio.cfg to build the ceiling")
    return out


def timed_cfg(cfg: str) -> str:
    """The configuration with Kamailio timing its question to the platform, to the
    microsecond: sipp's own clock moves in steps of about 4 ms here, too coarse for
    the milliseconds the authorization adds. The ceiling logs the same line around its
    fixed answer, so both runs pay for the log."""
    out, n = re.subn(r"(\n(\s*)http_client_query\()", r"\n\2$var(uvox_t0) = $TV(Sn);\1", cfg, count=1)
    out, m = re.subn(
        r"(\$var\(http\) = (?:\$rc|200);)", r'\1 xlog("L_ALERT", "UVOXBENCH $var(uvox_t0) $TV(Sn)\\n");', out, count=1
    )
    if n != 1 or m != 1:
        raise SystemExit("could not find the authorization call in kamailio.cfg to time it")
    return out


def asked_ms(log: Path) -> list[float]:
    """Milliseconds Kamailio waited for each authorization (timed_cfg's lines)."""
    found = []
    for m in re.finditer(r"UVOXBENCH (\d+\.\d+) (\d+\.\d+)", log.read_text(errors="replace")):
        found.append((float(m.group(2)) - float(m.group(1))) * 1000)
    return found


def sipp_uac(
    port: int, workdir: Path, *, user: str, password: str, rate: float, calls: int, hold: int, limit: int, tag: str
) -> subprocess.Popen:
    # One sipp per SIP account: this sipp cannot take digest credentials from an
    # injection file ([authentication username=[field0]] is not expanded).
    sf = workdir / f"uac-{tag}.xml"
    sf.write_text(UAC.format(domain=DOMAIN, user=user, password=password, hold_ms=hold * 1000))
    return subprocess.Popen(
        [
            "sipp",
            f"127.0.0.1:{port}",
            "-sf",
            str(sf),
            "-s",
            "13055550100",
            "-i",
            "127.0.0.1",
            "-p",
            str(free_udp_port()),
            "-r",
            f"{rate:g}",
            "-m",
            str(calls),
            "-l",
            str(limit),
            "-nostdin",
            "-trace_rtt",
            "-rtt_freq",
            "50",
            "-trace_stat",
            "-fd",
            "1",
            "-trace_err",
            "-max_socket",
            "4096",
            "-timeout",
            str(int(calls // max(rate, 1)) + hold + 60) + "s",
        ],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def sipp_uas(port: int, workdir: Path) -> subprocess.Popen:
    sf = workdir / "uas.xml"
    sf.write_text(UAS)
    return subprocess.Popen(
        ["sipp", "-sf", str(sf), "-i", "127.0.0.1", "-p", str(port), "-nostdin", "-max_socket", "4096"],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def rtt_ms(workdir: Path) -> list[tuple[float, float]]:
    """(milliseconds since the run's first call, setup time in ms) of every call."""
    values = []
    for f in workdir.glob("*_rtt.csv"):
        with f.open() as fh:
            for row in csv.reader(fh, delimiter=";"):
                if len(row) >= 3 and row[-1].strip() == "setup":
                    try:
                        values.append((float(row[0]), float(row[1])))
                    except ValueError:
                        pass
    start = min((at for at, _ in values), default=0.0)
    return [(at - start, ms) for at, ms in values]


def phases(rtts: list[tuple[float, float]], hold: int) -> dict[str, float]:
    """p99 of set-up in the first second (the platform's caches and connections new
    to this load), until the first calls end, and once calls end as fast as they start
    (Kamailio's BYEs and records, the platform settling them)."""
    parts = {
        "first second": (0, 1000),
        "no call ending yet": (1000, hold * 1000),
        "calls ending too": (hold * 1000, float("inf")),
    }
    return {name: pct([ms for at, ms in rtts if lo <= at < hi], 99) for name, (lo, hi) in parts.items()}


def stat(workdir: Path, column: str) -> int:
    """A final counter of sipp's statistics, summed over the sipp processes of a run."""
    total = 0
    for f in workdir.glob("*_.csv"):
        rows = list(csv.reader(f.open(), delimiter=";"))
        if len(rows) >= 2 and column in rows[0]:
            total += int(rows[-1][rows[0].index(column)])
    return total


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p / 100))]


def cpu(root: int) -> float:
    """CPU seconds of a live process and all its descendants (Kamailio's children do
    its work; uvox serve --workers N serves HTTP from child processes)."""
    procs: dict[int, tuple[int, float]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            f = stat_file.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        procs[int(stat_file.parent.name)] = (int(f[1]), (int(f[11]) + int(f[12])) / tick)
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, (ppid, _) in procs.items() if ppid in tree} - tree
        tree |= more
        grew = bool(more)
    return sum(procs[pid][1] for pid in tree if pid in procs)


def cpu_named(*names: str) -> float:
    """CPU seconds of every live process whose command is one of ``names`` (PostgreSQL's
    backends: Kamailio's dialog and CDR writes and the platform's transactions)."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, rest = stat_file.read_text().rsplit(")", 1)
        except (OSError, ValueError):
            continue
        if head.split("(", 1)[-1] in names:
            f = rest.split()
            total += (int(f[11]) + int(f[12])) / tick
    return total


def run_load(kport: int, workdir: Path, users: list[tuple[str, str]], args, tag: str) -> dict:
    wd = workdir / tag
    wd.mkdir()
    calls = args.rate * args.seconds
    share = len(users)
    t0 = time.monotonic()
    procs = [
        sipp_uac(
            kport,
            wd,
            user=u,
            password=p,
            rate=args.rate / share,
            calls=calls // share,
            hold=args.hold,
            limit=(args.rate * args.hold * 2 + 100) // share + 10,
            tag=f"{tag}-{i}",
        )
        for i, (u, p) in enumerate(users)
    ]
    return {"procs": procs, "dir": wd, "calls": calls, "t0": t0}


def finish(load: dict, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    for proc in load["procs"]:
        try:
            proc.wait(max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGUSR1)
            proc.wait(30)
    wd = load["dir"]
    timed = rtt_ms(wd)
    rtts = [ms for _, ms in timed]
    return {
        "ok": stat(wd, "SuccessfulCall(C)"),
        "failed": stat(wd, "FailedCall(C)"),
        "timed": timed,
        "p50": pct(rtts, 50),
        "p99": pct(rtts, 99),
        "n": len(rtts),
        "elapsed": time.monotonic() - load["t0"],
    }


def platform_latency(base_url: str) -> tuple[str, str, int]:
    """p50 and p99 of the authorization as the platform itself timed it (its
    /metrics histogram, so bucket bounds): what of the added setup time is ours."""
    import httpx

    try:
        text = httpx.get(base_url + "/metrics", timeout=10).text
    except httpx.HTTPError:
        return "?", "?", 0
    buckets = []
    for m in re.finditer(r"^uvox_http_request_duration_seconds_bucket\{([^}]*)\} (\S+)$", text, re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        if labels.get("endpoint") == "/voice/kamailio":
            buckets.append((float(labels["le"]), float(m.group(2))))
    buckets.sort()
    if not buckets or buckets[-1][1] == 0:
        return "?", "?", 0
    total = buckets[-1][1]

    def bound(p: float) -> str:
        le = next(le for le, n in buckets if n >= total * p / 100)
        return "> 5 s" if le == float("inf") else f"<= {le * 1000:g}"

    return bound(50), bound(99), int(total)


def database(url: str) -> sa.Engine:
    return sa.create_engine(
        url.replace("postgresql://", "postgresql+psycopg://", 1) if url.startswith("postgresql://") else url
    )


def ceiling_records_table(url: str) -> None:
    """Where the ceiling's Kamailio writes its records: acc_cdrs' columns, without the
    trigger that wakes the platform's settler."""
    eng = database(url)
    try:
        with eng.begin() as c:
            c.execute(sa.text(f"CREATE TABLE {CEILING_CDRS} (LIKE acc_cdrs INCLUDING ALL)"))
            c.execute(
                sa.text(
                    f"INSERT INTO version (table_name, table_version) SELECT '{CEILING_CDRS}', "
                    "table_version FROM version WHERE table_name = 'acc_cdrs'"
                )
            )
    finally:
        eng.dispose()


def make_callers(url: str, accounts: int) -> list[tuple[str, str]]:
    """``accounts`` customer accounts on plan "bench", each topped up with one SIP
    account; made with the platform's own services (the CLI would take a second each)."""
    from decimal import Decimal as D

    from uvox.accounts.service import create_account
    from uvox.billing.service import topup
    from uvox.config import Settings
    from uvox.platform import Platform
    from uvox.softphone.service import create_sip_account

    platform = Platform.open(Settings.from_env({"UVOX_DATABASE_URL": url}))
    users = []
    try:
        for i in range(accounts):
            acct = create_account(platform.engine, email=f"bench{i}@example.com", plan="bench")
            topup(platform.engine, acct.id, D("1000000"))
            cred = create_sip_account(platform.engine, acct.id, domain=DOMAIN)
            users.append((cred.account.username, cred.password))
    finally:
        platform.close()
    return users


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=int, default=200, help="new calls per second (default 200)")
    ap.add_argument("--hold", type=int, default=10, help="seconds each call lasts (default 10: rate x 10 in progress)")
    ap.add_argument("--seconds", type=int, default=20, help="seconds of new calls per run (default 20)")
    ap.add_argument(
        "--children",
        type=int,
        default=16,
        help="Kamailio UDP children (the shipped configuration has 4; each waits for the platform in turn)",
    )
    ap.add_argument(
        "--accounts",
        type=int,
        default=1,
        help="customer accounts the calls come from, one sipp each (default 1: every call holds "
        "money of the same account, the hardest case)",
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="uvox serve HTTP processes (UVOX_WORKERS; default: one per core)",
    )
    args = ap.parse_args()
    for tool in ("kamailio", "sipp"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed")

    dbs = PgDatabases()
    work = Path(tempfile.mkdtemp(prefix="voice-bench-"))
    url = dbs.create()
    kport, tport = free_udp_port(), free_udp_port()
    server = UvoxProcess(
        url,
        work,
        UVOX_SIP_DOMAIN=DOMAIN,
        UVOX_SMSC_SIM="0",
        UVOX_DISPATCHER="0",
        UVOX_WORKERS=str(args.workers),
        UVOX_LOG_LEVEL="WARNING",
    )
    uas = kam = None
    try:
        # Set up first, then start the platform, as an operator's restart finds it:
        # SIP accounts exist, so it opens Kamailio's pool before the first call.
        upgraded = run_uvox(["db", "upgrade"], url)
        if upgraded.returncode != 0:
            raise SystemExit(upgraded.stderr)
        deck = work / "deck.csv"
        deck.write_text(
            "dialprefix,destination,rateinitial,smsrate,connectcharge,initblock,billingblock\n"
            "1,USA,0.0100,0.0075,0.001,6,6\n"
        )
        server.admin("plan", "create", "bench", "--currency", "US$")
        server.admin("rates", "import", "bench", str(deck))
        users = make_callers(url, args.accounts)
        server.admin("trunk", "add", "carrier", "--host", "127.0.0.1", "--port", str(tport))
        server.start()
        rendered = run_uvox(
            ["sip", "kamailio-cfg", "--listen", f"udp:127.0.0.1:{kport}", "--api-url", server.url],
            url,
            UVOX_SIP_DOMAIN=DOMAIN,
        )
        if rendered.returncode != 0:
            raise SystemExit(rendered.stderr)
        cfg = timed_cfg(rendered.stdout.replace("children=4", f"children={args.children}"))
        ceiling_records_table(url)
        uas = sipp_uas(tport, work)
        results = {}
        for tag, text in (("ceiling", ceiling_cfg(cfg).replace("TRUNKPORT", str(tport))), ("uvox", cfg)):
            kd = work / f"kam-{tag}"
            kd.mkdir()
            # 2,000 dialogs and their transactions need more than the tests' 32 MB.
            kam = Kamailio(text, kport, DOMAIN, kd, shm_mb=1024, pkg_mb=16)
            kam.start()
            c0 = {p: cpu(p) for p in (kam.proc.pid, server.proc.pid)}
            other0 = {"postgres": cpu_named("postgres")}
            load = run_load(kport, work, users, args, tag)
            if tag == "uvox":
                # The platform goes away while the last calls still talk: their records wait.
                time.sleep(args.seconds + 1)
                serve_cpu = cpu(server.proc.pid) - c0[server.proc.pid]
                inside = platform_latency(server.url)
                server.stop()
            res = finish(load, args.seconds + args.hold + 120)
            res["kam_cpu"] = cpu(kam.proc.pid) - c0[kam.proc.pid]
            res["asked"] = asked_ms(kd / "kamailio.log")
            res["pg_cpu"] = cpu_named("postgres") - other0["postgres"]
            results[tag] = res
            kam.stop()
            kam = None
        # Rating: start the platform again and time the backlog.
        eng = database(url)
        with eng.connect() as c:
            backlog = c.execute(sa.text("SELECT count(*) FROM acc_cdrs WHERE NOT settled")).scalar()
        # From the start command: the platform settles what waits while it starts, before
        # it listens, so start-up (about a second) is counted in.
        t0 = time.monotonic()
        server.start()
        while True:
            with eng.connect() as c:
                left = c.execute(sa.text("SELECT count(*) FROM acc_cdrs WHERE NOT settled")).scalar()
            if left == 0 or time.monotonic() - t0 > 300:
                break
            time.sleep(0.05)
        rated_s = time.monotonic() - t0
        with eng.connect() as c:
            answered = c.execute(sa.text("SELECT count(*) FROM calls WHERE status = 'answered'")).scalar()
            in_progress = c.execute(sa.text("SELECT count(*) FROM calls WHERE status = 'in_progress'")).scalar()
            charges = c.execute(
                sa.text(
                    "SELECT count(*), count(DISTINCT call_id), coalesce(-sum(amount), 0) "
                    "FROM ledger WHERE kind = 'call'"
                )
            ).one()
            priced = c.execute(sa.text("SELECT coalesce(sum(price), 0) FROM calls")).scalar()
            bal = c.execute(sa.text("SELECT sum(balance) AS balance, sum(held) AS held FROM accounts")).one()
        eng.dispose()
    finally:
        if kam is not None:
            kam.stop()
        if uas is not None:
            os.killpg(uas.pid, signal.SIGTERM)
        server.stop()
        dbs.drop_all()

    cores = os.cpu_count()
    print(
        f"\nvoice_bench: {args.rate} new calls/s offered for {args.seconds} s, each {args.hold} s long "
        f"(~{args.rate * args.hold} in progress), from {args.accounts} account(s), {cores} cores\n"
    )
    print(f"{'':34} {'ceiling (no auth)':>18} {'uvox':>12}")
    c, u = results["ceiling"], results["uvox"]
    print(
        f"{'calls answered / offered':34} {c['ok']:>12}/{c['ok'] + c['failed']:<5} {u['ok']:>6}/{u['ok'] + u['failed']:<5}"
    )
    print(f"{'calls set up per second':34} {c['ok'] / args.seconds:>18.1f} {u['ok'] / args.seconds:>12.1f}")
    print(f"{'setup p50 (INVITE->200, ms)':34} {c['p50']:>18.2f} {u['p50']:>12.2f}")
    print(f"{'setup p99 (ms)':34} {c['p99']:>18.2f} {u['p99']:>12.2f}")
    c_phases, u_phases = phases(c["timed"], args.hold), phases(u["timed"], args.hold)
    for name in c_phases:
        print(f"{'  p99 ' + name:34} {c_phases[name]:>18.2f} {u_phases[name]:>12.2f}")
    print(f"{'Kamailio CPU seconds':34} {c['kam_cpu']:>18.1f} {u['kam_cpu']:>12.1f}")
    print(f"{'PostgreSQL CPU seconds':34} {c['pg_cpu']:>18.1f} {u['pg_cpu']:>12.1f}")
    print(f"{'uvox serve CPU seconds':34} {'-':>18} {serve_cpu:>12.1f}")
    print(f"\nadded by the authorization: p50 {u['p50'] - c['p50']:.2f} ms, p99 {u['p99'] - c['p99']:.2f} ms")
    ca, ua = c["asked"], u["asked"]
    print(
        f"Kamailio's wait for the answer, timed by Kamailio (us clock), over {len(ua)} calls: "
        f"p50 {pct(ua, 50):.2f} ms, p90 {pct(ua, 90):.2f} ms, p99 {pct(ua, 99):.2f} ms, max {max(ua, default=0):.1f} ms "
        f"(ceiling's fixed answer: p99 {pct(ca, 99):.3f} ms)"
    )
    print(
        f"inside the platform (its own histogram, bucket bounds): authorization p50 {inside[0]} ms, "
        f"p99 {inside[1]} ms over {inside[2]} requests"
    )
    print(
        f"rating: {backlog} records left while uvox serve was down, settled in {rated_s:.2f} s after restart "
        f"(from the start command, start-up included): {backlog / rated_s if rated_s else 0:.0f} records/s"
    )
    print(
        f"answered calls {answered}, calls still in progress {in_progress}; ledger charges {charges[0]} "
        f"for {charges[1]} distinct calls; ledger total {Decimal(charges[2]):.6f} == records total "
        f"{Decimal(priced):.6f}: {Decimal(charges[2]) == Decimal(priced)}; held left {bal.held}"
    )


if __name__ == "__main__":
    main()
