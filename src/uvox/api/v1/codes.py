"""The manual's response codes, and our 1xx extensions.

The manual's codes and their English texts are the wire format customers already
parse: never change a text here. Codes the manual lacks live in the 1xx range so
that no existing code ever changes meaning.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Code:
    code: str
    message: str
    http: int
    success: bool = False
    #: The manual's own examples use "1" for some replies and "1.00" for others.
    version: str = "1.00"
    #: "status" field; the manual uses "success", "error" and, for 009, "no_plan".
    status: str | None = None

    @property
    def status_text(self) -> str:
        if self.status:
            return self.status
        return "success" if self.success else "error"


_ALL = [
    Code("001", "API Key Invalid or Not Available", 401),
    Code("002", "Invalid format in the destination number", 400),
    Code("003", "Invalid or empty text", 400),
    Code("004", "405, Method Not Allowed", 405),
    Code("005", "Message sent successfully", 200, True, "1"),
    Code("009", "No Plan or Balance in account (SMS queued)", 200, True, "1", "no_plan"),
    Code("010", "Error validating SMS, please verify ID", 404),
    Code("011", "To send", 200, True, "1"),
    Code("012", "No plan available to send or Credit", 200, True, "1"),
    Code("013", "SMS Sent", 200, True, "1"),
    Code("014", "Invalid destination number", 400),
    Code("015", "Get Balance", 200, True, "1"),
    Code("016", "Missing variables in your request", 400, False, "1"),
    Code("017", "404, HTTP 404 Not Found", 404),
    Code("020", "Invalid or empty Message ref_id", 400),
    Code("021", "No Plan or Balance in account", 402),
    Code("022", "Message sent successfully", 200, True),
    Code("023", "OTP Expired", 400),
    Code("024", "Invalid API / SessionId Combination - No Entry Exists", 404),
    Code("025", "OTP Mismatch", 400),
    Code("026", "OTP already used", 400),
    Code("027", "OTP Matched", 200, True),
    Code("500", "Internal problem, please tray again", 500, False, "1"),
    # Extensions: codes the manual does not have.
    Code("101", "Too many recipients", 400),
    Code("102", "Too many requests for this phone number, try again later", 429),
    Code("103", "OTP attempts exceeded, request a new code", 400),
    Code("104", "Invalid sender (from)", 400),
    Code("105", "Request body too large", 413),
    Code("106", "Request headers too large", 431),
    Code("107", "Too many requests for this account, try again in a second", 429),
    Code("108", "Not allowed with a test key", 403),
    Code("110", "Delivered", 200, True, "1"),
    Code("111", "Undelivered", 200, True, "1"),
    Code("112", "Expired", 200, True, "1"),
    Code("113", "Rejected", 200, True, "1"),
    Code("114", "Failed", 200, True, "1"),
    Code("120", "Call records", 200, True, "1"),
    # Idempotent sends and quotes (issue 14).
    Code("130", "Idempotency key already used for a different request", 422),
    Code("131", "Invalid idempotency key", 400),
    Code("132", "SMS quote", 200, True, "1"),
    Code("133", "Call quote", 200, True, "1"),
    # SMS pumping protection (uvox.otp.guard, uvox.accounts.countries).
    Code("150", "Country rules", 200, True, "1"),
    Code("151", "Invalid country code", 400),
    Code("152", "Destination country not allowed for this account", 403),
    Code("153", "Too many code requests for this account, try again later", 429),
    Code("154", "Too many code requests to this number prefix, try again later", 429),
    Code("155", "Too many code requests from this client address, try again later", 429),
    Code("156", "Code requests to this number prefix are paused: few codes were verified", 429),
    # Spend caps and low-balance alerts (billing.caps, billing.alerts).
    Code("140", "Spend cap reached", 402),
    Code("141", "Spend caps", 200, True, "1"),
    Code("142", "Invalid spend cap", 400),
    Code("143", "Low-balance alert", 200, True, "1"),
    Code("144", "Invalid low-balance threshold", 400),
]

CODES: dict[str, Code] = {c.code: c for c in _ALL}
