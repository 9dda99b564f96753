"""Reading the manual's variables from wherever a client put them.

Query string, urlencoded or multipart form, or a JSON object; body values win over
the query (API.md). Names are matched exactly, except ``messageId`` / ``sessionid``,
which the manual itself spells in two ways.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import orjson
from starlette.requests import ClientDisconnect, Request

MAX_BODY = 1_000_000


class BadBody(ValueError):
    """A body we cannot read as variables (invalid JSON, too large)."""


class Variables:
    def __init__(self) -> None:
        self._values: dict[str, list[str]] = {}

    def set(self, name: str, values: list[str]) -> None:
        self._values[name] = values

    def get(self, name: str, *aliases: str) -> str | None:
        for key in (name, *aliases):
            vals = self._values.get(key)
            if vals:
                return vals[-1]
        return None

    def get_all(self, name: str) -> list[str]:
        return list(self._values.get(name, []))

    def has(self, name: str, *aliases: str) -> bool:
        return any(key in self._values for key in (name, *aliases))

    def __contains__(self, name: str) -> bool:
        return name in self._values


def _scalar(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (int, float)):
        # JSON numbers for phone numbers / account numbers: keep their digits.
        return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _merge(target: Variables, pairs: list[tuple[str, str]]) -> None:
    grouped: dict[str, list[str]] = {}
    for k, v in pairs:
        grouped.setdefault(k, []).append(v)
    for k, vals in grouped.items():
        target.set(k, vals)


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


async def _body(request: Request) -> bytes:
    """The request body, refused past MAX_BODY.

    Read straight from the ASGI messages: Starlette's ``Request.body()`` drives an
    async generator per request, a visible share of a send, for a body that almost
    always arrives in one message. Nothing after us reads the body again.
    """
    chunks = []
    size = 0
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise BadBody("request body too large")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def read_variables(request: Request) -> Variables:
    out = Variables()
    # The raw query string, not request.url: building a URL object costs more than
    # parsing the variables, and most sends carry none in the query.
    query = request.scope.get("query_string", b"")
    if query:
        _merge(out, parse_qsl(_text(query), keep_blank_values=True))
    if request.method not in ("POST", "PUT"):
        return out
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY:
        raise BadBody("request body too large")
    if ctype == "application/x-www-form-urlencoded":
        body = await _body(request)
        _merge(out, parse_qsl(_text(body), keep_blank_values=True))
    elif ctype == "multipart/form-data":
        try:
            form = await request.form(max_part_size=MAX_BODY)
        except Exception as exc:  # malformed multipart: python-multipart raises several types
            raise BadBody(f"unreadable form: {exc}") from None
        pairs = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
        _merge(out, pairs)
    elif ctype.endswith("json"):
        body = await _body(request)
        if body.strip():
            try:
                data = orjson.loads(body)
            except orjson.JSONDecodeError:
                raise BadBody("the body is not valid JSON") from None
            if not isinstance(data, dict):
                raise BadBody("the JSON body must be an object")
            for k, v in data.items():
                if isinstance(v, list):
                    out.set(str(k), [_scalar(x) for x in v])
                else:
                    out.set(str(k), [_scalar(v)])
    return out
