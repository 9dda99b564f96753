"""``/health``, ``/ready`` and ``/metrics`` (see the package's docstring)."""

from __future__ import annotations

import hmac

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from uvox.platform import Platform

from . import health, metrics


def routes(platform: Platform) -> list[Route]:
    token = platform.settings.metrics_token.encode()

    async def health_page(request: Request) -> Response:
        return JSONResponse({"status": "ok"}, headers={"cache-control": "no-store"})

    async def ready_page(request: Request) -> Response:
        state = await run_in_threadpool(health.readiness, platform)
        return JSONResponse(state.as_json(), 200 if state.ready else 503, headers={"cache-control": "no-store"})

    async def metrics_page(request: Request) -> Response:
        if token:
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip().encode()
            if not hmac.compare_digest(given, token):
                return Response(
                    "a bearer token is required (UVOX_METRICS_TOKEN)\n",
                    401,
                    headers={"www-authenticate": "Bearer"},
                    media_type="text/plain",
                )
        body = await run_in_threadpool(metrics.exposition, platform)
        return Response(body, media_type=metrics.CONTENT_TYPE)

    return [
        Route("/health", health_page, methods=["GET", "HEAD"]),
        Route("/ready", ready_page, methods=["GET", "HEAD"]),
        Route("/metrics", metrics_page, methods=["GET"]),
    ]
