"""Spanish and English: catalogues complete, language chosen by the browser and switchable."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from tests.portal.conftest import PASSWORD, sign_in
from uvox.portal import i18n

PORTAL = Path(i18n.__file__).parent
#: The softphone pages (portal/softphone.py) translate through the softphone's own
#: catalogue first, then the portal's.
SOFTPHONE_PO = PORTAL.parent / "softphone" / "locale" / "es" / "LC_MESSAGES" / "messages.po"


def _source_texts() -> set[str]:
    method_map = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
    options = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    keywords = {"_": None, "N_": None, "gettext": None}
    return {
        m[2] for m in extract_from_dir(str(PORTAL), method_map, options, keywords=keywords) if isinstance(m[2], str)
    }


def test_every_text_of_the_portal_has_a_spanish_translation():
    texts = _source_texts()
    assert len(texts) > 150
    catalogues = []
    for po in (PORTAL / "locale" / "es" / "LC_MESSAGES" / "messages.po", SOFTPHONE_PO):
        with po.open("rb") as fh:
            catalogues.append(read_po(fh, locale="es"))
    missing = sorted(t for t in texts if not any(es.get(t) and es.get(t).string for es in catalogues))
    assert not missing, f"untranslated in es: {missing}"
    assert i18n.translations("es").gettext("Sign in") == "Iniciar sesión"
    assert i18n.translations("en").gettext("Sign in") == "Sign in"


def test_accept_language_negotiation():
    assert i18n.negotiate("es-VE,es;q=0.9,en;q=0.8") == "es"
    assert i18n.negotiate("en-US,en;q=0.9,es;q=0.8") == "en"
    assert i18n.negotiate("fr-FR,fr;q=0.9,en;q=0.5,es;q=0.4") == "en"
    assert i18n.negotiate("de") == "es"  # none of ours: the manual's language
    assert i18n.negotiate(None) == "es"
    assert i18n.negotiate("es;q=0.2, en;q=0.9") == "en"


def test_browser_language_and_switch_on_every_page(new_page, base_url, make_customer):
    c = make_customer(password=PASSWORD)
    page = new_page(base_url, locale="en-US")
    page.goto("/sign_in")
    assert page.locator("h1").inner_text() == "Sign in"
    sign_in(page, c.email)
    for path, en, es in [
        ("/dashboard", "Dashboard", "Panel"),
        ("/apikeys", "API keys", "API KEY"),
        ("/otp-templates", "OTP templates", "Témplates OTP"),
        ("/sms", "SMS", "SMS"),
        ("/rates", "Rates", "Tarifas"),
        ("/documentation", "API documentation", "Documentación de la API"),
        ("/settings", "Settings", "Configuración"),
        ("/password", "Change password", "Cambiar contraseña"),
        ("/rates?number=5841", "Rates", "Tarifas"),
    ]:
        page.goto(path)
        assert page.locator("h1").inner_text() == en, path
        page.click("nav.langs a.lang-es")
        page.wait_for_url(f"**{path}")  # the switch stays on the same page
        assert page.locator("h1").inner_text() == es, path
        assert page.locator("html").get_attribute("lang") == "es"
        page.click("nav.langs a.lang-en")
        assert page.locator("h1").inner_text() == en, path
