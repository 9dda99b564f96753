"""The manual's examples, with the customer's own account number and our address.

The manual writes ``{account-number}`` and ``https://my.unityvox.com``; a customer
reading the Documentation page gets copy-paste-ready code instead. The API key stays
a placeholder: keys are shown once and stored hashed, so the portal cannot know it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode

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


def N_(text: str) -> str:
    return text


CREDENTIALS = [
    ("apikey", N_("Private key created in your account (section API).")),
    ("accountnumber", N_("Account number, shown in your dashboard and in the API section.")),
]
FIELDS = {
    "sms": CREDENTIALS + [
        ("text", N_("Content of the text message.")),
        ("from", N_("Number that sends the SMS. Some carriers and phones accept text, e.g. from=UVox; where the carrier "
                    "does not, the sender is a generic number.")),
        ("to", N_("Destination number, with country code; several separated by commas (up to 200).")),
    ],
    "status": CREDENTIALS + [("messageId", N_("The unique ID of the message, given in the reply to the send."))],
    "otp": CREDENTIALS + [
        ("ref_id", N_("Unique value created with your template in the OTP templates section.")),
        ("phone_number", N_("Destination number.")),
    ],
    "otp-verify": CREDENTIALS + [
        ("sessionid", N_("The sessionID received in the reply to the code request; valid only with its code.")),
        ("otp_code", N_("The code your customer received by SMS: valid for 10 minutes, usable once.")),
    ],
    "balance": CREDENTIALS,
    "rates": CREDENTIALS,
    "calls": CREDENTIALS + [
        ("since", N_("Optional: calls started at or after this time, ISO 8601 (2026-12-01 or 2026-12-01T00:00:00Z; "
                     "without a zone, UTC).")),
        ("until", N_("Optional: calls started before this time, ISO 8601.")),
        ("number", N_("Optional: only calls whose caller or called number contains these digits.")),
        ("limit", N_("Optional: records per page, 1 to 1000 (default 100).")),
        ("cursor", N_("Optional: the next_cursor of the previous reply, for the next page; the last page has none.")),
        ("format", N_("Optional: csv for every matching call as a CSV file (the same columns, no cursor).")),
    ],
    "spend-caps": CREDENTIALS + [
        ("service", N_("sms (SMS and one-time codes), calls, or all (both together). Default: all.")),
        ("country", N_("Optional: two-letter code of the destination country (MX, US, ES...); empty for every "
                       "destination.")),
        ("day", N_("Optional: the cap for each day (UTC), or none to remove it.")),
        ("month", N_("Optional: the cap for each month (UTC), or none to remove it. Without day and month the "
                     "reply only lists your caps.")),
    ],
    "balance-alert": CREDENTIALS + [
        ("threshold", N_("Optional: alert when your available money falls below this amount; none removes the "
                         "alert. Without it the reply shows the alert.")),
    ],
}


def _reply(code: str, version: str, status: str, result: str, message: str, **extra: str) -> str:
    fields = [("version", version), ("code", code), ("status", status), ("resultstring", result), *extra.items(),
              ("statusmessage", message)]
    return "{\n" + ",\n".join(f'  "{k}":"{v}"' for k, v in fields) + "\n}"


REPLIES = {
    "sms": [_reply("005", "1", "success", "Success", "Message sent successfully", to="+13058888888", id="48"),
            _reply("009", "1", "no_plan", "Success", "No Plan or Balance in account (SMS queued)", to="+13058888888", id="49"),
            _reply("003", "1.00", "error", "Failure", "Invalid or empty text")],
    "status": [_reply("011", "1", "success", "Success", "To send"),
               _reply("012", "1", "success", "Success", "No plan available to send or Credit"),
               _reply("013", "1", "success", "Success", "SMS Sent"),
               _reply("010", "1.00", "error", "Failure", "Error validating SMS, please verify ID")],
    "otp": [_reply("022", "1.00", "success", "Success", "Message sent successfully", phone_number="+13055550100",
                   sessionID="{sessionID}"),
            _reply("020", "1.00", "error", "Failure", "Invalid or empty Message ref_id"),
            _reply("021", "1.00", "error", "Failure", "No Plan or Balance in account", sessionID="{sessionID}")],
    "otp-verify": [_reply("027", "1.00", "success", "Success", "OTP Matched", sessionID="{sessionid}"),
                   _reply("025", "1.00", "error", "Failure", "OTP Mismatch", sessionID="{sessionid}"),
                   _reply("023", "1.00", "error", "Failure", "OTP Expired", sessionID="{sessionid}")],
    "balance": [_reply("015", "1", "success", "Success", "Get Balance", accountnumber="{account}", currency="US$",
                       balance="100.00")],
    "calls": ['{\n  "version":"1",\n  "code":"120",\n  "status":"success",\n  "resultstring":"Success",\n'
              '  "accountnumber":"{account}",\n  "calls":[{"id":"42","sip_username":"{account}123456","from":"{account}123456",'
              '"to":"+13055550100","destination":"USA Miami","direction":"outbound","status":"answered","sip_code":"200",'
              '"hangup":"caller","started_at":"2026-12-01T10:00:00Z","answered_at":"2026-12-01T10:00:04Z",'
              '"ended_at":"2026-12-01T10:01:09Z","duration":"65","billed":"120","rate":"0.01200",'
              '"connectcharge":"0.00","price":"0.024","currency":"US$","trunk":"carrier1"}],\n'
              '  "next_cursor":"42",\n  "statusmessage":"Call records"\n}'],
    "spend-caps": ['{\n  "version":"1",\n  "code":"141",\n  "status":"success",\n  "resultstring":"Success",\n'
                   '  "accountnumber":"{account}",\n  "currency":"US$",\n  "caps":[{"service":"sms","period":"day",'
                   '"country":"","limit":"5.00","spent":"1.25","remaining":"3.75",'
                   '"resets_at":"2026-12-06T00:00:00+00:00"}],\n  "statusmessage":"Spend caps"\n}',
                   '{\n  "version":"1.00",\n  "code":"140",\n  "status":"error",\n  "resultstring":"Failure",\n'
                   '  "to":"+13058888888",\n  "price":"0.0075",\n  "currency":"US$",\n  "detail":"this request costs '
                   '0.0075 US$; the day cap on SMS is 5.00 and 5.00 is already spent; it resets at '
                   '2026-12-06T00:00:00+00:00",\n  "cap":{"service":"sms","period":"day","country":"","limit":"5.00",'
                   '"spent":"5.00","remaining":"0.00","resets_at":"2026-12-06T00:00:00+00:00"},\n'
                   '  "statusmessage":"Spend cap reached"\n}'],
    "balance-alert": [_reply("143", "1", "success", "Success", "Low-balance alert", accountnumber="{account}",
                             currency="US$", threshold="5.00", available="12.40")],
    "rates": ['[{"dialprefix":"56","destination":"Chile","rateinitial":"0.02850"},\n'
              ' {"dialprefix":"58","destination":"Venezuela","rateinitial":"0.02025"}]'],
}


def _query(account: str, extra: dict[str, str]) -> str:
    # The manual's links keep the braces readable, so {apikey} is not percent-encoded.
    pairs = {"accountnumber": account, "apikey": KEY, **extra}
    return urlencode(pairs, safe="{}", quote_via=quote)


def _examples(base: str, endpoint: str, account: str, extra: dict[str, str],
              form_fields: list[tuple[str, str, str]]) -> list[Example]:
    url = f"{base}/api/get-api/v1/{endpoint}"
    query = _query(account, extra)
    full = f"{url}?{query}"
    # The manual's own form names (customers' scripts may select forms by them).
    name = {"sms-api": "form-send-sms", "OTP-api": "request_otp", "OTP-api/verify": "request_otp"}.get(
        endpoint, "form-" + endpoint.replace("/", "-").lower())
    form_lines = [f' <form action="{url}" method="POST" name="{name}">',
                  f'     <input name="accountnumber" type="hidden" value="{account}" />',
                  f'     <input name="apikey" type="hidden" value="{KEY}" />']
    for name, kind, value in form_fields:
        if kind == "textarea":
            form_lines.append(f'     <textarea name="{name}" cols="50" rows="4" placeholder="{value}" maxlength="160"></textarea>')
        elif kind == "hidden":
            form_lines.append(f'     <input name="{name}" type="hidden" value="{value}" />')
        else:
            form_lines.append(f'     <input name="{name}" type="text" size="35" placeholder="{value}" />')
    form_lines += ['     <input name="Submit" type="submit" value="Submit">', " </form>"]
    py_params = ",\n".join(f'        "{k}": "{v}"' for k, v in {"accountnumber": account, "apikey": KEY, **extra}.items())
    return [
        Example("URL", "text", full),
        Example("curl", "shell",
                f"curl -H 'Accept: application/vnd.api+json' \\\n  -H 'Api-Key: {KEY}' \\\n  '{url}"
                + (f"?{urlencode(extra, safe='{}', quote_via=quote)}'" if extra else "'")),
        Example("HTML", "html", "\n".join(form_lines)),
        Example("JavaScript", "javascript",
                "var xhr = new XMLHttpRequest();\n"
                f'var url = "{url}";\n'
                f'xhr.open("POST", url + "?{query}", true);\n'
                "xhr.onreadystatechange = function () {\n"
                "  if (xhr.readyState == 4 && xhr.status == 200) {\n"
                "    console.log(JSON.parse(xhr.responseText));\n"
                "  }\n"
                "};\n"
                "xhr.send();"),
        Example("PHP", "php",
                "$ch = curl_init();\n"
                f'curl_setopt($ch, CURLOPT_URL, "{full}");\n'
                "curl_setopt($ch, CURLOPT_HEADER, 0);\n"
                "curl_setopt($ch, CURLOPT_RETURNTRANSFER, 1);\n"
                "$reply = json_decode(curl_exec($ch), true);\n"
                "curl_close($ch);"),
        Example("Python", "python",
                "import json, urllib.parse, urllib.request\n\n"
                "params = urllib.parse.urlencode({\n" + py_params + ",\n})\n"
                f'with urllib.request.urlopen("{url}", data=params.encode()) as reply:\n'
                "    print(json.load(reply))"),
    ]


def sections(base: str, account: str) -> list[Section]:
    specs = [
        ("sms", "sms-api", {"from": "13779999999", "to": "13058888888", "text": "Este es un mensaje de prueba"},
         [("from", "text", "De (ej: Cod Pais + Cod Area + Telf)"), ("to", "text", "Para (ej: Cod Pais + Cod Area + Telf)"),
          ("text", "textarea", "Message")]),
        ("status", "sms-api/status", {"messageId": "{messageId}"}, [("messageId", "text", "messageId")]),
        ("otp", "OTP-api", {"ref_id": "{ref_id}", "phone_number": "1305xxxxxxxx"},
         [("ref_id", "hidden", "{ref_id}"), ("phone_number", "text", "Para (ej: Cod Pais + Cod Area + Telf)")]),
        ("otp-verify", "OTP-api/verify", {"sessionid": "{sessionID}", "otp_code": "{otp_code}"},
         [("sessionid", "hidden", "{sessionID}"), ("otp_code", "text", "{otp_code}")]),
        ("balance", "balance", {}, []),
        ("rates", "rates", {}, []),
        ("calls", "calls", {"since": "2026-12-01T00:00:00Z", "limit": "100"},
         [("since", "text", "2026-12-01T00:00:00Z"), ("limit", "text", "100")]),
        ("spend-caps", "spend-caps", {"service": "sms", "day": "5.00", "month": "100"},
         [("service", "text", "sms"), ("country", "text", "MX"), ("day", "text", "5.00"), ("month", "text", "100")]),
        ("balance-alert", "balance-alert", {"threshold": "5.00"}, [("threshold", "text", "5.00")]),
    ]
    return [Section(sid, ep, extra, fields, _examples(base, ep, account, extra, fields), FIELDS[sid],
                    [r.replace("{account}", account) for r in REPLIES[sid]])
            for sid, ep, extra, fields in specs]
