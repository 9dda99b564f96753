"""The API reference page at /docs, as a person reads it: Markdown rendered (no raw
backticks, lists as lists), every code of codes.py in its table, every example, a
curl command that works when pasted, nothing loaded from another site."""

from __future__ import annotations

import html
import json
import re
import subprocess
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from uvox.api.v1.codes import CODES
from uvox.db import schema as t


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
    out = subprocess.run(
        ["bash", "-c", command.replace("YOUR_API_KEY", customer.apikey)], capture_output=True, text=True, timeout=30
    )
    assert '"code":"005"' in out.stdout and '"to":"+13058888888"' in out.stdout, out


def _section(page: str, anchor: str) -> str:
    found = re.search(rf'<section class="card doc" id="{anchor}">(.*?)</section>', page, re.S)
    assert found, anchor
    return found.group(1)


def _run(command: str) -> dict:
    out = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out
    return json.loads(out.stdout)


def test_test_mode_section_is_in_the_contents_and_its_commands_work_when_pasted(http, platform, customer):
    from uvox.accounts import apikeys
    from uvox.dispatch import testmode as timer

    page = http.get("/docs").text
    assert '<a href="#test-mode">Test mode</a>' in page
    section = _section(page, "test-mode")
    blocks = [
        html.unescape(b)
        for b in re.findall(r'<pre><code class="language-(?:sh|json)">(.*?)</code></pre>', section, re.S)
    ]
    send, sent_doc, status, status_doc, callback_doc = blocks[:5]
    key, _ = apikeys.create(platform.engine, customer.id, "ci", test=True)
    sent = _run(send.replace("your-test-key", key))
    documented = json.loads(sent_doc)
    assert sent["code"] == "005" and sent["test"] == "1"
    assert sent == {**documented, "id": sent["id"], "price": sent["price"]}
    with platform.engine.begin() as conn:  # the timer's 2 seconds, passed
        conn.execute(sa.update(t.test_deliveries).values(due_at=datetime.now(UTC) - timedelta(seconds=1)))
        timer.advance(conn)
    # Pasted into the same shell, after the first block: $API_KEY is still set.
    got = _run(f"API_KEY='{key}'\n" + status.replace("messageId=1", f"messageId={sent['id']}"))
    assert set(got) == set(json.loads(status_doc)), (status, got)
    assert {k: got[k] for k in ("code", "state", "statecode", "error", "test")} == {
        k: json.loads(status_doc)[k] for k in ("code", "state", "statecode", "error", "test")
    }
    callback = json.loads(callback_doc)
    assert callback["test"] == "1" and callback["simulated"] is True and callback["code"] == "111"
    assert "000000" in section and "108" in section


def test_settings_examples_set_values(http, customer):
    page = http.get("/docs").text
    wanted = {
        "spend-caps": (
            "141",
            lambda r: [(c["period"], c["limit"]) for c in r["caps"]] == [("day", "5.00"), ("month", "100.00")],
        ),
        "countries": ("150", lambda r: (r["allowed"], r["blocked"]) == ("ES,US,VE", "NG")),
        "balance-alert": ("143", lambda r: r["threshold"] == "5.00"),
    }
    for anchor, (code, was_set) in wanted.items():
        sample = html.unescape(re.search(r"<pre class='sample'>(.*?)</pre>", _section(page, anchor), re.S).group(1))
        reply = _run(sample.replace("your-api-key", customer.apikey))
        assert reply["code"] == code and was_set(reply), (anchor, reply)


def test_quote_example_works_with_the_readmes_deck_and_shows_every_recipient(http, platform):
    """The README's quick start deck, the /docs page's worked quote: the reply is the
    documented one, every recipient in it, none rejected."""
    from pathlib import Path

    from uvox.accounts import apikeys, service
    from uvox.billing import plans

    readme = (Path(__file__).parents[3] / "README.md").read_text()
    deck = re.search(r"printf '(dialprefix,destination,rateinitial,smsrate\\n[^']*)' > deck.csv", readme).group(1)
    plans.create_plan(platform.engine, "readme", "US$")
    plans.import_rates(platform.engine, "readme", deck.replace("\\n", "\n"))
    account = service.create_account(platform.engine, email="ana@example.com", plan="readme")
    key, _ = apikeys.create(platform.engine, account.id, "my shop")
    page = http.get("/docs").text
    sample = html.unescape(
        re.search(r"<pre class='sample'>(.*?)</pre>", _section(page, "sms-api-quote"), re.S).group(1)
    )
    reply = _run(sample.replace("your-api-key", key))
    documented = http.get("/openapi.json").json()["paths"]["/api/get-api/v1/sms-api/quote"]["get"]["responses"]["200"][
        "content"
    ]["application/json"]["examples"]["ok"]["value"]
    assert reply == documented
    assert len(reply["results"]) == len(reply["to"].split(",")) == int(reply["accepted"]) and reply["rejected"] == "0"


def test_the_intro_does_not_send_the_reader_to_the_page_they_are_on(http):
    page = http.get("/docs").text
    assert "reference at /docs" not in page and "ends this reference" in page
