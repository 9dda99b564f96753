"""The ASGI application: the v1 API, the portal, softphone URLs, and the docs.

Domain packages contribute their routes through small ``routes()`` functions, all
listed in :func:`create_app`; what runs beside HTTP (delivery, the call settler) is
listed once in ``uvox.background`` and started by the lifespan when ``uvox serve``
is one process, or by server.py's simulator and delivery processes when HTTP runs
in worker processes (the default on a machine of several cores). Nothing
registers itself by being imported.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time

from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Receive, Scope, Send

from uvox import limits
from uvox.api.v1 import openapi
from uvox.api.v1.routes import api, next_request_id
from uvox.background import BACKGROUND
from uvox.counters import observe_http
from uvox.db.engine import warm
from uvox.dispatch.wake import Announcer
from uvox.ops import routes as ops_routes
from uvox.ops.metrics import endpoint_of
from uvox.platform import Platform
from uvox.portal import routes as portal_routes
from uvox.softphone import routes as softphone_routes
from uvox.voice import authorize as call_authorization
from uvox.voice import http as voice_http

log = logging.getLogger("uvox")


async def _api_asgi(scope: Scope, receive: Receive, send: Send) -> None:
    # Mounted as raw ASGI so that every method, even an unknown one, reaches our
    # dispatcher and gets the manual's 004 instead of Starlette's plain 405.
    request = Request(scope, receive)
    response = await api(request)
    await response(scope, receive, send)


def create_app(platform: Platform, *, run_hooks: bool = True) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        stops = []
        announcer = None
        if platform.settings.is_postgres:
            # Every process that queues tells the dispatchers of the others (wake.py).
            announcer = Announcer(platform.engine)
            platform.queued.subscribe(announcer.announce)
        # Every process that serves HTTP, the workers of --workers N too: the first
        # requests after a start must not each wait for a database connection or a
        # statement's compilation (Kamailio does not slow down while we start).
        await asyncio.to_thread(warm, platform.engine, platform.settings.db_pool_size)
        await asyncio.to_thread(_warm_calls, platform)
        if run_hooks:
            for hook in BACKGROUND:
                stop = await hook(platform)
                if stop is not None:
                    stops.append(stop)
        # What start-up built (modules, compiled statements, caches) lives as long as
        # the process: out of the collector's sight, a full collection no longer walks
        # it, and never stalls a request for as long (the gc module's own advice).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            for stop in reversed(stops):
                with contextlib.suppress(Exception):
                    await stop()
            if announcer is not None:
                platform.queued.unsubscribe(announcer.announce)
                await asyncio.to_thread(announcer.stop)

    async def home(request: Request):
        return RedirectResponse("/sign_in", status_code=302)

    routes: list[BaseRoute] = [
        *ops_routes.routes(platform),
        Route("/openapi.json", openapi.openapi_json),
        Route("/docs", openapi.docs_page),
        Mount("/api", app=_api_asgi),
    ]
    routes += softphone_routes.routes(platform)
    routes += portal_routes.routes(platform)
    routes.append(Route("/", home))
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={limits.BodyTooLarge: _too_large, ClientDisconnect: _client_left},
    )
    app.state.platform = platform
    return FastLane(app, {voice_http.PATH: voice_http.lane(platform)})


class FastLane:
    """Sends /api requests straight to the API dispatcher, everything else to Starlette.

    The API is the hot path (thousands of sends a second) and needs none of
    Starlette's routing or middleware layers; skipping them is a measurable share of
    each request. Attribute access falls through to the Starlette app.
    """

    def __init__(self, app: Starlette, lanes: dict[str, voice_http.Lane] | None = None) -> None:
        self.app = app
        #: Paths answered by a bare ASGI callable of their own (Kamailio's call
        #: authorization): no Starlette routing or middleware either.
        self.lanes = lanes or {}

    def __getattr__(self, name: str):
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if problem := limits.headers_too_large(scope["headers"]):
            await _refuse(scope, receive, send, "106", 431, problem)
            return
        limit = limits.body_limit(path)
        if limits.declared_too_large(scope["headers"], limit):
            await _refuse(scope, receive, send, "105", 413, str(limits.BodyTooLarge(limit)))
            return
        receive = limits.counting_receive(receive, limit)
        if path.startswith("/api/"):
            scope["app"] = self.app
            await _api_asgi(scope, receive, send)  # counted in metrics by the API itself
            return
        started = time.perf_counter()
        request_id = next_request_id()
        lane = self.lanes.get(path)
        if lane is not None:
            status = 500
            try:
                status = await lane(scope, receive, send, request_id)
            finally:
                observe_http(endpoint_of(path), status, "", time.perf_counter() - started)
            return
        status = 500

        async def counting_send(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # Every reply names its request, as the API's do: a user quoting it
                # finds the request's log lines (portal, softphone, Kamailio's URL).
                headers = list(message.get("headers", []))
                if not any(k.lower() == b"x-request-id" for k, _ in headers):
                    headers.append((b"x-request-id", request_id.encode("latin-1")))
                    message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            observe_http(endpoint_of(path), status, "", time.perf_counter() - started)


def _warm_calls(platform: Platform) -> None:
    """Kamailio's pool, opened and primed before the first call where there are SIP
    accounts to call from."""
    try:
        serves = call_authorization.serves_calls(platform.engine)
    except SQLAlchemyError as exc:  # a database away at start-up: /ready says so
        log.warning("could not prepare call authorization ahead of the first call: %s", exc)
        return
    if serves:
        warm(platform.calls_engine, CALL_CONNECTIONS, call_authorization.prime)


#: Calls' connections opened at start-up; more open as calls need them.
CALL_CONNECTIONS = 4


async def _too_large(request: Request, exc: Exception) -> Response:
    """A body that passed its limit while a page or URL was reading it."""
    return PlainTextResponse(f"{exc}\n", 413)


async def _client_left(request: Request, exc: Exception) -> Response:
    """A page or URL whose client left before its body ended: a 400 nobody reads,
    rather than an "Exception in ASGI application" traceback in the log."""
    return PlainTextResponse("the request ended before its body did\n", 400)


async def _refuse(scope: Scope, receive: Receive, send: Send, code: str, status: int, problem: str) -> None:
    """Refuse a request by its headers alone, before reading the body: the API's
    envelope with its code on /api, plain text elsewhere."""
    from uvox.api.v1.envelope import reply

    started = time.perf_counter()
    path = scope["path"]
    if path.startswith("/api/"):
        accept = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"accept"), None)
        response = reply(code, accept, None, detail=problem)
        endpoint = "api"
    else:
        response = PlainTextResponse(problem + "\n", status)
        endpoint = endpoint_of(path)
    await response(scope, receive, send)
    observe_http(endpoint, response.status_code, code if endpoint == "api" else "", time.perf_counter() - started)
