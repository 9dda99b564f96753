"""Charts drawn on the server as SVG: columns over days, horizontal bars over names.

Hand-written rather than a charting library's: the portal's Content-Security-Policy
allows no inline style and no script, and pygal (the maintained Python SVG library)
puts a ``<style>`` element and JavaScript tooltips in every chart. These are a few
``<rect>`` and ``<text>`` elements coloured by classes of portal.css, with the
browser's own tooltips (``<title>``), no script at all, and a ``viewBox`` so that
they scale to the width of a phone or a desktop column.

The neutral parts (grid, axis, track) also carry their colour as attributes, so a
chart read without the stylesheet (a feed reader, a saved SVG) is not black boxes.

Every chart comes with the numbers behind it (:class:`Table`), which the page shows
as a table with a caption: the chart is for the eye, the table for screen readers
and for anyone who wants the exact figures.

Amounts are ``Decimal`` here too: a bar's height is a ratio of Decimals, rounded to
a tenth of a pixel only when written out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal

from markupsafe import Markup, escape

Number = int | Decimal

WIDTH = 400  # the viewBox's width; the chart itself is as wide as its column
#: Room for the y axis' labels, the x axis' labels, and above the tallest bar.
LEFT, RIGHT, TOP, BOTTOM = 46, 8, 10, 22
PLOT_HEIGHT = 150
ROW = 26  # height of one bar of a horizontal chart
#: Width of one character of a bar's name at the largest font portal.css gives it
#: (13 units on a phone): the names' column is as wide as its longest name.
CHAR = Decimal("7.2")
VALUES = 96  # width of the value written after each horizontal bar
MAX_LABEL = 22  # characters of a name shown beside its bar (all of it in the tooltip)


@dataclass(frozen=True)
class Series:
    """One set of values, drawn in one colour; several are stacked."""

    name: str
    values: Sequence[Number]
    #: CSS class of its colour (portal.css): s1, s2, ok, err, pending.
    tone: str = "s1"


@dataclass(frozen=True)
class Table:
    caption: str
    head: Sequence[str]
    rows: Sequence[Sequence[str]]


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    svg: Markup
    table: Table
    #: Shown as a legend under the chart when there is more than one.
    series: Sequence[Series] = ()
    notes: Sequence[str] = field(default_factory=tuple)


def _px(value: Decimal | int) -> str:
    text = f"{Decimal(value):.1f}"
    return text[:-2] if text.endswith(".0") else text


def nice_step(largest: Decimal, intervals: int = 4, whole: bool = False) -> Decimal:
    """The smallest step of 1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten whose
    ``intervals`` reach ``largest`` (the y axis of 0-6 for 5 messages, 0-24 for 23,
    0-0.024 for 0.0235 US$); ``whole``: counts, so whole steps of at least 1."""
    if largest <= 0:
        return Decimal(1)
    raw = largest / intervals
    power = Decimal(10) ** (raw.adjusted())
    for m in (
        Decimal(1),
        Decimal("1.5"),
        Decimal(2),
        Decimal("2.5"),
        Decimal(3),
        Decimal(4),
        Decimal(5),
        Decimal(6),
        Decimal(8),
        Decimal(10),
    ):
        step = m * power
        if whole and (step < 1 or step != step.to_integral_value()):
            continue
        if step * intervals >= largest:
            # 2.5E+4 would be the normal form of 25000: whole steps are written whole.
            return step.quantize(Decimal(1)) if step == step.to_integral_value() else step
    return (Decimal(10) * power).to_integral_value(ROUND_CEILING)


def _svg(title: str, height: int, body: list[str], css: str) -> Markup:
    return Markup(
        f'<svg class="chart-svg {css}" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" '
        f'aria-label="{escape(title)}" focusable="false"><title>{escape(title)}</title>' + "".join(body) + "</svg>"
    )


def columns(
    title: str,
    labels: Sequence[str],
    tips: Sequence[str],
    series: Sequence[Series],
    fmt: Callable[[Decimal], str],
    *,
    whole: bool = False,
    empty: str = "",
) -> Markup:
    """Vertical bars, one slot per label (a day), the series stacked.

    ``labels``: what the x axis writes under each slot ("" for none: 30 days
    cannot all be named on a phone); ``tips``: each slot's tooltip; ``fmt``: the y
    axis' numbers; ``whole``: the values are counts; ``empty``: written across the
    plot when every value is zero."""
    n = len(labels)
    plot_w = Decimal(WIDTH - LEFT - RIGHT)
    plot_h = Decimal(PLOT_HEIGHT)
    totals = [sum((Decimal(s.values[i]) for s in series), Decimal(0)) for i in range(n)]
    step = nice_step(max(totals, default=Decimal(0)), whole=whole)
    top = step * 4
    height = TOP + PLOT_HEIGHT + BOTTOM
    base = Decimal(TOP) + plot_h
    out: list[str] = []
    for k in range(5):  # grid lines and the y axis' numbers
        y = base - plot_h * k / 4
        out.append(
            f'<line class="grid" stroke="#e3e8ee" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_px(y)}" y2="{_px(y)}"/>'
        )
        out.append(
            f'<text class="tick" x="{LEFT - 5}" y="{_px(y + 4)}" text-anchor="end">{escape(fmt(step * k))}</text>'
        )
    slot = plot_w / n if n else plot_w
    for i in range(n):
        x = Decimal(LEFT) + slot * i
        out.append(
            f'<g class="slot"><title>{escape(tips[i])}</title>'
            f'<rect class="hit" fill="transparent" x="{_px(x)}" y="{TOP}" width="{_px(slot)}" height="{PLOT_HEIGHT}"/>'
        )
        y = base
        for s in series:
            v = Decimal(s.values[i])
            if v <= 0:
                continue
            h = plot_h * v / top
            y -= h
            out.append(
                f'<rect class="bar {s.tone}" x="{_px(x + slot * Decimal("0.15"))}" y="{_px(y)}" '
                f'width="{_px(slot * Decimal("0.7"))}" height="{_px(h)}"/>'
            )
        out.append("</g>")
        if labels[i]:
            anchor, lx = "middle", x + slot / 2
            if i == n - 1:
                anchor, lx = "end", Decimal(WIDTH - RIGHT)
            elif i == 0:
                anchor, lx = "start", Decimal(LEFT)
            out.append(
                f'<text class="label" x="{_px(lx)}" y="{height - 6}" text-anchor="{anchor}">{escape(labels[i])}</text>'
            )
    out.append(
        f'<line class="axis" stroke="#9aa9b8" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_px(base)}" y2="{_px(base)}"/>'
    )
    if empty and not any(totals):
        out.append(
            f'<text class="empty" x="{_px(Decimal(LEFT) + plot_w / 2)}" y="{_px(Decimal(TOP) + plot_h / 2)}" '
            f'text-anchor="middle">{escape(empty)}</text>'
        )
    return _svg(title, height, out, "columns")


def bars(
    title: str,
    labels: Sequence[str],
    tips: Sequence[str],
    series: Sequence[Series],
    values: Sequence[str],
    *,
    top: Decimal | None = None,
    empty: str = "",
) -> Markup:
    """Horizontal bars, one row per label (a destination, a connector), the series
    stacked, ``values[i]`` written after row i. ``top``: the value of a full bar
    (100 for percentages; by default the largest row)."""
    n = len(labels)
    totals = [sum((Decimal(s.values[i]) for s in series), Decimal(0)) for i in range(n)]
    full = top if top is not None else max(totals, default=Decimal(0))
    height = TOP + max(n, 1) * ROW + 4
    names = [label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…" for label in labels]
    left = Decimal(10) + CHAR * max((len(name) for name in names), default=4)
    width = Decimal(WIDTH - VALUES) - left
    out: list[str] = []
    for i in range(n):
        y = TOP + i * ROW
        out.append(
            f'<g class="row"><title>{escape(tips[i])}</title>'
            f'<rect class="hit" fill="transparent" x="0" y="{y}" width="{WIDTH}" height="{ROW}"/>'
            f'<text class="label" x="{_px(left - 6)}" y="{y + 17}" text-anchor="end">{escape(names[i])}</text>'
            f'<rect class="track" fill="#eef2f6" x="{_px(left)}" y="{y + 5}" width="{_px(width)}" height="{ROW - 10}"/>'
        )
        x = left
        for s in series:
            v = Decimal(s.values[i])
            if v <= 0 or full <= 0:
                continue
            w = width * min(v, full) / full
            out.append(f'<rect class="bar {s.tone}" x="{_px(x)}" y="{y + 5}" width="{_px(w)}" height="{ROW - 10}"/>')
            x += w
        out.append(f'<text class="value" x="{_px(left + width + 6)}" y="{y + 17}">{escape(values[i])}</text></g>')
    if not n and empty:
        out.append(
            f'<text class="empty" x="{WIDTH // 2}" y="{TOP + ROW // 2 + 4}" text-anchor="middle">{escape(empty)}</text>'
        )
    return _svg(title, height, out, "bars")
