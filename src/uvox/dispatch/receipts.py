"""Delivery receipts: matching them to submitted parts, and ending messages whose parts all have one.

A receipt names the SMSC's id for a part. Most SMSCs spell it as submit_sm_resp
did; some print it in another base or width (see ``uvox.smpp.msgid``), and what a
connector's SMSC does is learned from its receipts and remembered by the
:class:`ReceiptMatcher` its dispatcher owns.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from uvox.db import schema as t
from uvox.dispatch.outbox import Change
from uvox.dispatch.sqlbatch import chunks
from uvox.smpp import msgid
from uvox.smpp.pdu import Receipt
from uvox.sms.states import MessageState

log = logging.getLogger("uvox.dispatch")

M, PARTS = t.messages, t.message_parts
SUBMITTED, DELIVERED = MessageState.SUBMITTED, MessageState.DELIVERED
UNDELIVERED, EXPIRED, REJECTED = MessageState.UNDELIVERED, MessageState.EXPIRED, MessageState.REJECTED

#: Receipt "stat:" word → part state. ACCEPTD / ENROUTE are not final and change nothing.
RECEIPT_STATES = {
    "DELIVRD": DELIVERED,
    "UNDELIV": UNDELIVERED,
    "DELETED": UNDELIVERED,
    "UNKNOWN": UNDELIVERED,
    "EXPIRED": EXPIRED,
    "REJECTD": REJECTED,
}
#: When parts disagree, the message takes the worst of them.
_SEVERITY: dict[str, int] = {DELIVERED: 0, EXPIRED: 1, UNDELIVERED: 2, REJECTED: 3}

#: (part id, message id) of a submitted part.
PartRef = tuple[int, int]


@dataclass(slots=True)
class ReceiptEvent:
    connector: str
    receipt: Receipt
    ack: Callable[[bool], None]
    seen: float = 0.0
    tries: int = 0


@dataclass
class Settled:
    """What one batch of receipts did."""

    matched: list[ReceiptEvent] = field(default_factory=list)
    #: Not matched yet: their part may not be written yet; the dispatcher tries them again.
    unmatched: list[ReceiptEvent] = field(default_factory=list)
    #: Messages that ended, in the order they did.
    ended: list[Change] = field(default_factory=list)


_PARTS_BY_SMSC_ID = sa.select(PARTS.c.id, PARTS.c.message_id, PARTS.c.smsc_message_id).where(
    PARTS.c.connector == sa.bindparam("connector"), PARTS.c.smsc_message_id.in_(sa.bindparam("ids", expanding=True))
)
_PARTS_FINAL = (
    sa.update(PARTS)
    .where(PARTS.c.id.in_(sa.bindparam("ids", expanding=True)))
    .values(state=sa.bindparam("st"), error=sa.bindparam("err"), done_at=sa.bindparam("stamp"))
)
#: A one-part message takes its part's final state at once (see _finalize_single).
_SINGLE_FINAL = (
    sa.update(M)
    .where(M.c.id.in_(sa.bindparam("ids", expanding=True)), M.c.state == SUBMITTED, M.c.segments == 1)
    .values(state=sa.bindparam("st"), done_at=sa.bindparam("stamp"), updated_at=sa.bindparam("stamp"))
    .returning(M.c.id)
)
_SINGLE_FINAL_ERR = _SINGLE_FINAL.values(error=sa.bindparam("err"))


class ReceiptMatcher:
    """Applies receipts to parts; knows, per connector, how its SMSC spells message ids."""

    def __init__(self) -> None:
        #: Per connector, the spelling of message ids that last matched its receipts (see msgid).
        self.learned_forms: dict[str, msgid.Form] = {}

    def apply(self, conn: Connection, receipts: list[ReceiptEvent], stamp: datetime) -> Settled:
        """Mark the parts these receipts name final, and end the messages that are complete."""
        by_conn: dict[str, list[ReceiptEvent]] = defaultdict(list)
        for r in receipts:
            by_conn[r.connector].append(r)
        found: dict[tuple[str, str], PartRef] = {}
        for connector, items in by_conn.items():
            ids = list({r.receipt.message_id for r in items})
            for chunk in chunks(ids):
                for pid, mid, smsc_id in conn.execute(_PARTS_BY_SMSC_ID, {"connector": connector, "ids": chunk}):
                    found[(connector, smsc_id)] = (pid, mid)
        missing = [r for r in receipts if (r.connector, r.receipt.message_id) not in found]
        if missing:
            found.update(self._match_other_forms(conn, missing, found))
        settled = Settled()
        # part id -> (message id, state, error); a later receipt for the same part wins
        final: dict[int, tuple[int, str, str | None]] = {}
        for r in receipts:
            hit = found.get((r.connector, r.receipt.message_id))
            if hit is None:
                settled.unmatched.append(r)
                continue
            settled.matched.append(r)
            state = RECEIPT_STATES.get(r.receipt.stat.upper())
            if state is None:
                continue
            err = None if state == DELIVERED else f"stat:{r.receipt.stat} err:{r.receipt.err}"
            final.pop(hit[0], None)
            final[hit[0]] = (hit[1], state, err)
        if not final:
            return settled
        # One UPDATE per outcome (nearly always just DELIVRD), not one per receipt.
        groups: dict[tuple[str, str | None], list[int]] = defaultdict(list)
        for pid, (_mid, st, err) in final.items():
            groups[(st, err)].append(pid)
        for (st, err), pids in groups.items():
            for part_ids in chunks(pids):
                conn.execute(_PARTS_FINAL, {"ids": part_ids, "st": st, "err": err, "stamp": stamp})
        by_message = {mid: (st, err) for mid, st, err in final.values()}
        settled.ended = _finalize_single(conn, by_message, stamp)
        settled.ended += finalize(conn, set(by_message) - {c.message_id for c in settled.ended}, stamp)
        return settled

    def _match_other_forms(
        self, conn: Connection, receipts: list[ReceiptEvent], found: Mapping[tuple[str, str], PartRef]
    ) -> dict[tuple[str, str], PartRef]:
        """Match receipts whose id differs from submit_sm_resp's only in its spelling.

        Only parts still waiting for a receipt are candidates, so a converted id cannot
        land on an old, finished message. The form learned from a connector's earlier
        receipts is tried at once, in one indexed lookup for the batch; the full search
        waits until a receipt has gone one round unmatched, since usually its part is
        simply not written yet (a receiver bind can be quicker than the transmitter's
        submit_sm_resp). Returns the matches, keyed as ``found`` is.
        """
        hits: dict[tuple[str, str], PartRef] = {}
        by_conn: dict[str, list[ReceiptEvent]] = defaultdict(list)
        for r in receipts:
            by_conn[r.connector].append(r)
        for connector, items in by_conn.items():
            form = self.learned_forms.get(connector)
            if form is not None:
                want: dict[str, list[ReceiptEvent]] = defaultdict(list)
                for r in items:
                    for src in _receipt_ids(r.receipt):
                        alt = form.apply(src)
                        if alt is not None:
                            want[alt].append(r)
                for alt, hit in _lookup_waiting(conn, connector, list(want)).items():
                    for r in want[alt]:
                        hits.setdefault((connector, r.receipt.message_id), hit)
            rest = [
                r
                for r in items
                if r.tries >= 1
                and (connector, r.receipt.message_id) not in found
                and (connector, r.receipt.message_id) not in hits
            ]
            if not rest:
                continue
            ranked: dict[str, list[tuple[int, msgid.Form | None, ReceiptEvent]]] = defaultdict(list)
            for r in rest:
                rank = 0
                for src in _receipt_ids(r.receipt):
                    if src != r.receipt.message_id:
                        ranked[src].append((rank, None, r))  # the text's id, when the TLV's differs
                        rank += 1
                    for f, alt in msgid.alternatives(src):
                        ranked[alt].append((rank, f, r))
                        rank += 1
            best: dict[int, tuple[int, msgid.Form | None, PartRef]] = {}
            for alt, hit in _lookup_waiting(conn, connector, list(ranked)).items():
                for rank, maybe_form, r in ranked[alt]:
                    if id(r) not in best or rank < best[id(r)][0]:
                        best[id(r)] = (rank, maybe_form, hit)
            for r in rest:
                got = best.get(id(r))
                if got is None:
                    continue
                hits.setdefault((connector, r.receipt.message_id), got[2])
                if got[1] is not None and self.learned_forms.get(connector) != got[1]:
                    self.learned_forms[connector] = got[1]
                    log.info(
                        "dispatch: receipts on %s spell SMSC ids differently from submit_sm_resp "
                        "(%s); matching them in that form",
                        connector,
                        got[1],
                    )
        return hits


def _receipt_ids(receipt: Receipt) -> list[str]:
    ids = [receipt.message_id]
    if receipt.text_id and receipt.text_id != receipt.message_id:
        ids.append(receipt.text_id)
    return ids


def _lookup_waiting(conn: Connection, connector: str, ids: list[str]) -> dict[str, PartRef]:
    """{smsc id: (part id, message id)} among this connector's parts still without a receipt."""
    hits = {}
    for chunk in chunks(ids):
        for pid, mid, smsc_id in conn.execute(
            sa.select(PARTS.c.id, PARTS.c.message_id, PARTS.c.smsc_message_id).where(
                PARTS.c.connector == connector, PARTS.c.smsc_message_id.in_(chunk), PARTS.c.state == SUBMITTED
            )
        ):
            hits[smsc_id] = (pid, mid)
    return hits


def _finalize_single(conn: Connection, by_message: dict[int, tuple[str, str | None]], stamp: datetime) -> list[Change]:
    """One-part messages (most of them) end with their part, without reading the part back.

    Returns the messages ended here; the rest (several parts, or not in state
    submitted) go through :func:`finalize`, which reads every part.
    """
    groups: dict[tuple[str, str | None], list[int]] = defaultdict(list)
    for mid, outcome in by_message.items():
        groups[outcome].append(mid)
    ended: list[Change] = []
    for (state, err), ids in groups.items():
        for chunk in chunks(sorted(ids)):
            if state == DELIVERED:
                got = conn.execute(_SINGLE_FINAL, {"ids": chunk, "st": state, "stamp": stamp}).scalars().all()
            else:
                got = (
                    conn.execute(_SINGLE_FINAL_ERR, {"ids": chunk, "st": state, "err": err, "stamp": stamp})
                    .scalars()
                    .all()
                )
            ended.extend(Change(i, state, err) for i in got)
    return ended


_MESSAGE_STATES = sa.select(M.c.id, M.c.segments, M.c.state).where(M.c.id.in_(sa.bindparam("ids", expanding=True)))
_PART_STATES = sa.select(PARTS.c.message_id, PARTS.c.state, PARTS.c.error).where(
    PARTS.c.message_id.in_(sa.bindparam("ids", expanding=True))
)


def finalize(conn: Connection, touched: set[int], stamp: datetime) -> list[Change]:
    """Submitted messages whose every part has a final receipt take the worst part's state."""
    if not touched:
        return []
    msgs: dict[int, Any] = {}
    for chunk in chunks(sorted(touched)):
        for row in conn.execute(_MESSAGE_STATES, {"ids": chunk}):
            msgs[row.id] = row
    part_states: dict[int, list[tuple[str, str | None]]] = defaultdict(list)
    for chunk in chunks(sorted(touched)):
        for mid, st, err in conn.execute(_PART_STATES, {"ids": chunk}):
            part_states[mid].append((st, err))
    by_final: dict[str, list[int]] = defaultdict(list)
    errors: dict[int, str | None] = {}
    for mid, row in msgs.items():
        if row.state != SUBMITTED:
            continue  # still being submitted (its last parts are in flight) or already final
        states = [s for s, _ in part_states[mid] if s in _SEVERITY]
        if len(states) < row.segments:
            continue
        final = max(states, key=_SEVERITY.__getitem__)
        by_final[final].append(mid)
        errors[mid] = next((e for s, e in part_states[mid] if s == final and e), None)
    ended: list[Change] = []
    for final, ids in by_final.items():
        if final == DELIVERED:
            conn.execute(
                sa.update(M)
                .where(M.c.id.in_(ids), M.c.state == SUBMITTED)
                .values(state=final, done_at=stamp, updated_at=stamp)
            )
        else:
            conn.execute(
                sa.update(M)
                .where(M.c.id == sa.bindparam("mid"), M.c.state == SUBMITTED)
                .values(state=final, done_at=stamp, updated_at=stamp, error=sa.bindparam("err")),
                [{"mid": i, "err": errors[i]} for i in ids],
            )
        ended.extend(Change(i, final, errors.get(i)) for i in ids)
    return ended
