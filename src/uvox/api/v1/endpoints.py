"""The manual's endpoints: variables in, domain services called, envelope out.

Nothing here decides business rules; it maps the wire format onto uvox.sms,
uvox.billing and uvox.otp, in the check order of API.md.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC

import orjson
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.responses import Response, StreamingResponse

from uvox import secretbox
from uvox.accounts import countries
from uvox.accounts.service import Account, callback_url_ok
from uvox.api.v1.codes import CODES
from uvox.api.v1.envelope import media_type
from uvox.api.v1.params import Variables, token
from uvox.billing import ledger, plans
from uvox.billing.money import show
from uvox.clock import aware, now
from uvox.db.session import read
from uvox.dispatch import outbox
from uvox.otp import guard
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
    #: Headers the reply adds (Retry-After of a refusal by a limit).
    headers: dict[str, str] | None = None


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
    if account.allowed_countries or account.blocked_countries:
        # The account's country rules (uvox.accounts.countries) hold for sms-api as for OTP-api.
        allowed = []
        for i, number in valid:
            if countries.refused(account.allowed_countries, account.blocked_countries, number):
                errors[i] = ("152", recipients[i])
            else:
                allowed.append((i, number))
        valid = allowed

    accepted: dict[int, intake.Accepted] = {}
    if valid:
        priced, unroutable, done = await p.writer.run(intake.IntakeJob(out, valid))
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

def client_address(v: Variables) -> str | None:
    """Who a code is for, as the per-address limit counts it: the ``client_ip`` variable
    (the end user's address, when the customer's server calls on their behalf), else the
    HTTP client's address. None when ``client_ip`` is not an IP address."""
    raw = (v.get("client_ip") or "").strip()
    if not raw:
        return v.client_address or "unknown"
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        return None


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
    address = client_address(v)
    if address is None:
        return _r("016", detail="client_ip must be an IPv4 or IPv6 address")
    s = p.settings
    code = otp.new_code(s.otp_digits)
    secret = p.secret

    def store(conn):
        template = otp.find_template(conn, account.id, ref_id)
        if template is None:
            return _r("020")
        country = countries.refused(account.allowed_countries, account.blocked_countries, phone)
        if country:
            return _r("152", phone_number=phone, country=country,
                      detail=f"the account's country rules do not allow numbers of {country}")
        guard.lock_account(conn, account.id)
        refusal = guard.check(conn, s, account.id, phone, address)
        if refusal is not None:
            return Result(refusal.code, {"phone_number": phone, "detail": refusal.detail},
                          headers={"retry-after": str(refusal.retry_after)})
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
        (msg,) = intake.accept(conn, out, [priced])
        session_id = otp.open_session(conn, secret, account_id=account.id, template_id=template.id, phone=phone,
                                      code=code, message_id=msg.id, ttl_seconds=s.otp_ttl_seconds,
                                      prefix=guard.prefix_of(phone, s.otp_prefix_digits), address=address)
        pause = guard.after_request(conn, s, account.id, phone)
        if pause is not None:
            outbox.enqueue_event(conn, account.id, pause.event(account.number, s.otp_alarm_window_seconds), now())
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


# --- countries (extension) ----------------------------------------------------

async def country_rules(p: Platform, account: Account, v: Variables) -> Result:
    """Read the account's country rules, or replace the list(s) given: ``allowed`` and
    ``blocked``, ISO codes separated by commas (empty: clear the list)."""
    changes = {}
    for name in ("allowed", "blocked"):
        if v.has(name):
            try:
                changes[name] = countries.parse(v.get(name))
            except countries.BadCountry as exc:
                return _r("151", detail=str(exc))
    if changes:
        allowed, blocked = await run_in_threadpool(lambda: countries.set_lists(p.engine, account.id, **changes))
    else:
        allowed, blocked = account.allowed_countries, account.blocked_countries
    return _r("150", allowed=",".join(allowed), blocked=",".join(blocked))


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


HANDLERS = {
    "sms-api": send_sms,
    "sms-api/status": sms_status,
    "OTP-api": otp_request,
    "OTP-api/verify": otp_verify,
    "balance": balance,
    "calls": calls,
    "countries": country_rules,
}

