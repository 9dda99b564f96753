"""Small checks on text that comes from outside."""

from __future__ import annotations


def is_digits(value: str) -> bool:
    """ASCII 0-9 only, at least one. ``str.isdigit()`` also says yes to "²" (which
    ``int()`` refuses: a 500 found by tests/api/v1/test_properties.py) and to other
    scripts' digits, none of which is an id, a prefix or a length here."""
    return value.isascii() and value.isdigit()
