"""Softphone URLs, as the app (uvox.app.create_app) collects them."""

from __future__ import annotations

from starlette.routing import BaseRoute

from . import http


def routes(platform) -> list[BaseRoute]:
    return http.routes(lambda: platform.engine, platform.settings)
