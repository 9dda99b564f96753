"""SIP digest credentials.

Kamailio's auth_db authenticates REGISTER from precomputed digest hashes
(``calculate_ha1 0``), so the platform never keeps a SIP password: it keeps
``ha1`` (for ``user``) and ``ha1b`` (for ``user@domain`` usernames, which some
phones send). MD5 is imposed by RFC 2617 digest auth, not chosen here; the hash
is as sensitive as the password for this realm, so it is only served to the
device being provisioned (Linphone) and never shown in the portal.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string

# Usernames are digits so that any phone keypad and any carrier can dial them
# as extensions; passwords avoid characters that look alike when typed by hand.
USERNAME_DIGITS = 6
PASSWORD_LENGTH = 16
_PASSWORD_ALPHABET = "".join(c for c in string.ascii_letters + string.digits if c not in "0OoIl1")
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")

TRANSPORTS = ("udp", "tcp", "tls")


def ha1(username: str, realm: str, password: str) -> str:
    """``md5(user:realm:password)``, the ha1 column of Kamailio's subscriber."""
    return hashlib.md5(f"{username}:{realm}:{password}".encode()).hexdigest()


def ha1b(username: str, domain: str, realm: str, password: str) -> str:
    """``md5(user@domain:realm:password)``, the ha1b column of Kamailio's subscriber."""
    return hashlib.md5(f"{username}@{domain}:{realm}:{password}".encode()).hexdigest()


def check_password(username: str, realm: str, password: str, stored_ha1: str) -> bool:
    """True when ``password`` is the account's SIP password (constant-time)."""
    if not password or not stored_ha1:
        return False
    return hmac.compare_digest(ha1(username, realm, password), stored_ha1.lower())


def new_password() -> str:
    """A fresh random SIP password (about 92 bits)."""
    return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))


def new_username(prefix: str = "") -> str:
    """A candidate SIP username: ``prefix`` (the account number) plus random digits.

    The caller retries on a unique-constraint clash; with 10**6 suffixes per
    account a clash is rare, and random rather than sequential suffixes do not
    reveal how many devices a customer has.
    """
    suffix = "".join(secrets.choice(string.digits) for _ in range(USERNAME_DIGITS))
    return f"{prefix}{suffix}"


def normalize_transport(value: str | None) -> str:
    """``UDP``/``tcp``/... to one of TRANSPORTS (stored lower-case); ValueError otherwise."""
    t = (value or "udp").strip().lower()
    if t not in TRANSPORTS:
        raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, not {value!r}")
    return t
