"""The SMSC simulator: a real SMPP v3.4 server for fresh installs, tests and benchmarks.

It speaks SMPP over TCP like a carrier's SMSC (bind, enquire_link, submit_sm,
deliver_sm receipts, unbind) so that the platform's real client code path is the
one exercised. PDUs are built and parsed by smpplib (submit_sm, its answer and the receipts
by ``uvox.smpp.wire``, for speed); the asyncio server loop is ours, because
smpplib has no server side.

Behaviour can be changed while it runs (see ``Rule``) to throttle, reject, mute or
drop, and it keeps every submit_sm it received for inspection. A control HTTP port
(``control_port``) exposes the same to other processes, documented in
``docs/delivery.md``.

Nothing sent to the simulator reaches a phone; whoever starts it says so loudly.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import json
import logging
import random
import re
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from smpplib import consts

from uvox.smpp import pdu as P
from uvox.smpp import wire
from uvox.sms.encoding import decode

log = logging.getLogger("uvox.smsc_sim")

SIMULATOR_WARNING = (
    "SMSC SIMULATOR IN USE: messages are NOT delivered to any phone. "
    "Add a real SMPP connector (uvox admin connector add) before serving customers."
)

_BIND_COMMANDS = {"bind_transmitter": "tx", "bind_receiver": "rx", "bind_transceiver": "trx"}

#: submit_sm_resp status for a rejected message unless the rule says otherwise.
DEFAULT_REJECT_STATUS = consts.SMPP_ESME_RINVDSTADR


@dataclass
class Rule:
    """One run-time behaviour, applied to the submit_sm it matches.

    action:
      ``throttle`` answer with ``status`` (default ESME_RTHROTTLED 0x58);
      ``reject``   answer with a permanent error ``status`` (default ESME_RINVDSTADR);
      ``receipt``  accept, then send a receipt with ``stat`` (UNDELIV, REJECTD, EXPIRED);
      ``drop``     accept and never send a receipt;
      ``mute``     never answer the submit_sm at all.
    dest: regular expression searched in destination_addr (all when empty).
    fraction: probability the rule applies to a matching message.
    count: how many more times it applies (unlimited when None).
    """

    action: str
    dest: str = ""
    fraction: float = 1.0
    count: int | None = None
    status: int | None = None
    stat: str | None = None

    def __post_init__(self) -> None:
        if self.action not in ("throttle", "reject", "receipt", "drop", "mute"):
            raise ValueError(f"unknown action {self.action!r}")
        if self.action == "receipt" and (self.stat or "").upper() not in P.MESSAGE_STATES:
            raise ValueError(f"receipt rule needs a stat among {sorted(P.MESSAGE_STATES)}")
        self._re = re.compile(self.dest) if self.dest else None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}


@dataclass
class _PendingReceipt:
    system_id: str
    message_id: str
    source_addr: str  # of the receipt: the original destination
    destination_addr: str
    stat: str
    submit_date: str
    body: str


@dataclass(eq=False)
class _Session:
    writer: asyncio.StreamWriter
    peer: str
    bound: str | None = None
    system_id: str = ""
    unacked: dict = field(default_factory=dict)  # deliver_sm sequence -> _PendingReceipt


@functools.lru_cache(maxsize=4)
def _smpp_minute(minute: int) -> str:
    return datetime.fromtimestamp(minute * 60, UTC).strftime("%y%m%d%H%M")


def _smpp_date(ts: float) -> str:
    """YYMMDDhhmm: formatted once a minute, not once a receipt (it was a tenth of the
    simulator's CPU under load)."""
    return _smpp_minute(int(ts // 60))


class SmscSimulator:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 2775,
        *,
        system_id: str | None = None,
        password: str | None = None,
        receipt_delay: float = 1.0,
        control_port: int | None = None,
        max_records: int = 500_000,
    ) -> None:
        self.host = host
        self.port = port
        self.system_id = system_id
        self.password = password
        self.receipt_delay = receipt_delay
        self.control_port = control_port
        self.records: collections.deque[dict] = collections.deque(maxlen=max_records)
        self.counters = collections.Counter()
        self._rules: list[Rule] = []
        self._rules_lock = threading.Lock()
        self._seq = P.SequenceGenerator()
        self._sessions: set[_Session] = set()
        self._pending: dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self._server: asyncio.base_events.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._http: ThreadingHTTPServer | None = None
        self._record_seq = 0

    # ------------------------------------------------------------ life cycle
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        if self.control_port is not None and self._http is None:
            self._start_control()
        log.warning("%s (listening on %s:%s)", SIMULATOR_WARNING, self.host, self.port)

    async def stop(self) -> None:
        """Close the listener and every session, as if the SMSC went down.

        Records, rules and receipts not yet delivered are kept, so a later
        ``start()`` on the same port behaves like an SMSC coming back.
        """
        if self._server is not None:
            self._server.close()
            for s in list(self._sessions):
                s.writer.close()
            await self._server.wait_closed()
            self._server = None
        for s in list(self._sessions):
            self._drop_session(s)

    def close_control(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    async def disconnect_all(self) -> None:
        """Cut every open session but keep listening (a network blip)."""
        for s in list(self._sessions):
            s.writer.close()

    # ------------------------------------------------------------ rules
    def set_rules(self, rules: list[Rule | dict]) -> None:
        parsed = [r if isinstance(r, Rule) else Rule(**r) for r in rules]
        with self._rules_lock:
            self._rules = parsed

    def add_rule(self, rule: Rule | dict) -> None:
        r = rule if isinstance(rule, Rule) else Rule(**rule)
        with self._rules_lock:
            self._rules.append(r)

    def rules(self) -> list[dict]:
        with self._rules_lock:
            return [r.to_dict() for r in self._rules]

    def reset(self) -> None:
        with self._rules_lock:
            self._rules = []
        self.records.clear()
        self.counters.clear()

    def _match(self, dest: str) -> Rule | None:
        with self._rules_lock:
            if not self._rules:
                return None
            for r in list(self._rules):
                if r._re is not None and not r._re.search(dest):
                    continue
                if r.fraction < 1.0 and random.random() >= r.fraction:
                    continue
                if r.count is not None:
                    r.count -= 1
                    if r.count <= 0:
                        self._rules.remove(r)
                return r
        return None

    # ------------------------------------------------------------ inspection
    def stats(self) -> dict:
        return {
            "port": self.port,
            "sessions": sum(1 for s in self._sessions if s.bound),
            "received": self.counters["received"],
            "accepted": self.counters["accepted"],
            "throttled": self.counters["throttled"],
            "rejected": self.counters["rejected"],
            "muted": self.counters["muted"],
            "receipts_sent": self.counters["receipts_sent"],
            "receipts_acked": self.counters["receipts_acked"],
            "receipts_pending": sum(len(q) for q in self._pending.values()),
            "binds": self.counters["binds"],
            "enquire_links": self.counters["enquire_links"],
            "receipt_delay": self.receipt_delay,
            "simulated": True,
        }

    def messages(self, dest: str | None = None, outcome: str | None = None) -> list[dict]:
        out = list(self.records)
        if dest:
            out = [r for r in out if r["destination_addr"] == dest.lstrip("+")
                   or r["destination_addr"] == dest]
        if outcome:
            out = [r for r in out if r["outcome"] == outcome]
        return out

    # ------------------------------------------------------------ SMPP sessions
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = "%s:%s" % writer.get_extra_info("peername")[:2]
        session = _Session(writer=writer, peer=peer)
        self._sessions.add(session)
        # Whatever has arrived is read at once and cut into PDUs: one read per burst
        # of a window of submit_sm, not two per PDU.
        framer = wire.Framer(max_length=65536)
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                try:
                    pdus = framer.feed(data)
                except ConnectionError as e:
                    log.warning("smsc-sim: %s from %s", e, peer)
                    break
                for raw in pdus:
                    if not self._handle(session, raw):
                        return
                if writer.transport.get_write_buffer_size() > 1 << 20:
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._drop_session(session)
            writer.close()

    def _drop_session(self, s: _Session) -> None:
        if s not in self._sessions:
            return
        self._sessions.discard(s)
        if s.unacked:
            q = self._pending[s.system_id]
            for r in reversed(list(s.unacked.values())):
                q.appendleft(r)
            s.unacked.clear()

    def _send(self, s: _Session, p) -> None:
        if not s.writer.is_closing():
            s.writer.write(p if isinstance(p, bytes) else p.generate())

    def _resp(self, s: _Session, command: str, sequence: int, status: int = 0, **fields) -> None:
        self._send(s, P.make(command, self._seq, sequence=sequence, status=status, **fields))

    def _handle(self, s: _Session, raw: bytes) -> bool:
        """Act on one PDU; False closes the session."""
        _len, command_id, _status, sequence = P.header(raw)
        # The traffic itself (submit_sm, deliver_sm_resp) skips smpplib's objects: see wire.
        if command_id == wire.DELIVER_SM_RESP:
            if s.unacked.pop(sequence, None) is not None:
                self.counters["receipts_acked"] += 1
            return True
        p = None
        if command_id == wire.SUBMIT_SM:
            try:
                p = wire.decode_sm(raw)
            except (ValueError, IndexError):
                pass
        if p is None:
            p = P.parse(raw, self._seq)
        if p is None:
            self._resp(s, "generic_nack", sequence, consts.SMPP_ESME_RINVCMDID)
            return True
        cmd = p.command
        if cmd in _BIND_COMMANDS:
            return self._bind(s, p, cmd)
        if cmd == "enquire_link":
            self.counters["enquire_links"] += 1
            self._resp(s, "enquire_link_resp", sequence)
        elif cmd == "unbind":
            self._resp(s, "unbind_resp", sequence)
            return False
        elif cmd == "submit_sm":
            self._submit(s, p)
        elif cmd == "deliver_sm_resp":
            if s.unacked.pop(sequence, None) is not None:
                self.counters["receipts_acked"] += 1
        elif cmd in ("enquire_link_resp", "generic_nack", "unbind_resp"):
            pass
        elif p.is_request():
            self._resp(s, "generic_nack", sequence, consts.SMPP_ESME_RINVCMDID)
        return True

    def _bind(self, s: _Session, p, cmd: str) -> bool:
        resp = cmd + "_resp"
        system_id, password = P.text(p.system_id), P.text(p.password)
        if s.bound:
            self._resp(s, resp, p.sequence, consts.SMPP_ESME_RALYBND)
            return True
        if self.system_id is not None and system_id != self.system_id:
            self._resp(s, resp, p.sequence, consts.SMPP_ESME_RINVSYSID)
            return True
        if self.password is not None and password != self.password:
            self._resp(s, resp, p.sequence, consts.SMPP_ESME_RINVPASWD)
            return True
        s.bound, s.system_id = _BIND_COMMANDS[cmd], system_id
        self.counters["binds"] += 1
        self._resp(s, resp, p.sequence, system_id="UVOXSIM")
        log.info("smsc-sim: %s bound as %s (%s)", s.peer, s.bound, system_id)
        if s.bound in ("rx", "trx"):
            self._flush_pending(system_id)
        return True

    def _submit(self, s: _Session, p) -> None:
        if s.bound not in ("tx", "trx"):
            self._resp(s, "submit_sm_resp", p.sequence, consts.SMPP_ESME_RINVBNDSTS)
            return
        now = time.time()
        sm = p.short_message or getattr(p, "message_payload", None) or b""
        esm = p.esm_class or 0
        dc = p.data_coding or 0
        udh = b""
        body = sm
        if esm & 0x40 and sm:
            udh = sm[: 1 + sm[0]]
            body = sm[len(udh):]
        dest, src = P.text(p.destination_addr), P.text(p.source_addr)
        self.counters["received"] += 1
        self._record_seq += 1
        rec = {
            "n": self._record_seq,
            "time": now,
            "system_id": s.system_id,
            "sequence": p.sequence,
            "source_addr": src,
            "source_addr_ton": p.source_addr_ton or 0,
            "destination_addr": dest,
            "dest_addr_ton": p.dest_addr_ton or 0,
            "esm_class": esm,
            "data_coding": dc,
            "registered_delivery": p.registered_delivery or 0,
            "udh": udh.hex(),
            "text": decode(body, dc) if dc in (0, 8) else body.hex(),
            "short_message": sm.hex(),
            "message_id": None,
            "outcome": "accepted",
            "status": 0,
        }
        rule = self._match(dest)
        action = rule.action if rule else None
        if action == "throttle":
            rec.update(outcome="throttled", status=rule.status or consts.SMPP_ESME_RTHROTTLED)
        elif action == "reject":
            rec.update(outcome="rejected", status=rule.status or DEFAULT_REJECT_STATUS)
        elif action == "mute":
            rec.update(outcome="muted")
        self.records.append(rec)
        self.counters[rec["outcome"]] += 1
        if action == "mute":
            return
        if rec["status"]:
            self._send(s, wire.encode_resp(wire.SUBMIT_SM_RESP, p.sequence, rec["status"]))
            return
        message_id = uuid.uuid4().hex
        rec["message_id"] = message_id
        self._send(s, wire.encode_resp(wire.SUBMIT_SM_RESP, p.sequence, message_id=message_id))

        if action == "drop":
            return
        stat = (rule.stat or "").upper() if action == "receipt" else "DELIVRD"
        wanted = (p.registered_delivery or 0) & 0x03
        if wanted == 1 or (wanted == 2 and stat != "DELIVRD"):
            receipt = _PendingReceipt(
                system_id=s.system_id, message_id=message_id, source_addr=dest,
                destination_addr=src, stat=stat, submit_date=_smpp_date(now),
                body=rec["text"] if dc in (0, 8) else "",
            )
            if self.receipt_delay <= 0:
                self._queue_receipt(receipt)
            else:
                self._loop.call_later(self.receipt_delay, self._queue_receipt, receipt)

    # ------------------------------------------------------------ receipts
    def _receiver_for(self, system_id: str) -> _Session | None:
        for s in self._sessions:
            if s.bound in ("rx", "trx") and s.system_id == system_id and not s.writer.is_closing():
                return s
        return None

    def _queue_receipt(self, r: _PendingReceipt) -> None:
        s = self._receiver_for(r.system_id)
        if s is None:
            self._pending[r.system_id].append(r)
        else:
            self._deliver(s, r)

    def _flush_pending(self, system_id: str) -> None:
        q = self._pending.get(system_id)
        s = self._receiver_for(system_id)
        while q and s is not None:
            self._deliver(s, q.popleft())

    def _deliver(self, s: _Session, r: _PendingReceipt) -> None:
        err = "000" if r.stat == "DELIVRD" else "001"
        sequence = self._seq.next_sequence()
        p = wire.encode_sm(
            wire.DELIVER_SM, sequence, dict(
                service_type="",
                source_addr_ton=1, source_addr_npi=1, source_addr=r.source_addr,
                dest_addr_ton=1, dest_addr_npi=1, destination_addr=r.destination_addr,
                esm_class=0x04, data_coding=0,
                short_message=P.receipt_text(r.message_id, r.stat, err, r.submit_date,
                                             _smpp_date(time.time()), r.body)),
            wire.tlv_u8(wire.TLV_MESSAGE_STATE, P.MESSAGE_STATES[r.stat])
            + wire.tlv_cstr(wire.TLV_RECEIPTED_MESSAGE_ID, r.message_id),
        )
        s.unacked[sequence] = r
        self.counters["receipts_sent"] += 1
        self._send(s, p)

    # ------------------------------------------------------------ control port
    def _on_loop(self, fn):
        """Run ``fn`` on the simulator's loop: its state is only touched from there."""
        async def _wrap():
            return fn()

        return asyncio.run_coroutine_threadsafe(_wrap(), self._loop).result(10)

    def _start_control(self) -> None:
        sim = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # the access log is noise in tests
                pass

            def _reply(self, code: int, obj) -> None:
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _body(self):
                n = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(n) or b"null") if n else None

            def do_GET(self):
                u = urlparse(self.path)
                q = {k: v[-1] for k, v in parse_qs(u.query).items()}
                if u.path == "/stats":
                    return self._reply(200, sim._on_loop(sim.stats))
                if u.path == "/messages":
                    return self._reply(200, sim._on_loop(
                        lambda: sim.messages(q.get("dest"), q.get("outcome"))))
                if u.path == "/rules":
                    return self._reply(200, sim.rules())
                return self._reply(404, {"error": "not found"})

            def do_POST(self):
                u = urlparse(self.path)
                try:
                    data = self._body()
                    if u.path == "/rules":
                        sim.set_rules(data or [])
                        return self._reply(200, sim.rules())
                    if u.path == "/rules/add":
                        sim.add_rule(data)
                        return self._reply(200, sim.rules())
                    if u.path == "/config":
                        if "receipt_delay" in (data or {}):
                            sim.receipt_delay = float(data["receipt_delay"])
                        return self._reply(200, sim._on_loop(sim.stats))
                    if u.path == "/reset":
                        sim._on_loop(sim.reset)
                        return self._reply(200, sim._on_loop(sim.stats))
                    if u.path == "/disconnect":
                        asyncio.run_coroutine_threadsafe(sim.disconnect_all(), sim._loop).result(5)
                        return self._reply(200, sim._on_loop(sim.stats))
                except (ValueError, TypeError, KeyError, re.error) as e:
                    return self._reply(400, {"error": str(e)})
                return self._reply(404, {"error": "not found"})

        self._http = ThreadingHTTPServer((self.host, self.control_port), Handler)
        self._http.daemon_threads = True
        self.control_port = self._http.server_address[1]
        threading.Thread(target=self._http.serve_forever, name="smsc-sim-control",
                         daemon=True).start()


async def run_forever(sim: SmscSimulator, ready=None) -> None:
    """Start ``sim`` and serve until cancelled; ``ready(sim)`` is called once listening."""
    await sim.start()
    if ready is not None:
        ready(sim)
    try:
        await asyncio.Event().wait()
    finally:
        await sim.stop()
        sim.close_control()


class SimulatorThread:
    """Runs a simulator on its own event loop in a daemon thread.

    For callers without an event loop of their own (benchmarks, tests, a
    synchronous worker): ``stop()`` and ``start()`` again take the SMSC down and
    back up on the same port while keeping its records.
    """

    def __init__(self, sim: SmscSimulator) -> None:
        self.sim = sim
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="smsc-sim", daemon=True)
        self._thread.start()

    def call(self, coro_or_fn, timeout: float = 10.0):
        """Run a coroutine or a plain function on the simulator's loop and return its result."""
        if asyncio.iscoroutine(coro_or_fn):
            return asyncio.run_coroutine_threadsafe(coro_or_fn, self.loop).result(timeout)

        async def _wrap():
            return coro_or_fn()

        return asyncio.run_coroutine_threadsafe(_wrap(), self.loop).result(timeout)

    def start(self) -> SimulatorThread:
        self.call(self.sim.start())
        return self

    def stop(self) -> None:
        self.call(self.sim.stop())

    def close(self) -> None:
        try:
            self.stop()
        finally:
            self.sim.close_control()
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
            self.loop.close()
