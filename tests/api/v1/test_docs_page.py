"""The API reference page at /docs, as a person reads it: Markdown rendered (no raw
backticks, lists as lists), every code of codes.py in its table, every example, a
curl command that works when pasted, nothing loaded from another site."""

from __future__ import annotations

import html
import re
import subprocess

from uvox.api.v1.codes import CODES


def test_docs_page_renders_its_text_and_every_code(http):
    r = http.get("/docs")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    page = r.text
    assert "`" not in page and "x-codes" not in page
    assert "<code>statecode</code>" in page  # Markdown's `code`
    assert re.search(r"<ul>\s*<li>110 delivered</li>", page)  # and its lists
    rows = dict(re.findall(r'<tr id="code-(\d{3})">(.*?)</tr>', page, re.S))
    assert set(rows) == set(CODES)
    for code, c in CODES.items():
        assert html.escape(c.message, quote=False) in rows[code] and f">{c.http}<" in rows[code], code
        assert (">extension<" in rows[code]) == (code.startswith("1")), code
    # Every example of the description is on the page.
    spec = http.get("/openapi.json").json()
    for item in spec["paths"].values():
        for op in item.values():
            for resp in op["responses"].values():
                for content in resp.get("content", {}).values():
                    for ex in content.get("examples", {}).values():
                        assert html.escape(ex["summary"], quote=False) in page, ex["summary"]
    # Works offline: nothing from another site.
    assert not re.search(r'(src|href)="(https?:)?//', page)


def test_curl_example_works_when_pasted(http, customer, base_url):
    page = http.get("/docs").text
    command = html.unescape(re.search(r'<code id="curl-sms-api">(.*?)</code>', page, re.S).group(1))
    assert command.startswith("curl -G -H 'Api-Key: YOUR_API_KEY'") and base_url in command
    out = subprocess.run(["bash", "-c", command.replace("YOUR_API_KEY", customer.apikey)],
                         capture_output=True, text=True, timeout=30)
    assert '"code":"005"' in out.stdout and '"to":"+13058888888"' in out.stdout, out
