"""Screenshots of the main pages at desktop and phone widths, for a person to look at
(test-output/screenshots/). Each page must also render without an error."""

from __future__ import annotations

from decimal import Decimal

from tests.conftest import DECK, free_port
from tests.portal.conftest import PASSWORD, shot, sign_in

PAGES = [
    "/dashboard",
    "/apikeys",
    "/otp-templates",
    "/sms",
    "/rates?number=584125551234",
    "/documentation",
    "/settings",
    "/operator/overview",
    "/operator",
    "/operator/customers/{id}",
    "/operator/plans",
    "/operator/connectors",
    "/operator/messages",
]


def test_main_pages(new_page, uvox_server):
    """Once, on the real `uvox serve` (SQLite); the pages' data paths are tested on both databases."""
    from uvox.accounts import apikeys, service
    from uvox.billing import plans
    from uvox.billing.service import topup
    from uvox.config import Settings
    from uvox.otp import service as otp
    from uvox.platform import Platform

    proc = uvox_server(UVOX_SMSC_SIM_PORT=str(free_port()))
    base_url = proc.url
    platform = Platform.open(Settings.from_env({"UVOX_DATABASE_URL": proc.database_url}))
    plans.create_plan(platform.engine, "test", "US$")
    plans.import_rates(platform.engine, "test", DECK)
    c = service.create_account(platform.engine, email="maria@example.com", password=PASSWORD, plan="test")
    topup(platform.engine, c.id, Decimal(10))
    apikeys.create(platform.engine, c.id, "Sitio web")
    service.set_callback(platform.engine, c.id, "https://example.com/uvox/status")
    otp.create_template(platform.engine, c.id, "Su código UVox es {code}", name="Acceso")
    staff = service.create_account(platform.engine, email="operador@example.com", password=PASSWORD, is_staff=True)
    # A staff member is also a customer of their own platform: give them data too.
    otp.create_template(platform.engine, staff.id, "Código {code}", name="Demo")
    page = new_page(base_url, locale="es-ES")
    sign_in(page, c.email)
    page.goto("/sms")
    for to, text in [
        ("584125551234", "Su pedido 1043 está en camino"),
        ("13055550100", "Recordatorio: cita mañana 9:00"),
        ("56911112222", "Código de acceso enviado desde UVox con un texto un poco más largo " * 3),
    ]:
        page.fill("form[name=form-send-sms] input[name=to]", to)
        page.fill("form[name=form-send-sms] textarea[name=text]", text)
        page.click("form[name=form-send-sms] input[type=submit]")
    taken = []
    for width, label in ((1280, "desktop"), (390, "phone")):
        for who, email in (("customer", c.email), ("operator", "operador@example.com")):
            p = new_page(base_url, locale="es-ES", width=width, height=900 if width > 500 else 844)
            p.goto("/sign_in")
            if who == "customer" and width == 1280:
                taken.append(shot(p, f"{label}-sign-in"))
            sign_in(p, email)
            for path in PAGES:
                if path.startswith("/operator") != (who == "operator"):
                    continue
                response = p.goto(path.format(id=c.id))
                assert response.status == 200, path
                name = path.strip("/").split("?")[0].replace("/", "-").replace("{id}", "x") or "home"
                taken.append(shot(p, f"{label}-{name}"))
    en = new_page(base_url, locale="en-US")
    sign_in(en, c.email)
    en.goto("/sms")
    taken.append(shot(en, "desktop-sms-en"))
    assert all(path.stat().st_size > 10_000 for path in taken)
    platform.close()
