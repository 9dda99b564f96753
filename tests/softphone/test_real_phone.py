"""A real SIP phone, baresip, against the shipped Kamailio configuration.

sipp proves the digest exchange; baresip is what a customer's phone does around it
(its own Via, Contact and rport handling, outbound proxy, re-registration), so
the account made by `uvox admin sip create` must register from it as is.
"""

from __future__ import annotations

import re
import shutil

from tests.conftest import free_port, run_uvox, uvox_require
from tests.helpers import run_baresip

DOMAIN = "sip.uvox.test"
CONFIG = """sip_listen\t127.0.0.1:{port}
module_path\t/usr/lib/baresip/modules
module\tg711.so
module_app\taccount.so
"""


def baresip_register(tmp_path, kamailio_port: int, user: str, password: str) -> str:
    """Run baresip with one account for a few seconds; the registration line it printed."""
    home = tmp_path / f"baresip-{free_port()}"
    home.mkdir()
    (home / "accounts").write_text(
        f"<sip:{user}@{DOMAIN};transport=udp>;auth_pass={password};"
        f'outbound="sip:127.0.0.1:{kamailio_port}";regint=600\n'
    )
    out = run_baresip(home, CONFIG, "-t", "4")
    m = re.search(rf"{re.escape(user)}@{DOMAIN}: (?:\{{[^}}]*\}} )?(\d{{3}} [A-Za-z ]+)", out)
    if m:
        return m.group(1).strip()
    raise AssertionError(f"baresip printed no registration result:\n{out[-2000:]}")


def test_baresip_registers_with_the_account_the_operator_created(uvox_server, sip_tools, tmp_path):
    uvox_require(shutil.which("baresip") is not None, "baresip is not installed (apt: baresip)")
    port = sip_tools["free_udp_port"]()
    server = uvox_server("postgresql", UVOX_SIP_DOMAIN=DOMAIN, UVOX_SIP_PROXY=f"127.0.0.1:{port}")
    number = server.admin("account", "create", "--email", "phone@example.com")["accountnumber"]
    created = server.admin("sip", "create", number, "--transport", "udp")
    cfg = run_uvox(
        ["sip", "kamailio-cfg", "--listen", f"udp:127.0.0.1:{port}"], server.database_url, UVOX_SIP_DOMAIN=DOMAIN
    )
    assert cfg.returncode == 0, cfg.stderr
    kam = sip_tools["Kamailio"](cfg.stdout, port, DOMAIN, tmp_path)
    kam.start()
    try:
        user, password = created["username"], created["password"]
        assert baresip_register(tmp_path, port, user, password).startswith("200 OK")
        assert baresip_register(tmp_path, port, user, password + "x").startswith("401")
        server.admin("sip", "delete", user)
        assert not baresip_register(tmp_path, port, user, password).startswith("200")
    finally:
        kam.stop()
