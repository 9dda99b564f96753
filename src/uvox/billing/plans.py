"""Plans and rate decks: import, longest-prefix lookup, streaming the list."""

from __future__ import annotations

import csv
import io
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from uvox.billing.money import parse_amount
from uvox.clock import now
from uvox.db import schema as t
from uvox.db.caches import caches_of
from uvox.db.session import read, write
from uvox.errors import Conflict, NotFound
from uvox.strings import is_digits

REQUIRED_COLUMNS = ("dialprefix", "destination", "rateinitial", "smsrate")
#: Optional voice columns (A2Billing's names) and their defaults (VOICE.md).
VOICE_COLUMNS = ("connectcharge", "initblock", "billingblock")
EXPORT_COLUMNS = REQUIRED_COLUMNS + VOICE_COLUMNS
MAX_BLOCK_SECONDS = 86400


@dataclass(frozen=True)
class Plan:
    id: int
    name: str
    currency: str


@dataclass(frozen=True)
class Rate:
    prefix: str
    destination: str
    rate_initial: Decimal
    sms_rate: Decimal
    connect_charge: Decimal = Decimal(0)
    init_block: int = 60
    billing_block: int = 60


class RateDeckError(ValueError):
    """A rate deck that cannot be imported; the message names the line."""


def create_plan(engine: Engine, name: str, currency: str) -> Plan:
    name = name.strip()
    currency = currency.strip()
    if not name or not currency:
        raise ValueError("a plan needs a name and a currency")
    with write(engine) as conn:
        if conn.execute(sa.select(t.plans.c.id).where(t.plans.c.name == name)).first():
            raise Conflict(f"a plan named {name!r} already exists")
        plan_id = conn.execute(
            sa.insert(t.plans).values(name=name, currency=currency, created_at=now()).returning(t.plans.c.id)
        ).scalar_one()
    return Plan(plan_id, name, currency)


def get_plan(engine: Engine, name: str) -> Plan:
    with read(engine) as conn:
        row = conn.execute(sa.select(t.plans).where(t.plans.c.name == name.strip())).first()
    if row is None:
        raise NotFound(f"no plan named {name!r}")
    return Plan(row.id, row.name, row.currency)


def list_plans(engine: Engine) -> list[Plan]:
    with read(engine) as conn:
        return [Plan(r.id, r.name, r.currency) for r in conn.execute(sa.select(t.plans).order_by(t.plans.c.name))]


def _parse_deck(stream: IO[str]) -> Iterator[dict[str, Any]]:
    reader = csv.reader(stream)
    try:
        header = next(reader)
    except StopIteration:
        raise RateDeckError("the file is empty") from None
    names = [h.strip().lower().lstrip("\ufeff") for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise RateDeckError(
            f"line 1: missing column(s) {', '.join(missing)}; the header must be {','.join(REQUIRED_COLUMNS)}"
        )
    idx = {c: names.index(c) for c in REQUIRED_COLUMNS}
    opt = {c: names.index(c) for c in VOICE_COLUMNS if c in names}

    def cell(row: list[str], name: str) -> str:
        i = opt.get(name)
        return row[i].strip() if i is not None and i < len(row) else ""

    seen: set[str] = set()
    for lineno, row in enumerate(reader, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        try:
            prefix = row[idx["dialprefix"]].strip().lstrip("+")
            destination = row[idx["destination"]].strip()
            rate_initial = parse_amount(row[idx["rateinitial"]])
            sms_rate = parse_amount(row[idx["smsrate"]])
            connect = parse_amount(cell(row, "connectcharge") or "0")
            init_block = _block(cell(row, "initblock"), 60, "initblock", minimum=0)
            billing_block = _block(cell(row, "billingblock"), 60, "billingblock", minimum=1)
        except IndexError:
            raise RateDeckError(f"line {lineno}: too few columns") from None
        except ValueError as exc:
            raise RateDeckError(f"line {lineno}: {exc}") from None
        if not is_digits(prefix) or len(prefix) > 20:
            raise RateDeckError(f"line {lineno}: dialprefix must be digits, got {prefix!r}")
        if prefix in seen:
            raise RateDeckError(f"line {lineno}: dialprefix {prefix} appears twice")
        seen.add(prefix)
        yield {
            "prefix": prefix,
            "destination": destination[:200],
            "rate_initial": rate_initial,
            "sms_rate": sms_rate,
            "connect_charge": connect,
            "init_block": init_block,
            "billing_block": billing_block,
        }


def _block(raw: str, default: int, name: str, *, minimum: int) -> int:
    if raw == "":
        return default
    if not is_digits(raw) or not (minimum <= int(raw) <= MAX_BLOCK_SECONDS):
        raise ValueError(f"{name} must be a whole number of seconds from {minimum} to {MAX_BLOCK_SECONDS}, got {raw!r}")
    return int(raw)


def export_csv(engine: Engine, plan_name: str) -> Iterator[str]:
    """A plan's deck as CSV lines with every column import reads (round-trips)."""
    from uvox.billing.money import show

    plan = get_plan(engine, plan_name)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    yield buf.getvalue()
    for r in iter_rates(engine, plan.id):
        buf.seek(0)
        buf.truncate()
        writer.writerow(
            [
                r.prefix,
                r.destination,
                show(r.rate_initial, 4),
                show(r.sms_rate, 4),
                show(r.connect_charge, 2),
                r.init_block,
                r.billing_block,
            ]
        )
        yield buf.getvalue()


def import_rates(engine: Engine, plan_name: str, stream: IO[str] | str) -> int:
    """Replace a plan's rate deck with a CSV file, all or nothing. Returns the row count."""
    if isinstance(stream, str):
        stream = io.StringIO(stream)
    plan = get_plan(engine, plan_name)
    rows = list(_parse_deck(stream))
    with write(engine) as conn:
        conn.execute(sa.delete(t.rates).where(t.rates.c.plan_id == plan.id))
        batch = 5000
        for i in range(0, len(rows), batch):
            chunk = rows[i : i + batch]
            for r in chunk:
                r["plan_id"] = plan.id
            conn.execute(sa.insert(t.rates), chunk)
        key = _version_key(plan.id)
        conn.execute(sa.delete(t.meta).where(t.meta.c.key == key))
        conn.execute(sa.insert(t.meta).values(key=key, value=secrets.token_hex(8)))
    clear_cache(engine)
    return len(rows)


_lookup_cols = (
    t.rates.c.prefix,
    t.rates.c.destination,
    t.rates.c.rate_initial,
    t.rates.c.sms_rate,
    t.rates.c.connect_charge,
    t.rates.c.init_block,
    t.rates.c.billing_block,
)


def _rate(r: Any) -> Rate:  # a row with the rate columns, whatever else it holds
    return Rate(r.prefix, r.destination, r.rate_initial, r.sms_rate, r.connect_charge, r.init_block, r.billing_block)


# Rates are read on every message and change only on import. Each process keeps a
# plan's whole deck as a dict (prefix -> Rate), so a longest-prefix match is a few
# dict probes. Every import writes a new version token in `meta`; a process checks
# that token at most every CHECK_SECONDS and reloads the deck when it changed, so an
# import is seen everywhere within CHECK_SECONDS (at once in the importing process).
# The decks are the Platform's (db/caches.py ``Caches.decks``: plan id -> (next
# check, version, deck)), reached from the connection's engine.
CHECK_SECONDS = 2.0


def clear_cache(engine: Engine) -> None:
    """Forget every deck read from ``engine``'s database (tests, benches)."""
    caches_of(engine).decks.clear()


def _version_key(plan_id: int) -> str:
    return f"rates:{plan_id}"


def _deck(conn: Connection, plan_id: int) -> dict[str, Rate]:
    decks = caches_of(conn.engine).decks
    entries: dict[int, tuple[float, str | None, dict[str, Rate]]] = decks.entries
    clock = time.monotonic()
    entry = entries.get(plan_id)
    if entry is not None and entry[0] > clock:
        return entry[2]
    version = conn.execute(sa.select(t.meta.c.value).where(t.meta.c.key == _version_key(plan_id))).scalar()
    if entry is not None and entry[1] == version:
        entries[plan_id] = (clock + CHECK_SECONDS, version, entry[2])
        return entry[2]
    with decks.lock:
        deck = {r.prefix: _rate(r) for r in conn.execute(sa.select(*_lookup_cols).where(t.rates.c.plan_id == plan_id))}
        entries[plan_id] = (clock + CHECK_SECONDS, version, deck)
    return deck


def lookup(conn: Connection, plan_id: int, number: str) -> Rate | None:
    """The rate of the longest dial prefix of ``number`` (digits, with or without +)."""
    deck = _deck(conn, plan_id)
    digits = number.lstrip("+")
    for i in range(min(len(digits), 20), 0, -1):
        rate = deck.get(digits[:i])
        if rate is not None:
            return rate
    return None


def _lookup_db(conn: Connection, plan_id: int, number: str) -> Rate | None:
    digits = number.lstrip("+")
    prefixes = [digits[:i] for i in range(len(digits), 0, -1)]
    row = conn.execute(
        sa.select(*_lookup_cols)
        .where(t.rates.c.plan_id == plan_id, t.rates.c.prefix.in_(prefixes))
        .order_by(sa.func.length(t.rates.c.prefix).desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return _rate(row)


def iter_rates(engine: Engine, plan_id: int, batch: int = 2000) -> Iterator[Rate]:
    """Every rate of a plan in import order, fetched in batches (never all in memory)."""
    last = 0
    while True:
        with read(engine) as conn:
            rows = conn.execute(
                sa.select(t.rates.c.id, *_lookup_cols)
                .where(t.rates.c.plan_id == plan_id, t.rates.c.id > last)
                .order_by(t.rates.c.id)
                .limit(batch)
            ).all()
        if not rows:
            return
        for r in rows:
            yield _rate(r)
        last = rows[-1].id


def search_rates(
    engine: Engine, plan_id: int, *, destination: str = "", prefix: str = "", limit: int = 50, offset: int = 0
) -> tuple[int, list[Rate]]:
    """A page of rates filtered by destination text or prefix start, and the total."""
    cond = [t.rates.c.plan_id == plan_id]
    if destination:
        cond.append(sa.func.lower(t.rates.c.destination).like(f"%{destination.strip().lower()}%"))
    if prefix:
        cond.append(t.rates.c.prefix.like(f"{prefix.strip().lstrip('+')}%"))
    with read(engine) as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(t.rates).where(*cond)).scalar_one()
        rows = conn.execute(
            sa.select(*_lookup_cols).where(*cond).order_by(t.rates.c.prefix).limit(limit).offset(offset)
        ).all()
    return total, [_rate(r) for r in rows]


def plan_name(engine: Engine, plan_id: int | None) -> str:
    """The plan's name, or "" for no plan (an account waiting for one)."""
    if plan_id is None:
        return ""
    with read(engine) as conn:
        return conn.execute(sa.select(t.plans.c.name).where(t.plans.c.id == plan_id)).scalar() or ""


def rates_for_number(engine: Engine, plan_id: int, number: str) -> tuple[Rate | None, list[Rate]]:
    """(the rate that applies to ``number``, every rate of the plan whose prefix begins
    it, longest first): what a customer sees when asking why a number costs what it does."""
    prefixes = [number[:i] for i in range(len(number), 0, -1)]
    with read(engine) as conn:
        applied = lookup(conn, plan_id, number)
        found = conn.execute(
            sa.select(*_lookup_cols)
            .where(t.rates.c.plan_id == plan_id, t.rates.c.prefix.in_(prefixes))
            .order_by(sa.func.length(t.rates.c.prefix).desc())
        ).all()
    return applied, [_rate(r) for r in found]


@dataclass(frozen=True)
class PlanUsage:
    rates: dict[int, int]
    customers: dict[int, int]


def plan_usage(engine: Engine) -> PlanUsage:
    """How many rates each plan has and how many accounts are on it, by plan id."""
    with read(engine) as conn:
        rates = conn.execute(sa.select(t.rates.c.plan_id, sa.func.count()).group_by(t.rates.c.plan_id)).all()
        customers = conn.execute(sa.select(t.accounts.c.plan_id, sa.func.count()).group_by(t.accounts.c.plan_id)).all()
    return PlanUsage({r[0]: r[1] for r in rates}, {r[0]: r[1] for r in customers if r[0] is not None})
