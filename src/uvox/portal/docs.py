"""The manual's examples, with the customer's own account number and our address.

The manual writes ``{account-number}`` and ``https://my.unityvox.com``; a customer
reading the Documentation page gets copy-paste-ready code instead. The API key stays
a placeholder: keys are shown once and stored hashed, so the portal cannot know it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode

from uvox.api.v1.examples import CALL_QUOTE, TEST_SEND, TEST_STATUS

KEY = "{apikey}"


@dataclass
class Example:
    label: str
    language: str
    code: str


@dataclass
class Section:
    id: str
    endpoint: str
    variables: dict[str, str]  # what the example sends, besides the credentials
    form_fields: list[tuple[str, str, str]]  # (name, type, value-or-placeholder) for the HTML form
    examples: list[Example]
    #: (variable, English description) as the manual's "Variables" tables; translated when shown.
    fields: list[tuple[str, str]] = ()
    #: Example replies, as in the manual.
    replies: list[str] = ()
    #: Heading and introduction (English, translated when shown; the introduction is Markdown).
    title: str = ""
    intro: str = ""


def N_(text: str) -> str:
    return text


CREDENTIALS = [
    ("apikey", N_("Private key created in your account (section API).")),
    ("accountnumber", N_("Account number, shown in your dashboard and in the API section.")),
]
IDEMPOTENCY_KEY = (
    "idempotency_key",
    N_(
        "Optional: any unique text of up to 255 characters (an order number, a UUID), also accepted as the "
        "Idempotency-Key header. A retry with the same key and the same variables within 24 hours gets the first "
        "reply again and sends and charges nothing; the same key with other variables is refused (130)."
    ),
)
SMS_FIELDS = [
    ("text", N_("Content of the text message.")),
    (
        "from",
        N_(
            "Number that sends the SMS. Some carriers and phones accept text, e.g. from=UVox; where the carrier "
            "does not, the sender is a generic number."
        ),
    ),
    ("to", N_("Destination number, with country code; several separated by commas (up to 200).")),
]
FIELDS = {
    "sms": CREDENTIALS + SMS_FIELDS + [IDEMPOTENCY_KEY],
    "quote": CREDENTIALS + SMS_FIELDS,
    "calls-quote": CREDENTIALS
    + [
        ("to", N_("The number to call, with country code.")),
        ("minutes", N_("Optional: minutes of talk to price, 1 to 1440 (default 1).")),
    ],
    "status": CREDENTIALS + [("messageId", N_("The unique ID of the message, given in the reply to the send."))],
    "otp": CREDENTIALS
    + [
        ("ref_id", N_("Unique value created with your template in the OTP templates section.")),
        ("phone_number", N_("Destination number.")),
        IDEMPOTENCY_KEY,
        (
            "client_ip",
            N_(
                "Optional: the IP address of your user, when your server requests the code for them; the "
                "limit per client address then counts it instead of your server's address."
            ),
        ),
    ],
    "otp-verify": CREDENTIALS
    + [
        ("sessionid", N_("The sessionID received in the reply to the code request; valid only with its code.")),
        ("otp_code", N_("The code your customer received by SMS: valid for 10 minutes, usable once.")),
    ],
    "balance": CREDENTIALS,
    "countries": CREDENTIALS
    + [
        (
            "allowed",
            N_(
                "Optional: ISO country codes separated by commas (ES,VE,US); only these countries may be "
                "reached. Empty: every country."
            ),
        ),
        (
            "blocked",
            N_(
                "Optional: ISO country codes separated by commas; these countries are never reached. "
                "Without allowed and blocked the reply shows the rules in force."
            ),
        ),
    ],
    "rates": CREDENTIALS,
    # Test mode (sms/testmode.py): the magic numbers, the fixed code and the marks.
    "test": [
        (
            "apikey",
            N_('A test key: in API keys choose "Test key" (or, operators: uvox admin apikey create ACCOUNT --test).'),
        ),
        (
            "+15005550001",
            N_(
                "Delivered (statecode 110) about 2 seconds after the send, with its status callbacks. "
                "Every number that is not one of these four ends delivered too."
            ),
        ),
        ("+15005550002", N_("Undelivered (statecode 111).")),
        ("+15005550003", N_("Rejected (statecode 113).")),
        ("+15005550004", N_("Expired (statecode 112).")),
        (
            "otp_code",
            N_(
                "With a test key the one-time code is always 000000 (as many zeros as a live code has "
                "digits); OTP-api/verify checks it as it checks a live code."
            ),
        ),
        (
            "test",
            N_(
                'Every reply to a test key has "test":"1" and the header X-UVox-Test: 1 (rates, a bare '
                'list, has the header only); the status of a test message has "test":"1" too.'
            ),
        ),
    ],
    "calls": CREDENTIALS
    + [
        (
            "since",
            N_(
                "Optional: calls started at or after this time, ISO 8601 (2026-12-01 or 2026-12-01T00:00:00Z; "
                "without a zone, UTC)."
            ),
        ),
        ("until", N_("Optional: calls started before this time, ISO 8601.")),
        ("number", N_("Optional: only calls whose caller or called number contains these digits.")),
        ("limit", N_("Optional: records per page, 1 to 1000 (default 100).")),
        ("cursor", N_("Optional: the next_cursor of the previous reply, for the next page; the last page has none.")),
        ("format", N_("Optional: csv for every matching call as a CSV file (the same columns, no cursor).")),
    ],
    "spend-caps": CREDENTIALS
    + [
        ("service", N_("sms (SMS and one-time codes), calls, or all (both together). Default: all.")),
        (
            "country",
            N_("Optional: two-letter code of the destination country (MX, US, ES...); empty for every destination."),
        ),
        ("day", N_("Optional: the cap for each day (UTC), or none to remove it.")),
        (
            "month",
            N_(
                "Optional: the cap for each month (UTC), or none to remove it. Without day and month the "
                "reply only lists your caps."
            ),
        ),
    ],
    "balance-alert": CREDENTIALS
    + [
        (
            "threshold",
            N_(
                "Optional: alert when your available money falls below this amount; none removes the "
                "alert. Without it the reply shows the alert."
            ),
        ),
    ],
}


TITLES = {
    "sms": N_("Send SMS"),
    "status": N_("SMS status"),
    "otp": N_("OTP request"),
    "otp-verify": N_("OTP verify"),
    "balance": N_("Balance"),
    "rates": N_("Rates"),
    "calls": N_("Call records"),
    "quote": N_("SMS quote"),
    "calls-quote": N_("Call quote"),
    "test": N_("Test mode"),
    "countries": N_("Country rules"),
    "spend-caps": N_("Spend caps"),
    "balance-alert": N_("Low-balance alert"),
}
INTROS = {
    "spend-caps": N_(
        "Limits you set on your own spending, per day and per month (UTC), for SMS, calls or both, for every destination or one country (code 141). A send that would pass a cap is refused whole with code 140 before anything is charged; a call gets a time limit that fits under the caps, or SIP 402."
    ),
    "balance-alert": N_(
        "When a charge takes your available money below the threshold, we tell you once by e-mail and by your status callback (event low_balance), and again only after your money is back above it (code 143)."
    ),
    "countries": N_(
        "The countries your one-time codes and SMS may reach (code 150): numbers of a blocked country, or "
        "of a country missing from a non-empty allowed list, are refused with code 152 and not charged. "
        "Also set in OTP protection."
    ),
    "sms": N_(
        "Sends one SMS, or the same text to up to 200 numbers separated by commas. The reply has a message ID "
        "for each message (code 005, or 009 when the account has no plan or balance: the message is queued)."
    ),
    "status": N_(
        "The state of one message by its messageId: 011 To send, 012 No plan available to send or Credit, 013 SMS Sent."
    ),
    "otp": N_(
        "Creates a random 6-digit code, valid once for 10 minutes, and sends it by SMS with the text of your "
        "template ref_id. The reply carries a sessionID."
    ),
    "otp-verify": N_("Checks the code your customer received, with the sessionID of the request: 027 OTP Matched."),
    "balance": N_("Your prepaid balance and the credit available (code 015)."),
    "rates": N_("The price list of your plan, as a JSON array of dialprefix, destination and rateinitial."),
    "calls": N_(
        "The records of your calls, newest first, with their status, duration, billed seconds and price "
        "(code 120). Use next_cursor to read the next page, or format=csv to download them all."
    ),
    "quote": N_(
        "What sms-api would charge, without sending or charging anything: the same variables, and per number "
        "the destination, encoding (GSM-7 or UCS-2), segments, room left in the last segment, price of a "
        "segment and price, then the total (code 132)."
    ),
    "calls-quote": N_(
        "What a call to a number would cost: its destination, rate per minute, connection charge, first "
        "and following billing blocks, and the price of the given minutes (code 133). Nothing is "
        "charged."
    ),
    "test": N_(
        "Write and test your integration without sending or paying: with a test key every endpoint validates "
        "and answers as with a live key (same codes, message IDs, status and history), but no message reaches "
        "a carrier or a phone and nothing is charged. The numbers below choose each final state, with the "
        'status callbacks a live message fires (marked "test":"1"). A test send is checked against '
        "neither your balance nor your spend caps: it never waits for balance (005, never 009) and is never "
        "refused by a cap (140); balance and rates show your real balance and prices. A test key cannot "
        "change your settings (spend caps, countries, low-balance alert: 108). Test messages are marked "
        "“test” in your history."
    ),
}


def _reply(code: str, version: str, status: str, result: str, message: str, **extra: str) -> str:
    fields = [
        ("version", version),
        ("code", code),
        ("status", status),
        ("resultstring", result),
        *extra.items(),
        ("statusmessage", message),
    ]
    return "{\n" + ",\n".join(f'  "{k}":"{v}"' for k, v in fields) + "\n}"


REPLIES = {
    "sms": [
        _reply("005", "1", "success", "Success", "Message sent successfully", to="+13058888888", id="48"),
        _reply(
            "009", "1", "no_plan", "Success", "No Plan or Balance in account (SMS queued)", to="+13058888888", id="49"
        ),
        _reply("003", "1.00", "error", "Failure", "Invalid or empty text"),
    ],
    "status": [
        _reply("011", "1", "success", "Success", "To send"),
        _reply("012", "1", "success", "Success", "No plan available to send or Credit"),
        _reply("013", "1", "success", "Success", "SMS Sent"),
        _reply("010", "1.00", "error", "Failure", "Error validating SMS, please verify ID"),
    ],
    "otp": [
        _reply(
            "022",
            "1.00",
            "success",
            "Success",
            "Message sent successfully",
            phone_number="+13055550100",
            sessionID="{sessionID}",
        ),
        _reply("020", "1.00", "error", "Failure", "Invalid or empty Message ref_id"),
        _reply("021", "1.00", "error", "Failure", "No Plan or Balance in account", sessionID="{sessionID}"),
        _reply(
            "156",
            "1.00",
            "error",
            "Failure",
            "Code requests to this number prefix are paused: few codes were verified",
            phone_number="+13055550100",
            detail="code requests to numbers starting +1305 are paused: too few of the codes sent there were "
            "verified; lift the pause in the portal, or wait",
        ),
    ],
    "countries": [
        _reply("150", "1", "success", "Success", "Country rules", allowed="ES,US,VE", blocked=""),
        _reply("151", "1.00", "error", "Failure", "Invalid country code", detail="not ISO 3166 country codes: XX"),
    ],
    "otp-verify": [
        _reply("027", "1.00", "success", "Success", "OTP Matched", sessionID="{sessionid}"),
        _reply("025", "1.00", "error", "Failure", "OTP Mismatch", sessionID="{sessionid}"),
        _reply("023", "1.00", "error", "Failure", "OTP Expired", sessionID="{sessionid}"),
    ],
    "balance": [
        _reply(
            "015", "1", "success", "Success", "Get Balance", accountnumber="{account}", currency="US$", balance="100.00"
        )
    ],
    "calls": [
        '{\n  "version":"1",\n  "code":"120",\n  "status":"success",\n  "resultstring":"Success",\n'
        '  "accountnumber":"{account}",\n  "calls":[{"id":"42","sip_username":"{account}123456","from":"{account}123456",'
        '"to":"+13055550100","destination":"USA Miami","direction":"outbound","status":"answered","sip_code":"200",'
        '"hangup":"caller","started_at":"2026-12-01T10:00:00Z","answered_at":"2026-12-01T10:00:04Z",'
        '"ended_at":"2026-12-01T10:01:09Z","duration":"65","billed":"120","rate":"0.01200",'
        '"connectcharge":"0.00","price":"0.024","currency":"US$","trunk":"carrier1"}],\n'
        '  "next_cursor":"42",\n  "statusmessage":"Call records"\n}'
    ],
    "quote": [
        '{\n  "version":"1",\n  "code":"132",\n  "status":"success",\n  "resultstring":"Success",\n'
        '  "to":"+13058888888,+584125550101",\n  "encoding":"GSM-7",\n  "segments":"1",\n  "remaining":"147",\n'
        '  "total":"0.078",\n  "currency":"US$",\n  "accepted":"2",\n  "rejected":"0",\n'
        '  "results":[{"to":"+13058888888","destination":"USA Miami","encoding":"GSM-7","segments":"1",'
        '"remaining":"147","unitprice":"0.008","price":"0.008","code":"132","status":"success",'
        '"statusmessage":"SMS quote"},\n    {"to":"+584125550101","destination":"Venezuela Mobile Digitel",'
        '"encoding":"GSM-7","segments":"1","remaining":"147","unitprice":"0.07","price":"0.07",'
        '"code":"132","status":"success","statusmessage":"SMS quote"}],\n'
        '  "statusmessage":"SMS quote"\n}'
    ],
    # The section's example calls 13058888888.
    "calls-quote": [_reply("133", "1", "success", "Success", "Call quote", **(CALL_QUOTE | {"to": "+13058888888"}))],
    "spend-caps": [
        '{\n  "version":"1",\n  "code":"141",\n  "status":"success",\n  "resultstring":"Success",\n'
        '  "accountnumber":"{account}",\n  "currency":"US$",\n  "caps":[{"service":"sms","period":"day",'
        '"country":"","limit":"5.00","spent":"1.25","remaining":"3.75",'
        '"resets_at":"2026-12-06T00:00:00+00:00"}],\n  "statusmessage":"Spend caps"\n}',
        '{\n  "version":"1.00",\n  "code":"140",\n  "status":"error",\n  "resultstring":"Failure",\n'
        '  "to":"+13058888888",\n  "price":"0.0075",\n  "currency":"US$",\n  "detail":"this request costs '
        "0.0075 US$; the day cap on SMS is 5.00 and 5.00 is already spent; it resets at "
        '2026-12-06T00:00:00+00:00",\n  "cap":{"service":"sms","period":"day","country":"","limit":"5.00",'
        '"spent":"5.00","remaining":"0.00","resets_at":"2026-12-06T00:00:00+00:00"},\n'
        '  "statusmessage":"Spend cap reached"\n}',
    ],
    "balance-alert": [
        _reply(
            "143",
            "1",
            "success",
            "Success",
            "Low-balance alert",
            accountnumber="{account}",
            currency="US$",
            threshold="5.00",
            available="12.40",
        )
    ],
    "rates": [
        '[{"dialprefix":"56","destination":"Chile","rateinitial":"0.02850"},\n'
        ' {"dialprefix":"58","destination":"Venezuela","rateinitial":"0.02025"}]'
    ],
    "test": [
        _reply("005", "1", "success", "Success", "Message sent successfully", **TEST_SEND),
        _reply("013", "1", "success", "Success", "SMS Sent", **TEST_STATUS),
    ],
}


def _query(account: str, extra: dict[str, str]) -> str:
    # The manual's links keep the braces readable, so {apikey} is not percent-encoded.
    pairs = {"accountnumber": account, "apikey": KEY, **extra}
    return urlencode(pairs, safe="{}", quote_via=quote)


def _examples(
    base: str, endpoint: str, account: str, extra: dict[str, str], form_fields: list[tuple[str, str, str]]
) -> list[Example]:
    url = f"{base}/api/get-api/v1/{endpoint}"
    query = _query(account, extra)
    full = f"{url}?{query}"
    # The manual's own form names (customers' scripts may select forms by them).
    name = {"sms-api": "form-send-sms", "OTP-api": "request_otp", "OTP-api/verify": "request_otp"}.get(
        endpoint, "form-" + endpoint.replace("/", "-").lower()
    )
    form_lines = [
        f' <form action="{url}" method="POST" name="{name}">',
        f'     <input name="accountnumber" type="hidden" value="{account}" />',
        f'     <input name="apikey" type="hidden" value="{KEY}" />',
    ]
    for name, kind, value in form_fields:
        if kind == "textarea":
            form_lines.append(
                f'     <textarea name="{name}" cols="50" rows="4" placeholder="{value}" maxlength="160"></textarea>'
            )
        elif kind == "hidden":
            form_lines.append(f'     <input name="{name}" type="hidden" value="{value}" />')
        else:
            form_lines.append(f'     <input name="{name}" type="text" size="35" placeholder="{value}" />')
    form_lines += ['     <input name="Submit" type="submit" value="Submit">', " </form>"]
    py_params = ",\n".join(
        f'        "{k}": "{v}"' for k, v in {"accountnumber": account, "apikey": KEY, **extra}.items()
    )
    return [
        Example("URL", "text", full),
        Example(
            "curl",
            "shell",
            f"curl -H 'Accept: application/vnd.api+json' \\\n  -H 'Api-Key: {KEY}' \\\n  '{url}"
            + (f"?{urlencode(extra, safe='{}', quote_via=quote)}'" if extra else "'"),
        ),
        Example("HTML", "html", "\n".join(form_lines)),
        Example(
            "JavaScript",
            "javascript",
            "var xhr = new XMLHttpRequest();\n"
            f'var url = "{url}";\n'
            f'xhr.open("POST", url + "?{query}", true);\n'
            "xhr.onreadystatechange = function () {\n"
            "  if (xhr.readyState == 4 && xhr.status == 200) {\n"
            "    console.log(JSON.parse(xhr.responseText));\n"
            "  }\n"
            "};\n"
            "xhr.send();",
        ),
        Example(
            "PHP",
            "php",
            "$ch = curl_init();\n"
            f'curl_setopt($ch, CURLOPT_URL, "{full}");\n'
            "curl_setopt($ch, CURLOPT_HEADER, 0);\n"
            "curl_setopt($ch, CURLOPT_RETURNTRANSFER, 1);\n"
            "$reply = json_decode(curl_exec($ch), true);\n"
            "curl_close($ch);",
        ),
        Example(
            "Python",
            "python",
            "import json, urllib.parse, urllib.request\n\n"
            "params = urllib.parse.urlencode({\n" + py_params + ",\n})\n"
            f'with urllib.request.urlopen("{url}", data=params.encode()) as reply:\n'
            "    print(json.load(reply))",
        ),
    ]


def sections(base: str, account: str) -> list[Section]:
    specs = [
        (
            "sms",
            "sms-api",
            {"from": "13779999999", "to": "13058888888", "text": "Este es un mensaje de prueba"},
            [
                ("from", "text", "De (ej: Cod Pais + Cod Area + Telf)"),
                ("to", "text", "Para (ej: Cod Pais + Cod Area + Telf)"),
                ("text", "textarea", "Message"),
            ],
        ),
        ("status", "sms-api/status", {"messageId": "{messageId}"}, [("messageId", "text", "messageId")]),
        (
            "otp",
            "OTP-api",
            {"ref_id": "{ref_id}", "phone_number": "1305xxxxxxxx"},
            [("ref_id", "hidden", "{ref_id}"), ("phone_number", "text", "Para (ej: Cod Pais + Cod Area + Telf)")],
        ),
        (
            "otp-verify",
            "OTP-api/verify",
            {"sessionid": "{sessionID}", "otp_code": "{otp_code}"},
            [("sessionid", "hidden", "{sessionID}"), ("otp_code", "text", "{otp_code}")],
        ),
        ("balance", "balance", {}, []),
        (
            "countries",
            "countries",
            {"allowed": "ES,VE,US"},
            [("allowed", "text", "ES,VE,US"), ("blocked", "text", "NG")],
        ),
        ("rates", "rates", {}, []),
        (
            "calls",
            "calls",
            {"since": "2026-12-01T00:00:00Z", "limit": "100"},
            [("since", "text", "2026-12-01T00:00:00Z"), ("limit", "text", "100")],
        ),
        (
            "quote",
            "sms-api/quote",
            {"to": "13058888888,584125550101", "text": "Pay 5€ today"},
            [("to", "text", "Para (ej: Cod Pais + Cod Area + Telf)"), ("text", "textarea", "Message")],
        ),
        (
            "calls-quote",
            "calls/quote",
            {"to": "13058888888", "minutes": "5"},
            [("to", "text", "Para (ej: Cod Pais + Cod Area + Telf)"), ("minutes", "text", "1")],
        ),
        (
            "spend-caps",
            "spend-caps",
            {"service": "sms", "day": "5.00", "month": "100"},
            [("service", "text", "sms"), ("country", "text", "MX"), ("day", "text", "5.00"), ("month", "text", "100")],
        ),
        ("balance-alert", "balance-alert", {"threshold": "5.00"}, [("threshold", "text", "5.00")]),
        (
            "test",
            "sms-api",
            {"to": "+15005550002", "text": "Prueba"},
            [("to", "text", "+15005550002"), ("text", "textarea", "Prueba")],
        ),
    ]
    out = [
        Section(
            sid,
            ep,
            extra,
            fields,
            _examples(base, ep, account, extra, fields),
            FIELDS[sid],
            [r.replace("{account}", account) for r in REPLIES[sid]],
            TITLES.get(sid, ep),
            INTROS.get(sid, ""),
        )
        for sid, ep, extra, fields in specs
    ]
    # Test mode: after the send, the status (-i shows the X-UVox-Test header too).
    status_url = f"{base}/api/get-api/v1/sms-api/status?messageId={{messageId}}"
    out[-1].examples.insert(2, Example("curl: status", "shell", f"curl -H 'Api-Key: {KEY}' -i \\\n  '{status_url}'"))
    return out
