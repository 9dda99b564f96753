"""Single-use provisioning tokens.

A QR code must not carry the SIP password (a photo of the screen would leak
it), so it carries a random token instead. Only the SHA-256 of the token is
stored: a database dump cannot be replayed against the provisioning URLs.
SHA-256 rather than a slow password hash is enough because the token has 256
bits of entropy and lives minutes.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

TOKEN_TTL = timedelta(minutes=10)
KINDS = ("zoiper", "linphone")


def new_token() -> tuple[str, str]:
    """Return ``(token, token_hash)``: give the token out, store the hash."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def expiry(now: datetime | None = None, ttl: timedelta = TOKEN_TTL) -> datetime:
    return (now or utcnow()) + ttl


def utcnow() -> datetime:
    return datetime.now(UTC)
