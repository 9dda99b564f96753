from __future__ import annotations

import pytest

from uvox.sms.numbers import BadNumber, normalise, normalise_sender


@pytest.mark.parametrize(
    "raw,e164",
    [
        ("13058888888", "+13058888888"),
        ("+1 305-888-8888", "+13058888888"),
        ("584121234567", "+584121234567"),
        ("13779999999", "+13779999999"),
    ],
)
def test_normalise(raw, e164):
    assert normalise(raw) == e164


@pytest.mark.parametrize(
    "raw,code", [("13055454xx", "002"), ("", "002"), ("(305) 888", "002"), ("999123456789", "014"), ("123", "014")]
)
def test_bad(raw, code):
    with pytest.raises(BadNumber) as exc:
        normalise(raw)
    assert exc.value.code == code


def test_senders():
    assert normalise_sender("UVox") == "UVox"
    assert normalise_sender("+1 377 999 9999") == "13779999999"
    assert normalise_sender(None) == ""
    assert normalise_sender("Promo 24/7!") == "Promo 24/7!"  # GSM characters, as API.md says
    assert normalise_sender("a<b") == "a<b"
    for bad in ("TwelveLetter", "12345678901234567", "Caf\u00e9", "a[b]", "a~b", "a`b", "line\nbreak"):
        with pytest.raises(ValueError):
            normalise_sender(bad)
