"""Phone numbers: the manual's lenient input, normalised to E.164 by phonenumbers."""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

_WELL_FORMED = re.compile(r"\+?[0-9]{1,20}")
_IGNORED = str.maketrans("", "", " -\t")


class BadNumber(ValueError):
    """``code`` is 002 (malformed) or 014 (well-formed but no such number)."""

    def __init__(self, code: str, raw: str) -> None:
        super().__init__(f"{code}: {raw!r}")
        self.code = code
        self.raw = raw


@lru_cache(maxsize=65536)
def normalise(raw: str) -> str:
    """``"+1 305-888-8888"`` → ``"+13058888888"``.

    Digits with the country code, an optional leading ``+``, spaces and dashes
    ignored (API.md). Anything else is malformed (002). A well-formed number whose
    country code does not exist or whose length is impossible for it is 014. We
    check "possible", not "valid": numbering plans change faster than any library,
    and refusing a real new range would lose a customer's message.
    """
    cleaned = raw.translate(_IGNORED)
    if not _WELL_FORMED.fullmatch(cleaned):
        raise BadNumber("002", raw)
    digits = cleaned.lstrip("+")
    if len(digits) < 7 or len(digits) > 15:
        raise BadNumber("014", raw)
    try:
        parsed = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        raise BadNumber("014", raw) from None
    if not phonenumbers.is_possible_number(parsed):
        raise BadNumber("014", raw)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


# API.md: "up to 11 GSM characters". Of the GSM 03.38 basic set we take the part that
# is also printable ASCII, because SMSCs read an alphanumeric source_addr as ASCII:
# an accented letter would reach the phone as whatever the carrier made of it.
# (``[\]^{|}~`` are GSM extension characters, two septets each, and the backtick is
# not GSM at all.)
_ALNUM_SENDER = re.compile(r"[A-Za-z0-9 !\"#$%&'()*+,\-./:;<=>?@_]{1,11}")
_NUMERIC_SENDER = re.compile(r"\+?[0-9]{1,15}")


@lru_cache(maxsize=4096)  # a customer sends from a few names, over and over
def normalise_sender(raw: str | None) -> str:
    """A numeric sender (up to 15 digits) or an alphanumeric one (up to 11 characters).

    Returns "" when none was given (the route's generic number is used). Raises
    ValueError for anything a carrier would refuse.
    """
    if raw is None:
        return ""
    value = raw.strip()
    if not value:
        return ""
    compact = value.translate(_IGNORED)
    if _NUMERIC_SENDER.fullmatch(compact):
        return compact.lstrip("+")
    if _ALNUM_SENDER.fullmatch(value) and any(not (c.isdigit() or c in " +") for c in value):
        return value
    raise ValueError(
        "a sender is a number of up to 15 digits, or up to 11 characters: letters A-Z, "
        "digits, space and !\"#$%&'()*+,-./:;<=>?@_"
    )


def is_alphanumeric(sender: str) -> bool:
    return bool(sender) and not sender.isdigit()
