"""``uvox admin sip ...`` and ``uvox sip kamailio-cfg``.

uvox/cli.py calls :func:`register`. SIP accounts are named by their SIP
username (unique on the SIP domain); customer accounts by number or e-mail.
With ``--json`` every command prints one JSON object (``{"error": ...}`` on failure).
"""

from __future__ import annotations

import json
import sys

import click

from uvox.config import get_settings
from uvox.errors import NotFound

from . import kamailio, service


def register(main: click.Group, admin: click.Group) -> None:
    admin.add_command(admin_sip)
    main.add_command(sip)


def _engine():
    from uvox.platform import Platform

    return Platform.open(get_settings(), migrate=True).engine


def _out(as_json: bool, doc: dict, text: str) -> None:
    click.echo(json.dumps(doc) if as_json else text)


def _fail(message: str, as_json: bool = False) -> None:
    if as_json:
        click.echo(json.dumps({"error": message}))
    else:
        click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _account_id(engine, ref: str, as_json: bool) -> int:
    from uvox.accounts import service as accounts

    try:
        return accounts.find(engine, ref).id
    except NotFound:
        _fail(f"no account {ref!r} (give the account number or e-mail)", as_json)


def _sip_dict(a: service.SipAccount) -> dict[str, str]:
    return {
        "id": str(a.id),
        "username": a.username,
        "domain": a.domain,
        "transport": a.transport.upper(),
        "caller_id": a.caller_id,
        "label": a.label,
    }


def _by_username(engine, username: str, as_json: bool) -> service.SipAccount:
    try:
        return service.find_by_username(engine, username)
    except service.SipAccountNotFound as exc:
        _fail(str(exc), as_json)


@click.group("sip")
def admin_sip() -> None:
    """SIP accounts of customer accounts (softphones)."""


@admin_sip.command("create")
@click.argument("account")
@click.option("--label", default="", help="A name for the device, e.g. 'Office phone'.")
@click.option("--transport", default="udp", type=click.Choice(["udp", "tcp", "tls"], case_sensitive=False))
@click.option("--caller-id", default="", help="Caller id shown on outgoing calls.")
@click.option("--json", "as_json", is_flag=True)
def create_cmd(account: str, label: str, transport: str, caller_id: str, as_json: bool) -> None:
    """Create a SIP account for ACCOUNT (number or e-mail); prints the password once."""
    engine = _engine()
    account_id = _account_id(engine, account, as_json)
    try:
        creds = service.create_sip_account(
            engine,
            account_id,
            domain=get_settings().sip_domain,
            label=label,
            transport=transport,
            caller_id=caller_id,
        )
    except service.InvalidSipInput as exc:
        _fail(str(exc), as_json)
    d = creds.as_dict()
    _out(as_json, d, f"username {d['username']}\npassword {d['password']}\ndomain   {d['domain']}")


@admin_sip.command("list")
@click.argument("account")
@click.option("--json", "as_json", is_flag=True)
def list_cmd(account: str, as_json: bool) -> None:
    """List the SIP accounts of ACCOUNT."""
    engine = _engine()
    items = service.list_sip_accounts(engine, _account_id(engine, account, as_json))
    docs = [_sip_dict(a) for a in items]
    _out(
        as_json,
        {"accountnumber": account, "sip_accounts": docs},
        "\n".join(f"{d['username']}@{d['domain']}  {d['transport']}  {d['label']}" for d in docs),
    )


@admin_sip.command("rename")
@click.argument("username")
@click.argument("label")
@click.option("--json", "as_json", is_flag=True)
def rename_cmd(username: str, label: str, as_json: bool) -> None:
    """Give the SIP account USERNAME a new LABEL."""
    engine = _engine()
    a = _by_username(engine, username, as_json)
    try:
        a = service.rename_sip_account(engine, a.account_id, a.id, label)
    except service.InvalidSipInput as exc:
        _fail(str(exc), as_json)
    _out(as_json, _sip_dict(a), f"{a.username}: {a.label}")


@admin_sip.command("reset-password")
@click.argument("username")
@click.option("--json", "as_json", is_flag=True)
def reset_cmd(username: str, as_json: bool) -> None:
    """New password for USERNAME; the old one stops working at once."""
    engine = _engine()
    a = _by_username(engine, username, as_json)
    d = service.reset_sip_password(engine, a.account_id, a.id).as_dict()
    _out(as_json, d, f"username {d['username']}\npassword {d['password']}\ndomain   {d['domain']}")


@admin_sip.command("delete")
@click.argument("username")
@click.option("--json", "as_json", is_flag=True)
def delete_cmd(username: str, as_json: bool) -> None:
    """Delete the SIP account USERNAME; its phones are refused at once."""
    engine = _engine()
    a = _by_username(engine, username, as_json)
    service.delete_sip_account(engine, a.account_id, a.id)
    _out(as_json, {"username": a.username, "deleted": "true"}, f"deleted {a.username}")


@admin_sip.command("provision")
@click.argument("username")
@click.option("--kind", type=click.Choice(["linphone", "zoiper"]), default="linphone")
@click.option("--json", "as_json", is_flag=True)
def provision_cmd(username: str, kind: str, as_json: bool) -> None:
    """A single-use provisioning link / QR for USERNAME (valid 10 minutes)."""
    settings = get_settings()
    engine = _engine()
    a = _by_username(engine, username, as_json)
    token = service.create_provisioning_token(engine, a.account_id, a.id, kind)
    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    doc = {"username": a.username, "kind": kind, "token": token}
    if kind == "linphone":
        doc["url"] = service.linphone_provisioning_url(base, token)
        doc["qr_url"] = doc["url"] + "/qr.png"
    elif settings.zoiper_provider_id:
        from .qr import zoiper_qr_url

        doc["qr_url"] = zoiper_qr_url(
            provider_id=settings.zoiper_provider_id, token=token, domain=a.domain, transport=a.transport
        )
    _out(as_json, doc, "\n".join(f"{k} {v}" for k, v in doc.items()))


@click.group("sip")
def sip() -> None:
    """SIP server integration."""


@sip.command("sync")
@click.option("--json", "as_json", is_flag=True)
def sync_cmd(as_json: bool) -> None:
    """Rewrite Kamailio's subscriber rows from the SIP accounts (PostgreSQL only)."""
    from uvox.db.session import write

    engine = _engine()
    if engine.dialect.name != "postgresql":
        _fail("Kamailio sync needs PostgreSQL (UVOX_DATABASE_URL=postgresql://...)", as_json)
    with write(engine) as conn:
        counts = service.sync_subscribers(conn)
    _out(as_json, {k: str(v) for k, v in counts.items()}, ", ".join(f"{v} {k}" for k, v in counts.items()))


@sip.command("kamailio-cfg")
@click.option("--listen", "listens", multiple=True, help="proto:HOST:PORT, e.g. udp:0.0.0.0:5060 (repeatable).")
@click.option("--tls-config", default=None, help="Kamailio tls.cfg path, needed by a tls: listener.")
@click.option("--domain", default=None, help="SIP domain (default: UVOX_SIP_DOMAIN).")
@click.option(
    "--api-url",
    default=None,
    help="Where Kamailio reaches uvox serve to authorize calls (default: UVOX_PUBLIC_URL, else http://127.0.0.1:8000).",
)
def kamailio_cfg(listens: tuple[str, ...], tls_config: str | None, domain: str | None, api_url: str | None) -> None:
    """Print a kamailio.cfg that registers softphones and routes their prepaid calls
    against this platform's PostgreSQL and authorization endpoint."""
    from uvox.platform import Platform

    settings = get_settings()
    try:
        # Checked before the database is opened: a SQLite installation gets the
        # same "must be PostgreSQL" answer as before.
        kamailio.kamailio_db_url(settings.database_url)
        platform = Platform.open(settings, migrate=True)
        try:
            secret = kamailio.kamailio_secret(platform)
        finally:
            platform.close()
        text = kamailio.render(
            database_url=settings.database_url,
            sip_domain=domain or settings.sip_domain,
            listens=list(listens),
            tls_config=tls_config,
            secret=secret,
            api_url=api_url or settings.public_url or kamailio.DEFAULT_API_URL,
        )
    except kamailio.KamailioConfigError as exc:
        _fail(str(exc))
    click.echo(text, nl=False)
