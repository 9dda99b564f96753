"""Delivery state for the portal and operators: which connectors are up, is the simulator a route.

Dispatchers publish, every second, whether each connector they hold is bound (see
``ownership.publish``); this module only reads, so any process (the portal in
``uvox serve``, an operator's CLI) sees the state of binds held by any worker.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, Row

from uvox.clock import aware, now
from uvox.db import schema as t
from uvox.db.session import read
from uvox.dispatch import ownership, routing

if TYPE_CHECKING:
    from uvox.platform import Platform


def connector_states(platform: Platform) -> dict[str, str]:
    """{connector name: "bound" | "down" | "disabled" | "not held"}, the simulator included when it is a route."""
    cutoff = now() - ownership.UP_FRESH
    with read(platform.engine) as conn:
        specs, _ = routing.load(conn, platform.settings)
        disabled = conn.execute(sa.select(t.connectors.c.name).where(t.connectors.c.enabled.is_(False))).scalars().all()
        published = dict(conn.execute(sa.select(t.meta.c.key, t.meta.c.value)
                                      .where(t.meta.c.key.like(ownership.UP_PREFIX + "%"))).all())
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
        routes = conn.execute(sa.select(t.routes.c.connector_id, t.routes.c.prefix)
                              .order_by(t.routes.c.prefix)).all()
    by_connector: dict[int, list[str]] = {}
    for r in routes:
        by_connector.setdefault(r.connector_id, []).append(r.prefix or "*")
    return list(rows), by_connector
