"""The dispatcher against a link of the test's own, through ``uvox.dispatch.link.Link`` only.

This checks the dispatcher's side of the contract (what it submits, how it takes
results, receipts and acknowledgements), not SMPP: ``test_delivery`` and
``tests/smpp`` run the real connector against the simulator.
"""

import threading

import pytest
import sqlalchemy as sa

from uvox.db import schema as t
from uvox.dispatch.link import Part
from uvox.smpp import registry
from uvox.smpp.connector import PermanentSubmitError
from uvox.smpp.pdu import Receipt
from uvox.sms.encoding import encode

from .test_delivery import send, wait_state

pytestmark = pytest.mark.timeout(120)

REFUSED = "+13125550666"


class MemoryLink:
    """Accepts every part but those to ``REFUSED``, then reports a DELIVRD receipt for each, from a thread."""

    def __init__(self, name, on_receipt, on_bound) -> None:
        self.name, self.on_receipt, self.on_bound = name, on_receipt, on_bound
        self.parts: list[Part] = []
        self.acks: dict[str, list[bool]] = {}
        self.bound = self.stopped = False
        self._threads: list[threading.Thread] = []

    @property
    def is_bound(self) -> bool:
        return self.bound

    def start(self) -> "MemoryLink":
        self.bound = True
        self.on_bound(True)
        return self

    def stop(self) -> None:
        self.bound, self.stopped = False, True
        for th in self._threads:
            th.join(5)

    def submit_batch(self, parts, on_done) -> None:
        self.parts.extend(parts)
        th = threading.Thread(target=self._answer, args=(list(parts), on_done))
        self._threads.append(th)
        th.start()

    def _answer(self, parts: list[Part], on_done) -> None:
        accepted = []
        for p in parts:
            if "+" + p.recipient.lstrip("+") == REFUSED:
                on_done(p.tag, None, PermanentSubmitError("refused by the test link", 0x45))
            else:
                smsc_id = f"{self.name}-{p.tag[0]}-{p.tag[1]}"
                accepted.append(smsc_id)
                on_done(p.tag, smsc_id, None)
        for smsc_id in accepted:
            self.acks[smsc_id] = []
            self.on_receipt(Receipt(smsc_id, "DELIVRD"), self.acks[smsc_id].append)


def test_dispatcher_submits_through_any_link_and_records_its_answers(platform, http, customer, dispatcher, poll):
    registry.add(
        platform.engine, "memory", host="127.0.0.1", port=9, system_id="uvox", password="pw", secret=platform.secret
    )
    links: dict[str, MemoryLink] = {}

    def make_link(spec, on_receipt, on_bound):
        links[spec.name] = MemoryLink(spec.name, on_receipt, on_bound)
        return links[spec.name]

    d = dispatcher(links=make_link)
    d.wait_bound(["memory"])

    def balance():
        with platform.engine.connect() as c:
            return c.execute(sa.select(t.accounts.c.balance).where(t.accounts.c.id == customer.id)).scalar_one()

    before = balance()
    refused = send(http, customer, REFUSED, "no")
    wait_state(http, customer, refused["id"], "failed", poll)
    assert balance() == before  # a permanent refusal is refunded

    text = ("Tres partes para un mensaje largo. " * 14)[:440]
    sent = send(http, customer, "+56912345678", text, **{"from": "+13055550000"})
    wait_state(http, customer, sent["id"], "delivered", poll)
    assert balance() < before

    link = links["memory"]
    mid = int(sent["id"])
    mine = [p for p in link.parts if p.tag[0] == mid]
    enc = encode(text, mid & 0xFF)
    assert [p.tag for p in mine] == [(mid, 1), (mid, 2), (mid, 3)]
    assert [p.body for p in mine] == list(enc.parts)
    assert {(p.sender, p.recipient, p.data_coding, p.esm_class) for p in mine} == {
        ("13055550000", "+56912345678", enc.data_coding, enc.esm_class)
    }
    # Every receipt is acknowledged once, after it is stored.
    assert poll(lambda: all(a == [True] for a in link.acks.values()))
    assert len(link.acks) == 3

    d.stop()
    assert link.stopped and not d.d.held
    with platform.engine.connect() as c:
        parts = c.execute(sa.select(t.message_parts.c.state).where(t.message_parts.c.message_id == mid)).scalars()
        assert sorted(parts) == ["delivered"] * 3
