"""An SMPP v3.4 client connector (ESME side) built on smpplib.

smpplib supplies the socket handling, the bind/unbind exchange and the encoding of
every PDU but the four hot ones (``uvox.smpp.wire`` says why). It is a blocking,
one-request-at-a-time client, so what a carrier link needs on top is ours:

* a reader thread that answers enquire_link, sends its own when the line is quiet,
  and matches submit_sm_resp to requests by sequence number;
* a writer thread that keeps up to ``window`` submit_sm outstanding and spaces them
  by a token bucket (``tps``);
* ESME_RTHROTTLED / ESME_RMSGQFUL: pause the whole link with growing backoff and
  resend the same request; any other error fails it for good;
* reconnect, failing what was in flight (the caller decides: those may or may not
  have reached the SMSC): every ``unreachable_retry`` (0.5 s) while the SMSC's port
  refuses connections, so an SMSC that comes back is bound within a second; with
  exponential backoff up to ``reconnect_max`` when it listens but refuses the bind or
  drops the session at once;
* deliver_sm receipts handed to a callback that acknowledges them when it has
  stored them (so an SMSC redelivers what we never stored).

Results come back as ``concurrent.futures.Future``; ``submit_async`` wraps them
for asyncio. ``submit_batch`` queues many at once and reports each result to a
callback instead: a Future (a Condition and its lock each) per part was a visible
share of the dispatcher's CPU at thousands of parts a second.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import smpplib.client
import smpplib.exceptions
from smpplib import consts

from uvox.smpp import pdu as P
from uvox.smpp import wire

log = logging.getLogger("uvox.smpp.connector")


class SubmitError(Exception):
    """submit_sm did not get a message id."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class PermanentSubmitError(SubmitError):
    """The SMSC refused the message for good: it never took it (refund it)."""


class TransientSubmitError(SubmitError):
    """Try again later or elsewhere.

    ``maybe_sent`` is True when the submit_sm went out and no answer came back
    (link lost, response timeout): the SMSC may have accepted it.
    """

    def __init__(self, message: str, status: int | None = None, maybe_sent: bool = False) -> None:
        super().__init__(message, status)
        self.maybe_sent = maybe_sent


class NotConnected(TransientSubmitError):
    """The connector has no bound session: route the message elsewhere or wait."""


@dataclass
class ConnectorConfig:
    host: str
    port: int
    system_id: str
    password: str = field(default="", repr=False)  # never in a log line
    system_type: str = ""
    name: str = "smpp"
    #: transceiver; transmitter (submits only); receiver (receipts only: pairs with a transmitter)
    bind_mode: str = "transceiver"
    window: int = 64
    tps: float = 0.0  # 0: unlimited
    enquire_link_interval: float = 30.0
    response_timeout: float = 30.0
    connect_timeout: float = 10.0
    reconnect_min: float = 0.5
    #: Backoff cap after a refused bind or a session the SMSC dropped at once: an SMSC
    #: that listens but will not have us is not hammered.
    reconnect_max: float = 30.0
    #: While nothing listens on the SMSC's port (connection refused) the connector
    #: tries again this often, whatever the backoff: a refused TCP connect costs the
    #: SMSC nothing, and an SMSC that comes back is bound within this much.
    unreachable_retry: float = 0.5
    #: A session that lasted this long resets the reconnect backoff.
    stable_after: float = 10.0
    throttle_backoff_min: float = 0.1
    throttle_backoff_max: float = 5.0
    max_throttle_retries: int = 30
    registered_delivery: int = 1


class _Unreachable(Exception):
    """Nothing listens on the SMSC's port (TCP connection refused)."""


#: ``on_done(tag, message_id, error)`` of :meth:`SmppConnector.submit_batch`: an SMSC
#: message id, or a SubmitError.
SubmitDone = Callable[[Any, str | None, Exception | None], None]


class Submittable(Protocol):
    """One item of :meth:`SmppConnector.submit_batch` (``uvox.dispatch.link.Part`` is one)."""

    @property
    def tag(self) -> Any: ...
    @property
    def sender(self) -> str: ...
    @property
    def recipient(self) -> str: ...
    @property
    def body(self) -> bytes: ...
    @property
    def data_coding(self) -> int: ...
    @property
    def esm_class(self) -> int: ...


class _Request:
    """One submit_sm: its result goes to ``future``, or to ``on_done(tag, message_id, error)``."""

    __slots__ = ("fields", "future", "on_done", "tag", "attempts", "sent_at")

    def __init__(
        self,
        fields: dict[str, Any],
        future: concurrent.futures.Future[str] | None = None,
        on_done: SubmitDone | None = None,
        tag: Any = None,
    ) -> None:
        self.fields, self.future, self.on_done, self.tag = fields, future, on_done, tag
        self.attempts = 0
        self.sent_at = 0.0

    def settle(self, result: str | None = None, error: Exception | None = None) -> None:
        """Report the outcome once; later calls do nothing."""
        if self.future is not None:
            if self.future.done():
                return
            if error is None:
                self.future.set_result(cast(str, result))  # without an error, the SMSC's message id
            else:
                self.future.set_exception(error)
            return
        on_done, self.on_done = self.on_done, None
        if on_done is None:
            return
        try:
            on_done(self.tag, result, error)
        except Exception:
            log.exception("submit result callback failed")


Ack = Callable[[bool], None]
ReceiptHandler = Callable[[P.Receipt, Ack], None]


@dataclass
class ConnectorStats:
    binds: int = 0
    bind_failures: int = 0
    submitted: int = 0
    accepted: int = 0
    throttled: int = 0
    failed: int = 0
    timeouts: int = 0
    receipts: int = 0
    disconnects: int = 0
    last_error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class _TokenBucket:
    """At most ``rate`` sends a second, with a burst of a tenth of a second."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate * 0.1)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def delay(self) -> float:
        """Take a token, or say how long to wait for one."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class SmppConnector:
    def __init__(
        self,
        config: ConnectorConfig,
        on_receipt: ReceiptHandler | None = None,
        on_bound: Callable[[bool], None] | None = None,
    ) -> None:
        self.config = config
        self.on_receipt = on_receipt
        self.on_bound = on_bound
        self.stats = ConnectorStats()
        self._seq = P.SequenceGenerator()
        self._cv = threading.Condition()
        self._send_lock = threading.Lock()
        self._queue: collections.deque[_Request] = collections.deque()
        self._inflight: dict[int, _Request] = {}
        #: deliver_sm_resp bytes waiting for the writer thread, which sends them with
        #: the next submit_sm in one write rather than one send call per receipt.
        self._acks: list[bytes] = []
        self._client: smpplib.client.Client | None = None
        self._bound = False
        self._generation = 0  # bumps on every new session, so stale acks are dropped
        self._stopping = threading.Event()
        self._pause_until = 0.0
        self._throttle_backoff = config.throttle_backoff_min
        self._bucket = _TokenBucket(config.tps)
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------ public API
    @property
    def name(self) -> str:
        return self.config.name

    @property
    def is_bound(self) -> bool:
        return self._bound

    @property
    def outstanding(self) -> int:
        with self._cv:
            return len(self._inflight) + len(self._queue)

    def start(self) -> SmppConnector:
        self._stopping.clear()
        for target, nm in ((self._session_loop, "session"), (self._writer_loop, "writer")):
            t = threading.Thread(target=target, name=f"smpp-{self.name}-{nm}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Unbind politely, fail whatever has not been answered, join the threads."""
        self._stopping.set()
        client = self._client
        if client is not None and self._bound:
            with self._cv:
                acks, self._acks = self._acks, []
            try:
                with self._send_lock:
                    if acks:
                        client._socket.sendall(b"".join(acks))
                    client.send_pdu(P.make("unbind", self._seq))
            except Exception:  # the link may already be gone
                pass
        deadline = time.monotonic() + 1.0
        while self._inflight and time.monotonic() < deadline:
            time.sleep(0.02)
        self._teardown(NotConnected("connector stopped"), close=True)
        with self._cv:
            self._cv.notify_all()
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()

    def wait_bound(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cv:
            while not self._bound:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(left)
        return True

    def submit(
        self,
        *,
        source_addr: str,
        destination_addr: str,
        short_message: bytes,
        data_coding: int = 0,
        esm_class: int = 0,
        source_addr_ton: int | None = None,
        source_addr_npi: int | None = None,
        dest_addr_ton: int = 1,
        dest_addr_npi: int = 1,
        registered_delivery: int | None = None,
        **extra: Any,
    ) -> concurrent.futures.Future[str]:
        """Queue one submit_sm; the future gives the SMSC message id or raises SubmitError."""
        fields = self._fields(
            source_addr,
            destination_addr,
            short_message,
            data_coding,
            esm_class,
            source_addr_ton,
            source_addr_npi,
            dest_addr_ton,
            dest_addr_npi,
            registered_delivery,
            extra,
        )
        fut: concurrent.futures.Future[str] = concurrent.futures.Future()
        with self._cv:
            if not self._bound or self._stopping.is_set():
                fut.set_exception(NotConnected(f"connector {self.name} is not bound"))
                return fut
            self._queue.append(_Request(fields, fut))
            self._cv.notify_all()
        return fut

    def submit_batch(self, items: Iterable[Submittable], on_done: SubmitDone) -> None:
        """Queue several submit_sm; ``on_done(tag, message_id, error)`` reports each.

        ``items`` have a ``tag``, ``sender``, ``recipient``, ``body``, ``data_coding`` and
        ``esm_class`` (``uvox.dispatch.link.Part``), the rest as :meth:`submit`'s defaults.
        ``on_done`` is called once per item from the connector's threads (or at once,
        here, when the connector is not bound), with either an SMSC message id or a
        SubmitError.
        """
        reqs = [
            _Request(
                self._fields(p.sender, p.recipient, p.body, p.data_coding, p.esm_class, None, None, 1, 1, None, {}),
                on_done=on_done,
                tag=p.tag,
            )
            for p in items
        ]
        with self._cv:
            bound = self._bound and not self._stopping.is_set()
            if bound:
                self._queue.extend(reqs)
                self._cv.notify_all()
        if not bound:
            for r in reqs:
                r.settle(error=NotConnected(f"connector {self.name} is not bound"))

    def _fields(
        self,
        source_addr: str,
        destination_addr: str,
        short_message: bytes,
        data_coding: int,
        esm_class: int,
        source_addr_ton: int | None,
        source_addr_npi: int | None,
        dest_addr_ton: int,
        dest_addr_npi: int,
        registered_delivery: int | None,
        extra: dict[str, Any],
    ) -> dict[str, Any]:
        if source_addr_ton is None:
            # Alphanumeric senders are TON 5 (alphanumeric), numbers international.
            alpha = not source_addr.lstrip("+").isdigit()
            source_addr_ton = 5 if alpha else 1
            source_addr_npi = 0 if alpha else 1
        fields = dict(
            service_type="",
            source_addr_ton=source_addr_ton,
            source_addr_npi=source_addr_npi or 0,
            source_addr=source_addr.lstrip("+") if source_addr_ton == 1 else source_addr,
            dest_addr_ton=dest_addr_ton,
            dest_addr_npi=dest_addr_npi,
            destination_addr=destination_addr.lstrip("+"),
            esm_class=esm_class,
            data_coding=data_coding,
            short_message=short_message,
            registered_delivery=self.config.registered_delivery if registered_delivery is None else registered_delivery,
            **extra,
        )
        return fields

    async def submit_async(self, **kwargs: Any) -> str:
        return await asyncio.wrap_future(self.submit(**kwargs))

    # ------------------------------------------------------------ session thread
    def _session_loop(self) -> None:
        backoff = self.config.reconnect_min
        unreachable_since = None
        while not self._stopping.is_set():
            client = None
            try:
                client = self._connect_and_bind()
            except _Unreachable as e:
                # Nothing listens (an SMSC restarting, a link being moved): try again
                # soon, log once per outage rather than every half second.
                self.stats.bind_failures += 1
                self.stats.last_error = f"connect: {e.__cause__ or e!r}"
                if unreachable_since is None:
                    unreachable_since = time.monotonic()
                    log.warning(
                        "smpp %s: nothing answers on %s:%s (%r); trying every %.1fs",
                        self.name,
                        self.config.host,
                        self.config.port,
                        e.__cause__ or e,
                        self.config.unreachable_retry,
                    )
                self._stopping.wait(min(backoff, self.config.unreachable_retry))
                continue
            except Exception as e:  # timeout, bind refused: "try later", backing off
                self.stats.bind_failures += 1
                self.stats.last_error = f"bind: {e!r}"
                log.warning(
                    "smpp %s: cannot bind to %s:%s (%r); retry in %.1fs",
                    self.name,
                    self.config.host,
                    self.config.port,
                    e,
                    backoff,
                )
                if client is not None:
                    self._close_client(client)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, self.config.reconnect_max)
                continue
            if unreachable_since is not None:
                log.info(
                    "smpp %s: %s:%s answers again after %.1fs",
                    self.name,
                    self.config.host,
                    self.config.port,
                    time.monotonic() - unreachable_since,
                )
                unreachable_since = None
            bound_at = time.monotonic()
            self.stats.binds += 1
            with self._cv:
                self._client = client
                self._bound = True
                self._generation += 1
                self._cv.notify_all()
            log.info(
                "smpp %s: bound as %s to %s:%s", self.name, self.config.bind_mode, self.config.host, self.config.port
            )
            self._notify_bound(True)
            try:
                self._read_loop(client)
            except Exception as e:
                self.stats.last_error = f"link: {e!r}"
                if not self._stopping.is_set():
                    log.warning("smpp %s: link lost (%r)", self.name, e)
            self.stats.disconnects += 1
            self._teardown(TransientSubmitError(f"link to {self.name} lost", maybe_sent=True))
            self._notify_bound(False)
            if time.monotonic() - bound_at >= self.config.stable_after:
                backoff = self.config.reconnect_min
            if not self._stopping.is_set():
                self._stopping.wait(backoff)
            # An SMSC that accepts the bind and then drops us at once must not be
            # hammered: the backoff keeps growing until a session lasts.
            backoff = min(backoff * 2, self.config.reconnect_max)

    def _notify_bound(self, bound: bool) -> None:
        if self.on_bound is not None:
            try:
                self.on_bound(bound)
            except Exception:
                log.exception("smpp %s: on_bound callback failed", self.name)

    def _connect_and_bind(self) -> smpplib.client.Client:
        c = self.config
        client = smpplib.client.Client(
            c.host,
            c.port,
            timeout=c.connect_timeout,
            sequence_generator=self._seq,
            allow_unknown_opt_params=True,
            logger_name=f"uvox.smpp.wire.{c.name}",
        )
        try:
            client.connect()
        except Exception as e:
            self._close_client(client)  # smpplib keeps the failed socket otherwise
            refused = isinstance(e, ConnectionRefusedError) or (
                isinstance(e, smpplib.exceptions.ConnectionError) and isinstance(e.__context__, ConnectionRefusedError)
            )
            if refused:
                raise _Unreachable(f"{c.host}:{c.port} refused the connection") from e.__context__ or e
            raise
        bind = {"transmitter": client.bind_transmitter, "receiver": client.bind_receiver}.get(
            c.bind_mode, client.bind_transceiver
        )
        try:
            bind(system_id=c.system_id, password=c.password, system_type=c.system_type)
        except Exception:
            self._close_client(client)
            raise
        client._socket.settimeout(max(c.response_timeout, c.enquire_link_interval))
        return client

    @staticmethod
    def _close_client(client: smpplib.client.Client) -> None:
        try:
            if client._socket is not None:
                client._socket.close()
                client._socket = None
            client.state = consts.SMPP_CLIENT_STATE_CLOSED
        except Exception:
            pass

    def _teardown(self, error: TransientSubmitError, close: bool = False) -> None:
        """Forget the session: fail in-flight requests (maybe sent) and queued ones (not sent)."""
        with self._cv:
            client, self._client = self._client, None
            self._bound = False
            inflight = list(self._inflight.values())
            self._inflight.clear()
            self._acks.clear()  # for a dead session: the SMSC delivers those receipts again
            queued = list(self._queue)
            self._queue.clear()
            self._cv.notify_all()
        if client is not None:
            self._close_client(client)
        for r in inflight:
            r.settle(error=TransientSubmitError(str(error), maybe_sent=True))
        for r in queued:
            r.settle(error=NotConnected(str(error)))

    def _read_loop(self, client: smpplib.client.Client) -> None:
        c = self.config
        sock = client._socket
        framer = wire.Framer()
        last_rx = time.monotonic()
        enquire_sent = 0.0
        last_sweep = time.monotonic()
        while not self._stopping.is_set():
            readable, _, _ = select.select([sock], [], [], 0.5)
            now = time.monotonic()
            if now - last_sweep >= 1.0:
                self._expire_inflight(now)
                last_sweep = now
            if not readable:
                if enquire_sent and now - enquire_sent > c.response_timeout:
                    raise ConnectionError("no answer to enquire_link")
                if not enquire_sent and now - last_rx >= c.enquire_link_interval:
                    self._send(client, P.make("enquire_link", self._seq))
                    enquire_sent = now
                continue
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("closed by the SMSC")
            last_rx = time.monotonic()
            enquire_sent = 0.0
            for raw in framer.feed(data):
                if self._on_pdu(client, raw):
                    return

    def _on_pdu(self, client: smpplib.client.Client, raw: bytes) -> bool:
        """Handle one PDU; True when the session ended cleanly (unbind_resp)."""
        _length, command_id, status, sequence = wire.header(raw)
        if command_id == wire.SUBMIT_SM_RESP:
            self._on_submit_resp(sequence, status, wire.submit_sm_resp_id(raw) if not status else "")
            return False
        if command_id == wire.DELIVER_SM:
            try:
                p = wire.decode_sm(raw)
            except (ValueError, IndexError):
                p = P.parse(raw, self._seq)  # let smpplib try an odd layout
            if p is not None:
                self._on_deliver(client, p)
            return False
        try:
            p = P.parse(raw, self._seq)
        except Exception as e:
            log.warning("smpp %s: unreadable PDU 0x%08X ignored (%r)", self.name, command_id, e)
            return False
        if p is None:
            log.warning("smpp %s: unknown PDU 0x%08X ignored", self.name, command_id)
            return False
        cmd = p.command
        if cmd == "enquire_link":
            self._send(client, P.make("enquire_link_resp", self._seq, sequence=p.sequence))
        elif cmd == "unbind":
            self._send(client, P.make("unbind_resp", self._seq, sequence=p.sequence))
            raise ConnectionError("SMSC unbound")
        elif cmd == "unbind_resp":
            return True
        elif cmd == "generic_nack":
            self._on_submit_resp(p.sequence, p.status or 0, "", nack=True)
        elif cmd == "enquire_link_resp":
            pass
        elif cmd == "data_sm":
            # Some SMSCs send receipts as data_sm (TLVs, text in message_payload);
            # smpplib parses it, and it is answered with data_sm_resp.
            self._on_deliver(client, p, wire.DATA_SM_RESP)
        elif p.is_request():
            self._send(
                client, P.make("generic_nack", self._seq, sequence=p.sequence, status=consts.SMPP_ESME_RINVCMDID)
            )
        return False

    def _send(self, client: smpplib.client.Client, p: Any) -> None:
        with self._send_lock:
            client.send_pdu(p)

    def _expire_inflight(self, now: float) -> None:
        limit = self.config.response_timeout
        expired = []
        with self._cv:
            for seq, r in list(self._inflight.items()):
                if now - r.sent_at > limit:
                    del self._inflight[seq]
                    expired.append(r)
            if expired:
                self._cv.notify_all()
        for r in expired:
            self.stats.timeouts += 1
            r.settle(error=TransientSubmitError("no submit_sm_resp within %.0fs" % limit, maybe_sent=True))

    def _on_submit_resp(self, sequence: int, status: int, message_id: str, nack: bool = False) -> None:
        with self._cv:
            r = self._inflight.pop(sequence, None)
            if r is None:
                return  # answered after its timeout: already failed as maybe-sent
            if status in P.THROTTLING_STATUSES and r.attempts <= self.config.max_throttle_retries:
                self.stats.throttled += 1
                now = time.monotonic()
                if self._pause_until < now:
                    self._pause_until = now + self._throttle_backoff
                    self._throttle_backoff = min(self._throttle_backoff * 2, self.config.throttle_backoff_max)
                self._queue.appendleft(r)  # resend it first, in order
                self._cv.notify_all()
                return
            if status == 0:
                self._throttle_backoff = self.config.throttle_backoff_min
            self._cv.notify_all()
        if status == 0:
            self.stats.accepted += 1
            r.settle(message_id)
        elif status in P.THROTTLING_STATUSES:
            self.stats.failed += 1
            r.settle(
                error=TransientSubmitError(
                    f"still throttled after {r.attempts} attempts: {P.status_name(status)}", status
                )
            )
        else:
            self.stats.failed += 1
            how = "answered submit_sm with generic_nack" if nack else "refused submit_sm"
            error = PermanentSubmitError if status not in P.TEMPORARY_STATUSES else TransientSubmitError
            r.settle(error=error(f"SMSC {how}: {P.status_name(status)} (0x{status:08X})", status))

    def _on_deliver(self, client: smpplib.client.Client, p: Any, resp_id: int = wire.DELIVER_SM_RESP) -> None:
        generation = self._generation
        sequence = p.sequence
        done: list[bool] = []  # a flag; one ack per receipt (cheaper than an Event at thousands a second)

        def ack(ok: bool = True) -> None:
            if done:
                return
            done.append(True)
            resp = wire.encode_resp(resp_id, sequence, 0 if ok else consts.SMPP_ESME_RX_T_APPN)
            with self._cv:
                if self._client is not client or self._generation != generation:
                    return  # the SMSC will deliver it again on the next bind
                self._acks.append(resp)
                if len(self._acks) == 1:
                    self._cv.notify_all()

        receipt = P.parse_receipt(p)
        if receipt is None or self.on_receipt is None:
            if receipt is None:
                log.info("smpp %s: mobile-originated message from %s ignored", self.name, P.text(p.source_addr))
            ack(True)
            return
        self.stats.receipts += 1
        try:
            self.on_receipt(receipt, ack)
        except Exception:
            log.exception("smpp %s: receipt handler failed", self.name)
            ack(False)

    # ------------------------------------------------------------ writer thread
    def _can_send(self, window: int) -> bool:
        return (
            self._bound and bool(self._queue) and len(self._inflight) < window and self._pause_until <= time.monotonic()
        )

    def _writer_loop(self) -> None:
        window = max(1, self.config.window)
        while not self._stopping.is_set():
            with self._cv:
                while not self._stopping.is_set() and not self._acks and not self._can_send(window):
                    wait = None
                    if self._pause_until > time.monotonic():
                        wait = self._pause_until - time.monotonic()
                    self._cv.wait(wait if wait is not None else 1.0)
                if self._stopping.is_set():
                    return
                client = self._client
                chunks, self._acks = self._acks, []
                n = 0
                delay = self._bucket.delay() if self._can_send(window) else 0.0
                if delay <= 0:
                    while self._queue and len(self._inflight) < window and self._can_send(window):
                        if n and self._bucket.delay() > 0:
                            break
                        r = self._queue.popleft()
                        r.attempts += 1
                        chunks.append(self._encode_submit(r))
                        n += 1
            if chunks and client is not None:
                try:
                    with self._send_lock:
                        client._socket.sendall(b"".join(chunks))
                    self.stats.submitted += n
                except Exception as e:
                    # The reader notices the dead link and fails everything in flight.
                    self.stats.last_error = f"send: {e!r}"
                    log.warning("smpp %s: send failed (%r)", self.name, e)
                    try:
                        client._socket.shutdown(socket.SHUT_RDWR)
                    except Exception:
                        pass
                    time.sleep(0.05)
            if delay > 0:
                time.sleep(delay)

    def _encode_submit(self, r: _Request) -> bytes:
        """Encode and register as in flight (caller holds ``_cv``)."""
        if r.fields.keys() <= wire.SUBMIT_FIELDS:
            sequence = self._seq.next_sequence()
            data = wire.encode_submit_sm(sequence, r.fields)
        else:
            p = P.make("submit_sm", self._seq, **r.fields)
            sequence, data = p.sequence, p.generate()
        r.sent_at = time.monotonic()
        self._inflight[sequence] = r
        return data
