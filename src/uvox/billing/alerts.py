"""Low-balance alerts: an account is told once when a charge takes its available
money (balance + credit limit - money held by calls in progress) below the
threshold it set, and told again only after the money was back at or above it.

Checked in the transaction of every charge (:func:`after_charge`: one conditional
UPDATE for all the accounts a batch charged, which sets ``alerted_at`` and so can
fire once only, in any number of processes); re-armed where money comes back
(:func:`recheck`: top-ups, credit limits, refunds, settled calls). The alert itself is
two outbox rows written in that same transaction, so it is never lost and never
announces a charge that was rolled back, and nothing slow happens inside it:

- a status callback (the ``callbacks`` outbox that uvox.dispatch.callbacks drains,
  signed like every callback) to the account's callback URL, when it has one;
- an e-mail to the account's address (the ``email_outbox`` that uvox.mail sends).

Callback body (docs/delivery.md)::

    {"event":"low_balance","accountnumber":"48213377","currency":"US$","balance":"0.95",
     "credit":"0.00","held":"0.00","available":"0.95","threshold":"1.00",
     "timestamp":"2026-12-05T10:00:00+00:00"}
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from uvox import mail
from uvox.billing.money import show
from uvox.clock import now
from uvox.db import schema as t
from uvox.db.session import read, write

BA, A = t.balance_alerts, t.accounts
EVENT = "low_balance"

_AVAILABLE_OF = sa.select(A.c.balance + A.c.credit_limit - A.c.held).where(A.c.id == BA.c.account_id).scalar_subquery()
_FIRE = (
    sa.update(BA)
    .where(
        BA.c.account_id.in_(sa.bindparam("ids", expanding=True)),
        BA.c.alerted_at.is_(None),
        BA.c.threshold > _AVAILABLE_OF,
    )
    .values(alerted_at=sa.bindparam("stamp", type_=BA.c.alerted_at.type))
    .returning(BA.c.account_id, BA.c.threshold)
)
_REARM = (
    sa.update(BA)
    .where(
        BA.c.account_id.in_(sa.bindparam("ids", expanding=True)),
        BA.c.alerted_at.is_not(None),
        BA.c.threshold <= _AVAILABLE_OF,
    )
    .values(alerted_at=None)
)


@dataclass(frozen=True)
class Alert:
    """An account's low-balance alert as its owner sees it."""

    threshold: Decimal | None
    available: Decimal
    #: Told and not re-armed yet: the money has not been back at the threshold since.
    alerted: bool
    email: str | None
    callback_url: str | None


def after_charge(conn: Connection, account_ids: Iterable[int], stamp: datetime | None = None) -> int:
    """After charging these accounts, in the same transaction: alert each whose
    available money is now below its threshold and that was not alerted yet.
    Returns how many were alerted."""
    ids = sorted(set(account_ids))
    if not ids:
        return 0
    stamp = stamp or now()
    fired = conn.execute(_FIRE, {"ids": ids, "stamp": stamp}).all()
    for account_id, threshold in fired:
        _announce(conn, account_id, threshold, stamp)
    return len(fired)


def recheck(conn: Connection, account_ids: Iterable[int], stamp: datetime | None = None) -> None:
    """Where money may have come back (and gone): re-arm the alerts of accounts at or
    above their threshold, alert those below it."""
    ids = sorted(set(account_ids))
    if not ids:
        return
    conn.execute(_REARM, {"ids": ids})
    after_charge(conn, ids, stamp)


def _announce(conn: Connection, account_id: int, threshold: Decimal, stamp: datetime) -> None:
    a = conn.execute(
        sa.select(A.c.number, A.c.email, A.c.currency, A.c.balance, A.c.credit_limit, A.c.held, A.c.callback_url).where(
            A.c.id == account_id
        )
    ).one()
    available = a.balance + a.credit_limit - a.held
    if a.callback_url:
        body: dict[str, Any] = {
            "event": EVENT,
            "accountnumber": a.number,
            "currency": a.currency,
            "balance": show(a.balance),
            "credit": show(a.credit_limit),
            "held": show(a.held),
            "available": show(available),
            "threshold": show(threshold),
            "timestamp": stamp.isoformat(),
        }
        conn.execute(
            sa.insert(t.callbacks).values(
                account_id=account_id,
                message_id=None,
                url=a.callback_url,
                body=json.dumps(body, separators=(",", ":")),
                attempts=0,
                created_at=stamp,
                next_attempt_at=stamp,
            )
        )
    if a.email:
        amount = f"{show(available)} {a.currency}"
        limit = f"{show(threshold)} {a.currency}"
        mail.enqueue(
            conn,
            account_id=account_id,
            recipient=a.email,
            stamp=stamp,
            subject=f"UVox: saldo bajo / low balance ({a.number})",
            body=(
                f"Su cuenta {a.number} tiene {amount} disponibles, menos que el aviso que configuró ({limit}).\n"
                "Recargue saldo para que sus mensajes y llamadas no se detengan. No volveremos a avisarle hasta "
                "que el saldo vuelva a superar ese monto.\n\n"
                f"Your account {a.number} has {amount} available, less than the alert you set ({limit}).\n"
                "Top up so that your messages and calls do not stop. We will not tell you again until the "
                "balance is back above that amount.\n"
            ),
        )


def set_threshold(engine: Engine, account_id: int, threshold: Decimal | None) -> Alert:
    """Set (or remove, with None) the account's low-balance threshold. A new threshold
    is armed: the next charge that leaves the money below it alerts."""
    if threshold is not None and threshold < 0:
        raise ValueError("a threshold cannot be negative")
    stamp = now()
    with write(engine) as conn:
        conn.execute(sa.delete(BA).where(BA.c.account_id == account_id))
        if threshold is not None:
            conn.execute(
                sa.insert(BA).values(account_id=account_id, threshold=threshold, alerted_at=None, updated_at=stamp)
            )
        return _get(conn, account_id)


def get(engine: Engine, account_id: int) -> Alert:
    with read(engine) as conn:
        return _get(conn, account_id)


def _get(conn: Connection, account_id: int) -> Alert:
    row = conn.execute(
        sa.select(A.c.balance, A.c.credit_limit, A.c.held, A.c.email, A.c.callback_url, BA.c.threshold, BA.c.alerted_at)
        .select_from(A.outerjoin(BA, BA.c.account_id == A.c.id))
        .where(A.c.id == account_id)
    ).one()
    return Alert(
        row.threshold,
        row.balance + row.credit_limit - row.held,
        row.alerted_at is not None,
        row.email,
        row.callback_url,
    )
