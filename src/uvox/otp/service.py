"""One-time codes: templates, sessions, verification.

Security choices, each against a known attack on OTP systems:
- codes come from ``secrets`` and are stored only as HMAC-SHA256(instance secret,
  session id + code): a database dump reveals no code, and 10^6 guesses per session
  cannot be run offline without the secret;
- comparison is constant-time (``hmac.compare_digest``);
- a session locks after ``otp_max_attempts`` wrong codes (atomic counter), and a code
  is single-use (conditional UPDATE, so two concurrent right answers cannot both win);
- sends per phone number, per number prefix, per client address and per account are
  limited, destination countries can be allowed or blocked, and a prefix whose codes
  are seldom verified is paused (uvox.otp.guard: SMS pumping);
- the session id is 192 random bits and is scoped to the account that created it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from uvox.clock import aware, now
from uvox.db import schema as t
from uvox.db.session import read, write
from uvox.errors import NotFound

S = t.otp_sessions
T = t.otp_templates

CODE_PLACEHOLDER = "{code}"


@dataclass(frozen=True)
class Template:
    id: int
    ref_id: str
    name: str
    text: str
    sender: str


def _template(row) -> Template:
    return Template(row.id, row.ref_id, row.name, row.text, row.sender)


def validate_template_text(text: str) -> str:
    text = (text or "").strip()
    if "\x00" in text:
        raise ValueError("the text must not contain NUL characters")
    if CODE_PLACEHOLDER not in text:
        raise ValueError("the text must contain {code} where the one-time code goes")
    if len(text) > 480:
        raise ValueError("the text is too long (480 characters at most)")
    return text


def create_template(engine: Engine, account_id: int, text: str, name: str = "", sender: str = "") -> Template:
    text = validate_template_text(text)
    ref_id = secrets.token_hex(8)
    stamp = now()
    with write(engine) as conn:
        tid = conn.execute(
            sa.insert(T)
            .values(
                account_id=account_id,
                ref_id=ref_id,
                name=(name or "").strip()[:200],
                text=text,
                sender=(sender or "").strip()[:20],
                created_at=stamp,
                updated_at=stamp,
            )
            .returning(T.c.id)
        ).scalar_one()
    return Template(tid, ref_id, name, text, sender)


def update_template(
    engine: Engine, account_id: int, template_id: int, *, text: str, name: str = "", sender: str = ""
) -> Template:
    text = validate_template_text(text)
    with write(engine) as conn:
        done = conn.execute(
            sa.update(T)
            .where(T.c.id == template_id, T.c.account_id == account_id)
            .values(text=text, name=(name or "").strip()[:200], sender=(sender or "").strip()[:20], updated_at=now())
        ).rowcount
        if not done:
            raise NotFound("no such template")
        return _template(conn.execute(sa.select(T).where(T.c.id == template_id)).one())


def delete_template(engine: Engine, account_id: int, template_id: int) -> None:
    with write(engine) as conn:
        if not conn.execute(sa.delete(T).where(T.c.id == template_id, T.c.account_id == account_id)).rowcount:
            raise NotFound("no such template")


def list_templates(engine: Engine, account_id: int) -> list[Template]:
    with read(engine) as conn:
        return [_template(r) for r in conn.execute(sa.select(T).where(T.c.account_id == account_id).order_by(T.c.id))]


def find_template(conn: Connection, account_id: int, ref_id: str) -> Template | None:
    row = conn.execute(sa.select(T).where(T.c.ref_id == ref_id.strip(), T.c.account_id == account_id)).first()
    return _template(row) if row else None


def new_code(digits: int = 6) -> str:
    return str(secrets.randbelow(10**digits)).zfill(digits)


def new_session_id() -> str:
    return secrets.token_urlsafe(24)


def code_hash(secret: bytes, session_id: str, code: str) -> str:
    return hmac.new(secret, f"{session_id}:{code}".encode(), hashlib.sha256).hexdigest()


def recent_sends(conn: Connection, account_id: int, phone: str, window_seconds: int) -> int:
    since = now() - timedelta(seconds=window_seconds)
    return conn.execute(
        sa.select(sa.func.count())
        .select_from(S)
        .where(S.c.account_id == account_id, S.c.phone == phone, S.c.created_at >= since)
    ).scalar_one()


def open_session(
    conn: Connection,
    secret: bytes,
    *,
    account_id: int,
    template_id: int,
    phone: str,
    code: str,
    message_id: int | None,
    ttl_seconds: int,
    prefix: str | None = None,
    address: str | None = None,
) -> str:
    """``prefix`` and ``address`` are what uvox.otp.guard counts requests by."""
    session_id = new_session_id()
    stamp = now()
    conn.execute(
        sa.insert(S).values(
            session_id=session_id,
            account_id=account_id,
            template_id=template_id,
            phone=phone,
            prefix=prefix,
            address=address[:64] if address else address,
            code_hash=code_hash(secret, session_id, code),
            message_id=message_id,
            attempts=0,
            created_at=stamp,
            expires_at=stamp + timedelta(seconds=ttl_seconds),
        )
    )
    return session_id


def verify(conn: Connection, secret: bytes, account_id: int, session_id: str, code: str, max_attempts: int) -> str:
    """Check a code inside the caller's write transaction; returns the manual's code (103: locked)."""
    session_id = (session_id or "").strip()
    code = (code or "").strip()
    if not session_id or len(session_id) > 128 or not session_id.isprintable():
        return "024"
    # FOR UPDATE (PostgreSQL): concurrent guesses on one session queue up behind each
    # other, so the attempt limit holds under parallel requests too.
    row = conn.execute(
        sa.select(S).where(S.c.session_id == session_id, S.c.account_id == account_id).with_for_update()
    ).first()
    if row is None:
        return "024"
    if row.used_at is not None:
        return "026"
    if row.attempts >= max_attempts:
        return "103"
    if aware(row.expires_at) <= now():
        return "023"
    expected = row.code_hash
    given = code_hash(secret, session_id, code)
    if hmac.compare_digest(expected, given):
        used = conn.execute(
            sa.update(S)
            .where(S.c.id == row.id, S.c.used_at.is_(None), S.c.attempts < max_attempts)
            .values(used_at=now())
        ).rowcount
        return "027" if used == 1 else "026"
    conn.execute(sa.update(S).where(S.c.id == row.id).values(attempts=S.c.attempts + 1))
    # The attempt that reaches the limit still learns only "mismatch"; every
    # later one, right or wrong, is refused with 103 until a new code is requested.
    return "025"
