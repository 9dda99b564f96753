"""The URLs softphones call, over a real HTTP server running the app: Linphone
provisioning + QR, Zoiper token/balance/rate, Acrobits balance/rate, on SQLite
and PostgreSQL."""

from __future__ import annotations

import json
import shutil
import subprocess
from decimal import Decimal
from xml.etree import ElementTree as ET

import pytest

from tests.conftest import uvox_require
from uvox.softphone import service

LP = "{http://www.linphone.org/xsds/lpconfig.xsd}"


@pytest.fixture
def engine(platform):
    return platform.engine


@pytest.fixture
def client(http):
    return http


@pytest.fixture
def DOMAIN(platform):
    return platform.settings.sip_domain


@pytest.fixture
def sip(engine, make_customer, DOMAIN):
    account_id = make_customer(balance="42.5").id  # plan "test": 1305 USA Miami 0.012/min, sms 0.008
    creds = service.create_sip_account(engine, account_id, domain=DOMAIN, transport="tcp", caller_id="+13055550100")
    return account_id, creds


def lpconfig_entries(xml: bytes) -> dict[str, dict[str, str]]:
    root = ET.fromstring(xml)
    assert root.tag == f"{LP}config"
    return {
        s.get("name"): {e.get("name"): e.text for e in s.findall(f"{LP}entry")} for s in root.findall(f"{LP}section")
    }


def test_linphone_qr_decodes_to_a_single_use_provisioning_url(client, engine, sip, tmp_path, base_url, DOMAIN):
    uvox_require(shutil.which("zbarimg") is not None, "zbarimg is not installed (apt: zbar-tools)")
    account_id, creds = sip
    token = service.create_provisioning_token(engine, account_id, creds.account.id, "linphone")
    png = client.get(f"/prov/{token}/qr.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    (tmp_path / "qr.png").write_bytes(png.content)
    decoded = subprocess.run(["zbarimg", "--raw", "-q", str(tmp_path / "qr.png")], capture_output=True, text=True)
    url = decoded.stdout.strip()
    assert url == f"{base_url}/prov/{token}"

    first = client.get(url)
    assert first.status_code == 200 and first.headers["content-type"].startswith("application/xml")
    sections = lpconfig_entries(first.content)
    user = creds.account.username
    assert sections["proxy_0"]["reg_identity"] == f'"+13055550100" <sip:{user}@{DOMAIN}>'
    assert sections["proxy_0"]["reg_proxy"] == f"<sip:{DOMAIN};transport=tcp>"
    auth = sections["auth_info_0"]
    assert auth["username"] == user and auth["realm"] == DOMAIN
    assert auth["ha1"] == service.credentials.ha1(user, DOMAIN, creds.password)
    assert creds.password.encode() not in first.content
    # Single-use URL: Linphone must drop it after applying (see test_linphone.py).
    assert sections["misc"] == {"transient_provisioning": "1"}

    second = client.get(f"/prov/{token}")
    assert second.status_code == 404
    assert client.get(f"/prov/{token}/qr.png").status_code == 404


def test_zoiper_token_answers_the_account_once(client, engine, sip, DOMAIN):
    account_id, creds = sip
    token = service.create_provisioning_token(engine, account_id, creds.account.id, "zoiper")
    r = client.get("/softphone/zoiper/token", params={"t": token})
    assert r.status_code == 200
    acc = ET.fromstring(r.content).find("accounts/account")
    assert acc.findtext("username") == creds.account.username
    assert acc.findtext("authentication_username") == creds.account.username
    assert acc.findtext("SIP_domain") == DOMAIN and acc.findtext("SIP_transport_type") == "tcp"
    assert acc.findtext("callerid") == "+13055550100"
    password = acc.findtext("password")
    assert service.authenticate(engine, creds.account.username, password, DOMAIN) is not None
    again = client.get(f"/softphone/zoiper/token/{token}")
    assert again.status_code == 404 and ET.fromstring(again.content).tag == "error"
    assert client.get("/softphone/zoiper/token", params={"t": "made-up"}).status_code == 404


def test_zoiper_balance_and_rate(client, sip):
    _, creds = sip
    u, p = creds.account.username, creds.password
    r = client.get("/softphone/zoiper/balance", params={"u": u, "p": p})
    assert r.status_code == 200
    bal = ET.fromstring(r.content)
    assert (bal.tag, bal.findtext("currency"), bal.findtext("amount")) == ("balance", "USD", "42.50")

    r = client.get("/softphone/zoiper/rate", params={"u": u, "p": p, "d": "+1 305 555 0100"})
    rate = ET.fromstring(r.content)
    assert r.status_code == 200 and rate.tag == "rate"
    assert (rate.findtext("currency"), Decimal(rate.findtext("price"))) == ("USD", Decimal("0.012"))
    r = client.post("/softphone/zoiper/rate", data={"u": u, "p": p, "d": "0012125550100"})
    assert Decimal(ET.fromstring(r.content).findtext("price")) == Decimal("0.01")
    assert client.get("/softphone/zoiper/rate", params={"u": u, "p": p, "d": "44207"}).status_code == 404
    assert client.get("/softphone/zoiper/rate", params={"u": u, "p": p}).status_code == 400

    for params in ({"u": u, "p": p + "x"}, {"u": "nobody", "p": p}, {"u": u}, {}):
        assert client.get("/softphone/zoiper/balance", params=params).status_code == 401
        assert client.get("/softphone/zoiper/rate", params={**params, "d": "1305"}).status_code == 401


def test_acrobits_balance_and_rate(client, sip):
    _, creds = sip
    u, p = creds.account.username, creds.password
    r = client.get("/softphone/acrobits/balance", params={"username": u, "password": p})
    assert r.status_code == 200
    doc = json.loads(r.text, parse_float=Decimal)
    assert doc == {"balanceString": "42.50 USD", "balance": Decimal("42.50"), "currency": "USD"}
    r = client.get("/softphone/acrobits/rate", params={"username": u, "password": p, "targetNumber": "+13055550100"})
    assert r.json() == {"callRateString": "0.012 USD/min", "messageRateString": "0.008 USD"}
    assert client.get("/softphone/acrobits/balance", params={"username": u, "password": "x"}).status_code == 401
    assert (
        client.get("/softphone/acrobits/rate", params={"username": u, "password": "x", "targetNumber": "1"}).status_code
        == 401
    )
