"""Idempotency keys: a retried send gets its first reply back and sends nothing again.

A client that sends ``Idempotency-Key`` (or the ``idempotency_key`` variable) with a
send may retry it after a timeout without fear: within 24 hours, the same account
sending the same key with the same request (endpoint and variables; credentials and
the key itself left out) gets the first reply, byte for byte, and nothing is sent or
charged again. The same key with another request is refused.

The database is the only arbiter, so this holds across threads, processes and
machines: the key's row (unique on account and key) is inserted in the same
transaction as the messages and ledger rows of the send it answers, with the reply
already in it. Either both commit or neither does, and a reply is never seen
without its send, nor a send without its reply. A second request with the key
while the first is still in its transaction waits on the unique index (PostgreSQL
makes a conflicting insert wait for the transaction that holds the row; SQLite has
one writer at a time), then finds the row and answers with its reply.

Only sends that accepted something are remembered: a request refused (bad
template, no rate, rate limited) leaves the key free, so a retry is judged afresh,
as it would be without a key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from uvox.clock import now
from uvox.db import schema as t
from uvox.db.session import read, write

K = t.idempotency_keys

#: How long a key answers with its first reply.
TTL = timedelta(hours=24)
MAX_KEY_LENGTH = 255
#: Variables that are not part of what a request asks for: who asks, and the key.
IGNORED = frozenset({"apikey", "accountnumber", "idempotency_key", "Idempotency-Key"})


class BadKey(ValueError):
    """An idempotency key we cannot keep (empty, too long, control characters)."""


def check_key(raw: str) -> str:
    key = raw.strip()
    if not key:
        raise BadKey("the idempotency key is empty")
    if len(key) > MAX_KEY_LENGTH:
        raise BadKey(f"the idempotency key has {len(key)} characters, at most {MAX_KEY_LENGTH}")
    if not key.isprintable():
        raise BadKey("the idempotency key contains control characters")
    return key


def fingerprint(endpoint: str, variables: Iterable[tuple[str, list[str]]]) -> str:
    """SHA-256 of the endpoint and the variables (sorted by name, values in order).

    The credentials and the key are left out: a retry may authenticate with the
    header instead of the variables, or with the account's other key.
    """
    items = sorted((name, values) for name, values in variables if name not in IGNORED)
    return hashlib.sha256(orjson.dumps([endpoint, items])).hexdigest()


@dataclass(frozen=True)
class Request:
    account_id: int
    key: str
    digest: str


@dataclass(frozen=True)
class Answer:
    """A reply as sent: its code and its JSON body."""

    code: str
    body: bytes


@dataclass(frozen=True)
class Outcome:
    """What became of a keyed request: its answer (``replayed`` when it is the first
    request's), or ``mismatch`` when the key belongs to another request."""

    answer: Answer | None
    replayed: bool = False
    mismatch: bool = False


def _stored(row: sa.Row | None, req: Request) -> Outcome | None:
    if row is None:
        return None
    if row.digest != req.digest:
        return Outcome(None, mismatch=True)
    return Outcome(Answer(row.code, row.reply.encode()), replayed=True)


_FIND = sa.select(K.c.digest, K.c.code, K.c.reply).where(
    K.c.account_id == sa.bindparam("a"), K.c.key == sa.bindparam("k"), K.c.expires_at > sa.bindparam("at")
)


def find(engine: Engine, req: Request) -> Outcome | None:
    """The stored answer for the key, if a request already used it (a read, no lock):
    a retry is answered without queueing for the writer."""
    with read(engine) as conn:
        row = conn.execute(_FIND, {"a": req.account_id, "k": req.key, "at": now()}).first()
    return _stored(row, req)


def _claim_statement(dialect: str) -> sa.Insert:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    when = K.c.created_at.type
    values = {
        "account_id": sa.bindparam("a"),
        "key": sa.bindparam("k"),
        "digest": sa.bindparam("d"),
        "code": "",
        "reply": "",
        "created_at": sa.bindparam("at", type_=when),
        "expires_at": sa.bindparam("until", type_=when),
    }
    stmt = insert(K).values(**values)
    # An expired key is free again: its row is taken over, in place.
    return stmt.on_conflict_do_update(
        index_elements=[K.c.account_id, K.c.key],
        set_={
            "digest": stmt.excluded.digest,
            "code": "",
            "reply": "",
            "created_at": stmt.excluded.created_at,
            "expires_at": stmt.excluded.expires_at,
        },
        where=K.c.expires_at <= stmt.excluded.created_at,
    ).returning(K.c.id)


_CLAIM = {d: _claim_statement(d) for d in ("postgresql", "sqlite")}
_GET = sa.select(K.c.digest, K.c.code, K.c.reply).where(
    K.c.account_id == sa.bindparam("a"), K.c.key == sa.bindparam("k")
)


def once(conn: Connection, req: Request, send: Callable[[], tuple[Answer, bool]]) -> Outcome:
    """Run ``send`` unless the key was used; inside the caller's write transaction.

    ``send`` does the request's work on ``conn`` and returns its answer and whether
    to keep it (something was accepted). Kept, the answer is stored with the key
    in this transaction; not kept, the key is let go.
    """
    stamp = now()
    claimed = conn.execute(
        _CLAIM[conn.dialect.name],
        {"a": req.account_id, "k": req.key, "d": req.digest, "at": stamp, "until": stamp + TTL},
    ).first()
    if claimed is None:
        # Held by a request that committed (PostgreSQL waited for it) or that ran
        # before us in this very transaction: its answer is ours.
        outcome = _stored(conn.execute(_GET, {"a": req.account_id, "k": req.key}).first(), req)
        assert outcome is not None  # the conflicting row exists: ON CONFLICT found it
        return outcome
    answer, keep = send()
    if keep:
        conn.execute(sa.update(K).where(K.c.id == claimed.id).values(code=answer.code, reply=answer.body.decode()))
    else:
        conn.execute(sa.delete(K).where(K.c.id == claimed.id))
    return Outcome(answer)


def sweep(engine: Engine, at: datetime | None = None, limit: int = 5000) -> int:
    """Delete up to ``limit`` expired keys (an expired key is free anyway: this keeps
    the table at about one day of keys). Returns how many. Looks first, so a round
    with nothing to delete takes no write lock."""
    stamp = at or now()
    old = sa.select(K.c.id).where(K.c.expires_at <= stamp).order_by(K.c.expires_at).limit(limit)
    with read(engine) as conn:
        ids = list(conn.execute(old).scalars())
    if not ids:
        return 0
    with write(engine) as conn:
        # expires_at again: a key taken over since we looked is live, not ours to delete.
        return conn.execute(sa.delete(K).where(K.c.id.in_(ids), K.c.expires_at <= stamp)).rowcount or 0
