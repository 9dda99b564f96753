"""Rendering the shipped kamailio.cfg for an installation."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import uvox_require
from uvox.softphone import kamailio, qr

SHIPPED = Path(__file__).resolve().parents[2] / "integrations" / "kamailio" / "kamailio.cfg"


def test_packaged_template_is_the_shipped_file():
    assert kamailio.TEMPLATE.read_text() == SHIPPED.read_text()


def test_render_fills_database_domain_and_listeners(tmp_path):
    text = kamailio.render(
        database_url="postgresql+psycopg://uvox:s3cret@db.internal:6432/voice",
        sip_domain="sip.carrier.example",
        listens=["udp:127.0.0.1:15060", "tcp:127.0.0.1:15061"],
    )
    assert '#!define UVOX_DB_URL "postgres://uvox:s3cret@db.internal:6432/voice"' in text
    assert '#!substdef "!UVOX_SIP_DOMAIN!sip.carrier.example!g"' in text
    assert "listen=udp:127.0.0.1:15060\nlisten=tcp:127.0.0.1:15061\n" in text
    assert "disable_tcp" not in text
    assert 'modparam("auth_db", "calculate_ha1", 0)' in text
    uvox_require(shutil.which("kamailio") is not None, "kamailio is not installed (apt: kamailio)")
    (tmp_path / "k.cfg").write_text(text)
    check = subprocess.run(["kamailio", "-c", "-f", str(tmp_path / "k.cfg")], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr[-2000:]
    assert "sip.carrier.example" in check.stdout + check.stderr  # its summary lists the alias


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"database_url": "sqlite:///uvox.db"}, "must be PostgreSQL"),
        ({"listens": ["udp:127.0.0.1"]}, "--listen must look like"),
        ({"listens": ["sctp:127.0.0.1:5060"]}, "--listen must look like"),
        ({"listens": ["udp:127.0.0.1:70000"]}, "--listen must look like"),
        ({"listens": ["tls:0.0.0.0:5061"]}, "needs --tls-config"),
        ({"sip_domain": "bad domain"}, "invalid SIP domain"),
        ({"database_url": "postgresql://u:p%40ss@h/db"}, "cannot carry"),
    ],
)
def test_render_refuses_what_cannot_work(kwargs, message):
    args = {
        "database_url": "postgresql://uvox@127.0.0.1/uvox",
        "sip_domain": "sip.example.com",
        "listens": ["udp:0.0.0.0:5060"],
        **kwargs,
    }
    with pytest.raises(kamailio.KamailioConfigError, match=message):
        kamailio.render(**args)


def test_zoiper_qr_url_carries_token_not_credentials():
    url = qr.zoiper_qr_url(provider_id="abc123", token="tok-1", domain="sip.example.com", transport="TLS")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "oem.zoiper.com", "/qr.php")
    q = parse_qs(parts.query, keep_blank_values=True)
    assert q == {"provider_id": ["abc123"], "u": [""], "p": [""], "t": ["tok-1"], "h": ["sip.example.com"], "tr": ["2"]}
