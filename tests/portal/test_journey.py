"""The customer's journey in a real browser against the real `uvox serve` process:
sign up, create an API key, send an SMS from the form, see it sent, create an OTP
template and use its ref_id through the API, switch language, and be refused
another account's message by URL."""

from __future__ import annotations

import re
import time

import httpx

from tests.conftest import DECK, free_port
from tests.portal.conftest import shot, sign_up


def test_sign_up_to_first_sms(uvox_server, new_page, tmp_path):
    # Its own simulator port: other suites on this machine may run `uvox serve` too.
    proc = uvox_server(UVOX_SMSC_SIM_PORT=str(free_port()), UVOX_SMSC_SIM_RECEIPT_DELAY="0.2")
    deck = tmp_path / "deck.csv"
    deck.write_text(DECK)
    proc.admin("plan", "create", "default", "--currency", "US$")
    proc.admin("rates", "import", "default", str(deck))

    page = new_page(proc.url, locale="es-ES")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=proc.url)

    # Sign-up, in Spanish because the browser asks for Spanish; the number is shown at once.
    page.goto("/sign_up")
    assert page.locator("h1").inner_text() == "Cree su cuenta gratuita"
    shot(page, "journey-01-sign-up-es")
    number = sign_up(page, "ana@example.com")
    assert re.fullmatch(r"\d{8}", number)
    assert "¡Bienvenido!" in page.inner_text(".notice")
    shot(page, "journey-02-dashboard-new")

    # The operator tops the account up (command line), the dashboard shows it.
    proc.admin("topup", number, "5")
    page.reload()
    assert page.inner_text("#balance").strip() == "US$ 5.00"

    # API key: created with a description, shown once, copyable, and it works.
    page.click("nav.sidenav >> text=API")
    page.fill("input[name=description]", "Mi sitio web")
    page.click("form[action='/apikeys'] button[type=submit]")
    key = page.inner_text("#new-key").strip()
    assert re.fullmatch(r"[A-Z2-7]{32}", key)
    page.click("button[data-copy='#new-key']")
    assert page.evaluate("navigator.clipboard.readText()") == key
    shot(page, "journey-03-api-key-created")
    page.click("text=Volver a las API KEY")
    assert key not in page.content()  # shown once: the list only has a hint
    assert "Mi sitio web" in page.inner_text("#keys")
    api = f"{proc.url}/api/get-api/v1/"
    bal = httpx.get(api + "balance", params={"accountnumber": number, "apikey": key}).json()
    assert (bal["code"], bal["balance"]) == ("015", "5.00")

    # Send an SMS from the portal's form; the history shows it with segments and price.
    page.click("nav.sidenav >> text=SMS")
    page.fill("form[name=form-send-sms] input[name=to]", "+58 412 555 1234")
    page.fill("form[name=form-send-sms] input[name=from]", "UVox")
    page.fill("form[name=form-send-sms] textarea[name=text]", "Hola desde el portal")
    page.click("form[name=form-send-sms] input[type=submit]")
    result = page.inner_text("#send-result")
    assert result.startswith("005") and "Mensaje enviado con éxito" in result
    message_id = re.search(r"ID (\d+)", result).group(1)
    row = page.locator(f"#history tr[data-id='{message_id}']")
    cells = row.locator("td").all_inner_texts()
    assert cells[1] == "+584125551234"
    assert cells[5] == "1"  # segments
    assert cells[6] == "US$ 0.07"  # Venezuela Mobile Digitel, longest prefix 58412
    shot(page, "journey-04-sms-sent-form")

    # OTP template: created in the portal, its ref_id works through the API.
    page.click("nav.sidenav >> text=Témplates OTP")
    page.fill("input[name=name]", "Acceso")
    page.fill("textarea[name=text]", "Su código UVox es {code}")
    page.click("form[action='/otp-templates'] button[type=submit]")
    ref_id = page.inner_text("#templates code.ref-id").strip()
    assert ref_id
    otp = httpx.post(
        api + "OTP-api", data={"accountnumber": number, "apikey": key, "ref_id": ref_id, "phone_number": "13055550100"}
    ).json()
    assert otp["code"] == "022" and otp["sessionID"]
    shot(page, "journey-05-otp-templates")

    # Language: switch to English on this page, it sticks on the next one, and back.
    page.click("nav.langs a.lang-en")
    assert page.locator("h1").inner_text() == "OTP templates"
    page.click("nav.sidenav >> text=Dashboard")
    assert page.locator("h1").inner_text() == "Dashboard"
    page.click("nav.langs a.lang-es")
    assert page.locator("h1").inner_text() == "Panel"

    # Another customer's message is refused by URL, and never in this account's export.
    other = new_page(proc.url, locale="es-ES")
    sign_up(other, "beto@example.com")
    other.goto("/sms")
    other.fill("form[name=form-send-sms] input[name=to]", "13055559999")
    other.fill("form[name=form-send-sms] textarea[name=text]", "secreto de Beto")
    other.click("form[name=form-send-sms] input[type=submit]")
    other_id = re.search(r"ID (\d+)", other.inner_text("#send-result")).group(1)
    response = page.goto(f"/sms/{other_id}")
    assert response.status == 404
    assert "secreto de Beto" not in page.content() and "13055559999" not in page.content()
    page.goto(f"/sms/{message_id}")
    assert "Hola desde el portal" in page.content()
    with page.expect_download() as dl:
        page.goto("/sms")
        page.click("a[href^='/sms/export.csv']")
    exported = dl.value.path().read_text()
    assert "Hola desde el portal" in exported and "secreto de Beto" not in exported

    # Finally: the message reaches "SMS Sent" (or Delivered), which needs the dispatcher.
    page.click("nav.langs a.lang-en")
    deadline = time.monotonic() + 30
    state = ""
    while time.monotonic() < deadline:
        page.goto("/sms")
        state = page.inner_text(f"#history tr[data-id='{message_id}'] .state")
        if state in ("SMS Sent", "Delivered"):
            break
        time.sleep(0.5)
    shot(page, "journey-06-history-sent")
    assert state in ("SMS Sent", "Delivered")
