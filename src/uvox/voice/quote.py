"""What a call would cost: the rate, the blocks and the price of N minutes.

The same steps as a real call, through the same functions: the dialled number read
by :func:`authorize.dialable_digits`, the rate by the plan's longest-prefix lookup,
the tariff by :func:`authorize.tariff_of` and the price by :class:`rating.Tariff`,
so a quote cannot disagree with what the call is then charged.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.engine import Engine

from uvox.billing.plans import lookup as rate_lookup
from uvox.db.session import read

from .authorize import dialable_digits, tariff_of
from .rating import Tariff

#: Longest call a quote prices (a day); a real call is capped by UVOX_VOICE_MAX_CALL_SECONDS.
MAX_MINUTES = 1440


class NotANumber(ValueError):
    """The dialled text is not a phone number."""


class NoRate(LookupError):
    """The account's plan has no rate for the number."""


@dataclass(frozen=True)
class CallQuote:
    number: str  #: E.164, with +
    destination: str
    tariff: Tariff
    minutes: int
    billed: int  #: seconds charged for ``minutes`` minutes of talk
    price: Decimal


def quote(engine: Engine, plan_id: int, dialled: str, minutes: int) -> CallQuote:
    if not 1 <= minutes <= MAX_MINUTES:
        raise ValueError(f"minutes must be a whole number from 1 to {MAX_MINUTES}")
    digits = dialable_digits(dialled)
    if digits is None:
        raise NotANumber(dialled)
    with read(engine) as conn:
        rate = rate_lookup(conn, plan_id, digits)
    if rate is None:
        raise NoRate(digits)
    tariff = tariff_of(rate)
    billed = tariff.billed_seconds(minutes * 60)
    return CallQuote("+" + digits, rate.destination, tariff, minutes, billed, tariff.price_of_billed(billed))
