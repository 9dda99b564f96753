"""Messages that waited past their validity end as expired, their money back."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from uvox.billing import ledger
from uvox.clock import now
from uvox.db import schema as t
from uvox.db.session import write
from uvox.dispatch import outbox
from uvox.sms.states import MessageState

M = t.messages
_WAITING = (MessageState.WAITING_BALANCE, MessageState.QUEUED)
_WHY = "validity period elapsed before it could be sent"


def expire(engine: Engine, limit: int = 1000) -> int:
    """End messages that waited (for balance or a route) past their validity.

    A queued message was charged: its money goes back, since it never left.
    """
    stamp = now()
    with write(engine) as conn:
        q = (
            sa.select(M.c.id, M.c.charged)
            .where(M.c.state.in_(_WAITING), M.c.expires_at.is_not(None), M.c.expires_at < stamp)
            .order_by(M.c.id)
            .limit(limit)
        )
        if conn.dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        rows = conn.execute(q).all()
        if not rows:
            return 0
        ids = [r.id for r in rows]
        conn.execute(
            sa.update(M)
            .where(M.c.id.in_(ids), M.c.state.in_(_WAITING))
            .values(state=MessageState.EXPIRED, done_at=stamp, updated_at=stamp, secret_text=None, error=_WHY)
        )
        for r in rows:
            if r.charged:
                ledger.refund_message(conn, r.id, "refund: expired before it was sent")
        outbox.enqueue(conn, [outbox.Change(i, MessageState.EXPIRED, _WHY) for i in ids], stamp)
    return len(rows)
