"""Operator actions on money: top-ups, credit limits and plan changes (CLI, portal, tests).

Each releases, in its own transaction, the messages that waited for money or a plan
(billing.release), whichever front end called it. ``on_queued`` is the caller's
platform signal (``platform.queued.notify``): it wakes a dispatcher of this process
at once; without it the dispatcher finds the messages at its next poll.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from uvox.accounts import authcache
from uvox.billing import alerts, ledger
from uvox.billing.release import release_waiting
from uvox.db import schema as t
from uvox.db.session import write
from uvox.errors import NotFound


def topup(
    engine: Engine,
    account_id: int,
    amount: Decimal,
    note: str = "top-up",
    *,
    on_queued: Callable[[], None] | None = None,
) -> tuple[Decimal, int]:
    """Add prepaid money; messages waiting for balance are released in the same transaction.

    Returns (new balance, messages released). A negative amount is a correction,
    recorded as an adjustment row.
    """
    with write(engine) as conn:
        _exists(conn, account_id)
        ledger.credit(conn, account_id, amount, "topup" if amount >= 0 else "adjustment", note)
        released = release_waiting(conn, account_id)
        alerts.recheck(conn, [account_id])
        new_balance, _ = ledger.balance(conn, account_id)
    if released and on_queued is not None:
        on_queued()
    return new_balance, released


def set_credit_limit(
    engine: Engine, account_id: int, amount: Decimal, *, on_queued: Callable[[], None] | None = None
) -> int:
    if amount < 0:
        raise ValueError("a credit limit cannot be negative")
    with write(engine) as conn:
        _exists(conn, account_id)
        conn.execute(sa.update(t.accounts).where(t.accounts.c.id == account_id).values(credit_limit=amount))
        released = release_waiting(conn, account_id)
        alerts.recheck(conn, [account_id])
    if released and on_queued is not None:
        on_queued()
    return released


def change_plan(engine: Engine, account_id: int, plan: str, *, on_queued: Callable[[], None] | None = None) -> int:
    """Put an account on another plan; returns how many waiting messages it released.

    In the same transaction, messages that waited for a plan (or for money) are priced
    on the new plan and queued while the money lasts, whichever front end changed the
    plan (CLI, operator portal): one rule, here. The key cache is told too (a key's
    plan decides its prices)."""
    with write(engine) as conn:
        _exists(conn, account_id)
        plan_id = conn.execute(sa.select(t.plans.c.id).where(t.plans.c.name == plan)).scalar()
        if plan_id is None:
            raise NotFound(f"no plan named {plan!r}")
        conn.execute(sa.update(t.accounts).where(t.accounts.c.id == account_id).values(plan_id=plan_id))
        authcache.invalidate(conn)
        released = release_waiting(conn, account_id)
        alerts.recheck(conn, [account_id])
    if released and on_queued is not None:
        on_queued()
    return released


def _exists(conn: Connection, account_id: int) -> None:
    if conn.execute(sa.select(t.accounts.c.id).where(t.accounts.c.id == account_id)).first() is None:
        raise NotFound("no such account")
