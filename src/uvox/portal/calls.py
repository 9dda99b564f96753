"""The customer's "Calls" page: call history, totals, calls in progress, CSV export.

A thin front end over :mod:`uvox.voice.records` (the only code that reads call
records, always with the signed-in account's id): this module parses and checks
the filters, so bad input becomes a message on the page rather than an error, and
turns VOICE.md's wire values into translated labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from starlette.concurrency import iterate_in_threadpool
from starlette.responses import Response, StreamingResponse

from uvox.portal.history import N_, DaysAndNumber
from uvox.portal.web import Ctx
from uvox.voice import records
from uvox.voice.states import FINAL, CallStatus

PAGE_SIZE = 50
MAX_NUMBER = 32

STATUS_LABELS = {
    CallStatus.ANSWERED: N_("Answered"),
    CallStatus.BUSY: N_("Busy"),
    CallStatus.NO_ANSWER: N_("No answer"),
    CallStatus.FAILED: N_("Failed"),
    CallStatus.CANCELLED: N_("Cancelled"),
    CallStatus.REFUSED: N_("Refused"),
}
assert tuple(STATUS_LABELS) == FINAL  # a status added to voice/states.py needs its label here
#: Why the platform refused a call, by its SIP answer (VOICE.md's order of checks).
REFUSALS = {
    403: N_("Account disabled"),
    404: N_("Number not valid or without a rate"),
    402: N_("Not enough balance"),
    503: N_("No route for this number"),
}
HANGUP_LABELS = {
    "caller": N_("Caller"),
    "callee": N_("Called party"),
    "limit": N_("Time limit"),
    "trunk": N_("Carrier"),
    "system": N_("System"),
}
DIRECTION_LABELS = {"outbound": N_("Outbound"), "onnet": N_("On-net")}
#: records.VOICE_NEEDS_POSTGRES written out, so the catalogues keep its translation
#: (tests/portal/test_calls_page.py checks the two are the same text).
POSTGRES_NOTICE = N_(
    "Calls need PostgreSQL (UVOX_DATABASE_URL=postgresql://...): Kamailio reads SIP accounts "
    "and writes call records there. On SQLite trunks and records can be managed, but no call is placed."
)


def minutes(seconds: int | None) -> str:
    """Seconds as minutes:seconds (``125`` -> ``2:05``); minutes are not folded into hours."""
    total = max(0, int(seconds or 0))
    return f"{total // 60}:{total % 60:02d}"


def _number(raw: str) -> str | None:
    """What a person types as a number (``+1 305-555``, ``00 58 412``, ``(305) 555``)
    reduced to the digits stored; None when it is not a number."""
    text = "".join(ch for ch in raw if ch not in " -.()/\t")
    if text.startswith("+"):
        text = text[1:]
    elif text.startswith("00"):
        text = text[2:]
    if not text or not text.isascii() or not text.isdigit() or len(text) > MAX_NUMBER:
        return None
    return text


@dataclass
class CallFilters(DaysAndNumber):
    typed_number: str = ""

    @classmethod
    def parse(cls, get) -> tuple[CallFilters, list[str]]:
        """From query parameters; returns the filters and the names of the invalid ones (ignored)."""
        bad: list[str] = []

        def day(name: str) -> date | None:
            raw = (get(name) or "").strip()
            if not raw:
                return None
            try:
                value = date.fromisoformat(raw)
            except ValueError:
                bad.append(name)
                return None
            if value.year < 1900 or value >= date.max:
                bad.append(name)
                return None
            return value

        date_from, date_to = day("from"), day("to")
        if date_from and date_to and date_from > date_to:
            bad += ["from", "to"]
            date_from = date_to = None
        typed = (get("number") or "").strip()[:100]
        number = ""
        if typed:
            number = _number(typed) or ""
            if not number:
                bad.append("number")
        return cls(date_from, date_to, number, typed), bad

    def for_records(self) -> dict:
        """The keyword arguments of records.list_calls / totals / iter_calls: dates are
        whole UTC days, ``to`` included."""
        since = datetime.combine(self.date_from, time.min, UTC) if self.date_from else None
        until = datetime.combine(self.date_to + timedelta(days=1), time.min, UTC) if self.date_to else None
        return {"since": since, "until": until, "number": self.number or None}


def calls(ctx: Ctx) -> Response:
    filters, bad = CallFilters.parse(ctx.request.query_params.get)
    where = filters.for_records()
    cursor = ctx.q("cursor") or None
    bad_cursor = False
    try:
        rows, next_cursor = records.list_calls(ctx.engine, ctx.account.id, limit=PAGE_SIZE, cursor=cursor, **where)
    except records.BadCursor:
        bad_cursor, cursor = True, None
        rows, next_cursor = records.list_calls(ctx.engine, ctx.account.id, limit=PAGE_SIZE, **where)
    totals = records.totals(ctx.engine, ctx.account.id, **where)
    live, held = records.in_progress(ctx.engine, ctx.account.id)
    query = filters.as_query()
    return ctx.render(
        "calls.html",
        rows=rows,
        totals=totals,
        live=live,
        held=held,
        filters=filters,
        query=query,
        bad=bad,
        bad_cursor=bad_cursor,
        cursor=cursor,
        next_cursor=next_cursor,
        needs_postgres=not records.voice_available(ctx.settings),
        postgres_notice=records.VOICE_NEEDS_POSTGRES,
        minutes=minutes,
        status_labels=STATUS_LABELS,
        refusals=REFUSALS,
        hangups=HANGUP_LABELS,
        directions=DIRECTION_LABELS,
        currency=totals.get("currency") or ctx.account.currency,
    )


def calls_export(ctx: Ctx) -> Response:
    """Every call matching the page's filters, VOICE.md's columns (as the API's format=csv).
    Invalid filters are ignored, as on the page, so the file matches what the page showed."""
    filters, _ = CallFilters.parse(ctx.request.query_params.get)
    lines = records.to_csv(records.iter_calls(ctx.engine, ctx.account.id, **filters.for_records()))
    response = StreamingResponse(
        iterate_in_threadpool(lines),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="calls-{ctx.account.number}.csv"'},
    )
    return ctx.finish(response)
