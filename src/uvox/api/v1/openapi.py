"""The OpenAPI description of the v1 API, and a readable page of it at /docs."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from jinja2 import Environment, FileSystemLoader
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from uvox import markup
from uvox.api.v1.codes import CODES
from uvox.api.v1.endpoints import NO_PLAN_TO_PRICE, TEST_KEY_READS_ONLY
from uvox.api.v1.envelope import body
from uvox.api.v1.examples import CALL_QUOTE, TEST_SEND, TEST_STATUS
from uvox.voice.records import CSV_COLUMNS

AUTH_PARAMS = [
    {
        "name": "accountnumber",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "Account number (with apikey). Not needed with the Api-Key header.",
        "example": "12345678",
    },
    {
        "name": "apikey",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "API key (with accountnumber). Prefer the Api-Key header: query strings end up in proxies' logs.",
        "example": "4D41E00J6KMXABS",
    },
]


def _envelope_example(code: str, **fields) -> dict:
    return {"summary": f"{code} {CODES[code].message}", "value": body(code, **fields)}


#: Test mode (sms/testmode.py), as /docs and the portal's documentation explain it.
TEST_MODE = (
    'Test mode: an API key created as a test key (the portal\'s "Test key", or `uvox admin apikey create '
    "ACCOUNT --test`) is answered like a live key (same validation of variables and numbers, codes, reply "
    "fields, message ids, status and history) but nothing it sends reaches a carrier and nothing is charged. "
    "A test send is checked against neither the balance nor the spend caps: it never waits for balance (005, "
    "never 009) and no cap refuses it (never 140, whatever a live send would get); balance and rates show the "
    "real figures. Every reply to a test key adds "
    '`"test":"1"` and the header `X-UVox-Test: 1` (rates, a bare array, the header only), and the status of '
    'a test message adds `"test":"1"`. About 2 seconds after the send (UVOX_TEST_MODE_DELAY_SECONDS) a test '
    "message ends in the state its number chooses, with the status callbacks a live message fires (their body "
    'adds `"test":"1"` and says `"simulated":true`: no phone got it): '
    "+15005550001 delivered (110), +15005550002 undelivered (111), +15005550003 rejected (113), +15005550004 "
    "expired (112), any other number delivered. The magic numbers are accepted whatever the plan covers. "
    "OTP-api with a test key sends nothing and its code is always 000000 (as many zeros as a live code has "
    "digits); OTP-api/verify checks it as a live code. A test key reads (balance, rates, statuses, spend caps, "
    "country rules, the low-balance alert) but cannot change the account's settings: setting spend caps, "
    "countries or the low-balance alert with one is refused with 108 (HTTP 403)."
)
#: The /docs page's "Test mode" section (Markdown; SAMPLE_BASE becomes the server's address):
#: commands that work when pasted with a test key, and what they answer.
TEST_MODE_GUIDE = """\
Write and run your integration tests without sending or paying. Create a **test key**: in the portal,
*API keys*, choose *Test key* (operators: `uvox admin apikey create ACCOUNT --test`). Use it as a live
key; nothing it sends reaches a carrier and nothing is charged.

**1. Send to a magic number.** The number chooses the final state: `+15005550001` delivered (statecode
110), `+15005550002` undelivered (111), `+15005550003` rejected (113), `+15005550004` expired (112); any
other number is delivered.

```sh
API_KEY='your-test-key'
curl -sS "https://uvox.example.com/api/get-api/v1/sms-api" \\
  -H "Api-Key: $API_KEY" \\
  --data-urlencode 'to=+15005550002' \\
  --data-urlencode 'text=Hello from CI'
```

The reply is a live send's, with `"test":"1"` (and the header `X-UVox-Test: 1`):

```json
{"version":"1","code":"005","status":"success","resultstring":"Success","to":"+15005550002","id":"1",
 "segments":"1","price":"0.0075","currency":"US$","test":"1","statusmessage":"Message sent successfully"}
```

`price` is what a live send would cost; nothing is charged. A test send is checked against neither the
balance nor the spend caps: it never waits for balance (005, never 009) and no cap refuses it (never 140).

**2. About 2 seconds later, its status** (use the `id` of the reply):

```sh
curl -sS -G "https://uvox.example.com/api/get-api/v1/sms-api/status" \\
  -H "Api-Key: $API_KEY" \\
  --data-urlencode 'messageId=1'
```

```json
{"version":"1","code":"013","status":"success","resultstring":"Success","id":"1","to":"+15005550002",
 "from":"","state":"undelivered","segments":"1","price":"0.0075","currency":"US$",
 "created_at":"2026-12-06T03:45:39.664909+00:00","submitted_at":"2026-12-06T03:45:39.664909+00:00",
 "done_at":"2026-12-06T03:45:41.699395+00:00","statecode":"111","statetext":"Undelivered",
 "error":"stat:UNDELIV err:000","test":"1",
 "notice":"Sent with a test key: no carrier received this message and nothing was charged.",
 "statusmessage":"SMS Sent"}
```

**3. The status callbacks** a live message fires go to your callback URL: `submitted`, then the final
state. Their body is a live callback's, plus `"test":"1"`, and `simulated` is `true` (no phone got it):

```json
{"messageId":"1","to":"+15005550002","from":"","state":"undelivered","code":"111",
 "statusmessage":"Undelivered","segments":"1","error":"stat:UNDELIV err:000","simulated":true,
 "timestamp":"2026-12-06T03:45:41.699395+00:00","test":"1"}
```

**4. One-time codes.** With a test key `OTP-api` sends nothing and the code is always `000000`:

```sh
curl -sS "https://uvox.example.com/api/get-api/v1/OTP-api" \\
  -H "Api-Key: $API_KEY" \\
  --data-urlencode 'ref_id=YOUR_TEMPLATE_REF_ID' \\
  --data-urlencode 'phone_number=+15005550001'
# {"version":"1.00","code":"022",...,"sessionID":"8Sy1...","id":"2","test":"1",...}
curl -sS "https://uvox.example.com/api/get-api/v1/OTP-api/verify" \\
  -H "Api-Key: $API_KEY" \\
  --data-urlencode 'sessionid=8Sy1...' \\
  --data-urlencode 'otp_code=000000'
# {"version":"1.00","code":"027","status":"success",...,"test":"1","statusmessage":"OTP Matched"}
```

Test codes count towards no pumping limit and no conversion rate.

**5. What a test key cannot do.** It reads (balance, rates, statuses, spend caps, country rules, the
low-balance alert) but cannot change the account's settings: `spend-caps` with `day` or `month`,
`countries` with `allowed` or `blocked` and `balance-alert` with `threshold` answer 108:

```json
{"version":"1.00","code":"108","status":"error","resultstring":"Failure",
 "detail":"a test key sends in test mode and reads; it cannot change the account's settings (spend caps, countries, low-balance alert): use a live key",
 "test":"1","statusmessage":"Not allowed with a test key"}
```
"""


TEST_KEY_EXAMPLE = _envelope_example("108", detail=TEST_KEY_READS_ONLY, test="1")
NO_PLAN_EXAMPLE = _envelope_example("021", detail=NO_PLAN_TO_PRICE)
TEST_HEADER = {
    "X-UVox-Test": {
        "description": "1 when the request came with a test key (test mode).",
        "schema": {"type": "string", "enum": ["1"]},
    }
}


def _op(summary: str, description: str, params: list[dict], examples: dict[str, dict], tag: str) -> dict:
    op = {
        "summary": summary,
        "description": description,
        "tags": [tag],
        "parameters": AUTH_PARAMS + params,
        "security": [{"ApiKeyHeader": []}, {"AccountAndKey": []}],
        "responses": {
            "200": {
                "description": "Success codes",
                "headers": TEST_HEADER,
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/Envelope"},
                        "examples": {k: v for k, v in examples.items() if CODES[v["value"]["code"]].http == 200},
                    }
                },
            },
            "4XX": {
                "description": "Error codes (see the code table)",
                "headers": TEST_HEADER,
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/Envelope"},
                        "examples": {k: v for k, v in examples.items() if 400 <= CODES[v["value"]["code"]].http < 500},
                    }
                },
            },
            "500": {
                "description": "Internal problem: logged on the server with the request id, never a traceback",
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/Envelope"},
                        "examples": {"e500": _envelope_example("500")},
                    }
                },
            },
        },
    }
    return {m: op for m in ("get", "post", "put")}


def _param(name: str, description: str, example: str, required: bool = True) -> dict:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": {"type": "string"},
        "description": description + " May also be sent in a form or JSON body.",
        "example": example,
    }


#: The address code samples are written for; /docs shows them with the server's own.
SAMPLE_BASE = "https://uvox.example.com"
#: The API key line of every code sample: replaced by the reader's key, the rest pastes as it is.
SAMPLE_KEY = "your-api-key"

IDEMPOTENCY_PARAMS = [
    {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "maxLength": 255},
        "description": "Optional, any unique text of up to 255 characters (a UUID, an order number). A retry with the "
        "same key and the same variables within 24 hours gets the first reply again, byte for byte "
        "(the same message ids, header Idempotent-Replayed: true) and sends and charges nothing. The "
        "same key with other variables: 130. Keys are per account; a request that sent nothing (an "
        "error) leaves its key unused.",
        "example": "order-4711-shipped",
    },
    {
        "name": "idempotency_key",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "maxLength": 255},
        "description": "The Idempotency-Key header as a variable, for clients that cannot set headers. "
        "May also be sent in a form or JSON body.",
        "example": "order-4711-shipped",
    },
]


def _code_sample(endpoint: str, *args: str, extra_headers: tuple[str, ...] = ()) -> list[dict]:
    """A curl command for the operation (Redoc's x-codeSamples), pasteable into a shell."""
    lines = [
        f"API_KEY='{SAMPLE_KEY}'",
        f'curl -sS "{SAMPLE_BASE}/api/get-api/v1/{endpoint}" \\',
        '  -H "Api-Key: $API_KEY"' + (" \\" if args or extra_headers else ""),
    ]
    rest = [f'  -H "{h}"' for h in extra_headers] + [f"  {a}" for a in args]
    lines += [line + " \\" for line in rest[:-1]] + rest[-1:]
    return [{"lang": "Shell", "label": "curl", "source": "\n".join(lines)}]


#: One call record as the calls endpoint returns it (VOICE.md's fields, all strings).
CALL_EXAMPLE = {
    "id": "42",
    "sip_username": "12345678123456",
    "from": "12345678123456",
    "to": "+13055550100",
    "destination": "USA Miami",
    "direction": "outbound",
    "status": "answered",
    "sip_code": "200",
    "hangup": "caller",
    "started_at": "2026-12-01T10:00:00Z",
    "answered_at": "2026-12-01T10:00:04Z",
    "ended_at": "2026-12-01T10:01:09Z",
    "duration": "65",
    "billed": "120",
    "rate": "0.01200",
    "connectcharge": "0.00",
    "price": "0.024",
    "currency": "US$",
    "trunk": "carrier1",
}
CALL_FIELDS = CSV_COLUMNS


def _calls_op(common: dict) -> dict:
    refused = {
        **CALL_EXAMPLE,
        "id": "41",
        "to": "+4420000000",
        "destination": "",
        "status": "refused",
        "sip_code": "404",
        "hangup": "system",
        "answered_at": None,
        "ended_at": "2026-12-01T09:58:00Z",
        "started_at": "2026-12-01T09:58:00Z",
        "duration": "0",
        "billed": "0",
        "rate": "0.00000",
        "price": "0",
        "trunk": None,
    }
    ops = _op(
        "Call records",
        "The account's call records, newest first (calls in progress are not listed yet): status answered, busy, "
        "no_answer, failed, cancelled or refused; seconds, amounts and ids as strings, times ISO 8601 UTC. A page "
        "holds `limit` records; `next_cursor` (absent on the last page) is the `cursor` of the next one. "
        "`format=csv` returns every matching record as CSV with the same columns (no cursor).",
        [
            _param(
                "since", "Calls started at or after this ISO 8601 time (no zone: UTC).", "2026-12-01T00:00:00Z", False
            ),
            _param("until", "Calls started before this ISO 8601 time.", "2026-12-02T00:00:00Z", False),
            _param(
                "number", "Only calls whose caller, called number or SIP user contains these digits.", "1305", False
            ),
            _param("limit", "Records per page, 1 to 1000 (default 100).", "100", False),
            _param("cursor", "next_cursor of the previous page.", "42", False),
            _param("format", "json (default) or csv.", "csv", False),
        ],
        {
            "ok": _envelope_example("120", accountnumber="12345678", calls=[CALL_EXAMPLE, refused], next_cursor="41"),
            "last": _envelope_example("120", accountnumber="12345678", calls=[]),
            **common,
        },
        "Voice",
    )
    op = dict(ops["get"])
    ok = op["responses"]["200"]
    op["responses"] = {
        **op["responses"],
        "200": {
            "description": ok["description"] + "; with format=csv, text/csv",
            "content": {
                "application/json": ok["content"]["application/json"],
                "text/csv": {
                    "schema": {"type": "string"},
                    "example": ",".join(CALL_FIELDS)
                    + "\r\n"
                    + ",".join(str(CALL_EXAMPLE[k] or "") for k in CALL_FIELDS)
                    + "\r\n",
                },
            },
        },
    }
    return {m: op for m in ("get", "post", "put")}


def _quoted(to: str, destination: str, price: str) -> dict:
    """One recipient of the quote example (one GSM-7 segment, 120 units left)."""
    return {
        "to": to,
        "destination": destination,
        "encoding": "GSM-7",
        "segments": "1",
        "remaining": "120",
        "unitprice": price,
        "price": price,
        "code": "132",
        "status": "success",
        "statusmessage": CODES["132"].message,
    }


CAP_EXAMPLE = {
    "service": "sms",
    "period": "day",
    "country": "",
    "limit": "5.00",
    "spent": "4.9925",
    "remaining": "0.0075",
    "resets_at": "2026-12-06T00:00:00+00:00",
}


def _cap_refused(recipient: dict[str, str], price: str, costs: str) -> dict:
    """140: a send of ``price`` to ``recipient`` that would pass CAP_EXAMPLE's day cap."""
    return _envelope_example(
        "140",
        **recipient,
        price=price,
        currency="US$",
        detail=f"this request costs {costs} US$; the day cap on SMS is 5.00 and 4.9925 "
        "is already spent; it resets at 2026-12-06T00:00:00+00:00",
        cap=CAP_EXAMPLE,
    )


#: The cap refusal of an sms-api send, as spend-caps documents it too.
SMS_CAP_REFUSED = _cap_refused({"to": "+13058888888"}, "0.0150", "0.015")


def _spending_ops(common: dict) -> dict[str, dict]:
    """spend-caps and balance-alert (billing.caps, billing.alerts); see docs/spend.md."""
    return {
        "/api/get-api/v1/spend-caps": _op(
            "Spend caps",
            "Limits the account sets on its own spending, per UTC day and month, for `sms` (SMS and one-time "
            "codes), `calls`, or `all` (both together), for every destination or one `country`. Without `day` or "
            "`month` the reply lists the caps with what is spent under each (charged this period, plus money "
            "held by calls in progress for `calls` and `all` caps). With them, it sets (an amount) or removes "
            "(`none`) the day and/or month cap of one `service` and `country`, then lists them all. A send "
            "(`sms-api`, `OTP-api`) that would pass a cap is refused whole with code 140 (HTTP 402) before "
            "anything is charged, with `cap` naming the cap; a call is refused with SIP 402, or given a time "
            "limit whose price fits under the caps.",
            [
                _param("service", "sms, calls or all (default all).", "sms", False),
                _param(
                    "country", "ISO 3166 two-letter code of the destination; empty for every destination.", "MX", False
                ),
                _param("day", "Cap for each UTC day, or none to remove it.", "5.00", False),
                _param("month", "Cap for each UTC month, or none to remove it.", "100", False),
            ],
            {
                "ok": _envelope_example("141", accountnumber="12345678", currency="US$", caps=[CAP_EXAMPLE]),
                "e142": _envelope_example(
                    "142",
                    detail="country must be a two-letter ISO 3166 code such as MX or US, "
                    "or empty for every destination",
                ),
                "e108": TEST_KEY_EXAMPLE,
                "e140": SMS_CAP_REFUSED,
                **common,
            },
            "Account",
        ),
        "/api/get-api/v1/balance-alert": _op(
            "Low-balance alert",
            "When a charge takes the account's available money (balance + credit - held) below `threshold`, the "
            'account is told once, by a status callback to its callback URL (`{"event":"low_balance",...}`) '
            "and by e-mail, and again only after the money was back at or above it. Without `threshold` the "
            "reply shows the alert; `threshold=none` removes it. `alerted` is true while the alert has fired and "
            "not re-armed.",
            [
                _param(
                    "threshold",
                    "Alert when available money falls below this amount; none removes the alert.",
                    "5.00",
                    False,
                )
            ],
            {
                "ok": _envelope_example(
                    "143",
                    accountnumber="12345678",
                    currency="US$",
                    threshold="5.00",
                    available="12.40",
                    alerted=False,
                    email="ops@example.com",
                ),
                "e144": _envelope_example(
                    "144",
                    detail="threshold must be an amount such as 5.00 (at most 6 decimals, "
                    "not negative), or none to remove the alert",
                ),
                "e108": TEST_KEY_EXAMPLE,
                **common,
            },
            "Account",
        ),
    }


def spec() -> dict:
    common = {
        "e001": _envelope_example("001"),
        "e016": _envelope_example("016"),
        "e004": _envelope_example("004"),
        "e017": _envelope_example("017"),
        "e105": _envelope_example("105", detail="the body may have at most 1000000 bytes"),
        "e106": _envelope_example("106", detail="the x-padding header has 100010 bytes, at most 8192"),
        "e107": _envelope_example("107", detail="more than 20 requests in one second; try again in a second"),
    }
    idempotent = {
        "e130": _envelope_example(
            "130",
            detail="this idempotency key was used in the last 24 hours for a request "
            "with other variables; a new request needs a new key",
        ),
        "e131": _envelope_example("131", detail="the idempotency key has 300 characters, at most 255"),
    }
    paths = {
        "/api/get-api/v1/sms-api": _op(
            "Send an SMS",
            "Send one SMS, or the same text to up to 200 numbers (comma-separated `to`, repeated `to`, or a JSON "
            "array). The message is stored durably before the reply. With several numbers the reply adds `results`, "
            "one entry per number. With an `Idempotency-Key` header (or `idempotency_key` variable), a retry of the "
            "same request within 24 hours gets the first reply again and sends and charges nothing: retry after a "
            "timeout without sending twice. sms-api/quote prices the same variables without sending. With a test "
            "key nothing is sent or charged: see test mode above. A number of a country the account's country "
            "rules refuse (see `countries`) gets code 152 and is neither sent nor charged.",
            [
                _param("to", "Destination(s), digits with country code, optional +.", "13058888888"),
                _param(
                    "text",
                    "Message text. GSM-7 or UCS-2 is chosen automatically; long texts are split.",
                    "Este es un mensaje de prueba",
                ),
                _param(
                    "from",
                    "Sender: up to 15 digits, or up to 11 characters (letters, digits, space and !\"#$%&'()*+,-./:;<=>?@_).",
                    "13779999999",
                    False,
                ),
                _param(
                    "callback_url",
                    "Status callback for this message (overrides the account's).",
                    "https://example.com/sms-status",
                    False,
                ),
                *IDEMPOTENCY_PARAMS,
            ],
            {
                "ok": _envelope_example(
                    "005", to="+13058888888", id="48", segments="1", price="0.0075", currency="US$"
                ),
                "queued": _envelope_example(
                    "009", to="+13058888888", id="49", segments="1", price="0.0075", currency="US$"
                ),
                "test": {
                    **_envelope_example("005", **TEST_SEND),
                    "summary": "005 with a test key (test mode)",
                },
                "e002": _envelope_example("002", to="13055454xx"),
                "e003": _envelope_example("003"),
                "e014": _envelope_example("014", to="999123"),
                "e101": _envelope_example("101"),
                "e104": _envelope_example("104"),
                "e152": _envelope_example("152", to="2348031234567"),
                "e108": TEST_KEY_EXAMPLE,
                "e140": SMS_CAP_REFUSED,
                **idempotent,
                **common,
            },
            "SMS",
        ),
        "/api/get-api/v1/sms-api/quote": _op(
            "Price an SMS before sending it",
            "Takes exactly the variables of sms-api and answers what sms-api would charge for them, without "
            "sending, charging or recording anything. Per recipient (`results`): the normalised number, the "
            "destination, the encoding (GSM-7, or UCS-2 when a character is outside the GSM alphabet), the "
            "segments, `remaining` (units still free in the last segment: characters for GSM-7, where an "
            "extension character such as € or { counts two; UTF-16 units for UCS-2), `unitprice` (one segment) "
            "and `price`; then `total` and `currency`. A number sms-api would refuse is listed with its code "
            "(002, 014). Priced by the very functions a send uses, on the same rates.",
            [
                _param("to", "Destination(s), as for sms-api.", "13058888888,584121234567"),
                _param("text", "Message text, as for sms-api.", "Your code is 123456"),
                _param("from", "Sender, as for sms-api (checked, it does not change the price).", "UVox", False),
            ],
            # The worked example below, priced by the README's deck (1 USA 0.0075, 58 Venezuela 0.05):
            # "€" and "{" are GSM extension characters (two units each), so 40 of 160 are used.
            {
                "ok": _envelope_example(
                    "132",
                    to="+13058888888,+584121234567",
                    encoding="GSM-7",
                    segments="1",
                    remaining="120",
                    total="0.0575",
                    currency="US$",
                    accepted="2",
                    rejected="0",
                    results=[_quoted("+13058888888", "USA", "0.0075"), _quoted("+584121234567", "Venezuela", "0.05")],
                ),
                "e002": _envelope_example("002", to="13055454xx"),
                "e003": _envelope_example("003"),
                "e014": _envelope_example("014", to="999123"),
                "e021": NO_PLAN_EXAMPLE,
                **common,
            },
            "SMS",
        ),
        "/api/get-api/v1/sms-api/status": _op(
            "Status of an SMS",
            "`code` is the manual's: 011 To send, 012 waiting for plan/credit, 013 sent. Final states add "
            "`state` and `statecode`:\n\n"
            "- 110 delivered\n- 111 undelivered\n- 112 expired\n- 113 rejected\n- 114 failed (and refunded)\n\n"
            "A message that never left (failed, or expired while waiting) answers with its 1xx code instead of 013.",
            [_param("messageId", "The id returned by sms-api.", "48")],
            {
                "to_send": _envelope_example("011", id="48", state="queued"),
                "no_credit": _envelope_example("012", id="48", state="waiting_balance"),
                "sent": _envelope_example("013", id="48", state="submitted"),
                "delivered": _envelope_example(
                    "013", id="48", state="delivered", statecode="110", statetext="Delivered"
                ),
                "test": {
                    **_envelope_example("013", **TEST_STATUS),
                    "summary": "013 of a test message to +15005550002 (test mode)",
                },
                "e010": _envelope_example("010"),
                **common,
            },
            "SMS",
        ),
        "/api/get-api/v1/OTP-api": _op(
            "Request a one-time code",
            "Creates a 6-digit code valid 10 minutes, single use, and sends it by SMS with the template `ref_id`. "
            "With an `Idempotency-Key` header (or `idempotency_key` variable), a retry of the same request within "
            "24 hours gets the first reply (the same sessionID) and no second code is sent. With a test key nothing "
            "is sent or charged and the code is always 000000. "
            "SMS pumping protection (extensions): the account's country rules (152, see `countries`); a prefix "
            "paused by the conversion-rate alarm (156: when 20 or more codes to one prefix, the country code and "
            "the next 3 digits, were requested within an hour and fewer than 20 % verified; lifted in the portal "
            "or by the operator, or after an hour); and limits counted per account: codes per phone number "
            "(102, default 5 every 10 minutes), per prefix (154, default 100 an hour), per client address (155, "
            "default 100 an hour) and in all (153, default 1000 an hour). A refusal by a limit or a pause is "
            "HTTP 429 with a `Retry-After` header (seconds); nothing is sent or charged.",
            [
                _param("ref_id", "Template reference from the portal.", "3f9a1c2b7d4e5f60"),
                _param("phone_number", "Destination, digits with country code.", "13058888888"),
                _param(
                    "client_ip",
                    "Extension: the address of your end user (when your server calls for them), "
                    "counted by the per-address limit instead of your server's address. IPv4 or IPv6.",
                    "203.0.113.7",
                    False,
                ),
                *IDEMPOTENCY_PARAMS,
            ],
            {
                "ok": _envelope_example("022", phone_number="+13058888888", sessionID="q0Xv..."),
                "e020": _envelope_example("020"),
                "e021": _envelope_example("021", sessionID="q0Xv..."),
                "e102": _envelope_example(
                    "102", phone_number="+13058888888", detail="at most 5 codes per number every 600 seconds"
                ),
                "e152": _envelope_example(
                    "152",
                    phone_number="+2348031234567",
                    country="NG",
                    detail="the account's country rules do not allow numbers of NG",
                ),
                "e153": _envelope_example(
                    "153", phone_number="+13058888888", detail="at most 1000 codes per account every 3600 seconds"
                ),
                "e154": _envelope_example(
                    "154",
                    phone_number="+13058888888",
                    detail="at most 100 codes to numbers starting +1305 every 3600 seconds",
                ),
                "e155": _envelope_example(
                    "155",
                    phone_number="+13058888888",
                    detail="at most 100 codes requested from one client address every 3600 seconds",
                ),
                "e156": _envelope_example(
                    "156",
                    phone_number="+13058888888",
                    detail="code requests to numbers starting +1305 are paused: too few of the "
                    "codes sent there were verified; lift the pause in the portal, or wait",
                ),
                "e140": _cap_refused({"phone_number": "+13058888888"}, "0.0075", "0.0075"),
                **idempotent,
                **common,
            },
            "OTP",
        ),
        "/api/get-api/v1/OTP-api/verify": _op(
            "Verify a one-time code",
            "Checks `otp_code` for `sessionid`. After 5 wrong codes the session is locked (103).",
            [
                _param("sessionid", "sessionID from OTP-api.", "q0Xv..."),
                _param("otp_code", "The code the user typed.", "123456"),
            ],
            {
                "ok": _envelope_example("027", sessionID="q0Xv..."),
                "e023": _envelope_example("023", sessionID="q0Xv..."),
                "e024": _envelope_example("024", sessionID="q0Xv..."),
                "e025": _envelope_example("025", sessionID="q0Xv..."),
                "e026": _envelope_example("026", sessionID="q0Xv..."),
                "e103": _envelope_example("103", sessionID="q0Xv..."),
                **common,
            },
            "OTP",
        ),
        "/api/get-api/v1/balance": _op(
            "Balance",
            "Prepaid balance, credit limit and available amount.",
            [],
            {
                "ok": _envelope_example(
                    "015", accountnumber="12345678", currency="US$", balance="100.00", credit="0.00", available="100.00"
                ),
                **common,
            },
            "Account",
        ),
    }
    paths["/api/get-api/v1/countries"] = _op(
        "Country rules",
        "Extension. The destination countries the account's OTP-api and sms-api requests may reach: without "
        "variables, the rules in force; with `allowed` and/or `blocked`, that list is replaced (an empty value "
        "clears it). Countries are ISO 3166 codes as phonenumbers gives a number's region (+1 305 is US, +1 416 "
        "is CA). A number is refused (152) when its country is blocked, or when `allowed` is not empty and does "
        "not name it; a non-geographic number (+800, +882) is refused whenever `allowed` is set.",
        [
            _param("allowed", "ISO codes separated by commas; only these countries (empty: any).", "ES,VE,US", False),
            _param("blocked", "ISO codes separated by commas; never these countries.", "NG", False),
        ],
        {
            "ok": _envelope_example("150", allowed="ES,US,VE", blocked="NG"),
            "e151": _envelope_example("151", detail="not ISO 3166 country codes: XX"),
            "e108": TEST_KEY_EXAMPLE,
            **common,
        },
        "Account",
    )
    paths["/api/get-api/v1/calls"] = _calls_op(common)
    paths["/api/get-api/v1/calls/quote"] = _op(
        "Price a call before making it",
        "The rate a call to `to` is charged by and the price of `minutes` minutes of talk (default 1), computed "
        "as a real call is (VOICE.md): billed seconds `b` = `initblock` if the call lasts no longer, else "
        "`initblock` + whole `billingblock`s; price = `connectcharge` + `rate` × `b` / 60, rounded half-up to "
        "6 decimals. Nothing is held or charged.",
        [
            _param("to", "The number to call, with country code (+, 00, spaces and dashes ignored).", "13055550100"),
            _param("minutes", "Minutes of talk to price, 1 to 1440 (default 1).", "5", False),
        ],
        {
            "ok": _envelope_example("133", **CALL_QUOTE),
            "e002": _envelope_example("002", to="abc"),
            "e014": _envelope_example("014", to="999123"),
            "e021": NO_PLAN_EXAMPLE,
            **common,
        },
        "Voice",
    )
    paths["/api/get-api/v1/sms-api"]["get"]["x-codeSamples"] = _code_sample(
        "sms-api",
        "--data-urlencode 'to=13058888888'",
        "--data-urlencode 'text=Your order 4711 has shipped'",
        extra_headers=("Idempotency-Key: order-4711-shipped",),
    )
    paths["/api/get-api/v1/sms-api/quote"]["get"]["x-codeSamples"] = _code_sample(
        "sms-api/quote",
        "--data-urlencode 'to=13058888888,584121234567'",
        "--data-urlencode 'text=Your code is 123456. Pay €5 at {shop}'",
    )
    paths["/api/get-api/v1/calls/quote"]["get"]["x-codeSamples"] = _code_sample(
        "calls/quote", "--data-urlencode 'to=+1 305 555 0100'", "--data-urlencode 'minutes=5'"
    )
    paths.update(_spending_ops(common))
    # The settings endpoints only read without variables: their worked examples set values (docs/spend.md).
    paths["/api/get-api/v1/spend-caps"]["get"]["x-codeSamples"] = _code_sample(
        "spend-caps", "--data-urlencode 'service=sms'", "--data-urlencode 'day=5.00'", "--data-urlencode 'month=100'"
    )
    paths["/api/get-api/v1/countries"]["get"]["x-codeSamples"] = _code_sample(
        "countries", "--data-urlencode 'allowed=ES,US,VE'", "--data-urlencode 'blocked=NG'"
    )
    paths["/api/get-api/v1/balance-alert"]["get"]["x-codeSamples"] = _code_sample(
        "balance-alert", "--data-urlencode 'threshold=5.00'"
    )
    rates = _op("Price list", "A bare JSON array of the account's rates (streamed).", [], common, "Account")
    rates_op = dict(rates["get"])
    rates_op["responses"] = {
        "200": {
            "description": "The price list",
            "content": {
                "application/json": {
                    "schema": {"type": "array", "items": {"$ref": "#/components/schemas/Rate"}},
                    "example": [
                        {"dialprefix": "56", "destination": "Chile", "rateinitial": "0.02850"},
                        {"dialprefix": "5841", "destination": "Venezuela Mobile", "rateinitial": "0.04410"},
                    ],
                }
            },
        },
        "4XX": rates["get"]["responses"]["4XX"],
        "500": rates["get"]["responses"]["500"],
    }
    paths["/api/get-api/v1/rates"] = {m: rates_op for m in ("get", "post", "put")}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "UVox API v1",
            "version": "1.0.0",
            "description": "The UVox HTTP API, wire-compatible with the public manual. Every method accepts GET, "
            "POST and PUT; variables may come from the query string, a form or a JSON body. Every "
            "reply carries `code`; every code, with its HTTP status, is in the table of codes that "
            "ends this reference. " + TEST_MODE,
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "Api-Key"},
                "AccountAndKey": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "apikey",
                    "description": "With the accountnumber variable.",
                },
            },
            "schemas": {
                "Envelope": {
                    "type": "object",
                    "required": ["version", "code", "status", "resultstring", "statusmessage"],
                    "properties": {
                        k: {"type": "string"}
                        for k in (
                            "version",
                            "code",
                            "status",
                            "resultstring",
                            "statusmessage",
                            "to",
                            "id",
                            "sessionID",
                            "phone_number",
                            "accountnumber",
                            "currency",
                            "balance",
                            "credit",
                            "available",
                            "held",
                            "next_cursor",
                            "segments",
                            "price",
                            "accepted",
                            "rejected",
                            "encoding",
                            "remaining",
                            "total",
                            "destination",
                            "rate",
                            "connectcharge",
                            "initblock",
                            "billingblock",
                            "minutes",
                            "billed",
                            "detail",
                            "country",
                            "allowed",
                            "blocked",
                            "threshold",
                            "email",
                            "callback_url",
                        )
                    }
                    | {
                        "test": {
                            "type": "string",
                            "enum": ["1"],
                            "description": 'Present ("1") in replies to a test key and in the '
                            "status of a test message (test mode).",
                        }
                    }
                    | {
                        "calls": {"type": "array", "items": {"$ref": "#/components/schemas/Call"}},
                        "results": {
                            "type": "array",
                            "items": {"type": "object", "additionalProperties": {"type": "string"}},
                        },
                        "caps": {"type": "array", "items": {"$ref": "#/components/schemas/SpendCap"}},
                        "cap": {"$ref": "#/components/schemas/SpendCap"},
                        "alerted": {"type": "boolean"},
                    },
                },
                "SpendCap": {"type": "object", "properties": {k: {"type": "string"} for k in CAP_EXAMPLE}},
                "Call": {"type": "object", "properties": {k: {"type": ["string", "null"]} for k in CALL_FIELDS}},
                "Rate": {
                    "type": "object",
                    "properties": {
                        "dialprefix": {"type": "string"},
                        "destination": {"type": "string"},
                        "rateinitial": {"type": "string"},
                    },
                },
            },
        },
        "x-codes": {c.code: {"message": c.message, "http": c.http} for c in CODES.values()},
    }


_SPEC = orjson.dumps(spec())


async def openapi_json(request: Request) -> Response:
    return Response(_SPEC, media_type="application/json", headers={"access-control-allow-origin": "*"})


@dataclass
class _Reply:
    status: str
    title: str
    media: str
    body: str


@dataclass
class _Operation:
    anchor: str
    path: str
    methods: list[str]
    summary: str
    description: str
    tags: list[str]
    parameters: list[dict[str, Any]]
    curl: str
    replies: list[_Reply]
    #: The description's own worked examples (x-codeSamples), with this server's address.
    samples: list[str]


def _pretty(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def _curl(base: str, path: str, method: str, params: list[dict[str, Any]]) -> str:
    """A command that works when pasted (with a real key): the required variables,
    URL-encoded by curl itself."""
    lines = [f"curl{' -G' if method == 'get' else ''} -H 'Api-Key: YOUR_API_KEY'"]
    for p in params:
        if p.get("in") == "query" and p.get("required") and p["name"] not in ("accountnumber", "apikey"):
            lines.append(f"--data-urlencode {shlex.quote(str(p['name']) + '=' + str(p.get('example', '')))}")
        elif p.get("in") == "header" and p.get("required"):
            lines.append(f"-H {shlex.quote(str(p['name']) + ': ' + str(p.get('example', '')))}")
    lines.append(shlex.quote(base + path))
    return " \\\n  ".join(lines)


def _operations(s: dict[str, Any], base: str) -> list[_Operation]:
    """Every operation of the description, in its order; methods that share one
    operation (GET, POST and PUT of the manual) are shown once."""
    out = []
    for path, item in s["paths"].items():
        groups: dict[int, tuple[list[str], dict[str, Any]]] = {}
        for method, op in item.items():
            if isinstance(op, dict) and "responses" in op:
                groups.setdefault(id(op), ([], op))[0].append(method)
        for methods, op in groups.values():
            replies = []
            for status, resp in op["responses"].items():
                for media, content in resp.get("content", {}).items():
                    for ex in content.get("examples", {}).values():
                        replies.append(
                            _Reply(status, ex.get("summary", resp.get("description", "")), media, _pretty(ex["value"]))
                        )
                    if "example" in content:
                        replies.append(_Reply(status, resp.get("description", ""), media, _pretty(content["example"])))
            anchor = path.rsplit("/v1/", 1)[-1].replace("/", "-").lower() or "op"
            if len(groups) > 1:
                anchor += "-" + methods[0]
            out.append(
                _Operation(
                    anchor,
                    path,
                    [m.upper() for m in methods],
                    op.get("summary", path),
                    op.get("description", ""),
                    list(op.get("tags", [])),
                    list(op.get("parameters", [])),
                    _curl(base, path, methods[0], op.get("parameters", [])),
                    replies,
                    [x["source"].replace(SAMPLE_BASE, base) for x in op.get("x-codeSamples", [])],
                )
            )
    return out


@dataclass
class _CodeRow:
    code: str
    message: str
    http: int
    status_text: str
    #: The manual's codes are below 100, and 500; the 1xx are ours.
    extension: bool


_PAGE = Environment(loader=FileSystemLoader(Path(__file__).with_name("templates")), autoescape=True)


async def docs_page(request: Request) -> HTMLResponse:
    """A readable page of the description: every operation with its variables, a curl
    command, its example replies, and the table of every code in codes.py."""
    s = spec()
    settings = getattr(getattr(request.app.state, "platform", None), "settings", None)
    base = (getattr(settings, "public_url", "") or str(request.base_url)).rstrip("/")
    codes = [
        _CodeRow(c.code, c.message, c.http, c.status_text, not (c.code < "100" or c.code == "500"))
        for c in sorted(CODES.values(), key=lambda c: c.code)
    ]
    html = _PAGE.get_template("docs.html").render(
        spec=s,
        operations=_operations(s, base),
        codes=codes,
        base=base,
        test_mode=TEST_MODE_GUIDE.replace(SAMPLE_BASE, base),
        md=markup.block,
        inline=markup.inline,
    )
    return HTMLResponse(html)
