"""Portal cookies and CSRF tokens.

Sessions and sign-in throttling are uvox.accounts.sessions (they are rows in the
database); this module names the cookies and makes and checks CSRF tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SESSION_COOKIE = "uvox_session"
CSRF_COOKIE = "uvox_csrf"
LANG_COOKIE = "uvox_lang"


# --- CSRF ------------------------------------------------------------------------
# Double-submit, keyed: the form carries HMAC(instance secret, cookie value). A page
# on another site can make the browser send the cookie but can neither read it nor
# compute the HMAC, and the cookie itself is HttpOnly and SameSite=Lax.


def new_csrf_cookie() -> str:
    return secrets.token_urlsafe(32)


def csrf_token(secret: bytes, cookie: str) -> str:
    return hmac.new(secret, b"csrf:" + cookie.encode(), hashlib.sha256).hexdigest()


def csrf_ok(secret: bytes, cookie: str | None, submitted: str | None) -> bool:
    if not cookie or not submitted:
        return False
    # Bytes, not str: compare_digest refuses non-ASCII str, and a forged token may be anything.
    return hmac.compare_digest(csrf_token(secret, cookie).encode(), submitted.encode("utf-8", "replace"))
