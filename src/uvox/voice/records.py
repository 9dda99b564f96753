"""Call records: rating what Kamailio reported, releasing holds, listing calls.

Kamailio's acc module writes one ``acc_cdrs`` row per dialog into the platform's
PostgreSQL, whether or not ``uvox serve`` is running; :func:`settle` turns each
into the call's final record and money, in one transaction per batch:

- the ``calls`` row is finished only ``WHERE settled_at IS NULL``;
- the hold goes back (``held -= hold``) and the real price is charged, with one
  ledger row ``kind='call'`` whose ``call_id`` is unique: a replayed or duplicated
  record can never charge twice, and a crash between steps rolls all of them back;
- the CDR is marked ``settled``.

Rows are taken ``FOR UPDATE SKIP LOCKED``, so any number of platform processes
may settle at once without taking the same record.

:func:`sweep` settles holds whose call never reported (a Kamailio that lost the
dialog): after the limit, the ringing time and a grace period the hold is
released and the call recorded as failed by the system, charging nothing.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from uvox.billing import alerts, caps, ledger
from uvox.billing.money import show
from uvox.clock import aware, now
from uvox.config import Settings
from uvox.db import schema as t
from uvox.db import timeline
from uvox.db.kamailio_tables import acc_cdrs
from uvox.db.kamailio_tables import dialog as kamailio_dialog
from uvox.db.schema import MICRO
from uvox.db.session import read, write
from uvox.strings import is_digits

from .rating import Tariff, reached_limit, whole_seconds
from .states import FINAL, CallStatus

log = logging.getLogger("uvox.voice")

VOICE_NEEDS_POSTGRES = (
    "Calls need PostgreSQL (UVOX_DATABASE_URL=postgresql://...): Kamailio reads SIP accounts "
    "and writes call records there. On SQLite trunks and records can be managed, but no call is placed."
)
#: Longest ringing Kamailio allows (fr_inv_timer in kamailio.cfg), for the sweeper.
RING_SECONDS = 60
STATUSES = FINAL
CSV_COLUMNS = (
    "id",
    "sip_username",
    "from",
    "to",
    "destination",
    "direction",
    "status",
    "sip_code",
    "hangup",
    "started_at",
    "answered_at",
    "ended_at",
    "duration",
    "billed",
    "rate",
    "connectcharge",
    "price",
    "currency",
    "trunk",
)
C = t.calls


def voice_available(settings: Settings) -> bool:
    return bool(settings.is_postgres)


# --- settling -----------------------------------------------------------------------


def status_of(sip_code: int | None, answered: bool, trunk: str) -> str:
    """VOICE.md's status for a call's final SIP code."""
    if answered:
        return CallStatus.ANSWERED
    if sip_code in (486, 600):
        return CallStatus.BUSY
    if sip_code in (408, 480):
        return CallStatus.NO_ANSWER
    if sip_code == 487:
        return CallStatus.CANCELLED
    if sip_code == 503 and not trunk:
        return CallStatus.REFUSED  # every trunk full before any was tried: the platform's own refusal
    return CallStatus.FAILED


def _utc(value: datetime | None) -> datetime | None:
    """Kamailio writes local time without a zone; the platform runs it in UTC."""
    if value is None or value.year <= 2000:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def settle(engine: Engine, batch: int = 200) -> int:
    """Rate every unsettled call record Kamailio wrote; returns how many were taken."""
    if engine.dialect.name != "postgresql":
        return 0
    total = 0
    while True:
        with write(engine) as conn:
            rows = conn.execute(
                sa.select(acc_cdrs)
                .where(acc_cdrs.c.settled.is_(False))
                .order_by(acc_cdrs.c.id)
                .limit(batch)
                .with_for_update(skip_locked=True)
            ).all()
            if not rows:
                return total
            owed = Owed()
            # The calls of the batch locked and read in one statement (in id order, so
            # that two settlers can never deadlock), not one SELECT per record.
            refs = sorted({int(r.uvox_call.strip()) for r in rows if is_digits((r.uvox_call or "").strip())})
            calls = {
                c.id: c for c in conn.execute(sa.select(C).where(C.c.id.in_(refs)).order_by(C.c.id).with_for_update())
            }
            finished = Finished(conn)
            for row in rows:
                _settle_one(conn, row, owed, calls, finished)
            finished.flush()
            conn.execute(sa.update(acc_cdrs).where(acc_cdrs.c.id.in_([r.id for r in rows])).values(settled=True))
            owed.apply(conn)  # last: the accounts' rows stay locked only until the commit
        total += len(rows)
        if len(rows) < batch:
            return total


_FINISHED_COLUMNS = (
    "status",
    "sip_code",
    "hangup",
    "answered_at",
    "ended_at",
    "duration",
    "billed",
    "price",
    "trunk",
    "settled_at",
)
_FINISH = (
    sa.update(C)
    .where(C.c.id == sa.bindparam("_id"), C.c.settled_at.is_(None))
    .values({name: sa.bindparam("v_" + name) for name in _FINISHED_COLUMNS})
)


class Finished:
    """The final values of a batch's calls, written by one executemany instead of one
    UPDATE per call (a round trip each, 200 a second while calls end as fast as they
    start). Only calls the batch read and locked unsettled are deferred, so each
    UPDATE finds its row; anything that reads or writes a call otherwise flushes first,
    and statements keep their order."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._rows: list[dict[str, Any]] = []

    def add(self, call_id: int, values: dict[str, Any]) -> None:
        self._rows.append({"_id": call_id, **{"v_" + name: values[name] for name in _FINISHED_COLUMNS}})

    def flush(self) -> None:
        if self._rows:
            self.conn.execute(_FINISH, self._rows)
            self._rows = []


def _settle_one(conn: Connection, cdr: Any, owed: Owed, calls: dict[int, Any], finished: Finished) -> None:
    ref = (cdr.uvox_call or "").strip()
    if not is_digits(ref):
        log.warning("call record %s from Kamailio names no call (uvox_call=%r): ignored", cdr.id, cdr.uvox_call)
        return
    # Read in the batch's statement; taken out of it once used, so that a second
    # record of the same call in the batch reads the row as the first one left it.
    call = calls.pop(int(ref), None)
    locked = call is not None
    if call is None:
        finished.flush()  # a second record of a call of this batch reads what the first wrote
        call = conn.execute(sa.select(C).where(C.c.id == int(ref)).with_for_update()).first()
    if call is None:
        log.warning("call record %s names call %s, which does not exist: ignored", cdr.id, ref)
        return
    code_text = (cdr.sip_code or "").strip()
    sip_code = int(code_text) if is_digits(code_text) else None
    answered = sip_code == 200 or (sip_code is None and (cdr.duration or 0) > 0)
    if call.settled_at is not None:
        finished.flush()
        _late_answer(conn, call, cdr, answered, owed)
        return
    if answered:
        hangup = _answered_hangup(call, cdr)
    else:
        hangup = "caller" if sip_code == 487 else ("trunk" if (cdr.trunk or "").strip() else "system")
    values = _rated(call, cdr, answered, sip_code, hangup)
    if locked:
        # Read by this batch, unsettled, under its lock: nobody settles it meanwhile.
        finished.add(call.id, values)
    elif conn.execute(sa.update(C).where(C.c.id == call.id, C.c.settled_at.is_(None)).values(**values)).rowcount != 1:
        return
    owed.add(call, values["price"], release=True)


def _rated(call: Any, cdr: Any, answered: bool, sip_code: int | None, hangup: str | None) -> dict[str, Any]:
    stamp = now()
    duration = billed = 0
    price = Decimal(0)
    if answered:
        duration = whole_seconds(cdr.duration or 0, call.limit_seconds, ended_by_limit=hangup == "limit")
        if call.direction == "outbound":
            tariff = Tariff(call.rate, call.connect_charge, call.init_block, call.billing_block)
            billed = tariff.billed_seconds(duration)
            price = tariff.price_of_billed(billed)
            if price > call.hold:
                # Cannot happen when Kamailio enforces the limit; never charge past the hold.
                log.error("call %s priced %s above its hold %s: charged the hold", call.id, price, call.hold)
                price = call.hold
    answered_at = _utc(cdr.start_time) if answered else None
    if answered_at is not None and call.started_at is not None and answered_at < aware(call.started_at):
        # acc writes whole seconds: an answer within the INVITE's second would read
        # before the call started.
        answered_at = aware(call.started_at)
    ended_at = _utc(cdr.end_time) or stamp
    if answered_at is not None and ended_at < answered_at:
        ended_at = answered_at
    return {
        "status": status_of(sip_code, answered, (cdr.trunk or "").strip()),
        "sip_code": 200 if answered else sip_code,
        "hangup": hangup,
        "answered_at": answered_at,
        "ended_at": ended_at,
        "duration": duration,
        "billed": billed,
        "price": price,
        "trunk": (cdr.trunk or "").strip() or None,
        "settled_at": stamp,
    }


class Owed:
    """The money changes of one batch, applied per account at its end.

    Each call's change (hold released, price charged) is summed per account and
    written by one UPDATE per account just before the commit, in account order.
    Applied call by call, the first record of an account locked its row for the rest
    of the batch (200 records, hundreds of statements), and every authorization of
    that account waited on the lock: the 250 ms tail of call set-up that
    bench/voice_bench.py measured. The sums are exact (``Decimal``) and the whole
    batch still commits or rolls back as one."""

    def __init__(self) -> None:
        self._release: dict[int, Decimal] = {}
        self._charge: dict[int, Decimal] = {}
        self._ledger: list[dict[str, Any]] = []
        #: (account, "calls", number, price) for the spend caps' counters.
        self._spent: list[tuple[int, str, str, Decimal]] = []

    def add(self, call: Any, price: Decimal, *, release: bool) -> None:
        if release and call.hold:
            self._release[call.account_id] = self._release.get(call.account_id, Decimal(0)) + call.hold
        if price > 0:
            self._charge[call.account_id] = self._charge.get(call.account_id, Decimal(0)) + price
            self._ledger.append(
                {
                    "account_id": call.account_id,
                    "kind": "call",
                    "amount": -price,
                    "call_id": call.id,
                    "note": f"call to {call.callee}"[:500],
                }
            )
            self._spent.append((call.account_id, "calls", call.callee, price))

    def apply(self, conn: Connection) -> None:
        A = t.accounts
        # Ledger first: its unique call_id refuses a second charge before any balance moves.
        ledger.record(conn, self._ledger)
        touched = sorted(self._release.keys() | self._charge.keys())
        for account in touched:
            change = {}
            if account in self._release:
                change["held"] = A.c.held - self._release[account]
            if account in self._charge:
                change["balance"] = A.c.balance - self._charge[account]
            conn.execute(sa.update(A).where(A.c.id == account).values(**change))
        # With the accounts' rows locked until the commit: spend under caps, then
        # low-balance alerts (a charge may alert, a released hold re-arm).
        stamp = now()
        caps.count(conn, self._spent, stamp)
        alerts.recheck(conn, touched, stamp)
        self._release.clear()
        self._charge.clear()
        self._ledger = []
        self._spent = []


def _answered_hangup(call: Any, cdr: Any) -> str:
    """Who ended an answered call. "limit" only when the call did reach its limit:
    Kamailio's dialog timer also fires for a call whose ACK never came."""
    hangup = (cdr.hangup or "").strip()
    hangup = hangup if hangup in ("caller", "callee", "limit") else "system"
    if hangup == "limit" and not reached_limit(cdr.duration or 0, call.limit_seconds):
        log.warning(
            "call %s: Kamailio's timer ended it after %ss of its %ss limit (an ACK that never "
            "came?): billed what it lasted",
            call.id,
            cdr.duration,
            call.limit_seconds,
        )
        hangup = "system"
    return hangup


def _late_answer(conn: Connection, call: Any, cdr: Any, answered: bool, owed: Owed) -> None:
    """A record for a call the sweeper already closed: charge it if it was answered and
    never charged (its hold was released by the sweep); anything else is a replay."""
    if not answered or call.status != CallStatus.FAILED or call.hangup != "system":
        return
    if conn.execute(sa.select(t.ledger.c.id).where(t.ledger.c.call_id == call.id)).first() is not None:
        return
    values = _rated(call, cdr, True, 200, _answered_hangup(call, cdr))
    conn.execute(sa.update(C).where(C.c.id == call.id).values(**values))
    owed.add(call, values["price"], release=False)
    log.warning("call %s reported after its hold was swept: charged %s now", call.id, values["price"])


def _give_up(conn: Connection, call: Any, stamp: datetime, owed: Owed) -> bool:
    """End a call that will never report as failed by the system, its hold released
    and nothing charged; False if it was settled meanwhile."""
    n = conn.execute(
        sa.update(C)
        .where(C.c.id == call.id, C.c.settled_at.is_(None))
        .values(status=CallStatus.FAILED, hangup="system", ended_at=stamp, settled_at=stamp)
    ).rowcount
    if n != 1:
        return False
    owed.add(call, Decimal(0), release=True)
    return True


def sweep(engine: Engine, grace_seconds: int, *, at: datetime | None = None) -> int:
    """Release the holds of calls that never reported; returns how many."""
    stamp = at or now()
    done = 0
    with write(engine) as conn:
        rows = conn.execute(sa.select(C).where(C.c.status == CallStatus.IN_PROGRESS).order_by(C.c.id).limit(1000)).all()
        owed = Owed()
        for call in rows:
            deadline = aware(call.started_at) + timedelta(seconds=call.limit_seconds + RING_SECONDS + grace_seconds)
            if deadline > stamp:
                continue
            if _give_up(conn, call, stamp, owed):
                done += 1
                log.warning("call %s never reported its end: hold %s released, nothing charged", call.id, call.hold)
        owed.apply(conn)
    if engine.dialect.name == "postgresql":
        done += _sweep_orphans(engine, stamp)
    return done


#: No INVITE transaction outlives tm's max_inv_lifetime (180 s by default, every
#: trunk tried and rung included); after it, a call is either a dialog or has a CDR.
ORPHAN_SECONDS = 180 + 30


def _sweep_orphans(engine: Engine, stamp: datetime) -> int:
    """Release at once the holds of calls that never became a call: the platform said
    yes, but Kamailio never got the answer (its HTTP request timed out under load, or
    dlg_manage failed) and refused the INVITE, so no dialog and no CDR will ever come.
    Without this their money stayed held for the whole limit (hours), seen in
    bench/voice_bench.py. A call Kamailio did set up is in its ``dialog`` table (written
    at the answer) or has a CDR; a record that turns up anyway is charged then
    (``_late_answer``)."""
    cdr_waiting = (
        sa.select(acc_cdrs.c.id)
        .where(acc_cdrs.c.uvox_call == sa.cast(C.c.id, sa.String), acc_cdrs.c.settled.is_(False))
        .exists()
    )
    in_dialog = sa.select(kamailio_dialog.c.id).where(kamailio_dialog.c.callid == C.c.sip_call_id).exists()
    done = 0
    with write(engine) as conn:
        rows = conn.execute(
            sa.select(C)
            .where(
                C.c.status == CallStatus.IN_PROGRESS,
                C.c.started_at < stamp - timedelta(seconds=ORPHAN_SECONDS),
                ~in_dialog,
                ~cdr_waiting,
            )
            .order_by(C.c.id)
            .limit(1000)
            .with_for_update(skip_locked=True)
        ).all()
        owed = Owed()
        for call in rows:
            if _give_up(conn, call, stamp, owed):
                done += 1
                log.warning(
                    "call %s was authorized but never set up (no dialog, no record): hold %s released",
                    call.id,
                    call.hold,
                )
        owed.apply(conn)
    return done


# --- listing ------------------------------------------------------------------------


@dataclass(frozen=True)
class CallRecord:
    id: int
    sip_username: str
    caller: str
    callee: str
    destination: str
    direction: str
    status: str
    sip_code: int | None
    hangup: str | None
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    duration: int
    billed: int
    rate: Decimal
    connect_charge: Decimal
    price: Decimal
    currency: str
    trunk: str | None

    def as_wire(self) -> dict[str, str | None]:
        """VOICE.md's fields: ids, seconds and amounts as strings, ISO 8601 UTC times."""
        return {
            "id": str(self.id),
            "sip_username": self.sip_username,
            "from": self.caller,
            "to": self.callee,
            "destination": self.destination,
            "direction": self.direction,
            "status": self.status,
            "sip_code": str(self.sip_code) if self.sip_code is not None else None,
            "hangup": self.hangup,
            "started_at": _iso(self.started_at),
            "answered_at": _iso(self.answered_at),
            "ended_at": _iso(self.ended_at),
            "duration": str(self.duration),
            "billed": str(self.billed),
            "rate": show(self.rate, 5),
            "connectcharge": show(self.connect_charge),
            # VOICE.md: a call that cost nothing shows price "0", not "0.00".
            "price": show(self.price) if self.price else "0",
            "currency": self.currency,
            "trunk": self.trunk,
        }


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return aware(value).astimezone(UTC).isoformat().replace("+00:00", "Z")


def _record(r: Any) -> CallRecord:
    return CallRecord(
        r.id,
        r.sip_username,
        r.caller,
        r.callee,
        r.destination,
        r.direction,
        r.status,
        r.sip_code,
        r.hangup,
        aware(r.started_at),
        aware(r.answered_at),
        aware(r.ended_at),
        r.duration,
        r.billed,
        r.rate,
        r.connect_charge,
        r.price,
        r.currency,
        r.trunk,
    )


def _filters(
    account_id: int, since: datetime | None, until: datetime | None, number: str | None
) -> list[sa.ColumnElement[bool]]:
    cond = [C.c.account_id == account_id, C.c.status != CallStatus.IN_PROGRESS]
    if since is not None:
        cond.append(C.c.started_at >= since)
    if until is not None:
        cond.append(C.c.started_at < until)
    digits = (number or "").strip()
    if digits:
        like = f"%{digits.replace('%', '').replace('_', '')}%"
        cond.append(sa.or_(C.c.callee.like(like), C.c.caller.like(like), C.c.sip_username.like(like)))
    return cond


class BadCursor(ValueError):
    """A ``cursor`` that no page of ours gave out."""


def list_calls(
    engine: Engine,
    account_id: int,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    number: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> tuple[list[CallRecord], str | None]:
    """A page of the account's call records, newest first, and the cursor of the next page."""
    cond = _filters(account_id, since, until, number)
    if cursor:
        if not is_digits(cursor) or len(cursor) > 18:
            raise BadCursor("cursor must be the next_cursor of a previous page")
        cond.append(C.c.id < int(cursor))
    with read(engine) as conn:
        rows = conn.execute(sa.select(C).where(*cond).order_by(C.c.id.desc()).limit(limit + 1)).all()
    records = [_record(r) for r in rows[:limit]]
    more = len(rows) > limit
    return records, (str(records[-1].id) if more and records else None)


def iter_calls(engine: Engine, account_id: int, **filters: Any) -> Iterable[CallRecord]:
    """Every matching record, newest first, a page at a time (for CSV export)."""
    cursor = None
    while True:
        page, cursor = list_calls(engine, account_id, cursor=cursor, limit=1000, **filters)
        yield from page
        if cursor is None:
            return


def totals(
    engine: Engine,
    account_id: int,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    number: str | None = None,
) -> dict[str, Any]:
    cond = _filters(account_id, since, until, number)
    with read(engine) as conn:
        row = conn.execute(
            sa.select(
                sa.func.count(),
                sa.func.count().filter(C.c.status == CallStatus.ANSWERED),
                sa.func.coalesce(sa.func.sum(C.c.billed), 0),
                sa.func.coalesce(sa.func.sum(C.c.price), 0),
                sa.func.count().filter(C.c.price > 0),
            ).where(*cond)
        ).one()
        currency = conn.execute(sa.select(t.accounts.c.currency).where(t.accounts.c.id == account_id)).scalar()
    # sum() keeps the column's Money type, so the driver value is already a Decimal.
    price = Decimal(row[3] or 0).quantize(MICRO)
    return {
        "calls": int(row[0]),
        "answered": int(row[1]),
        "billed": int(row[2]),
        "price": price,
        "currency": currency or "",
    }


def in_progress(engine: Engine, account_id: int) -> tuple[int, Decimal]:
    """Calls in progress of the account and the money they hold."""
    with read(engine) as conn:
        row = conn.execute(
            sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(C.c.hold), 0)).where(
                C.c.account_id == account_id, C.c.status == CallStatus.IN_PROGRESS
            )
        ).one()
    held = Decimal(row[1] or 0).quantize(MICRO)
    return int(row[0]), held


def to_csv(records: Iterable[CallRecord]) -> Iterable[str]:
    """CSV text, a line at a time: the header, then one line per record (VOICE.md's columns)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    yield buf.getvalue()
    for r in records:
        buf.seek(0)
        buf.truncate()
        w = r.as_wire()
        writer.writerow([_csv_safe(w[c]) for c in CSV_COLUMNS])
        yield buf.getvalue()


def _csv_safe(value: str | None) -> str:
    # A cell starting with = + - @ runs as a formula in a spreadsheet; numbers like +1305... are
    # data here, so only non-numeric cells are guarded.
    text = value or ""
    if text[:1] in ("=", "@") or (text[:1] in ("+", "-") and not text[1:].replace(".", "").isdigit()):
        return "'" + text
    return text


# --- the console's charts ------------------------------------------------------------


@dataclass(frozen=True)
class CallDay:
    day: date
    calls: int
    answered: int
    #: Seconds billed (the rate's blocks), what the minutes chart shows.
    billed: int


def per_day(engine: Engine, account_id: int, days: int = 30) -> list[CallDay]:
    """The account's finished calls started on each of the last ``days`` UTC days
    (today last, days without calls as zeros). Their price is in the ledger
    (``billing.ledger.spending``), where the money is."""
    dates, since = timeline.window(days)
    day = timeline.utc_day(C.c.started_at).label("day")
    n = sa.func.count()
    with read(engine) as conn:
        cond = _filters(account_id, since, None, None)
        cond.append(C.c.id >= timeline.first_id_since(conn, C, C.c.started_at, since))
        rows = conn.execute(
            sa.select(day, n, n.filter(C.c.status == CallStatus.ANSWERED), sa.func.coalesce(sa.func.sum(C.c.billed), 0))
            .where(*cond)
            .group_by(day)
        ).all()
    found = {timeline.day_key(r[0]): r for r in rows}
    out = []
    for d in dates:
        r = found.get(d.isoformat())
        out.append(CallDay(d, int(r[1]), int(r[2]), int(r[3])) if r else CallDay(d, 0, 0, 0))
    return out
