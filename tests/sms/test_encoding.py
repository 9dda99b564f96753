"""GSM 03.38 / UCS-2 detection, segments and concatenated parts."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from uvox.sms import encoding


def test_single_gsm():
    e = encoding.encode("Hola mundo")
    assert (e.encoding, e.segments, e.data_coding, e.esm_class) == ("gsm7", 1, 0, 0)
    assert e.parts == (b"Hola mundo",)


def test_extension_characters_are_two_septets():
    e = encoding.encode("€[]{}")
    assert e.encoding == "gsm7" and e.units == 10
    assert e.parts[0].startswith(b"\x1be")


def test_limits():
    assert encoding.encode("a" * 160).segments == 1
    assert encoding.encode("a" * 161).segments == 2
    assert encoding.encode("a" * 306).segments == 2
    assert encoding.encode("a" * 307).segments == 3
    assert encoding.encode("ñ" * 70 + "π").segments == 2  # π forces UCS-2: 71 > 70
    assert encoding.encode("π" * 70).segments == 1
    assert encoding.encode("π" * 134).segments == 2
    assert encoding.encode("π" * 135).segments == 3


def test_concatenation_udh():
    e = encoding.encode("a" * 400, reference=0x42)
    assert e.esm_class == 0x40 and e.segments == 3
    for i, part in enumerate(e.parts, start=1):
        assert part[:6] == bytes([5, 0, 3, 0x42, 3, i])
    assert b"".join(p[6:] for p in e.parts) == b"a" * 400
    assert all(len(p) - 6 <= 153 for p in e.parts)


def test_split_never_cuts_an_escape_or_a_surrogate():
    e = encoding.encode("a" * 152 + "€" + "b" * 10)
    assert e.parts[0][6:].endswith(b"a")  # the € moved whole to part 2
    assert e.parts[1][6:].startswith(b"\x1be")
    u = encoding.encode("x" * 66 + "😀" + "y" * 10)
    body = u.parts[0][6:]
    assert len(body) == 132 and body.decode("utf-16-be") == "x" * 66


@given(st.text(max_size=600))
def test_parts_reassemble_to_the_text(text):
    e = encoding.encode(text)
    bodies = [p[6:] if e.segments > 1 else p for p in e.parts]
    dc = e.data_coding
    assert "".join(encoding.decode(b, dc) for b in bodies) == text
    assert e.segments == encoding.segment_count(text) == len(e.parts)
    assert encoding.measure(text) == (e.encoding, e.units, e.segments)
