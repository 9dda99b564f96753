"""Writing what the dispatcher learned, in batches.

Everything the dispatcher learns (a part accepted, a message refused, a receipt)
becomes an event; the :class:`Recorder` applies a batch of events in one
transaction with a handful of set-based statements, so thousands of messages a
second cost tens of statements, not thousands. It runs in a thread (or the
platform's SQLite writer), one batch at a time.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from uvox.billing import ledger
from uvox.clock import now
from uvox.db import schema as t
from uvox.db.session import write
from uvox.dispatch import outbox, receipts
from uvox.dispatch.outbox import Change
from uvox.dispatch.receipts import ReceiptEvent
from uvox.dispatch.sqlbatch import chunks
from uvox.sms.states import MessageState

M, PARTS = t.messages, t.message_parts


@dataclass(slots=True)
class PartAccepted:
    message_id: int
    part_no: int
    connector: str
    smsc_message_id: str | None


@dataclass(slots=True)
class MessageOutcome:
    """All parts of a claimed message have an answer."""

    message_id: int
    outcome: Literal["submitted", "failed", "retry"]
    connector: str
    sender_used: str = ""
    simulated: bool = False
    error: str | None = None
    retry_in: float = 0.0
    retried: bool = False  # not its first attempt: some parts may be final already


Event = PartAccepted | MessageOutcome | ReceiptEvent


@dataclass
class Applied:
    unmatched: list[ReceiptEvent]
    matched: list[ReceiptEvent]
    callbacks: int
    finals: dict[str, int]


class Recorder:
    """Writes batches of events; owns the receipt matching state that outlives a batch."""

    def __init__(self) -> None:
        self.receipts = receipts.ReceiptMatcher()

    def apply(self, engine: Engine, events: Sequence[Event]) -> Applied:
        """Write one batch of events in one transaction."""
        with write(engine) as conn:
            return self.apply_in(conn, events)

    def apply_in(self, conn: Connection, events: Sequence[Event]) -> Applied:
        """Write one batch of events in ``conn``'s transaction."""
        stamp = now()
        parts = [e for e in events if isinstance(e, PartAccepted)]
        outcomes = [e for e in events if isinstance(e, MessageOutcome)]
        got = [e for e in events if isinstance(e, ReceiptEvent)]
        if parts:
            conn.execute(
                _insert_ignoring_duplicates(conn, PARTS),
                [
                    {
                        "message_id": p.message_id,
                        "part_no": p.part_no,
                        "connector": p.connector,
                        "smsc_message_id": p.smsc_message_id,
                        "state": MessageState.SUBMITTED,
                        "created_at": stamp,
                    }
                    for p in parts
                ],
            )
        changes = _apply_outcomes(conn, outcomes, stamp)
        settled = self.receipts.apply(conn, got, stamp) if got else receipts.Settled()
        # A retried message may have had every receipt before its last part was accepted.
        ended = settled.ended + receipts.finalize(
            conn, {o.message_id for o in outcomes if o.outcome == "submitted" and o.retried}, stamp
        )
        changes += ended
        n_cb = outbox.enqueue(conn, changes, stamp) if changes else 0
        return Applied(settled.unmatched, settled.matched, n_cb, dict(Counter(c.state for c in ended)))


def _apply_outcomes(conn: Connection, outcomes: list[MessageOutcome], stamp: datetime) -> list[Change]:
    changes: list[Change] = []
    groups: dict[tuple[str, str, bool], list[int]] = defaultdict(list)
    for o in outcomes:
        if o.outcome == "submitted":
            groups[(o.connector, o.sender_used, o.simulated)].append(o.message_id)
        elif o.outcome == "failed":
            done = conn.execute(
                sa.update(M)
                .where(M.c.id == o.message_id, M.c.state == MessageState.SUBMITTING)
                .values(
                    state=MessageState.FAILED,
                    error=(o.error or "")[:500],
                    done_at=stamp,
                    updated_at=stamp,
                    connector=o.connector,
                    simulated=o.simulated,
                    secret_text=None,
                )
            ).rowcount
            if done:
                ledger.refund_message(conn, o.message_id, "refund: refused by the carrier")
                changes.append(Change(o.message_id, MessageState.FAILED, o.error))
        else:  # retry
            conn.execute(
                sa.update(M)
                .where(M.c.id == o.message_id, M.c.state == MessageState.SUBMITTING)
                .values(
                    state=MessageState.QUEUED,
                    connector=None,
                    error=(o.error or "")[:500],
                    updated_at=stamp,
                    next_attempt_at=stamp + timedelta(seconds=o.retry_in),
                )
            )
    for (connector, sender_used, simulated), ids in groups.items():
        for chunk in chunks(ids):
            conn.execute(
                _MARK_SUBMITTED,
                {
                    "ids": chunk,
                    "stamp": stamp,
                    "connector": connector,
                    "sender_used": sender_used,
                    "simulated": simulated,
                },
            )
        changes.extend(Change(mid, MessageState.SUBMITTED, None) for mid in ids)
    return changes


# The statements run for every batch, built once: building and cache-keying a fresh
# SQLAlchemy expression per batch showed in the profile of the writer thread.
_MARK_SUBMITTED = (
    sa.update(M)
    .where(M.c.id.in_(sa.bindparam("ids", expanding=True)), M.c.state == MessageState.SUBMITTING)
    .values(
        state=MessageState.SUBMITTED,
        submitted_at=sa.bindparam("stamp"),
        updated_at=sa.bindparam("stamp"),
        connector=sa.bindparam("connector"),
        sender_used=sa.bindparam("sender_used"),
        simulated=sa.bindparam("simulated"),
        error=None,
        secret_text=None,
    )
)


def _insert_ignoring_duplicates(conn: Connection, table: sa.Table) -> sa.Insert:
    """A part accepted twice (an answer that outlived its timeout) must not stop the writer."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing()
