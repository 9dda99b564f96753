"""The v1 API as one ASGI endpoint, in the check order of API.md.

method (004) → path (017) → missing auth (016) → bad auth (001) → the endpoint.
One hand-written dispatcher instead of a router per endpoint: every path shares
the same checks, and the manual's odd paths (``OTP-api/verify``) stay literal.
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from uvox.accounts import apikeys, ratelimit
from uvox.api.v1 import endpoints
from uvox.api.v1.endpoints import IDEMPOTENCY_HEADER
from uvox.api.v1.envelope import CORS, TEST_HEADERS, reply, reply_with
from uvox.api.v1.params import BadBody, BodyTooLarge, header, read_variables
from uvox.counters import observe_http
from uvox.platform import Platform

log = logging.getLogger("uvox.api")

_ids = itertools.count(1)
_PREFIX = f"{os.getpid():x}{secrets.token_hex(3)}"


def next_request_id() -> str:
    """A request id unique across processes and restarts, cheaper than uuid4 per request."""
    return f"{_PREFIX}-{next(_ids):x}"


PREFIX = "/api/get-api/v1/"
ALLOWED = ("GET", "POST", "PUT")
# Endpoint names by their lower case: "otp-api" typed from memory finds "OTP-api".
KNOWN = {name.lower(): name for name in (*endpoints.HANDLERS, "rates", "")}
PREFLIGHT_HEADERS = {
    **CORS,
    "access-control-allow-methods": "GET, POST, PUT, OPTIONS",
    "access-control-allow-headers": "Api-Key, Content-Type, Accept, Idempotency-Key",
    "access-control-max-age": "86400",
}


def _endpoint_of(path: str) -> str | None:
    if not path.startswith(PREFIX) and path.rstrip("/") + "/" != PREFIX:
        return None
    name = path[len(PREFIX) :].strip("/") if path.startswith(PREFIX) else ""
    return KNOWN.get(name.lower())


async def api(request: Request) -> Response:
    started = time.perf_counter()
    request_id = next_request_id()
    accept = header(request, b"accept")
    endpoint = "?"
    code = "500"
    try:
        response, endpoint, code = await _handle(request, accept, request_id)
    except Exception:
        # Logged with its traceback under the request id; the client sees code 500 only.
        log.exception(
            "request %s failed: %s %s",
            request_id,
            request.method,
            request.scope["path"],
            extra={"request_id": request_id},
        )
        response = reply("500", accept, request_id, requestid=request_id)
    observe_http(endpoint, response.status_code, code, time.perf_counter() - started)
    if log.isEnabledFor(logging.INFO):  # the arguments alone cost a share of a send
        log.info(
            "%s %s %s code=%s %.1fms id=%s",
            request.method,
            request.scope["path"],
            response.status_code,
            code,
            (time.perf_counter() - started) * 1000,
            request_id,
            extra={"request_id": request_id},
        )
    return response


async def _handle(request: Request, accept: str | None, request_id: str) -> tuple[Response, str, str]:
    method = request.method
    if method == "OPTIONS" and header(request, b"origin") and header(request, b"access-control-request-method"):
        return Response(status_code=204, headers=PREFLIGHT_HEADERS), "preflight", "204"
    if method not in ALLOWED:
        return reply("004", accept, request_id), "?", "004"
    name = _endpoint_of(request.scope["path"])
    if name is None:
        return reply("017", accept, request_id), "?", "017"

    platform: Platform = request.app.state.platform
    try:
        v = await read_variables(request)
    except BodyTooLarge as exc:
        return reply("105", accept, request_id, detail=str(exc)), name, "105"
    except BadBody as exc:
        return reply("016", accept, request_id, detail=str(exc)), name, "016"
    except ClientDisconnect:
        # The client left before its body ended (fewer bytes than its Content-Length):
        # nobody reads this answer, but it is the client's doing, not an error of ours
        # to log with a traceback and count as a 500.
        return reply("016", accept, request_id, detail="the request ended before its body did"), name, "016"

    idempotency_key = header(request, b"idempotency-key")
    if idempotency_key is not None:
        # Read by the sends beside the idempotency_key variable (endpoints._idempotency).
        v.set(IDEMPOTENCY_HEADER, [idempotency_key])
    header_key = header(request, b"api-key", "").strip()
    var_key = (v.get("apikey") or "").strip()
    number = (v.get("accountnumber") or "").strip()
    key = header_key or var_key
    if not key or (not header_key and not number):
        return (
            reply("016", accept, request_id, detail="send apikey and accountnumber, or an Api-Key header"),
            name,
            "016",
        )
    account = apikeys.cached(platform.engine, key)
    if account is None:
        account = await run_in_threadpool(apikeys.authenticate, platform.engine, key)
    if account is None or (number and number != account.number):
        return reply("001", accept, request_id), name, "001"
    test = account.test  # a test key: every reply says so (sms/testmode.py)
    if account.rate_limit:
        verdict = await run_in_threadpool(ratelimit.take, platform.engine, account.id, account.rate_limit)
        if not verdict.allowed:
            limited = reply(
                "107",
                accept,
                request_id,
                test_mode=test,
                detail=f"more than {account.rate_limit} requests in one second; try again in a second",
            )
            limited.headers["retry-after"] = str(verdict.retry_after)
            return limited, name, "107"

    if name == "rates":
        headers = {**CORS, **TEST_HEADERS} if test else dict(CORS)
        headers["x-request-id"] = request_id
        return endpoints.rates_stream(platform, account, accept, headers), name, "200"
    # The bare base URL (the manual's first curl example) answers like `balance`:
    # a cheap way for a customer to check that a key works.
    handler = endpoints.HANDLERS[name or "balance"]
    v.client_address = request.client.host if request.client else ""
    result = await handler(platform, account, v)
    if result.body is not None:  # a reply kept for an idempotency key: sent as it was stored
        return (
            reply_with(result.body, result.code, accept, request_id, result.replayed, test_mode=test),
            name,
            result.code,
        )
    if result.response is not None:
        result.response.headers.update({**CORS, **TEST_HEADERS} if test else CORS)
        result.response.headers["x-request-id"] = request_id
        return result.response, name, result.code
    response = reply(result.code, accept, request_id, test_mode=test, **result.fields)
    if result.headers:
        response.headers.update(result.headers)
    return response, name, result.code
