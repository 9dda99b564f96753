"""Prometheus metrics, with ``prometheus-client``.

Two kinds, because an installation is many processes:

- counters and histograms of what a process does (HTTP requests, submits to the
  SMSC; uvox.counters, where the API and the dispatcher record them): kept by the
  process; with ``uvox serve --workers N`` every process writes them to ``PROMETHEUS_MULTIPROC_DIR`` (set by ``uvox serve`` before the HTTP
  processes start) and /metrics adds them up (prometheus-client's multiprocess mode);
- the platform's state (messages in flight, connectors up, calls, holds): read from
  the database when Prometheus scrapes, so every process gives the same answer.
  Only indexed, small sets are counted (in-flight states, not the whole history).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import sqlalchemy as sa
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from uvox import counters  # noqa: F401  (registers the process's counters)
from uvox.db import schema as t
from uvox.platform import Platform
from uvox.sms import states
from uvox.sms.states import MessageState
from uvox.voice.states import CallStatus

log = logging.getLogger(__name__)
CONTENT_TYPE = CONTENT_TYPE_LATEST
#: Message states a message passes through before it is final (small, indexed sets).
IN_FLIGHT_STATES = states.IN_FLIGHT


def endpoint_of(path: str) -> str:
    """A label for a path outside the API, from a fixed set (a raw path would let
    any client create a time series)."""
    if path in ("/health", "/ready", "/metrics", "/docs", "/openapi.json", "/"):
        return path
    if path.startswith("/voice/kamailio/"):
        return "/voice/kamailio"
    if path.startswith("/softphone"):
        return "/softphone"
    return "portal"


class PlatformCollector:
    """The installation's state, read from the database on each scrape."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def _read(self) -> tuple[dict, dict, tuple | None, set]:
        from uvox.db.kamailio_tables import acc_cdrs
        from uvox.dispatch import ownership, routing

        M, C = t.messages, t.calls
        with self.platform.engine.connect() as conn:
            counts = dict(
                conn.execute(
                    sa.select(M.c.state, sa.func.count()).where(M.c.state.in_(IN_FLIGHT_STATES)).group_by(M.c.state)
                ).all()
            )
            specs, _ = routing.load(conn, self.platform.settings)
            voice = None
            if conn.dialect.name == "postgresql":
                in_progress = C.c.status == CallStatus.IN_PROGRESS
                voice = conn.execute(
                    sa.select(
                        sa.select(sa.func.count()).where(in_progress).scalar_subquery(),
                        sa.select(sa.func.coalesce(sa.func.sum(C.c.hold), 0)).where(in_progress).scalar_subquery(),
                        sa.select(sa.func.count())
                        .select_from(acc_cdrs)
                        .where(acc_cdrs.c.settled.is_(False))
                        .scalar_subquery(),
                    )
                ).one()
        return counts, specs, voice, ownership.read_up(self.platform.engine)

    def collect(self) -> Iterable[Metric]:
        states = GaugeMetricFamily("uvox_messages_in_flight", "Messages not yet final, by state", labels=["state"])
        queue = GaugeMetricFamily("uvox_queue_depth", "Messages queued for an SMSC")
        up = GaugeMetricFamily(
            "uvox_connector_up", "1 when some delivery process has the connector bound", labels=["connector"]
        )
        try:
            counts, specs, voice, bound = self._read()
        except sa.exc.SQLAlchemyError:
            # The database is away: say so with one gauge instead of failing the scrape
            # (a 500 would hide the process counters too, when they matter most).
            log.warning("metrics: the database cannot be read", exc_info=True)
            yield GaugeMetricFamily("uvox_database_up", "1 when the database answered this scrape", value=0)
            return
        yield GaugeMetricFamily("uvox_database_up", "1 when the database answered this scrape", value=1)
        for state in IN_FLIGHT_STATES:
            states.add_metric([state], counts.get(state, 0))
        queue.add_metric([], counts.get(MessageState.QUEUED, 0))
        for name in sorted(specs):
            up.add_metric([name], 1 if name in bound else 0)
        yield from (states, queue, up)
        if voice is not None:
            yield GaugeMetricFamily("uvox_calls_in_progress", "Calls authorized and not yet settled", value=voice[0])
            # A gauge is a float: fine for watching, never used for money.
            yield GaugeMetricFamily(
                "uvox_call_holds", "Money held by calls in progress, all accounts", value=float(voice[1])
            )
            yield GaugeMetricFamily(
                "uvox_call_records_unrated", "Call records Kamailio wrote that are not settled", value=voice[2]
            )


def exposition(platform: Platform) -> bytes:
    if platform.settings.metrics_dir:  # PROMETHEUS_MULTIPROC_DIR, read by config.py
        procs = CollectorRegistry()
        multiprocess.MultiProcessCollector(procs)
        text = generate_latest(procs)
    else:
        text = generate_latest(REGISTRY)
    state = CollectorRegistry(auto_describe=False)
    state.register(PlatformCollector(platform))
    return text + generate_latest(state)
