"""The manual's endpoints: variables in, domain services called, envelope out.

Nothing here decides business rules; it maps the wire format onto uvox.sms,
uvox.billing and uvox.otp, in the check order of API.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal

import orjson
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.responses import Response, StreamingResponse

from uvox import secretbox
from uvox.accounts.service import Account, callback_url_ok
from uvox.api.v1.codes import CODES
from uvox.api.v1.envelope import media_type
from uvox.api.v1.params import Variables, token
from uvox.billing import alerts, caps, ledger, plans
from uvox.billing.money import parse_amount, show
from uvox.clock import aware
from uvox.db.session import read
from uvox.otp import service as otp
from uvox.platform import Platform
from uvox.sms import encoding, intake, states
from uvox.sms.numbers import BadNumber, normalise, normalise_sender
from uvox.strings import is_digits


@dataclass
class Result:
    """An endpoint's answer before it becomes a Response (or, for a download, the Response)."""

    code: str
    fields: dict
    response: Response | None = None


def _r(code: str, **fields) -> Result:
    return Result(code, fields)


def _text_problem(text: str) -> str | None:
    if not text.strip():
        return "the text is empty"
    if "\x00" in text:
        return "the text contains a NUL character"
    if len(text) > encoding.MAX_CHARS:
        return f"the text is longer than {encoding.MAX_CHARS} characters"
    return None


def split_recipients(values: list[str]) -> list[str]:
    """``to`` may be comma-separated, repeated, or a JSON array; empty items are dropped."""
    return [part.strip() for v in values for part in v.split(",") if part.strip()]


# --- sms-api ---------------------------------------------------------------

async def send_sms(p: Platform, account: Account, v: Variables) -> Result:
    if not v.has("to") or not v.has("text"):
        return _r("016", detail="sms-api needs the variables to and text")
    raw_to = v.get_all("to")
    recipients = split_recipients(raw_to)
    text = v.get("text") or ""
    problem = _text_problem(text)
    if problem:
        return _r("003", detail=problem)
    if not recipients:
        return _r("002", to=",".join(raw_to), detail="no destination number")
    if len(recipients) > p.settings.max_recipients:
        return _r("101", detail=f"at most {p.settings.max_recipients} recipients per request, got {len(recipients)}")
    try:
        sender = normalise_sender(v.get("from"))
    except ValueError as exc:
        return _r("104", detail=str(exc))
    callback = (v.get("callback_url") or v.get("statusCallback") or "").strip() or None
    if callback and not callback_url_ok(callback):
        return _r("016", detail="callback_url must be an http(s) URL of at most 2000 characters, without spaces")
    out = intake.Outgoing(
        account_id=account.id,
        plan_id=account.plan_id,
        currency=account.currency,
        text=text,
        sender=sender,
        callback_url=callback,
        validity_seconds=p.settings.message_validity_seconds,
    )
    errors: dict[int, tuple[str, str]] = {}
    valid: list[tuple[int, str]] = []
    for i, raw in enumerate(recipients):
        try:
            valid.append((i, normalise(raw)))
        except BadNumber as bad:
            errors[i] = (bad.code, raw)

    accepted: dict[int, intake.Accepted] = {}
    if valid:
        priced, unroutable, done = await p.writer.run(intake.IntakeJob(out, valid))
        if isinstance(done, caps.Refused):
            # A send that would pass a spend cap is refused whole: nothing stored or charged.
            return _r("140", to=",".join(recipients), **_cap_refusal(done, account.currency))
        for i in unroutable:
            errors[i] = ("014", recipients[i])
        for (i, _), acc in zip(priced, done):
            accepted[i] = acc
        if accepted:
            p.queued.notify()

    def one(i: int) -> dict:
        if i in accepted:
            a = accepted[i]
            code = "005" if a.state == intake.QUEUED else "009"
            c = CODES[code]
            return {"to": a.recipient, "id": str(a.id), "code": code, "status": c.status_text,
                    "statusmessage": c.message, "segments": str(a.segments), "price": show(a.price)}
        code, raw = errors[i]
        c = CODES[code]
        return {"to": raw, "code": code, "status": c.status_text, "statusmessage": c.message}

    if len(recipients) == 1:
        row = one(0)
        if "id" in row:
            return _r(row["code"], to=row["to"], id=row["id"], segments=row["segments"], price=row["price"],
                      currency=account.currency)
        return _r(row["code"], to=row["to"])

    results = [one(i) for i in range(len(recipients))]
    ok = [r for r in results if "id" in r]
    if not ok:
        first = results[0]
        return _r(first["code"], to=",".join(recipients), results=results)
    code = "009" if any(r["code"] == "009" for r in ok) else "005"
    return _r(code, to=",".join(r["to"] for r in ok), id=",".join(r["id"] for r in ok),
              accepted=str(len(ok)), rejected=str(len(results) - len(ok)), currency=account.currency, results=results)


# --- sms-api/status --------------------------------------------------------

def _iso(value) -> str | None:
    return aware(value).isoformat() if value is not None else None


async def sms_status(p: Platform, account: Account, v: Variables) -> Result:
    raw = v.get("messageId", "messageid", "MessageId", "messageID", "id")
    if raw is None:
        return _r("016", detail="sms-api/status needs the variable messageId")
    raw = raw.strip()
    if not is_digits(raw) or len(raw) > 18:
        return _r("010")
    def load():
        with read(p.engine) as conn:
            return intake.get_message(conn, account.id, int(raw))

    m = await run_in_threadpool(load)
    if m is None:
        return _r("010")
    state = m.state
    code = states.status_code(state, submitted=m.submitted_at is not None)
    fields = {
        "id": str(m.id),
        "to": m.recipient,
        "from": m.sender_used if m.sender_used is not None else m.sender,
        "state": state,
        "segments": str(m.segments),
        "price": show(m.price),
        "currency": m.currency,
        "created_at": _iso(m.created_at),
        "submitted_at": _iso(m.submitted_at),
        "done_at": _iso(m.done_at),
    }
    wording = states.WORDING[states.MessageState(state)]
    if wording.final:
        fields["statecode"] = wording.final
        fields["statetext"] = wording.final_text
    if m.error:
        fields["error"] = m.error
    if m.simulated:
        fields["simulated"] = True
        fields["notice"] = "Sent through the SMSC simulator: no real phone received this message."
    return _r(code, **fields)


# --- OTP-api -----------------------------------------------------------------

async def otp_request(p: Platform, account: Account, v: Variables) -> Result:
    if not v.has("ref_id") or not v.has("phone_number"):
        return _r("016", detail="OTP-api needs the variables ref_id and phone_number")
    ref_id = token(v.get("ref_id"))
    raw_phone = (v.get("phone_number") or "").strip()
    if not ref_id or len(ref_id) > 64 or not ref_id.isprintable():
        return _r("020")
    try:
        phone = normalise(raw_phone)
    except BadNumber as bad:
        return _r(bad.code, to=raw_phone, phone_number=raw_phone)
    s = p.settings
    code = otp.new_code(s.otp_digits)
    secret = p.secret

    def store(conn):
        template = otp.find_template(conn, account.id, ref_id)
        if template is None:
            return _r("020")
        if otp.recent_sends(conn, account.id, phone, s.otp_send_window_seconds) >= s.otp_send_limit:
            return _r("102", phone_number=phone,
                      detail=f"at most {s.otp_send_limit} codes per number every {s.otp_send_window_seconds} seconds")
        real_text = template.text.replace(otp.CODE_PLACEHOLDER, code)
        out = intake.Outgoing(
            account_id=account.id, plan_id=account.plan_id, currency=account.currency,
            text=real_text, sender=template.sender, kind="otp",
            validity_seconds=min(s.message_validity_seconds, s.otp_ttl_seconds),
            masked_text=template.text.replace(otp.CODE_PLACEHOLDER, "*" * len(code)),
            sealed_text=secretbox.seal(secret, real_text),
        )
        try:
            priced = intake.price(conn, out, phone)
        except intake.NoRate:
            return _r("014", to=raw_phone, phone_number=raw_phone)
        accepted = intake.accept(conn, out, [priced])
        if isinstance(accepted, caps.Refused):
            return _r("140", phone_number=phone, **_cap_refusal(accepted, account.currency))
        (msg,) = accepted
        session_id = otp.open_session(conn, secret, account_id=account.id, template_id=template.id, phone=phone,
                                      code=code, message_id=msg.id, ttl_seconds=s.otp_ttl_seconds)
        return msg, session_id

    outcome = await p.writer.run(store)
    if isinstance(outcome, Result):
        return outcome
    msg, session_id = outcome
    p.queued.notify()
    if msg.state == intake.WAITING_BALANCE:
        return _r("021", sessionID=session_id, phone_number=phone, id=str(msg.id))
    return _r("022", phone_number=phone, sessionID=session_id, id=str(msg.id))


async def otp_verify(p: Platform, account: Account, v: Variables) -> Result:
    if not v.has("sessionid", "sessionID", "sessionId") or not v.has("otp_code"):
        return _r("016", detail="OTP-api/verify needs the variables sessionid and otp_code")
    session_id = token(v.get("sessionid", "sessionID", "sessionId"))
    given = token(v.get("otp_code"))
    secret, limit = p.secret, p.settings.otp_max_attempts
    code = await p.writer.run(lambda conn: otp.verify(conn, secret, account.id, session_id, given, limit))
    return _r(code, sessionID=session_id)


# --- balance and rates -------------------------------------------------------

async def balance(p: Platform, account: Account, v: Variables) -> Result:
    def load():
        with read(p.engine) as conn:
            return ledger.funds(conn, account.id)

    bal, credit, held = await run_in_threadpool(load)
    fields = {"accountnumber": account.number, "currency": account.currency, "balance": show(bal),
              "credit": show(credit), "available": show(bal + credit - held)}
    if held:
        fields["held"] = show(held)
    return _r("015", **fields)


def _rate_text(value) -> str:
    return show(value, min_places=5)


def rates_stream(p: Platform, account: Account, accept: str | None, headers: dict) -> Response:
    """The manual's bare JSON array, streamed from the database in batches."""

    def chunks() -> Iterator[bytes]:
        yield b"["
        if account.plan_id is not None:
            first = True
            buf: list[bytes] = []
            for r in plans.iter_rates(p.engine, account.plan_id):
                item = orjson.dumps({"dialprefix": r.prefix, "destination": r.destination,
                                     "rateinitial": _rate_text(r.rate_initial)})
                buf.append(item if first else b"," + item)
                first = False
                if len(buf) >= 500:
                    yield b"".join(buf)
                    buf = []
            if buf:
                yield b"".join(buf)
        yield b"]"

    return StreamingResponse(iterate_in_threadpool(chunks()), media_type=media_type(accept), headers=headers)


# --- calls -------------------------------------------------------------------------

def _when(raw: str | None, name: str):
    """An ISO 8601 time (``2026-12-01``, ``2026-12-01T10:00:00Z``, with an offset); naive is UTC."""
    from datetime import datetime

    if raw is None or not raw.strip():
        return None
    try:
        value = datetime.fromisoformat(raw.strip().replace("z", "Z"))
    except ValueError:
        raise ValueError(f"{name} must be an ISO 8601 time such as 2026-12-01T00:00:00Z") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


async def calls(p: Platform, account: Account, v: Variables) -> Result:
    from uvox.voice import records

    try:
        since, until = _when(v.get("since"), "since"), _when(v.get("until"), "until")
    except ValueError as exc:
        return _r("016", detail=str(exc))
    raw_limit = (v.get("limit") or "100").strip()
    if not is_digits(raw_limit) or not 1 <= int(raw_limit) <= 1000:
        return _r("016", detail="limit must be a whole number from 1 to 1000")
    cursor = (v.get("cursor") or "").strip() or None
    fmt = (v.get("format") or "json").strip().lower()
    if fmt not in ("json", "csv"):
        return _r("016", detail="format must be json or csv")
    filters = {"since": since, "until": until, "number": (v.get("number") or "").strip() or None}
    if fmt == "csv":
        if cursor is not None:
            return _r("016", detail="format=csv exports every matching call: it takes no cursor")
        lines = records.to_csv(records.iter_calls(p.engine, account.id, **filters))
        name = f"calls-{account.number}.csv"
        return Result("120", {}, StreamingResponse(
            iterate_in_threadpool(lines), media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{name}"'}))
    try:
        page, nxt = await run_in_threadpool(records.list_calls, p.engine, account.id, limit=int(raw_limit),
                                            cursor=cursor, **filters)
    except records.BadCursor as exc:
        return _r("016", detail=str(exc))
    return _r("120", accountnumber=account.number, calls=[r.as_wire() for r in page], next_cursor=nxt)


# --- spend caps and the low-balance alert -------------------------------------------------

def _cap_scope(cap: caps.Cap) -> str:
    what = {"sms": "SMS", "calls": "calls", "all": "SMS and calls"}[cap.service]
    where = f" to {cap.country}" if cap.country else ""
    return f"the {cap.period} cap on {what}{where}"


def _cap_refusal(r: caps.Refused, currency: str) -> dict:
    """The fields of a 140 reply: which cap, what is spent under it, what the request costs."""
    detail = (f"this request costs {show(r.price)} {currency}; {_cap_scope(r.cap)} is {show(r.cap.amount)} "
              f"and {show(r.spent)} is already spent; it resets at {_iso(r.resets_at)}")
    return {"price": show(r.price), "currency": currency, "detail": detail,
            "cap": {"service": r.cap.service, "period": r.cap.period, "country": r.cap.country,
                    "limit": show(r.cap.amount), "spent": show(r.spent),
                    "remaining": show(max(r.cap.amount - r.spent, caps.ZERO)), "resets_at": _iso(r.resets_at)}}


def _cap_wire(s: caps.CapStatus) -> dict:
    return {"service": s.cap.service, "period": s.cap.period, "country": s.cap.country, "limit": show(s.cap.amount),
            "spent": show(s.spent), "remaining": show(s.remaining), "resets_at": _iso(s.resets_at)}


def _amount_or_none(raw: str | None) -> Decimal | None:
    """An amount a person typed, or None for "none", "off" or empty (remove)."""
    text = (raw or "").strip()
    if text.lower() in ("", "none", "off"):
        return None
    return parse_amount(text)


async def spend_caps(p: Platform, account: Account, v: Variables) -> Result:
    """Read the account's spend caps, or set the day and/or month cap of one scope."""
    if v.has("day") or v.has("month"):
        try:
            service, country = caps.parse_scope(v.get("service"), v.get("country"))
        except caps.BadCap as exc:
            return _r("142", detail=str(exc))
        limits: dict[str, Decimal | None] = {}
        for period in caps.PERIODS:
            if v.has(period):
                try:
                    limits[period] = _amount_or_none(v.get(period))
                except ValueError:
                    return _r("142", detail=f"{period} must be an amount such as 25.00 (at most 6 decimals, not "
                                            "negative), or none to remove the cap")
        statuses = await run_in_threadpool(caps.set_caps, p.engine, account.id, service, country, limits)
    else:
        statuses = await run_in_threadpool(caps.statuses, p.engine, account.id)
    return _r("141", accountnumber=account.number, currency=account.currency, caps=[_cap_wire(s) for s in statuses])


async def balance_alert(p: Platform, account: Account, v: Variables) -> Result:
    """Read the account's low-balance alert, or set its threshold (none removes it)."""
    if v.has("threshold"):
        try:
            threshold = _amount_or_none(v.get("threshold"))
        except ValueError:
            return _r("144", detail="threshold must be an amount such as 5.00 (at most 6 decimals, not negative), "
                                    "or none to remove the alert")
        alert = await run_in_threadpool(alerts.set_threshold, p.engine, account.id, threshold)
    else:
        alert = await run_in_threadpool(alerts.get, p.engine, account.id)
    return _r("143", accountnumber=account.number, currency=account.currency,
              threshold=show(alert.threshold) if alert.threshold is not None else None,
              available=show(alert.available), alerted=alert.alerted,
              email=alert.email, callback_url=alert.callback_url)


HANDLERS = {
    "sms-api": send_sms,
    "sms-api/status": sms_status,
    "OTP-api": otp_request,
    "OTP-api/verify": otp_verify,
    "balance": balance,
    "calls": calls,
    "spend-caps": spend_caps,
    "balance-alert": balance_alert,
}

