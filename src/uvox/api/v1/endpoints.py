"""The manual's endpoints: variables in, domain services called, envelope out.

Nothing here decides business rules; it maps the wire format onto uvox.sms,
uvox.billing and uvox.otp, in the check order of API.md.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal

import orjson
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.responses import Response, StreamingResponse

from uvox import secretbox
from uvox.accounts import countries, idempotency
from uvox.accounts.service import Account, callback_url_ok
from uvox.api.v1 import envelope
from uvox.api.v1.codes import CODES
from uvox.api.v1.envelope import media_type
from uvox.api.v1.params import Variables, token
from uvox.billing import alerts, caps, ledger, plans
from uvox.billing.money import parse_amount, show
from uvox.clock import aware, now
from uvox.db.session import read
from uvox.dispatch import outbox
from uvox.otp import guard
from uvox.otp import service as otp
from uvox.platform import Platform
from uvox.sms import encoding, intake, states, testmode
from uvox.sms.numbers import BadNumber, normalise, normalise_sender
from uvox.strings import is_digits
from uvox.voice import quote as call_quotes


@dataclass
class Result:
    """An endpoint's answer before it becomes a Response (or, for a download, the Response)."""

    code: str
    fields: dict
    response: Response | None = None
    #: The reply's encoded body, sent as it is: a reply kept for an idempotency key.
    body: bytes | None = None
    #: ``body`` is the first request's reply, answering a retry with its key.
    replayed: bool = False
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


# --- idempotency keys ----------------------------------------------------------

#: Where routes puts the Idempotency-Key header among the variables.
IDEMPOTENCY_HEADER = "Idempotency-Key"
_ENVELOPE = frozenset({"version", "code", "status", "resultstring", "statusmessage"})


def _idempotency(account: Account, v: Variables, endpoint: str) -> idempotency.Request | Result | None:
    """The request's idempotency key (header or variable) and digest; None without a key."""
    given = v.get_all("idempotency_key") + v.get_all(IDEMPOTENCY_HEADER)
    if not given:
        return None
    try:
        keys = {idempotency.check_key(k) for k in given}
    except idempotency.BadKey as exc:
        return _r("131", detail=str(exc))
    if len(keys) > 1:
        return _r(
            "131",
            detail="two different idempotency keys: send one, as the Idempotency-Key header "
            "or the idempotency_key variable",
        )
    return idempotency.Request(account.id, keys.pop(), idempotency.fingerprint(endpoint, v.items()))


def _answered(outcome: idempotency.Outcome) -> Result:
    if outcome.answer is None:
        return _r(
            "130",
            detail="this idempotency key was used in the last 24 hours for a request with other "
            "variables; a new request needs a new key",
        )
    a = outcome.answer
    fields = {k: val for k, val in orjson.loads(a.body).items() if k not in _ENVELOPE}
    return Result(a.code, fields, body=a.body, replayed=outcome.replayed)


def _answer(result: Result, test: bool) -> idempotency.Answer:
    """What a key keeps: the body exactly as routes.reply sends it (a test key's "test" mark too)."""
    fields = {"test": "1", **result.fields} if test else result.fields
    return idempotency.Answer(result.code, envelope.encode(result.code, **fields))


async def _seen(p: Platform, req: idempotency.Request | None) -> Result | None:
    """The answer of a key already used: a retry is answered without the writer."""
    if req is None:
        return None
    outcome = await run_in_threadpool(idempotency.find, p.engine, req)
    return _answered(outcome) if outcome is not None else None


# --- sms-api ---------------------------------------------------------------


@dataclass
class Send:
    """A send request read and checked, before anything touches the database."""

    out: intake.Outgoing
    recipients: list[str]
    #: Position in ``recipients`` -> (code, raw number) of numbers refused.
    errors: dict[int, tuple[str, str]]
    #: (position, E.164) of the well-formed numbers.
    valid: list[tuple[int, str]]


def read_send(p: Platform, account: Account, v: Variables) -> Send | Result:
    """sms-api's variables, checked in API.md's order (sms-api/quote reads the same)."""
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
        test=account.test,
        test_delay=p.settings.test_mode_delay_seconds,
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
    return Send(out, recipients, errors, valid)


def _sent(account: Account, s: Send, staged: tuple | None) -> Result:
    """sms-api's reply for what the intake did (``staged``: IntakeJob's result)."""
    errors = dict(s.errors)
    recipients = s.recipients
    accepted: dict[int, intake.Accepted] = {}
    if staged is not None:
        priced, unroutable, done = staged
        if isinstance(done, caps.Refused):
            # A send that would pass a spend cap is refused whole: nothing stored or charged.
            return _r("140", to=",".join(recipients), **_cap_refusal(done, account.currency))
        for i in unroutable:
            errors[i] = ("014", recipients[i])
        for (i, _), acc in zip(priced, done):
            accepted[i] = acc

    def one(i: int) -> dict:
        if i in accepted:
            a = accepted[i]
            code = "009" if a.state == intake.WAITING_BALANCE else "005"
            c = CODES[code]
            return {
                "to": a.recipient,
                "id": str(a.id),
                "code": code,
                "status": c.status_text,
                "statusmessage": c.message,
                "segments": str(a.segments),
                "price": show(a.price),
            }
        code, raw = errors[i]
        c = CODES[code]
        return {"to": raw, "code": code, "status": c.status_text, "statusmessage": c.message}

    if len(recipients) == 1:
        row = one(0)
        if "id" in row:
            return _r(
                row["code"],
                to=row["to"],
                id=row["id"],
                segments=row["segments"],
                price=row["price"],
                currency=account.currency,
            )
        return _r(row["code"], to=row["to"])

    results = [one(i) for i in range(len(recipients))]
    ok = [r for r in results if "id" in r]
    if not ok:
        first = results[0]
        return _r(first["code"], to=",".join(recipients), results=results)
    code = "009" if any(r["code"] == "009" for r in ok) else "005"
    return _r(
        code,
        to=",".join(r["to"] for r in ok),
        id=",".join(r["id"] for r in ok),
        accepted=str(len(ok)),
        rejected=str(len(results) - len(ok)),
        currency=account.currency,
        results=results,
    )


def _queued(staged: tuple) -> bool:
    """Whether the intake stored messages (not refused whole by a spend cap)."""
    done = staged[2]
    return isinstance(done, list) and bool(done)


async def send_sms(p: Platform, account: Account, v: Variables) -> Result:
    if not v.has("to") or not v.has("text"):
        return _r("016", detail="sms-api needs the variables to and text")
    req = _idempotency(account, v, "sms-api")
    if isinstance(req, Result):
        return req
    seen = await _seen(p, req)
    if seen is not None:
        return seen
    s = read_send(p, account, v)
    if isinstance(s, Result):
        return s
    if not s.valid:
        return _sent(account, s, None)
    job = intake.IntakeJob(s.out, s.valid)
    if req is None:
        staged = await p.writer.run(job)
        if _queued(staged) and not account.test:  # test mode queues nothing for a dispatcher
            p.queued.notify()
        return _sent(account, s, staged)

    keyed = req

    def send_once(conn):
        def send() -> tuple[idempotency.Answer, bool]:
            staged = job(conn)
            return _answer(_sent(account, s, staged), account.test), _queued(staged)

        return idempotency.once(conn, keyed, send)

    outcome = await p.writer.run(send_once)
    if outcome.answer is not None and not outcome.replayed and not account.test:
        p.queued.notify()
    return _answered(outcome)


# --- sms-api/quote -----------------------------------------------------------

ENCODING_NAMES = {encoding.GSM7: "GSM-7", encoding.UCS2: "UCS-2"}
#: What sms-api/quote and calls/quote answer (021) for an account without a plan.
NO_PLAN_TO_PRICE = "the account has no plan yet: nothing can be priced"


async def sms_quote(p: Platform, account: Account, v: Variables) -> Result:
    """What sms-api would charge for these variables, per recipient: nothing is sent,
    charged or recorded. Priced by intake's own functions (encoding, segments, the
    rate lookup), so the quote and the send cannot disagree."""
    if not v.has("to") or not v.has("text"):
        return _r("016", detail="sms-api/quote needs the variables to and text")
    s = read_send(p, account, v)
    if isinstance(s, Result):
        return s
    if account.plan_id is None:
        return _r("021", detail=NO_PLAN_TO_PRICE)
    measured = s.out.encoded
    assert measured is not None  # Outgoing measures its text when it is made
    remaining = encoding.room_left(s.out.text)

    def price_all() -> dict[int, intake.Priced | None]:
        found: dict[int, intake.Priced | None] = {}
        with read(p.engine) as conn:
            for i, number in s.valid:
                try:
                    found[i] = intake.price(conn, s.out, number)
                except intake.NoRate:
                    found[i] = None
        return found

    priced = await run_in_threadpool(price_all) if s.valid else {}
    ok_code = CODES["132"]
    results = []
    total = Decimal(0)
    for i, raw in enumerate(s.recipients):
        q = priced.get(i)
        if q is None:
            code = s.errors[i][0] if i in s.errors else "014"
            c = CODES[code]
            results.append({"to": raw, "code": code, "status": c.status_text, "statusmessage": c.message})
            continue
        total += q.price
        results.append(
            {
                "to": q.recipient,
                "destination": q.destination,
                "encoding": ENCODING_NAMES[measured.encoding],
                "segments": str(measured.segments),
                "remaining": str(remaining),
                "unitprice": show(q.unit),
                "price": show(q.price),
                "code": "132",
                "status": ok_code.status_text,
                "statusmessage": ok_code.message,
            }
        )
    ok = [r for r in results if r["code"] == "132"]
    if not ok:
        first = results[0]
        if len(results) == 1:
            return _r(first["code"], to=first["to"])
        return _r(first["code"], to=",".join(s.recipients), results=results)
    return _r(
        "132",
        to=",".join(r["to"] for r in ok),
        encoding=ENCODING_NAMES[measured.encoding],
        segments=str(measured.segments),
        remaining=str(remaining),
        total=show(total),
        currency=account.currency,
        accepted=str(len(ok)),
        rejected=str(len(results) - len(ok)),
        results=results,
    )


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
    if m.test:
        fields["test"] = "1"
        fields["notice"] = TEST_NOTICE
    return _r(code, **fields)


TEST_NOTICE = "Sent with a test key: no carrier received this message and nothing was charged."


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
    req = _idempotency(account, v, "OTP-api")
    if isinstance(req, Result):
        return req
    seen = await _seen(p, req)
    if seen is not None:
        return seen
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
    # Test mode: the documented fixed code, and nothing sent or charged (sms/testmode.py).
    code = testmode.otp_code(s.otp_digits) if account.test else otp.new_code(s.otp_digits)
    secret = p.secret

    def store(conn) -> tuple[Result, bool]:
        """The reply, and whether a code was sent."""
        template = otp.find_template(conn, account.id, ref_id)
        if template is None:
            return _r("020"), False
        country = countries.refused(account.allowed_countries, account.blocked_countries, phone)
        if country:
            return _r(
                "152",
                phone_number=phone,
                country=country,
                detail=f"the account's country rules do not allow numbers of {country}",
            ), False
        guard.lock_account(conn, account.id)
        refusal = guard.check(conn, s, account.id, phone, address)
        if refusal is not None:
            return Result(
                refusal.code,
                {"phone_number": phone, "detail": refusal.detail},
                headers={"retry-after": str(refusal.retry_after)},
            ), False
        real_text = template.text.replace(otp.CODE_PLACEHOLDER, code)
        out = intake.Outgoing(
            account_id=account.id,
            plan_id=account.plan_id,
            currency=account.currency,
            text=real_text,
            sender=template.sender,
            kind="otp",
            validity_seconds=min(s.message_validity_seconds, s.otp_ttl_seconds),
            masked_text=template.text.replace(otp.CODE_PLACEHOLDER, "*" * len(code)),
            sealed_text=None if account.test else secretbox.seal(secret, real_text),
            test=account.test,
            test_delay=s.test_mode_delay_seconds,
        )
        try:
            priced = intake.price(conn, out, phone)
        except intake.NoRate:
            return _r("014", to=raw_phone, phone_number=raw_phone), False
        accepted = intake.accept(conn, out, [priced])
        if isinstance(accepted, caps.Refused):
            return _r("140", phone_number=phone, **_cap_refusal(accepted, account.currency)), False
        (msg,) = accepted
        session_id = otp.open_session(
            conn,
            secret,
            account_id=account.id,
            template_id=template.id,
            phone=phone,
            code=code,
            message_id=msg.id,
            ttl_seconds=s.otp_ttl_seconds,
            prefix=guard.prefix_of(phone, s.otp_prefix_digits),
            address=address,
        )
        # A test request trips no alarm (and, otp/guard.py, counts towards none).
        pause = None if account.test else guard.after_request(conn, s, account.id, phone)
        if pause is not None:
            outbox.enqueue_event(conn, account.id, pause.event(account.number, s.otp_alarm_window_seconds), now())
        if msg.state == intake.WAITING_BALANCE:
            return _r("021", sessionID=session_id, phone_number=phone, id=str(msg.id)), True
        return _r("022", phone_number=phone, sessionID=session_id, id=str(msg.id)), True

    if req is None:
        result, sent = await p.writer.run(store)
        if sent and not account.test:  # test mode queues nothing for a dispatcher
            p.queued.notify()
        return result

    keyed = req

    def store_once(conn):
        def send() -> tuple[idempotency.Answer, bool]:
            result, sent = store(conn)
            return _answer(result, account.test), sent

        return idempotency.once(conn, keyed, send)

    outcome = await p.writer.run(store_once)
    if outcome.answer is not None and not outcome.replayed and not account.test:
        p.queued.notify()
    return _answered(outcome)


async def otp_verify(p: Platform, account: Account, v: Variables) -> Result:
    if not v.has("sessionid", "sessionID", "sessionId") or not v.has("otp_code"):
        return _r("016", detail="OTP-api/verify needs the variables sessionid and otp_code")
    session_id = token(v.get("sessionid", "sessionID", "sessionId"))
    given = token(v.get("otp_code"))
    secret, limit = p.secret, p.settings.otp_max_attempts
    code = await p.writer.run(lambda conn: otp.verify(conn, secret, account.id, session_id, given, limit))
    return _r(code, sessionID=session_id)


# --- countries (extension) ----------------------------------------------------

#: What a test key gets when it tries to change the account's settings (108).
TEST_KEY_READS_ONLY = (
    "a test key sends in test mode and reads; it cannot change the account's settings "
    "(spend caps, countries, low-balance alert): use a live key"
)


def _settings_change(account: Account) -> Result | None:
    """None when ``account``'s key may change settings; 108 for a test key, which must
    not weaken the live account's protections (a leaked CI key could lift its caps)."""
    return _r("108", detail=TEST_KEY_READS_ONLY) if account.test else None


async def country_rules(p: Platform, account: Account, v: Variables) -> Result:
    """Read the account's country rules, or replace the list(s) given: ``allowed`` and
    ``blocked``, ISO codes separated by commas (empty: clear the list)."""
    if (v.has("allowed") or v.has("blocked")) and (refused := _settings_change(account)):
        return refused
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
    fields = {
        "accountnumber": account.number,
        "currency": account.currency,
        "balance": show(bal),
        "credit": show(credit),
        "available": show(bal + credit - held),
    }
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
                item = orjson.dumps(
                    {"dialprefix": r.prefix, "destination": r.destination, "rateinitial": _rate_text(r.rate_initial)}
                )
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
        return Result(
            "120",
            {},
            StreamingResponse(
                iterate_in_threadpool(lines),
                media_type="text/csv; charset=utf-8",
                headers={"content-disposition": f'attachment; filename="{name}"'},
            ),
        )
    try:
        page, nxt = await run_in_threadpool(
            records.list_calls, p.engine, account.id, limit=int(raw_limit), cursor=cursor, **filters
        )
    except records.BadCursor as exc:
        return _r("016", detail=str(exc))
    return _r("120", accountnumber=account.number, calls=[r.as_wire() for r in page], next_cursor=nxt)


# --- calls/quote ----------------------------------------------------------------


async def call_quote(p: Platform, account: Account, v: Variables) -> Result:
    """What a call to ``to`` would cost for ``minutes`` minutes (default 1), priced by
    the voice rating code a real call is charged by."""
    if not v.has("to"):
        return _r("016", detail="calls/quote needs the variable to")
    raw_to = (v.get("to") or "").strip()
    raw_minutes = (v.get("minutes") or "1").strip()
    if not is_digits(raw_minutes) or not 1 <= int(raw_minutes) <= call_quotes.MAX_MINUTES:
        return _r("016", detail=f"minutes must be a whole number from 1 to {call_quotes.MAX_MINUTES}")
    if account.plan_id is None:
        return _r("021", detail=NO_PLAN_TO_PRICE)
    try:
        q = await run_in_threadpool(call_quotes.quote, p.engine, account.plan_id, raw_to, int(raw_minutes))
    except call_quotes.NotANumber:
        return _r("002", to=raw_to)
    except call_quotes.NoRate:
        return _r("014", to=raw_to)
    t = q.tariff
    return _r(
        "133",
        to=q.number,
        destination=q.destination,
        rate=show(t.rate, 5),
        connectcharge=show(t.connect),
        initblock=str(t.init_block),
        billingblock=str(t.billing_block),
        minutes=str(q.minutes),
        billed=str(q.billed),
        price=show(q.price),
        currency=account.currency,
    )


# --- spend caps and the low-balance alert -------------------------------------------------


def _cap_scope(cap: caps.Cap) -> str:
    what = {"sms": "SMS", "calls": "calls", "all": "SMS and calls"}[cap.service]
    where = f" to {cap.country}" if cap.country else ""
    return f"the {cap.period} cap on {what}{where}"


def _cap_refusal(r: caps.Refused, currency: str) -> dict:
    """The fields of a 140 reply: which cap, what is spent under it, what the request costs."""
    detail = (
        f"this request costs {show(r.price)} {currency}; {_cap_scope(r.cap)} is {show(r.cap.amount)} "
        f"and {show(r.spent)} is already spent; it resets at {_iso(r.resets_at)}"
    )
    return {
        "price": show(r.price),
        "currency": currency,
        "detail": detail,
        "cap": {
            "service": r.cap.service,
            "period": r.cap.period,
            "country": r.cap.country,
            "limit": show(r.cap.amount),
            "spent": show(r.spent),
            "remaining": show(max(r.cap.amount - r.spent, caps.ZERO)),
            "resets_at": _iso(r.resets_at),
        },
    }


def _cap_wire(s: caps.CapStatus) -> dict:
    return {
        "service": s.cap.service,
        "period": s.cap.period,
        "country": s.cap.country,
        "limit": show(s.cap.amount),
        "spent": show(s.spent),
        "remaining": show(s.remaining),
        "resets_at": _iso(s.resets_at),
    }


def _amount_or_none(raw: str | None) -> Decimal | None:
    """An amount a person typed, or None for "none", "off" or empty (remove)."""
    text = (raw or "").strip()
    if text.lower() in ("", "none", "off"):
        return None
    return parse_amount(text)


async def spend_caps(p: Platform, account: Account, v: Variables) -> Result:
    """Read the account's spend caps, or set the day and/or month cap of one scope."""
    if v.has("day") or v.has("month"):
        if refused := _settings_change(account):
            return refused
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
                    return _r(
                        "142",
                        detail=f"{period} must be an amount such as 25.00 (at most 6 decimals, not "
                        "negative), or none to remove the cap",
                    )
        statuses = await run_in_threadpool(caps.set_caps, p.engine, account.id, service, country, limits)
    else:
        statuses = await run_in_threadpool(caps.statuses, p.engine, account.id)
    return _r("141", accountnumber=account.number, currency=account.currency, caps=[_cap_wire(s) for s in statuses])


async def balance_alert(p: Platform, account: Account, v: Variables) -> Result:
    """Read the account's low-balance alert, or set its threshold (none removes it)."""
    if v.has("threshold"):
        if refused := _settings_change(account):
            return refused
        try:
            threshold = _amount_or_none(v.get("threshold"))
        except ValueError:
            return _r(
                "144",
                detail="threshold must be an amount such as 5.00 (at most 6 decimals, not negative), "
                "or none to remove the alert",
            )
        alert = await run_in_threadpool(alerts.set_threshold, p.engine, account.id, threshold)
    else:
        alert = await run_in_threadpool(alerts.get, p.engine, account.id)
    return _r(
        "143",
        accountnumber=account.number,
        currency=account.currency,
        threshold=show(alert.threshold) if alert.threshold is not None else None,
        available=show(alert.available),
        alerted=alert.alerted,
        email=alert.email,
        callback_url=alert.callback_url,
    )


HANDLERS = {
    "sms-api": send_sms,
    "sms-api/status": sms_status,
    "sms-api/quote": sms_quote,
    "OTP-api": otp_request,
    "OTP-api/verify": otp_verify,
    "balance": balance,
    "calls": calls,
    "calls/quote": call_quote,
    "countries": country_rules,
    "spend-caps": spend_caps,
    "balance-alert": balance_alert,
}
