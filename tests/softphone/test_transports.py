"""The rendered configuration serves the three transports a SIP account can
name: UDP (see test_end_to_end), TCP (sipp) and TLS (kamailio-tls-modules)."""

from __future__ import annotations

import glob
import json
import shutil
import socket

from tests.conftest import run_uvox, uvox_require

DOMAIN = "sip.uvox.test"


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _uvox_json(url: str, *args: str) -> dict:
    proc = run_uvox([*args, "--json"], url, UVOX_SIP_DOMAIN=DOMAIN)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def test_register_over_tcp_and_tls(sip_tools, tmp_path, pg_databases):
    uvox_require(pg_databases is not None, "PostgreSQL is not available")
    uvox_require(
        bool(glob.glob("/usr/lib/*/kamailio/modules/tls.so")),
        "Kamailio's TLS module is not installed (apt: kamailio-tls-modules)",
    )
    uvox_require(shutil.which("openssl") is not None, "openssl is not installed")
    url = pg_databases.create()
    number = _uvox_json(url, "admin", "account", "create", "--email", "t@example.com")["accountnumber"]
    creds = _uvox_json(url, "admin", "sip", "create", number, "--transport", "tls")
    user, pw = creds["username"], creds["password"]
    assert creds["transport"] == "TLS"

    udp, tcp, tls = sip_tools["free_udp_port"](), _free_tcp_port(), _free_tcp_port()
    cfg = run_uvox(
        [
            "sip",
            "kamailio-cfg",
            "--listen",
            f"udp:127.0.0.1:{udp}",
            "--listen",
            f"tcp:127.0.0.1:{tcp}",
            "--listen",
            f"tls:127.0.0.1:{tls}",
            "--tls-config",
            sip_tools["tls_cfg"](tmp_path),
        ],
        url,
        UVOX_SIP_DOMAIN=DOMAIN,
    )
    assert cfg.returncode == 0, cfg.stderr
    kam = sip_tools["Kamailio"](cfg.stdout, udp, DOMAIN, tmp_path)
    kam.start()
    try:
        assert sip_tools["register"](tcp, DOMAIN, user, pw, tmp_path, transport="tcp") == 200
        assert sip_tools["register"](tcp, DOMAIN, user, pw + "x", tmp_path, transport="tcp") == 401
        assert sip_tools["tls_register"](tls, DOMAIN, user, pw) == 200
        assert sip_tools["tls_register"](tls, DOMAIN, user, pw + "x") == 401
    finally:
        kam.stop()
