"""Claiming: which queued messages this dispatcher sends now, and giving back what a dead one held."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from uvox import secretbox
from uvox.clock import now
from uvox.db import schema as t
from uvox.db.session import write
from uvox.sms.states import MessageState

log = logging.getLogger("uvox.dispatch")

M, PARTS = t.messages, t.message_parts
QUEUED, SUBMITTING = MessageState.QUEUED, MessageState.SUBMITTING


@dataclass(slots=True)
class Claimed:
    id: int
    account_id: int
    sender: str
    recipient: str
    text: str
    attempts: int
    connector: str
    #: Parts an earlier attempt got accepted (replaced, never changed in place).
    done_parts: frozenset[int] | set[int] = frozenset()


def requeue_submitting(
    engine: Engine, connectors: list[str] | None = None, except_ids: set[int] | frozenset[int] = frozenset()
) -> int:
    """Messages left half-way by a dispatcher that died go back to the queue.

    Called by whoever takes a connector over (or starts, on SQLite). Parts already
    accepted are remembered in message_parts and not sent again; the ones that were
    in flight at the crash may be, which is the window's worth of duplicates SMPP
    allows (the SMSC's answer was lost with the process).
    """
    with write(engine) as conn:
        q = sa.update(M).where(M.c.state == SUBMITTING)
        if connectors is not None:
            q = q.where(M.c.connector.in_(connectors))
        if except_ids:
            q = q.where(M.c.id.not_in(list(except_ids)))
        n: int = conn.execute(q.values(state=QUEUED, connector=None, updated_at=now(), next_attempt_at=now())).rowcount
    if n:
        log.warning(
            "dispatch: %d message(s) left in flight by a previous owner of %s re-queued",
            n,
            connectors or "any connector",
        )
    return n


def claim_in(
    conn: Connection,
    *,
    limit: int,
    mine: set[str],
    up: set[str],
    choose: Callable[[str], str | None],
    unroutable_delay: float = 5.0,
    secret: bytes | None = None,
) -> list[Claimed]:
    """Take up to ``limit`` due messages this worker can send now (in ``conn``'s transaction).

    On PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets any number of workers claim at
    once without waiting for or doubling each other. A message whose best route is
    held by another worker is tagged with that connector and left for it; one with
    no route up waits ``unroutable_delay`` before it is looked at again.

    A one-time code's SMS is stored masked; its real text is sealed in
    ``secret_text`` and opened here with the instance ``secret``, so the phone gets
    the code and nothing but the carrier's PDU ever holds it in clear.
    """
    stamp = now()
    q = (
        sa.select(
            M.c.id, M.c.account_id, M.c.sender, M.c.recipient, M.c.text, M.c.secret_text, M.c.attempts, M.c.connector
        )
        .where(M.c.state == QUEUED, sa.or_(M.c.next_attempt_at.is_(None), M.c.next_attempt_at <= stamp))
        .order_by(M.c.id)
        .limit(limit)
    )
    others = up - mine
    if others:
        q = q.where(sa.or_(M.c.connector.is_(None), M.c.connector.not_in(others)))
    if conn.dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True, of=M)
    rows = conn.execute(q).all()
    if not rows:
        return []
    local: dict[str, list[Any]] = defaultdict(list)
    remote: dict[str, list[int]] = defaultdict(list)
    stuck: list[int] = []
    for r in rows:
        target = choose(r.recipient)
        if target is None:
            stuck.append(r.id)
        elif target in mine:
            local[target].append(r)
        elif r.connector != target:
            remote[target].append(r.id)
    for name, items in local.items():
        conn.execute(_MARK_SUBMITTING, {"ids": [r.id for r in items], "connector": name, "stamp": stamp})
    for name, ids in remote.items():
        conn.execute(sa.update(M).where(M.c.id.in_(ids)).values(connector=name))
    if stuck:
        conn.execute(
            sa.update(M).where(M.c.id.in_(stuck)).values(next_attempt_at=stamp + timedelta(seconds=unroutable_delay))
        )
    claimed = [
        Claimed(r.id, r.account_id, r.sender, r.recipient, _real_text(r, secret), r.attempts + 1, name)
        for name, items in local.items()
        for r in items
    ]
    retried = [c.id for c in claimed if c.attempts > 1]
    if retried:
        done: dict[int, set[int]] = defaultdict(set)
        for mid, part_no in conn.execute(
            sa.select(PARTS.c.message_id, PARTS.c.part_no).where(
                PARTS.c.message_id.in_(retried), PARTS.c.smsc_message_id.is_not(None)
            )
        ):
            done[mid].add(part_no)
        for c in claimed:
            c.done_parts = done.get(c.id, frozenset())
    claimed.sort(key=lambda c: c.id)
    return claimed


_MARK_SUBMITTING = (
    sa.update(M)
    .where(M.c.id.in_(sa.bindparam("ids", expanding=True)))
    .values(
        state=SUBMITTING,
        connector=sa.bindparam("connector"),
        attempts=M.c.attempts + 1,
        updated_at=sa.bindparam("stamp"),
    )
)


def _real_text(row: sa.Row[Any], secret: bytes | None) -> str:
    if row.secret_text and secret is not None:
        return secretbox.open_(secret, row.secret_text)
    text: str = row.text
    return text
