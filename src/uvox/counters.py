"""What a process counts of its own work, for /metrics: HTTP requests answered and
submits to the SMSC, with ``prometheus-client``.

Kept by the process; with ``uvox serve --workers N`` every process writes them to
``PROMETHEUS_MULTIPROC_DIR`` and /metrics (uvox.ops.metrics) adds them up. Here,
below every package that counts (the API, the dispatcher) and imports nothing of
ours but config.py, so counting never pulls in the code that reports it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Histogram, disable_created_metrics

from uvox.config import metrics_dir

log = logging.getLogger("uvox.ops.metrics")
disable_created_metrics()  # one *_created series per counter is noise for our users
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

HTTP_REQUESTS = Counter(
    "uvox_http_requests",
    "HTTP requests answered, by endpoint, HTTP status and the manual's result code",
    ["endpoint", "status", "code"],
)
HTTP_LATENCY = Histogram(
    "uvox_http_request_duration_seconds",
    "Time to answer an HTTP request, by endpoint",
    ["endpoint"],
    buckets=_LATENCY_BUCKETS,
)
SMS_DISPATCHED = Counter(
    "uvox_sms_dispatched",
    "Messages whose submit to the SMSC ended, by connector and outcome (submitted, retry, failed)",
    ["connector", "outcome"],
)
SMS_DISPATCH_LATENCY = Histogram(
    "uvox_sms_dispatch_duration_seconds",
    "From a message's claim to the SMSC's answer for all its parts",
    ["connector"],
    buckets=_LATENCY_BUCKETS,
)


def observe_http(endpoint: str, status: int, code: str, seconds: float) -> None:
    with _never_raise():
        HTTP_REQUESTS.labels(endpoint, str(status), code).inc()
        HTTP_LATENCY.labels(endpoint).observe(seconds)


def observe_dispatch(connector: str, outcome: str, seconds: float) -> None:
    with _never_raise():
        SMS_DISPATCHED.labels(connector, outcome).inc()
        SMS_DISPATCH_LATENCY.labels(connector).observe(seconds)


_warned = False


@contextmanager
def _never_raise() -> Iterator[None]:
    """Counting must never fail the thing counted: in multiprocess mode a write goes
    to a file under PROMETHEUS_MULTIPROC_DIR, and a missing directory or a full disk
    would otherwise turn every API request into a 500. Said once in the log."""
    global _warned
    try:
        yield
    except Exception:
        if not _warned:
            _warned = True
            log.exception(
                "metrics cannot be recorded (PROMETHEUS_MULTIPROC_DIR=%s); requests go on without them", metrics_dir()
            )
