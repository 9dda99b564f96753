"""The endpoint Kamailio asks before it routes a call: ``POST /voice/kamailio/authorize``.

Kamailio (http_client) sends the authenticated SIP username, the dialled user and
the Call-ID, with the installation's shared secret in ``X-UVox-Secret``. The reply
is one line of ``name=value`` pairs joined by ``;``, which Kamailio's
``{param.value,NAME}`` transformation reads without a JSON module:

    code=200;call=17;limit=3600;onnet=0;n=2;t0_name=a;t0_host=10.0.0.1;t0_port=5060;...

Anything but HTTP 200 (wrong secret: 403; our own failure: 500) makes Kamailio
refuse the call: a call is never let through unauthorized.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qsl

from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive, Scope, Send

from uvox.limits import BodyTooLarge, counting_receive
from uvox.platform import Platform
from uvox.softphone.kamailio import kamailio_secret

from .authorize import Decision, authorize

log = logging.getLogger("uvox.voice")
PATH = "/voice/kamailio/authorize"
TEXT = "text/plain; charset=utf-8"
#: Four short fields; anything longer is not Kamailio.
MAX_BODY = 4096
#: The authorizations' threads (their database calls block). A plain executor, not
#: Starlette's threadpool: anyio's cancel scopes, run-vars and capacity limiter cost
#: more CPU than the hop itself, on every call. As many threads as Kamailio's
#: children can ask at once, many times over.
_THREADS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="uvox-call")
#: An ASGI callable that also gets the request id and returns the status it sent.
Lane = Callable[[Scope, Receive, Send, str], Awaitable[int]]


def kamailio_reply(d: Decision, secret: bytes) -> str:
    """The reply line. A trunk's digest password is opened here, and only here, from
    its sealed form (uvox.secretbox): Kamailio gets it over this local hop (loopback
    or the operator's private network, with the shared secret) and keeps it in the
    transaction's AVPs for ``uac_auth()``; it reads no trunk table, so the database
    never holds a clear password for it to read."""
    if d.code != 200:
        return f"code={d.code}"
    parts = ["code=200", f"call={d.call_id}", f"limit={d.limit}", f"onnet={1 if d.onnet else 0}"]
    if d.onnet:
        parts += [f"ruser={d.callee_user}", "n=0"]
        return ";".join(parts)
    listed: list[str] = []
    k = 0
    for tr in d.trunks:
        try:
            password = tr.password(secret)
        except Exception:  # sealed under another instance secret: its carrier would refuse us
            log.error(
                "trunk %s's password cannot be opened with this instance's secret (UVOX_SECRET_KEY "
                "changed without `uvox db reseal`?): the call skips it",
                tr.name,
            )
            continue
        listed += [
            f"t{k}_name={tr.name}",
            f"t{k}_host={tr.uri_host}",
            f"t{k}_port={tr.port}",
            f"t{k}_proto={tr.transport}",
            f"t{k}_ruser={tr.request_user(d.digits)}",
            f"t{k}_max={tr.max_channels}",
            f"t{k}_user={tr.username}",
            f"t{k}_pass={password}",
        ]
        k += 1
    parts.append(f"n={k}")
    return ";".join(parts + listed)


def lane(platform: Platform) -> Lane:
    """The endpoint as a bare ASGI callable, which ``app.FastLane`` calls for ``PATH``.

    Kamailio waits on this for every call set-up. Starlette's router, its two
    middlewares and its Request and Response objects cost about as much CPU as the
    authorization's own database work (bench/voice_bench.py, py-spy), so this reads
    the few form fields and writes the one-line reply itself. Returns the HTTP status
    for the request metrics."""
    expected = kamailio_secret(platform).encode()
    secret = platform.secret

    async def authorize_call(scope: Scope, receive: Receive, send: Send, request_id: str) -> int:
        async def reply(status: int, text: str) -> int:
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", TEXT.encode()),
                        (b"content-length", str(len(text)).encode()),
                        (b"x-request-id", request_id.encode("latin-1")),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": text.encode()})
            return status

        if scope["method"] not in ("GET", "POST"):
            return await reply(405, "code=405")
        given = next((v for k, v in scope["headers"] if k == b"x-uvox-secret"), b"").strip()
        if not hmac.compare_digest(given, expected):
            client = scope.get("client")
            log.warning("refused a call authorization without the shared secret from %s", client[0] if client else "?")
            return await reply(403, "code=403")
        values = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        if scope["method"] == "POST":
            try:
                body = await Request(scope, counting_receive(receive, MAX_BODY)).body()
            except BodyTooLarge:
                return await reply(413, "code=403")
            except ClientDisconnect:
                return 400  # Kamailio gave up on this question: nobody to answer, nothing held
            # Kamailio posts four short url-encoded fields (curl's default form type).
            values.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        caller = (values.get("caller") or "").strip()
        if not caller:
            return await reply(200, "code=403")
        try:
            decision = await asyncio.get_running_loop().run_in_executor(
                _THREADS,
                functools.partial(
                    authorize,
                    platform.calls_engine,
                    platform.settings,
                    caller=caller,
                    domain=(values.get("domain") or "").strip(),
                    dialled=(values.get("dialled") or "").strip(),
                    sip_call_id=values.get("callid") or "",
                ),
            )
        except Exception:
            log.exception("call authorization failed for %s", caller)
            return await reply(500, "code=500")
        return await reply(200, kamailio_reply(decision, secret))

    return authorize_call
