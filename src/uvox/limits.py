"""Limits on what one HTTP request may make the platform read.

Headers are checked once uvicorn has parsed them (431); bodies as they arrive, by a
``receive`` that counts bytes, so no body is ever buffered past its limit whatever
its content type or transfer encoding (a chunked multipart upload has no
Content-Length to refuse it by, and the multipart parser only caps each field).
"""

from __future__ import annotations

from starlette.types import Message, Receive

from uvox.strings import is_digits

#: 431 above these: no client of ours needs more, and huge headers are how slow or
#: hostile clients pin memory.
MAX_HEADER_BYTES = 8 * 1024
MAX_HEADERS_BYTES = 64 * 1024

#: The API (code 105 above it): 10,000 recipients and a long text fit in a tenth of it.
MAX_API_BODY = 1_000_000
#: The portal: a rate deck or a CSV of contacts.
MAX_PORTAL_BODY = 20_000_000
#: Softphone provisioning and Kamailio's call questions: a few short fields.
MAX_SMALL_BODY = 64 * 1024


class BodyTooLarge(ValueError):
    """The body passed its limit: answered 413 (code 105 on the API)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the body may have at most {limit} bytes")
        self.limit = limit


def body_limit(path: str) -> int:
    if path.startswith("/api/"):
        return MAX_API_BODY
    if path.startswith(("/softphone/", "/prov/", "/voice/")):
        return MAX_SMALL_BODY
    return MAX_PORTAL_BODY


def declared_too_large(headers: list[tuple[bytes, bytes]], limit: int) -> bool:
    """The Content-Length says more than the limit: refused before reading a byte."""
    for name, value in headers:
        if name == b"content-length":
            return is_digits(value) and int(value) > limit
    return False


def counting_receive(receive: Receive, limit: int) -> Receive:
    """``receive`` that raises BodyTooLarge as soon as the body passes ``limit``."""
    seen = 0

    async def limited() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(limit)
        return message

    return limited


def headers_too_large(headers: list[tuple[bytes, bytes]]) -> str:
    """Why the request's headers are refused, or "" when they are within limits."""
    total = 0
    for name, value in headers:
        size = len(name) + len(value)
        if size > MAX_HEADER_BYTES:
            return f"the {name.decode('latin-1')[:40]} header has {size} bytes, at most {MAX_HEADER_BYTES}"
        total += size
    if total > MAX_HEADERS_BYTES:
        return f"the headers have {total} bytes, at most {MAX_HEADERS_BYTES}"
    return ""
