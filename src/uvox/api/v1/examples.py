"""Worked examples of replies that both documentations show: /docs (openapi.py) and the
portal's Documentation page (portal/docs.py) take their fields from here, so the two
cannot tell a reader different things. Each is the fields of a reply after ``code``
and ``status``, in the order the API writes them."""

from __future__ import annotations

from uvox.api.v1.endpoints import TEST_NOTICE

#: calls/quote (133): 5 minutes to Miami at 0.012 a minute, in blocks of 60 seconds.
CALL_QUOTE = {
    "to": "+13055550100",
    "destination": "USA Miami",
    "rate": "0.01200",
    "connectcharge": "0.00",
    "initblock": "60",
    "billingblock": "60",
    "minutes": "5",
    "billed": "300",
    "price": "0.06",
    "currency": "US$",
}
#: sms-api with a test key (005) to the magic number that ends undelivered.
TEST_SEND = {"to": "+15005550002", "id": "50", "segments": "1", "price": "0.0075", "currency": "US$", "test": "1"}
#: sms-api/status (013) of that test message once it has ended.
TEST_STATUS = {
    "id": "50",
    "to": "+15005550002",
    "state": "undelivered",
    "statecode": "111",
    "statetext": "Undelivered",
    "error": "stat:UNDELIV err:000",
    "test": "1",
    "notice": TEST_NOTICE,
}
