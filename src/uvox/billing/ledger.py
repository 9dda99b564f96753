"""The prepaid ledger.

Every top-up, charge and refund is an immutable row. ``accounts.balance`` is a cache
of the sum of the account's rows, changed only here and in the same transaction as
the row, so the two cannot drift; :func:`audit` recomputes it.

A charge is one conditional UPDATE (``... WHERE balance + credit_limit - held >= :price``):
the database, not Python, decides whether the money is there, so concurrent sends can
never spend the same money, on SQLite or PostgreSQL, in one process or many. ``held``
is the money calls in progress may still spend (uvox.voice): an SMS cannot take it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from uvox.billing import alerts, caps
from uvox.clock import now
from uvox.db import bulk, timeline
from uvox.db import schema as t
from uvox.db.session import read

A = t.accounts


def try_charge(conn: Connection, account_id: int, amount: Decimal) -> bool:
    """Debit ``amount`` if balance plus credit, less holds, covers it. No ledger row: see :func:`record`."""
    if amount <= 0:
        return True
    return conn.execute(_CHARGE, {"account_id": account_id, "amount": amount}).rowcount == 1


# Built once: constructing the expression is most of a charge's cost in Python, and
# every send makes one.
_CHARGE = (
    sa.update(A)
    .where(
        A.c.id == sa.bindparam("account_id"),
        A.c.balance + A.c.credit_limit - A.c.held >= sa.bindparam("amount", type_=A.c.balance.type),
    )
    .values(balance=A.c.balance - sa.bindparam("amount", type_=A.c.balance.type))
)


def record(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Append ledger rows: dicts with account_id, kind, amount (signed), message_id, note."""
    if not rows:
        return
    stamp = now()
    for r in rows:
        r.setdefault("note", "")
        r.setdefault("message_id", None)
        r.setdefault("created_at", stamp)
    bulk.insert_rows(conn, t.ledger, rows)


def credit(
    conn: Connection, account_id: int, amount: Decimal, kind: str, note: str = "", message_id: int | None = None
) -> None:
    """Add money (top-up, refund): balance and ledger row together; a low-balance
    alert is re-armed when the money is back at its threshold (billing.alerts)."""
    conn.execute(sa.update(A).where(A.c.id == account_id).values(balance=A.c.balance + amount))
    record(conn, [{"account_id": account_id, "kind": kind, "amount": amount, "note": note, "message_id": message_id}])
    alerts.recheck(conn, [account_id])


def refund_message(conn: Connection, message_id: int, note: str = "refund: not accepted by the carrier") -> bool:
    """Give back a message's charge, once, and its room under the account's spend caps
    (in the day and month of the charge: billing.caps.give_back). Returns whether a
    refund happened."""
    m = t.messages
    row = conn.execute(
        sa.select(m.c.account_id, m.c.price, m.c.charged, m.c.recipient).where(m.c.id == message_id)
    ).first()
    if row is None or not row.charged:
        return False
    done = conn.execute(sa.update(m).where(m.c.id == message_id, m.c.charged.is_(True)).values(charged=False)).rowcount
    if done != 1:
        return False
    if row.price > 0:
        credit(conn, row.account_id, row.price, "refund", note, message_id)  # locks the account's row
        if caps.caps_of(conn, [row.account_id]):
            charged_at = conn.execute(
                sa.select(t.ledger.c.created_at)
                .where(t.ledger.c.message_id == message_id, t.ledger.c.kind == "charge")
                .order_by(t.ledger.c.id.desc())
                .limit(1)
            ).scalar()
            if charged_at is not None:
                caps.give_back(conn, row.account_id, "sms", row.recipient, row.price, charged_at)
    return True


def balance(conn: Connection, account_id: int) -> tuple[Decimal, Decimal]:
    row = conn.execute(sa.select(A.c.balance, A.c.credit_limit).where(A.c.id == account_id)).one()
    return row.balance, row.credit_limit


def funds(conn: Connection, account_id: int) -> tuple[Decimal, Decimal, Decimal]:
    """(balance, credit limit, held by calls in progress); available is b + c - h."""
    row = conn.execute(sa.select(A.c.balance, A.c.credit_limit, A.c.held).where(A.c.id == account_id)).one()
    return row.balance, row.credit_limit, row.held


def audit(engine: Engine, account_id: int) -> tuple[Decimal, Decimal]:
    """(cached balance, sum of ledger rows): equal unless something is badly wrong."""
    with read(engine) as conn:
        cached = conn.execute(sa.select(A.c.balance).where(A.c.id == account_id)).scalar_one()
        total = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(t.ledger.c.amount), 0)).where(t.ledger.c.account_id == account_id)
        ).scalar_one()
    # SUM keeps the column's Money type, so SQLite's micro-units come back as Decimal.
    return cached, Decimal(total).quantize(Decimal("0.000001"))


def history(engine: Engine, account_id: int, limit: int = 100) -> list[dict[str, Any]]:
    with read(engine) as conn:
        rows = conn.execute(
            sa.select(t.ledger).where(t.ledger.c.account_id == account_id).order_by(t.ledger.c.id.desc()).limit(limit)
        ).all()
    return [dict(r._mapping) for r in rows]


# --- the console's charts: money per UTC day -------------------------------------------

#: Ledger kinds that are spending: SMS charges less their refunds, and calls.
SMS_KINDS = ("charge", "refund")
CALL_KINDS = ("call",)


@dataclass(frozen=True)
class SpendDay:
    day: date
    sms: Decimal
    calls: Decimal

    @property
    def total(self) -> Decimal:
        return self.sms + self.calls


def spending(
    engine: Engine, account_id: int | None = None, days: int = 30, currencies: tuple[str, ...] = ()
) -> dict[str, list[SpendDay]]:
    """What was spent on each of the last ``days`` UTC days (today last), on SMS
    (charges less refunds) and on calls, by currency: one account's (its spend) or,
    with ``account_id=None``, every account's (the operator's revenue). From the
    ledger, the record of money: a message charged when a top-up released it counts
    on the day it was charged. ``currencies`` are in the result even without any
    spending (as zeros)."""
    dates, since = timeline.window(days)
    L = t.ledger
    day = timeline.utc_day(L.c.created_at).label("day")
    is_call = L.c.kind.in_(CALL_KINDS).label("is_call")
    with read(engine) as conn:
        cond = [
            L.c.created_at >= since,
            L.c.kind.in_(SMS_KINDS + CALL_KINDS),
            L.c.id >= timeline.first_id_since(conn, L, L.c.created_at, since),
        ]
        total = sa.func.sum(L.c.amount)
        if account_id is not None:
            # One account, one currency: no join row by row (a third of the query's time on SQLite).
            currency = conn.execute(sa.select(A.c.currency).where(A.c.id == account_id)).scalar_one()
            rows = [
                (d, currency, call, amount)
                for d, call, amount in conn.execute(
                    sa.select(day, is_call, total).where(*cond, L.c.account_id == account_id).group_by(day, is_call)
                )
            ]
        else:
            rows = [
                tuple(r)
                for r in conn.execute(
                    sa.select(day, A.c.currency, is_call, total)
                    .select_from(L.join(A, A.c.id == L.c.account_id))
                    .where(*cond)
                    .group_by(day, A.c.currency, is_call)
                )
            ]
    found: dict[str, dict[tuple[str, bool], Decimal]] = {c: {} for c in currencies}
    for d, currency, call, amount in rows:
        # sum() keeps the column's Money type: a Decimal on both backends. Charges are
        # negative in the ledger, spending is shown positive.
        found.setdefault(currency, {})[(timeline.day_key(d), bool(call))] = -Decimal(amount or 0)
    zero = Decimal(0)
    return {
        currency: [
            SpendDay(d, by.get((d.isoformat(), False), zero), by.get((d.isoformat(), True), zero)) for d in dates
        ]
        for currency, by in sorted(found.items())
    }
