"""Carrier trunks: where outbound calls go, and the order in which they are tried.

The operator configures trunks (``uvox admin trunk ...``); every call setup asks
:func:`candidates` for the enabled trunks that serve the dialled number. A trunk table
is small (a handful of rows), so that is one query for every enabled trunk and its
prefixes, and the matching is done in Python, as for SMPP routes (uvox.dispatch.routing).

Order (VOICE.md "Carrier trunks"): the longest matching prefix first, then the lowest
priority, then the name, so the order is always the same. A trunk without prefixes
serves every number, as the shortest (empty) prefix. A trunk appears once, at its
longest matching prefix.

Every value of a trunk travels to Kamailio in a reply of ``name=value`` pairs
separated by ``;`` (voice-contract.md, uvox.voice.http), so nothing stored here may
contain ``;``, ``=``, ``,``, spaces, quotes or backslashes.

The digest password is stored sealed (uvox.secretbox, purpose ``trunk-password``)
under the instance secret, and a :class:`Trunk` only carries the sealed token:
:meth:`Trunk.password` opens it for the one reply to Kamailio that needs it.
Kamailio never reads the ``trunks`` table.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from uvox import secretbox
from uvox.accounts import authcache
from uvox.clock import now
from uvox.db import schema as t
from uvox.db.caches import caches_of
from uvox.db.session import read, write
from uvox.errors import Conflict, NotFound

TRANSPORTS = ("udp", "tcp")
MAX_INT = 2_147_483_647  # the columns are 32-bit integers on PostgreSQL
MAX_PREFIX = 20  # as long as a rate's dial prefix
MAX_CREDENTIAL = 100

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
# Printable ASCII but space and what would break the `;`-separated reply to Kamailio.
_CREDENTIAL = re.compile(r"[!#-+\--:<>-\[\]-~]+")


class InvalidTrunk(ValueError):
    """A trunk setting that cannot work; the message says which and why."""


@dataclass(frozen=True)
class Trunk:
    id: int
    name: str
    host: str
    port: int
    transport: str
    prefixes: tuple[str, ...]  # () = every number
    priority: int
    strip: int
    add_prefix: str
    username: str
    #: The digest password as stored: sealed, "" for none (never in a log line).
    sealed_password: str = field(repr=False)
    max_channels: int  # 0 = no limit
    enabled: bool

    @property
    def auth(self) -> bool:
        """True when the trunk has digest credentials for a 401/407 challenge."""
        return bool(self.username)

    def password(self, secret: bytes) -> str:
        """The digest password in clear ("" for none), for the reply to Kamailio only."""
        return secretbox.open_optional(secret, self.sealed_password, secretbox.TRUNK_PASSWORD)

    @property
    def uri_host(self) -> str:
        """The host as it goes in a SIP URI: an IPv6 address in brackets."""
        return f"[{self.host}]" if ":" in self.host else self.host

    def request_user(self, digits: str) -> str:
        """The request-URI user sent to this trunk: the number's digits without ``+``,
        less ``strip`` leading digits, with ``add_prefix`` in front."""
        digits = digits.strip().lstrip("+")
        return self.add_prefix + digits[self.strip :]

    def matching_prefix(self, digits: str) -> str | None:
        """The longest of this trunk's prefixes that ``digits`` starts with ("" for a
        trunk without prefixes), or None when the trunk does not serve the number."""
        if not self.prefixes:
            return ""
        best = None
        for p in self.prefixes:
            if digits.startswith(p) and (best is None or len(p) > len(best)):
                best = p
        return best

    def public(self) -> dict[str, Any]:
        """What an operator may see: everything but the password."""
        return {
            "id": self.id,
            "name": self.name,
            "host": self.host,
            "port": self.port,
            "transport": self.transport,
            "prefixes": list(self.prefixes),
            "priority": self.priority,
            "strip": self.strip,
            "add_prefix": self.add_prefix,
            "username": self.username,
            "auth": self.auth,
            "max_channels": self.max_channels,
            "enabled": self.enabled,
        }


# --- validation -------------------------------------------------------------------


def _name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidTrunk(f"trunk name {name!r} must be 1 to 100 letters, digits, '_', '.' or '-'")
    return name


def _host(host: str) -> str:
    raw = host.strip() if isinstance(host, str) else ""
    bare = raw[1:-1] if raw.startswith("[") and raw.endswith("]") else raw
    try:
        addr = ipaddress.ip_address(bare)
    except ValueError:
        pass
    else:
        if getattr(addr, "scope_id", None) is None:  # "fe80::1%eth0" cannot go in a SIP URI
            return str(addr)  # canonical: 2001:db8::1, never brackets
    name = raw[:-1] if raw.endswith(".") else raw
    labels = name.split(".")
    if (
        not name or len(name) > 253 or not all(_LABEL.fullmatch(x) for x in labels) or labels[-1].isdigit()
    ):  # "10.0.0.256" is a typo, not a hostname
        raise InvalidTrunk(f"host {host!r} must be a hostname or an IPv4/IPv6 address (no port, no scheme)")
    return name.lower()


def _int(what: str, value: object, low: int, high: int = MAX_INT) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidTrunk(f"{what} must be a whole number from {low} to {high}, not {value!r}")
    return value


def _transport(transport: str) -> str:
    value = transport.lower() if isinstance(transport, str) else transport
    if value not in TRANSPORTS:
        raise InvalidTrunk(f"transport {transport!r} must be udp or tcp")
    return value


def _prefixes(prefixes: str | Iterable[str]) -> tuple[str, ...]:
    if isinstance(prefixes, str):
        prefixes = (prefixes,)
    clean = set()
    for raw in prefixes or ():
        p = raw.strip() if isinstance(raw, str) else ""
        p = p[1:] if p.startswith("+") else p
        if not (p.isascii() and p.isdigit()) or len(p) > MAX_PREFIX:
            raise InvalidTrunk(
                f"prefix {raw!r} must be 1 to {MAX_PREFIX} digits, e.g. 34 or +34 "
                "(without --prefix the trunk serves every number)"
            )
        clean.add(p)
    return tuple(sorted(clean))


def _add_prefix(value: str) -> str:
    if not isinstance(value, str) or (value and not (value.isascii() and value.isdigit())) or len(value) > MAX_PREFIX:
        raise InvalidTrunk(f"add-prefix {value!r} must be up to {MAX_PREFIX} digits")
    return value


def _credential(what: str, value: str) -> str:
    if not isinstance(value, str) or (value and not _CREDENTIAL.fullmatch(value)) or len(value) > MAX_CREDENTIAL:
        raise InvalidTrunk(
            f"{what} must be up to {MAX_CREDENTIAL} printable ASCII characters without "
            "spaces, ';', '=', ',', '\"' or '\\'"
        )
    return value


# --- operator commands --------------------------------------------------------------


def add_trunk(
    engine: Engine,
    name: str,
    host: str,
    port: int = 5060,
    transport: str = "udp",
    prefixes: str | Iterable[str] = (),
    priority: int = 10,
    strip: int = 0,
    add_prefix: str = "",
    username: str = "",
    password: str = "",
    max_channels: int = 0,
    secret: bytes | None = None,
) -> Trunk:
    """Add an enabled trunk. Raises InvalidTrunk for a setting that cannot work and
    Conflict when a trunk of that name exists. ``secret`` (the instance secret) seals
    the password; it is needed when there is one."""
    name = _name(name)
    host = _host(host)
    port = _int("port", port, 1, 65535)
    transport = _transport(transport)
    clean = _prefixes(prefixes)
    priority = _int("priority", priority, 0)
    strip = _int("strip", strip, 0, 15)  # E.164: at most 15 digits
    add_prefix = _add_prefix(add_prefix)
    username = _credential("username", username)
    password = _credential("password", password)
    if bool(username) != bool(password):
        raise InvalidTrunk("give both username and password (digest credentials), or neither")
    max_channels = _int("max-channels", max_channels, 0)
    sealed = secretbox.seal_optional(secret, password, secretbox.TRUNK_PASSWORD)

    T, P = t.trunks, t.trunk_prefixes
    try:
        with write(engine) as conn:
            if conn.execute(sa.select(T.c.id).where(T.c.name == name)).first():
                raise Conflict(f"a trunk named {name!r} exists")
            tid = conn.execute(
                sa.insert(T)
                .values(
                    name=name,
                    host=host,
                    port=port,
                    transport=transport,
                    priority=priority,
                    strip=strip,
                    add_prefix=add_prefix,
                    username=username,
                    sealed_password=sealed,
                    max_channels=max_channels,
                    enabled=True,
                    created_at=now(),
                )
                .returning(T.c.id)
            ).scalar_one()
            conn.execute(sa.insert(P), [{"trunk_id": tid, "prefix": p} for p in clean or ("",)])
            authcache.invalidate(conn)
    except IntegrityError as exc:  # another operator added the same name at the same moment
        raise Conflict(f"a trunk named {name!r} exists") from exc
    return Trunk(
        tid, name, host, port, transport, clean, priority, strip, add_prefix, username, sealed, max_channels, True
    )


def _trunks_query() -> sa.Select[Any]:
    T, P = t.trunks, t.trunk_prefixes
    return (
        sa.select(
            T.c.id,
            T.c.name,
            T.c.host,
            T.c.port,
            T.c.transport,
            T.c.priority,
            T.c.strip,
            T.c.add_prefix,
            T.c.username,
            T.c.sealed_password,
            T.c.max_channels,
            T.c.enabled,
            P.c.prefix,
        )
        .select_from(T.outerjoin(P, P.c.trunk_id == T.c.id))
        .order_by(T.c.name, P.c.prefix)
    )


# Built once: every call set-up reads the trunks (a statement built per call cost
# more CPU than running it).
_ALL_TRUNKS = _trunks_query()
_ENABLED_TRUNKS = _ALL_TRUNKS.where(t.trunks.c.enabled.is_(True))


def _load(conn: Connection, enabled_only: bool) -> list[Trunk]:
    """Trunks with their prefixes, in one query, ordered by name."""
    rows: dict[int, list[Any]] = {}
    for r in conn.execute(_ENABLED_TRUNKS if enabled_only else _ALL_TRUNKS):
        entry = rows.get(r.id)
        if entry is None:
            entry = rows[r.id] = [r, []]
        if r.prefix:  # "" (or no row at all) = every number
            entry[1].append(r.prefix)
    return [
        Trunk(
            r.id,
            r.name,
            r.host,
            r.port,
            r.transport,
            tuple(ps),
            r.priority or 0,
            r.strip or 0,
            r.add_prefix or "",
            r.username or "",
            r.sealed_password or "",
            r.max_channels or 0,
            bool(r.enabled),
        )
        for r, ps in rows.values()
    ]


# Every call set-up needs the enabled trunks, which change only by the functions
# above. Each process keeps them and forgets them through the database like the API
# key cache (accounts/authcache.py: LISTEN/NOTIFY on PostgreSQL, a token row on
# SQLite), whose invalidate() every change here calls: a trunk disabled or removed
# is out of the next call's routes on every process. One round trip fewer a call.
# Kept in the Platform's caches (db/caches.py), under the key cache's epochs.
_ENABLED = "trunks:enabled"


def _enabled(conn: Connection) -> list[Trunk]:
    auth = caches_of(conn.engine).auth
    epoch = auth.epoch()  # before the read, as authcache.put wants
    found: list[Trunk] | None = auth.recall(_ENABLED, epoch)
    if found is not None:
        return found
    found = _load(conn, enabled_only=True)
    auth.remember(_ENABLED, epoch, found)
    return found


def list_trunks(engine: Engine) -> list[Trunk]:
    """Every trunk, enabled or not, by name."""
    with read(engine) as conn:
        return _load(conn, enabled_only=False)


def get_trunk(engine: Engine, name: str) -> Trunk:
    for tr in list_trunks(engine):
        if tr.name == name:
            return tr
    raise NotFound(f"no trunk {name!r}")


def set_password(engine: Engine, name: str, password: str, secret: bytes, username: str | None = None) -> Trunk:
    """New digest credentials for a trunk: the password (sealed), and the username when
    given. Both or neither: a password without a username (or the reverse) is refused,
    as in :func:`add_trunk`. The next call set-up on every process uses them."""
    password = _credential("password", password)
    with write(engine) as conn:
        T = t.trunks
        row = conn.execute(sa.select(T.c.id, T.c.username).where(T.c.name == name)).first()
        if row is None:
            raise NotFound(f"no trunk {name!r}")
        user = _credential("username", username) if username is not None else (row.username or "")
        if bool(user) != bool(password):
            raise InvalidTrunk(
                "give both username and password (digest credentials), or neither"
                + ("" if user else ": this trunk has no username, give --username")
            )
        conn.execute(
            sa.update(T)
            .where(T.c.id == row.id)
            .values(username=user, sealed_password=secretbox.seal_optional(secret, password, secretbox.TRUNK_PASSWORD))
        )
        authcache.invalidate(conn)
    return get_trunk(engine, name)


def set_enabled(engine: Engine, name: str, enabled: bool) -> None:
    """Enable or disable a trunk; calls already on it go on, new calls follow the change."""
    with write(engine) as conn:
        if not conn.execute(sa.update(t.trunks).where(t.trunks.c.name == name).values(enabled=bool(enabled))).rowcount:
            raise NotFound(f"no trunk {name!r}")
        authcache.invalidate(conn)


def remove_trunk(engine: Engine, name: str) -> None:
    """Remove a trunk and its prefixes. Call records keep the trunk's name."""
    T, P = t.trunks, t.trunk_prefixes
    with write(engine) as conn:
        tid = conn.execute(sa.select(T.c.id).where(T.c.name == name)).scalar()
        if tid is None:
            raise NotFound(f"no trunk {name!r}")
        conn.execute(sa.delete(P).where(P.c.trunk_id == tid))  # SQLite may not enforce the cascade
        conn.execute(sa.delete(T).where(T.c.id == tid))
        authcache.invalidate(conn)


# --- call setup -----------------------------------------------------------------------


def candidates(conn: Connection, digits: str) -> list[Trunk]:
    """The enabled trunks that serve ``digits`` (an E.164 number, ``+`` tolerated), in the
    order to try them: longest matching prefix, then lowest priority, then name."""
    digits = digits.strip().lstrip("+")
    ranked = []
    for tr in _enabled(conn):
        p = tr.matching_prefix(digits)
        if p is not None:
            ranked.append((-len(p), tr.priority, tr.name, tr))
    ranked.sort(key=lambda x: x[:3])
    return [x[3] for x in ranked]
