"""Authorizing one call: the platform's answer to Kamailio's question "may this
SIP account call this number, for how long, and through which trunks?".

Checked in VOICE.md's order: SIP and customer account active (else 403), the
number has a rate on the plan (else 404; a SIP username of the platform is
on-net instead and needs neither rate nor money), the account can pay the first
block (else 402), a trunk serves the number (else 503).

The money side is CGRateS' "max usage" with a hold: the time limit is computed
from the available money (balance + credit - held), and the price of that limit is
added to ``accounts.held`` by a conditional UPDATE (``WHERE available >= hold``), so
two calls set up at the same instant can never hold more than there is, on SQLite
or PostgreSQL, in one process or many. The call's row in ``calls`` (status
``in_progress``) carries the hold until its record is settled (records.py).

Optimistic, not ``SELECT ... FOR UPDATE``: every read (caller, rate, trunks) is
done first without locking the account. On PostgreSQL the hold and the call's row
are then one autocommitted statement (``WITH held AS (UPDATE accounts ...) INSERT
INTO calls ... FROM held``): the account's row is locked only while that statement
runs, and no row is inserted unless the money was held. When the UPDATE finds less
money than was read (another call of the account held some in between) the limit
is computed again from what is left. Locking the row at the first read held it for
the whole decision (3-5 ms): at 200 calls a second from one account the calls
queued behind each other for 100 ms and more (bench/voice_bench.py). On SQLite the
same steps run in one ``BEGIN IMMEDIATE`` transaction.

The SIP Call-ID keys the decision: an INVITE retransmitted while Kamailio waited
for us asks again and gets the same call, limit and trunks, with no second hold
(the unique ``calls.sip_call_id`` refuses the second row, and the first answer is
read back).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from uvox.billing import caps
from uvox.billing.plans import Rate
from uvox.billing.plans import lookup as rate_lookup
from uvox.clock import now
from uvox.config import Settings
from uvox.db import schema as t
from uvox.db.session import read, write
from uvox.softphone.service import destination_digits

from . import trunks as trunk_routing
from .rating import Tariff
from .states import CallStatus

log = logging.getLogger("uvox.voice")

FORBIDDEN, NOT_FOUND, PAYMENT_REQUIRED, UNAVAILABLE = 403, 404, 402, 503
MAX_DIGITS = 15  # E.164


@dataclass(frozen=True)
class Decision:
    """What Kamailio does with the call: ``code`` 200 (route it) or the SIP refusal."""

    code: int
    call_id: int | None = None
    limit: int = 0
    onnet: bool = False
    #: On-net: the callee's SIP username.
    callee_user: str = ""
    #: Outbound: the number's digits (E.164 without +) and the trunks, in order.
    digits: str = ""
    trunks: list[trunk_routing.Trunk] = field(default_factory=list)
    reason: str = ""


def authorize(
    engine: Engine, settings: Settings, *, caller: str, domain: str, dialled: str, sip_call_id: str
) -> Decision:
    sip_call_id = (sip_call_id or "").strip()[:255]
    decide = functools.partial(
        _authorize,
        engine,
        settings,
        caller=caller,
        domain=domain or settings.sip_domain,
        dialled=dialled,
        sip_call_id=sip_call_id or None,
    )
    try:
        try:
            return decide()
        except DBAPIError as exc:
            # A connection PostgreSQL dropped (a restart) is found out here: Kamailio's
            # pool is not pinged before use (db.engine.autocommit_engine). Asking once
            # more on a new connection is safe only where the Call-ID keys the call: a
            # hold the lost statement committed makes the retry's insert conflict, and
            # the answer is read back below, never held twice.
            if isinstance(exc, IntegrityError) or not exc.connection_invalidated or not sip_call_id:
                raise
            log.warning("call authorization lost its database connection; asking again on a new one")
            return decide()
    except IntegrityError:
        # The same Call-ID decided before, or by another process a moment ago: its
        # answer stands.
        with read(engine) as conn:
            again = _existing(conn, sip_call_id)
        if again is None:
            raise
        return again


def _caller_query() -> sa.Select[Any]:
    """The calling SIP account, its customer account's money, and whether the dialled
    user is an active SIP account of the platform (on-net), in one statement.

    Built once: constructing SQLAlchemy statements per call cost more CPU than
    running them."""
    S, A = t.sip_accounts, t.accounts
    S2, A2 = S.alias("callee"), A.alias("callee_account")
    onnet_user = (
        sa.select(S2.c.username)
        .join(A2, A2.c.id == S2.c.account_id)
        .where(S2.c.username == sa.bindparam("callee"), S2.c.domain == sa.bindparam("domain"), A2.c.disabled.is_(False))
        .limit(1)
        .scalar_subquery()
    )
    return (
        sa.select(
            S.c.id.label("sip_id"),
            S.c.username,
            S.c.caller_id,
            A.c.id.label("account_id"),
            A.c.disabled,
            A.c.plan_id,
            A.c.currency,
            A.c.balance,
            A.c.credit_limit,
            A.c.held,
            onnet_user.label("onnet"),
            caps.call_room_column(A.c.id).label("cap_room"),
            A.c.cap_version,
        )
        .join(A, A.c.id == S.c.account_id)
        .where(S.c.username == sa.bindparam("caller"), S.c.domain == sa.bindparam("domain"))
    )


_CALLER = _caller_query()


def _hold(capped: bool) -> sa.Update:
    """The hold: conditional, so it never makes available money negative nor passes a
    spend cap, whatever happened since the money and the caps were read.

    ``version`` is the account's ``cap_version`` as read: every transaction that
    changed spend under its caps since (a cap saved, a charge or refund counted)
    changed it, and the hold fails. With caps (``capped``), ``room`` is the least of
    (cap - charged this period) as read (billing.caps.call_room_column): the money held
    by the account's calls, including this hold, must stay within it. The parameters
    are named like no column of ``accounts`` (see _hold_and_insert)."""
    A = t.accounts
    money = A.c.held.type
    hold = sa.bindparam("hold", type_=money)
    where = [
        A.c.id == sa.bindparam("account"),
        A.c.balance + A.c.credit_limit - A.c.held >= hold,
        A.c.cap_version == sa.bindparam("version", type_=sa.Integer),
    ]
    if capped:
        where.append(A.c.held + hold <= sa.bindparam("room", type_=money))
    return sa.update(A).where(*where).values(held=A.c.held + hold)


_HOLD = {capped: _hold(capped) for capped in (False, True)}
#: What a failed hold reads again, in one statement (one snapshot: the counters
#: under the caps are those of the version read with them).
_RECHECK = sa.select(
    (t.accounts.c.balance + t.accounts.c.credit_limit - t.accounts.c.held).label("money"),
    t.accounts.c.held,
    caps.call_room_column(t.accounts.c.id).label("cap_room"),
    t.accounts.c.cap_version,
).where(t.accounts.c.id == sa.bindparam("account"))
#: Attempts to fit a hold in money and cap room other calls (and charges) of the
#: account keep taking; each one sees less, so this ends well before it in practice.
HOLD_ATTEMPTS = 20
_EXISTING = sa.select(t.calls).where(t.calls.c.sip_call_id == sa.bindparam("sip_call_id"))
_INSERT = sa.insert(t.calls).returning(t.calls.c.id)
#: The outbound call's row, inserted only if the hold's conditional UPDATE took the
#: money (PostgreSQL's data-modifying WITH): no row is returned when it did not.
_CALL_COLUMNS = (
    "sip_call_id",
    "started_at",
    "sip_username",
    "callee",
    "account_id",
    "sip_account_id",
    "currency",
    "caller",
    "destination",
    "rate",
    "connect_charge",
    "init_block",
    "billing_block",
    "direction",
    "status",
    "limit_seconds",
    "hold",
    "duration",
    "billed",
    "price",
)


def _hold_and_insert(capped: bool) -> sa.Insert:
    # The same conditional hold as SQLite's (_HOLD), as the WITH's data-modifying part.
    held = _HOLD[capped].returning(t.accounts.c.id).cte("held")
    # The row's parameters are prefixed: an UPDATE takes any parameter named like one
    # of its table's columns as a value to SET (a call's "currency" would rewrite the
    # account's); _HOLD's own are "account", "hold", "version" and "room", which no
    # accounts column is.
    values = sa.select(*[sa.bindparam("c_" + name, type_=t.calls.c[name].type) for name in _CALL_COLUMNS]).select_from(
        held
    )
    return sa.insert(t.calls).from_select(list(_CALL_COLUMNS), values, include_defaults=False).returning(t.calls.c.id)


_HOLD_AND_INSERT = {capped: _hold_and_insert(capped) for capped in (False, True)}


def dialable_digits(dialled: str) -> str | None:
    """The digits of a dialled number as the call is rated and routed (E.164 without
    ``+``), or None when it is not a number (refused with 404)."""
    user = (dialled or "").strip()
    digits = destination_digits(dialled)
    if not digits or len(digits) > MAX_DIGITS or not user.lstrip("+").replace(" ", "").replace("-", "").isdigit():
        return None
    return digits


def tariff_of(rate: Rate) -> Tariff:
    """What a call to a destination of the rate deck costs (VOICE.md's columns)."""
    return Tariff(rate.rate_initial, rate.connect_charge, rate.init_block, rate.billing_block)


def _authorize(
    engine: Engine, settings: Settings, *, caller: str, domain: str, dialled: str, sip_call_id: str | None
) -> Decision:
    # As few statements as the rules allow: this runs for every call set-up while
    # Kamailio waits (bench/voice_bench.py measures it).
    # A Call-ID asked before (an INVITE retransmitted while Kamailio waited) is not
    # looked up first: its call row's unique sip_call_id refuses the second insert,
    # before any hold, and authorize() answers from the first decision. One round
    # trip fewer for every call that is not a retransmission.
    postgres = engine.dialect.name == "postgresql"
    # PostgreSQL: every statement commits on its own (no BEGIN, no COMMIT round
    # trip) and the hold and the call's row are one statement (_HOLD_AND_INSERT),
    # so the account's row is locked only while that statement runs. The reads
    # before it need no transaction: the hold's WHERE re-checks the money anyway.
    # SQLite: one write transaction (BEGIN IMMEDIATE already serializes writers).
    with _autocommit(engine) if postgres else write(engine) as conn:
        user = (dialled or "").strip()
        stamp = now()
        me = conn.execute(
            _CALLER,
            {
                "caller": caller,
                "domain": domain,
                "callee": user[:64],
                **caps.call_room_params(destination_digits(dialled), stamp),
            },
        ).first()
        base: dict[str, Any] = {
            "sip_call_id": sip_call_id,
            "started_at": stamp,
            "sip_username": caller[:64],
            "callee": (dialled or "")[:64],
        }
        if me is None:
            # Kamailio authenticated a subscriber the platform no longer has (deleted a
            # moment ago): refuse, and there is no account to record the attempt on.
            return Decision(FORBIDDEN, reason="unknown SIP account")
        base.update(
            account_id=me.account_id,
            sip_account_id=me.sip_id,
            currency=me.currency,
            caller=(me.caller_id or me.username)[:64],
        )
        if me.disabled:
            return _refuse(conn, base, FORBIDDEN, "outbound", "account disabled")

        # VOICE.md: on-net wins even where the username also reads as a number.
        if user and len(user) <= 64 and me.onnet is not None:
            limit = settings.voice_max_call_seconds
            call_id = _insert(
                conn,
                {
                    **base,
                    "callee": me.onnet,
                    "direction": "onnet",
                    "status": CallStatus.IN_PROGRESS,
                    "limit_seconds": limit,
                    "hold": Decimal(0),
                    "destination": "On-net",
                },
            )
            return Decision(200, call_id, limit, onnet=True, callee_user=me.onnet)

        digits = dialable_digits(dialled)
        if digits is None:
            return _refuse(conn, base, NOT_FOUND, "outbound", "not a number")
        base["callee"] = "+" + digits
        rate = rate_lookup(conn, me.plan_id, digits) if me.plan_id is not None else None
        if rate is None:
            return _refuse(conn, base, NOT_FOUND, "outbound", "no rate for this number")
        tariff = tariff_of(rate)
        base.update(
            destination=rate.destination,
            rate=rate.rate_initial,
            connect_charge=rate.connect_charge,
            init_block=rate.init_block,
            billing_block=rate.billing_block,
            direction="outbound",
            status=CallStatus.IN_PROGRESS,
        )

        funds = Funds(me.balance + me.credit_limit - me.held, me.held, me.cap_room, me.cap_version)
        fit = funds.fit(tariff, settings)
        if fit is None:
            return _refuse(conn, base, PAYMENT_REQUIRED, "outbound", funds.why_not(tariff))

        routes = trunk_routing.candidates(conn, digits)
        if not routes:
            return _refuse(conn, base, UNAVAILABLE, "outbound", "no trunk for this destination")

        held = _hold_postgres(conn, base, tariff, funds, settings) if postgres else _hold_sqlite(conn, base, funds, fit)
        if isinstance(held, tuple):
            call_id, limit = held
            return Decision(200, call_id, limit, digits=digits, trunks=routes)
        return _refuse(conn, base, PAYMENT_REQUIRED, "outbound", held)


@dataclass(frozen=True)
class Funds:
    """What a call may hold, as read: available money, money held by the account's
    calls, the cap room (billing.caps.call_room_column; None: no cap applies) and the
    ``cap_version`` read with them."""

    money: Decimal
    held: Decimal
    cap_room: Decimal | None
    version: int

    def fit(self, tariff: Tariff, settings: Settings) -> tuple[int, Decimal] | None:
        """The limit and hold: the longest call whose price fits in the least of the
        money and the room under the caps (billing.caps.available)."""
        return tariff.limit(caps.available(self.money, self.cap_room, self.held), settings.voice_max_call_seconds)

    def why_not(self, tariff: Tariff) -> str:
        capped = self.cap_room is not None and tariff.limit(self.money, 1) is not None
        return "spend cap reached" if capped else "not enough money for the first block"

    def params(self, account_id: int, hold: Decimal) -> dict[str, Any]:
        """The conditional hold's parameters (_HOLD[self.capped])."""
        out: dict[str, Any] = {"account": account_id, "hold": hold, "version": self.version}
        if self.cap_room is not None:
            out["room"] = self.cap_room
        return out

    @property
    def capped(self) -> bool:
        return self.cap_room is not None


def prime(conn: Connection) -> None:
    """Run this module's statements once on a new pooled connection, before its first call.

    A process that starts serving (``uvox serve`` after a restart, each HTTP worker
    of ``--workers N``) otherwise pays on its first calls, while Kamailio waits, for
    compiling the hold's data-modifying WITH, opening the trunks' LISTEN connection,
    and each PostgreSQL backend reading the catalog of the tables it touches the first
    time: 20-100 ms a call in the first second of bench/voice_bench.py. Every
    statement matches nothing: no SIP account is named "", and no account has id 0."""
    if conn.dialect.name != "postgresql":
        return  # calls run on PostgreSQL (Kamailio's database); SQLite's first call is cheap
    room = caps.call_room_params("", now())
    conn.execute(_CALLER, {"caller": "", "domain": "", "callee": "", **room}).first()
    params = {"c_" + name: None for name in _CALL_COLUMNS}
    for capped, stmt in _HOLD_AND_INSERT.items():
        conn.execute(
            stmt, {**params, **Funds(Decimal(0), Decimal(0), Decimal(0) if capped else None, 0).params(0, Decimal(0))}
        ).scalar()
    conn.execute(_RECHECK, {"account": 0, **room}).first()
    trunk_routing.candidates(conn, "1")
    conn.rollback()


def serves_calls(engine: Engine) -> bool:
    """Whether this installation has SIP accounts, so that opening the call pool
    ahead of the first call pays (an SMS-only installation keeps its connections)."""
    if engine.dialect.name != "postgresql":
        return False
    with read(engine) as conn:
        return conn.execute(sa.select(t.sip_accounts.c.id).limit(1)).first() is not None


@contextmanager
def _autocommit(engine: Engine) -> Iterator[Connection]:
    # The connection's option, not engine.execution_options(): that makes a new
    # Engine object per call, and the caches keyed by engine (trunks, key epochs)
    # would start over, with a LISTEN connection each, on every call.
    with engine.connect() as conn:
        if engine.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


def _hold_postgres(
    conn: Connection, base: dict[str, Any], tariff: Tariff, funds: Funds, settings: Settings
) -> tuple[int, int] | str:
    """Hold the limit's price and insert the call's row in one autocommitted statement
    whose WHERE checks the money and the caps (_HOLD); where other calls or charges of
    the account took money or cap room meanwhile (or a cap was saved), read again, fit
    the limit to what is left and try again, at most HOLD_ATTEMPTS times. Returns
    (call id, limit), or why not even the first block fits."""
    room = caps.call_room_params(base["callee"], base["started_at"])
    for _ in range(HOLD_ATTEMPTS):
        found = funds.fit(tariff, settings)
        if found is None:
            return funds.why_not(tariff)
        limit, hold = found
        row = {**base, "limit_seconds": limit, "hold": hold, "duration": 0, "billed": 0, "price": Decimal(0)}
        params = {"c_" + name: row[name] for name in _CALL_COLUMNS}
        call_id = conn.execute(
            _HOLD_AND_INSERT[funds.capped], {**params, **funds.params(base["account_id"], hold)}
        ).scalar()
        if call_id is not None:
            return int(call_id), limit
        r = conn.execute(_RECHECK, {"account": base["account_id"], **room}).one()
        funds = Funds(r.money, r.held, r.cap_room, r.cap_version)
    log.warning(
        "call from %s to %s: no hold after %d attempts (the account's money or caps kept changing)",
        base.get("sip_username"),
        base.get("callee"),
        HOLD_ATTEMPTS,
    )
    return funds.why_not(tariff)


def _hold_sqlite(
    conn: Connection, base: dict[str, Any], funds: Funds, fit: tuple[int, Decimal]
) -> tuple[int, int] | str:
    """The same inside the caller's BEGIN IMMEDIATE transaction: the row first, then the
    hold (SQLite has no UPDATE inside WITH); nothing else writes meanwhile."""
    limit, hold = fit
    call_id = _insert(conn, {**base, "limit_seconds": limit, "hold": hold})
    if conn.execute(_HOLD[funds.capped], funds.params(base["account_id"], hold)).rowcount == 1:
        return call_id, limit
    # Not reachable while BEGIN IMMEDIATE holds the write lock; kept so that a change
    # of locking can never let a call through without its hold.
    conn.execute(sa.delete(t.calls).where(t.calls.c.id == call_id))
    return "not enough money for the first block"


def _insert(conn: Connection, values: dict[str, Any]) -> int:
    return int(conn.execute(_INSERT, values).scalar_one())


def _refuse(conn: Connection, base: dict[str, Any], code: int, direction: str, reason: str) -> Decision:
    """The platform's own refusal: one record (status ``refused``), nothing held or charged."""
    stamp = base["started_at"]
    call_id = _insert(
        conn,
        {
            **base,
            "direction": direction,
            "status": CallStatus.REFUSED,
            "sip_code": code,
            "hangup": "system",
            "ended_at": stamp,
            "settled_at": stamp,
        },
    )
    log.info(
        "call %s from %s to %s refused: %s %s", call_id, base.get("sip_username"), base.get("callee"), code, reason
    )
    return Decision(code, call_id, reason=reason)


def _existing(conn: Connection, sip_call_id: str) -> Decision | None:
    row = conn.execute(_EXISTING, {"sip_call_id": sip_call_id}).first()
    if row is None:
        return None
    if row.status == CallStatus.REFUSED:
        return Decision(row.sip_code or FORBIDDEN, row.id, reason="refused before")
    if row.status != CallStatus.IN_PROGRESS:
        # The call is over; a late retransmission must not start it again.
        return Decision(FORBIDDEN, row.id, reason="call already ended")
    if row.direction == "onnet":
        return Decision(200, row.id, row.limit_seconds, onnet=True, callee_user=row.callee)
    digits = row.callee.lstrip("+")
    return Decision(200, row.id, row.limit_seconds, digits=digits, trunks=trunk_routing.candidates(conn, digits))
