"""Encryption at rest for the few secrets the platform must read back.

A one-time code has to reach the SMSC in clear, so between intake and submission
the SMS text of an OTP message is kept AES-GCM encrypted (key derived from the
instance secret with HKDF); ``messages.text`` only ever holds the masked text, and
the ciphertext is erased once the carrier has accepted the message.
"""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def _key(secret: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"uvox:" + purpose).derive(secret)


def seal(secret: bytes, plaintext: str, purpose: bytes = b"message-text") -> str:
    nonce = os.urandom(12)
    data = AESGCM(_key(secret, purpose)).encrypt(nonce, plaintext.encode(), purpose)
    return base64.urlsafe_b64encode(nonce + data).decode()


def open_(secret: bytes, token: str, purpose: bytes = b"message-text") -> str:
    raw = base64.urlsafe_b64decode(token.encode())
    return AESGCM(_key(secret, purpose)).decrypt(raw[:12], raw[12:], purpose).decode()
