"""Other spellings of an SMSC message id, for receipts that do not match it exactly.

SMPP says the id in a receipt is the one submit_sm_resp gave, but carriers differ:
many answer submit_sm in hex and print the receipt's ``id:`` in decimal (or the other
way round: Kannel's ``msg-id-type`` and Jasmin's id handling exist for this), pad with
leading zeros, or change the case of hex digits. No library covers it, so this small
piece is ours.

A spelling is a ``Form``: which conversion (none, decimal→hex, hex→decimal), which
case, and which zero-padded width. The store tries a receipt's id exactly first;
only when that misses does it ask for these, and it remembers per connector the
form that matched so later receipts need one indexed lookup, not a search.
"""

from __future__ import annotations

from dataclasses import dataclass

from uvox.strings import is_digits

_HEX = frozenset("0123456789abcdefABCDEF")
#: Widest zero padding tried: 20 digits hold any 64-bit number in decimal.
MAX_PAD = 20


@dataclass(frozen=True)
class Form:
    base: str  # "same", "dec2hex", "hex2dec"
    upper: bool = False
    width: int = 0  # 0: no padding

    def apply(self, message_id: str) -> str | None:
        """This form of ``message_id``, or None when the conversion does not apply."""
        core = _core(message_id, self.base)
        if core is None:
            return None
        core = core.upper() if self.upper else core.lower()
        if self.width:
            if self.width <= len(core) or not all(ch in _HEX for ch in core):
                return None
            core = core.rjust(self.width, "0")
        return core


def _core(message_id: str, base: str) -> str | None:
    s = message_id.strip()
    if not s:
        return None
    if base == "same":
        return s.lstrip("0") or "0"
    if base == "dec2hex":
        return format(int(s), "x") if is_digits(s) else None
    if base == "hex2dec":
        return str(int(s, 16)) if all(ch in _HEX for ch in s) else None
    raise ValueError(base)


def _all_forms() -> list[Form]:
    """Most plausible first: case and zeros before conversions, short paddings before long."""
    forms = [Form("same", False), Form("same", True)]
    for base in ("dec2hex", "hex2dec"):
        forms += [Form(base, False), Form(base, True)]
    for base in ("same", "dec2hex", "hex2dec"):
        for width in range(2, MAX_PAD + 1):
            forms += [Form(base, False, width), Form(base, True, width)]
    return forms


FORMS = _all_forms()


def alternatives(message_id: str) -> list[tuple[Form, str]]:
    """Every other spelling of ``message_id`` with the form that makes it, most plausible first."""
    seen = {message_id}
    out = []
    for form in FORMS:
        alt = form.apply(message_id)
        if alt is not None and alt not in seen:
            seen.add(alt)
            out.append((form, alt))
    return out
