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
            "one entry per number. A number of a country the account's country rules refuse (see `countries`) "
            "gets code 152 and is neither sent nor charged.",
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
             "e104": _envelope_example("104"), "e152": _envelope_example("152", to="2348031234567"), **common},
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
            "Creates a 6-digit code valid 10 minutes, single use, and sends it by SMS with the template `ref_id`. "
            "SMS pumping protection (extensions): the account's country rules (152, see `countries`); a prefix "
            "paused by the conversion-rate alarm (156: when 20 or more codes to one prefix, the country code and "
            "the next 3 digits, were requested within an hour and fewer than 20 % verified; lifted in the portal "
            "or by the operator, or after an hour); and limits counted per account: codes per phone number "
            "(102, default 5 every 10 minutes), per prefix (154, default 100 an hour), per client address (155, "
            "default 100 an hour) and in all (153, default 1000 an hour). A refusal by a limit or a pause is "
            "HTTP 429 with a `Retry-After` header (seconds); nothing is sent or charged.",
            [_param("ref_id", "Template reference from the portal.", "3f9a1c2b7d4e5f60"),
             _param("phone_number", "Destination, digits with country code.", "13058888888"),
             _param("client_ip", "Extension: the address of your end user (when your server calls for them), "
                    "counted by the per-address limit instead of your server's address. IPv4 or IPv6.",
                    "203.0.113.7", False)],
            {"ok": _envelope_example("022", phone_number="+13058888888", sessionID="q0Xv..."),
             "e020": _envelope_example("020"), "e021": _envelope_example("021", sessionID="q0Xv..."),
             "e102": _envelope_example("102", phone_number="+13058888888",
                                       detail="at most 5 codes per number every 600 seconds"),
             "e152": _envelope_example("152", phone_number="+2348031234567", country="NG",
                                       detail="the account's country rules do not allow numbers of NG"),
             "e153": _envelope_example("153", phone_number="+13058888888",
                                       detail="at most 1000 codes per account every 3600 seconds"),
             "e154": _envelope_example("154", phone_number="+13058888888",
                                       detail="at most 100 codes to numbers starting +1305 every 3600 seconds"),
             "e155": _envelope_example("155", phone_number="+13058888888",
                                       detail="at most 100 codes requested from one client address every 3600 seconds"),
             "e156": _envelope_example("156", phone_number="+13058888888",
                                       detail="code requests to numbers starting +1305 are paused: too few of the "
                                              "codes sent there were verified; lift the pause in the portal, or wait"),
             **common},
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
    paths["/api/get-api/v1/countries"] = _op(
        "Country rules",
        "Extension. The destination countries the account's OTP-api and sms-api requests may reach: without "
        "variables, the rules in force; with `allowed` and/or `blocked`, that list is replaced (an empty value "
        "clears it). Countries are ISO 3166 codes as phonenumbers gives a number's region (+1 305 is US, +1 416 "
        "is CA). A number is refused (152) when its country is blocked, or when `allowed` is not empty and does "
        "not name it; a non-geographic number (+800, +882) is refused whenever `allowed` is set.",
        [_param("allowed", "ISO codes separated by commas; only these countries (empty: any).", "ES,VE,US", False),
         _param("blocked", "ISO codes separated by commas; never these countries.", "NG", False)],
        {"ok": _envelope_example("150", allowed="ES,US,VE", blocked="NG"),
         "e151": _envelope_example("151", detail="not ISO 3166 country codes: XX"), **common},
        "Account")
    paths["/api/get-api/v1/calls"] = _calls_op(common)
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
                                             "credit", "available", "held", "next_cursor", "detail", "country",
                                             "allowed", "blocked")}
                             | {"calls": {"type": "array", "items": {"$ref": "#/components/schemas/Call"}}}},
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
