"""The message history as the portal shows it: filters read from a page's query
string, the state groups and their (translated) labels, the CSV export's columns.

The queries are uvox.sms.history's (every customer query has the account's id in
its WHERE clause); this module only turns a request into a search and rows into text.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from uvox.billing.money import show
from uvox.clock import aware
from uvox.portal.web import Ctx
from uvox.sms import history, states
from uvox.sms.states import MessageState as S
from uvox.strings import is_digits


def N_(text: str) -> str:
    """Marks a text for the gettext catalogue; the template translates it when shown."""
    return text


#: The states a customer can filter by, each with the manual's wording (API status
#: texts 011-013 and our 11x extensions) and the internal states it covers.
STATE_GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "to_send": (N_("To send"), states.TO_SEND),
    "no_credit": (N_("No plan available to send or Credit"), (S.WAITING_BALANCE,)),
    "sent": (N_("SMS Sent"), (S.SUBMITTED,)),
    "delivered": (N_("Delivered"), (S.DELIVERED,)),
    "undelivered": (N_("Undelivered"), (S.UNDELIVERED,)),
    "expired": (N_("Expired"), (S.EXPIRED,)),
    "rejected": (N_("Rejected"), (S.REJECTED,)),
    "failed": (N_("Failed"), (S.FAILED,)),
}
# The labels are literals above for gettext's extraction; they must be the wording
# of sms/states.py (tests/sms/test_states.py checks it).
_LABEL = {state: label for label, states in STATE_GROUPS.values() for state in states}
_GROUP = {state: key for key, (_, states) in STATE_GROUPS.items() for state in states}


def state_label(state: str) -> str:
    """The English (manual) text of a state; the portal translates it with gettext."""
    return _LABEL.get(state, state)


def state_group(state: str) -> str:
    return _GROUP.get(state, "")


#: Messages on a page of the history, the customer's and the operator's.
PAGE_SIZE = 50


@dataclass
class DaysAndNumber:
    """What the message and the call searches both filter by, with the same names in
    the query string; each search's ``parse`` reads them back."""

    date_from: date | None = None
    date_to: date | None = None
    number: str = ""

    def as_query(self) -> dict[str, str]:
        out = {}
        if self.date_from:
            out["from"] = self.date_from.isoformat()
        if self.date_to:
            out["to"] = self.date_to.isoformat()
        if self.number:
            out["number"] = self.number
        return out


@dataclass
class Filters(DaysAndNumber):
    state: str = ""
    message_id: int | None = None
    account_number: str = ""  # operator search only

    @classmethod
    def parse(cls, get) -> tuple[Filters, list[str]]:
        """From query parameters; returns the filters and the names of fields that were invalid."""
        bad: list[str] = []

        def day(name: str) -> date | None:
            raw = get(name)
            if not raw:
                return None
            try:
                return date.fromisoformat(raw)
            except ValueError:
                bad.append(name)
                return None

        number = "".join(ch for ch in (get("number") or "") if ch.isdigit())[:20]
        state = get("state") or ""
        if state and state not in STATE_GROUPS:
            bad.append("state")
            state = ""
        raw_id = get("id") or ""
        message_id = int(raw_id) if is_digits(raw_id) and len(raw_id) < 18 else None
        if raw_id and message_id is None:
            bad.append("id")
        account_number = "".join(ch for ch in (get("account") or "") if ch.isdigit())[:20]
        return cls(day("from"), day("to"), number, state, message_id, account_number), bad

    def as_query(self) -> dict[str, str]:
        out = super().as_query()
        if self.state:
            out["state"] = self.state
        if self.message_id is not None:
            out["id"] = str(self.message_id)
        if self.account_number:
            out["account"] = self.account_number
        return out

    def search(self) -> history.Search:
        return history.Search(
            self.date_from,
            self.date_to,
            self.number,
            STATE_GROUPS[self.state][1] if self.state else (),
            self.message_id,
            self.account_number,
        )


def page(engine, account_id: int | None, filters: Filters, limit: int = 50, offset: int = 0):
    """(total, rows) newest first. ``account_id=None`` only for the operator's search."""
    return history.page(engine, account_id, filters.search(), limit, offset)


def listing(ctx: Ctx, account_id: int | None) -> dict[str, Any]:
    """The values a page of the history is rendered with (the customer's sms.html,
    the operator's messages.html): the search its query string asks for, one page of
    it, and how states are worded and grouped. ``account_id=None``: the operator's."""
    filters, bad = Filters.parse(ctx.request.query_params.get)
    number = ctx.page_number()
    total, rows = page(ctx.engine, account_id, filters, PAGE_SIZE, (number - 1) * PAGE_SIZE)
    return {
        "rows": rows,
        "total": total,
        "page": number,
        "pages": max(1, math.ceil(total / PAGE_SIZE)),
        "filters": filters,
        "query": filters.as_query(),
        "bad": bad,
        "groups": STATE_GROUPS,
        "state_label": state_label,
        "state_group": state_group,
    }


def one(engine, account_id: int, message_id: int):
    return history.one(engine, account_id, message_id)


CSV_HEADER = [
    "id",
    "created_at",
    "from",
    "to",
    "destination",
    "state",
    "status",
    "segments",
    "price",
    "currency",
    "kind",
    "text",
    "submitted_at",
    "done_at",
]


def _stamp(value) -> str:
    return aware(value).isoformat() if value is not None else ""


def csv_rows(engine, account_id: int, filters: Filters, batch: int = 2000) -> Iterator[str]:
    """The filtered history as CSV text, fetched in batches by id (never all in memory)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_HEADER)
    yield buf.getvalue()
    for rows in history.batches(engine, account_id, filters.search(), batch):
        buf = io.StringIO()
        writer = csv.writer(buf)
        for r in rows:
            writer.writerow(
                [
                    r.id,
                    _stamp(r.created_at),
                    r.sender_used if r.sender_used is not None else r.sender,
                    r.recipient,
                    r.destination,
                    r.state,
                    state_label(r.state),
                    r.segments,
                    show(r.price),
                    r.currency,
                    r.kind,
                    _csv_safe(r.text),
                    _stamp(r.submitted_at),
                    _stamp(r.done_at),
                ]
            )
        yield buf.getvalue()


def _csv_safe(text: str) -> str:
    """Neutralise spreadsheet formulas: a customer's SMS text must not run in Excel."""
    if text and text[0] in "=+-@\t\r":
        return "'" + text
    return text
