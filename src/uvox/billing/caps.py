"""Spend caps: limits an account sets on its own spending, per UTC day and month.

A cap has a ``service`` ("sms": SMS and one-time codes; "calls"; "all": both
together), a ``period`` ("day" or "month", UTC) and a ``country`` (the ISO 3166 code
of the destination, or "" for every destination). Spend under a cap is what the
ledger charged the account in the current period for that service and country, less
what was refunded of those charges, plus, for "calls" and "all" caps, the money held
by its calls in progress (whatever their destination: a hold is not yet a charge of
any day, so it counts against every call cap until the call ends).

Spend is kept in ``spend_counters`` (one row per account, period, service and
country), added to in the transaction of each charge, for accounts that have caps;
saving caps recounts the current day and month from the ledger, so caps set in the
middle of a month see what was spent before. A refund (a message no carrier accepted)
gives the money back and the room under the cap too (:func:`give_back`): it is taken
off the counters of the day and month of the original charge, so a refund today of
a charge made yesterday gives back month room only (yesterday is over).

SMS checks happen in the charging transaction with the account's row locked (``FOR
UPDATE`` on PostgreSQL, the write lock on SQLite), and the caps themselves are read
after that lock (:func:`lock_caps`), so two sends at once cannot both pass a cap and
a cap saved before a send's charge is seen by it. A request that would pass any cap
is refused whole, before anything is charged; the requests before it are not affected.

Calls are authorized optimistically (uvox.voice.authorize): the caps, the counters
and ``accounts.cap_version`` are read in one statement without a lock, and the hold's
conditional UPDATE then requires the version unchanged and held money plus the new
hold within the cap room that was read. Every transaction that changes spend under
caps (a cap saved, a charge or a refund counted) adds one to ``cap_version`` (with
the account's row locked until its commit), so a hold never passes a cap whatever
was charged, held or saved between the read and the hold.

The rules themselves (:func:`first_passed`, :func:`room`, :func:`available`) are pure
functions on what was read, so call authorization reads the caps in its one query and
applies the same rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

import phonenumbers
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from uvox.clock import aware, now
from uvox.db import schema as t
from uvox.db.session import read, write
from uvox.errors import NotFound

SERVICES = ("sms", "calls", "all")
PERIODS = ("day", "month")
#: What counters are kept for; an "all" cap adds both.
COUNTED = ("sms", "calls")
ZERO = Decimal(0)
CAPS, COUNTERS, A = t.spend_caps, t.spend_counters, t.accounts

#: (period, service, country) -> money charged in the current day or month.
Spent = dict[tuple[str, str, str], Decimal]


@dataclass(frozen=True)
class Cap:
    service: str
    period: str
    country: str
    amount: Decimal


@dataclass(frozen=True)
class Refused:
    """A request a cap refused: nothing of it was stored or charged."""

    cap: Cap
    spent: Decimal
    price: Decimal
    resets_at: datetime


@dataclass(frozen=True)
class CapStatus:
    """A cap as a customer sees it: the limit, what is spent under it, what is left."""

    cap: Cap
    spent: Decimal
    resets_at: datetime

    @property
    def remaining(self) -> Decimal:
        return max(self.cap.amount - self.spent, ZERO)


# --- periods and countries -----------------------------------------------------------


def period_keys(at: datetime) -> dict[str, str]:
    """The counter keys of the UTC day and month of ``at``."""
    at = aware(at).astimezone(UTC)
    return {"day": "D" + at.strftime("%Y-%m-%d"), "month": "M" + at.strftime("%Y-%m")}


def resets_at(period: str, at: datetime) -> datetime:
    """When the period that contains ``at`` ends (UTC midnight, or the first of next month)."""
    at = aware(at).astimezone(UTC)
    start = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return start + timedelta(days=1)
    return (start.replace(day=1) + timedelta(days=32)).replace(day=1)


def month_start(at: datetime) -> datetime:
    return aware(at).astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def country_of(number: str) -> str:
    """The ISO 3166 code of an E.164 number's country ("" when it has none).

    phonenumbers' metadata rather than a table of our own. A calling code of one
    country is a dict lookup; one shared by several (+1, +7, +44...) needs
    phonenumbers' region search, about 0.3 ms for a +1 number, too much for every
    call set-up: in the North American plan the area code alone decides the country
    (every country but the US is named by its area codes), so that answer is kept
    per area code; other shared codes are kept per number."""
    digits = number.strip().lstrip("+")
    if not digits.isdigit():
        return ""
    for size in (1, 2, 3):  # calling codes have 1 to 3 digits and none is a prefix of another
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(digits[:size]))
        if regions is not None:
            break
    else:
        return ""
    if len(regions) == 1:
        region = regions[0]
    elif digits[0] == "1" and len(digits) == 11:
        region = _shared(digits[:4], digits)
    else:
        region = _shared(digits, digits)
    return region if len(region) == 2 and region.isalpha() and region != "ZZ" else ""


@lru_cache(maxsize=65536)
def _shared(key: str, digits: str) -> str:
    """The region of a number whose calling code several countries share, cached by
    ``key`` (only ``key`` decides the answer: see :func:`country_of`)."""
    try:
        parsed = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return ""
    region = phonenumbers.region_code_for_number(parsed)
    if region is None and parsed.country_code is not None:  # in no plan: the calling code's main country
        region = phonenumbers.region_code_for_country_code(parsed.country_code)
    return region or ""


def valid_country(code: str) -> bool:
    """Whether ``code`` (upper case) is a country phonenumbers knows."""
    return code in phonenumbers.SUPPORTED_REGIONS


# --- the rules (pure) ----------------------------------------------------------------


def spent_under(cap: Cap, spent: Mapping[tuple[str, str, str], Decimal], held: Decimal) -> Decimal:
    """Money already spent under ``cap``: its counters, plus holds for call caps."""
    services = COUNTED if cap.service == "all" else (cap.service,)
    total = sum((spent.get((cap.period, s, cap.country), ZERO) for s in services), ZERO)
    if cap.service in ("calls", "all"):
        total += held
    return total


def _applies(cap: Cap, service: str) -> bool:
    return cap.service == service or cap.service == "all"


def first_passed(
    caps: Iterable[Cap],
    spent: Mapping[tuple[str, str, str], Decimal],
    held: Decimal,
    service: str,
    adding: Mapping[str, Decimal],
) -> Cap | None:
    """The first cap that charging ``adding`` would pass, or None.

    ``adding`` maps countries to the money a request would charge there, and "" to
    its total. Day caps are looked at before month caps, overall before per country."""
    for cap in sorted(caps, key=_order):
        if not _applies(cap, service):
            continue
        add = adding.get(cap.country, ZERO)
        if add > 0 and spent_under(cap, spent, held) + add > cap.amount:
            return cap
    return None


def room(
    caps: Iterable[Cap], spent: Mapping[tuple[str, str, str], Decimal], held: Decimal, service: str, country: str
) -> Decimal | None:
    """Money a charge of ``service`` to ``country`` may still take under every cap that
    applies (never negative), or None when no cap applies."""
    left: Decimal | None = None
    for cap in caps:
        if not _applies(cap, service) or cap.country not in ("", country):
            continue
        here = cap.amount - spent_under(cap, spent, held)
        left = here if left is None or here < left else left
    return None if left is None else max(left, ZERO)


def available(money: Decimal, cap_room: Decimal | None, held: Decimal) -> Decimal:
    """A call's available money under its caps.

    ``cap_room`` is the least of (cap - charged this period) over the call caps that
    apply to its destination, as call authorization reads it in one query (None: no
    cap applies); the money its calls in progress hold counts against every call cap."""
    if cap_room is None:
        return money
    return min(money, max(cap_room - held, ZERO))


def add(spent: Spent, service: str, amounts: Mapping[str, Decimal]) -> None:
    """Count ``amounts`` (country -> money, "" the total) as spent in both periods."""
    for period in PERIODS:
        for country, amount in amounts.items():
            key = (period, service, country)
            spent[key] = spent.get(key, ZERO) + amount


def amounts(charges: Iterable[tuple[str, Decimal]]) -> dict[str, Decimal]:
    """(number, price) pairs as the country -> money map the rules take ("" the total)."""
    out: dict[str, Decimal] = {"": ZERO}
    for number, price in charges:
        if price <= 0:
            continue
        out[""] += price
        country = country_of(number)
        if country:
            out[country] = out.get(country, ZERO) + price
    return out


def _order(cap: Cap) -> tuple[int, int, str, int]:
    return (PERIODS.index(cap.period), 1 if cap.country else 0, cap.country, SERVICES.index(cap.service))


# --- reading and counting inside a charging transaction --------------------------------

_CAPS_OF = sa.select(CAPS.c.account_id, CAPS.c.service, CAPS.c.period, CAPS.c.country, CAPS.c.amount).where(
    CAPS.c.account_id.in_(sa.bindparam("ids", expanding=True))
)
_LOCK = sa.select(A.c.held).where(A.c.id == sa.bindparam("account")).with_for_update()
_COUNTERS_OF = sa.select(COUNTERS.c.period, COUNTERS.c.service, COUNTERS.c.country, COUNTERS.c.amount).where(
    COUNTERS.c.account_id == sa.bindparam("account"), COUNTERS.c.period.in_(sa.bindparam("periods", expanding=True))
)


def caps_of(conn: Connection, account_ids: Iterable[int]) -> dict[int, list[Cap]]:
    """The caps of those accounts that have any (one statement)."""
    ids = sorted(set(account_ids))
    out: dict[int, list[Cap]] = {}
    if not ids:
        return out
    for r in conn.execute(_CAPS_OF, {"ids": ids}):
        out.setdefault(r.account_id, []).append(Cap(r.service, r.period, r.country, r.amount))
    return out


_LOCK_ALL = sa.select(A.c.id).where(A.c.id.in_(sa.bindparam("ids", expanding=True))).order_by(A.c.id).with_for_update()


def lock_caps(conn: Connection, account_ids: Iterable[int]) -> dict[int, list[Cap]]:
    """:func:`caps_of`, read after the accounts' rows are locked (in id order, so two
    batches cannot deadlock on them): a cap saved by a transaction that committed
    before the lock was granted is seen. On PostgreSQL a statement that had to wait for
    a row lock still reads the other tables as of its start, so the lock and the read
    are two statements. SQLite: the caller's write transaction already excludes every
    other writer."""
    ids = sorted(set(account_ids))
    if ids and conn.dialect.name == "postgresql":
        conn.execute(_LOCK_ALL, {"ids": ids}).all()
    return caps_of(conn, ids)


def bump(conn: Connection, account_ids: Iterable[int]) -> None:
    """Add one to the accounts' ``cap_version``: spend under their caps changed in this
    transaction (a call hold read before it must read again; see the module's text)."""
    ids = sorted(set(account_ids))
    if ids:
        conn.execute(sa.update(A).where(A.c.id.in_(ids)).values(cap_version=A.c.cap_version + 1))


@dataclass
class Usage:
    """An account's caps and spend, read with its row locked, in a charging transaction."""

    account_id: int
    caps: list[Cap]
    spent: Spent
    held: Decimal
    at: datetime

    @classmethod
    def locked(cls, conn: Connection, account_id: int, caps: list[Cap], at: datetime) -> Usage:
        """Lock the account's row (PostgreSQL; SQLite's writer holds the write lock), then
        read its counters: whatever another transaction counted before the lock is seen."""
        held = conn.execute(_LOCK, {"account": account_id}).scalar_one()
        keys = period_keys(at)
        by_key = {v: k for k, v in keys.items()}
        spent: Spent = {}
        for r in conn.execute(_COUNTERS_OF, {"account": account_id, "periods": list(keys.values())}):
            spent[(by_key[r.period], r.service, r.country)] = r.amount
        return cls(account_id, caps, spent, held, at)

    def refusal(self, service: str, adding: Mapping[str, Decimal]) -> Refused | None:
        cap = first_passed(self.caps, self.spent, self.held, service, adding)
        if cap is None:
            return None
        return Refused(
            cap, spent_under(cap, self.spent, self.held), adding.get(cap.country, ZERO), resets_at(cap.period, self.at)
        )

    def add(self, service: str, adding: Mapping[str, Decimal]) -> None:
        add(self.spent, service, adding)


def count(conn: Connection, charges: Iterable[tuple[int, str, str, Decimal]], at: datetime) -> None:
    """Add charges (account id, service, number, price) to the spend counters of the
    accounts that have caps, in the charging transaction, after their rows were
    updated (so locked until the commit)."""
    items = [c for c in charges if c[3] > 0]
    if not items:
        return
    capped = caps_of(conn, (c[0] for c in items))
    if not capped:
        return
    add_counted(conn, [c for c in items if c[0] in capped], at)


def add_counted(conn: Connection, charges: Iterable[tuple[int, str, str, Decimal]], at: datetime) -> None:
    """:func:`count` for charges of accounts already known to have caps."""
    keys = period_keys(at)
    total: dict[tuple[int, str, str, str], Decimal] = {}
    for account_id, service, number, price in charges:
        if price <= 0:
            continue
        for country, amount in amounts([(number, price)]).items():
            for key in keys.values():
                k = (account_id, key, service, country)
                total[k] = total.get(k, ZERO) + amount
    if total:
        bump(conn, (a for a, _, _, _ in total))
        upsert_counters(
            conn,
            [
                {"account_id": a, "period": p, "service": s, "country": c, "amount": v}
                for (a, p, s, c), v in sorted(total.items())
            ],
        )


def give_back(
    conn: Connection,
    account_id: int,
    service: str,
    number: str,
    amount: Decimal,
    charged_at: datetime,
    at: datetime | None = None,
) -> None:
    """A refund's room under the caps: take ``amount`` (a charge of ``service`` to
    ``number`` made at ``charged_at``) off the counters of the day and month of that
    charge, where they are still the current ones (a period that is over is not
    counted any more). In the refund's transaction, after the account's row was
    updated (so locked until the commit), for an account that has caps (one without
    has no counters)."""
    if amount <= 0:
        return
    then, current = period_keys(charged_at), period_keys(at or now())
    periods = [key for period, key in then.items() if current[period] == key]
    if not periods:
        return
    bump(conn, [account_id])
    upsert_counters(
        conn,
        [
            {"account_id": account_id, "period": p, "service": service, "country": c, "amount": -v}
            for p in periods
            for c, v in sorted(amounts([(number, amount)]).items())
        ],
    )


def upsert_counters(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Add to counters, creating the rows that do not exist yet (one statement)."""
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(COUNTERS)
    stmt = stmt.on_conflict_do_update(
        index_elements=["account_id", "period", "service", "country"],
        set_={"amount": COUNTERS.c.amount + stmt.excluded.amount},
    )
    conn.execute(stmt, rows)


# --- what customers set and see -------------------------------------------------------


class BadCap(ValueError):
    """A cap that cannot be saved; the message says why."""


def parse_scope(service: str | None, country: str | None) -> tuple[str, str]:
    """``service`` and ``country`` as typed by a person: ("sms"|"calls"|"all", "MX" or "")."""
    svc = (service or "all").strip().lower()
    if svc in ("call", "voice"):
        svc = "calls"
    if svc not in SERVICES:
        raise BadCap("service must be sms, calls or all")
    ctry = (country or "").strip().upper()
    if ctry and not valid_country(ctry):
        raise BadCap("country must be a two-letter ISO 3166 code such as MX or US, or empty for every destination")
    return svc, ctry


def set_caps(
    engine: Engine, account_id: int, service: str, country: str, limits: Mapping[str, Decimal | None]
) -> list[CapStatus]:
    """Set (an amount) or remove (None) the day and/or month caps of one scope.

    In the same transaction, with the account's row locked, the current day's and
    month's spend is counted again from the ledger, so a cap set now sees what was
    spent before it existed. Returns every cap of the account."""
    if service not in SERVICES:
        raise BadCap("service must be sms, calls or all")
    stamp = now()
    with write(engine) as conn:
        if conn.execute(_LOCK, {"account": account_id}).first() is None:
            raise NotFound("no such account")
        for period, amount in limits.items():
            if period not in PERIODS:
                raise BadCap("period must be day or month")
            scope = (
                CAPS.c.account_id == account_id,
                CAPS.c.service == service,
                CAPS.c.period == period,
                CAPS.c.country == country,
            )
            conn.execute(sa.delete(CAPS).where(*scope))
            if amount is not None:
                if amount < 0:
                    raise BadCap("a cap cannot be negative")
                conn.execute(
                    sa.insert(CAPS).values(
                        account_id=account_id,
                        service=service,
                        period=period,
                        country=country,
                        amount=amount,
                        updated_at=stamp,
                    )
                )
        bump(conn, [account_id])
        recount(conn, account_id, stamp)
        return _statuses(conn, account_id, stamp)


def recount(conn: Connection, account_id: int, at: datetime) -> None:
    """Count the current day's and month's charges again from the ledger, less the
    refunds of those charges, each in the period of its charge (nothing is kept for an
    account without caps)."""
    conn.execute(sa.delete(COUNTERS).where(COUNTERS.c.account_id == account_id))
    if not caps_of(conn, [account_id]):
        return
    L, M, C = t.ledger, t.messages, t.calls
    since = month_start(at)
    charge = L.alias("charge")
    rows = conn.execute(
        sa.select(L.c.kind, L.c.amount, L.c.created_at, M.c.recipient, C.c.callee)
        .select_from(L.outerjoin(M, M.c.id == L.c.message_id).outerjoin(C, C.c.id == L.c.call_id))
        .where(L.c.account_id == account_id, L.c.kind.in_(("charge", "call")), L.c.created_at >= since)
        .union_all(
            # A refund counts in its charge's period (give_back), so it is dated by the charge.
            sa.select(L.c.kind, L.c.amount, charge.c.created_at, M.c.recipient, sa.null())
            .select_from(
                L.join(charge, sa.and_(charge.c.message_id == L.c.message_id, charge.c.kind == "charge")).join(
                    M, M.c.id == L.c.message_id
                )
            )
            .where(L.c.account_id == account_id, L.c.kind == "refund", charge.c.created_at >= since)
        )
    ).all()
    day = period_keys(at)["day"]
    total: dict[tuple[str, str, str], Decimal] = {}
    for r in rows:
        service = "calls" if r.kind == "call" else "sms"
        keys = period_keys(r.created_at)
        periods = [keys["month"]] + ([day] if keys["day"] == day else [])
        spent = -r.amount  # a charge is negative in the ledger, its refund positive
        number = (r.callee if service == "calls" else r.recipient) or ""
        for country, amount in amounts([(number, abs(spent))]).items():
            for p in periods:
                total[(p, service, country)] = total.get((p, service, country), ZERO) + (
                    amount if spent > 0 else -amount
                )
    upsert_counters(
        conn,
        [
            {"account_id": account_id, "period": p, "service": s, "country": c, "amount": v}
            for (p, s, c), v in sorted(total.items())
        ],
    )


def _statuses(conn: Connection, account_id: int, at: datetime) -> list[CapStatus]:
    caps = caps_of(conn, [account_id]).get(account_id, [])
    if not caps:
        return []
    held = conn.execute(sa.select(A.c.held).where(A.c.id == account_id)).scalar_one()
    keys = period_keys(at)
    by_key = {v: k for k, v in keys.items()}
    spent: Spent = {}
    for r in conn.execute(_COUNTERS_OF, {"account": account_id, "periods": list(keys.values())}):
        spent[(by_key[r.period], r.service, r.country)] = r.amount
    return [CapStatus(c, spent_under(c, spent, held), resets_at(c.period, at)) for c in sorted(caps, key=_order)]


def statuses(engine: Engine, account_id: int) -> list[CapStatus]:
    """Every cap of the account with what is spent under it now."""
    with read(engine) as conn:
        return _statuses(conn, account_id, now())


def call_room_column(account_id: Any) -> sa.ScalarSelect[Any]:
    """For call authorization's one query: the least of (cap - charged this period)
    over the account's "calls" and "all" caps that apply to the call's destination
    (NULL when none does); :func:`available` then takes the holds off. Parameters:
    ``cap_day`` and ``cap_month`` (:func:`period_keys`), ``cap_country``
    (:func:`country_of` of the number)."""
    cap = CAPS.alias("cap")
    counted = COUNTERS.alias("counted")
    charged = (
        sa.select(sa.func.coalesce(sa.func.sum(counted.c.amount), 0))
        .where(
            counted.c.account_id == cap.c.account_id,
            counted.c.period
            == sa.case((cap.c.period == "day", sa.bindparam("cap_day")), else_=sa.bindparam("cap_month")),
            counted.c.country == cap.c.country,
            sa.or_(cap.c.service == "all", counted.c.service == cap.c.service),
        )
        .scalar_subquery()
    )
    return (
        sa.select(sa.type_coerce(sa.func.min(cap.c.amount - charged), t.Money))
        .where(
            cap.c.account_id == account_id,
            cap.c.service.in_(("calls", "all")),
            sa.or_(cap.c.country == "", cap.c.country == sa.bindparam("cap_country")),
        )
        .scalar_subquery()
    )


def call_room_params(number: str, at: datetime) -> dict[str, str]:
    """The parameters of :func:`call_room_column` for a call to ``number`` now."""
    keys = period_keys(at)
    return {"cap_day": keys["day"], "cap_month": keys["month"], "cap_country": country_of(number)}
