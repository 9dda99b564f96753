"""What every process of the platform does for itself when it starts: its log
configuration, and (the children of `uvox serve`) a name for ``ps`` and an end when
its supervisor dies.

Below everything that runs processes (the ``uvox`` command, server.py,
supervised.py), so each of them calls the same functions without importing the
others; it imports nothing of ours but the settings' type.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from uvox.config import Settings


def configure_logging(settings: Settings) -> None:
    if settings.log_format == "json":
        # One object a line for a log shipper; API lines carry ``request_id``, the id
        # the client got in its reply.
        from pythonjsonlogger.json import JsonFormatter

        handler = logging.StreamHandler()
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
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


_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15


def die_with_parent() -> None:
    """Have the kernel end this process when ``uvox serve`` (its supervisor) dies.

    The supervisor stops its children when it is stopped, but a supervisor killed
    outright (SIGKILL, the OOM killer) would leave them serving on the shared socket
    or holding connectors with nobody to restart them, beside the next ``uvox
    serve``. Linux only (``prctl(PR_SET_PDEATHSIG)``, through libc: no package
    exposes it); elsewhere the supervisor's own shutdown is all there is."""
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


def name_process(name: str) -> None:
    """Give this process a name ``ps``, ``top`` and ``pkill -x`` show (Linux's comm,
    15 bytes), so an operator can tell the HTTP, delivery and simulator processes
    apart. Through libc's prctl, like :func:`die_with_parent`; elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)
