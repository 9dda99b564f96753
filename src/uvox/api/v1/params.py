"""Reading the manual's variables from wherever a client put them.

Query string, urlencoded or multipart form, or a JSON object; body values win over
the query (API.md). Names are matched exactly, except ``messageId`` / ``sessionid``,
which the manual itself spells in two ways, and PHP's ``to[]`` / ``to[0]`` for a
repeated variable.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

import orjson
from starlette.requests import ClientDisconnect, Request

from uvox.limits import MAX_API_BODY, BodyTooLarge  # noqa: F401 (the API answers it with code 105)


class BadBody(ValueError):
    """A body we cannot read as variables (invalid JSON, unreadable form)."""


class Variables:
    def __init__(self) -> None:
        self._values: dict[str, list[str]] = {}
        #: The HTTP client's address (uvicorn's, which honours --proxy-headers /
        #: FORWARDED_ALLOW_IPS behind a proxy); "" when unknown.
        self.client_address = ""

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

    def items(self) -> list[tuple[str, list[str]]]:
        """Every variable and its values (what an idempotency key's request digest covers)."""
        return [(k, list(v)) for k, v in self._values.items()]


# Characters no ref_id, sessionID or one-time code contains (hex, URL-safe base64,
# digits), but that the manual's own examples leave around them: its HTML forms
# write ``value={ref_id}"/>``, which a browser sends as ``abc"/``, and its verify
# URL ends ``otp_code={otp_code}]``. Copied verbatim, those examples must still work.
_STRAY = " \t\r\n\"'[]{}<>/"


def token(raw: str | None) -> str:
    """A ref_id, sessionid or otp_code without the stray characters around it."""
    return (raw or "").strip(_STRAY)


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


_PHP_LIST = re.compile(r"([^\[\]]+)\[[0-9]*\]")


def _pairs(encoded: str) -> list[tuple[str, str]]:
    """Decode a query string or urlencoded body; UTF-8, else windows-1252.

    A form on a page in ISO-8859-1 (common on older Spanish-language sites, where the
    manual's form gets pasted) is sent by browsers in windows-1252: "mañana" arrives
    as ma%F1ana. Read as UTF-8 it would reach the phone as "ma�ana".
    """
    try:
        return parse_form(encoded, errors="strict")
    except UnicodeDecodeError:
        return parse_form(encoded, encoding="cp1252", errors="replace")


def _merge(target: Variables, pairs: list[tuple[str, str]]) -> None:
    grouped: dict[str, list[str]] = {}
    for k, v in pairs:
        if k.endswith("]"):
            # PHP's http_build_query() and HTML forms repeat a variable as to[]=… or
            # to[0]=…: the same repeated variable API.md accepts, in PHP's spelling.
            m = _PHP_LIST.fullmatch(k)
            if m:
                k = m.group(1)
        grouped.setdefault(k, []).append(v)
    for k, vals in grouped.items():
        target.set(k, vals)


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def header(request: Request, name: bytes, default: str | None = None) -> str | None:
    """A request header (name in lower case), the first if repeated, like Starlette's.

    Starlette's Headers mapping scans the raw list through the Mapping machinery on
    every lookup; a send asks for five headers, so we index them once per request.
    """
    index = request.scope.get("uvox.headers")
    if index is None:
        index = request.scope["uvox.headers"] = {k: v for k, v in reversed(request.scope["headers"])}
    value = index.get(name)
    return default if value is None else value.decode("latin-1")


def parse_form(text: str, encoding: str = "utf-8", errors: str = "replace") -> list[tuple[str, str]]:
    """What urllib's parse_qsl gives with keep_blank_values=True, specialised to str.

    Written here because parse_qsl's generic path (bytes or str, a call to unquote
    per name and value) is close to a tenth of a single send; this does the same
    steps and calls unquote only where there is something to decode. Same results,
    including fields without "=" (blank value) and empty fields (skipped).
    """
    out = []
    for field in text.split("&"):
        if not field:
            continue
        name, _, value = field.partition("=")
        if "+" in name or "%" in name:
            name = unquote(name.replace("+", " "), encoding, errors)
        if "+" in value or "%" in value:
            value = unquote(value.replace("+", " "), encoding, errors)
        out.append((name, value))
    return out


async def _body(request: Request) -> bytes:
    """The request body (its size is limited by the receive uvox.app gives us).

    Read straight from the ASGI messages: Starlette's ``Request.body()`` drives an
    async generator per request, a visible share of a send, for a body that almost
    always arrives in one message. Nothing after us reads the body again.
    """
    chunks = []
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def read_variables(request: Request) -> Variables:
    out = Variables()
    # The raw query string, not request.url: building a URL object costs more than
    # parsing the variables, and most sends carry none in the query.
    query = request.scope.get("query_string", b"")
    if query:
        _merge(out, _pairs(_text(query)))
    if request.method not in ("POST", "PUT"):
        return out
    ctype = header(request, b"content-type", "").split(";")[0].strip().lower()
    if ctype == "application/x-www-form-urlencoded":
        body = await _body(request)
        _merge(out, _pairs(_text(body)))
    elif ctype == "multipart/form-data":
        try:
            form = await request.form(max_part_size=MAX_API_BODY)
        except BodyTooLarge:
            raise
        except Exception as exc:  # malformed multipart: python-multipart raises several types
            raise BadBody(f"unreadable form: {exc}") from None
        pairs = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
        await form.close()  # a file part's temporary file: no variable of ours is a file
        _merge(out, pairs)
    elif ctype.endswith("json"):
        _merge_json(out, await _body(request))
    elif ctype in ("", "text/plain"):
        # What a browser sends for fetch(url, {body: JSON.stringify(...)}) or
        # xhr.send("a=b&c=d") without a Content-Type: text/plain, the one type that
        # needs no CORS preflight. Read it by its shape rather than answer 016.
        body = await _body(request)
        stripped = body.strip()
        if stripped.startswith(b"{"):
            _merge_json(out, stripped)
        elif b"=" in stripped:
            _merge(out, _pairs(_text(stripped)))
    return out


def _merge_json(out: Variables, body: bytes) -> None:
    if not body.strip():
        return
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
