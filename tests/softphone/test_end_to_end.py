"""The operator's and the customer's path with nothing but real processes:
``uvox`` CLI, ``uvox serve``, ``uvox sip kamailio-cfg`` run by Kamailio on the
platform's PostgreSQL, a softphone played by sipp and by plain HTTP calls."""

from __future__ import annotations

from decimal import Decimal
from xml.etree import ElementTree as ET

import httpx

from tests.conftest import run_uvox

DOMAIN = "sip.uvox.test"
LP = "{http://www.linphone.org/xsds/lpconfig.xsd}"


def test_operator_provisions_softphone_that_registers_and_sees_balance(uvox_server, sip_tools, tmp_path):
    port = sip_tools["free_udp_port"]()
    # The SIP domain has no DNS here: phones are told to use Kamailio's address as proxy.
    server = uvox_server("postgresql", UVOX_SIP_DOMAIN=DOMAIN, UVOX_SIP_PROXY=f"127.0.0.1:{port}")
    cli = server.admin
    deck = tmp_path / "deck.csv"
    deck.write_text("dialprefix,destination,rateinitial,smsrate\n1,USA,0.0100,0.0075\n1305,USA Miami,0.0250,0.0080\n")
    cli("plan", "create", "retail", "--currency", "US$")
    cli("rates", "import", "retail", str(deck))
    number = cli("account", "create", "--email", "c@example.com", "--plan", "retail")["accountnumber"]
    cli("topup", number, "20")
    created = cli("sip", "create", number, "--label", "Desk", "--transport", "udp")
    user, password = created["username"], created["password"]
    assert created["domain"] == DOMAIN

    cfg = run_uvox(
        ["sip", "kamailio-cfg", "--listen", f"udp:127.0.0.1:{port}"], server.database_url, UVOX_SIP_DOMAIN=DOMAIN
    )
    assert cfg.returncode == 0, cfg.stderr
    kam = sip_tools["Kamailio"](cfg.stdout, port, DOMAIN, tmp_path)
    register = lambda u, p: sip_tools["register"](port, DOMAIN, u, p, tmp_path)  # noqa: E731
    kam.start()
    try:
        pid = kam.proc.pid
        assert register(user, password) == 200
        assert register(user, password[:-1]) == 401

        # Zoiper scans its QR: its Token URL call returns the account, once,
        # with a fresh password that Kamailio accepts at once.
        token = cli("sip", "provision", user, "--kind", "zoiper")["token"]
        r = httpx.get(f"{server.url}/softphone/zoiper/token", params={"t": token})
        assert r.status_code == 200
        account = ET.fromstring(r.content).find("accounts/account")
        assert account.findtext("username") == user and account.findtext("SIP_domain") == DOMAIN
        assert account.findtext("SIP_outbound_proxy") == f"127.0.0.1:{port}"
        zoiper_password = account.findtext("password")
        assert httpx.get(f"{server.url}/softphone/zoiper/token", params={"t": token}).status_code == 404
        assert register(user, zoiper_password) == 200
        assert register(user, password) == 401

        bal = httpx.get(f"{server.url}/softphone/zoiper/balance", params={"u": user, "p": zoiper_password})
        assert ET.fromstring(bal.content).findtext("amount") == "20.00"
        rate = httpx.get(
            f"{server.url}/softphone/zoiper/rate", params={"u": user, "p": zoiper_password, "d": "13055550100"}
        )
        assert Decimal(ET.fromstring(rate.content).findtext("price")) == Decimal("0.025")

        # Linphone: the provisioning URL serves ha1, which registers too.
        token = cli("sip", "provision", user, "--kind", "linphone")["token"]
        prov_url = f"{server.url}/prov/{token}"
        lp = ET.fromstring(httpx.get(prov_url).content)
        auth = {e.get("name"): e.text for e in lp.find(f"{LP}section[@name='auth_info_0']")}
        assert auth["username"] == user and len(auth["ha1"]) == 32
        proxy = {e.get("name"): e.text for e in lp.find(f"{LP}section[@name='proxy_0']")}
        assert proxy["reg_proxy"] == f"<sip:127.0.0.1:{port};transport=udp>"
        assert proxy["reg_route"] == f"<sip:127.0.0.1:{port};transport=udp;lr>"  # INVITEs too
        assert proxy["reg_identity"] == f"<sip:{user}@{DOMAIN}>"
        assert httpx.get(prov_url).status_code == 404

        reset = cli("sip", "reset-password", user)
        assert register(user, zoiper_password) == 401
        assert register(user, reset["password"]) == 200

        cli("sip", "delete", user)
        assert register(user, reset["password"]) == 401
        assert kam.proc.poll() is None and kam.proc.pid == pid
    finally:
        kam.stop()
