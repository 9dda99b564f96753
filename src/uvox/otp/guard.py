"""SMS pumping protection for OTP-api: request limits and the conversion-rate alarm.

SMS pumping: a fraudster makes a customer's sign-up form request codes for numbers
of premium or revenue-sharing ranges and earns a share of every SMS. Against it,
each code request of an account is checked, in this order:

1. its destination country (uvox.accounts.countries, code 152);
2. a pause of the number's prefix by the alarm below (156);
3. limits within a sliding window, each counted per account: codes per phone number
   (102, ``otp_send_limit`` per ``otp_send_window_seconds``, as before), per number
   prefix (154), per client address (155) and for the whole account (153), per
   ``otp_limit_window_seconds``. The operator overrides each per account
   (``uvox admin account otp-limits``); 0 is no limit.

A refused request sends and charges nothing, and is not counted. A prefix is the
number's country calling code and the ``otp_prefix_digits`` digits after it
(``+13055550100`` → ``+1305`` with the default 3).

The conversion-rate alarm: after a code is requested, if ``otp_alarm_min_requests``
or more codes were requested for its prefix within ``otp_alarm_window_seconds``
and fewer than ``otp_alarm_min_verified_percent`` % of them were verified, the
prefix is paused for the account for ``otp_alarm_pause_seconds``: further requests
to it get 156 until the pause ends, or the account (portal) or the operator (CLI)
lifts it. After a pause, the alarm counts only codes requested since it ended.

Test mode (sms/testmode.py) is left out of every count: a code a test key requested
(its message is ``messages.test``) or verified (always 000000) counts towards no
limit and no conversion rate, so a test key can neither use up an account's limits
nor hide real pumping behind verified test codes.

Counts are of ``otp_sessions`` rows (one per code sent), inside the transaction
that opens the session. Every check and the session's insert run under a lock per
account (SQLite: its one writer; PostgreSQL: a transaction-level advisory lock), so
concurrent requests from any number of processes and machines cannot count the
same free place twice: a limit of N lets exactly N through.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from functools import lru_cache

import phonenumbers
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from uvox.accounts.countries import country_of
from uvox.clock import aware, now
from uvox.config import Settings
from uvox.db import schema as t
from uvox.db.session import read, write

S, L, P = t.otp_sessions, t.otp_limits, t.otp_pauses
M = t.messages

#: A session of a live key: not one whose message is a test-mode one (by its primary key).
LIVE = ~sa.exists().where(M.c.id == S.c.message_id, M.c.test.is_(True))

#: First key of the two-int advisory lock ("UOG": uvox OTP guard); the second is the account id.
_LOCK_NS = 0x55_4F_47


@dataclass(frozen=True)
class Limits:
    """Codes an account may request; 0: no limit."""

    per_number: int
    per_prefix: int
    per_address: int
    per_account: int


LIMIT_NAMES = tuple(f.name for f in fields(Limits))


def defaults(settings: Settings) -> Limits:
    return Limits(
        per_number=max(0, settings.otp_send_limit),
        per_prefix=max(0, settings.otp_prefix_limit),
        per_address=max(0, settings.otp_address_limit),
        per_account=max(0, settings.otp_account_limit),
    )


def _effective(settings: Settings, row) -> Limits:
    base = defaults(settings)
    if row is None:
        return base
    return Limits(
        **{name: getattr(base, name) if getattr(row, name) is None else getattr(row, name) for name in LIMIT_NAMES}
    )


def limits(engine: Engine, settings: Settings, account_id: int) -> tuple[Limits, dict[str, int]]:
    """The account's limits in force, and which of them the operator set (the rest are defaults)."""
    with read(engine) as conn:
        row = conn.execute(sa.select(L).where(L.c.account_id == account_id)).first()
    overrides = {n: getattr(row, n) for n in LIMIT_NAMES if row is not None and getattr(row, n) is not None}
    return _effective(settings, row), overrides


def set_limits(engine: Engine, settings: Settings, account_id: int, changes: dict[str, int | None]) -> Limits:
    """Override limits of the account: ``{"per_prefix": 50}``; None puts one back to the
    configured default; names not given are left as they are."""
    unknown = set(changes) - set(LIMIT_NAMES)
    if unknown:
        raise ValueError(f"no such limit: {', '.join(sorted(unknown))}")
    if any(v is not None and v < 0 for v in changes.values()):
        raise ValueError("a limit is a number of codes, 0 (no limit) or more")
    with write(engine) as conn:
        row = conn.execute(sa.select(L).where(L.c.account_id == account_id)).first()
        values = {n: getattr(row, n) if row is not None else None for n in LIMIT_NAMES}
        values.update(changes)
        if row is None:
            conn.execute(sa.insert(L).values(account_id=account_id, updated_at=now(), **values))
        else:
            conn.execute(sa.update(L).where(L.c.account_id == account_id).values(updated_at=now(), **values))
        row = conn.execute(sa.select(L).where(L.c.account_id == account_id)).one()
    return _effective(settings, row)


@lru_cache(maxsize=65536)
def prefix_of(e164: str, digits: int) -> str:
    """``+13055550100`` → ``+1305`` (3 digits after the country calling code)."""
    try:
        cc = str(phonenumbers.parse(e164, None).country_code)
    except phonenumbers.NumberParseException:
        cc = ""
    national = e164[1 + len(cc) :]
    return "+" + cc + national[: max(0, min(digits, 12))]


@dataclass(frozen=True)
class Refusal:
    """Why a code request is refused: a code of uvox.api.v1.codes, a detail, and when to try again."""

    code: str
    detail: str
    retry_after: int


@dataclass(frozen=True)
class Pause:
    account_id: int
    prefix: str
    country: str
    requested: int
    verified: int
    paused_at: datetime
    until: datetime

    def event(self, account_number: str, window_seconds: int) -> dict:
        """The status callback's body (docs/otp-protection.md)."""
        return {
            "event": "otp_prefix_paused",
            "accountnumber": account_number,
            "prefix": self.prefix,
            "country": self.country,
            "requested": str(self.requested),
            "verified": str(self.verified),
            "window_seconds": str(window_seconds),
            "paused_at": aware(self.paused_at).isoformat(),
            "paused_until": aware(self.until).isoformat(),
            "timestamp": now().isoformat(),
        }


def _pause(row) -> Pause:
    return Pause(
        row.account_id, row.prefix, row.country, row.requested, row.verified, aware(row.paused_at), aware(row.until)
    )


def lock_account(conn: Connection, account_id: int) -> None:
    """Hold the account's guard lock until the transaction ends (PostgreSQL; on SQLite
    the transaction already holds the database's one write lock)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:ns, :a)"), {"ns": _LOCK_NS, "a": account_id})


def _count(conn: Connection, since: datetime, *where) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(S).where(S.c.created_at >= since, *where)).scalar_one()


def _retry_after(conn: Connection, since: datetime, window: int, count: int, limit: int, *where) -> int:
    """Seconds until the window has room again: when the request that must leave it does."""
    oldest = conn.execute(
        sa.select(S.c.created_at)
        .where(S.c.created_at >= since, *where)
        .order_by(S.c.created_at)
        .offset(max(0, count - limit))
        .limit(1)
    ).scalar()
    if oldest is None:
        return 1
    left = (aware(oldest) + timedelta(seconds=window) - now()).total_seconds()
    return max(1, int(left) + 1)


def check(conn: Connection, settings: Settings, account_id: int, phone: str, address: str) -> Refusal | None:
    """Whether the account may request a code for ``phone`` now (call inside the write
    transaction that will open the session, after :func:`lock_account`)."""
    stamp = now()
    prefix = prefix_of(phone, settings.otp_prefix_digits)
    paused = conn.execute(sa.select(P.c.until).where(P.c.account_id == account_id, P.c.prefix == prefix)).scalar()
    if paused is not None and aware(paused) > stamp:
        left = int((aware(paused) - stamp).total_seconds()) + 1
        return Refusal(
            "156",
            f"code requests to numbers starting {prefix} are paused: too few of the codes sent "
            "there were verified; lift the pause in the portal, or wait",
            left,
        )
    row = conn.execute(sa.select(L).where(L.c.account_id == account_id)).first()
    lim = _effective(settings, row)
    mine = sa.and_(S.c.account_id == account_id, LIVE)
    window = max(1, settings.otp_limit_window_seconds)
    checks = [
        (
            "102",
            lim.per_number,
            max(1, settings.otp_send_window_seconds),
            (S.c.phone == phone,),
            "codes per number every {w} seconds",
        ),
        (
            "154",
            lim.per_prefix,
            window,
            (S.c.prefix == prefix,),
            "codes to numbers starting " + prefix + " every {w} seconds",
        ),
        (
            "155",
            lim.per_address,
            window,
            (S.c.address == address,),
            "codes requested from one client address every {w} seconds",
        ),
        ("153", lim.per_account, window, (), "codes per account every {w} seconds"),
    ]
    for code, limit, w, where, what in checks:
        if not limit:
            continue
        start = stamp - timedelta(seconds=w)
        count = _count(conn, start, mine, *where)
        if count >= limit:
            return Refusal(
                code, f"at most {limit} {what.format(w=w)}", _retry_after(conn, start, w, count, limit, mine, *where)
            )
    return None


def after_request(conn: Connection, settings: Settings, account_id: int, phone: str) -> Pause | None:
    """The conversion-rate alarm, once a code has been requested (same transaction):
    the new pause when it trips, else None."""
    threshold = settings.otp_alarm_min_requests
    if threshold <= 0:
        return None
    stamp = now()
    prefix = prefix_of(phone, settings.otp_prefix_digits)
    since = stamp - timedelta(seconds=max(1, settings.otp_alarm_window_seconds))
    ended = conn.execute(sa.select(P.c.until).where(P.c.account_id == account_id, P.c.prefix == prefix)).scalar()
    if ended is not None and aware(ended) > since:
        since = aware(ended)  # count only what was requested since the last pause ended
    requested, verified = conn.execute(
        sa.select(sa.func.count(), sa.func.count(S.c.used_at)).where(
            S.c.account_id == account_id, S.c.prefix == prefix, S.c.created_at >= since, LIVE
        )
    ).one()
    if requested < threshold or verified * 100 >= requested * settings.otp_alarm_min_verified_percent:
        return None
    until = stamp + timedelta(seconds=max(1, settings.otp_alarm_pause_seconds))
    values = {
        "country": country_of(phone),
        "requested": requested,
        "verified": verified,
        "paused_at": stamp,
        "until": until,
        "lifted_at": None,
        "lifted_by": None,
    }
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    conn.execute(
        insert(P)
        .values(account_id=account_id, prefix=prefix, **values)
        .on_conflict_do_update(index_elements=[P.c.account_id, P.c.prefix], set_=values)
    )
    return Pause(account_id, prefix, values["country"], requested, verified, stamp, until)


def active_pauses(engine: Engine, account_id: int) -> list[Pause]:
    """The account's paused prefixes, most recent first."""
    with read(engine) as conn:
        rows = conn.execute(
            sa.select(P)
            .where(P.c.account_id == account_id, P.c.until > now())
            .order_by(P.c.paused_at.desc(), P.c.prefix)
        ).all()
    return [_pause(r) for r in rows]


def lift(engine: Engine, account_id: int, prefix: str, by: str) -> str | None:
    """End a pause now (``by``: "account" or "operator"); the prefix as stored, or None
    when it was not paused. ``prefix`` may be written without its "+"."""
    prefix = "+" + prefix.strip().lstrip("+")
    stamp = now()
    with write(engine) as conn:
        done = conn.execute(
            sa.update(P)
            .where(P.c.account_id == account_id, P.c.prefix == prefix, P.c.until > stamp)
            .values(until=stamp, lifted_at=stamp, lifted_by=by)
        ).rowcount
    return prefix if done else None
