"""Which connector carries a message: longest dial prefix, then priority, then failover.

The route table is small (tens of rows) and changes rarely, so every dispatcher
loads it whole and decides in Python; the database only stores it.

The SMSC simulator is a route like any other, named ``smsc-sim``: it is the
default route (prefix "") while no configured connector has a default route of
its own and the simulator is enabled. Messages it carries are marked simulated.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from uvox.config import Settings
from uvox.db import schema as t

SIM_NAME = "smsc-sim"


@dataclass(frozen=True)
class ConnectorSpec:
    name: str
    host: str
    port: int
    system_id: str
    #: The bind password as stored: sealed (uvox.secretbox, ``smpp-password``), "" for
    #: none. The link opens it when it binds (smpp_link.SmppLinks).
    sealed_password: str = field(repr=False)
    system_type: str = ""
    bind_mode: str = "transceiver"
    tps: int = 0
    window: int = 64
    accepts_alphanumeric: bool = True
    generic_sender: str | None = None
    simulated: bool = False


@dataclass(frozen=True)
class Route:
    prefix: str
    connector: str
    priority: int = 0


class RouteTable:
    def __init__(self, routes: list[Route]) -> None:
        # Longest prefix first, then lower priority number, then name: deterministic.
        self.routes = sorted(routes, key=lambda r: (-len(r.prefix), r.priority, r.connector))

    def tiers(self, recipient: str) -> list[list[str]]:
        """Candidate connectors, best tier first; connectors within a tier are equals."""
        digits = recipient.lstrip("+")
        out: list[list[str]] = []
        seen: set[str] = set()
        key = None
        for r in self.routes:
            if not digits.startswith(r.prefix) or r.connector in seen:
                continue
            seen.add(r.connector)
            k = (len(r.prefix), r.priority)
            if k != key:
                out.append([])
                key = k
            out[-1].append(r.connector)
        return out

    def choose(self, recipient: str, up: set[str], mine: set[str]) -> str | None:
        """The best connector that is up; among equals, one this worker holds.

        A tier whose connectors are all down is skipped: that is the failover.
        """
        for tier in self.tiers(recipient):
            live = [c for c in tier if c in up]
            if not live:
                continue
            local = [c for c in live if c in mine]
            pool = local or live
            # Spread a tier of equals by number, stable for a given recipient.
            return pool[zlib.crc32(recipient.encode()) % len(pool)] if len(pool) > 1 else pool[0]
        return None


def simulator_spec(settings: Settings) -> ConnectorSpec:
    return ConnectorSpec(
        name=SIM_NAME,
        host=settings.smsc_sim_host,
        port=settings.smsc_sim_port,
        system_id="uvox",
        sealed_password="",
        window=64,
        simulated=True,
    )


def load(conn: Connection, settings: Settings) -> tuple[dict[str, ConnectorSpec], RouteTable]:
    """Enabled connectors and their routes, plus the simulator route when it applies."""
    C, R = t.connectors, t.routes
    specs: dict[str, ConnectorSpec] = {}
    by_id: dict[int, str] = {}
    for c in conn.execute(sa.select(C).where(C.c.enabled.is_(True))):
        specs[c.name] = ConnectorSpec(
            name=c.name,
            host=c.host,
            port=c.port,
            system_id=c.system_id,
            sealed_password=c.sealed_password,
            system_type=c.system_type or "",
            bind_mode=c.bind_mode or "transceiver",
            tps=c.tps or 0,
            window=c.window or 64,
            accepts_alphanumeric=bool(c.accepts_alphanumeric),
            generic_sender=c.generic_sender,
        )
        by_id[c.id] = c.name
    routes = [
        Route(r.prefix or "", by_id[r.connector_id], r.priority or 0)
        for r in conn.execute(sa.select(R))
        if r.connector_id in by_id
    ]
    if settings.smsc_sim and not any(r.prefix == "" for r in routes):
        sim = simulator_spec(settings)
        specs[sim.name] = sim
        # Lowest priority possible: any configured default route would win anyway.
        routes.append(Route("", sim.name, 1_000_000))
    return specs, RouteTable(routes)


def simulator_is_route(conn: Connection, settings: Settings) -> bool:
    """True while the simulator carries messages: the portal's banner asks this."""
    specs, _ = load(conn, settings)
    return SIM_NAME in specs
