"""Message history queries for the portal and the operator's search.

Every customer query is built here with ``account_id`` in its WHERE clause, and
the portal has no other way to read messages, so no page or export can show
another account's messages.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from uvox.billing.money import show
from uvox.clock import aware
from uvox.db import schema as t
from uvox.db.session import read
from uvox.sms import states
from uvox.sms.states import MessageState as S
from uvox.strings import is_digits

M = t.messages


def N_(text: str) -> str:
    """Marks a text for the gettext catalogue; the template translates it when shown."""
    return text


#: The states a customer can filter by, each with the manual's wording (API status
#: texts 011-013 and our 11x extensions) and the internal states it covers.
STATE_GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "to_send": (N_("To send"), states.TO_SEND),
    "no_credit": (N_("No plan available to send or Credit"), (S.WAITING_BALANCE,)),
    "sent": (N_("SMS Sent"), (S.SUBMITTED,)),
    "delivered": (N_("Delivered"), (S.DELIVERED,)),
    "undelivered": (N_("Undelivered"), (S.UNDELIVERED,)),
    "expired": (N_("Expired"), (S.EXPIRED,)),
    "rejected": (N_("Rejected"), (S.REJECTED,)),
    "failed": (N_("Failed"), (S.FAILED,)),
}
# The labels are literals above for gettext's extraction; they must be the wording
# of sms/states.py (tests/sms/test_states.py checks it).
_LABEL = {state: label for label, states in STATE_GROUPS.values() for state in states}
_GROUP = {state: key for key, (_, states) in STATE_GROUPS.items() for state in states}


def state_label(state: str) -> str:
    """The English (manual) text of a state; the portal translates it with gettext."""
    return _LABEL.get(state, state)


def state_group(state: str) -> str:
    return _GROUP.get(state, "")


@dataclass
class Filters:
    date_from: date | None = None
    date_to: date | None = None
    number: str = ""
    state: str = ""
    message_id: int | None = None
    account_number: str = ""  # operator search only

    @classmethod
    def parse(cls, get) -> tuple[Filters, list[str]]:
        """From query parameters; returns the filters and the names of fields that were invalid."""
        bad: list[str] = []

        def day(name: str) -> date | None:
            raw = get(name)
            if not raw:
                return None
            try:
                return date.fromisoformat(raw)
            except ValueError:
                bad.append(name)
                return None

        number = "".join(ch for ch in (get("number") or "") if ch.isdigit())[:20]
        state = get("state") or ""
        if state and state not in STATE_GROUPS:
            bad.append("state")
            state = ""
        raw_id = get("id") or ""
        message_id = int(raw_id) if is_digits(raw_id) and len(raw_id) < 18 else None
        if raw_id and message_id is None:
            bad.append("id")
        account_number = "".join(ch for ch in (get("account") or "") if ch.isdigit())[:20]
        return cls(day("from"), day("to"), number, state, message_id, account_number), bad

    def as_query(self) -> dict[str, str]:
        out = {}
        if self.date_from:
            out["from"] = self.date_from.isoformat()
        if self.date_to:
            out["to"] = self.date_to.isoformat()
        if self.number:
            out["number"] = self.number
        if self.state:
            out["state"] = self.state
        if self.message_id is not None:
            out["id"] = str(self.message_id)
        if self.account_number:
            out["account"] = self.account_number
        return out

    def conditions(self) -> list:
        cond = []
        if self.date_from:
            cond.append(M.c.created_at >= datetime.combine(self.date_from, time.min, UTC))
        if self.date_to:
            cond.append(M.c.created_at < datetime.combine(self.date_to + timedelta(days=1), time.min, UTC))
        if self.number:
            # Recipient or sender containing the digits typed (people type partial numbers).
            like = f"%{self.number}%"
            cond.append(sa.or_(M.c.recipient.like(like), M.c.sender.like(like)))
        if self.state:
            cond.append(M.c.state.in_(STATE_GROUPS[self.state][1]))
        if self.message_id is not None:
            cond.append(M.c.id == self.message_id)
        return cond


_COLUMNS = (M.c.id, M.c.account_id, M.c.kind, M.c.sender, M.c.sender_used, M.c.recipient, M.c.destination,
            M.c.text, M.c.segments, M.c.price, M.c.currency, M.c.state, M.c.simulated, M.c.error,
            M.c.created_at, M.c.submitted_at, M.c.done_at, M.c.connector, M.c.encoding)


def page(engine: Engine, account_id: int | None, filters: Filters, limit: int = 50, offset: int = 0):
    """(total, rows) newest first. ``account_id=None`` only for the operator's search."""
    cond = filters.conditions()
    q = sa.select(*_COLUMNS, t.accounts.c.number.label("account_number")).join(
        t.accounts, t.accounts.c.id == M.c.account_id)
    if account_id is not None:
        cond.append(M.c.account_id == account_id)
    elif filters.account_number:
        cond.append(t.accounts.c.number == filters.account_number)
    with read(engine) as conn:
        total = conn.execute(
            sa.select(sa.func.count()).select_from(M.join(t.accounts, t.accounts.c.id == M.c.account_id)).where(*cond)
        ).scalar_one()
        rows = conn.execute(q.where(*cond).order_by(M.c.id.desc()).limit(limit).offset(offset)).all()
    return total, rows


def one(engine: Engine, account_id: int, message_id: int):
    with read(engine) as conn:
        return conn.execute(sa.select(*_COLUMNS).where(M.c.id == message_id, M.c.account_id == account_id)).first()


CSV_HEADER = ["id", "created_at", "from", "to", "destination", "state", "status", "segments", "price", "currency",
              "kind", "text", "submitted_at", "done_at"]


def _stamp(value) -> str:
    return aware(value).isoformat() if value is not None else ""


def csv_rows(engine: Engine, account_id: int, filters: Filters, batch: int = 2000) -> Iterator[str]:
    """The filtered history as CSV text, fetched in batches by id (never all in memory)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_HEADER)
    yield buf.getvalue()
    last: int | None = None
    while True:
        cond = filters.conditions() + [M.c.account_id == account_id]
        if last is not None:
            cond.append(M.c.id < last)
        with read(engine) as conn:
            rows = conn.execute(sa.select(*_COLUMNS).where(*cond).order_by(M.c.id.desc()).limit(batch)).all()
        if not rows:
            return
        buf = io.StringIO()
        writer = csv.writer(buf)
        for r in rows:
            writer.writerow([
                r.id, _stamp(r.created_at), r.sender_used if r.sender_used is not None else r.sender, r.recipient,
                r.destination, r.state, state_label(r.state), r.segments, show(r.price), r.currency, r.kind,
                _csv_safe(r.text), _stamp(r.submitted_at), _stamp(r.done_at),
            ])
        yield buf.getvalue()
        last = rows[-1].id


def _csv_safe(text: str) -> str:
    """Neutralise spreadsheet formulas: a customer's SMS text must not run in Excel."""
    if text and text[0] in "=+-@\t\r":
        return "'" + text
    return text
