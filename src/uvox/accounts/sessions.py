"""Portal sessions and sign-in throttling: who is signed in, who may try again.

Sessions live in the database (only a SHA-256 of the cookie's token), so signing
out or changing the password really ends them, in every process. Throttling counts
failed attempts in the database too, so several ``uvox serve`` workers behind a
load balancer share one budget per account and per address. The portal
(uvox.portal.security, web, customer) holds the cookies and calls these.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from uvox.accounts.service import Account
from uvox.clock import aware, now
from uvox.db import schema as t
from uvox.db.session import read, write

SESSION_DAYS = 7

#: Failed sign-ins allowed per e-mail, and per client address, in WINDOW.
MAX_FAILS_PER_ACCOUNT = 5
MAX_FAILS_PER_ADDRESS = 20
#: Accounts one address may create in WINDOW (stops scripted sign-up floods).
MAX_SIGNUPS_PER_ADDRESS = 10
WINDOW = timedelta(minutes=15)

S = t.portal_sessions
A = t.signin_attempts


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- sessions ------------------------------------------------------------------


def open_session(engine: Engine, account_id: int, address: str) -> str:
    token = secrets.token_urlsafe(32)
    stamp = now()
    with write(engine) as conn:
        conn.execute(sa.delete(S).where(S.c.expires_at < stamp))
        conn.execute(
            sa.insert(S).values(
                token_hash=_digest(token),
                account_id=account_id,
                created_at=stamp,
                expires_at=stamp + timedelta(days=SESSION_DAYS),
                address=address[:64],
            )
        )
    return token


def session_account(engine: Engine, token: str | None) -> Account | None:
    if not token or len(token) > 100:
        return None
    with read(engine) as conn:
        row = conn.execute(
            sa.select(t.accounts, S.c.expires_at.label("session_expires"))
            .join(S, S.c.account_id == t.accounts.c.id)
            .where(S.c.token_hash == _digest(token))
        ).first()
    if row is None or aware(row.session_expires) <= now() or row.disabled:
        return None
    return Account.from_row(row)


def close_session(engine: Engine, token: str | None) -> None:
    if token:
        with write(engine) as conn:
            conn.execute(sa.delete(S).where(S.c.token_hash == _digest(token)))


def close_other_sessions(engine: Engine, account_id: int, keep_token: str | None) -> None:
    """After a password change every other browser must sign in again."""
    with write(engine) as conn:
        q = sa.delete(S).where(S.c.account_id == account_id)
        if keep_token:
            q = q.where(S.c.token_hash != _digest(keep_token))
        conn.execute(q)


# --- throttling ------------------------------------------------------------------


def _count(conn, kind: str, since, **where) -> int:
    q = sa.select(sa.func.count()).select_from(A).where(A.c.kind == kind, A.c.created_at >= since)
    if kind == "signin":
        q = q.where(A.c.ok.is_(False))
    for col, value in where.items():
        q = q.where(A.c[col] == value)
    return conn.execute(q).scalar_one()


def signin_blocked(engine: Engine, email: str, address: str) -> bool:
    since = now() - WINDOW
    with read(engine) as conn:
        return (
            _count(conn, "signin", since, email=email) >= MAX_FAILS_PER_ACCOUNT
            or _count(conn, "signin", since, address=address) >= MAX_FAILS_PER_ADDRESS
        )


def signup_blocked(engine: Engine, address: str) -> bool:
    with read(engine) as conn:
        return _count(conn, "signup", now() - WINDOW, address=address) >= MAX_SIGNUPS_PER_ADDRESS


def record_attempt(engine: Engine, kind: str, email: str, address: str, ok: bool) -> None:
    stamp = now()
    with write(engine) as conn:
        if kind == "signin" and ok:
            # A right password clears the account's failures (not the address's).
            conn.execute(sa.delete(A).where(A.c.kind == "signin", A.c.email == email, A.c.ok.is_(False)))
        conn.execute(sa.delete(A).where(A.c.created_at < stamp - 4 * WINDOW))
        conn.execute(sa.insert(A).values(kind=kind, email=email[:254], address=address[:64], ok=ok, created_at=stamp))
