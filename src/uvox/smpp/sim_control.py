"""The SMSC simulator's HTTP control port: inspect its records, change its rules.

A small Starlette app served by uvicorn on the simulator's own event loop, so a
request reads and changes the simulator from the one thread that runs it (no
hand-off between threads, no hand-written HTTP parsing). The routes and their
answers are documented in ``docs/delivery.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

if TYPE_CHECKING:
    from uvox.smpp.simulator import SmscSimulator

#: What a bad rule or body raises: the control port answers 400 with its text.
_BAD_REQUEST = (ValueError, TypeError, KeyError, re.error)


def control_app(sim: SmscSimulator) -> Starlette:
    """The control routes of ``sim``; each runs on the simulator's loop."""

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse(sim.stats())

    async def messages(request: Request) -> JSONResponse:
        q = request.query_params
        return JSONResponse(sim.messages(q.get("dest"), q.get("outcome")))

    async def rules(request: Request) -> JSONResponse:
        return JSONResponse(sim.rules())

    async def set_rules(request: Request) -> JSONResponse:
        sim.set_rules(await _body(request) or [])
        return JSONResponse(sim.rules())

    async def add_rule(request: Request) -> JSONResponse:
        sim.add_rule(await _body(request))
        return JSONResponse(sim.rules())

    async def config(request: Request) -> JSONResponse:
        data = await _body(request) or {}
        if "receipt_delay" in data:
            sim.receipt_delay = float(data["receipt_delay"])
        return JSONResponse(sim.stats())

    async def reset(request: Request) -> JSONResponse:
        sim.reset()
        return JSONResponse(sim.stats())

    async def disconnect(request: Request) -> JSONResponse:
        await sim.disconnect_all()
        return JSONResponse(sim.stats())

    async def bad_request(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=400)

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        # A wrong method is "not found" too, as the control port always answered.
        return JSONResponse({"error": "not found"}, status_code=404)

    handlers: dict[Any, Any] = {404: not_found, 405: not_found}
    handlers.update({e: bad_request for e in _BAD_REQUEST})
    return Starlette(
        routes=[
            Route("/stats", stats, methods=["GET"]),
            Route("/messages", messages, methods=["GET"]),
            Route("/rules", rules, methods=["GET"]),
            Route("/rules", set_rules, methods=["POST"]),
            Route("/rules/add", add_rule, methods=["POST"]),
            Route("/config", config, methods=["POST"]),
            Route("/reset", reset, methods=["POST"]),
            Route("/disconnect", disconnect, methods=["POST"]),
        ],
        exception_handlers=handlers,
    )


async def _body(request: Request) -> Any:
    """The JSON body, None when empty (ValueError when it is not JSON)."""
    raw = await request.body()
    return json.loads(raw) if raw else None


class _Server(uvicorn.Server):
    """uvicorn without its signal handling: the process the simulator runs in owns its
    signals (``uvox smsc-sim`` ends on SIGTERM as it always did, ``uvox serve`` has its own)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class ControlServer:
    """The control port of one simulator, started and stopped on its event loop."""

    def __init__(self, sim: SmscSimulator, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._app = control_app(sim)
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Listen (port 0 picks a free one) and return the port; OSError when it is taken."""
        sock = socket.create_server((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app, lifespan="off", log_config=None, access_log=False, ws="none", timeout_graceful_shutdown=1
        )
        self._server = _Server(config)
        self._task = asyncio.get_running_loop().create_task(self._server.serve(sockets=[sock]), name="smsc-sim-control")
        return self.port

    def close(self) -> None:
        """Stop listening now; the server's task ends on the loop within a few tenths of a second."""
        if self._server is not None:
            self._server.should_exit = True
            for s in getattr(self._server, "servers", []):
                s.close()

    async def aclose(self) -> None:
        """Stop listening and wait until the server has ended."""
        self.close()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._server = self._task = None
