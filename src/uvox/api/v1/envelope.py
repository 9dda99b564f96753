"""The manual's reply envelope and the headers every API reply carries."""

from __future__ import annotations

import orjson
from starlette.responses import Response

from uvox.api.v1.codes import CODES

VND = "application/vnd.api+json"
JSON = "application/json; charset=utf-8"

CORS = {
    "access-control-allow-origin": "*",
    # Retry-After (codes 107, 102, 153-156) readable by browser code too.
    "access-control-expose-headers": "X-Request-Id, Retry-After",
}
#: Test mode (sms/testmode.py): every reply to a test key carries this header, and
#: ``"test":"1"`` in its JSON body; a browser's script may read the header too.
TEST_HEADERS = {
    "access-control-expose-headers": "X-Request-Id, X-UVox-Test",
    "x-uvox-test": "1",
}


def body(code: str, **fields) -> dict:
    c = CODES[code]
    out = {
        "version": c.version,
        "code": c.code,
        "status": c.status_text,
        "resultstring": "Success" if c.success else "Failure",
    }
    for k, v in fields.items():
        if v is not None:
            out[k] = v
    out["statusmessage"] = c.message
    return out


def media_type(accept: str | None) -> str:
    return VND if accept and VND in accept else JSON


_CORS_RAW = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in CORS.items()]
_TEST_CORS_RAW = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in {**CORS, **TEST_HEADERS}.items()]
_ALLOW_RAW = (b"allow", b"GET, POST, PUT, OPTIONS")
_REPLAYED_RAW = (b"idempotent-replayed", b"true")
_TYPE_RAW = {VND: (b"content-type", VND.encode()), JSON: (b"content-type", JSON.encode())}


class Reply(Response):
    """A Response whose header bytes are assembled here, from constants.

    Starlette's Response encodes and checks every header on each construction; an
    API reply always has the same few, so this is a measurable share of a send
    saved. The headers (order included) are exactly what Response would produce.
    """

    def __init__(self, content: bytes, status_code: int, raw_headers: list[tuple[bytes, bytes]]) -> None:
        self.status_code = status_code
        self.body = content
        self.background = None
        self.raw_headers = raw_headers


def reply(
    code: str, accept: str | None = None, request_id: str | None = None, *, test_mode: bool = False, **fields
) -> Response:
    """The envelope of ``code``; ``test_mode``: the request came with a test key."""
    if test_mode:
        fields.setdefault("test", "1")
    return reply_with(encode(code, **fields), code, accept, request_id, test_mode=test_mode)


def encode(code: str, **fields) -> bytes:
    """The reply's body as :func:`reply` sends it (what an idempotency key stores)."""
    return orjson.dumps(body(code, **fields))


def reply_with(
    content: bytes,
    code: str,
    accept: str | None = None,
    request_id: str | None = None,
    replayed: bool = False,
    test_mode: bool = False,
) -> Response:
    """A reply whose body is already encoded: a stored reply sent again, byte for byte,
    marked ``Idempotent-Replayed: true`` when it answers a retry."""
    raw = list(_TEST_CORS_RAW if test_mode else _CORS_RAW)
    if request_id:
        raw.append((b"x-request-id", request_id.encode("latin-1")))
    if replayed:
        raw.append(_REPLAYED_RAW)
    if code == "004":
        raw.append(_ALLOW_RAW)
    raw.append((b"content-length", str(len(content)).encode()))
    raw.append(_TYPE_RAW[media_type(accept)])
    return Reply(content, CODES[code].http, raw)
