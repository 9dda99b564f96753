"""How `uvox serve` runs: N HTTP processes beside one delivery process, or one process.

Python runs one thread of Python at a time, so one process uses about one core
however many the machine has. By default (``--workers`` / ``UVOX_WORKERS`` unset or
0) ``uvox serve`` starts one HTTP process per core it may use; on a one-core machine,
or with ``--workers 1``, one process serves HTTP and runs delivery (the dispatcher,
and the SMSC simulator when it is the route) on one event loop.

With N > 1 HTTP processes, uvicorn's supervisor starts N processes that
serve HTTP only, sharing one listening socket, and restarts any that dies; this
process keeps delivery for itself, on an event loop in a thread of its own. Nothing
else has to change for that, because every process already coordinates through the
database alone: on SQLite each HTTP process's group-commit writer takes the
database's write lock for its batch (``BEGIN IMMEDIATE``), and caches of keys, rate
decks and the simulator banner expire or check a version in the database. Exactly
one process delivers, so on SQLite no connector is ever bound twice; on PostgreSQL
more delivery can be added with ``uvox worker`` as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
from dataclasses import dataclass

from uvox.config import Settings, get_settings
from uvox.platform import Platform

log = logging.getLogger("uvox")


def configure_logging(settings: Settings) -> None:
    if settings.log_format == "json":
        # One object a line for a log shipper; API lines carry ``request_id``, the id
        # the client got in its reply.
        from pythonjsonlogger.json import JsonFormatter

        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"}))
        root = logging.getLogger()
        root.handlers[:] = [handler]
        root.setLevel(settings.log_level)
    else:
        logging.basicConfig(
            level=settings.log_level,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # httpx logs every request at INFO: noise on the customer commands' stderr.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _uvicorn_options(settings: Settings, host: str | None, port: int | None) -> dict:
    return dict(
        host=host or settings.host,
        port=port or settings.port,
        # Our own request log (uvox.api) never prints query strings, which carry
        # API keys; uvicorn's access log would.
        access_log=False,
        log_level=settings.log_level.lower(),
        loop="uvloop",
        http="httptools",
        lifespan="on",
        timeout_keep_alive=30,
        # JSON logs: uvicorn's own loggers go through ours instead of its text format.
        **({"log_config": None} if settings.log_format == "json" else {}),
    )


def serve(settings: Settings, host: str | None = None, port: int | None = None, workers: int | None = None) -> None:
    workers = max(1, workers or settings.workers or usable_cores())
    metrics_dir = None
    if workers > 1 or settings.metrics_dir:
        # Before prometheus-client is first imported (it picks its storage then): every
        # process writes its counters under this directory, /metrics adds them up.
        # Also with one process when the operator set PROMETHEUS_MULTIPROC_DIR: the
        # directory must exist and hold no counts of a previous run.
        metrics_dir = _metrics_dir(settings)

    import uvicorn

    from uvox.app import create_app
    platform = Platform.open(settings, migrate=True)
    options = _uvicorn_options(settings, host, port)
    if workers == 1:
        uvicorn.run(create_app(platform), **options)
        return
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config("uvox.server:http_worker_app", factory=True, workers=workers, **options)
    failed = False
    delivery = _DeliveryThread(platform)
    try:
        delivery.start_and_wait()
        log.info("serving HTTP with %d worker processes; delivery runs in this one", workers)
        supervisor = Multiprocess(config, sockets=[config.bind_socket()])
        supervisor.run()
        # uvicorn's supervisor gives up, and returns as if stopped, when a worker
        # cannot start at all; say so by the exit status, for systemd and friends.
        failed = any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes)
    finally:
        # A second Ctrl+C while delivery drains ends the process at once.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        delivery.stop()
        platform.close()
        if metrics_dir is not None and metrics_dir.temporary:
            shutil.rmtree(metrics_dir.path, ignore_errors=True)
    if failed:
        log.error("an HTTP worker process could not start; stopping")
        sys.exit(STARTUP_FAILURE)


@dataclass
class _MetricsDir:
    path: str
    temporary: bool


def _metrics_dir(settings: Settings) -> _MetricsDir:
    if "prometheus_client" in sys.modules:
        log.warning("metrics of the HTTP processes will not be added up: prometheus_client was imported early")
    if settings.metrics_dir:
        os.makedirs(settings.metrics_dir, exist_ok=True)
        # Files of a previous run would add their counts to this one's.
        for name in os.listdir(settings.metrics_dir):
            if name.endswith(".db"):
                os.unlink(os.path.join(settings.metrics_dir, name))
        found = _MetricsDir(settings.metrics_dir, temporary=False)
    else:
        found = _MetricsDir(tempfile.mkdtemp(prefix="uvox-metrics-"), temporary=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = found.path  # inherited by the HTTP processes
    return found


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, which containers and
    ``taskset`` narrow), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _die_with_parent() -> None:
    """Have the kernel end this HTTP process when ``uvox serve`` (its supervisor) dies.

    uvicorn's supervisor stops its workers when it is stopped, but a supervisor
    killed outright (SIGKILL, the OOM killer) would leave them serving on the shared
    socket with nobody to restart them, and a new ``uvox serve`` beside them. Linux
    only (``prctl(PR_SET_PDEATHSIG)``, through libc: no package exposes it); elsewhere
    the supervisor's own shutdown is all there is."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
        return
    if os.getppid() != parent:  # the parent died before the signal was asked for
        os.kill(os.getpid(), signal.SIGTERM)


_PR_SET_PDEATHSIG = 1


def http_worker_app():
    """The app of one HTTP worker process (``--workers N``): no delivery here.

    Called by uvicorn in each spawned process; settings come from the environment
    the parent was started with, and the parent has already migrated the database.
    """
    from uvox.app import create_app

    _die_with_parent()
    settings = get_settings()
    configure_logging(settings)
    return create_app(Platform.open(settings), run_hooks=False)


class _DeliveryThread:
    """uvox.app.BACKGROUND (delivery, call settling) on an event loop in a thread.

    The main thread belongs to uvicorn's supervisor, which handles signals and
    watches the HTTP processes; it sleeps nearly all the time, so delivery has this
    process's interpreter to itself.
    """

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="uvox-delivery", daemon=True)

    def start_and_wait(self) -> None:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error

    def stop(self, timeout: float = 30.0) -> None:
        if self._loop is not None and self._stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already ended
                self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            import uvloop

            runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
        except ImportError:  # pragma: no cover - uvloop is a dependency
            runner = asyncio.Runner()
        with runner:
            runner.run(self._main())

    async def _main(self) -> None:
        from uvox.app import BACKGROUND

        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        stops = []
        try:
            for hook in BACKGROUND:
                stop = await hook(self.platform)
                if stop is not None:
                    stops.append(stop)
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            raise
        self._ready.set()
        gc.collect()
        gc.freeze()  # as app's lifespan does: start-up's objects out of the collector's sight
        try:
            await self._stopping.wait()
        finally:
            for stop in reversed(stops):
                try:
                    await stop()
                except Exception:
                    log.exception("delivery did not stop cleanly")
