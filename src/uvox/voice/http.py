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

import hashlib
import hmac
import logging
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from uvox.platform import Platform

from .authorize import Decision, authorize

log = logging.getLogger("uvox.voice")
PATH = "/voice/kamailio/authorize"
TEXT = "text/plain; charset=utf-8"


def kamailio_secret(platform: Platform) -> str:
    """The shared secret Kamailio sends: derived from the instance secret, so every
    process of the installation agrees on it and ``uvox sip kamailio-cfg`` can render it."""
    return hmac.new(platform.secret, b"uvox:kamailio-authorize", hashlib.sha256).hexdigest()[:40]


def kamailio_reply(d: Decision) -> str:
    if d.code != 200:
        return f"code={d.code}"
    parts = ["code=200", f"call={d.call_id}", f"limit={d.limit}", f"onnet={1 if d.onnet else 0}"]
    if d.onnet:
        parts += [f"ruser={d.callee_user}", "n=0"]
        return ";".join(parts)
    parts.append(f"n={len(d.trunks)}")
    for k, tr in enumerate(d.trunks):
        parts += [f"t{k}_name={tr.name}", f"t{k}_host={tr.uri_host}", f"t{k}_port={tr.port}",
                  f"t{k}_proto={tr.transport}", f"t{k}_ruser={tr.request_user(d.digits)}",
                  f"t{k}_max={tr.max_channels}", f"t{k}_user={tr.username}", f"t{k}_pass={tr.password}"]
    return ";".join(parts)


def routes(platform: Platform) -> list[Route]:
    expected = kamailio_secret(platform).encode()

    async def authorize_call(request: Request) -> Response:
        given = request.headers.get("x-uvox-secret", "").strip().encode()
        if not hmac.compare_digest(given, expected):
            log.warning("refused a call authorization without the shared secret from %s",
                        request.client.host if request.client else "?")
            return Response("code=403", 403, media_type=TEXT)
        values = dict(request.query_params)
        if request.method == "POST":
            # Kamailio posts four short url-encoded fields (curl's default form type);
            # parse_qsl reads them in a fraction of the multipart parser's time.
            body = await request.body()
            if len(body) > 4096:
                return Response("code=403", 413, media_type=TEXT)
            values.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        caller = (values.get("caller") or "").strip()
        if not caller:
            return Response("code=403", 200, media_type=TEXT)
        try:
            decision = await run_in_threadpool(
                authorize, platform.engine, platform.settings, caller=caller,
                domain=(values.get("domain") or "").strip(), dialled=(values.get("dialled") or "").strip(),
                sip_call_id=values.get("callid") or "",
            )
        except Exception:
            log.exception("call authorization failed for %s", caller)
            return Response("code=500", 500, media_type=TEXT)
        return Response(kamailio_reply(decision), 200, media_type=TEXT)

    return [Route(PATH, authorize_call, methods=["GET", "POST"])]
