"""The manual's own examples, copied as a customer would, run by real clients.

PHP's cURL snippets in php-cli, the HTML forms and the XMLHttpRequest snippets in
Chromium on a page of another origin (a customer's shop). Only the manual's
placeholders are replaced: its address, the account number, the key, the ref_id.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import uvox_require
from tests.portal.conftest import browser  # noqa: F401  (the shared headless Chromium)

MANUAL_HOST = "https://my.unityvox.com"

# Verbatim from the manual ("CURL API" under SMS, Mi Balance and Tarifas).
PHP_SMS = """
  $ch = curl_init();
  curl_setopt($ch, CURLOPT_URL, "https://my.unityvox.com/api/get-api/v1/sms-api?accountnumber={account-number}&apikey={apikey}&from=13779999999&to=13779999999&text=Este%2es%2un%2mensaje%2de%2prueba");
  curl_setopt($ch, CURLOPT_HEADER, 0);
  curl_exec($ch);
  curl_close($ch);
"""
PHP_BALANCE = """
  $ch = curl_init();
  curl_setopt($ch, CURLOPT_URL, "https://my.unityvox.com/api/get-api/v1/balance?accountnumber={account-number}&apikey={apikey}");
  curl_setopt($ch, CURLOPT_HEADER, 0);
  curl_exec($ch);
  curl_close($ch);
"""
PHP_RATES = """
  $ch = curl_init();
  curl_setopt($ch, CURLOPT_URL, "https://my.unityvox.com/api/get-api/v1/rates?accountnumber={account-number}&apikey={apikey}");
  curl_setopt($ch, CURLOPT_HEADER, 0);
  curl_exec($ch);
  curl_close($ch);
"""

# Verbatim from the manual (SMS "HTML API" and the OTP request form, stray quote included).
FORM_SMS = """
 <form action="https://my.unityvox.com/api/get-api/v1/sms-api" method="POST" name="form-send-sms">
     <input name="accountnumber" type="hidden" value="{account-number}" />
     <input name="apikey" type="hidden" value="{apikey}" />
      <input name="from" type="text" size="35" placeholder="De (ej: Cod Pais + Cod Area + Telf)"/>
     <input name="to" type="text" size="35" placeholder="Para (ej: Cod Pais + Cod Area + Telf)"/>
     <textarea name="text" cols="50" rows="4" id="text" placeholder="Message" maxlength="160">
     </textarea>
     <input name="Submit" type="submit" value="Submit">
 </form>
"""
FORM_OTP = """
 <form action="https://my.unityvox.com/api/get-api/v1/OTP-api" method="POST" name="request_otp">
     <input name="accountnumber" type="hidden" value="{account-number}" />
     <input name="apikey" type="hidden" value="{apikey}" />
      <input name="ref_id" type="hidden" size="35" value={ref_id}"/>
     <input name="phone_number" type="text" size="35" placeholder="Para (ej: Cod Pais + Cod Area + Telf)"/>
     <input name="Submit" type="submit" value="Submit">
 </form>
"""
# The manual's "JavaScript API" for balance. As printed it does not parse (the URL is
# not quoted, console.log has typographic quotes); those two are fixed, nothing else.
JS_BALANCE = """
var xhr = new XMLHttpRequest();
var url = "https://my.unityvox.com/api/get-api/v1/balance"
xhr.open("POST", url+"?accountnumber={account-number}&apikey={apikey}", true);
xhr.onreadystatechange = function(){
  if (xhr.readyState == 4 && xhr.status == 200) {
    console.log('success');
  }
};
xhr.send();
"""


def fill(snippet: str, base_url: str, customer, ref_id: str = "") -> str:
    return (
        snippet.replace(MANUAL_HOST, base_url)
        .replace("{account-number}", customer.number)
        .replace("{apikey}", customer.apikey)
        .replace("{ref_id}", ref_id)
    )


def run_php(code: str) -> str:
    php = shutil.which("php")
    uvox_require(php is not None, "php-cli is not installed (apt-get install php-cli php-curl)")
    res = subprocess.run([php, "-r", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "Warning" not in res.stdout + res.stderr, res.stdout + res.stderr
    return res.stdout


def test_php_curl_snippets(base_url, customer):
    sms = json.loads(run_php(fill(PHP_SMS, base_url, customer)))
    assert sms["version"] == "1" and sms["code"] == "005" and sms["status"] == "success"
    assert sms["to"] == "+13779999999" and isinstance(sms["id"], str)
    bal = json.loads(run_php(fill(PHP_BALANCE, base_url, customer)))
    assert bal["code"] == "015" and bal["accountnumber"] == customer.number and bal["currency"] == "US$"
    rates = json.loads(run_php(fill(PHP_RATES, base_url, customer)))
    assert rates[0] == {"dialprefix": "1", "destination": "USA", "rateinitial": "0.01000"}


def test_php_http_build_query_list_of_numbers(base_url, customer):
    """PHP repeats a variable as to[0]=…&to[1]=…; that is the repeated `to` of API.md."""
    out = run_php(f"""
        $ch = curl_init("{base_url}/api/get-api/v1/sms-api");
        curl_setopt($ch, CURLOPT_RETURNTRANSFER, 1);
        curl_setopt($ch, CURLOPT_POSTFIELDS, http_build_query(["accountnumber" => "{customer.number}",
            "apikey" => "{customer.apikey}", "to" => ["13058888888", "584121234567"], "text" => "hola"]));
        echo curl_exec($ch);
    """)
    body = json.loads(out)
    assert body["code"] == "005", body
    assert [r["to"] for r in body["results"]] == ["+13058888888", "+584121234567"]


@pytest.fixture
def shop_page(browser):  # noqa: F811
    """A customer's page on another origin: its own small web server on another port.

    A real server on the loopback address, not a routed fake public host: Chromium
    keeps pages on public addresses from calling loopback ones, which no API reply
    can change and which is not what a customer's shop calling the API meets.
    """
    pages: dict[str, tuple[bytes, str]] = {}

    class Shop(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            body, charset = pages.get(self.path, (b"", "utf-8"))
            self.send_response(200)
            self.send_header("content-type", f"text/html; charset={charset}")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Shop)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ctx = browser.new_context()
    ctx.set_default_timeout(15_000)

    def open_with(html: str, name: str = "page", charset: str = "utf-8"):
        pages[f"/{name}"] = (f"<!doctype html><html><body>{html}</body></html>".encode(charset), charset)
        page = ctx.new_page()
        page.goto(f"http://127.0.0.1:{server.server_port}/{name}")
        return page

    yield open_with
    ctx.close()
    server.shutdown()
    server.server_close()


def test_html_form_from_a_customer_site(shop_page, base_url, customer):
    page = shop_page(fill(FORM_SMS, base_url, customer), "sms")
    page.fill("input[name=from]", "UVox")
    page.fill("input[name=to]", "13058888888")
    page.fill("textarea[name=text]", "Hola desde mi tienda")
    with page.expect_navigation():
        page.click("input[name=Submit]")
    body = json.loads(page.inner_text("body"))
    assert body["code"] == "005" and body["to"] == "+13058888888" and body["version"] == "1"


def test_html_form_on_a_latin1_site_keeps_the_accents(shop_page, base_url, customer, platform):
    import sqlalchemy as sa

    from uvox.db import schema

    page = shop_page(fill(FORM_SMS, base_url, customer) + "<p>Env\u00edo</p>", "latin", charset="iso-8859-1")
    page.fill("input[name=to]", "13058888888")
    page.fill("textarea[name=text]", "Mañana: código ¿sí?")
    with page.expect_navigation():
        page.click("input[name=Submit]")
    body = json.loads(page.inner_text("body"))
    assert body["code"] == "005"
    with platform.engine.connect() as c:
        text = c.execute(sa.select(schema.messages.c.text).where(schema.messages.c.id == int(body["id"]))).scalar_one()
    assert text == "Mañana: código ¿sí?"


def test_otp_form_from_a_customer_site_stray_quote_and_all(shop_page, base_url, customer, platform):
    from uvox.otp import service

    template = service.create_template(platform.engine, customer.id, "Tu código es {code}", "login")
    page = shop_page(fill(FORM_OTP, base_url, customer, template.ref_id), "otp")
    assert page.get_attribute("input[name=ref_id]", "value") == template.ref_id + '"/'  # what the browser sends
    page.fill("input[name=phone_number]", "13055550100")
    with page.expect_navigation():
        page.click("input[name=Submit]")
    body = json.loads(page.inner_text("body"))
    assert body["code"] == "022" and body["phone_number"] == "+13055550100" and body["sessionID"]


def test_javascript_xhr_from_a_customer_site(shop_page, base_url, customer):
    page = shop_page("", "js")
    got = page.evaluate(
        """(code) => new Promise((done) => {
        const log = console.log;
        console.log = (m) => { console.log = log; done(m); };
        eval(code);
        setTimeout(() => done('no success after 10 s'), 10000);
    })""",
        fill(JS_BALANCE, base_url, customer),
    )
    assert got == "success"
    # And what the page can read of the reply: CORS lets it see the body.
    body = page.evaluate(
        """async (u) => { const r = await fetch(u, {method: 'POST'}); return await r.json(); }""",
        f"{base_url}/api/get-api/v1/balance?accountnumber={customer.number}&apikey={customer.apikey}",
    )
    assert body["code"] == "015" and body["balance"] == "10.00"


def test_fetch_with_the_api_key_header_passes_the_preflight(shop_page, base_url, customer):
    page = shop_page("", "fetch")
    status, ctype, body = page.evaluate(
        """async ([u, key]) => {
        const r = await fetch(u, {method: 'PUT', headers: {'Api-Key': key, 'Accept': 'application/vnd.api+json',
                                                        'Content-Type': 'application/json'},
                                  body: JSON.stringify({to: ['13058888888'], text: 'hola'})});
        return [r.status, r.headers.get('content-type'), await r.json()]; }""",
        [f"{base_url}/api/get-api/v1/sms-api", customer.apikey],
    )
    assert status == 200 and ctype == "application/vnd.api+json"
    assert body["code"] == "005" and body["to"] == "+13058888888"
