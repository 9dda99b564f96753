"""The dispatcher's database work, in batches.

Everything the dispatcher learns (a part accepted, a message refused, a receipt)
becomes an event; the writer applies a batch of events in one transaction with a
handful of set-based statements, so thousands of messages a second cost tens of
statements, not thousands. These functions are synchronous and run in a thread.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from uvox import secretbox
from uvox.billing import ledger
from uvox.clock import now
from uvox.db import schema as t
from uvox.db.session import write
from uvox.smpp import msgid
from uvox.smpp.pdu import Receipt
from uvox.sms import states
from uvox.sms.states import MessageState

log = logging.getLogger("uvox.dispatch")

M, PARTS, A, CB = t.messages, t.message_parts, t.accounts, t.callbacks

# The states, by their short names here (sms/states.py is the one definition).
QUEUED, SUBMITTING, SUBMITTED = MessageState.QUEUED, MessageState.SUBMITTING, MessageState.SUBMITTED
WAITING = MessageState.WAITING_BALANCE
DELIVERED, UNDELIVERED, EXPIRED = MessageState.DELIVERED, MessageState.UNDELIVERED, MessageState.EXPIRED
REJECTED, FAILED = MessageState.REJECTED, MessageState.FAILED

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
_SEVERITY = {DELIVERED: 0, EXPIRED: 1, UNDELIVERED: 2, REJECTED: 3}



# ---------------------------------------------------------------- claiming

@dataclass(slots=True)
class Claimed:
    id: int
    account_id: int
    sender: str
    recipient: str
    text: str
    attempts: int
    connector: str
    #: Parts an earlier attempt got accepted (replaced, never changed in place).
    done_parts: frozenset[int] | set[int] = frozenset()


def requeue_submitting(engine: Engine, connectors: list[str] | None = None,
                       except_ids: set[int] | frozenset[int] = frozenset()) -> int:
    """Messages left half-way by a dispatcher that died go back to the queue.

    Called by whoever takes a connector over (or starts, on SQLite). Parts already
    accepted are remembered in message_parts and not sent again; the ones that were
    in flight at the crash may be, which is the window's worth of duplicates SMPP
    allows (the SMSC's answer was lost with the process).
    """
    with write(engine) as conn:
        q = sa.update(M).where(M.c.state == SUBMITTING)
        if connectors is not None:
            q = q.where(M.c.connector.in_(connectors))
        if except_ids:
            q = q.where(M.c.id.not_in(list(except_ids)))
        n = conn.execute(q.values(state=QUEUED, connector=None, updated_at=now(), next_attempt_at=now())).rowcount
    if n:
        log.warning("dispatch: %d message(s) left in flight by a previous owner of %s re-queued",
                    n, connectors or "any connector")
    return n


def claim(engine: Engine, **kwargs) -> list[Claimed]:
    """:func:`claim_in`, in a transaction of its own."""
    with write(engine) as conn:
        return claim_in(conn, **kwargs)


def claim_in(conn: Connection, *, limit: int, mine: set[str], up: set[str],
             choose: Callable[[str], str | None], unroutable_delay: float = 5.0,
             secret: bytes | None = None) -> list[Claimed]:
    """Take up to ``limit`` due messages this worker can send now (in ``conn``'s transaction).

    On PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets any number of workers claim at
    once without waiting for or doubling each other. A message whose best route is
    held by another worker is tagged with that connector and left for it; one with
    no route up waits ``unroutable_delay`` before it is looked at again.

    A one-time code's SMS is stored masked; its real text is sealed in
    ``secret_text`` and opened here with the instance ``secret``, so the phone gets
    the code and nothing but the carrier's PDU ever holds it in clear.
    """
    stamp = now()
    q = (
        sa.select(M.c.id, M.c.account_id, M.c.sender, M.c.recipient, M.c.text, M.c.secret_text,
                  M.c.attempts, M.c.connector)
        .where(M.c.state == QUEUED, sa.or_(M.c.next_attempt_at.is_(None), M.c.next_attempt_at <= stamp))
        .order_by(M.c.id)
        .limit(limit)
    )
    others = up - mine
    if others:
        q = q.where(sa.or_(M.c.connector.is_(None), M.c.connector.not_in(others)))
    if conn.dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True, of=M)
    rows = conn.execute(q).all()
    if not rows:
        return []
    local: dict[str, list] = defaultdict(list)
    remote: dict[str, list[int]] = defaultdict(list)
    stuck: list[int] = []
    for r in rows:
        target = choose(r.recipient)
        if target is None:
            stuck.append(r.id)
        elif target in mine:
            local[target].append(r)
        elif r.connector != target:
            remote[target].append(r.id)
    for name, items in local.items():
        conn.execute(_MARK_SUBMITTING, {"ids": [r.id for r in items], "connector": name, "stamp": stamp})
    for name, ids in remote.items():
        conn.execute(sa.update(M).where(M.c.id.in_(ids)).values(connector=name))
    if stuck:
        conn.execute(sa.update(M).where(M.c.id.in_(stuck))
                     .values(next_attempt_at=stamp + timedelta(seconds=unroutable_delay)))
    claimed = [
        Claimed(r.id, r.account_id, r.sender, r.recipient, _real_text(r, secret), r.attempts + 1, name)
        for name, items in local.items() for r in items
    ]
    retried = [c.id for c in claimed if c.attempts > 1]
    if retried:
        done: dict[int, set[int]] = defaultdict(set)
        for mid, part_no in conn.execute(
            sa.select(PARTS.c.message_id, PARTS.c.part_no)
            .where(PARTS.c.message_id.in_(retried), PARTS.c.smsc_message_id.is_not(None))
        ):
            done[mid].add(part_no)
        for c in claimed:
            c.done_parts = done.get(c.id, frozenset())
    claimed.sort(key=lambda c: c.id)
    return claimed


_MARK_SUBMITTING = (
    sa.update(M).where(M.c.id.in_(sa.bindparam("ids", expanding=True)))
    .values(state=SUBMITTING, connector=sa.bindparam("connector"), attempts=M.c.attempts + 1,
            updated_at=sa.bindparam("stamp"))
)


def _real_text(row, secret: bytes | None) -> str:
    if row.secret_text and secret is not None:
        return secretbox.open_(secret, row.secret_text)
    return row.text


# ---------------------------------------------------------------- events

@dataclass(slots=True)
class PartAccepted:
    message_id: int
    part_no: int
    connector: str
    smsc_message_id: str


@dataclass(slots=True)
class MessageOutcome:
    """All parts of a claimed message have an answer."""

    message_id: int
    outcome: str  # submitted, failed, retry
    connector: str
    sender_used: str = ""
    simulated: bool = False
    error: str | None = None
    retry_in: float = 0.0
    retried: bool = False  # not its first attempt: some parts may be final already


@dataclass(slots=True)
class ReceiptEvent:
    connector: str
    receipt: Receipt
    ack: Callable[[bool], None]
    seen: float = 0.0
    tries: int = 0


@dataclass
class Applied:
    unmatched: list[ReceiptEvent]
    matched: list[ReceiptEvent]
    callbacks: int
    finals: dict[str, int]


def apply(engine: Engine, events: list, *, callbacks_enabled: bool = True) -> Applied:
    """Write one batch of events in one transaction."""
    with write(engine) as conn:
        return apply_in(conn, events, callbacks_enabled=callbacks_enabled)


def apply_in(conn: Connection, events: list, *, callbacks_enabled: bool = True) -> Applied:
    """Write one batch of events in ``conn``'s transaction."""
    stamp = now()
    parts = [e for e in events if isinstance(e, PartAccepted)]
    outcomes = [e for e in events if isinstance(e, MessageOutcome)]
    receipts = [e for e in events if isinstance(e, ReceiptEvent)]
    changes: list[tuple[int, str, str | None]] = []  # (message id, new state, error)
    matched: list[ReceiptEvent] = []
    unmatched: list[ReceiptEvent] = []
    finals: dict[str, int] = defaultdict(int)
    if parts:
        conn.execute(_insert_ignoring_duplicates(conn, PARTS), [
            {"message_id": p.message_id, "part_no": p.part_no, "connector": p.connector,
             "smsc_message_id": p.smsc_message_id, "state": SUBMITTED, "created_at": stamp}
            for p in parts
        ])
    _apply_outcomes(conn, outcomes, stamp, changes)
    if receipts:
        _apply_receipts(conn, receipts, stamp, changes, matched, unmatched, finals)
    # A retried message may have had every receipt before its last part was accepted.
    _finalize(conn, {o.message_id for o in outcomes if o.outcome == "submitted" and o.retried},
              stamp, changes, finals)
    n_cb = _enqueue_callbacks(conn, changes, stamp) if callbacks_enabled and changes else 0
    return Applied(unmatched, matched, n_cb, dict(finals))


def _apply_outcomes(conn: Connection, outcomes: list[MessageOutcome], stamp, changes) -> None:
    groups: dict[tuple, list[int]] = defaultdict(list)
    for o in outcomes:
        if o.outcome == "submitted":
            groups[(o.connector, o.sender_used, o.simulated)].append(o.message_id)
        elif o.outcome == "failed":
            done = conn.execute(
                sa.update(M).where(M.c.id == o.message_id, M.c.state == SUBMITTING)
                .values(state=FAILED, error=(o.error or "")[:500], done_at=stamp, updated_at=stamp,
                        connector=o.connector, simulated=o.simulated, secret_text=None)
            ).rowcount
            if done:
                ledger.refund_message(conn, o.message_id, "refund: refused by the carrier")
                changes.append((o.message_id, FAILED, o.error))
        else:  # retry
            conn.execute(
                sa.update(M).where(M.c.id == o.message_id, M.c.state == SUBMITTING)
                .values(state=QUEUED, connector=None, error=(o.error or "")[:500], updated_at=stamp,
                        next_attempt_at=stamp + timedelta(seconds=o.retry_in))
            )
    for (connector, sender_used, simulated), ids in groups.items():
        for chunk in _chunks(ids, 500):
            conn.execute(_MARK_SUBMITTED, {"ids": chunk, "stamp": stamp, "connector": connector,
                                           "sender_used": sender_used, "simulated": simulated})
        changes.extend((mid, SUBMITTED, None) for mid in ids)


# The statements run for every batch, built once: building and cache-keying a fresh
# SQLAlchemy expression per batch showed in the profile of the writer thread.
_MARK_SUBMITTED = (
    sa.update(M).where(M.c.id.in_(sa.bindparam("ids", expanding=True)), M.c.state == SUBMITTING)
    .values(state=SUBMITTED, submitted_at=sa.bindparam("stamp"), updated_at=sa.bindparam("stamp"),
            connector=sa.bindparam("connector"), sender_used=sa.bindparam("sender_used"),
            simulated=sa.bindparam("simulated"), error=None, secret_text=None)
)
_PARTS_BY_SMSC_ID = (
    sa.select(PARTS.c.id, PARTS.c.message_id, PARTS.c.smsc_message_id)
    .where(PARTS.c.connector == sa.bindparam("connector"),
           PARTS.c.smsc_message_id.in_(sa.bindparam("ids", expanding=True)))
)
_PARTS_FINAL = (
    sa.update(PARTS).where(PARTS.c.id.in_(sa.bindparam("ids", expanding=True)))
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


def _apply_receipts(conn: Connection, receipts, stamp, changes, matched, unmatched, finals) -> None:
    by_conn: dict[str, list[ReceiptEvent]] = defaultdict(list)
    for r in receipts:
        by_conn[r.connector].append(r)
    found: dict[tuple[str, str], tuple[int, int]] = {}
    for connector, items in by_conn.items():
        ids = list({r.receipt.message_id for r in items})
        for chunk in _chunks(ids, 500):
            for pid, mid, smsc_id in conn.execute(_PARTS_BY_SMSC_ID, {"connector": connector, "ids": chunk}):
                found[(connector, smsc_id)] = (pid, mid)
    missing = [r for r in receipts if (r.connector, r.receipt.message_id) not in found]
    if missing:
        _match_other_forms(conn, missing, found)
    # part id -> (message id, state, error); a later receipt for the same part wins
    final: dict[int, tuple[int, str, str | None]] = {}
    for r in receipts:
        hit = found.get((r.connector, r.receipt.message_id))
        if hit is None:
            unmatched.append(r)
            continue
        matched.append(r)
        state = RECEIPT_STATES.get(r.receipt.stat.upper())
        if state is None:
            continue
        err = None if state == DELIVERED else f"stat:{r.receipt.stat} err:{r.receipt.err}"
        final.pop(hit[0], None)
        final[hit[0]] = (hit[1], state, err)
    if not final:
        return
    # One UPDATE per outcome (nearly always just DELIVRD), not one per receipt.
    groups: dict[tuple[str, str | None], list[int]] = defaultdict(list)
    for pid, (_mid, state, err) in final.items():
        groups[(state, err)].append(pid)
    for (state, err), pids in groups.items():
        for chunk in _chunks(pids, 500):
            conn.execute(_PARTS_FINAL, {"ids": chunk, "st": state, "err": err, "stamp": stamp})
    by_message = {mid: (state, err) for mid, state, err in final.values()}
    done = _finalize_single(conn, by_message, stamp, changes, finals)
    _finalize(conn, set(by_message) - done, stamp, changes, finals)


def _finalize_single(conn: Connection, by_message: dict[int, tuple[str, str | None]], stamp,
                     changes, finals) -> set[int]:
    """One-part messages (most of them) end with their part, without reading the part back.

    Returns the ids ended here; the rest (several parts, or not in state submitted)
    go through :func:`_finalize`, which reads every part.
    """
    groups: dict[tuple[str, str | None], list[int]] = defaultdict(list)
    for mid, outcome in by_message.items():
        groups[outcome].append(mid)
    done: set[int] = set()
    for (state, err), ids in groups.items():
        for chunk in _chunks(sorted(ids), 500):
            if state == DELIVERED:
                got = conn.execute(_SINGLE_FINAL, {"ids": chunk, "st": state, "stamp": stamp}).scalars().all()
            else:
                got = conn.execute(_SINGLE_FINAL_ERR, {"ids": chunk, "st": state, "err": err,
                                                       "stamp": stamp}).scalars().all()
            done.update(got)
            finals[state] += len(got)
            changes.extend((i, state, err) for i in got)
    return done


#: Per connector, the spelling of message ids that last matched its receipts (see msgid).
_learned_forms: dict[str, msgid.Form] = {}


def _match_other_forms(conn: Connection, receipts: list[ReceiptEvent], found: dict) -> None:
    """Match receipts whose id differs from submit_sm_resp's only in its spelling.

    Only parts still waiting for a receipt are candidates, so a converted id cannot
    land on an old, finished message. The form learned from a connector's earlier
    receipts is tried at once, in one indexed lookup for the batch; the full search
    waits until a receipt has gone one round unmatched, since usually its part is
    simply not written yet (a receiver bind can be quicker than the transmitter's
    submit_sm_resp).
    """
    by_conn: dict[str, list[ReceiptEvent]] = defaultdict(list)
    for r in receipts:
        by_conn[r.connector].append(r)
    for connector, items in by_conn.items():
        form = _learned_forms.get(connector)
        if form is not None:
            want: dict[str, list[ReceiptEvent]] = defaultdict(list)
            for r in items:
                for src in _receipt_ids(r.receipt):
                    alt = form.apply(src)
                    if alt is not None:
                        want[alt].append(r)
            for alt, hit in _lookup_waiting(conn, connector, list(want)).items():
                for r in want[alt]:
                    found.setdefault((connector, r.receipt.message_id), hit)
        rest = [r for r in items if r.tries >= 1 and (connector, r.receipt.message_id) not in found]
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
        best: dict[int, tuple[int, msgid.Form | None, tuple[int, int]]] = {}
        for alt, hit in _lookup_waiting(conn, connector, list(ranked)).items():
            for rank, f, r in ranked[alt]:
                if id(r) not in best or rank < best[id(r)][0]:
                    best[id(r)] = (rank, f, hit)
        for r in rest:
            got = best.get(id(r))
            if got is None:
                continue
            found.setdefault((connector, r.receipt.message_id), got[2])
            if got[1] is not None and _learned_forms.get(connector) != got[1]:
                _learned_forms[connector] = got[1]
                log.info("dispatch: receipts on %s spell SMSC ids differently from submit_sm_resp "
                         "(%s); matching them in that form", connector, got[1])


def _receipt_ids(receipt: Receipt) -> list[str]:
    ids = [receipt.message_id]
    if receipt.text_id and receipt.text_id != receipt.message_id:
        ids.append(receipt.text_id)
    return ids


def _lookup_waiting(conn: Connection, connector: str, ids: list[str]) -> dict[str, tuple[int, int]]:
    """{smsc id: (part id, message id)} among this connector's parts still without a receipt."""
    hits = {}
    for chunk in _chunks(ids, 500):
        for pid, mid, smsc_id in conn.execute(
            sa.select(PARTS.c.id, PARTS.c.message_id, PARTS.c.smsc_message_id)
            .where(PARTS.c.connector == connector, PARTS.c.smsc_message_id.in_(chunk),
                   PARTS.c.state == SUBMITTED)
        ):
            hits[smsc_id] = (pid, mid)
    return hits


def _finalize(conn: Connection, touched: set[int], stamp, changes, finals) -> None:
    """Submitted messages whose every part has a final receipt take the worst part's state."""
    if not touched:
        return
    msgs = {}
    for chunk in _chunks(sorted(touched), 500):
        for row in conn.execute(_MESSAGE_STATES, {"ids": chunk}):
            msgs[row.id] = row
    part_states: dict[int, list[tuple[str, str | None]]] = defaultdict(list)
    for chunk in _chunks(sorted(touched), 500):
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
    for final, ids in by_final.items():
        if final == DELIVERED:
            conn.execute(sa.update(M).where(M.c.id.in_(ids), M.c.state == SUBMITTED)
                         .values(state=final, done_at=stamp, updated_at=stamp))
        else:
            conn.execute(
                sa.update(M).where(M.c.id == sa.bindparam("mid"), M.c.state == SUBMITTED)
                .values(state=final, done_at=stamp, updated_at=stamp, error=sa.bindparam("err")),
                [{"mid": i, "err": errors[i]} for i in ids],
            )
        finals[final] += len(ids)
        changes.extend((i, final, errors.get(i)) for i in ids)


_MESSAGE_STATES = (
    sa.select(M.c.id, M.c.segments, M.c.state).where(M.c.id.in_(sa.bindparam("ids", expanding=True)))
)
_PART_STATES = (
    sa.select(PARTS.c.message_id, PARTS.c.state, PARTS.c.error)
    .where(PARTS.c.message_id.in_(sa.bindparam("ids", expanding=True)))
)
_CALLBACK_TARGETS = (
    sa.select(M.c.id, M.c.account_id, M.c.recipient, M.c.segments, M.c.simulated, M.c.sender_used,
              M.c.sender, M.c.callback_url.label("m_url"), A.c.callback_url.label("a_url"))
    .select_from(M.join(A, A.c.id == M.c.account_id))
    .where(M.c.id.in_(sa.bindparam("ids", expanding=True)),
           sa.or_(M.c.callback_url.is_not(None), A.c.callback_url.is_not(None)))
)


def _enqueue_callbacks(conn: Connection, changes, stamp) -> int:
    ids = sorted({c[0] for c in changes})
    info = {}
    for chunk in _chunks(ids, 500):
        for row in conn.execute(_CALLBACK_TARGETS, {"ids": chunk}):
            info[row.id] = row
    rows = []
    for mid, state, error in changes:
        m = info.get(mid)
        if m is None:
            continue
        url = m.m_url or m.a_url
        if not url:
            continue
        code, text = states.callback_wording(state)
        body = {
            "messageId": str(mid),
            "to": m.recipient,
            "from": m.sender_used if m.sender_used is not None else m.sender,
            "state": state,
            "code": code,
            "statusmessage": text,
            "segments": str(m.segments),
            "error": error,
            "simulated": bool(m.simulated),
            "timestamp": stamp.isoformat(),
        }
        rows.append({"account_id": m.account_id, "message_id": mid, "url": url,
                     "body": json.dumps(body, separators=(",", ":")), "attempts": 0,
                     "created_at": stamp, "next_attempt_at": stamp})
    if rows:
        conn.execute(sa.insert(CB), rows)
    return len(rows)


def _insert_ignoring_duplicates(conn: Connection, table: sa.Table):
    """A part accepted twice (an answer that outlived its timeout) must not stop the writer."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).on_conflict_do_nothing()


def _chunks(items: list, n: int):
    for i in range(0, len(items), n):
        yield items[i:i + n]


# ---------------------------------------------------------------- validity

def expire(engine: Engine, limit: int = 1000) -> int:
    """End messages that waited (for balance or a route) past their validity.

    A queued message was charged: its money goes back, since it never left.
    """
    stamp = now()
    with write(engine) as conn:
        q = (sa.select(M.c.id, M.c.charged).where(M.c.state.in_((WAITING, QUEUED)), M.c.expires_at.is_not(None),
                                                   M.c.expires_at < stamp).order_by(M.c.id).limit(limit))
        if conn.dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        rows = conn.execute(q).all()
        if not rows:
            return 0
        ids = [r.id for r in rows]
        conn.execute(sa.update(M).where(M.c.id.in_(ids), M.c.state.in_((WAITING, QUEUED)))
                     .values(state=EXPIRED, done_at=stamp, updated_at=stamp, secret_text=None,
                             error="validity period elapsed before it could be sent"))
        for r in rows:
            if r.charged:
                ledger.refund_message(conn, r.id, "refund: expired before it was sent")
        _enqueue_callbacks(conn, [(i, EXPIRED, "validity period elapsed before it could be sent") for i in ids],
                           stamp)
    return len(rows)
