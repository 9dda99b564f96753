"""Messages that waited for a plan or for money, charged and queued once they can be.

Here, in billing, because pricing and charging are billing's and every money action
(top-up, credit limit, plan change in billing.service) needs it: in sms.intake it made
billing import sms inside functions to dodge the cycle sms -> billing -> sms. The
message states come from sms.states, the vocabulary leaf every layer may import.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from uvox.billing import caps, ledger, plans
from uvox.clock import now
from uvox.db import schema as t
from uvox.sms.states import MessageState

M = t.messages
QUEUED = MessageState.QUEUED
WAITING_BALANCE = MessageState.WAITING_BALANCE


def release_waiting(conn: Connection, account_id: int, limit: int = 10_000) -> int:
    """Charge and queue messages waiting for balance, oldest first, while money lasts.

    Prices are computed now, from the account's current plan: a message that waited
    because the account had no plan gets its first price here. A message whose
    destination the plan does not cover stays waiting (and expires with its validity).
    Returns how many were released. An account with spend caps releases a message
    only while its price fits under them (billing.caps); the rest keep waiting.
    """
    acct = conn.execute(sa.select(t.accounts.c.plan_id).where(t.accounts.c.id == account_id)).first()
    if acct is None or acct.plan_id is None:
        return 0
    waiting = conn.execute(
        sa.select(M.c.id, M.c.recipient, M.c.segments)
        .where(M.c.account_id == account_id, M.c.state == WAITING_BALANCE)
        .order_by(M.c.id)
        .limit(limit)
    ).all()
    released = 0
    stamp = now()
    account_caps = caps.lock_caps(conn, [account_id]).get(account_id) if waiting else None
    usage = caps.Usage.locked(conn, account_id, account_caps, stamp) if account_caps else None
    for w in waiting:
        rate = plans.lookup(conn, acct.plan_id, w.recipient)
        if rate is None:
            continue
        amount = rate.sms_rate * w.segments
        adding = caps.amounts([(w.recipient, amount)])
        if usage is not None and usage.refusal("sms", adding) is not None:
            break  # FIFO as below; it waits for the next period (or expires)
        if not ledger.try_charge(conn, account_id, amount):
            break  # FIFO: a later, cheaper message must not overtake this one
        if usage is not None:
            usage.add("sms", adding)
            caps.add_counted(conn, [(account_id, "sms", w.recipient, amount)], stamp)
        conn.execute(
            sa.update(M)
            .where(M.c.id == w.id, M.c.state == WAITING_BALANCE)
            .values(
                state=QUEUED,
                charged=True,
                price=amount,
                destination=rate.destination,
                updated_at=stamp,
                next_attempt_at=stamp,
            )
        )
        if amount > 0:
            ledger.record(
                conn,
                [
                    {
                        "account_id": account_id,
                        "kind": "charge",
                        "amount": -amount,
                        "message_id": w.id,
                        "note": "sms (released)",
                    }
                ],
            )
        released += 1
    return released
