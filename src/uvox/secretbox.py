"""Encryption at rest for the few secrets the platform must read back.

A one-time code has to reach the SMSC in clear, so between intake and submission
the SMS text of an OTP message is kept AES-GCM encrypted (key derived from the
instance secret with HKDF); ``messages.text`` only ever holds the masked text, and
the ciphertext is erased once the carrier has accepted the message.

The carriers' credentials are sealed the same way, each kind under a key of its
own (the ``purpose`` is both the HKDF info and the AES-GCM associated data, so a
token of one kind never opens as another): an SMPP connector's bind password
(``connectors.sealed_password``) and a voice trunk's digest password
(``trunks.sealed_password``). The carrier needs those in clear, so they cannot be
hashed; they are opened only where they are used (the bind, the reply to
Kamailio) and never logged. ``uvox db reseal`` (uvox.db.reseal) seals everything
again under a new instance secret.
"""

from __future__ import annotations

import base64
import functools
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

#: The purposes in use; each derives a key of its own from the instance secret.
MESSAGE_TEXT = b"message-text"
SMPP_PASSWORD = b"smpp-password"
TRUNK_PASSWORD = b"trunk-password"


def _key(secret: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"uvox:" + purpose).derive(secret)


@functools.lru_cache(maxsize=16)
def _aead(secret: bytes, purpose: bytes) -> AESGCM:
    """Derived once per secret and purpose: every call set-up opens its trunks' passwords."""
    return AESGCM(_key(secret, purpose))


def seal(secret: bytes, plaintext: str, purpose: bytes = MESSAGE_TEXT) -> str:
    nonce = os.urandom(12)
    data = _aead(secret, purpose).encrypt(nonce, plaintext.encode(), purpose)
    return base64.urlsafe_b64encode(nonce + data).decode()


def open_(secret: bytes, token: str, purpose: bytes = MESSAGE_TEXT) -> str:
    """The plaintext; ``cryptography.exceptions.InvalidTag`` when ``token`` was not
    sealed with this secret and purpose (or was altered)."""
    raw = base64.urlsafe_b64decode(token.encode())
    return _aead(secret, purpose).decrypt(raw[:12], raw[12:], purpose).decode()


def seal_optional(secret: bytes | None, plaintext: str, purpose: bytes) -> str:
    """A credential as stored: "" stays "" (no credential), anything else is sealed."""
    if not plaintext:
        return ""
    if secret is None:
        raise ValueError("a password is sealed with the instance secret: none was given")
    return seal(secret, plaintext, purpose)


def open_optional(secret: bytes, token: str, purpose: bytes) -> str:
    """The inverse of :func:`seal_optional`."""
    return open_(secret, token, purpose) if token else ""
