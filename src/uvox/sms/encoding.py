"""SMS text encoding: GSM 03.38 or UCS-2, segment count, and concatenated parts.

The character table itself comes from the ``gsm0338`` codec. What no library does
correctly is the splitting: smpplib cuts the encoded bytes every 153 bytes, which can
separate an escape (0x1B) from the character it escapes, or the two halves of a
UTF-16 surrogate pair, so the handset shows garbage at the seam. We split on
character boundaries here, by hand, and build the 6-byte concatenation UDH
(IEI 0x00, 8-bit reference) that every SMSC understands.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)

GSM7 = "gsm7"
UCS2 = "ucs2"

#: SMPP data_coding values.
DATA_CODING = {GSM7: 0x00, UCS2: 0x08}

#: Limits in units of the encoding: septets for GSM-7, UTF-16 code units for UCS-2.
SINGLE_LIMIT = {GSM7: 160, UCS2: 70}
PART_LIMIT = {GSM7: 153, UCS2: 67}

#: Longest text accepted, in characters (Twilio's limit, about 10 GSM segments).
MAX_CHARS = 1600

_CODEC = "gsm03.38"


@dataclass(frozen=True)
class EncodedText:
    """A text ready for SMPP: its encoding, how it is billed, and the bytes of each part."""

    text: str
    encoding: str
    units: int
    segments: int
    parts: tuple[bytes, ...]

    @property
    def data_coding(self) -> int:
        return DATA_CODING[self.encoding]

    @property
    def esm_class(self) -> int:
        """0x40 (UDHI) when the parts carry a concatenation header."""
        return 0x40 if len(self.parts) > 1 else 0x00


def _gsm_tables() -> tuple[frozenset[str], frozenset[str]]:
    """The GSM 03.38 basic and extension characters, read from the codec once."""
    basic = {bytes([b]).decode(_CODEC, errors="ignore") for b in range(128) if b != 0x1B}
    ext = {(b"\x1b" + bytes([b])).decode(_CODEC, errors="ignore") for b in range(128)}
    basic.discard("")
    ext = {c for c in ext if len(c) == 1 and c not in basic}
    return frozenset(basic), frozenset(ext)


GSM_BASIC, GSM_EXTENSION = _gsm_tables()
GSM_ALL = GSM_BASIC | GSM_EXTENSION


def measure(text: str) -> tuple[str, int, int]:
    """(encoding, units, segments) without building the parts: what intake bills."""
    chars = set(text)
    if chars <= GSM_ALL:
        units = len(text) + sum(text.count(c) for c in chars & GSM_EXTENSION)
        if units <= SINGLE_LIMIT[GSM7]:
            return GSM7, units, 1
        return GSM7, units, segment_count(text)
    units = len(text.encode("utf-16-le")) // 2
    if units <= SINGLE_LIMIT[UCS2]:
        return UCS2, units, 1
    return UCS2, units, segment_count(text)


def _char_units(text: str, encoding: str) -> list[bytes]:
    """Each character's encoded bytes, so that splits fall between characters."""
    if encoding == GSM7:
        return [ch.encode(_CODEC) for ch in text]
    out: list[bytes] = []
    for ch in text:
        out.append(ch.encode("utf-16-be"))
    return out


def _unit_len(chunk: bytes, encoding: str) -> int:
    return len(chunk) if encoding == GSM7 else len(chunk) // 2


def detect(text: str) -> str:
    """GSM-7 when every character is in the GSM 03.38 table (with its extension), else UCS-2."""
    return GSM7 if set(text) <= GSM_ALL else UCS2


def _split(text: str) -> tuple[str, int, list[bytes]]:
    """(encoding, units, part bodies): one body when the text fits a single SMS,
    otherwise bodies of at most PART_LIMIT units, cut between characters."""
    encoding = detect(text)
    chars = _char_units(text, encoding)
    units = sum(_unit_len(c, encoding) for c in chars)
    if units <= SINGLE_LIMIT[encoding]:
        return encoding, units, [b"".join(chars)]
    limit = PART_LIMIT[encoding]
    bodies: list[bytes] = []
    current: list[bytes] = []
    used = 0
    for chunk in chars:
        n = _unit_len(chunk, encoding)
        if used + n > limit:
            bodies.append(b"".join(current))
            current, used = [], 0
        current.append(chunk)
        used += n
    if current:
        bodies.append(b"".join(current))
    return encoding, units, bodies


def encode(text: str, reference: int | None = None) -> EncodedText:
    """Encode ``text`` for SMPP.

    GSM-7 parts are unpacked septets (one byte each, an extension character being
    0x1B plus its code, so it counts two), which is what data_coding 0 carries in
    submit_sm. UCS-2 parts are UTF-16BE; a character outside the BMP takes two units.
    """
    encoding, units, bodies = _split(text)
    if len(bodies) == 1:
        return EncodedText(text, encoding, units, 1, (bodies[0],))
    total = len(bodies)
    if total > 255:
        raise ValueError("text too long for one concatenated message")
    ref = secrets.randbelow(256) if reference is None else reference & 0xFF
    parts = tuple(bytes((0x05, 0x00, 0x03, ref, total, i)) + body for i, body in enumerate(bodies, start=1))
    return EncodedText(text, encoding, units, total, parts)


def segment_count(text: str) -> int:
    """How many SMS a text is billed as."""
    return len(_split(text)[2])


def room_left(text: str) -> int:
    """Units still free in the text's last segment (GSM-7 septets, where an extension
    character such as € takes two; UCS-2 code units): what can be added before the
    text costs one segment more. Counted on the parts :func:`encode` sends."""
    encoding, units, bodies = _split(text)
    if len(bodies) == 1:
        return SINGLE_LIMIT[encoding] - units
    return PART_LIMIT[encoding] - _unit_len(bodies[-1], encoding)


def decode(data: bytes, data_coding: int) -> str:
    """Inverse of a part body (without UDH), for receipts and the simulator's records."""
    if data_coding == DATA_CODING[UCS2]:
        return data.decode("utf-16-be", errors="replace")
    return data.decode(_CODEC, errors="replace")
