"""Message intake: price, charge and store accepted messages, durably, before any reply.

One transaction per request: each recipient's message row is written either charged
and ``queued`` (code 005) or uncharged and ``waiting_balance`` (code 009). Charging
is the ledger's conditional UPDATE, so concurrent requests cannot overspend.

Sent with a test key (``Outgoing.test``, see sms/testmode.py) a message is written
uncharged and already ``submitted`` (no dispatcher claims it), with the
``test_deliveries`` row that ends it: nothing reaches the ledger or a carrier.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from uvox.billing import alerts, caps, ledger, plans
from uvox.clock import now
from uvox.db import bulk
from uvox.db import schema as t
from uvox.sms import encoding, testmode
from uvox.sms.states import MessageState

M = t.messages

QUEUED = MessageState.QUEUED
WAITING_BALANCE = MessageState.WAITING_BALANCE
SUBMITTED = MessageState.SUBMITTED


@dataclass(frozen=True)
class Measured:
    """How a text is billed: the dispatcher builds the actual parts when it sends."""

    encoding: str
    units: int
    segments: int


@dataclass
class Priced:
    """A recipient after routing and pricing."""

    recipient: str
    destination: str = ""
    price: Decimal = Decimal(0)
    #: False when the account has no plan: the message waits, unpriced (009).
    priced: bool = True
    #: The price of one segment (the rate's smsrate); ``price`` is it times the segments.
    unit: Decimal = Decimal(0)


@dataclass
class Accepted:
    id: int
    recipient: str
    state: str
    price: Decimal
    segments: int


@dataclass
class Outgoing:
    account_id: int
    plan_id: int | None
    currency: str
    text: str
    sender: str = ""
    kind: str = "sms"
    callback_url: str | None = None
    validity_seconds: int = 72 * 3600
    #: For one-time codes: what is stored as ``text`` (the code masked), while
    #: ``sealed_text`` (uvox.secretbox) carries the real text to the dispatcher.
    masked_text: str | None = field(default=None, repr=False)
    sealed_text: str | None = field(default=None, repr=False)
    encoded: Measured | None = field(default=None, repr=False)
    #: Sent with a test key: never charged, never given to a dispatcher (sms/testmode.py);
    #: ``test_delay`` seconds later the dispatcher's test-mode round ends it.
    test: bool = False
    test_delay: float = 0.0

    def __post_init__(self) -> None:
        if self.encoded is None:
            self.encoded = Measured(*encoding.measure(self.text))


class NoRate(LookupError):
    """The plan has no rate for the number: not routable (014)."""


def price(conn: Connection, out: Outgoing, recipient: str) -> Priced:
    if out.plan_id is None:
        return Priced(recipient, priced=False)
    rate = plans.lookup(conn, out.plan_id, recipient)
    if rate is None:
        if out.test and testmode.is_magic(recipient):
            return Priced(recipient, testmode.MAGIC_DESTINATION, Decimal(0))
        raise NoRate(recipient)
    return Priced(recipient, rate.destination, rate.sms_rate * out.encoded.segments, unit=rate.sms_rate)


def accept(conn: Connection, out: Outgoing, recipients: list[Priced]) -> list[Accepted] | caps.Refused:
    """Charge and store one message per recipient, inside the caller's transaction
    (or store nothing: the request would pass one of the account's spend caps)."""
    return accept_many(conn, [(out, recipients)])[0]


def accept_many(conn: Connection, requests: list[tuple[Outgoing, list[Priced]]]) -> list[list[Accepted] | caps.Refused]:
    """:func:`accept` for several requests at once (the group-commit writer's batch).

    Money is taken per account in one conditional UPDATE when the account can pay
    for everything in the batch (the usual case); otherwise message by message, in
    arrival order, while it lasts. All message rows go in one multi-row INSERT and
    all ledger rows in another, so a batch costs a handful of statements, not five
    per request.

    An account with spend caps (billing.caps) is handled request by request, its row
    locked first: a request that would pass a cap is refused whole (nothing stored,
    nothing charged), the ones before and after it are not affected.
    """
    stamp = now()
    by_account: dict[int, list[tuple[int, int]]] = {}
    for ri, (out, recipients) in enumerate(requests):
        if out.test:
            continue  # test mode: nothing is charged
        for pi in range(len(recipients)):
            by_account.setdefault(out.account_id, []).append((ri, pi))
    charged: list[list[bool]] = [[False] * len(r) for _, r in requests]
    refused: dict[int, caps.Refused] = {}
    # The caps are read after the accounts' rows are locked, so a cap saved before
    # this charge is seen (not one read before a save committed and charged after it).
    capped = caps.lock_caps(conn, by_account) if by_account else {}
    counted: list[tuple[int, str, str, Decimal]] = []
    # Accounts in id order: two batches (two processes on PostgreSQL) then lock
    # balance rows in one order and cannot deadlock on them.
    for account_id, slots in sorted(by_account.items()):
        if account_id in capped:
            _charge_capped(conn, account_id, capped[account_id], slots, requests, charged, refused, stamp)
            counted += [
                (account_id, "sms", requests[ri][1][pi].recipient, requests[ri][1][pi].price)
                for ri, pi in slots
                if charged[ri][pi]
            ]
            continue
        priced = [requests[ri][1][pi] for ri, pi in slots]
        total = sum((p.price for p in priced if p.priced), Decimal(0))
        if all(p.priced for p in priced) and ledger.try_charge(conn, account_id, total):
            for ri, pi in slots:
                charged[ri][pi] = True
        else:
            # Not enough for all: charge in order while the money lasts (FIFO), the rest wait.
            for (ri, pi), p in zip(slots, priced):
                charged[ri][pi] = p.priced and ledger.try_charge(conn, account_id, p.price)
    if counted:
        caps.add_counted(conn, counted, stamp)
    if any(any(flags) for flags in charged):
        alerts.after_charge(
            conn, sorted({out.account_id for (out, _), flags in zip(requests, charged) if any(flags)}), stamp
        )

    rows = []
    for ri, ((out, recipients), flags) in enumerate(zip(requests, charged)):
        if ri in refused:
            continue
        expires = stamp + timedelta(seconds=out.validity_seconds)
        text = out.masked_text if out.masked_text is not None else out.text
        for p, ok in zip(recipients, flags):
            state = SUBMITTED if out.test else QUEUED if ok else WAITING_BALANCE
            rows.append(
                {
                    "account_id": out.account_id,
                    "kind": out.kind,
                    "sender": out.sender,
                    "recipient": p.recipient,
                    "destination": p.destination,
                    "text": text,
                    # Test mode sends nothing, so there is no text to keep sealed for a carrier.
                    "secret_text": None if out.test else out.sealed_text,
                    "encoding": out.encoded.encoding,
                    "segments": out.encoded.segments,
                    "price": p.price,
                    "currency": out.currency,
                    "state": state,
                    "charged": ok,
                    "simulated": False,
                    "callback_url": out.callback_url,
                    "attempts": 0,
                    "test": out.test,
                    "created_at": stamp,
                    "updated_at": stamp,
                    "submitted_at": stamp if out.test else None,
                    "expires_at": expires,
                    "next_attempt_at": stamp,
                }
            )
    if not rows:
        return [refused.get(ri, []) for ri in range(len(requests))]
    ids = iter(_insert_messages(conn, rows))
    results: list[list[Accepted] | caps.Refused] = []
    ledger_rows = []
    timers = []
    for ri, ((out, recipients), flags) in enumerate(zip(requests, charged)):
        if ri in refused:
            results.append(refused[ri])
            continue
        done = []
        for p, ok in zip(recipients, flags):
            mid = next(ids)
            if out.test:
                done.append(Accepted(mid, p.recipient, SUBMITTED, p.price, out.encoded.segments))
                timers.append(
                    {
                        "message_id": mid,
                        "final_state": testmode.outcome(p.recipient)[0],
                        "announced": False,
                        "due_at": stamp + timedelta(seconds=out.test_delay),
                    }
                )
                continue
            done.append(Accepted(mid, p.recipient, QUEUED if ok else WAITING_BALANCE, p.price, out.encoded.segments))
            if ok and p.price > 0:
                ledger_rows.append(
                    {
                        "account_id": out.account_id,
                        "kind": "charge",
                        "amount": -p.price,
                        "message_id": mid,
                        "note": out.kind,
                    }
                )
        results.append(done)
    ledger.record(conn, ledger_rows)
    if timers:
        bulk.insert_rows(conn, t.test_deliveries, timers)
    return results


def _charge_capped(
    conn: Connection,
    account_id: int,
    account_caps: list[caps.Cap],
    slots: list[tuple[int, int]],
    requests: list[tuple[Outgoing, list[Priced]]],
    charged: list[list[bool]],
    refused: dict[int, caps.Refused],
    stamp: datetime,
) -> None:
    """One capped account's share of a batch, request by request in arrival order."""
    usage = caps.Usage.locked(conn, account_id, account_caps, stamp)
    by_request: dict[int, list[int]] = {}
    for ri, pi in slots:
        by_request.setdefault(ri, []).append(pi)
    for ri, pis in by_request.items():
        priced = [requests[ri][1][pi] for pi in pis]
        adding = caps.amounts((p.recipient, p.price) for p in priced if p.priced)
        refusal = usage.refusal("sms", adding)
        if refusal is not None:
            refused[ri] = refusal
            continue
        total = sum((p.price for p in priced if p.priced), Decimal(0))
        if all(p.priced for p in priced) and ledger.try_charge(conn, account_id, total):
            for pi in pis:
                charged[ri][pi] = True
        else:
            for pi, p in zip(pis, priced):
                charged[ri][pi] = p.priced and ledger.try_charge(conn, account_id, p.price)
        usage.add("sms", caps.amounts((p.recipient, p.price) for pi, p in zip(pis, priced) if charged[ri][pi]))


_LAST_ID = sa.select(sa.func.max(M.c.id))
_NEXT_IDS = sa.text("SELECT nextval(pg_get_serial_sequence('messages', 'id')) FROM generate_series(1, :n)")


def _insert_messages(conn: Connection, rows: list[dict]) -> list[int]:
    """Insert message rows; their ids in the order of ``rows``.

    On SQLite, SQLAlchemy can only return ids in parameter order by falling back to
    one INSERT per row, the writer's biggest cost per message. But every SQLite write
    here runs under BEGIN IMMEDIATE, i.e. holding the database's only write lock, and
    ``messages.id`` is a plain rowid (no AUTOINCREMENT): SQLite itself would number
    the rows max(id)+1, +2, ... So we give them exactly those ids and insert them all
    with one executemany. On PostgreSQL, where other processes insert at the same
    time, the ids are taken from the table's own sequence first, in one query.
    """
    if conn.dialect.name == "postgresql":
        ids = sorted(conn.execute(_NEXT_IDS, {"n": len(rows)}).scalars())
    else:
        first = (conn.execute(_LAST_ID).scalar() or 0) + 1
        ids = list(range(first, first + len(rows)))
    for row, mid in zip(rows, ids):
        row["id"] = mid
    bulk.insert_rows(conn, M, rows)
    return ids


class IntakeJob:
    """A send request for the group-commit writer; merges with its neighbours."""

    merge_key = "intake"

    def __init__(self, out: Outgoing, numbers: list[tuple[int, str]]) -> None:
        self.out = out
        self.numbers = numbers  # (position in the request, E.164)

    def __call__(self, conn: Connection):
        return self.run_merged(conn, [self])[0]

    @staticmethod
    def run_merged(conn: Connection, jobs: list[IntakeJob]) -> list:
        """Per job: (priced [(position, Priced)], unroutable positions, accepted list)."""
        staged = []
        for job in jobs:
            priced, unroutable = [], []
            for i, number in job.numbers:
                try:
                    priced.append((i, price(conn, job.out, number)))
                except NoRate:
                    unroutable.append(i)
            staged.append((priced, unroutable))
        accepted = accept_many(conn, [(job.out, [p for _, p in priced]) for job, (priced, _) in zip(jobs, staged)])
        return [(priced, unroutable, acc) for (priced, unroutable), acc in zip(staged, accepted)]


def get_message(conn: Connection, account_id: int, message_id: int):
    """One message of one account, or None: another account's id is "unknown" too."""
    return conn.execute(sa.select(M).where(M.c.id == message_id, M.c.account_id == account_id)).first()
