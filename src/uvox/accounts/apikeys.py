"""API keys: at most three active per account, shown once, stored as SHA-256.

A key has 160 random bits, so a fast hash is as safe as a slow one and lets every
request be authenticated with one indexed lookup.

A test key (``test=True``) authenticates the same account, but what it sends never
reaches a carrier and is never charged (``uvox.sms.testmode``): the account the API
sees has ``test`` set.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from uvox.accounts import authcache
from uvox.accounts.service import Account
from uvox.clock import now
from uvox.db import schema as t
from uvox.db.session import read, write
from uvox.errors import Conflict, NotFound

MAX_ACTIVE = 3


@dataclass(frozen=True)
class ApiKey:
    id: int
    hint: str
    description: str
    created_at: datetime
    revoked_at: datetime | None
    #: A test key: never reaches a carrier, never charges.
    test: bool = False


def new_key() -> str:
    # 20 random bytes = 160 bits, as 32 characters of upper-case base32 (like the
    # manual's example key: letters and digits, safe in a URL and a form).
    return base64.b32encode(secrets.token_bytes(20)).decode()


def key_hash(key: str) -> str:
    return hashlib.sha256(key.strip().encode()).hexdigest()


def create(
    engine: Engine, account_id: int, description: str = "", limit: int = MAX_ACTIVE, *, test: bool = False
) -> tuple[str, ApiKey]:
    """Create a key and return it in clear (the only time it exists in clear).

    Test keys count towards ``limit`` like live ones."""
    description = (description or "").strip()[:200]
    key = new_key()
    with write(engine) as conn:
        active = conn.execute(
            sa.select(sa.func.count())
            .select_from(t.api_keys)
            .where(t.api_keys.c.account_id == account_id, t.api_keys.c.revoked_at.is_(None))
        ).scalar_one()
        if active >= limit:
            raise Conflict(f"an account may have at most {limit} active API keys; revoke one first")
        created = now()
        key_id = conn.execute(
            sa.insert(t.api_keys)
            .values(
                account_id=account_id,
                key_hash=key_hash(key),
                hint=key[:4] + "…" + key[-4:],
                description=description,
                test=test,
                created_at=created,
            )
            .returning(t.api_keys.c.id)
        ).scalar_one()
    return key, ApiKey(key_id, key[:4] + "…" + key[-4:], description, created, None, test)


def list_keys(engine: Engine, account_id: int, include_revoked: bool = False) -> list[ApiKey]:
    q = sa.select(t.api_keys).where(t.api_keys.c.account_id == account_id).order_by(t.api_keys.c.id)
    if not include_revoked:
        q = q.where(t.api_keys.c.revoked_at.is_(None))
    with read(engine) as conn:
        return [ApiKey(r.id, r.hint, r.description, r.created_at, r.revoked_at, bool(r.test)) for r in conn.execute(q)]


def revoke(engine: Engine, account_id: int, key_id: int) -> None:
    with write(engine) as conn:
        done = conn.execute(
            sa.update(t.api_keys)
            .where(t.api_keys.c.id == key_id, t.api_keys.c.account_id == account_id, t.api_keys.c.revoked_at.is_(None))
            .values(revoked_at=now())
        ).rowcount
        if done:
            authcache.invalidate(conn)
    if not done:
        raise NotFound("no such active API key")


def cached(engine: Engine, key: str) -> Account | None:
    """The account of a key read since the last change anywhere (see authcache)."""
    return authcache.get(engine, key_hash(key))


def authenticate(engine: Engine, key: str) -> Account | None:
    if not key or len(key) > 200:
        return None
    digest = key_hash(key)
    read_in = authcache.epoch(engine)  # before the read: a change committed after it starts a new epoch
    with read(engine) as conn:
        row = conn.execute(
            sa.select(t.accounts, t.api_keys.c.test.label("key_test"))
            .join(t.api_keys, t.api_keys.c.account_id == t.accounts.c.id)
            .where(t.api_keys.c.key_hash == digest, t.api_keys.c.revoked_at.is_(None))
        ).first()
    if row is None or row.disabled:
        authcache.forget(engine, digest)
        return None
    account = Account.from_row(row)
    if row.key_test:
        account = replace(account, test=True)
    authcache.put(engine, digest, read_in, account)
    return account
