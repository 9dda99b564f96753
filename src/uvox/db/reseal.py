"""``uvox db reseal``: seal every stored secret again under a new instance secret.

What is sealed (uvox.secretbox, AES-GCM under keys derived from the instance
secret): the connectors' SMPP bind passwords, the trunks' digest passwords and the
real text of one-time code SMS not yet accepted by a carrier. After the instance
secret changes (UVOX_SECRET_KEY set, changed or unset) none of them opens until
they are sealed again under the new one; this does it for all of them in one
transaction, so a failure changes nothing.

A value that already opens with the new key is left as it is, so running it twice
is harmless; a value that opens with neither key stops everything (ResealError)
and names it. Run it with ``uvox serve`` and ``uvox worker`` stopped: a process
still on the old key would seal new values that the new key cannot open.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from uvox import secretbox
from uvox.db import schema as t
from uvox.db.migrate import instance_secret
from uvox.db.session import write


class ResealError(ValueError):
    """A sealed value opens with neither key; nothing was changed."""


#: Every sealed column: (table, key column, sealed column, purpose, what to call it).
SEALED: tuple[tuple[sa.Table, str, str, bytes, str], ...] = (
    (t.connectors, "name", "sealed_password", secretbox.SMPP_PASSWORD, "connector_passwords"),
    (t.trunks, "name", "sealed_password", secretbox.TRUNK_PASSWORD, "trunk_passwords"),
    (t.messages, "id", "secret_text", secretbox.MESSAGE_TEXT, "message_texts"),
)


def stored_secret(engine: Engine) -> bytes:
    """The secret the platform generated and keeps in the database (used while
    UVOX_SECRET_KEY is unset)."""
    return instance_secret(engine)


def _opens(secret: bytes, token: str, purpose: bytes) -> bool:
    try:
        secretbox.open_(secret, token, purpose)
    except Exception:
        return False
    return True


def reseal(engine: Engine, old: bytes, new: bytes) -> dict[str, Any]:
    """Seal under ``new`` what was sealed under ``old``; counts of values resealed per kind."""
    counts: dict[str, Any] = {what: 0 for *_, what in SEALED}
    if old == new:
        return counts
    with write(engine) as conn:
        for table, key, column, purpose, what in SEALED:
            col = table.c[column]
            rows = conn.execute(sa.select(table.c.id, table.c[key], col).where(col.isnot(None), col != "")).all()
            for row_id, label, token in rows:
                try:
                    clear = secretbox.open_(old, token, purpose)
                except Exception:
                    if _opens(new, token, purpose):
                        continue  # sealed under the new key already (a second run)
                    raise ResealError(
                        f"{what.replace('_', ' ')}: {label} opens with neither the old key nor "
                        "the current one; nothing was changed (is the old key right?)"
                    ) from None
                conn.execute(
                    sa.update(table).where(table.c.id == row_id).values({column: secretbox.seal(new, clear, purpose)})
                )
                counts[what] += 1
    return counts
