"""Parsing and showing amounts. Decimal only; a float never touches money."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from functools import lru_cache

from uvox.db.schema import MICRO


def parse_amount(raw: str | int | Decimal, *, allow_negative: bool = False) -> Decimal:
    """Parse an amount typed by a person ("10", "10.50", "0.0285"); refuse anything odd."""
    if isinstance(raw, float):
        raise ValueError("amounts are never floats")
    text = str(raw).strip().replace(",", ".") if not isinstance(raw, Decimal) else raw
    try:
        value = Decimal(text)
    except (InvalidOperation, ValueError) as exc:
        raise ValueError(f"not an amount: {raw!r}") from exc
    if not value.is_finite():
        raise ValueError(f"not an amount: {raw!r}")
    if abs(value) >= Decimal(10) ** 13:
        raise ValueError(f"too large: {raw!r}")
    if value.quantize(MICRO) != value:
        raise ValueError(f"at most 6 decimals: {raw!r}")
    if value < 0 and not allow_negative:
        raise ValueError(f"must not be negative: {raw!r}")
    return value


def show(value: Decimal, min_places: int = 2) -> str:
    """At least ``min_places`` decimals, more only where the amount has them."""
    if min_places == 2 and value:  # every reply shows a price; a deck has few distinct ones
        return _show2(value)
    return _show(value, min_places)


@lru_cache(maxsize=4096)
def _show2(value: Decimal) -> str:
    # Equal non-zero Decimals ("0.008", "0.0080") show the same, so caching by value is exact.
    return _show(value, 2)


def _show(value: Decimal, min_places: int) -> str:
    value = Decimal(value)
    normal = value.normalize()
    exponent = normal.as_tuple().exponent
    places = max(min_places, -exponent if isinstance(exponent, int) and exponent < 0 else 0)
    return f"{value:.{places}f}"
