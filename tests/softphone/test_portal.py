"""The portal's Softphone section, over HTTP against the real `uvox serve`:
a customer signs up, creates SIP accounts, sees the password once, gets QR codes
(Linphone decodes with zbar to a working single-use URL; Zoiper's OEM image URL),
renames, resets and deletes; another customer cannot touch them."""

from __future__ import annotations

import base64
import html
import re
import shutil
import subprocess
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree as ET

import httpx

from tests.conftest import uvox_require
from uvox.softphone import credentials

LP = "{http://www.linphone.org/xsds/lpconfig.xsd}"


def _csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _sign_up(base: str, email: str) -> httpx.Client:
    c = httpx.Client(base_url=base, timeout=30, headers={"Accept-Language": "es"})
    page = c.get("/sign_up").text
    r = c.post(
        "/sign_up",
        data={"csrf_token": _csrf(page), "email": email, "password": "secret-pass-1", "password2": "secret-pass-1"},
    )
    assert r.status_code == 303, r.text[:500]
    return c


def _field(page: str, element_id: str) -> str:
    return html.unescape(re.search(rf'id="{element_id}">([^<]+)<', page).group(1))


def test_customer_manages_sip_accounts_and_scans_qr(uvox_server, tmp_path):
    uvox_require(shutil.which("zbarimg") is not None, "zbarimg is not installed (apt: zbar-tools)")
    server = uvox_server("sqlite", UVOX_ZOIPER_PROVIDER_ID="prov42", UVOX_SIP_DOMAIN="sip.uvox.test")
    alice = _sign_up(server.url, "alice@example.com")
    page = alice.get("/softphone").text
    assert "Crear cuenta SIP" in page and "Aún no tiene cuentas SIP." in page

    bad = alice.post("/softphone", data={"csrf_token": _csrf(page), "label": "x", "transport": "sctp"})
    assert bad.status_code == 400 and "transport must be one of" in bad.text
    r = alice.post(
        "/softphone",
        data={"csrf_token": _csrf(page), "label": "Mi móvil", "transport": "tcp", "caller_id": "+13055550100"},
    )
    assert r.status_code == 200
    user, password = _field(r.text, "sip-username"), _field(r.text, "sip-password")
    assert _field(r.text, "sip-domain") == "sip.uvox.test"
    listing = alice.get("/softphone").text
    assert user in listing and "Mi móvil" in listing and password not in listing
    sip_id = re.search(r'action="/softphone/(\d+)/qr"', listing).group(1)

    qr_page = alice.post(f"/softphone/{sip_id}/qr", data={"csrf_token": _csrf(listing)}).text
    data_uri = re.search(r'<img src="(data:image/png;base64,[^"]+)"', qr_page).group(1)
    (tmp_path / "qr.png").write_bytes(base64.b64decode(data_uri.split(",", 1)[1]))
    url = subprocess.run(
        ["zbarimg", "--raw", "-q", str(tmp_path / "qr.png")], capture_output=True, text=True
    ).stdout.strip()
    assert url.startswith(server.url + "/prov/") and url == _field(qr_page, "prov-url")
    lp = ET.fromstring(httpx.get(url).content)
    auth = {e.get("name"): e.text for e in lp.find(f"{LP}section[@name='auth_info_0']")}
    assert auth["username"] == user and auth["ha1"] == credentials.ha1(user, "sip.uvox.test", password)
    assert httpx.get(url).status_code == 404

    zoiper = html.unescape(re.search(r'<img src="(https://oem\.zoiper\.com/qr\.php\?[^"]+)"', qr_page).group(1))
    q = parse_qs(urlsplit(zoiper).query, keep_blank_values=True)
    assert q["provider_id"] == ["prov42"] and q["h"] == ["sip.uvox.test"] and q["tr"] == ["1"] and q["p"] == [""]
    token = httpx.get(f"{server.url}/softphone/zoiper/token", params={"t": q["t"][0]})
    assert ET.fromstring(token.content).findtext("accounts/account/username") == user

    # Another customer can neither see nor change Alice's SIP account.
    bob = _sign_up(server.url, "bob@example.com")
    bob_page = bob.get("/softphone").text
    assert user not in bob_page
    for action in ("rename", "reset", "delete", "qr"):
        assert (
            bob.post(f"/softphone/{sip_id}/{action}", data={"csrf_token": _csrf(bob_page), "label": "x"}).status_code
            == 404
        )
    # ...and a form without the CSRF token is refused.
    assert alice.post(f"/softphone/{sip_id}/delete", data={}).status_code == 403

    renamed = alice.post(
        f"/softphone/{sip_id}/rename", data={"csrf_token": _csrf(listing), "label": "Oficina"}, follow_redirects=True
    )
    assert "El nombre se ha guardado." in renamed.text and "Oficina" in renamed.text
    reset = alice.post(f"/softphone/{sip_id}/reset", data={"csrf_token": _csrf(listing)})
    new_password = _field(reset.text, "sip-password")
    assert new_password != password
    bal = httpx.get(f"{server.url}/softphone/zoiper/balance", params={"u": user, "p": new_password})
    assert bal.status_code == 200 and ET.fromstring(bal.content).findtext("amount") == "0.00"
    gone = alice.post(f"/softphone/{sip_id}/delete", data={"csrf_token": _csrf(listing)}, follow_redirects=True)
    assert "La cuenta SIP se ha eliminado" in gone.text and user not in gone.text
    assert httpx.get(f"{server.url}/softphone/zoiper/balance", params={"u": user, "p": new_password}).status_code == 401
