"""Test mode: what a send made with a test key becomes, instead of an SMS.

A test key (``uvox admin apikey create ACCOUNT --test``, or the portal's "test key")
is accepted like a live one: same validation of variables and numbers, same codes,
same reply, a real message id, status and history. But its messages are never given
to a dispatcher or a carrier and nothing is charged, so they are checked against
neither the balance (005, never 009) nor the spend caps (never 140): intake stores them already
``submitted``, uncharged, with a ``test_deliveries`` row, and the dispatcher's
test-mode round (``uvox.dispatch.testmode``) ends them on a short timer, firing
the status callbacks a live message would.

The documented magic numbers choose the final state; every other number is
delivered. They are numbers of the +1 500 555 range (non-geographic, never given to
a phone; Twilio's test numbers live there too), accepted in test mode whatever the
account's plan covers.
"""

from __future__ import annotations

from uvox.sms.states import MessageState

#: Magic recipient → (final state, error a receipt would carry), as documented on /docs.
MAGIC_NUMBERS: dict[str, tuple[MessageState, str | None]] = {
    "+15005550001": (MessageState.DELIVERED, None),
    "+15005550002": (MessageState.UNDELIVERED, "stat:UNDELIV err:000"),
    "+15005550003": (MessageState.REJECTED, "stat:REJECTD err:000"),
    "+15005550004": (MessageState.EXPIRED, "stat:EXPIRED err:000"),
}
#: The error of each final state, as a live receipt would report it.
ERRORS: dict[str, str | None] = {state: error for state, error in MAGIC_NUMBERS.values()}
#: Every other number, in test mode.
DEFAULT_OUTCOME: tuple[MessageState, str | None] = (MessageState.DELIVERED, None)
#: The destination shown for a magic number the account's plan has no rate for.
MAGIC_DESTINATION = "UVox test number"


def outcome(recipient: str) -> tuple[MessageState, str | None]:
    """The final state (and its error) a test message to ``recipient`` (E.164) reaches."""
    return MAGIC_NUMBERS.get(recipient, DEFAULT_OUTCOME)


def is_magic(recipient: str) -> bool:
    return recipient in MAGIC_NUMBERS


def otp_code(digits: int) -> str:
    """The fixed one-time code of test mode: zeros, as many as a live code has digits."""
    return "0" * digits
