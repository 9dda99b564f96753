"""E-mail: a durable outbox and the task that sends it through SMTP.

A row is written with :func:`enqueue` in the transaction that decides to send it
(a low-balance alert is decided while charging), and sent afterwards by
:class:`Mailer`, listed in ``uvox.background``: no SMTP conversation ever
happens inside a transaction or while a request waits. The standard library's
``smtplib`` (in a thread) speaks SMTP; ``UVOX_SMTP_*`` (uvox.config) say where.
Without ``UVOX_SMTP_HOST`` nothing is sent: the rows are marked dropped and that is
logged once per process.

Rows are claimed like status callbacks: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL and
a lease (``next_attempt_at`` moved ahead), so any number of processes can send
without sending a message twice, and one a crash interrupted is sent again after
the lease. A failure is retried with backoff, up to ``MAX_ATTEMPTS``.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from uvox.clock import now
from uvox.config import Settings
from uvox.db import schema as t
from uvox.db.session import write
from uvox.platform import Platform

log = logging.getLogger("uvox.mail")

E = t.email_outbox
MAX_ATTEMPTS = 8
LEASE = timedelta(minutes=5)
POLL_SECONDS = 1.0
#: Seconds an SMTP server may take to answer one step.
SMTP_TIMEOUT = 30.0


def enqueue(
    conn: Connection,
    *,
    recipient: str,
    subject: str,
    body: str,
    account_id: int | None = None,
    stamp: datetime | None = None,
) -> None:
    """Queue one plain-text e-mail, inside the caller's transaction."""
    stamp = stamp or now()
    conn.execute(
        sa.insert(E).values(
            account_id=account_id,
            recipient=recipient[:254],
            subject=subject[:500],
            body=body,
            attempts=0,
            created_at=stamp,
            next_attempt_at=stamp,
        )
    )


def _claim(engine: Engine, limit: int = 20) -> Sequence[Any]:
    stamp = now()
    with write(engine) as conn:
        q = (
            sa.select(E.c.id, E.c.recipient, E.c.subject, E.c.body, E.c.attempts)
            .where(E.c.sent_at.is_(None), E.c.dropped_at.is_(None), E.c.next_attempt_at <= stamp)
            .order_by(E.c.next_attempt_at, E.c.id)
            .limit(limit)
        )
        if conn.dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        rows = conn.execute(q).all()
        if rows:
            conn.execute(sa.update(E).where(E.c.id.in_([r.id for r in rows])).values(next_attempt_at=stamp + LEASE))
    return rows


def _drop_pending(engine: Engine, reason: str) -> int:
    stamp = now()
    with write(engine) as conn:
        return conn.execute(
            sa.update(E)
            .where(E.c.sent_at.is_(None), E.c.dropped_at.is_(None))
            .values(dropped_at=stamp, last_error=reason)
        ).rowcount


def _record(engine: Engine, row_id: int, attempts: int, error: str | None) -> None:
    stamp = now()
    n = attempts + 1
    with write(engine) as conn:
        if error is None:
            conn.execute(sa.update(E).where(E.c.id == row_id).values(attempts=n, sent_at=stamp, last_error=None))
            return
        values: dict[str, Any] = {
            "attempts": n,
            "last_error": error[:500],
            "next_attempt_at": stamp + timedelta(seconds=min(30 * 2 ** (n - 1), 3600)),
        }
        if n >= MAX_ATTEMPTS:
            values["dropped_at"] = stamp
            log.warning("e-mail %s: giving up after %d attempts (%s)", row_id, n, error)
        conn.execute(sa.update(E).where(E.c.id == row_id).values(**values))


def send_one(settings: Settings, recipient: str, subject: str, body: str) -> None:
    """One message through the configured SMTP server (blocking; run in a thread)."""
    msg = EmailMessage()
    msg["From"] = settings.smtp_from
    msg["To"] = recipient
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain=settings.smtp_from.rpartition("@")[2] or None)
    msg.set_content(body)
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if settings.smtp_port == 465:  # implicit TLS ("SMTPS")
        smtp = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT, context=context)
    else:
        smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT)
    with smtp:
        if settings.smtp_starttls and settings.smtp_port != 465:
            smtp.starttls(context=context)
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password)
        smtp.send_message(msg)


class Mailer:
    """Drains the e-mail outbox while ``uvox serve`` runs."""

    def __init__(self, engine: Engine, settings: Settings, *, poll: float = POLL_SECONDS) -> None:
        self.engine = engine
        self.settings = settings
        self.poll = poll
        self._warned = False
        self.sent = 0

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                busy = await self.once()
            except Exception:
                log.exception("e-mail: cannot read the outbox")
                busy = False
            if not busy:
                try:
                    await asyncio.wait_for(stopping.wait(), self.poll)
                except TimeoutError:
                    pass

    async def once(self) -> bool:
        """Send what is due; whether there was anything."""
        if not self.settings.smtp_host:
            dropped = await asyncio.to_thread(_drop_pending, self.engine, "no SMTP server configured")
            if dropped and not self._warned:
                self._warned = True
                log.warning(
                    "e-mail is not sent: UVOX_SMTP_HOST is not set (%d message(s) dropped; this is said once)", dropped
                )
            return False
        rows = await asyncio.to_thread(_claim, self.engine)
        for r in rows:
            try:
                await asyncio.to_thread(send_one, self.settings, r.recipient, r.subject, r.body)
                error = None
                self.sent += 1
            except (OSError, smtplib.SMTPException) as exc:
                error = f"{type(exc).__name__}: {exc}"
                log.warning("e-mail %s to %s not sent: %s", r.id, r.recipient, error)
            await asyncio.to_thread(_record, self.engine, r.id, r.attempts, error)
        return bool(rows)


async def start_mailing(platform: Platform) -> Callable[[], Awaitable[None]] | None:
    """Run the :class:`Mailer` beside HTTP (``uvox.background``)."""
    stopping = asyncio.Event()
    mailer = Mailer(platform.engine, platform.settings)
    task = asyncio.create_task(mailer.run(stopping), name="uvox-mail")

    async def stop() -> None:
        stopping.set()
        try:
            await asyncio.wait_for(task, 10)
        except (TimeoutError, asyncio.CancelledError):
            task.cancel()

    return stop
