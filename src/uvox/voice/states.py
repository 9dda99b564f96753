"""A call's status, as stored in ``calls.status`` and returned by the ``calls`` endpoint.

VOICE.md's list: a call is ``in_progress`` from its authorization until its record
is settled, then one of the final statuses.
"""

from __future__ import annotations

from enum import StrEnum


class CallStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    #: Every other final SIP code, and calls the sweeper closed.
    FAILED = "failed"
    #: The caller gave up before the answer (487).
    CANCELLED = "cancelled"
    #: The platform's own refusal (403, 404, 402, 503 before any trunk was tried).
    REFUSED = "refused"


#: The statuses a finished call can have (the endpoint's and the portal's filter).
FINAL: tuple[CallStatus, ...] = tuple(s for s in CallStatus if s is not CallStatus.IN_PROGRESS)
