"""Pricing a call: the block formula of VOICE.md, and the longest call money allows.

Pure functions on ``Decimal`` and whole seconds; nothing here touches the database.

- billed seconds ``b`` = ``init`` if ``d <= init`` else
  ``init + ceil((d - init) / block) * block``
- price = ``connect + rate * b / 60``, rounded half-up to 6 places once per call.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from uvox.db.schema import MICRO

SIXTY = Decimal(60)


@dataclass(frozen=True, slots=True)
class Tariff:
    """What one destination costs: ``rate`` a minute, ``connect`` once per answered call."""

    rate: Decimal
    connect: Decimal = Decimal(0)
    init_block: int = 60
    billing_block: int = 60

    def __post_init__(self) -> None:
        if self.init_block < 0 or self.billing_block < 1:
            raise ValueError("initblock must be >= 0 and billingblock >= 1")

    def billed_seconds(self, duration: int) -> int:
        """Seconds charged for ``duration`` whole seconds from the answer."""
        if duration <= self.init_block:
            return self.init_block
        blocks = -(-(duration - self.init_block) // self.billing_block)
        return self.init_block + blocks * self.billing_block

    def price_of_billed(self, billed: int) -> Decimal:
        return (self.connect + self.rate * billed / SIXTY).quantize(MICRO, rounding=ROUND_HALF_UP)

    def price(self, duration: int) -> Decimal:
        return self.price_of_billed(self.billed_seconds(duration))

    def limit(self, available: Decimal, max_seconds: int) -> tuple[int, Decimal] | None:
        """The call's time limit and the money to hold for it, or None when even the
        first block does not fit in ``available``.

        The limit is the largest billed ``b`` (``init`` or ``init + k * block``) whose
        price fits, capped by ``max_seconds``; the hold is the price of that limit, so
        a call that runs to its limit costs exactly what was held.
        """
        # The first block a second of talk costs: initblock, or one billingblock when initblock is 0.
        first = self.price_of_billed(self.billed_seconds(1))
        if first > available or available < 0:
            return None
        if self.rate <= 0:
            cap = max_seconds
        else:
            # Largest b with connect + rate*b/60 <= available, before rounding; then
            # walk to the block grid and correct for the half-up rounding by one block.
            raw = int((available - self.connect) * SIXTY / self.rate)
            if raw <= self.init_block:
                cap = self.init_block
            else:
                cap = self.init_block + (raw - self.init_block) // self.billing_block * self.billing_block
            while cap > self.init_block and self.price_of_billed(cap) > available:
                cap -= self.billing_block
            nxt = cap + self.billing_block if cap >= self.init_block else self.init_block
            while nxt <= max_seconds and self.price_of_billed(nxt) <= available:
                cap, nxt = nxt, nxt + self.billing_block
        limit = min(cap, max_seconds)
        if limit <= 0:
            return None
        return limit, self.price(limit)


#: How far before its limit a dialog the limit timer ended may be measured to end
#: (Kamailio's timer ticks by the second; the CDR counts from the 200 OK).
LIMIT_SLACK_SECONDS = 2


def reached_limit(duration: float | Decimal, limit: int) -> bool:
    """Whether a call Kamailio's dialog timer ended really ran to its limit. The same
    timer also ends dialogs whose ACK never came (a trunk that drops Record-Route);
    those are billed what they lasted, not the limit."""
    return limit > 0 and Decimal(str(duration)) >= limit - LIMIT_SLACK_SECONDS


def whole_seconds(duration: float | Decimal, limit: int, *, ended_by_limit: bool) -> int:
    """``d`` of VOICE.md: rounded up to a whole second; exactly the limit when the
    limit ended the call (never a second more), and never more than the limit."""
    d = Decimal(str(duration)) if not isinstance(duration, Decimal) else duration
    if ended_by_limit and reached_limit(d, limit):
        return limit
    if d <= 0:
        return 0
    whole = int(d.to_integral_value(rounding="ROUND_CEILING"))
    return min(whole, limit) if limit > 0 else whole
