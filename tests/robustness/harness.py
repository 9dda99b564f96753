"""What the robustness tests and bench/soak.py share: provisioning, a load of real HTTP
sends, the count at an SMSC that is not ours, process memory, a private PostgreSQL.

Nothing here stands in for a part of UVox: the load talks HTTP to `uvox serve`, the
count is what node-smpp (tests/interop/smsc.js) accepted, and the database is read
only to learn which messages are still on their way.
"""

from __future__ import annotations

import asyncio
import collections
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from glob import glob
from pathlib import Path

import httpx
import sqlalchemy as sa

from uvox.sms.states import MessageState

SEND = "/api/get-api/v1/sms-api"
DECK = "dialprefix,destination,rateinitial,smsrate\n1,USA,0.01,0.0075\n"
#: States a message leaves on its own; delivery is over when none is in one of them.
UNDERWAY = [
    str(s) for s in (MessageState.WAITING_BALANCE, MessageState.QUEUED, MessageState.SUBMITTING, MessageState.SUBMITTED)
]
#: States of messages not yet handed to an SMSC (UNDERWAY without SUBMITTED): for a test
#: whose SMSC dies owing receipts, those messages stay SUBMITTED until they expire.
UNSENT = [s for s in UNDERWAY if s != str(MessageState.SUBMITTED)]


@dataclass
class Provisioned:
    auth: dict[str, str]
    account_id: int


def provision(
    database_url: str,
    smsc=None,
    *,
    window: int = 64,
    email: str = "load@example.com",
    password: str | None = None,
    balance: str = "100000",
) -> Provisioned:
    """What an operator sets up before sending (the README's admin steps, done in this
    process instead of eight `uvox admin` start-ups): schema, plan with ``DECK``, a
    funded account with an API key, and a connector to ``smsc`` as the default route."""
    from uvox.accounts import apikeys, service
    from uvox.billing import plans
    from uvox.billing.service import topup
    from uvox.config import Settings
    from uvox.platform import Platform
    from uvox.smpp import registry

    p = Platform.open(Settings.from_env({"UVOX_DATABASE_URL": database_url}), migrate=True)
    try:
        try:
            plans.get_plan(p.engine, "retail")
        except Exception:
            plans.create_plan(p.engine, "retail", "US$")
            plans.import_rates(p.engine, "retail", DECK)
        if smsc is not None and not registry.list_all(p.engine):
            registry.add(
                p.engine,
                "node",
                host="127.0.0.1",
                port=smsc.port,
                system_id=smsc.system_id,
                password=smsc.password,
                window=window,
                secret=p.secret,
            )
        a = service.create_account(p.engine, email=email, password=password, plan="retail")
        topup(p.engine, a.id, Decimal(balance))
        key, _ = apikeys.create(p.engine, a.id, "robustness")
        return Provisioned({"accountnumber": a.number, "apikey": key}, a.id)
    finally:
        p.close()


class Load:
    """``clients`` concurrent HTTP clients, each sending one text at a time to a number
    of its own (``+1 312 NNN NNNN``, never repeated), until stopped. A refused
    connection (the server is down) is retried after 50 ms; every answer is tallied."""

    def __init__(
        self, url: str, auth: dict[str, str], clients: int = 16, first: int = 0, rate: float | None = None
    ) -> None:
        self.url, self.auth, self.clients, self.rate = url, auth, clients, rate
        self.next = first
        self.accepted: dict[str, str] = {}  # number without "+" -> message id
        self.answers: collections.Counter[str] = collections.Counter()  # "HTTP/code" or the exception's name
        self.times_500: list[float] = []
        self.first_ok_after: dict[float, float] = {}
        self.started = self.stopped = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def start(self) -> Load:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> Load:
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join(60)
            self.stopped = time.monotonic()
        return self

    def close(self) -> None:
        self.stop()

    def run_for(self, seconds: float) -> Load:
        self.start()
        time.sleep(seconds)
        return self.stop()

    def mark(self) -> float:
        """A moment from which :meth:`first_ok` measures the next accepted send."""
        t = time.monotonic()
        self.first_ok_after[t] = 0.0
        return t

    def first_ok(self, mark: float) -> float | None:
        """Seconds from ``mark`` to the first send accepted after it (None: none yet)."""
        got = self.first_ok_after.get(mark) or 0.0
        return got - mark if got else None

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=self.clients, max_keepalive_connections=self.clients)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            await asyncio.gather(*(self._client(client) for _ in range(self.clients)))

    async def _client(self, client: httpx.AsyncClient) -> None:
        pause = self.clients / self.rate if self.rate else 0.0
        due = time.monotonic()
        while not self._stop.is_set():
            n = self.next
            self.next += 1
            number = f"1312{n:07d}"
            try:
                r = await client.post(self.url + SEND, data={**self.auth, "to": "+" + number, "text": f"load {n}"})
                body = r.json()
                key = f"{r.status_code}/{body.get('code')}"
            except (httpx.TransportError, ValueError) as exc:
                key = type(exc).__name__
                await asyncio.sleep(0.05)
            self.answers[key] += 1
            if key == "200/005":
                self.accepted[number] = body["id"]
                now = time.monotonic()
                for mark, seen in list(self.first_ok_after.items()):  # mark() adds from another thread
                    if not seen:
                        self.first_ok_after[mark] = now
            elif key.startswith("500"):
                self.times_500.append(time.monotonic())
            if pause:  # on a fixed schedule, so the answer's latency does not lower the rate
                due += pause
                await asyncio.sleep(max(0.0, due - time.monotonic()))

    @property
    def per_second(self) -> float:
        return len(self.accepted) / max((self.stopped or time.monotonic()) - self.started, 1e-9)


def underway(database_url: str, states: list[str] = UNDERWAY) -> int:
    """Messages the platform still has to send or hear about (in ``states``)."""
    eng = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    try:
        with eng.connect() as c:
            return c.execute(
                sa.text("SELECT count(*) FROM messages WHERE state IN :s").bindparams(
                    sa.bindparam("s", expanding=True)
                ),
                {"s": states},
            ).scalar_one()
    finally:
        eng.dispose()


def states(database_url: str) -> dict[str, int]:
    eng = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    try:
        with eng.connect() as c:
            return dict(c.execute(sa.text("SELECT state, count(*) FROM messages GROUP BY state")).all())
    finally:
        eng.dispose()


@dataclass
class Count:
    """Accepted by the API against accepted by the SMSC, destination by destination."""

    accepted: int
    received: int
    lost: list[str]
    duplicated: int
    unheard: int  # the SMSC got it, the client never heard its 005 (connection cut mid-answer)
    doubled: list[str] = field(default_factory=list)


def count(accepted: dict[str, str], *smscs) -> Count:
    got: collections.Counter[str] = collections.Counter()
    for s in smscs:
        got.update(s.accepted() if hasattr(s, "accepted") else s)
    lost = sorted(set(accepted) - set(got))
    doubled = sorted(d for d, n in got.items() if n > 1)
    return Count(
        len(accepted), sum(got.values()), lost, sum(n - 1 for n in got.values()), len(set(got) - set(accepted)), doubled
    )


def wait_settled(
    database_url: str, accepted: dict[str, str], smscs, timeout: float = 60.0, states: list[str] = UNDERWAY
) -> Count:
    """Wait until every accepted text reached the SMSC and nothing is underway (in ``states``)."""
    deadline = time.monotonic() + timeout
    while True:
        c = count(accepted, *smscs())
        if (not c.lost and underway(database_url, states) == 0) or time.monotonic() > deadline:
            return c
        time.sleep(0.2)


def process_rss(pid: int) -> dict[int, float]:
    """Resident memory in MB of ``pid`` and each of its descendants (Linux /proc)."""
    out: dict[int, float] = {}
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    out[p] = int(line.split()[1]) / 1024
            for task in glob(f"/proc/{p}/task/*/children"):
                todo += [int(x) for x in Path(task).read_text().split()]
        except OSError:
            continue
    return out


def process_memory(pid: int) -> dict[int, tuple[str, float, float]]:
    """``pid`` and each descendant: (name, resident MB, proportional MB).

    RSS counts every shared page (the interpreter, libraries) once per process, so
    its sum overstates what several processes cost together; PSS splits each shared
    page between the processes that map it, so its sum is what they take from the
    machine. Both are reported: RSS because it is what ``ps`` shows."""
    out: dict[int, tuple[str, float, float]] = {}
    for p, rss in process_rss(pid).items():
        try:
            name = Path(f"/proc/{p}/comm").read_text().strip()
            pss = next(
                int(line.split()[1]) / 1024
                for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines()
                if line.startswith("Pss:")
            )
        except (OSError, StopIteration):
            continue
        out[p] = (name, rss, pss)
    return out


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants, in MB (0 when gone)."""
    return sum(process_rss(pid).values())


def pg_bin() -> str | None:
    """The directory of initdb and pg_ctl (Debian keeps them off PATH), or None."""
    found = shutil.which("initdb")
    if found:
        return str(Path(found).parent)
    dirs = sorted(glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return str(Path(dirs[-1]).parent) if dirs else None


class PrivateCluster:
    """A PostgreSQL cluster of our own (initdb, pg_ctl) on a free port under a temporary
    directory, so a test may stop and start it: never the machine's own server.
    As root it runs as the ``postgres`` user (PostgreSQL refuses root)."""

    def __init__(self, bindir: str, port: int) -> None:
        self.bindir, self.port = bindir, port
        self.dir = Path(tempfile.mkdtemp(prefix="uvox-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.dir, "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        res = subprocess.run(
            [*self.as_user, f"{self.bindir}/{tool}", *args], capture_output=True, text=True, timeout=60
        )
        if res.returncode:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{tool} failed: {res.stdout}{res.stderr}{log}")

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", "30", "start")

    def stop(self, mode: str = "immediate") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except RuntimeError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)
