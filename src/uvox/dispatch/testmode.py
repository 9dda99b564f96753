"""Test mode's timer: ending the messages that test keys sent (see uvox.sms.testmode).

Intake stores a test message ``submitted`` with a ``test_deliveries`` row. The
dispatcher's test-mode round (``Dispatcher._test_loop``) calls :func:`advance`,
which queues the "submitted" status callback of each new row and, once a row is
due, gives its message the final state its number chose and queues that callback
too: the callbacks a live message fires, with the same body (``outbox.enqueue``).
Rows are durable, so a restart delays a test message but never loses it, and on
PostgreSQL several dispatchers share the rows (``FOR UPDATE SKIP LOCKED``; the
UPDATE is conditional on the message still being ``submitted``), so each state
change and its callback happen once.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from uvox.clock import aware, now
from uvox.db import schema as t
from uvox.db.session import read
from uvox.dispatch import outbox
from uvox.dispatch.sqlbatch import chunks
from uvox.sms import testmode
from uvox.sms.states import MessageState

TD, M = t.test_deliveries, t.messages
SUBMITTED = MessageState.SUBMITTED


def _waiting(stamp: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(TD.c.announced.is_(False), TD.c.due_at <= stamp)


def anything_due(engine: Engine) -> bool:
    """Whether :func:`advance` has work: one read of a table that is empty unless
    test keys are in use, so the round costs nothing on a live platform (and takes
    no write lock on SQLite)."""
    with read(engine) as conn:
        return conn.execute(sa.select(TD.c.message_id).where(_waiting(now())).limit(1)).first() is not None


def advance(conn: Connection, limit: int = 1000) -> int:
    """Announce new test messages and end the due ones, in ``conn``'s transaction;
    returns how many callbacks were queued."""
    stamp = now()
    q = (
        sa.select(TD.c.message_id, TD.c.final_state, TD.c.announced, TD.c.due_at)
        .where(_waiting(stamp))
        .order_by(TD.c.due_at, TD.c.message_id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    rows = conn.execute(q).all()
    if not rows:
        return 0
    fresh = [r.message_id for r in rows if not r.announced]
    due = [r for r in rows if aware(r.due_at) <= stamp]
    changes = [outbox.Change(mid, SUBMITTED, None) for mid in fresh]
    by_state: dict[str, list[int]] = defaultdict(list)
    for r in due:
        by_state[r.final_state].append(r.message_id)
    for state, ids in by_state.items():
        error = testmode.ERRORS.get(state)
        for chunk in chunks(ids):
            ended = (
                conn.execute(
                    sa.update(M)
                    .where(M.c.id.in_(chunk), M.c.state == SUBMITTED, M.c.test.is_(True))
                    .values(state=state, error=error, done_at=stamp, updated_at=stamp)
                    .returning(M.c.id)
                )
                .scalars()
                .all()
            )
            changes.extend(outbox.Change(mid, state, error) for mid in sorted(ended))
    due_ids = [r.message_id for r in due]
    for chunk in chunks(due_ids):
        conn.execute(sa.delete(TD).where(TD.c.message_id.in_(chunk)))
    still = sorted(set(fresh) - set(due_ids))
    for chunk in chunks(still):
        conn.execute(sa.update(TD).where(TD.c.message_id.in_(chunk)).values(announced=True))
    return outbox.enqueue(conn, changes, stamp) if changes else 0
