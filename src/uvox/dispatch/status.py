"""Delivery state for the portal and operators: which connectors are up, is the simulator a route,
what each connector carried, how deep the queue is.

Dispatchers publish, every second, whether each connector they hold is bound (see
``ownership.publish``); this module only reads, so any process (the portal in
``uvox serve``, an operator's CLI) sees the state of binds held by any worker.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, Row

from uvox.clock import aware, now
from uvox.db import schema as t
from uvox.db import timeline
from uvox.db.session import read
from uvox.dispatch import ownership, routing
from uvox.sms.states import NOT_DELIVERED, MessageState

if TYPE_CHECKING:
    from uvox.platform import Platform


def connector_states(platform: Platform) -> dict[str, str]:
    """{connector name: "bound" | "down" | "disabled" | "not held"}, the simulator included when it is a route."""
    cutoff = now() - ownership.UP_FRESH
    with read(platform.engine) as conn:
        specs, _ = routing.load(conn, platform.settings)
        disabled = conn.execute(sa.select(t.connectors.c.name).where(t.connectors.c.enabled.is_(False))).scalars().all()
        published = dict(
            conn.execute(
                sa.select(t.meta.c.key, t.meta.c.value).where(t.meta.c.key.like(ownership.UP_PREFIX + "%"))
            ).all()
        )
    out = {name: "disabled" for name in disabled}
    for name in specs:
        raw = published.get(ownership.UP_PREFIX + name)
        state = "not held"
        if raw:
            try:
                d = json.loads(raw)
                if aware(datetime.fromisoformat(d["at"])) >= cutoff:
                    state = "bound" if d.get("bound") else "down"
            except (ValueError, KeyError, TypeError):
                pass
        out[name] = state
    return out


def simulator_active(platform: Platform) -> bool:
    """True while the SMSC simulator is a route: the portal shows a banner then."""
    with read(platform.engine) as conn:
        return routing.simulator_is_route(conn, platform.settings)


def connectors_and_prefixes(engine: Engine) -> tuple[list[Row[Any]], dict[int, list[str]]]:
    """Every configured connector (rows of ``connectors``, by name) and the prefixes
    routed to each ("*" for a catch-all route), for the operator's connector page."""
    with read(engine) as conn:
        rows = conn.execute(sa.select(t.connectors).order_by(t.connectors.c.name)).all()
        routes = conn.execute(sa.select(t.routes.c.connector_id, t.routes.c.prefix).order_by(t.routes.c.prefix)).all()
    by_connector: dict[int, list[str]] = {}
    for r in routes:
        by_connector.setdefault(r.connector_id, []).append(r.prefix or "*")
    return list(rows), by_connector


# --- the operator's console: traffic per connector, the queue --------------------------


@dataclass(frozen=True)
class ConnectorTraffic:
    #: "" for messages no connector took (failed or expired before routing, or waiting).
    connector: str
    messages: int
    delivered: int
    #: Final without a delivery: undelivered, rejected, expired, failed.
    errors: int

    @property
    def pending(self) -> int:
        return self.messages - self.delivered - self.errors

    @property
    def error_rate(self) -> Decimal | None:
        """Errors among the messages that reached a final state, in percent."""
        final = self.delivered + self.errors
        return (Decimal(100) * self.errors / final).quantize(Decimal("0.1")) if final else None


def traffic_by_connector(engine: Engine, days: int = 30) -> list[ConnectorTraffic]:
    """Live messages of the last ``days`` UTC days by the connector that took them,
    busiest first (test-mode messages never reach a connector: left out)."""
    M = t.messages
    _, since = timeline.window(days)
    name = sa.func.coalesce(M.c.connector, "").label("connector")
    n = sa.func.count()
    with read(engine) as conn:
        bound = timeline.first_id_since(conn, M, M.c.created_at, since)
        rows = conn.execute(
            sa.select(
                name,
                n,
                n.filter(M.c.state == MessageState.DELIVERED),
                n.filter(M.c.state.in_([s.value for s in NOT_DELIVERED])),
            )
            .where(M.c.created_at >= since, M.c.id >= bound, M.c.test.is_(False))
            .group_by(name)
            .order_by(n.desc(), name)
        ).all()
    return [ConnectorTraffic(r[0], int(r[1]), int(r[2]), int(r[3])) for r in rows]


#: The states of the queue, in the order a message passes them.
QUEUE_STATES = (MessageState.WAITING_BALANCE, MessageState.QUEUED, MessageState.SUBMITTING, MessageState.SUBMITTED)


@dataclass(frozen=True)
class Queue:
    #: Messages in each of QUEUE_STATES now.
    depth: dict[MessageState, int]
    #: When the oldest message waiting for a dispatcher (queued) was accepted.
    oldest_queued: datetime | None


def queue(engine: Engine) -> Queue:
    """How many live messages wait in each state, counted on the ``(state, id)`` index
    (test-mode messages wait for their timer, not a connector: left out)."""
    M = t.messages
    with read(engine) as conn:
        counts: dict[str, int] = dict(
            conn.execute(
                sa.select(M.c.state, sa.func.count())
                .where(M.c.state.in_([s.value for s in QUEUE_STATES]), M.c.test.is_(False))
                .group_by(M.c.state)
            ).all()
        )
        oldest = conn.execute(
            sa.select(M.c.created_at).where(M.c.state == MessageState.QUEUED).order_by(M.c.id).limit(1)
        ).scalar()
    return Queue({s: int(counts.get(s.value, 0)) for s in QUEUE_STATES}, aware(oldest))
