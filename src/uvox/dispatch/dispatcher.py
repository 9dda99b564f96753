"""The dispatcher: claims queued messages, submits them over a link, records what happens.

One asyncio task each for: managing connectors (which binds this worker holds),
claiming and submitting, writing results and receipts in batches, expiring
messages past their validity, ending the messages of test keys on their timer
(``testmode``), and (in ``CallbackSender``) status callbacks. The
links (``link.Link``: SMPP connectors unless the dispatcher is given other ones)
run on their own threads; everything they report comes back to the loop through
``call_soon_threadsafe``, in the order it happened on the wire, so a part's
acceptance is always written before its receipt is matched.

Database calls run in threads (``asyncio.to_thread``) so that inside ``uvox serve``
the dispatcher never stalls the HTTP server sharing its loop. On SQLite the hot
writes (claiming, and writing results and receipts) go to the platform's group-commit
writer instead, the one the API's intake uses: SQLite has one write lock, and a
dispatcher transaction queued beside the intake's shares its COMMIT, where asking
for the lock from another connection meant sleeping in SQLite's busy handler while
the intake kept taking it (py-spy: the dispatcher's threads spent most of their time
waiting in BEGIN IMMEDIATE, and delivery fell behind acceptance).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy.engine import Connection

from uvox import secretbox
from uvox.accounts import idempotency
from uvox.counters import observe_dispatch
from uvox.db.session import write
from uvox.dispatch import claims, expiry, ownership, results, routing, testmode, wake
from uvox.dispatch.callbacks import CallbackSender
from uvox.dispatch.claims import Claimed
from uvox.dispatch.link import Ack, Link, LinkFactory, Part, Tag
from uvox.dispatch.receipts import ReceiptEvent
from uvox.dispatch.results import Applied, MessageOutcome, PartAccepted, Recorder
from uvox.dispatch.smpp_link import SmppLinks
from uvox.platform import Platform
from uvox.smpp.connector import PermanentSubmitError, SubmitError
from uvox.smpp.pdu import Receipt
from uvox.smpp.simulator import SIMULATOR_WARNING
from uvox.sms.encoding import EncodedText
from uvox.sms.encoding import encode as _encode_text

log = logging.getLogger("uvox.dispatch")

P = ParamSpec("P")
T = TypeVar("T")
#: What a link thread reports to the loop: a receipt, or a part's (tag, SMSC id, error).
_Report = ReceiptEvent | tuple[Tag, str | None, Exception | None]
#: How often the expiry round also deletes idempotency keys past their 24 hours.
KEY_SWEEP_SECONDS = 60.0


@dataclass
class _Held:
    spec: routing.ConnectorSpec
    link: Link
    draining: bool = False
    #: Its lock died with the database connection; taken again when the database answers.
    relock: bool = False


@dataclass
class _Inflight:
    claimed: Claimed
    #: None when the connector it was claimed for is neither held nor configured any more.
    spec: routing.ConnectorSpec | None
    sender: str
    pending: int
    errors: list[tuple[bool, str]] = field(default_factory=list)  # (permanent, text)
    started: float = field(default_factory=time.monotonic)

    @property
    def connector(self) -> str:
        return self.spec.name if self.spec else self.claimed.connector


@dataclass
class DispatcherStats:
    claimed: int = 0
    submitted: int = 0
    failed: int = 0
    retried: int = 0
    receipts: int = 0
    unmatched_receipts: int = 0
    expired: int = 0
    finals: dict[str, int] = field(default_factory=dict)
    #: Callbacks queued for test-mode messages.
    test_callbacks: int = 0


class Dispatcher:
    def __init__(
        self,
        platform: Platform,
        *,
        worker_id: str | None = None,
        max_inflight: int = 2000,
        batch: int = 500,
        poll: float = 0.2,
        manage_interval: float = 1.0,
        retry_base: float = 0.5,
        expire_interval: float = 5.0,
        test_interval: float = 0.25,
        callback_backoff: float = 5.0,
        callbacks: bool = True,
        connector_options: dict[str, Any] | None = None,
        links: LinkFactory | None = None,
    ) -> None:
        """``links`` is given by tests of the dispatcher's own contract; otherwise each connector
        is an SMPP link, with ``connector_options`` (timeouts, backoff) the database does not hold."""
        self.platform = platform
        self.engine = platform.engine
        self.settings = platform.settings
        self.worker_id = worker_id or ownership.new_worker_id()
        self.max_inflight = max_inflight
        self.batch = batch
        self.poll = poll
        self.manage_interval = manage_interval
        self.retry_base = retry_base
        self.expire_interval = expire_interval
        self.test_interval = test_interval
        self.stats = DispatcherStats()
        # Opens the sealed text of one-time code SMS and the connectors' bind passwords.
        self._secret = platform.secret
        self.links = links if links is not None else SmppLinks(connector_options, self._secret)
        #: Connectors whose sealed password this instance secret cannot open (logged once).
        self._unopenable: set[tuple[str, str]] = set()
        self.callbacks = CallbackSender(self.engine, base_backoff=callback_backoff) if callbacks else None
        self._own = ownership.make(self.engine, self.worker_id)
        self._held: dict[str, _Held] = {}
        self._specs: dict[str, routing.ConnectorSpec] = {}
        self._table = routing.RouteTable([])
        self._up_elsewhere: set[str] = set()
        self._inflight: dict[int, _Inflight] = {}
        #: Messages whose outcome is queued for the writer but not yet written, and their connector.
        self._unrecorded: dict[int, str] = {}
        self._unmatched: list[ReceiptEvent] = []
        self._recorder = Recorder()
        #: Encoded parts, cached: a campaign sends one text to many numbers.
        self._encoded = functools.lru_cache(maxsize=4096)(_encode_text)
        self._loop: asyncio.AbstractEventLoop | None = None
        # Made again by start(), on its loop.
        self._events: asyncio.Queue[results.Event] = asyncio.Queue()
        self._poke = asyncio.Event()
        self._room = asyncio.Event()
        self._stopping = asyncio.Event()
        self._ready = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._warned_sim = False
        self._listener: wake.Listener | None = None
        self._writing = False
        # Reports from connector threads, in wire order; one loop wake-up drains many.
        self._inbox: collections.deque[_Report] = collections.deque()
        self._inbox_lock = threading.Lock()
        self._inbox_armed = False

    async def _in_write(self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(conn, ...)`` in a write transaction (see the module's docstring for SQLite)."""
        if self.engine.dialect.name == "sqlite":
            got: T = await self.platform.writer.run(lambda conn: fn(conn, *args, **kwargs))
            return got

        def alone() -> T:
            with write(self.engine) as conn:
                return fn(conn, *args, **kwargs)

        return await asyncio.to_thread(alone)

    def _encode(self, text: str, reference: int) -> EncodedText:
        """A single-part text has no concatenation header, so its reference is irrelevant
        and one cache entry serves every recipient."""
        enc = self._encoded(text, 0)
        return enc if enc.segments == 1 else self._encoded(text, reference)

    # ------------------------------------------------------------ life cycle
    async def start(self) -> None:
        self._events = asyncio.Queue()
        self._poke = asyncio.Event()
        self._room = asyncio.Event()
        self._stopping = asyncio.Event()
        self._ready = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._own.open)
        self.platform.queued.subscribe(self.poke)
        if self.engine.dialect.name == "postgresql":
            # Sends queued by other processes and machines wake this one at once.
            self._listener = wake.Listener(self.engine, self.poke)
        self._tasks = [
            asyncio.create_task(self._manage_loop(), name="dispatch-manage"),
            asyncio.create_task(self._claim_loop(), name="dispatch-claim"),
            asyncio.create_task(self._writer_loop(), name="dispatch-writer"),
            asyncio.create_task(self._expire_loop(), name="dispatch-expire"),
            asyncio.create_task(self._test_loop(), name="dispatch-test"),
        ]
        if self.callbacks is not None:
            self._tasks.append(asyncio.create_task(self.callbacks.run(self._stopping), name="dispatch-callbacks"))
        log.info("dispatcher %s started", self.worker_id)

    async def wait_ready(self, timeout: float = 10.0) -> None:
        """Until the first management round has run (connectors chosen and started)."""
        await asyncio.wait_for(self._ready.wait(), timeout)

    async def stop(self, drain: float = 5.0) -> None:
        """Stop claiming, let in-flight submits finish (up to ``drain`` s), write, unbind."""
        self.platform.queued.unsubscribe(self.poke)
        if self._listener is not None:
            await asyncio.to_thread(self._listener.stop)
            self._listener = None
        self._stopping.set()
        self._poke.set()
        # No management round may start a connector after this point.
        for task in self._tasks:
            if task.get_name() == "dispatch-manage":
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        deadline = time.monotonic() + drain
        while self._inflight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for name in list(self._held):
            await self._drop(name, requeue=False)
        # Let the writer flush what the stopped connectors reported.
        deadline = time.monotonic() + 5
        while (not self._events.empty() or self._inflight or self._writing) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await asyncio.to_thread(self._own.close)
        log.info("dispatcher %s stopped", self.worker_id)

    def poke(self) -> None:
        """Wake the claim loop now (thread-safe): intake calls this after queueing."""
        loop, ev = self._loop, self._poke
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(ev.set)
        except RuntimeError:
            pass

    @property
    def held(self) -> dict[str, bool]:
        """Connectors this worker holds, and whether each is bound."""
        return {n: h.link.is_bound for n, h in self._held.items()}

    # ------------------------------------------------------------ connectors
    async def _manage_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._manage_once()
            except Exception:
                log.exception("dispatch: connector management round failed")
            self._ready.set()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.manage_interval)

    async def _manage_once(self) -> None:
        specs, table = await asyncio.to_thread(self._load_routing)
        self._specs, self._table = specs, table
        if routing.SIM_NAME in specs and not self._warned_sim:
            self._warned_sim = True
            log.warning("%s", SIMULATOR_WARNING)
        pg = self.engine.dialect.name == "postgresql"
        if not await asyncio.to_thread(self._own.healthy):
            if not pg:  # SQLite: another dispatcher holds the database's lease
                for name in list(self._held):
                    await self._drop(name, requeue=False, release=False)
                return
            # PostgreSQL: our locks died with their connection (the database restarted, or our
            # link to it broke); the SMPP binds did not. Keep them, claim nothing for
            # them, and take the locks again once the database answers. Stopping
            # them turned every part in flight into "maybe sent", and re-queueing
            # what we had in flight on taking them back sent it again: 2 to 1,867
            # texts twice per 5 s outage in issue 11's trial.
            for name, h in self._held.items():
                if not h.relock:
                    log.warning("dispatch: keeping connector %s bound while its lock is taken again", name)
                h.draining = h.relock = True
            return
        for name, h in list(self._held.items()):
            if not h.relock:
                continue
            if await asyncio.to_thread(self._own.try_acquire, name):
                # What we claimed for it and know nothing of (a claim whose commit
                # reached the database but whose answer was lost with the connection)
                # was never sent: back to the queue. What is in flight here, or
                # answered and waiting for the writer, is recorded by us.
                known = set(self._unrecorded) | {i for i, f in self._inflight.items() if f.connector == name}
                await asyncio.to_thread(claims.requeue_submitting, self.engine, [name], known)
                h.draining = h.relock = False
                log.info("dispatch: connector %s kept through the lost database connection", name)
            else:  # another dispatcher took it meanwhile: it is theirs now
                await self._drop(name, release=False)
        for name, h in list(self._held.items()):
            if specs.get(name) != h.spec:
                await self._drop(name)
        share = len(specs)
        if pg:
            live = await asyncio.to_thread(self._own.live_dispatchers)
            share = ownership.fair_share(len(specs), live)
            # Hand surplus binds over gracefully: stop claiming for them, drain, release.
            active = [n for n, h in self._held.items() if not h.draining]
            for name in sorted(active)[share:]:
                self._held[name].draining = True
                log.info("dispatch: handing connector %s over to another worker", name)
            for name, h in list(self._held.items()):
                # Handed over only once what it sent is recorded: the next owner re-queues
                # whatever it finds half-way, and that must not be ours.
                if (
                    h.draining
                    and not h.relock
                    and not any(i.connector == name for i in self._inflight.values())
                    and name not in self._unrecorded.values()
                ):
                    await self._drop(name)
        # Take free connectors up to our share; which ones first differs per worker.
        wanted = sorted((n for n in specs if n not in self._held), key=lambda n: ownership._key(n + self.worker_id))
        owners = await asyncio.to_thread(ownership.read_owners, self.engine) if pg and wanted else {}
        for name in wanted:
            if len([h for h in self._held.values() if not h.draining]) >= share:
                break
            owner = owners.get(name)
            if owner and owner != self.worker_id and await asyncio.to_thread(self._own.alive, owner):
                # Bound a moment ago by a dispatcher that is connected: it lost its lock
                # with the database and is taking it back; its messages in flight are
                # its own to record (re-queueing them here would send them twice).
                continue
            if await asyncio.to_thread(self._own.try_acquire, name):
                if pg:  # what a previous owner left half-way; ours (if it was ours) we record
                    await asyncio.to_thread(claims.requeue_submitting, self.engine, [name], set(self._unrecorded))
                self._start_connector(specs[name])
        await asyncio.to_thread(ownership.publish, self.engine, self.held, self.worker_id)
        if pg:
            self._up_elsewhere = await asyncio.to_thread(ownership.read_up, self.engine)
        self._poke.set()

    def _load_routing(self) -> tuple[dict[str, routing.ConnectorSpec], routing.RouteTable]:
        from uvox.db.session import read

        with read(self.engine) as conn:
            specs, table = routing.load(conn, self.settings)
        return {n: s for n, s in specs.items() if self._openable(s)}, table

    def _openable(self, spec: routing.ConnectorSpec) -> bool:
        """False (and an error logged once) for a connector whose password was sealed
        under another instance secret: binding it would only be refused by the SMSC,
        and holding its lock would keep it from a dispatcher that has the right key.
        The opened value is dropped at once; the link opens it again to bind."""
        if not spec.sealed_password:
            return True
        try:
            secretbox.open_(self._secret, spec.sealed_password, secretbox.SMPP_PASSWORD)
            return True
        except Exception:
            if (spec.name, spec.sealed_password) not in self._unopenable:
                self._unopenable.add((spec.name, spec.sealed_password))
                log.error(
                    "dispatch: connector %s's password cannot be opened with this instance's secret "
                    "(UVOX_SECRET_KEY changed without `uvox db reseal`?): not binding it",
                    spec.name,
                )
            return False

    def _start_connector(self, spec: routing.ConnectorSpec) -> None:
        if self._stopping.is_set():
            return
        link = self.links(spec, functools.partial(self._on_receipt, spec.name), lambda up: self.poke())
        self._held[spec.name] = _Held(spec, link)
        link.start()
        log.info(
            "dispatch: holding connector %s (%s:%s)%s",
            spec.name,
            spec.host,
            spec.port,
            " [SIMULATOR]" if spec.simulated else "",
        )

    async def _drop(self, name: str, requeue: bool = True, release: bool = True) -> None:
        h = self._held.pop(name, None)
        if h is None:
            return
        await asyncio.to_thread(h.link.stop)
        if release:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._own.release, name)
            # No longer "bound by us": whoever takes it need not wait for us.
            with contextlib.suppress(Exception):
                await asyncio.to_thread(ownership.publish, self.engine, {name: False}, self.worker_id)
        log.info("dispatch: released connector %s", name)

    def _post(self, item: _Report) -> None:
        """From any thread: queue a report for the loop, waking it only if it is not already due."""
        with self._inbox_lock:
            self._inbox.append(item)
            if self._inbox_armed:
                return
            self._inbox_armed = True
        loop = self._loop
        assert loop is not None, "links report only after start()"
        try:
            loop.call_soon_threadsafe(self._drain_inbox)
        except RuntimeError:
            pass  # loop gone: receipts stay unacknowledged, so the SMSC delivers them again

    def _drain_inbox(self) -> None:
        with self._inbox_lock:
            items = list(self._inbox)
            self._inbox.clear()
            self._inbox_armed = False
        for item in items:
            if isinstance(item, ReceiptEvent):
                self._events.put_nowait(item)
            else:
                self._part_done(*item)

    def _on_receipt(self, connector: str, receipt: Receipt, ack: Ack) -> None:
        """Reader thread: hand the receipt to the loop; it is acknowledged once stored."""
        self._post(ReceiptEvent(connector, receipt, ack, seen=time.monotonic()))

    # ------------------------------------------------------------ claiming and submitting
    def _bound_mine(self) -> set[str]:
        return {n for n, h in self._held.items() if not h.draining and h.link.is_bound}

    async def _claim_loop(self) -> None:
        while not self._stopping.is_set():
            mine = self._bound_mine()
            room = self.max_inflight - len(self._inflight)
            if not mine or room < min(50, self.max_inflight):
                await self._sleep(self._poke if not mine else self._room, 0.5)
                continue
            up = mine | (self._up_elsewhere - set(self._held))
            table = self._table
            try:
                claimed = await self._in_write(
                    claims.claim_in,
                    limit=min(room, self.batch),
                    mine=mine,
                    up=up,
                    choose=functools.partial(table.choose, up=up, mine=mine),
                    secret=self._secret,
                )
            except Exception:
                log.exception("dispatch: claim failed")
                await asyncio.sleep(1)
                continue
            self.stats.claimed += len(claimed)
            # One hand-over per connector for the whole claim: its writer thread is
            # woken once, not once per part.
            parts: dict[str, list[Part]] = {}
            for c in claimed:
                self._submit(c, parts)
            for name, items in parts.items():
                self._held[name].link.submit_batch(items, self._part_result)
            if len(claimed) < min(room, self.batch):
                await self._sleep(self._poke, self.poll)

    async def _sleep(self, event: asyncio.Event, timeout: float) -> None:
        event.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    def _submit(self, c: Claimed, parts: dict[str, list[Part]]) -> None:
        """Track a claimed message and add its parts to ``parts[connector]`` for submitting."""
        h = self._held.get(c.connector)
        spec = h.spec if h else self._specs.get(c.connector)
        enc = self._encode(c.text, reference=c.id & 0xFF)
        sender = self._sender_for(c.sender, spec)
        todo = [(i, body) for i, body in enumerate(enc.parts, start=1) if i not in c.done_parts]
        inf = _Inflight(c, spec, sender, pending=len(todo))
        self._inflight[c.id] = inf
        if h is None or not todo:
            if h is None:
                inf.errors.append((False, f"connector {c.connector} is no longer held here"))
            inf.pending = 0
            self._finish(inf)
            return
        out = parts.setdefault(c.connector, [])
        for part_no, body in todo:
            out.append(Part((c.id, part_no), sender, c.recipient, body, enc.data_coding, enc.esm_class))

    def _sender_for(self, sender: str, spec: routing.ConnectorSpec | None) -> str:
        sender = sender or self.settings.generic_sender
        alpha = not sender.lstrip("+").isdigit()
        if alpha and spec is not None and not spec.accepts_alphanumeric:
            return spec.generic_sender or self.settings.generic_sender
        return sender

    def _part_result(self, tag: tuple[int, int], smsc_id: str | None, exc: Exception | None) -> None:
        # Runs on the connector's reader thread (or inline when it failed at once).
        self._post((tag, smsc_id, exc))

    def _part_done(self, tag: tuple[int, int], smsc_id: str | None, exc: Exception | None) -> None:
        message_id, part_no = tag
        inf = self._inflight.get(message_id)
        if inf is None:
            return
        if exc is None:
            self._events.put_nowait(PartAccepted(message_id, part_no, inf.connector, smsc_id))
        else:
            inf.errors.append((isinstance(exc, PermanentSubmitError), str(exc)))
            if not isinstance(exc, SubmitError):
                log.error("dispatch: unexpected submit error for message %s: %r", message_id, exc)
        inf.pending -= 1
        if inf.pending <= 0:
            self._finish(inf)

    def _finish(self, inf: _Inflight) -> None:
        c = inf.claimed
        self._inflight.pop(c.id, None)
        name = inf.connector
        simulated = bool(inf.spec and inf.spec.simulated)
        if any(p for p, _ in inf.errors):
            err = next(e for p, e in inf.errors if p)
            out = MessageOutcome(c.id, "failed", name, inf.sender, simulated, err)
            self.stats.failed += 1
        elif inf.errors:
            delay = min(self.retry_base * 2 ** max(0, c.attempts - 1), 60.0)
            out = MessageOutcome(c.id, "retry", name, error=inf.errors[0][1], retry_in=delay)
            self.stats.retried += 1
        else:
            out = MessageOutcome(c.id, "submitted", name, inf.sender, simulated, retried=c.attempts > 1)
            self.stats.submitted += 1
        observe_dispatch(name, out.outcome, time.monotonic() - inf.started)
        self._unrecorded[c.id] = name
        self._events.put_nowait(out)
        self._room.set()

    # ------------------------------------------------------------ writing
    async def _writer_loop(self) -> None:
        while True:
            timeout = 0.25 if self._unmatched else None
            batch: list[results.Event] = []
            try:
                batch.append(await asyncio.wait_for(self._events.get(), timeout))
            except TimeoutError:
                pass
            while len(batch) < 5000:
                try:
                    batch.append(self._events.get_nowait())
                except asyncio.QueueEmpty:
                    break
            retry, self._unmatched = self._unmatched, []
            batch.extend(retry)
            if not batch:
                continue
            self._writing = True
            try:
                res = await self._apply(batch)
            finally:
                self._writing = False
            for ev in batch:
                if isinstance(ev, MessageOutcome):
                    self._unrecorded.pop(ev.message_id, None)
            for ev in res.matched:
                self.stats.receipts += 1
                ev.ack(True)
            now = time.monotonic()
            for ev in res.unmatched:
                if now - ev.seen > 30:
                    self.stats.unmatched_receipts += 1
                    log.warning(
                        "dispatch: receipt for unknown SMSC id %s on %s dropped", ev.receipt.message_id, ev.connector
                    )
                    ev.ack(True)
                else:
                    ev.tries += 1
                    self._unmatched.append(ev)
            for k, v in res.finals.items():
                self.stats.finals[k] = self.stats.finals.get(k, 0) + v
            if res.callbacks and self.callbacks is not None:
                self.callbacks.wake()

    def _db_answers(self) -> bool:
        import sqlalchemy as sa

        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            return True
        except Exception:
            return False

    async def _apply(self, batch: list[results.Event]) -> Applied:
        """Write a batch; retry while the database is away; isolate an event that cannot be written.

        A database outage must not lose anything, so a failing batch is retried. If it
        keeps failing while the database answers, one event is the cause: the batch is
        then written one event at a time and the culprit logged and skipped (a receipt
        stays unacknowledged, so the SMSC sends it again).
        """
        failures = 0
        while True:
            try:
                return await self._in_write(self._recorder.apply_in, batch)
            except Exception:
                failures += 1
                log.exception("dispatch: writing %d events failed (%d); retrying", len(batch), failures)
                await asyncio.sleep(min(failures, 5))
            if failures >= 3 and len(batch) > 1 and await asyncio.to_thread(self._db_answers):
                break
        total = Applied([], [], 0, {})
        for ev in batch:
            try:
                r = await self._in_write(self._recorder.apply_in, [ev])
            except Exception:
                log.exception("dispatch: event %r cannot be written; skipped", ev)
                continue
            total.unmatched += r.unmatched
            total.matched += r.matched
            total.callbacks += r.callbacks
            for k, v in r.finals.items():
                total.finals[k] = total.finals.get(k, 0) + v
        return total

    # ------------------------------------------------------------ validity
    async def _expire_loop(self) -> None:
        swept = 0.0
        while not self._stopping.is_set():
            try:
                n = await asyncio.to_thread(expiry.expire, self.engine)
                self.stats.expired += n
                if n and self.callbacks is not None:
                    self.callbacks.wake()
            except Exception:
                log.exception("dispatch: expiry round failed")
            if time.monotonic() - swept >= KEY_SWEEP_SECONDS:
                swept = time.monotonic()
                try:  # idempotency keys past their 24 hours: housekeeping, not correctness
                    await asyncio.to_thread(idempotency.sweep, self.engine)
                except Exception:
                    log.exception("dispatch: sweeping expired idempotency keys failed")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.expire_interval)

    # ------------------------------------------------------------ test mode
    async def _test_loop(self) -> None:
        """End test keys' messages on their timer (dispatch/testmode.py); a read first,
        so a platform without test traffic never takes a write transaction for it."""
        while not self._stopping.is_set():
            try:
                if await asyncio.to_thread(testmode.anything_due, self.engine):
                    n = await self._in_write(testmode.advance)
                    self.stats.test_callbacks += n
                    if n and self.callbacks is not None:
                        self.callbacks.wake()
            except Exception:
                log.exception("dispatch: test-mode round failed")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.test_interval)
