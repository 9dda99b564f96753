"""The SMSC simulator: a real SMPP v3.4 server for fresh installs, tests and benchmarks.

It speaks SMPP over TCP like a carrier's SMSC (bind, enquire_link, submit_sm,
deliver_sm receipts, unbind) so that the platform's real client code path is the
one exercised. PDUs are built and parsed by smpplib (submit_sm, its answer and the receipts
by ``uvox.smpp.wire``, for speed); the asyncio server loop is ours, because
smpplib has no server side.

Behaviour can be changed while it runs (rules, in ``uvox.smpp.sim_rules``) to
throttle, reject, mute or drop, and it keeps every submit_sm it received for
inspection. A control HTTP port (``control_port``, ``uvox.smpp.sim_control``)
exposes the same to other processes, documented in ``docs/delivery.md``.

Nothing sent to the simulator reaches a phone; whoever starts it says so loudly.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from smpplib import consts

from uvox.smpp import pdu as P
from uvox.smpp import wire
from uvox.smpp.sim_control import ControlServer
from uvox.smpp.sim_rules import DEFAULT_REJECT_STATUS, Rule, RuleBook
from uvox.sms.encoding import decode

__all__ = ["DEFAULT_REJECT_STATUS", "SIMULATOR_WARNING", "Rule", "SimulatorThread", "SmscSimulator", "run_forever"]

log = logging.getLogger("uvox.smsc_sim")

T = TypeVar("T")

SIMULATOR_WARNING: Final = (
    "SMSC SIMULATOR IN USE: messages are NOT delivered to any phone. "
    "Add a real SMPP connector (uvox admin connector add) before serving customers."
)

_BIND_COMMANDS: Final[Mapping[str, str]] = {"bind_transmitter": "tx", "bind_receiver": "rx", "bind_transceiver": "trx"}


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
    unacked: dict[int, _PendingReceipt] = field(default_factory=dict)  # deliver_sm sequence -> receipt


class _SmppDates:
    """YYMMDDhhmm: formatted once a minute, not once a receipt (it was a tenth of the
    simulator's CPU under load)."""

    def __init__(self) -> None:
        self._minute = -1
        self._text = ""

    def __call__(self, ts: float) -> str:
        minute = int(ts // 60)
        if minute != self._minute:
            self._text = datetime.fromtimestamp(minute * 60, UTC).strftime("%y%m%d%H%M")
            self._minute = minute
        return self._text


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
        self.records: collections.deque[dict[str, Any]] = collections.deque(maxlen=max_records)
        self.counters: collections.Counter[str] = collections.Counter()
        self._rules = RuleBook()
        self._seq = P.SequenceGenerator()
        self._sessions: set[_Session] = set()
        self._pending: dict[str, collections.deque[_PendingReceipt]] = collections.defaultdict(collections.deque)
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._control: ControlServer | None = None
        self._record_seq = 0
        self._date = _SmppDates()

    # ------------------------------------------------------------ life cycle
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        if self.control_port is not None and self._control is None:
            control = ControlServer(self, self.host, self.control_port)
            self.control_port = await control.start()
            self._control = control
        log.warning("%s (listening on %s:%s)", SIMULATOR_WARNING, self.host, self.port)

    async def stop(self) -> None:
        """Close the listener and every session, as if the SMSC went down.

        Records, rules and receipts not yet delivered are kept, so a later
        ``start()`` on the same port behaves like an SMSC coming back. The control
        port stays up (``close_control``).
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
        """Stop the control port listening (from the simulator's loop or a coroutine on it)."""
        if self._control is not None:
            self._control.close()
            self._control = None

    async def aclose_control(self) -> None:
        """Stop the control port and wait until its server has ended."""
        control, self._control = self._control, None
        if control is not None:
            await control.aclose()

    async def disconnect_all(self) -> None:
        """Cut every open session but keep listening (a network blip)."""
        for s in list(self._sessions):
            s.writer.close()

    # ------------------------------------------------------------ rules
    def set_rules(self, rules: Iterable[Rule | Mapping[str, Any]]) -> None:
        self._rules.set(rules)

    def add_rule(self, rule: Rule | Mapping[str, Any]) -> None:
        self._rules.add(rule)

    def rules(self) -> list[dict[str, Any]]:
        return self._rules.as_dicts()

    def reset(self) -> None:
        self._rules.clear()
        self.records.clear()
        self.counters.clear()

    # ------------------------------------------------------------ inspection
    def stats(self) -> dict[str, Any]:
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

    def messages(self, dest: str | None = None, outcome: str | None = None) -> list[dict[str, Any]]:
        out = list(self.records)
        if dest:
            out = [r for r in out if r["destination_addr"] == dest.lstrip("+") or r["destination_addr"] == dest]
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

    def _send(self, s: _Session, p: Any) -> None:
        if not s.writer.is_closing():
            s.writer.write(p if isinstance(p, bytes) else p.generate())

    def _resp(self, s: _Session, command: str, sequence: int, status: int = 0, **fields: Any) -> None:
        self._send(s, P.make(command, self._seq, sequence=sequence, status=status, **fields))

    def _handle(self, s: _Session, raw: bytes) -> bool:
        """Act on one PDU; False closes the session."""
        _len, command_id, _status, sequence = P.header(raw)
        # The traffic itself (submit_sm, deliver_sm_resp) skips smpplib's objects: see wire.
        if command_id == wire.DELIVER_SM_RESP:
            if s.unacked.pop(sequence, None) is not None:
                self.counters["receipts_acked"] += 1
            return True
        p: Any = None
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

    def _bind(self, s: _Session, p: Any, cmd: str) -> bool:
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

    def _submit(self, s: _Session, p: Any) -> None:
        if s.bound not in ("tx", "trx"):
            self._resp(s, "submit_sm_resp", p.sequence, consts.SMPP_ESME_RINVBNDSTS)
            return
        now = time.time()
        sm: bytes = p.short_message or getattr(p, "message_payload", None) or b""
        esm: int = p.esm_class or 0
        dc: int = p.data_coding or 0
        udh = b""
        body = sm
        if esm & 0x40 and sm:
            udh = sm[: 1 + sm[0]]
            body = sm[len(udh) :]
        dest, src = P.text(p.destination_addr), P.text(p.source_addr)
        self.counters["received"] += 1
        self._record_seq += 1
        verdict = self._rules.decide(dest)
        rec: dict[str, Any] = {
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
            "outcome": verdict.outcome,
            "status": verdict.status,
        }
        self.records.append(rec)
        self.counters[verdict.outcome] += 1
        if not verdict.answered:
            return
        if verdict.status:
            self._send(s, wire.encode_resp(wire.SUBMIT_SM_RESP, p.sequence, verdict.status))
            return
        message_id = uuid.uuid4().hex
        rec["message_id"] = message_id
        self._send(s, wire.encode_resp(wire.SUBMIT_SM_RESP, p.sequence, message_id=message_id))

        stat = verdict.receipt
        if stat is None:
            return
        wanted = (p.registered_delivery or 0) & 0x03
        if wanted == 1 or (wanted == 2 and stat != "DELIVRD"):
            receipt = _PendingReceipt(
                system_id=s.system_id,
                message_id=message_id,
                source_addr=dest,
                destination_addr=src,
                stat=stat,
                submit_date=self._date(now),
                body=rec["text"] if dc in (0, 8) else "",
            )
            if self.receipt_delay <= 0 or self._loop is None:
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
            wire.DELIVER_SM,
            sequence,
            dict(
                service_type="",
                source_addr_ton=1,
                source_addr_npi=1,
                source_addr=r.source_addr,
                dest_addr_ton=1,
                dest_addr_npi=1,
                destination_addr=r.destination_addr,
                esm_class=0x04,
                data_coding=0,
                short_message=P.receipt_text(r.message_id, r.stat, err, r.submit_date, self._date(time.time()), r.body),
            ),
            wire.tlv_u8(wire.TLV_MESSAGE_STATE, P.MESSAGE_STATES[r.stat])
            + wire.tlv_cstr(wire.TLV_RECEIPTED_MESSAGE_ID, r.message_id),
        )
        s.unacked[sequence] = r
        self.counters["receipts_sent"] += 1
        self._send(s, p)


async def run_forever(sim: SmscSimulator, ready: Callable[[SmscSimulator], object] | None = None) -> None:
    """Start ``sim`` and serve until cancelled; ``ready(sim)`` is called once listening."""
    await sim.start()
    if ready is not None:
        ready(sim)
    try:
        await asyncio.Event().wait()
    finally:
        await sim.stop()
        await sim.aclose_control()


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

    def call(self, coro_or_fn: Coroutine[Any, Any, T] | Callable[[], T], timeout: float = 10.0) -> T:
        """Run a coroutine or a plain function on the simulator's loop and return its result."""
        if asyncio.iscoroutine(coro_or_fn):
            return asyncio.run_coroutine_threadsafe(coro_or_fn, self.loop).result(timeout)
        fn = coro_or_fn
        assert callable(fn)

        async def _wrap() -> T:
            return fn()

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
            self.call(self.sim.aclose_control())
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
            self.loop.close()
