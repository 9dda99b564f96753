"""How `uvox serve` runs: HTTP processes beside delivery and simulator processes, or one process.

Python runs one thread of Python at a time, so one process uses about one core
however many the machine has. By default (``--workers`` / ``UVOX_WORKERS`` unset or
0) ``uvox serve`` starts one HTTP process per core it may use; on a one-core machine,
or with ``--workers 1``, one process serves HTTP and runs delivery (the dispatcher,
and the SMSC simulator when it is the route) on one event loop.

With N > 1 HTTP processes this process only supervises. uvicorn's supervisor starts
N processes that serve HTTP only, sharing one listening socket, and restarts any
that dies; beside them this process starts, in order, the SMSC simulator (when it
is the route) and the delivery process (dispatcher, call settler, mail outbox), each
in a process of its own that a thread here starts again when it dies. Every child
asks the kernel to end it when this process dies (``process.die_with_parent``), so a
SIGKILL of ``uvox serve`` never leaves a child working for nobody. Nothing else has
to change for that, because every process already coordinates through the
database alone: on SQLite each HTTP process's group-commit writer takes the
database's write lock for its batch (``BEGIN IMMEDIATE``), and caches of keys, rate
decks and the simulator banner expire or check a version in the database. Exactly
one process delivers, so on SQLite no connector is ever bound twice; on PostgreSQL
more delivery can be added with ``uvox worker`` as before.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from uvox.config import Settings, get_settings
from uvox.process import configure_logging, die_with_parent, name_process

if TYPE_CHECKING:  # imported where used: the simulator's process never needs the database's modules
    from uvox.platform import Platform

log = logging.getLogger("uvox")


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


def http_processes(settings: Settings, workers: int | None = None) -> int:
    """How many HTTP processes: ``workers`` (``--workers``), else UVOX_WORKERS, else one per core."""
    return max(1, workers or settings.workers or usable_cores())


def serve(
    settings: Settings,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
    roles: list[str] | None = None,
) -> None:
    """Serve until stopped. With several HTTP processes, ``roles`` are the supervised
    processes to run beside them (:func:`prepare` says which); None prepares here."""
    workers = http_processes(settings, workers)
    metrics_dir = None
    if workers > 1 or settings.metrics_dir:
        # Before prometheus-client is first imported (it picks its storage then): every
        # process writes its counters under this directory, /metrics adds them up.
        # Also with one process when the operator set PROMETHEUS_MULTIPROC_DIR: the
        # directory must exist and hold no counts of a previous run.
        metrics_dir = _metrics_dir(settings)

    import uvicorn

    options = _uvicorn_options(settings, host, port)
    if workers == 1:
        from uvox.app import create_app

        uvicorn.run(create_app(open_migrated(settings)), **options)
        return
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config("uvox.server:http_worker_app", factory=True, workers=workers, **options)
    if roles is None:
        roles = prepare(settings)
    supervisor = Multiprocess(config, sockets=[config.bind_socket()])
    # A delivery process that cannot start stops the whole server, as an HTTP one does.
    children = _Children(roles, on_failure=supervisor.should_exit.set)
    failed = False
    try:
        children.start()
        log.info("serving HTTP with %d worker processes; %s in processes of their own", workers, " and ".join(roles))
        supervisor.run()
        # uvicorn's supervisor gives up, and returns as if stopped, when a worker
        # cannot start at all; say so by the exit status, for systemd and friends.
        if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes):
            log.error("an HTTP worker process could not start; stopping")
            failed = True
        failed = failed or children.failed
    except _ChildFailed as exc:
        log.error("%s; stopping", exc)
        failed = True
    finally:
        # A second Ctrl+C while delivery drains ends the process at once.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        children.stop()
        if metrics_dir is not None and metrics_dir.temporary:
            shutil.rmtree(metrics_dir.path, ignore_errors=True)
    if failed:
        sys.exit(STARTUP_FAILURE)


def open_migrated(settings: Settings) -> Platform:
    """The platform on a migrated database, or one log line and exit status 1.

    A database `uvox serve` cannot open or migrate is an operator's mistake (a wrong
    URL, a server down): it deserves one line, with the password hidden, rather
    than a traceback."""
    from sqlalchemy.engine import make_url

    from uvox.platform import Platform

    try:
        return Platform.open(settings, migrate=True)
    except Exception as exc:
        where = make_url(settings.database_url).render_as_string(hide_password=True)
        log.error("cannot start: the database at %s: %s: %s", where, type(exc).__name__, exc)
        sys.exit(1)


def prepare(settings: Settings) -> list[str]:
    """Migrate the database and say which processes run beside HTTP: ``smsc-sim``
    when the simulator is a route, and ``delivery``. Exits with one log line when the
    database cannot be opened."""
    platform = open_migrated(settings)
    try:
        simulator = simulator_is_route(platform)
    except Exception as exc:
        log.error("cannot start: reading the SMS routes: %s: %s", type(exc).__name__, exc)
        sys.exit(1)
    finally:
        platform.close()
    return (["smsc-sim"] if simulator else []) + ["delivery"]


def exec_supervisor(settings: Settings, host: str | None, port: int | None, workers: int) -> None:
    """Prepare the database here, then become ``python -m uvox.server ROLES`` (same
    process id), with the options as settings.

    The ``uvox`` command has imported every command's modules, and migrating needs
    the database's: a supervisor that only starts and watches processes needs none
    of them, and keeping them would cost its memory (about 35 MB) for the life of
    the server. Migrating before the exec, rather than in a process of its own,
    spares the start-up one more interpreter."""
    roles = prepare(settings)
    env = dict(os.environ, UVOX_WORKERS=str(workers))
    if host:
        env["UVOX_HOST"] = host
    if port:
        env["UVOX_PORT"] = str(port)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "uvox.server", ",".join(roles)], env)


def simulator_is_route(platform: Platform) -> bool:
    from uvox.db.session import read
    from uvox.dispatch import routing

    if not platform.settings.smsc_sim:
        return False
    with read(platform.engine) as conn:
        return routing.simulator_is_route(conn, platform.settings)


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


def http_worker_app():
    """The app of one HTTP worker process (``--workers N``): no delivery here.

    Called by uvicorn in each spawned process; settings come from the environment
    the parent was started with, and the parent has already migrated the database.
    """
    from uvox.app import create_app
    from uvox.platform import Platform

    die_with_parent()
    name_process("uvox-http")
    settings = get_settings()
    configure_logging(settings)
    return create_app(Platform.open(settings), run_hooks=False)


class _ChildFailed(RuntimeError):
    """A simulator or delivery process could not start."""


class _Child:
    """One supervised process beside the HTTP ones: the SMSC simulator, or delivery.

    ``python -m uvox.supervised ROLE`` (a fresh interpreter that imports what its
    role runs and nothing else, so the simulator's process carries no database or
    web modules); settings come from the environment, as in
    :func:`http_worker_app`. :meth:`start` returns once the process says its hooks
    have started, or raises if they could not; afterwards :meth:`watch` (called by
    the supervising thread) starts it again whenever it dies: at once, or after a
    pause that grows while it keeps dying soon after its start. A new delivery
    process takes the dead one's connectors at once: on PostgreSQL its advisory
    locks went with its connection, on SQLite its lease names a process that no
    longer exists (dispatch/ownership.py).
    """

    #: How long a process must have lived for its next death to be restarted at once.
    STEADY = 30.0
    BACKOFF_MAX = 10.0

    def __init__(self, role: str) -> None:
        self.role = role
        self.process: subprocess.Popen[bytes] | None = None
        self._started_at = 0.0
        self._backoff = 0.0
        self._quick_deaths = 0
        self._retry_at = 0.0
        self.restarts = 0

    def start(self, timeout: float = 120.0) -> None:
        import select

        # The child writes one line on this pipe: "ready", or why it could not start.
        ours, theirs = os.pipe()
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "uvox.supervised", self.role, str(theirs)], pass_fds=(theirs,)
            )
        finally:
            os.close(theirs)
        self.process = process
        self._started_at = time.monotonic()
        deadline = self._started_at + timeout
        status = b""
        try:
            while not status.endswith(b"\n"):
                if time.monotonic() > deadline:
                    process.kill()
                    process.wait()
                    raise _ChildFailed(f"the {self.role} process did not start within {timeout:.0f} s")
                if select.select([ours], [], [], 0.1)[0]:
                    chunk = os.read(ours, 512)
                    if not chunk:  # it ended (or closed the pipe) before saying anything
                        break
                    status += chunk
        finally:
            os.close(ours)
        said = status.decode(errors="replace").strip()
        if said != "ready":
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)
            raise _ChildFailed(
                f"the {self.role} process could not start: {said or f'it ended with exit code {process.poll()}'}"
            )
        log.info("%s process started (pid %d)", self.role, process.pid)

    def watch(self) -> None:
        """Start the process again if it has died (called about twice a second)."""
        process = self.process
        if process is None or process.poll() is None:
            return
        t = time.monotonic()
        if self._retry_at == 0.0:
            lived = t - self._started_at
            # At once, unless it keeps dying soon after its start: then 0.5, 1, 2 … 10 s.
            self._quick_deaths = 0 if lived >= self.STEADY else self._quick_deaths + 1
            self._backoff = (
                0.0 if self._quick_deaths <= 1 else min(self.BACKOFF_MAX, 0.5 * 2 ** (self._quick_deaths - 2))
            )
            self._retry_at = t + self._backoff
            log.error(
                "the %s process (pid %d) died with exit code %s after %.1f s; starting it again%s",
                self.role,
                process.pid,
                process.returncode,
                lived,
                f" in {self._backoff:.1f} s" if self._backoff else "",
            )
        if t < self._retry_at:
            return
        self._retry_at = 0.0
        self.restarts += 1
        try:
            self.start()
        except Exception as exc:  # tried again at the next watch, after a longer pause
            log.error("%s", exc)
            self._started_at = time.monotonic()

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, then SIGKILL if it has not drained within ``timeout``."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.error("the %s process did not stop within %.0f s; killing it", self.role, timeout)
            process.kill()
            process.wait(5)


class _Children:
    """The simulator and delivery processes, and the thread that keeps them running."""

    def __init__(self, roles: list[str], on_failure: Callable[[], None]) -> None:
        self.children = [_Child(role) for role in roles]
        self.failed = False
        self._on_failure = on_failure
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="uvox-supervise", daemon=True)

    def start(self) -> None:
        """Start the simulator (when there is one) and wait until it listens, so that the
        dispatcher's first bind finds it; delivery is started by the watching thread,
        while the HTTP processes start: a restart of `uvox serve` serves again sooner.
        A delivery process that cannot start calls ``on_failure``."""
        for child in self.children:
            if child.role == "smsc-sim":
                child.start()
        self._thread.start()

    def _watch(self) -> None:
        for child in self.children:
            if child.process is None:
                try:
                    child.start()
                except _ChildFailed as exc:
                    log.error("%s; stopping", exc)
                    self.failed = True
                    self._on_failure()
                    return
        while not self._stopping.wait(0.5):
            for child in self.children:
                if self._stopping.is_set():
                    return
                child.watch()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(10)
        for child in reversed(self.children):  # delivery drains before the simulator goes
            child.stop()


def main(argv: list[str]) -> None:
    """``python -m uvox.server ROLES``: what ``uvox serve`` becomes with several HTTP
    processes (:func:`exec_supervisor`), the database already prepared."""
    roles = argv[0].split(",") if len(argv) == 1 else []
    if not roles or not set(roles) <= {"smsc-sim", "delivery"}:
        sys.exit("usage: python -m uvox.server smsc-sim,delivery|delivery (started by `uvox serve`)")
    settings = get_settings()
    configure_logging(settings)
    serve(settings, roles=roles)


if __name__ == "__main__":
    main(sys.argv[1:])
