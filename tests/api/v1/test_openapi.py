"""The OpenAPI description at /openapi.json and its page at /docs, as a client generator
or a person reading it would use them."""

from __future__ import annotations

from openapi_spec_validator import validate

from uvox.api.v1.codes import CODES

ENDPOINTS = ["sms-api", "sms-api/status", "OTP-api", "OTP-api/verify", "balance", "rates", "countries"]


def _examples(spec):
    for path in spec["paths"].values():
        for op in path.values():
            for status, resp in op["responses"].items():
                for content in resp.get("content", {}).values():
                    for ex in content.get("examples", {}).values():
                        yield status, ex["value"]


def test_openapi_is_valid_and_describes_every_endpoint_and_code(http):
    r = http.get("/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    spec = r.json()
    validate(spec)  # a valid OpenAPI 3.1 document, by an independent validator
    for name in ENDPOINTS:
        assert set(spec["paths"][f"/api/get-api/v1/{name}"]) == {"get", "post", "put"}
    shown = {}
    for status, value in _examples(spec):
        code = value["code"]
        shown[code] = value
        # Each example sits under the HTTP status the API really answers with.
        expected = CODES[code].http
        assert status == str(expected) or (status == "4XX" and 400 <= expected < 500), (code, status)
        assert value["statusmessage"] == CODES[code].message
    manual = {
        "001",
        "002",
        "003",
        "004",
        "005",
        "009",
        "010",
        "011",
        "012",
        "013",
        "014",
        "015",
        "016",
        "017",
        "020",
        "021",
        "022",
        "023",
        "024",
        "025",
        "026",
        "027",
        "500",
    }
    assert manual <= set(shown), manual - set(shown)
    pumping = {"102", "150", "151", "152", "153", "154", "155", "156"}  # SMS pumping protection (issue 14)
    assert pumping <= set(shown), pumping - set(shown)


def test_docs_page_lists_the_endpoints(http):
    r = http.get("/docs")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    for name in ENDPOINTS:
        assert f"/api/get-api/v1/{name}" in r.text
