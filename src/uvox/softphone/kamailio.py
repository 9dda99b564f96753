"""Render the shipped Kamailio configuration for this installation.

The template (integrations/kamailio/kamailio.cfg, also packaged next to this
module) is itself a valid Kamailio config; rendering only rewrites the block
between the ``uvox:settings`` markers: SIP domain, database URL, listeners,
the URL where Kamailio asks the platform to authorize calls and the shared
secret it sends there.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from uvox.platform import Platform

TEMPLATE = Path(__file__).with_name("kamailio.cfg")
_BLOCK = re.compile(r"# uvox:settings-begin\n.*?# uvox:settings-end\n", re.S)
_LISTEN = re.compile(r"^(udp|tcp|tls):([^\s:\[\]]+|\[[0-9a-fA-F:.]+\]):(\d{1,5})$")
_DOMAIN = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9\-.]*[A-Za-z0-9])?$")
# Goes into a #!substdef and a Kamailio string: no '!', quotes, spaces or '$'.
_API_URL = re.compile(r"^https?://[A-Za-z0-9\-._~:\[\]@%/+]+$")
_SECRET = re.compile(r"^[A-Za-z0-9]{16,128}$")
DEFAULT_API_URL = "http://127.0.0.1:8000"


def kamailio_secret(platform: Platform) -> str:
    """The shared secret Kamailio sends to ``POST /voice/kamailio/authorize``
    (uvox.voice.http checks it): derived from the instance secret, so every process
    of the installation agrees on it and ``uvox sip kamailio-cfg`` can render it."""
    return hmac.new(platform.secret, b"uvox:kamailio-authorize", hashlib.sha256).hexdigest()[:40]


class KamailioConfigError(ValueError):
    """A setting that cannot produce a working Kamailio configuration."""


@dataclass(frozen=True)
class Listen:
    proto: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.proto}:{self.host}:{self.port}"


def parse_listen(spec: str) -> Listen:
    m = _LISTEN.match(spec.strip())
    if not m or not (0 < int(m.group(3)) < 65536):
        raise KamailioConfigError(
            f"--listen must look like udp:HOST:PORT, tcp:HOST:PORT or tls:HOST:PORT, not {spec!r}"
        )
    return Listen(m.group(1), m.group(2), int(m.group(3)))


def kamailio_db_url(database_url: str) -> str:
    """SQLAlchemy URL of the platform's PostgreSQL to db_postgres's ``postgres://`` URL."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise KamailioConfigError(
            "Kamailio reads SIP accounts from the platform's database, which must be "
            f"PostgreSQL (UVOX_DATABASE_URL=postgresql://...), not {url.get_backend_name()}"
        )
    if not url.host or not url.database:
        raise KamailioConfigError("the PostgreSQL URL needs a host and a database name")
    # db_postgres does not percent-decode, so these characters would break its URL parser.
    for part in (url.username or "", url.password or ""):
        if any(c in part for c in "@:/"):
            raise KamailioConfigError(
                "the PostgreSQL user or password contains '@', ':' or '/', which Kamailio's "
                "db_postgres URL cannot carry; use another password for Kamailio's connection"
            )
    auth = url.username or "postgres"
    if url.password:
        auth += f":{url.password}"
    return f"postgres://{auth}@{url.host}:{url.port or 5432}/{url.database}"


def api_base_url(url: str | None) -> str:
    """The platform's base URL as Kamailio will use it (no trailing slash)."""
    url = (url or DEFAULT_API_URL).strip().rstrip("/")
    if not _API_URL.match(url):
        raise KamailioConfigError(
            f"--api-url must be an http:// or https:// URL without spaces, quotes, '!' or '$', not {url!r}"
        )
    return url


def render(
    *,
    database_url: str,
    sip_domain: str,
    listens: list[str],
    secret: str | None = None,
    api_url: str | None = None,
    tls_config: str | None = None,
    template: str | None = None,
) -> str:
    """The full kamailio.cfg text, ready to run for this platform.

    ``api_url`` is where Kamailio reaches ``uvox serve`` (``POST
    {api_url}/voice/kamailio/authorize``); ``secret`` is the installation's
    shared secret it sends there in ``X-UVox-Secret`` (without one the
    template's placeholder stays, which the platform refuses: every call then
    fails closed with 503 until the file is rendered with the real secret).
    """
    if not _DOMAIN.match(sip_domain or ""):
        raise KamailioConfigError(f"invalid SIP domain {sip_domain!r}")
    base = api_base_url(api_url)
    if secret is not None and not _SECRET.match(secret):
        raise KamailioConfigError("the shared secret for Kamailio must be 16-128 letters or digits")
    parsed = [parse_listen(s) for s in (listens or ["udp:0.0.0.0:5060"])]
    if any(l.proto == "tls" for l in parsed) and not tls_config:
        raise KamailioConfigError("a tls: listener needs --tls-config (Kamailio's tls.cfg)")
    if tls_config and any(c in tls_config for c in '"\n'):
        raise KamailioConfigError("invalid --tls-config path")
    lines = [
        "# uvox:settings-begin",
        f'#!substdef "!UVOX_SIP_DOMAIN!{sip_domain}!g"',
        f'#!substdef "!UVOX_API_URL!{base}!g"',
        f'#!substdef "!UVOX_SECRET!{secret or "change-me"}!g"',
        f'#!define UVOX_DB_URL "{kamailio_db_url(database_url)}"',
    ]
    if tls_config:
        lines += ["#!define WITH_TLS", f'#!define TLS_CONFIG "{tls_config}"', "enable_tls=yes"]
    if not any(l.proto in ("tcp", "tls") for l in parsed):
        lines.append("disable_tcp=yes")
    lines += [f"listen={l}" for l in parsed]
    lines.append("# uvox:settings-end")
    text = template if template is not None else TEMPLATE.read_text(encoding="utf-8")
    rendered, n = _BLOCK.subn(lambda _m: "\n".join(lines) + "\n", text, count=1)
    if n != 1:
        raise KamailioConfigError("kamailio.cfg template lost its uvox:settings markers")
    return rendered
