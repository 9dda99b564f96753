"""Reading the manual's variables from wherever a client put them.

Query string, urlencoded or multipart form, or a JSON object; body values win over
the query (API.md). Names are matched exactly, except ``messageId`` / ``sessionid``,
which the manual itself spells in two ways, and PHP's ``to[]`` / ``to[0]`` for a
repeated variable.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request

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
        return parse_qsl(encoded, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        return parse_qsl(encoded, keep_blank_values=True, encoding="cp1252", errors="replace")


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


async def read_variables(request: Request) -> Variables:
    out = Variables()
    _merge(out, _pairs(request.url.query))
    if request.method not in ("POST", "PUT"):
        return out
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY:
        raise BadBody("request body too large")
    if ctype == "application/x-www-form-urlencoded":
        body = await request.body()
        if len(body) > MAX_BODY:
            raise BadBody("request body too large")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = body.decode("latin-1")
        _merge(out, _pairs(text))
    elif ctype == "multipart/form-data":
        try:
            form = await request.form(max_part_size=MAX_BODY)
        except Exception as exc:  # malformed multipart: python-multipart raises several types
            raise BadBody(f"unreadable form: {exc}") from None
        pairs = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
        _merge(out, pairs)
    elif ctype.endswith("json"):
        body = await request.body()
        if len(body) > MAX_BODY:
            raise BadBody("request body too large")
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
