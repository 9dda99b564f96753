"""Status callbacks: drain the ``callbacks`` outbox with signed POSTs and retries.

Rows are written in the same transaction as the state change they report, so a
callback is never lost and never announces a change that was rolled back. This
sender runs beside the dispatcher, never inside it: a slow customer endpoint
delays only its own callbacks.

Each POST carries ``X-UVox-Signature: sha256=<hex HMAC-SHA256 of the raw body,
keyed with the account's callback secret>`` (absent when the account has no
secret) and ``X-UVox-Delivery: <callback id>`` so receivers can drop repeats.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from uvox.clock import now
from uvox.db import schema as t
from uvox.db.session import write

log = logging.getLogger("uvox.dispatch.callbacks")

CB, A = t.callbacks, t.accounts

MAX_ATTEMPTS = 12
#: While a sender works on a row, others leave it alone this long.
LEASE = timedelta(seconds=60)


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff(attempts: int, base: float) -> float:
    """base, 2·base, 4·base ... capped at one hour."""
    return min(base * (2.0 ** max(0, attempts - 1)), 3600.0)


def claim_due(engine: Engine, limit: int = 100) -> Sequence[Any]:
    """Due callbacks, oldest first, each only once every earlier one of its message is through.

    A message's callbacks thus arrive in the order its states changed, even when one
    of them needed retries.
    """
    stamp = now()
    earlier = CB.alias("earlier")
    blocked = (
        sa.select(earlier.c.id)
        .where(
            earlier.c.delivered_at.is_(None),
            earlier.c.message_id == CB.c.message_id,
            earlier.c.id < CB.c.id,
            earlier.c.attempts < MAX_ATTEMPTS,
        )
        .exists()
    )
    with write(engine) as conn:
        q = (
            sa.select(CB.c.id, CB.c.url, CB.c.body, CB.c.attempts, A.c.callback_secret)
            .select_from(CB.join(A, A.c.id == CB.c.account_id))
            .where(CB.c.delivered_at.is_(None), CB.c.next_attempt_at <= stamp, CB.c.attempts < MAX_ATTEMPTS, ~blocked)
            .order_by(CB.c.next_attempt_at, CB.c.id)
            .limit(limit)
        )
        if conn.dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True, of=CB)
        rows = conn.execute(q).all()
        if rows:
            conn.execute(sa.update(CB).where(CB.c.id.in_([r.id for r in rows])).values(next_attempt_at=stamp + LEASE))
    return rows


def record(engine: Engine, results: list[tuple[int, int, str | None]], base: float) -> None:
    """results: (callback id, attempts before this one, error or None)."""
    stamp = now()
    with write(engine) as conn:
        for cid, attempts, error in results:
            n = attempts + 1
            if error is None:
                conn.execute(
                    sa.update(CB).where(CB.c.id == cid).values(attempts=n, delivered_at=stamp, last_error=None)
                )
            else:
                if n >= MAX_ATTEMPTS:
                    log.warning("callback %s: giving up after %d attempts (%s)", cid, n, error)
                conn.execute(
                    sa.update(CB)
                    .where(CB.c.id == cid)
                    .values(
                        attempts=n, last_error=error[:500], next_attempt_at=stamp + timedelta(seconds=backoff(n, base))
                    )
                )


class CallbackSender:
    def __init__(
        self,
        engine: Engine,
        *,
        base_backoff: float = 5.0,
        concurrency: int = 20,
        timeout: float = 10.0,
        poll: float = 0.5,
    ) -> None:
        self.engine = engine
        self.base_backoff = base_backoff
        self.poll = poll
        self._sem = asyncio.Semaphore(concurrency)
        self._timeout = timeout
        self._wake = asyncio.Event()
        self.sent = 0
        self.failed = 0

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stopping: asyncio.Event) -> None:
        async with httpx.AsyncClient(
            timeout=self._timeout, follow_redirects=False, headers={"User-Agent": "UVox-Callbacks/1"}
        ) as client:
            while not stopping.is_set():
                try:
                    rows = await asyncio.to_thread(claim_due, self.engine)
                except Exception:
                    log.exception("callbacks: cannot read the outbox")
                    rows = []
                if rows:
                    results = await asyncio.gather(*(self._post(client, r) for r in rows))
                    try:
                        await asyncio.to_thread(record, self.engine, results, self.base_backoff)
                    except Exception:
                        log.exception("callbacks: cannot record results (they will be retried)")
                    continue
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self.poll)
                except TimeoutError:
                    pass

    async def _post(self, client: httpx.AsyncClient, row: Any) -> tuple[int, int, str | None]:
        body = row.body.encode()
        headers = {"Content-Type": "application/json", "X-UVox-Delivery": str(row.id)}
        if row.callback_secret:
            headers["X-UVox-Signature"] = sign(row.callback_secret, body)
        async with self._sem:
            try:
                r = await client.post(row.url, content=body, headers=headers)
            except httpx.HTTPError as e:
                self.failed += 1
                return row.id, row.attempts, f"{type(e).__name__}: {e}"[:500]
        if 200 <= r.status_code < 300:
            self.sent += 1
            return row.id, row.attempts, None
        self.failed += 1
        return row.id, row.attempts, f"HTTP {r.status_code}"
