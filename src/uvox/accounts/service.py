"""Accounts: creation, lookup, passwords.

An account number is random (8 digits) rather than sequential, so that it does not
reveal how many customers the operator has.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Connection, Engine

from uvox.accounts import authcache, countries
from uvox.clock import now
from uvox.db import schema as t
from uvox.db.session import read, write
from uvox.errors import Conflict, NotFound

_hasher = PasswordHasher()  # argon2id with the library's current defaults


@dataclass(frozen=True)
class Account:
    id: int
    number: str
    email: str | None
    is_staff: bool
    plan_id: int | None
    currency: str
    balance: Decimal
    credit_limit: Decimal
    disabled: bool
    callback_url: str | None = None
    #: API requests a second the operator allows (None: no limit).
    rate_limit: int | None = None
    #: Authenticated with a test key (accounts.apikeys): sends never reach a carrier
    #: and never charge (uvox.sms.testmode). Never set for the portal's own account.
    test: bool = False
    #: Destination countries (uvox.accounts.countries): an allow list (empty: any) and a block list.
    allowed_countries: tuple[str, ...] = ()
    blocked_countries: tuple[str, ...] = ()

    @property
    def available(self) -> Decimal:
        return self.balance + self.credit_limit

    @classmethod
    def from_row(cls, row) -> Account:
        return cls(
            id=row.id,
            number=row.number,
            email=row.email,
            is_staff=bool(row.is_staff),
            plan_id=row.plan_id,
            currency=row.currency,
            balance=row.balance,
            credit_limit=row.credit_limit,
            disabled=bool(row.disabled),
            callback_url=row.callback_url,
            rate_limit=row.rate_limit,
            allowed_countries=countries.stored(row.allowed_countries),
            blocked_countries=countries.stored(row.blocked_countries),
        )


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(stored: str | None, password: str) -> bool:
    if not stored:
        # Spend the same time as a real check, so absent accounts are not revealed.
        _hasher.hash(password)
        return False
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def normalise_email(email: str) -> str:
    return email.strip().lower()


def _new_number(conn: Connection) -> str:
    while True:
        number = str(10_000_000 + secrets.randbelow(90_000_000))
        if conn.execute(sa.select(t.accounts.c.id).where(t.accounts.c.number == number)).first() is None:
            return number


EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
MIN_PASSWORD = 8
#: Longer passwords are refused rather than hashed: argon2 of megabytes is a cheap DoS.
MAX_PASSWORD = 1000


class PasswordProblem(StrEnum):
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"


def valid_email(email: str) -> bool:
    return bool(EMAIL.fullmatch(email)) and len(email) <= 254


def password_problem(password: str) -> PasswordProblem | None:
    """Why a new password is refused, or None: the rule of sign-up and password change."""
    if len(password) < MIN_PASSWORD:
        return PasswordProblem.TOO_SHORT
    if len(password) > MAX_PASSWORD:
        return PasswordProblem.TOO_LONG
    return None


def callback_url_ok(url: str) -> bool:
    """A status callback URL we accept: http(s), at most 2000 characters, no spaces or
    control characters (the API's ``callback_url`` and the portal's settings alike)."""
    return (
        url.startswith(("http://", "https://"))
        and len(url) <= 2000
        and not any(ord(ch) < 33 or ord(ch) == 127 for ch in url)
    )


def sign_up(engine: Engine, email: str, password: str, *, default_plan: str, default_currency: str) -> Account:
    """A customer's own account: on ``default_plan`` when the operator has created it,
    otherwise on no plan (its messages wait for one, code 009). Conflict when the
    e-mail is taken."""
    if default_plan:
        try:
            return create_account(
                engine, email=email, password=password, plan=default_plan, default_currency=default_currency
            )
        except NotFound:
            pass  # the operator has not created it yet: the account waits for a plan
    return create_account(engine, email=email, password=password, default_currency=default_currency)


def create_account(
    engine: Engine,
    *,
    email: str | None = None,
    password: str | None = None,
    plan: str | None = None,
    currency: str | None = None,
    is_staff: bool = False,
    default_currency: str = "US$",
) -> Account:
    """Create an account. ``plan`` is a plan name; the account takes its currency."""
    email = normalise_email(email) if email else None
    password_hash = hash_password(password) if password else None
    with write(engine) as conn:
        plan_id = None
        if plan:
            row = conn.execute(sa.select(t.plans).where(t.plans.c.name == plan)).first()
            if row is None:
                raise NotFound(f"no plan named {plan!r}")
            plan_id = row.id
            currency = currency or row.currency
        if email and conn.execute(sa.select(t.accounts.c.id).where(t.accounts.c.email == email)).first():
            raise Conflict(f"an account with e-mail {email} already exists")
        number = _new_number(conn)
        account_id = conn.execute(
            sa.insert(t.accounts)
            .values(
                number=number,
                email=email,
                password_hash=password_hash,
                is_staff=is_staff,
                plan_id=plan_id,
                currency=currency or default_currency,
                balance=Decimal(0),
                credit_limit=Decimal(0),
                disabled=False,
                created_at=now(),
            )
            .returning(t.accounts.c.id)
        ).scalar_one()
        return Account.from_row(conn.execute(sa.select(t.accounts).where(t.accounts.c.id == account_id)).one())


def get(conn: Connection, *, id: int | None = None, number: str | None = None, email: str | None = None) -> Account:
    q = sa.select(t.accounts)
    if id is not None:
        q = q.where(t.accounts.c.id == id)
    elif number is not None:
        q = q.where(t.accounts.c.number == str(number).strip())
    elif email is not None:
        q = q.where(t.accounts.c.email == normalise_email(email))
    else:
        raise ValueError("name the account")
    row = conn.execute(q).first()
    if row is None:
        raise NotFound("no such account")
    return Account.from_row(row)


def find(engine: Engine, ref: str) -> Account:
    """An account by number, e-mail or (for operators) internal id, as the CLI accepts."""
    with read(engine) as conn:
        ref = str(ref).strip()
        if "@" in ref:
            return get(conn, email=ref)
        return get(conn, number=ref)


def authenticate_password(engine: Engine, email: str, password: str) -> Account | None:
    with read(engine) as conn:
        row = conn.execute(sa.select(t.accounts).where(t.accounts.c.email == normalise_email(email))).first()
    if not check_password(row.password_hash if row else None, password) or row is None or row.disabled:
        return None
    return Account.from_row(row)


def set_password(engine: Engine, account_id: int, password: str) -> None:
    with write(engine) as conn:
        conn.execute(
            sa.update(t.accounts).where(t.accounts.c.id == account_id).values(password_hash=hash_password(password))
        )


def set_disabled(engine: Engine, account_id: int, disabled: bool) -> Account:
    """Disable (or enable again) an account: its API keys, portal sign-in and SIP
    accounts stop working on the next request of every process."""
    with write(engine) as conn:
        conn.execute(sa.update(t.accounts).where(t.accounts.c.id == account_id).values(disabled=disabled))
        _changed(conn)
        return get(conn, id=account_id)


def set_rate_limit(engine: Engine, account_id: int, per_second: int | None) -> Account:
    """Limit the account's API requests a second (None or 0: no limit), on the next
    request of every process."""
    if per_second is not None and per_second < 0:
        raise Conflict("a rate limit is a number of requests a second, 0 or more")
    with write(engine) as conn:
        conn.execute(sa.update(t.accounts).where(t.accounts.c.id == account_id).values(rate_limit=per_second or None))
        _changed(conn)
        return get(conn, id=account_id)


def _changed(conn: Connection) -> None:
    authcache.invalidate(conn)


def set_callback(
    engine: Engine, account_id: int, url: str | None, rotate_secret: bool = False
) -> tuple[str | None, str]:
    """Set the status callback URL; returns (url, signing secret), creating the secret once."""
    with write(engine) as conn:
        row = conn.execute(sa.select(t.accounts.c.callback_secret).where(t.accounts.c.id == account_id)).one()
        secret = row.callback_secret
        if not secret or rotate_secret:
            secret = secrets.token_hex(24)
        conn.execute(
            sa.update(t.accounts)
            .where(t.accounts.c.id == account_id)
            .values(callback_url=url or None, callback_secret=secret)
        )
        _changed(conn)
        return url or None, secret


def get_callback(engine: Engine, account_id: int) -> tuple[str | None, str | None]:
    """The status callback URL and its signing secret (None until one is set)."""
    with read(engine) as conn:
        row = conn.execute(
            sa.select(t.accounts.c.callback_url, t.accounts.c.callback_secret).where(t.accounts.c.id == account_id)
        ).one()
    return row.callback_url, row.callback_secret


def get_by_id(engine: Engine, account_id: int) -> Account:
    """An account by internal id (operator pages); NotFound when there is none."""
    with read(engine) as conn:
        return get(conn, id=account_id)


def list_accounts(engine: Engine, query: str = "", limit: int = 100, offset: int = 0) -> list[Account]:
    with read(engine) as conn:
        q = sa.select(t.accounts).order_by(t.accounts.c.id).limit(limit).offset(offset)
        if query:
            like = f"%{query.strip().lower()}%"
            q = q.where(sa.or_(t.accounts.c.email.like(like), t.accounts.c.number.like(like)))
        return [Account.from_row(r) for r in conn.execute(q)]
