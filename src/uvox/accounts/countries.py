"""Which destination countries an account sends to: an allow list and a block list.

A country is the ISO 3166-1 alpha-2 code phonenumbers gives the number's region
(``+1 305 ...`` is ``US``, ``+1 416 ...`` is ``CA``, ``+58 412 ...`` is ``VE``). A
number is refused when its country is on the block list, or when the allow list is
not empty and its country is not on it; a number phonenumbers cannot place in one
country (a non-geographic ``+800`` or ``+882`` number, region ``001``) is refused
whenever there is an allow list. Both lists apply to OTP-api and to sms-api (code
152), so a leaked key or a pumping script cannot reach a country the account never
sends to.

The lists are columns of the account, read with it: the API's key cache
(uvox.accounts.authcache) carries them, so a check costs a send no query, and a
change reaches every process on its next request.
"""

from __future__ import annotations

from functools import lru_cache

import phonenumbers
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from uvox.accounts import authcache
from uvox.db import schema as t
from uvox.db.session import write

#: The code of a number that belongs to no single country (phonenumbers' "world").
NON_GEOGRAPHIC = "001"
#: Countries phonenumbers knows, the only codes a list may hold.
KNOWN = frozenset(phonenumbers.SUPPORTED_REGIONS)
MAX_CODES = 250


class BadCountry(ValueError):
    """A list names something that is not a known ISO country code."""

    def __init__(self, codes: list[str]) -> None:
        super().__init__("not ISO 3166 country codes: " + ", ".join(codes))
        self.codes = codes


def parse(raw: str | None) -> tuple[str, ...]:
    """``"es, VE ve"`` → ``("ES", "VE")``: codes separated by commas or spaces, any case,
    duplicates dropped, sorted. BadCountry names every code that is not known."""
    items = (raw or "").replace(",", " ").split()
    codes = sorted({c.strip().upper() for c in items if c.strip()})
    bad = [c for c in codes if c not in KNOWN]
    if bad:
        raise BadCountry(bad[:20])
    if len(codes) > MAX_CODES:
        raise BadCountry(["(too many)"])
    return tuple(codes)


def stored(value: str | None) -> tuple[str, ...]:
    """A list as read from the database."""
    return tuple(c for c in (value or "").split(",") if c)


@lru_cache(maxsize=65536)
def country_of(e164: str) -> str:
    """The ISO code of a normalised number's country, or ``001`` when it has none."""
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return NON_GEOGRAPHIC
    region = phonenumbers.region_code_for_number(parsed)
    if not region:
        # A possible but not (yet) valid number of a shared country code (+1, +7, +44...):
        # the code's main country, as its numbering plan would most likely place it.
        region = phonenumbers.region_code_for_country_code(parsed.country_code)
    return region if region in KNOWN else NON_GEOGRAPHIC


def refused(allowed: tuple[str, ...], blocked: tuple[str, ...], e164: str) -> str | None:
    """The number's country when the lists refuse it, else None."""
    if not allowed and not blocked:
        return None
    country = country_of(e164)
    if country in blocked or (allowed and country not in allowed):
        return country
    return None


def set_lists(
    engine: Engine, account_id: int, *, allowed: tuple[str, ...] | None = None, blocked: tuple[str, ...] | None = None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Replace the lists given (None: leave that one as it is); returns both as stored.
    Every process sees the change on its next request."""
    with write(engine) as conn:
        values = {}
        if allowed is not None:
            values["allowed_countries"] = ",".join(allowed) or None
        if blocked is not None:
            values["blocked_countries"] = ",".join(blocked) or None
        if values:
            conn.execute(sa.update(t.accounts).where(t.accounts.c.id == account_id).values(**values))
            authcache.invalidate(conn)
        row = conn.execute(
            sa.select(t.accounts.c.allowed_countries, t.accounts.c.blocked_countries).where(
                t.accounts.c.id == account_id
            )
        ).one()
    return stored(row.allowed_countries), stored(row.blocked_countries)
