"""The console's charts: the customer's dashboard and the operator's overview.

The figures come from the packages that own them (``sms.history`` messages per day
and per destination, ``billing.ledger`` money per day, ``voice.records`` minutes per
day, ``dispatch.status`` connectors and queue); this module only words, formats and
draws them (:mod:`uvox.portal.charts`), each chart with its table of numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal

from babel.dates import format_date
from starlette.responses import Response

from uvox.billing import ledger
from uvox.billing.money import show
from uvox.clock import aware, now
from uvox.dispatch import status
from uvox.portal.charts import Chart, Series, Table, bars, columns
from uvox.portal.history import N_
from uvox.portal.web import Ctx
from uvox.sms import history
from uvox.sms.states import MessageState
from uvox.voice import records

DAYS = 30
#: Every how many days the x axis writes a date (the last day always).
LABEL_EVERY = 7

QUEUE_LABELS = {
    MessageState.WAITING_BALANCE: N_("Waiting for balance"),
    MessageState.QUEUED: N_("Queued"),
    MessageState.SUBMITTING: N_("Being submitted"),
    MessageState.SUBMITTED: N_("Awaiting receipt"),
}
assert tuple(QUEUE_LABELS) == status.QUEUE_STATES  # a state added to the queue needs its label here


def _count(value: Decimal) -> str:
    return str(int(value))


def _minutes(seconds: int) -> str:
    return f"{seconds // 60}:{seconds % 60:02d}"


class _Days:
    """How a page writes the days of a 30-day chart, in its language."""

    def __init__(self, ctx: Ctx, days: Sequence[date]) -> None:
        self.days = list(days)
        n = len(self.days)
        self.labels = [
            format_date(d, "d MMM", locale=ctx.lang) if (n - 1 - i) % LABEL_EVERY == 0 else ""
            for i, d in enumerate(self.days)
        ]
        self.long = [format_date(d, "medium", locale=ctx.lang) for d in self.days]
        self.iso = [d.isoformat() for d in self.days]


def _messages_chart(ctx: Ctx, chart_id: str, title: str, per_day: list[history.Day]) -> Chart:
    days = _Days(ctx, [d.day for d in per_day])
    counts = [d.messages for d in per_day]
    tips = [ctx._("%(day)s: %(n)s messages", day=days.long[i], n=d.messages) for i, d in enumerate(per_day)]
    svg = columns(
        title,
        days.labels,
        tips,
        [Series(ctx._("Messages"), counts)],
        _count,
        whole=True,
        empty=ctx._("No messages in the last 30 days."),
    )
    table = Table(
        ctx._("%(title)s, last %(n)s days (UTC)", title=title, n=DAYS),
        [ctx._("Day"), ctx._("Messages"), ctx._("Segments")],
        [[days.iso[i], str(d.messages), str(d.segments)] for i, d in enumerate(per_day)],
    )
    return Chart(chart_id, title, svg, table)


def _money_chart(ctx: Ctx, chart_id: str, title: str, currency: str, spend: list[ledger.SpendDay]) -> Chart:
    days = _Days(ctx, [s.day for s in spend])
    sms = Series(ctx._("SMS"), [s.sms for s in spend], "s1")
    calls = Series(ctx._("Calls"), [s.calls for s in spend], "s2")
    tips = [
        ctx._(
            "%(day)s: SMS %(sms)s, calls %(calls)s (%(currency)s)",
            day=days.long[i],
            sms=show(s.sms),
            calls=show(s.calls),
            currency=currency,
        )
        for i, s in enumerate(spend)
    ]
    svg = columns(
        f"{title} ({currency})",
        days.labels,
        tips,
        [sms, calls],
        show,
        empty=ctx._("Nothing spent in the last 30 days."),
    )
    table = Table(
        ctx._("%(title)s in %(currency)s, last %(n)s days (UTC)", title=title, currency=currency, n=DAYS),
        [ctx._("Day"), ctx._("SMS"), ctx._("Calls"), ctx._("Total")],
        [[days.iso[i], show(s.sms), show(s.calls), show(s.total)] for i, s in enumerate(spend)],
    )
    return Chart(chart_id, f"{title} ({currency})", svg, table, series=[sms, calls])


def _rate(value: Decimal | None) -> str:
    return "—" if value is None else f"{value} %"


def _outcomes_table(
    ctx: Ctx,
    caption: str,
    headers: tuple[str, str, str],
    names: list[str],
    rows: list[tuple[int, int, int, int, Decimal | None]],
) -> Table:
    """Messages by destination or by connector, a row each: its name, then how many
    messages, delivered, final without a delivery, pending, and a rate. ``headers``
    word the columns that differ: the name, the undelivered and the rate."""
    name, undelivered, rate = headers
    return Table(
        caption,
        [name, ctx._("Messages"), ctx._("Delivered"), undelivered, ctx._("Pending"), rate],
        [[n, str(m), str(d), str(u), str(p), _rate(r)] for n, (m, d, u, p, r) in zip(names, rows, strict=True)],
    )


def _delivery_chart(ctx: Ctx, rows: list[history.Destination]) -> Chart:
    title = ctx._("Delivery rate by destination")
    names = [r.destination or ctx._("Unknown") for r in rows]
    tips = [
        ctx._(
            "%(name)s: %(delivered)s of %(final)s delivered, %(pending)s pending",
            name=names[i],
            delivered=r.delivered,
            final=r.delivered + r.not_delivered,
            pending=r.pending,
        )
        for i, r in enumerate(rows)
    ]
    svg = bars(
        title,
        names,
        tips,
        [Series(ctx._("Delivered"), [r.rate or 0 for r in rows], "ok")],
        [_rate(r.rate) for r in rows],
        top=Decimal(100),
        empty=ctx._("No messages in the last 30 days."),
    )
    caption = ctx._("Delivery by destination, last %(n)s days: the %(top)s with most messages", n=DAYS, top=len(rows))
    headers = (ctx._("Destination"), ctx._("Not delivered"), ctx._("Delivery rate"))
    counts = [(r.messages, r.delivered, r.not_delivered, r.pending, r.rate) for r in rows]
    note = ctx._("The rate counts messages with a final state: delivered, or undelivered, rejected, expired or failed.")
    return Chart("delivery", title, svg, _outcomes_table(ctx, caption, headers, names, counts), notes=[note])


def _minutes_chart(ctx: Ctx, per_day: list[records.CallDay]) -> Chart:
    title = ctx._("Call minutes per day")
    days = _Days(ctx, [d.day for d in per_day])
    tips = [
        ctx._(
            "%(day)s: %(calls)s calls, %(minutes)s billed", day=days.long[i], calls=d.calls, minutes=_minutes(d.billed)
        )
        for i, d in enumerate(per_day)
    ]
    svg = columns(
        title,
        days.labels,
        tips,
        [Series(ctx._("Minutes"), [Decimal(d.billed) / 60 for d in per_day], "s2")],
        lambda v: show(v, 0) if v else "0",
        empty=ctx._("No calls in the last 30 days."),
    )
    table = Table(
        ctx._("%(title)s, last %(n)s days (UTC)", title=title, n=DAYS),
        [ctx._("Day"), ctx._("Calls"), ctx._("Answered calls"), ctx._("Billed (min:s)")],
        [[days.iso[i], str(d.calls), str(d.answered), _minutes(d.billed)] for i, d in enumerate(per_day)],
    )
    return Chart("minutes", title, svg, table)


def customer_charts(ctx: Ctx) -> list[Chart]:
    account = ctx.account
    currency = account.currency
    money = ledger.spending(ctx.engine, account.id, DAYS, currencies=(currency,))[currency]
    charts = [
        _messages_chart(ctx, "messages", ctx._("Messages per day"), history.per_day(ctx.engine, account.id, DAYS)),
        _money_chart(ctx, "spend", ctx._("Spend per day"), currency, money),
        _delivery_chart(ctx, history.by_destination(ctx.engine, account.id, DAYS)),
    ]
    calls = records.per_day(ctx.engine, account.id, DAYS)
    if records.voice_available(ctx.settings) or any(d.calls for d in calls):
        charts.append(_minutes_chart(ctx, calls))
    return charts


def _connectors_chart(ctx: Ctx, rows: list[status.ConnectorTraffic]) -> Chart:
    title = ctx._("Traffic and errors per connector")
    names = [r.connector or ctx._("Not routed") for r in rows]
    delivered = Series(ctx._("Delivered"), [r.delivered for r in rows], "ok")
    pending = Series(ctx._("Pending"), [r.pending for r in rows], "pending")
    errors = Series(ctx._("Errors"), [r.errors for r in rows], "err")
    tips = [
        ctx._(
            "%(name)s: %(n)s messages, %(delivered)s delivered, %(errors)s errors, %(pending)s pending",
            name=names[i],
            n=r.messages,
            delivered=r.delivered,
            errors=r.errors,
            pending=r.pending,
        )
        for i, r in enumerate(rows)
    ]
    svg = bars(
        title,
        names,
        tips,
        [delivered, pending, errors],
        [f"{r.messages} · {_rate(r.error_rate)}" for r in rows],
        empty=ctx._("No messages in the last 30 days."),
    )
    caption = ctx._("Messages per connector, last %(n)s days", n=DAYS)
    headers = (ctx._("Connector"), ctx._("Errors"), ctx._("Error rate"))
    counts = [(r.messages, r.delivered, r.errors, r.pending, r.error_rate) for r in rows]
    return Chart(
        "connectors",
        title,
        svg,
        _outcomes_table(ctx, caption, headers, names, counts),
        series=[delivered, pending, errors],
        notes=[
            ctx._(
                "Error rate: undelivered, rejected, expired or failed among the messages with a final "
                "state; the number before it is every message."
            )
        ],
    )


def _age(ctx: Ctx, since: datetime) -> str:
    seconds = max(0, int((now() - aware(since)).total_seconds()))
    if seconds < 120:
        return ctx._("%(n)s s", n=seconds)
    if seconds < 7200:
        return ctx._("%(n)s min", n=seconds // 60)
    return ctx._("%(n)s h", n=seconds // 3600)


def _queue_chart(ctx: Ctx, queue: status.Queue) -> Chart:
    title = ctx._("Queue depth")
    names = [ctx._(QUEUE_LABELS[s]) for s in status.QUEUE_STATES]
    counts = [queue.depth[s] for s in status.QUEUE_STATES]
    tips = [f"{names[i]}: {n}" for i, n in enumerate(counts)]
    svg = bars(title, names, tips, [Series(ctx._("Messages"), counts, "s1")], [str(n) for n in counts])
    notes = [ctx._("Messages in each state now.")]
    if queue.oldest_queued is not None:
        notes.append(ctx._("The oldest queued message has waited %(age)s.", age=_age(ctx, queue.oldest_queued)))
    table = Table(
        ctx._("Messages in each state now"),
        [ctx._("State"), ctx._("Messages")],
        [[names[i], str(n)] for i, n in enumerate(counts)],
    )
    return Chart("queue", title, svg, table, notes=notes)


def operator_charts(ctx: Ctx) -> list[Chart]:
    charts = [
        _messages_chart(
            ctx, "traffic", ctx._("Messages per day, all customers"), history.per_day(ctx.engine, None, DAYS)
        )
    ]
    revenue = ledger.spending(ctx.engine, None, DAYS) or ledger.spending(
        ctx.engine, None, DAYS, currencies=(ctx.settings.default_currency,)
    )
    for i, (currency, per_day) in enumerate(revenue.items()):
        charts.append(_money_chart(ctx, f"revenue-{i + 1}", ctx._("Revenue per day"), currency, per_day))
    charts.append(_connectors_chart(ctx, status.traffic_by_connector(ctx.engine, DAYS)))
    charts.append(_queue_chart(ctx, status.queue(ctx.engine)))
    return charts


def overview(ctx: Ctx) -> Response:
    """The operator's overview: traffic, revenue, connectors and the queue in charts."""
    return ctx.render("operator/overview.html", charts=operator_charts(ctx))
