"""The status callbacks outbox: one row per state change a customer asked to hear of.

Rows are written in the transaction that makes the change (so a callback is never
lost and never announces a change that was rolled back); ``callbacks.CallbackSender``
drains them. The body built here is the callback's wire format (docs/API.md).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from uvox.db import schema as t
from uvox.dispatch.sqlbatch import chunks
from uvox.sms import states

M, A, CB = t.messages, t.accounts, t.callbacks


class Change(NamedTuple):
    """A message's new state, as its callback reports it."""

    message_id: int
    state: str
    error: str | None


_CALLBACK_TARGETS = (
    sa.select(
        M.c.id,
        M.c.account_id,
        M.c.recipient,
        M.c.segments,
        M.c.simulated,
        M.c.test,
        M.c.sender_used,
        M.c.sender,
        M.c.callback_url.label("m_url"),
        A.c.callback_url.label("a_url"),
    )
    .select_from(M.join(A, A.c.id == M.c.account_id))
    .where(
        M.c.id.in_(sa.bindparam("ids", expanding=True)),
        sa.or_(M.c.callback_url.is_not(None), A.c.callback_url.is_not(None)),
    )
)


def enqueue(conn: Connection, changes: list[Change], stamp: datetime) -> int:
    """Queue a callback for each change whose message (or account) has a callback URL."""
    ids = sorted({c.message_id for c in changes})
    info: dict[int, Any] = {}
    for chunk in chunks(ids):
        for row in conn.execute(_CALLBACK_TARGETS, {"ids": chunk}):
            info[row.id] = row
    rows = []
    for mid, state, error in changes:
        m = info.get(mid)
        if m is None:
            continue
        url = m.m_url or m.a_url
        if not url:
            continue
        code, text = states.callback_wording(state)
        body = {
            "messageId": str(mid),
            "to": m.recipient,
            "from": m.sender_used if m.sender_used is not None else m.sender,
            "state": state,
            "code": code,
            "statusmessage": text,
            "segments": str(m.segments),
            "error": error,
            # A test message (test mode, sms/testmode.py) reached no phone either.
            "simulated": bool(m.simulated or m.test),
            "timestamp": stamp.isoformat(),
        }
        if m.test:
            body["test"] = "1"  # as in every reply to a test key
        rows.append(
            {
                "account_id": m.account_id,
                "message_id": mid,
                "url": url,
                "body": json.dumps(body, separators=(",", ":")),
                "attempts": 0,
                "created_at": stamp,
                "next_attempt_at": stamp,
            }
        )
    if rows:
        conn.execute(sa.insert(CB), rows)
    return len(rows)


def enqueue_event(conn: Connection, account_id: int, event: dict[str, Any], stamp: datetime) -> bool:
    """Queue an account event (not a message's state, e.g. ``otp_prefix_paused``) for the
    account's callback URL, in the caller's transaction; False when it has none.
    Signed and retried like every callback; its ``event`` field tells it apart."""
    url = conn.execute(sa.select(A.c.callback_url).where(A.c.id == account_id)).scalar()
    if not url:
        return False
    conn.execute(
        sa.insert(CB).values(
            account_id=account_id,
            message_id=None,
            url=url,
            body=json.dumps(event, separators=(",", ":")),
            attempts=0,
            created_at=stamp,
            next_attempt_at=stamp,
        )
    )
    return True
