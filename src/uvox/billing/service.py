"""Operator actions on money: top-ups and credit limits (CLI, portal, tests)."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from uvox.billing import ledger
from uvox.db import schema as t
from uvox.db.session import write
from uvox.errors import NotFound


def topup(engine: Engine, account_id: int, amount: Decimal, note: str = "top-up") -> tuple[Decimal, int]:
    """Add prepaid money; messages waiting for balance are released in the same transaction.

    Returns (new balance, messages released). A negative amount is a correction,
    recorded as an adjustment row.
    """
    from uvox.sms.intake import notify_queued, release_waiting

    with write(engine) as conn:
        _exists(conn, account_id)
        ledger.credit(conn, account_id, amount, "topup" if amount >= 0 else "adjustment", note)
        released = release_waiting(conn, account_id)
        new_balance, _ = ledger.balance(conn, account_id)
    if released:
        notify_queued()
    return new_balance, released


def set_credit_limit(engine: Engine, account_id: int, amount: Decimal) -> int:
    from uvox.sms.intake import notify_queued, release_waiting

    if amount < 0:
        raise ValueError("a credit limit cannot be negative")
    with write(engine) as conn:
        _exists(conn, account_id)
        conn.execute(sa.update(t.accounts).where(t.accounts.c.id == account_id).values(credit_limit=amount))
        released = release_waiting(conn, account_id)
    if released:
        notify_queued()
    return released


def change_plan(engine: Engine, account_id: int, plan: str) -> int:
    """Put an account on another plan; returns how many waiting messages it released.

    In the same transaction, messages that waited for a plan (or for money) are priced
    on the new plan and queued while the money lasts, whichever front end changed the
    plan (CLI, operator portal): one rule, here. The key cache is told too (a key's
    plan decides its prices)."""
    from uvox.accounts import authcache
    from uvox.sms.intake import notify_queued, release_waiting

    with write(engine) as conn:
        _exists(conn, account_id)
        plan_id = conn.execute(sa.select(t.plans.c.id).where(t.plans.c.name == plan)).scalar()
        if plan_id is None:
            raise NotFound(f"no plan named {plan!r}")
        conn.execute(sa.update(t.accounts).where(t.accounts.c.id == account_id).values(plan_id=plan_id))
        authcache.invalidate(conn)
        released = release_waiting(conn, account_id)
    if released:
        notify_queued()
    return released


def _exists(conn: Connection, account_id: int) -> None:
    if conn.execute(sa.select(t.accounts.c.id).where(t.accounts.c.id == account_id)).first() is None:
        raise NotFound("no such account")
