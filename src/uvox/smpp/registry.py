"""Connectors and their routes, as the operator configures them (CLI, portal).

The bind password is stored sealed (uvox.secretbox, purpose ``smpp-password``) under
the instance secret the caller passes (``Platform.secret``); nothing here returns it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from uvox import secretbox
from uvox.clock import now
from uvox.db import schema as t
from uvox.db.session import read, write
from uvox.errors import Conflict, NotFound

C, R = t.connectors, t.routes


@dataclass
class ConnectorInfo:
    id: int
    name: str
    host: str
    port: int
    system_id: str
    system_type: str
    bind_mode: str
    tps: int
    window: int
    enabled: bool
    accepts_alphanumeric: bool
    generic_sender: str | None
    prefixes: list[str]

    def public(self) -> dict[str, Any]:
        """Everything but the password."""
        return {k: v for k, v in self.__dict__.items()}


def _password(password: str) -> str:
    if len(password) > 8:
        raise ValueError("SMPP limits system_id to 15 and password to 8 characters")
    return password


def add(
    engine: Engine,
    name: str,
    *,
    host: str,
    port: int,
    system_id: str,
    password: str,
    system_type: str = "",
    bind_mode: str = "transceiver",
    tps: int = 0,
    window: int = 64,
    prefixes: list[str] | tuple[str, ...] = (),
    priority: int = 0,
    accepts_alphanumeric: bool = True,
    generic_sender: str | None = None,
    secret: bytes | None = None,
) -> ConnectorInfo:
    """Add a connector; without prefixes it becomes a default route (taking over from the simulator).
    ``secret`` (the instance secret) seals the password; it is needed when there is one."""
    if bind_mode not in ("transceiver", "transmitter"):
        raise ValueError("bind mode must be transceiver or transmitter")
    if not name or len(name) > 100:
        raise ValueError("a connector needs a name of at most 100 characters")
    if len(system_id) > 15:
        raise ValueError("SMPP limits system_id to 15 and password to 8 characters")
    sealed = secretbox.seal_optional(secret, _password(password), secretbox.SMPP_PASSWORD)
    if not 0 < port < 65536:
        raise ValueError("port must be between 1 and 65535")
    if tps < 0 or window < 1:
        raise ValueError("tps must be >= 0 (0: unlimited) and window >= 1")
    clean = []
    for p in prefixes or [""]:
        p = p.strip().lstrip("+")
        if p and not p.isdigit():
            raise ValueError(f"prefix {p!r} must be digits")
        clean.append(p)
    with write(engine) as conn:
        if conn.execute(sa.select(C.c.id).where(C.c.name == name)).first():
            raise Conflict(f"a connector named {name!r} exists")
        cid = conn.execute(
            sa.insert(C)
            .values(
                name=name,
                host=host,
                port=port,
                system_id=system_id,
                sealed_password=sealed,
                system_type=system_type,
                bind_mode=bind_mode,
                tps=tps,
                window=window,
                accepts_alphanumeric=accepts_alphanumeric,
                generic_sender=generic_sender,
                enabled=True,
                created_at=now(),
            )
            .returning(C.c.id)
        ).scalar_one()
        conn.execute(
            sa.insert(R), [{"prefix": p, "connector_id": cid, "priority": priority} for p in sorted(set(clean))]
        )
    return get(engine, name)


def get(engine: Engine, name: str) -> ConnectorInfo:
    for c in list_all(engine):
        if c.name == name:
            return c
    raise NotFound(f"no connector {name!r}")


def list_all(engine: Engine) -> list[ConnectorInfo]:
    with read(engine) as conn:
        routes: dict[int, list[str]] = {}
        for r in conn.execute(sa.select(R.c.connector_id, R.c.prefix).order_by(R.c.prefix)):
            routes.setdefault(r.connector_id, []).append(r.prefix)
        return [
            ConnectorInfo(
                c.id,
                c.name,
                c.host,
                c.port,
                c.system_id,
                c.system_type,
                c.bind_mode,
                c.tps,
                c.window,
                c.enabled,
                c.accepts_alphanumeric,
                c.generic_sender,
                routes.get(c.id, []),
            )
            for c in conn.execute(sa.select(C).order_by(C.c.name))
        ]


def set_password(engine: Engine, name: str, password: str, secret: bytes) -> None:
    """A new bind password ("" for none), sealed. Dispatchers see the connector changed
    at their next look at the routes and bind again with it."""
    sealed = secretbox.seal_optional(secret, _password(password), secretbox.SMPP_PASSWORD)
    with write(engine) as conn:
        if not conn.execute(sa.update(C).where(C.c.name == name).values(sealed_password=sealed)).rowcount:
            raise NotFound(f"no connector {name!r}")


def set_enabled(engine: Engine, name: str, enabled: bool) -> None:
    with write(engine) as conn:
        if not conn.execute(sa.update(C).where(C.c.name == name).values(enabled=enabled)).rowcount:
            raise NotFound(f"no connector {name!r}")


def remove(engine: Engine, name: str) -> None:
    with write(engine) as conn:
        cid = conn.execute(sa.select(C.c.id).where(C.c.name == name)).scalar()
        if cid is None:
            raise NotFound(f"no connector {name!r}")
        conn.execute(sa.delete(R).where(R.c.connector_id == cid))
        conn.execute(sa.delete(C).where(C.c.id == cid))
