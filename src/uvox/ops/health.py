"""Readiness: may this process be sent traffic?"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import sqlalchemy as sa

from uvox.db.migrate import alembic_config
from uvox.platform import Platform


@dataclass
class Readiness:
    ready: bool
    checks: dict[str, str] = field(default_factory=dict)
    connectors: dict[str, bool] = field(default_factory=dict)

    def as_json(self) -> dict:
        return {
            "status": "ready" if self.ready else "not ready",
            "checks": self.checks,
            "connectors": {name: "bound" if up else "down" for name, up in self.connectors.items()},
        }


@lru_cache(maxsize=1)
def migration_heads() -> frozenset[str]:
    """The revisions this code expects (read from the migration scripts once).

    Alembic is imported here, at the first /ready, not by every HTTP process."""
    from alembic.script import ScriptDirectory

    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def readiness(platform: Platform) -> Readiness:
    from alembic.runtime.migration import MigrationContext

    from uvox.dispatch import ownership, routing  # delivery's own view of its routes

    checks: dict[str, str] = {}
    try:
        with platform.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
            current = frozenset(MigrationContext.configure(conn).get_current_heads())
            specs, _ = routing.load(conn, platform.settings)
    except Exception as exc:  # any driver error: the database is not usable from here
        checks["database"] = f"unreachable: {type(exc).__name__}"
        return Readiness(False, checks)
    checks["database"] = "ok"
    expected = migration_heads()
    checks["migrations"] = (
        "ok"
        if current == expected
        else (
            f"database at {', '.join(sorted(current)) or 'nothing'}, code expects {', '.join(sorted(expected))}: "
            "run uvox db upgrade"
        )
    )
    up = ownership.read_up(platform.engine)
    connectors = {name: name in up for name in sorted(specs)}
    if not connectors:
        checks["connectors"] = "no SMS route is configured"
    elif all(connectors.values()):
        checks["connectors"] = "ok"
    else:
        checks["connectors"] = "down: " + ", ".join(n for n, ok in connectors.items() if not ok)
    return Readiness(all(v == "ok" for v in checks.values()), checks, connectors)
