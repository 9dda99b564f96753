"""The manual's reply envelope and the headers every API reply carries."""

from __future__ import annotations

import orjson
from starlette.responses import Response

from uvox.api.v1.codes import CODES

VND = "application/vnd.api+json"
JSON = "application/json; charset=utf-8"

CORS = {
    "access-control-allow-origin": "*",
    "access-control-expose-headers": "X-Request-Id",
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


def reply(code: str, accept: str | None = None, request_id: str | None = None, **fields) -> Response:
    headers = dict(CORS)
    if request_id:
        headers["x-request-id"] = request_id
    if code == "004":
        headers["allow"] = "GET, POST, PUT, OPTIONS"
    return Response(
        orjson.dumps(body(code, **fields)),
        status_code=CODES[code].http,
        media_type=media_type(accept),
        headers=headers,
    )
