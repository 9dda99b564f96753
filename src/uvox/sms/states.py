"""A message's states, and the one table of what each is called on the wire.

Every layer spells states through :class:`MessageState` (a ``StrEnum``: the value
is what the database stores and what ``sms-api/status`` returns as ``state``), and
every code shown for a state comes from :data:`WORDING`: the API's status reply,
the status callbacks, the portal's filters and the metrics all read it, so they
cannot disagree.

The manual has three status codes: 011 "To send", 012 "No plan available to send or
Credit", 013 "SMS Sent". What happened after the SMSC took a message is told by our
extension codes 110-114 (``statecode``), and a message that never left (failed, or
expired in the queue) is answered with its extension code instead of 013.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class MessageState(StrEnum):
    #: Accepted without a plan or money; released by a top-up or a plan (009, 012).
    WAITING_BALANCE = "waiting_balance"
    QUEUED = "queued"
    #: Claimed by a dispatcher, parts on their way to the SMSC.
    SUBMITTING = "submitting"
    #: Every part accepted by the SMSC; waiting for its receipts.
    SUBMITTED = "submitted"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    EXPIRED = "expired"
    REJECTED = "rejected"
    FAILED = "failed"


@dataclass(frozen=True)
class Wording:
    #: The manual's code in ``sms-api/status`` (011, 012, 013).
    status: str
    #: Its text: the manual's, or ours for an extension code.
    text: str
    #: The extension code of a final state (``statecode``: 110-114), else None.
    final: str | None = None
    final_text: str = ""


S = MessageState
WORDING: dict[MessageState, Wording] = {
    S.WAITING_BALANCE: Wording("012", "No plan available to send or Credit"),
    S.QUEUED: Wording("011", "To send"),
    S.SUBMITTING: Wording("011", "To send"),
    S.SUBMITTED: Wording("013", "SMS Sent"),
    S.DELIVERED: Wording("013", "SMS Sent", "110", "Delivered"),
    S.UNDELIVERED: Wording("013", "SMS Sent", "111", "Undelivered"),
    S.EXPIRED: Wording("013", "SMS Sent", "112", "Expired"),
    S.REJECTED: Wording("013", "SMS Sent", "113", "Rejected"),
    S.FAILED: Wording("013", "SMS Sent", "114", "Failed"),
}

FINAL: frozenset[MessageState] = frozenset(s for s, w in WORDING.items() if w.final)
#: Final states that are not a delivery (what a delivery rate counts against).
NOT_DELIVERED: tuple[MessageState, ...] = (S.UNDELIVERED, S.REJECTED, S.EXPIRED, S.FAILED)
#: States a message passes through before it is final.
IN_FLIGHT: tuple[MessageState, ...] = tuple(s for s in MessageState if s not in FINAL)
#: Waiting for a dispatcher (the queue's depth).
TO_SEND: tuple[MessageState, ...] = (S.QUEUED, S.SUBMITTING)
#: Final state → extension code (110-114).
FINAL_CODES: dict[MessageState, str] = {s: w.final for s, w in WORDING.items() if w.final}


def status_code(state: str, submitted: bool) -> str:
    """The code of ``sms-api/status`` for a message in ``state``; ``submitted``: the
    SMSC ever took it (a message that expired in the queue was never sent)."""
    w = WORDING[MessageState(state)]
    if state == S.FAILED or (state == S.EXPIRED and not submitted):
        return w.final or w.status
    return w.status


def callback_wording(state: str) -> tuple[str, str]:
    """(code, text) of a status callback: 013 when the SMSC took the message, the
    extension code once it is final."""
    w = WORDING[MessageState(state)]
    return (w.final, w.final_text) if w.final else (w.status, w.text)
