"""Test keys in the portal: created with the "test key" choice, marked in the key list,
and their messages marked in the customer's history and the operator's search."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess

from tests.conftest import uvox_require
from tests.portal.conftest import PASSWORD

API = "/api/get-api/v1/"


def test_test_key_created_listed_and_its_messages_marked(client, make_customer, platform, http):
    from uvox.accounts import service

    c = make_customer(password=PASSWORD)
    b = client()
    assert b.sign_in(c.email).status_code == 303
    form = b.c.get("/apikeys").text
    assert 'name="mode" value="test"' in form and "nothing is sent to a phone or charged" in form
    r = b.post("/apikeys", {"description": "ci", "mode": "test"})
    assert r.status_code == 200 and re.search(r'id="key-mode">.*test-mark', r.text)
    key = re.search(r'id="new-key">([^<]+)<', r.text).group(1)
    listing = b.c.get("/apikeys").text
    assert len(re.findall(r'<tr data-mode="test">', listing)) == 1  # the new one
    assert len(re.findall(r'<tr data-mode="live">', listing)) == 1  # the fixture's key

    test_msg = http.post(
        API + "sms-api", data={"accountnumber": c.number, "apikey": key, "to": "13055550100", "text": "from CI"}
    ).json()
    live_msg = http.post(API + "sms-api", data={**c.auth, "to": "13055550101", "text": "real"}).json()
    assert test_msg["test"] == "1" and "test" not in live_msg

    def marked(html: str) -> set[str]:
        """Message ids whose row carries the test badge."""
        return {m for m, row in re.findall(r'<tr data-id="(\d+)">(.*?)</tr>', html, re.S) if "test-mark" in row}

    assert marked(b.c.get("/sms").text) == {test_msg["id"]}
    assert 'id="test-notice"' in b.c.get(f"/sms/{test_msg['id']}").text
    assert 'id="test-notice"' not in b.c.get(f"/sms/{live_msg['id']}").text
    # Spanish, the portal's first language.
    es = client(**{"accept-language": "es"})
    es.sign_in(c.email)
    assert 'test-mark">prueba</span>' in es.c.get("/apikeys").text
    assert 'test-mark" title="Enviado con una clave de prueba' in es.c.get("/sms").text

    service.create_account(platform.engine, email="staff@example.com", password=PASSWORD, is_staff=True)
    staff = client()
    assert staff.sign_in("staff@example.com").status_code == 303
    found = staff.c.get(f"/operator/messages?account={c.number}").text
    rows = re.findall(r"<tr><td>(\d+)</td>(.*?)</tr>", found, re.S)
    assert {m for m, row in rows if "test-mark" in row} == {test_msg["id"]}
    assert live_msg["id"] in {m for m, _ in rows}


def test_documentation_curl_examples_of_test_mode_work_when_pasted(client, make_customer, platform):
    """The /documentation page's test-mode curl examples, pasted into a shell with a test key."""
    from uvox.accounts import apikeys

    uvox_require(shutil.which("curl") is not None, "curl is not installed")
    c = make_customer(password=PASSWORD)
    key, _ = apikeys.create(platform.engine, c.id, "ci", test=True)
    b = client()
    b.sign_in(c.email)
    page = b.c.get("/documentation").text
    assert 'id="test"' in page and 'href="#test"' in page
    for number, state in (
        ("+15005550001", "delivered"),
        ("+15005550002", "undelivered"),
        ("+15005550003", "rejected"),
        ("+15005550004", "expired"),
    ):
        assert re.search(rf"<dt><code>{re.escape(number)}</code></dt><dd>[^<]*{state}", page, re.I), number
    examples = dict(re.findall(r'<pre><code id="code-test-(\d+)">(.*?)</code></pre>', page, re.S))

    def paste(n: str, **fill: str) -> str:
        command = html.unescape(examples[n]).replace("{apikey}", key)
        for name, value in fill.items():
            command = command.replace("{" + name + "}", value)
        assert command.startswith("curl "), command
        return subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30, check=True).stdout

    sent = json.loads(paste("2"))
    assert sent["code"] == "005" and sent["test"] == "1" and sent["to"] == "+15005550002"
    status = paste("3", messageId=sent["id"])
    assert re.search(r"^x-uvox-test: 1\r?$", status, re.M | re.I)
    assert json.loads(status.split("\n\n", 1)[1])["test"] == "1"  # text mode: \r\n read as \n
