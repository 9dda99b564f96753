"""The Softphone section in real headless Chromium against the real `uvox serve`:
the QR code as the customer sees it on screen decodes (zbar) to the Linphone
provisioning URL, which provisions once."""

from __future__ import annotations

import re
import shutil
import subprocess
from xml.etree import ElementTree as ET

import httpx

from tests.conftest import uvox_require
from tests.portal.conftest import browser, new_page, shot, sign_up  # noqa: F401  (fixtures)

LP = "{http://www.linphone.org/xsds/lpconfig.xsd}"


def test_softphone_page_in_the_browser(uvox_server, new_page, tmp_path):  # noqa: F811
    uvox_require(shutil.which("zbarimg") is not None, "zbarimg is not installed (apt: zbar-tools)")
    proc = uvox_server(UVOX_ZOIPER_PROVIDER_ID="prov42", UVOX_SIP_DOMAIN="sip.uvox.test")
    page = new_page(proc.url, locale="es-ES")
    page.route("https://oem.zoiper.com/**", lambda route: route.abort())  # no Internet here
    page.on("dialog", lambda d: d.accept())
    sign_up(page, "sofia@example.com")

    page.click("nav.sidenav >> text=Softphone")
    assert page.locator("h1").inner_text() == "Softphone"
    page.fill("#new-sip input[name=label]", "Mi móvil")
    page.select_option("#new-sip select[name=transport]", "tls")
    page.click("#new-sip button[type=submit]")
    user = page.inner_text("#sip-username").strip()
    password = page.inner_text("#sip-password").strip()
    assert page.inner_text("#sip-domain").strip() == "sip.uvox.test" and len(password) >= 12
    shot(page, "softphone-01-created")

    page.click("text=Mostrar el código QR")
    assert (
        page.locator("#zoiper img").get_attribute("src").startswith("https://oem.zoiper.com/qr.php?provider_id=prov42")
    )
    page.locator("#linphone img").screenshot(path=str(tmp_path / "qr.png"))
    shot(page, "softphone-02-qr")
    url = subprocess.run(
        ["zbarimg", "--raw", "-q", str(tmp_path / "qr.png")], capture_output=True, text=True
    ).stdout.strip()
    assert re.fullmatch(re.escape(proc.url) + r"/prov/[A-Za-z0-9_\-]{43}", url), url
    lp = ET.fromstring(httpx.get(url).content)
    proxy = {e.get("name"): e.text for e in lp.find(f"{LP}section[@name='proxy_0']")}
    assert proxy["reg_identity"] == f"<sip:{user}@sip.uvox.test>"
    assert proxy["reg_proxy"] == "<sip:sip.uvox.test;transport=tls>"
    assert httpx.get(url).status_code == 404

    page.click("text=Volver a las cuentas SIP")
    row = page.locator(f"#sip-accounts tr[data-username='{user}']")
    assert "Mi móvil" in row.locator("input[name=label]").input_value() and password not in page.content()
    row.locator("button.danger").click()
    page.wait_for_url(re.compile(r"/softphone\?m=deleted"))
    assert "La cuenta SIP se ha eliminado" in page.inner_text(".notice")
    assert user not in page.inner_text("#sip-accounts")
    shot(page, "softphone-03-deleted")
