"""The OpenAPI description of the v1 API, and a readable page of it at /docs."""

from __future__ import annotations

import html

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from uvox.api.v1.codes import CODES
from uvox.api.v1.envelope import body
from uvox.voice.records import CSV_COLUMNS

AUTH_PARAMS = [
    {"name": "accountnumber", "in": "query", "required": False, "schema": {"type": "string"},
     "description": "Account number (with apikey). Not needed with the Api-Key header.", "example": "12345678"},
    {"name": "apikey", "in": "query", "required": False, "schema": {"type": "string"},
     "description": "API key (with accountnumber). Prefer the Api-Key header: query strings end up in proxies' logs.",
     "example": "4D41E00J6KMXABS"},
]


def _envelope_example(code: str, **fields) -> dict:
    return {"summary": f"{code} {CODES[code].message}", "value": body(code, **fields)}


def _op(summary: str, description: str, params: list[dict], examples: dict[str, dict], tag: str) -> dict:
    op = {
        "summary": summary,
        "description": description,
        "tags": [tag],
        "parameters": AUTH_PARAMS + params,
        "security": [{"ApiKeyHeader": []}, {"AccountAndKey": []}],
        "responses": {
            "200": {"description": "Success codes", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Envelope"},
                "examples": {k: v for k, v in examples.items() if CODES[v["value"]["code"]].http == 200}}}},
            "4XX": {"description": "Error codes (see the code table)", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Envelope"},
                "examples": {k: v for k, v in examples.items() if 400 <= CODES[v["value"]["code"]].http < 500}}}},
            "500": {"description": "Internal problem: logged on the server with the request id, never a traceback",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"},
                                                     "examples": {"e500": _envelope_example("500")}}}},
        },
    }
    return {m: op for m in ("get", "post", "put")}


def _param(name: str, description: str, example: str, required: bool = True) -> dict:
    return {"name": name, "in": "query", "required": required, "schema": {"type": "string"},
            "description": description + " May also be sent in a form or JSON body.", "example": example}


#: One call record as the calls endpoint returns it (VOICE.md's fields, all strings).
CALL_EXAMPLE = {
    "id": "42", "sip_username": "12345678123456", "from": "12345678123456", "to": "+13055550100",
    "destination": "USA Miami", "direction": "outbound", "status": "answered", "sip_code": "200", "hangup": "caller",
    "started_at": "2026-12-01T10:00:00Z", "answered_at": "2026-12-01T10:00:04Z", "ended_at": "2026-12-01T10:01:09Z",
    "duration": "65", "billed": "120", "rate": "0.01200", "connectcharge": "0.00", "price": "0.024",
    "currency": "US$", "trunk": "carrier1",
}
CALL_FIELDS = CSV_COLUMNS


def _calls_op(common: dict) -> dict:
    refused = {**CALL_EXAMPLE, "id": "41", "to": "+4420000000", "destination": "", "status": "refused",
               "sip_code": "404", "hangup": "system", "answered_at": None, "ended_at": "2026-12-01T09:58:00Z",
               "started_at": "2026-12-01T09:58:00Z", "duration": "0", "billed": "0", "rate": "0.00000",
               "price": "0", "trunk": None}
    ops = _op(
        "Call records",
        "The account's call records, newest first (calls in progress are not listed yet): status answered, busy, "
        "no_answer, failed, cancelled or refused; seconds, amounts and ids as strings, times ISO 8601 UTC. A page "
        "holds `limit` records; `next_cursor` (absent on the last page) is the `cursor` of the next one. "
        "`format=csv` returns every matching record as CSV with the same columns (no cursor).",
        [_param("since", "Calls started at or after this ISO 8601 time (no zone: UTC).", "2026-12-01T00:00:00Z", False),
         _param("until", "Calls started before this ISO 8601 time.", "2026-12-02T00:00:00Z", False),
         _param("number", "Only calls whose caller, called number or SIP user contains these digits.", "1305", False),
         _param("limit", "Records per page, 1 to 1000 (default 100).", "100", False),
         _param("cursor", "next_cursor of the previous page.", "42", False),
         _param("format", "json (default) or csv.", "csv", False)],
        {"ok": _envelope_example("120", accountnumber="12345678", calls=[CALL_EXAMPLE, refused], next_cursor="41"),
         "last": _envelope_example("120", accountnumber="12345678", calls=[]), **common},
        "Voice")
    op = dict(ops["get"])
    ok = op["responses"]["200"]
    op["responses"] = {**op["responses"], "200": {
        "description": ok["description"] + "; with format=csv, text/csv",
        "content": {"application/json": ok["content"]["application/json"],
                    "text/csv": {"schema": {"type": "string"},
                                 "example": ",".join(CALL_FIELDS) + "\r\n"
                                            + ",".join(str(CALL_EXAMPLE[k] or "") for k in CALL_FIELDS) + "\r\n"}}}}
    return {m: op for m in ("get", "post", "put")}


CAP_EXAMPLE = {"service": "sms", "period": "day", "country": "", "limit": "5.00", "spent": "4.9925",
               "remaining": "0.0075", "resets_at": "2026-12-06T00:00:00+00:00"}


def _spending_ops(common: dict) -> dict[str, dict]:
    """spend-caps and balance-alert (billing.caps, billing.alerts); see docs/spend.md."""
    refused = {**CAP_EXAMPLE, "spent": "4.9925", "remaining": "0.0075"}
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
            [_param("service", "sms, calls or all (default all).", "sms", False),
             _param("country", "ISO 3166 two-letter code of the destination; empty for every destination.", "MX",
                    False),
             _param("day", "Cap for each UTC day, or none to remove it.", "5.00", False),
             _param("month", "Cap for each UTC month, or none to remove it.", "100", False)],
            {"ok": _envelope_example("141", accountnumber="12345678", currency="US$", caps=[CAP_EXAMPLE]),
             "e142": _envelope_example("142", detail="country must be a two-letter ISO 3166 code such as MX or US, "
                                                     "or empty for every destination"),
             "e140": _envelope_example("140", to="+13058888888", price="0.0150", currency="US$",
                                       detail="this request costs 0.015 US$; the day cap on SMS is 5.00 and 4.9925 "
                                              "is already spent; it resets at 2026-12-06T00:00:00+00:00",
                                       cap=refused),
             **common},
            "Account"),
        "/api/get-api/v1/balance-alert": _op(
            "Low-balance alert",
            "When a charge takes the account's available money (balance + credit - held) below `threshold`, the "
            "account is told once, by a status callback to its callback URL (`{\"event\":\"low_balance\",...}`) "
            "and by e-mail, and again only after the money was back at or above it. Without `threshold` the "
            "reply shows the alert; `threshold=none` removes it. `alerted` is true while the alert has fired and "
            "not re-armed.",
            [_param("threshold", "Alert when available money falls below this amount; none removes the alert.",
                    "5.00", False)],
            {"ok": _envelope_example("143", accountnumber="12345678", currency="US$", threshold="5.00",
                                     available="12.40", alerted=False, email="ops@example.com"),
             "e144": _envelope_example("144", detail="threshold must be an amount such as 5.00 (at most 6 decimals, "
                                                     "not negative), or none to remove the alert"),
             **common},
            "Account"),
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
    paths = {
        "/api/get-api/v1/sms-api": _op(
            "Send an SMS",
            "Send one SMS, or the same text to up to 200 numbers (comma-separated `to`, repeated `to`, or a JSON "
            "array). The message is stored durably before the reply. With several numbers the reply adds `results`, "
            "one entry per number.",
            [_param("to", "Destination(s), digits with country code, optional +.", "13058888888"),
             _param("text", "Message text. GSM-7 or UCS-2 is chosen automatically; long texts are split.",
                    "Este es un mensaje de prueba"),
             _param("from", "Sender: up to 15 digits, or up to 11 characters (letters, digits, space and !\"#$%&'()*+,-./:;<=>?@_).", "13779999999", False),
             _param("callback_url", "Status callback for this message (overrides the account's).",
                    "https://example.com/sms-status", False)],
            {"ok": _envelope_example("005", to="+13058888888", id="48", segments="1", price="0.0075", currency="US$"),
             "queued": _envelope_example("009", to="+13058888888", id="49", segments="1", price="0.0075", currency="US$"),
             "e002": _envelope_example("002", to="13055454xx"), "e003": _envelope_example("003"),
             "e014": _envelope_example("014", to="999123"), "e101": _envelope_example("101"),
             "e104": _envelope_example("104"),
             "e140": _envelope_example("140", to="+13058888888", price="0.0150", currency="US$",
                                       detail="this request costs 0.015 US$; the day cap on SMS is 5.00 and 4.9925 "
                                              "is already spent; it resets at 2026-12-06T00:00:00+00:00",
                                       cap=CAP_EXAMPLE), **common},
            "SMS"),
        "/api/get-api/v1/sms-api/status": _op(
            "Status of an SMS",
            "011 To send, 012 waiting for plan/credit, 013 sent. Final states add `state` and `statecode` "
            "(110 delivered, 111 undelivered, 112 expired, 113 rejected, 114 failed and refunded). A message "
            "that never left (failed, or expired while waiting) answers with its 1xx code instead of 013.",
            [_param("messageId", "The id returned by sms-api.", "48")],
            {"to_send": _envelope_example("011", id="48", state="queued"),
             "no_credit": _envelope_example("012", id="48", state="waiting_balance"),
             "sent": _envelope_example("013", id="48", state="submitted"),
             "delivered": _envelope_example("013", id="48", state="delivered", statecode="110", statetext="Delivered"),
             "e010": _envelope_example("010"), **common},
            "SMS"),
        "/api/get-api/v1/OTP-api": _op(
            "Request a one-time code",
            "Creates a 6-digit code valid 10 minutes, single use, and sends it by SMS with the template `ref_id`.",
            [_param("ref_id", "Template reference from the portal.", "3f9a1c2b7d4e5f60"),
             _param("phone_number", "Destination, digits with country code.", "13058888888")],
            {"ok": _envelope_example("022", phone_number="+13058888888", sessionID="q0Xv..."),
             "e020": _envelope_example("020"), "e021": _envelope_example("021", sessionID="q0Xv..."),
             "e102": _envelope_example("102"),
             "e140": _envelope_example("140", phone_number="+13058888888", price="0.0075", currency="US$",
                                       detail="this request costs 0.0075 US$; the day cap on SMS is 5.00 and 4.9925 "
                                              "is already spent; it resets at 2026-12-06T00:00:00+00:00",
                                       cap=CAP_EXAMPLE), **common},
            "OTP"),
        "/api/get-api/v1/OTP-api/verify": _op(
            "Verify a one-time code",
            "Checks `otp_code` for `sessionid`. After 5 wrong codes the session is locked (103).",
            [_param("sessionid", "sessionID from OTP-api.", "q0Xv..."),
             _param("otp_code", "The code the user typed.", "123456")],
            {"ok": _envelope_example("027", sessionID="q0Xv..."), "e023": _envelope_example("023", sessionID="q0Xv..."),
             "e024": _envelope_example("024", sessionID="q0Xv..."), "e025": _envelope_example("025", sessionID="q0Xv..."),
             "e026": _envelope_example("026", sessionID="q0Xv..."), "e103": _envelope_example("103", sessionID="q0Xv..."),
             **common},
            "OTP"),
        "/api/get-api/v1/balance": _op(
            "Balance", "Prepaid balance, credit limit and available amount.", [],
            {"ok": _envelope_example("015", accountnumber="12345678", currency="US$", balance="100.00",
                                     credit="0.00", available="100.00"), **common},
            "Account"),
    }
    paths["/api/get-api/v1/calls"] = _calls_op(common)
    paths.update(_spending_ops(common))
    rates = _op("Price list", "A bare JSON array of the account's rates (streamed).", [], common, "Account")
    rates_op = dict(rates["get"])
    rates_op["responses"] = {
        "200": {"description": "The price list", "content": {"application/json": {
            "schema": {"type": "array", "items": {"$ref": "#/components/schemas/Rate"}},
            "example": [{"dialprefix": "56", "destination": "Chile", "rateinitial": "0.02850"},
                        {"dialprefix": "5841", "destination": "Venezuela Mobile", "rateinitial": "0.04410"}]}}},
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
                           "reply carries `code`; see the code table in x-codes.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "Api-Key"},
                "AccountAndKey": {"type": "apiKey", "in": "query", "name": "apikey",
                                  "description": "With the accountnumber variable."},
            },
            "schemas": {
                "Envelope": {"type": "object", "required": ["version", "code", "status", "resultstring", "statusmessage"],
                             "properties": {k: {"type": "string"} for k in
                                            ("version", "code", "status", "resultstring", "statusmessage", "to", "id",
                                             "sessionID", "phone_number", "accountnumber", "currency", "balance",
                                             "credit", "available", "held", "next_cursor", "threshold",
                                             "email", "callback_url", "price", "detail")}
                             | {"calls": {"type": "array", "items": {"$ref": "#/components/schemas/Call"}},
                                "caps": {"type": "array", "items": {"$ref": "#/components/schemas/SpendCap"}},
                                "cap": {"$ref": "#/components/schemas/SpendCap"},
                                "alerted": {"type": "boolean"}}},
                "SpendCap": {"type": "object", "properties": {k: {"type": "string"} for k in CAP_EXAMPLE}},
                "Call": {"type": "object", "properties": {k: {"type": ["string", "null"]} for k in CALL_FIELDS}},
                "Rate": {"type": "object", "properties": {"dialprefix": {"type": "string"},
                                                          "destination": {"type": "string"},
                                                          "rateinitial": {"type": "string"}}},
            },
        },
        "x-codes": {c.code: {"message": c.message, "http": c.http} for c in CODES.values()},
    }


_SPEC = orjson.dumps(spec())


async def openapi_json(request: Request) -> Response:
    return Response(_SPEC, media_type="application/json", headers={"access-control-allow-origin": "*"})


async def docs_page(request: Request) -> HTMLResponse:
    s = spec()
    out = ["<!doctype html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' "
           "content='width=device-width,initial-scale=1'><title>UVox API v1</title><style>"
           "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.5}"
           "pre{background:#f4f4f4;padding:.75rem;overflow:auto}table{border-collapse:collapse}"
           "td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}</style></head><body>"
           f"<h1>{html.escape(s['info']['title'])}</h1><p>{html.escape(s['info']['description'])}</p>"
           "<p>Machine-readable: <a href='/openapi.json'>/openapi.json</a></p>"]
    for path, ops in s["paths"].items():
        op = ops["get"]
        out.append(f"<h2>{html.escape(op['summary'])}</h2><p><code>GET|POST|PUT {html.escape(path)}</code></p>"
                   f"<p>{html.escape(op['description'])}</p><table><tr><th>variable</th><th>meaning</th></tr>")
        for prm in op["parameters"]:
            out.append(f"<tr><td><code>{html.escape(prm['name'])}</code></td><td>{html.escape(prm['description'])}</td></tr>")
        out.append("</table>")
        for resp in op["responses"].values():
            content = resp["content"]["application/json"]
            for ex in content.get("examples", {}).values():
                out.append(f"<p>{html.escape(ex['summary'])}</p><pre>{html.escape(orjson.dumps(ex['value'], option=orjson.OPT_INDENT_2).decode())}</pre>")
            if "example" in content:
                out.append(f"<pre>{html.escape(orjson.dumps(content['example'], option=orjson.OPT_INDENT_2).decode())}</pre>")
    out.append("<h2>Codes</h2><table><tr><th>code</th><th>statusmessage</th><th>HTTP</th></tr>")
    for code, c in s["x-codes"].items():
        out.append(f"<tr><td>{code}</td><td>{html.escape(c['message'])}</td><td>{c['http']}</td></tr>")
    out.append("</table></body></html>")
    return HTMLResponse("".join(out))
