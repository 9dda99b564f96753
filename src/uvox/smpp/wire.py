"""A lean codec for the few PDUs that carry the traffic: submit_sm out, submit_sm_resp
and deliver_sm in, deliver_sm_resp back (and the same four on the simulator's side).

Written by hand on purpose. smpplib builds each PDU as a generic ``Command`` object
that walks its parameter table field by field (setattr, getattr, a struct format
looked up per field), and its client reads one PDU with two ``recv`` calls. At
thousands of messages a second that was over a quarter of the CPU of the process
that runs the dispatcher (py-spy, bench/smpp_bench.py e2e): the line itself is
simple, fixed SMPP 3.4 layout, so these few PDUs are packed and unpacked here with
one ``struct`` call each, and the connector reads whatever the socket holds in one
``recv`` and frames it with ``Framer``.

Everything else (bind, unbind, enquire_link, generic_nack, anything unusual) still
goes through smpplib; a submit_sm with fields beyond the usual ones is built by
smpplib too. tests/smpp/test_wire.py checks that these bytes are smpplib's bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

SUBMIT_SM = 0x00000004
SUBMIT_SM_RESP = 0x80000004
DELIVER_SM = 0x00000005
DELIVER_SM_RESP = 0x80000005
DATA_SM_RESP = 0x80000103

_HEADER = struct.Struct(">LLLL")
_U8 = struct.Struct(">B")

#: TLV tags read from a deliver_sm (SMPP 3.4 §5.3.2).
TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_MESSAGE_PAYLOAD = 0x0424
TLV_MESSAGE_STATE = 0x0427

_COMMAND_NAMES = {SUBMIT_SM: "submit_sm", DELIVER_SM: "deliver_sm"}

#: The submit_sm fields ``encode_submit_sm`` knows; any other field goes to smpplib.
SUBMIT_FIELDS = frozenset(
    {
        "service_type",
        "source_addr_ton",
        "source_addr_npi",
        "source_addr",
        "dest_addr_ton",
        "dest_addr_npi",
        "destination_addr",
        "esm_class",
        "data_coding",
        "short_message",
        "registered_delivery",
    }
)


def _cstr(value: str | bytes | None, maximum: int) -> bytes:
    """A C-octet string cut to its field's maximum, as smpplib cuts it."""
    if isinstance(value, str):
        value = value.encode("latin-1")
    value = value or b""
    if len(value) >= maximum:
        value = value[: maximum - 1]
    return value + b"\x00"


def encode_submit_sm(sequence: int, f: Mapping[str, Any]) -> bytes:
    """submit_sm with protocol_id, priority, schedule/validity, replace and default id at 0."""
    return encode_sm(SUBMIT_SM, sequence, f)


def encode_sm(command_id: int, sequence: int, f: Mapping[str, Any], tlvs: bytes = b"") -> bytes:
    """submit_sm or deliver_sm: SMPP 3.4 gives both the same mandatory fields."""
    sm: str | bytes = f.get("short_message") or b""
    if isinstance(sm, str):
        sm = sm.encode("latin-1")
    body = b"".join(
        (
            _cstr(f.get("service_type"), 6),
            bytes((f.get("source_addr_ton") or 0, f.get("source_addr_npi") or 0)),
            _cstr(f.get("source_addr"), 21),
            bytes((f.get("dest_addr_ton") or 0, f.get("dest_addr_npi") or 0)),
            _cstr(f.get("destination_addr"), 21),
            # esm_class, protocol_id, priority_flag, schedule_delivery_time "", validity_period ""
            bytes((f.get("esm_class") or 0, 0, 0, 0, 0)),
            # registered_delivery, replace_if_present_flag, data_coding, sm_default_msg_id, sm_length
            bytes((f.get("registered_delivery") or 0, 0, f.get("data_coding") or 0, 0, len(sm))),
            sm,
            tlvs,
        )
    )
    return _HEADER.pack(16 + len(body), command_id, 0, sequence) + body


def tlv_cstr(tag: int, value: str) -> bytes:
    data = value.encode("latin-1") + b"\x00"
    return struct.pack(">HH", tag, len(data)) + data


def tlv_u8(tag: int, value: int) -> bytes:
    return struct.pack(">HHB", tag, 1, value)


def encode_resp(command_id: int, sequence: int, status: int = 0, message_id: str = "") -> bytes:
    """submit_sm_resp / deliver_sm_resp: a message_id C-string, empty on errors."""
    body = message_id.encode("latin-1") + b"\x00"
    return _HEADER.pack(16 + len(body), command_id, status, sequence) + body


def encode_deliver_sm_resp(sequence: int, status: int = 0) -> bytes:
    """deliver_sm_resp: its message_id is unused and sent empty."""
    return encode_resp(DELIVER_SM_RESP, sequence, status)


class Framer:
    """Cuts a byte stream into whole PDUs; keeps a partial one for the next chunk."""

    def __init__(self, max_length: int = 1 << 20) -> None:
        self._buf = b""
        self.max_length = max_length

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf + data if self._buf else data
        out = []
        pos, end = 0, len(buf)
        while end - pos >= 16:
            (length,) = struct.unpack_from(">L", buf, pos)
            if length < 16 or length > self.max_length:
                raise ConnectionError(f"broken PDU: command_length {length}")
            if end - pos < length:
                break
            out.append(buf[pos : pos + length])
            pos += length
        self._buf = buf[pos:]
        return out


def header(raw: bytes) -> tuple[int, int, int, int]:
    """(length, command_id, status, sequence)."""
    return _HEADER.unpack_from(raw)


def submit_sm_resp_id(raw: bytes) -> str:
    """The message_id of a submit_sm_resp (empty when the body is absent, as on errors)."""
    end = raw.find(b"\x00", 16)
    return raw[16 : end if end >= 0 else len(raw)].decode("latin-1")


class ShortMessage:
    """The fields of a submit_sm or deliver_sm that their readers use.

    Named as smpplib names them (C-strings as bytes), so ``pdu.parse_receipt`` and
    the simulator read this and an smpplib PDU alike.
    """

    __slots__ = (
        "command",
        "sequence",
        "service_type",
        "source_addr_ton",
        "source_addr_npi",
        "source_addr",
        "dest_addr_ton",
        "dest_addr_npi",
        "destination_addr",
        "esm_class",
        "registered_delivery",
        "data_coding",
        "short_message",
        "receipted_message_id",
        "message_state",
        "message_payload",
    )

    command: str
    sequence: int
    service_type: bytes
    source_addr_ton: int
    source_addr_npi: int
    source_addr: bytes
    dest_addr_ton: int
    dest_addr_npi: int
    destination_addr: bytes
    esm_class: int
    registered_delivery: int
    data_coding: int
    short_message: bytes
    receipted_message_id: bytes | None
    message_state: int | None
    message_payload: bytes | None

    def is_request(self) -> bool:
        return True


def decode_sm(raw: bytes) -> ShortMessage:
    """Parse a submit_sm or deliver_sm; raises ValueError (or IndexError) on a body that
    does not fit the layout."""
    p = ShortMessage()
    _length, command_id, _status, p.sequence = _HEADER.unpack_from(raw)
    p.command = _COMMAND_NAMES[command_id]
    find = raw.find
    pos = 16

    def cstr() -> bytes:
        nonlocal pos
        end = find(b"\x00", pos)
        if end < 0:
            raise ValueError("unterminated C-string in deliver_sm")
        value = raw[pos:end]
        pos = end + 1
        return value

    p.service_type = cstr()
    p.source_addr_ton, p.source_addr_npi = raw[pos], raw[pos + 1]
    pos += 2
    p.source_addr = cstr()
    p.dest_addr_ton, p.dest_addr_npi = raw[pos], raw[pos + 1]
    pos += 2
    p.destination_addr = cstr()
    p.esm_class = raw[pos]
    pos += 3  # esm_class, protocol_id, priority_flag
    cstr()  # schedule_delivery_time
    cstr()  # validity_period
    # registered_delivery, replace_if_present_flag, data_coding, sm_default_msg_id, sm_length
    p.registered_delivery = raw[pos]
    p.data_coding = raw[pos + 2]
    sm_length = raw[pos + 4]
    pos += 5
    if pos + sm_length > len(raw):
        raise ValueError("short_message runs past the end of deliver_sm")
    p.short_message = raw[pos : pos + sm_length]
    pos += sm_length
    p.receipted_message_id = None
    p.message_state = None
    p.message_payload = None
    end = len(raw)
    while end - pos >= 4:
        tag, length = struct.unpack_from(">HH", raw, pos)
        pos += 4
        value = raw[pos : pos + length]
        pos += length
        if tag == TLV_RECEIPTED_MESSAGE_ID:
            p.receipted_message_id = value.rstrip(b"\x00")
        elif tag == TLV_MESSAGE_STATE and length >= 1:
            p.message_state = value[0]
        elif tag == TLV_MESSAGE_PAYLOAD:
            p.message_payload = value
    return p
