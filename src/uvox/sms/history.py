"""Reading a message history: one account's (the portal, its CSV export) or all
accounts' (the operator's search), and its counts per day and per destination (the
console's charts).

Every customer query is built here with ``account_id`` in its WHERE clause, and
the portal has no other way to read messages, so no page or export can show
another account's messages.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row

from uvox.db import schema as t
from uvox.db import timeline
from uvox.db.session import read
from uvox.sms.states import NOT_DELIVERED, MessageState

M = t.messages


@dataclass(frozen=True)
class Search:
    """What to look for; every field is optional, all given ones must match."""

    date_from: date | None = None
    date_to: date | None = None
    #: Digits the recipient or the sender contains (people type partial numbers).
    number: str = ""
    states: Sequence[str] = ()
    message_id: int | None = None
    #: The account's number: for the operator's search only (``account_id=None``).
    account_number: str = ""

    def conditions(self) -> list[Any]:
        cond: list[Any] = []
        if self.date_from:
            cond.append(M.c.created_at >= datetime.combine(self.date_from, time.min, UTC))
        if self.date_to:
            cond.append(M.c.created_at < datetime.combine(self.date_to + timedelta(days=1), time.min, UTC))
        if self.number:
            like = f"%{self.number}%"
            cond.append(sa.or_(M.c.recipient.like(like), M.c.sender.like(like)))
        if self.states:
            cond.append(M.c.state.in_(list(self.states)))
        if self.message_id is not None:
            cond.append(M.c.id == self.message_id)
        return cond


_COLUMNS = (
    M.c.id,
    M.c.account_id,
    M.c.kind,
    M.c.sender,
    M.c.sender_used,
    M.c.recipient,
    M.c.destination,
    M.c.text,
    M.c.segments,
    M.c.price,
    M.c.currency,
    M.c.state,
    M.c.simulated,
    M.c.error,
    M.c.created_at,
    M.c.submitted_at,
    M.c.done_at,
    M.c.connector,
    M.c.encoding,
    M.c.test,
)


def page(
    engine: Engine, account_id: int | None, search: Search, limit: int = 50, offset: int = 0
) -> tuple[int, list[Row[Any]]]:
    """(total, rows) newest first, each row with ``account_number``. ``account_id=None``
    only for the operator's search."""
    cond = search.conditions()
    q = sa.select(*_COLUMNS, t.accounts.c.number.label("account_number")).join(
        t.accounts, t.accounts.c.id == M.c.account_id
    )
    if account_id is not None:
        cond.append(M.c.account_id == account_id)
    elif search.account_number:
        cond.append(t.accounts.c.number == search.account_number)
    with read(engine) as conn:
        total = conn.execute(
            sa.select(sa.func.count()).select_from(M.join(t.accounts, t.accounts.c.id == M.c.account_id)).where(*cond)
        ).scalar_one()
        rows = conn.execute(q.where(*cond).order_by(M.c.id.desc()).limit(limit).offset(offset)).all()
    return total, list(rows)


def one(engine: Engine, account_id: int, message_id: int) -> Row[Any] | None:
    """One message of one account, or None (another account's id too)."""
    with read(engine) as conn:
        return conn.execute(sa.select(*_COLUMNS).where(M.c.id == message_id, M.c.account_id == account_id)).first()


def batches(engine: Engine, account_id: int, search: Search, batch: int = 2000) -> Iterator[list[Row[Any]]]:
    """Every matching message of the account, newest first, ``batch`` rows a query
    (by id, so an export never holds the whole history in memory)."""
    last: int | None = None
    while True:
        cond = search.conditions() + [M.c.account_id == account_id]
        if last is not None:
            cond.append(M.c.id < last)
        with read(engine) as conn:
            rows = conn.execute(sa.select(*_COLUMNS).where(*cond).order_by(M.c.id.desc()).limit(batch)).all()
        if not rows:
            return
        yield list(rows)
        last = rows[-1].id


# --- the console's charts: per UTC day, per destination ------------------------------


@dataclass(frozen=True)
class Day:
    day: date
    messages: int
    segments: int


def per_day(engine: Engine, account_id: int | None, days: int = 30) -> list[Day]:
    """Messages and segments created on each of the last ``days`` UTC days (today
    last, days without messages as zeros); ``account_id=None``: every account's.
    Test-mode messages are left out, as from every console figure."""
    dates, since = timeline.window(days)
    day = timeline.utc_day(M.c.created_at).label("day")
    with read(engine) as conn:
        cond = _since(conn, account_id, since)
        rows = conn.execute(
            sa.select(day, sa.func.count(), sa.func.coalesce(sa.func.sum(M.c.segments), 0)).where(*cond).group_by(day)
        ).all()
    found = {timeline.day_key(r[0]): r for r in rows}
    out = []
    for d in dates:
        r = found.get(d.isoformat())
        out.append(Day(d, int(r[1]), int(r[2])) if r else Day(d, 0, 0))
    return out


@dataclass(frozen=True)
class Destination:
    destination: str
    messages: int
    delivered: int
    #: Final without a delivery: undelivered, rejected, expired, failed.
    not_delivered: int

    @property
    def pending(self) -> int:
        return self.messages - self.delivered - self.not_delivered

    @property
    def rate(self) -> Decimal | None:
        """Delivered share of the messages that reached a final state, in percent."""
        final = self.delivered + self.not_delivered
        if not final:
            return None
        return (Decimal(100) * self.delivered / final).quantize(Decimal("0.1"))


def by_destination(engine: Engine, account_id: int, days: int = 30, limit: int = 8) -> list[Destination]:
    """The account's ``limit`` busiest destinations of the last ``days`` days, busiest
    first; test-mode messages left out (their outcome is chosen, not a carrier's)."""
    _, since = timeline.window(days)
    dest = M.c.destination.label("destination")
    n = sa.func.count()
    with read(engine) as conn:
        cond = _since(conn, account_id, since)
        rows = conn.execute(
            sa.select(
                dest,
                n,
                n.filter(M.c.state == MessageState.DELIVERED),
                n.filter(M.c.state.in_([s.value for s in NOT_DELIVERED])),
            )
            .where(*cond)
            .group_by(dest)
            .order_by(n.desc(), dest)
            .limit(limit)
        ).all()
    return [Destination(r[0] or "", int(r[1]), int(r[2]), int(r[3])) for r in rows]


def _since(conn: Connection, account_id: int | None, since: datetime) -> list[Any]:
    """The console's window: messages since ``since``, live ones only (a test key's
    messages never reach a carrier and are never charged, so they are no traffic)."""
    cond: list[Any] = [
        M.c.created_at >= since,
        M.c.id >= timeline.first_id_since(conn, M, M.c.created_at, since),
        M.c.test.is_(False),
    ]
    if account_id is not None:
        cond.append(M.c.account_id == account_id)
    return cond
