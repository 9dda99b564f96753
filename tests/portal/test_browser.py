"""Browser checks of what JavaScript and layout add: phone-sized screens, the
manual's HTML form sending for real, and the history following message states."""

from __future__ import annotations

from tests.portal.conftest import PASSWORD, sign_in


def test_phone_sized_screen(new_page, base_url, make_customer):
    c = make_customer(password=PASSWORD)
    page = new_page(base_url, locale="es-ES", width=390, height=844)
    sign_in(page, c.email)
    # The side menu folds behind a button and nothing is wider than the screen.
    assert not page.is_visible("#sidenav")
    page.click(".menu-toggle")
    assert page.is_visible("#sidenav a[href='/sms']")
    page.click("#sidenav a[href='/sms']")
    for path in ("/sms", "/dashboard", "/rates?number=584125551234", "/documentation", "/apikeys"):
        page.goto(path)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, (path, overflow)


def test_documentation_html_form_works_against_the_api(new_page, base_url, customer, platform):
    """The manual's HTML form, as the Documentation page shows it, really sends."""
    from uvox.accounts import service

    service.set_password(platform.engine, customer.id, PASSWORD)
    page = new_page(base_url, locale="es-ES")
    sign_in(page, customer.email)
    page.goto("/documentation")
    html_example = page.locator("#sms [data-language=html] code").inner_text()
    assert f'value="{customer.number}"' in html_example and 'name="form-send-sms"' in html_example
    page.click("#sms details.tryit summary")
    form = page.locator("#sms details.tryit form[name=form-send-sms]")
    form.locator("input[name=apikey]").fill(customer.apikey)
    form.locator("input[name=to]").fill("13058888888")
    form.locator("textarea[name=text]").fill("Este es un mensaje de prueba")
    with page.expect_popup() as popup:
        form.locator("input[type=submit]").click()
    reply = popup.value
    reply.wait_for_load_state()
    import json

    body = json.loads(reply.inner_text("body"))
    assert body["code"] == "005" and body["to"] == "+13058888888" and body["id"].isdigit()


def test_history_follows_message_states_without_a_reload(new_page, base_url, customer, platform):
    import sqlalchemy as sa
    from playwright.sync_api import expect

    from uvox.accounts import service
    from uvox.db import schema as t

    service.set_password(platform.engine, customer.id, PASSWORD)
    page = new_page(base_url, locale="en-US")
    sign_in(page, customer.email)
    page.goto("/sms")
    page.fill("form[name=form-send-sms] input[name=to]", "13055550100")
    page.fill("form[name=form-send-sms] textarea[name=text]", "watch me")
    page.click("form[name=form-send-sms] input[type=submit]")
    state = page.locator("#history tbody tr .state").first
    assert state.inner_text() == "To send"
    page.evaluate("window.__same_page = true")
    with platform.engine.begin() as conn:  # what the dispatcher does when the carrier accepts it
        conn.execute(sa.update(t.messages).values(state="submitted"))
    expect(state).to_have_text("SMS Sent", timeout=10_000)
    with platform.engine.begin() as conn:
        conn.execute(sa.update(t.messages).values(state="delivered"))
    expect(state).to_have_text("Delivered", timeout=10_000)
    assert page.evaluate("window.__same_page") is True  # no reload happened
