"""Small helpers around smpplib's PDU classes, shared by the simulator and the connector.

smpplib builds and parses every PDU we use (``smpplib.smpp.make_pdu`` /
``parse_pdu``); what it leaves to the caller is the framing of a byte stream into
PDUs, thread-safe sequence numbers, and the text of a delivery receipt, which the
SMPP 3.4 specification only describes in an appendix. Those few pieces live here.
"""

from __future__ import annotations

import itertools
import re
import struct
import threading
from dataclasses import dataclass
from typing import Any

from smpplib import consts, smpp
from smpplib.exceptions import UnknownCommandError

#: SMPP message_state values (SMPP 3.4 §5.2.28) and the receipt "stat:" words.
MESSAGE_STATES = {
    "ENROUTE": 1,
    "DELIVRD": 2,
    "EXPIRED": 3,
    "DELETED": 4,
    "UNDELIV": 5,
    "ACCEPTD": 6,
    "UNKNOWN": 7,
    "REJECTD": 8,
}
STATE_WORDS = {v: k for k, v in MESSAGE_STATES.items()}

#: Errors after which the same submit_sm may succeed later: the SMSC asks us to slow down.
THROTTLING_STATUSES = frozenset({consts.SMPP_ESME_RTHROTTLED, consts.SMPP_ESME_RMSGQFUL})
#: Errors that are the SMSC's own passing trouble, not the message's: send it again
#: later (or by another route) rather than fail and refund it. Kannel treats these
#: two the same way.
TEMPORARY_STATUSES = frozenset({consts.SMPP_ESME_RSYSERR, consts.SMPP_ESME_RX_T_APPN})


class SequenceGenerator:
    """A sequence-number source smpplib accepts, safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self._last = 0

    @property
    def sequence(self) -> int:
        return self._last

    def next_sequence(self) -> int:
        with self._lock:
            n = next(self._counter)
            if n > 0x7FFFFFFF:
                self._counter = itertools.count(2)
                n = 1
            self._last = n
            return n


def make(command: str, seqgen: SequenceGenerator, sequence: int | None = None, **fields: Any) -> Any:
    """Build a PDU with smpplib; a response passes the ``sequence`` of its request.

    smpplib ignores a ``sequence`` keyword once its client has issued one, so it is
    set after construction, as smpplib's own client does for deliver_sm_resp.
    """
    p = smpp.make_pdu(command, client=seqgen, allow_unknown_opt_params=True, **fields)
    if sequence is not None:
        p.sequence = sequence
    return p


def parse(raw: bytes, seqgen: SequenceGenerator) -> Any:
    """Parse one complete PDU with smpplib; ``None`` when the command is unknown to it."""
    try:
        return smpp.parse_pdu(raw, client=seqgen, allow_unknown_opt_params=True)
    except UnknownCommandError:
        return None


def header(raw: bytes) -> tuple[int, int, int, int]:
    """(length, command_id, status, sequence) of a raw PDU."""
    return struct.unpack(">LLLL", raw[:16])


def text(value: object) -> str:
    """smpplib parses C-strings as bytes; callers want str."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value)


def status_name(status: int) -> str:
    name: str = consts.DESCRIPTIONS.get(status, f"status 0x{status:08X}")
    return name


# ---------------------------------------------------------------- delivery receipts

#: Receipt text fields, read one by one: SMSCs drop fields (sub:, dlvrd:), reorder
#: them, change their case or end them without "text:", so one strict pattern misses
#: real receipts.
_FIELD_RE = {
    "id": re.compile(r"(?:^|\s)id:\s*(\S+)", re.IGNORECASE),
    "stat": re.compile(r"(?:^|\s)stat:\s*(\w+)", re.IGNORECASE),
    "err": re.compile(r"(?:^|\s)err:\s*(\w+)", re.IGNORECASE),
    "submit": re.compile(r"(?:^|\s)submit date:\s*(\d*)", re.IGNORECASE),
    "done": re.compile(r"(?:^|\s)done date:\s*(\d*)", re.IGNORECASE),
}


def _receipt_fields(body: str) -> dict[str, str] | None:
    """The receipt text's fields, or None when it is not a receipt text (no id: and stat:)."""
    got = {}
    for name, rx in _FIELD_RE.items():
        m = rx.search(body)
        if m:
            got[name] = m.group(1)
    if "id" not in got or "stat" not in got:
        return None
    return got


@dataclass(frozen=True)
class Receipt:
    """What a delivery receipt says about one submitted part."""

    message_id: str
    stat: str  # DELIVRD, UNDELIV, EXPIRED, REJECTD, ...
    err: str = "000"
    submit_date: str = ""
    done_date: str = ""
    source_addr: str = ""
    destination_addr: str = ""
    #: The text's ``id:`` when a receipted_message_id TLV said something else: some
    #: SMSCs print one in decimal and the other in hex, so both are worth matching.
    text_id: str = ""


def receipt_text(message_id: str, stat: str, err: str, submit_date: str, done_date: str, body: str) -> bytes:
    """The de-facto receipt text of SMPP 3.4 Appendix B."""
    dlvrd = "001" if stat == "DELIVRD" else "000"
    return (
        f"id:{message_id} sub:001 dlvrd:{dlvrd} submit date:{submit_date} "
        f"done date:{done_date} stat:{stat} err:{err} text:{body[:20]}"
    ).encode("ascii", "replace")


def parse_receipt(pdu: Any) -> Receipt | None:
    """A Receipt from a deliver_sm (or data_sm), or None when it is a mobile-originated message.

    The receipted_message_id and message_state TLVs win over the text when present:
    the TLV is the one SMPP 3.4 ties to submit_sm_resp. The text may be in
    short_message or, when that is empty, in the message_payload TLV; a receipt may
    also be TLVs alone with no text at all.
    """
    esm = pdu.esm_class or 0
    tlv_id = text(getattr(pdu, "receipted_message_id", None)).strip().strip("\x00")
    tlv_state = getattr(pdu, "message_state", None)
    if tlv_id and tlv_state == MESSAGE_STATES["DELIVRD"]:
        # The common case, settled by the TLVs alone: skip reading the text.
        return Receipt(
            message_id=tlv_id,
            stat="DELIVRD",
            source_addr=text(pdu.source_addr),
            destination_addr=text(pdu.destination_addr),
        )
    # data_sm has no short_message
    body = getattr(pdu, "short_message", None) or getattr(pdu, "message_payload", None) or b""
    if isinstance(body, str):
        body = body.encode("latin-1", "replace")
    fields = _receipt_fields(body.decode("latin-1", "replace")) if body else None
    if not (esm & 0x3C) and not tlv_id and not (fields and len(fields) >= 4):
        # No receipt flag: only a full receipt text makes it one (an SMS a person
        # typed may well contain "id:" and "stat:").
        return None
    fields = fields or {}
    text_id = fields.get("id", "")
    message_id = tlv_id or text_id
    if not message_id:
        return None
    if tlv_state:
        stat = STATE_WORDS.get(tlv_state, "UNKNOWN")
    else:
        stat = fields.get("stat", "UNKNOWN").upper()
    return Receipt(
        message_id=message_id,
        stat=stat,
        err=fields.get("err", "000"),
        submit_date=fields.get("submit", ""),
        done_date=fields.get("done", ""),
        source_addr=text(pdu.source_addr),
        destination_addr=text(pdu.destination_addr),
        text_id=text_id if text_id != message_id else "",
    )
