"""``uvox admin trunk ...`` (carrier trunks) and ``uvox admin calls list``.

uvox/cli.py calls :func:`register`. With ``--json`` every command prints exactly one
JSON object on stdout (``{"error": ...}`` and exit status 1 on failure). Calls need
PostgreSQL (Kamailio keeps its dialogs and CDRs there); on SQLite the commands still
work, and each says so: a ``"notice"`` field in JSON, a line on stderr in text.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from uvox.errors import Conflict, NotFound

if TYPE_CHECKING:
    from uvox.platform import Platform

# Used when uvox.voice.records does not define VOICE_NEEDS_POSTGRES.
_NEEDS_POSTGRES = (
    "voice calls need PostgreSQL (UVOX_DATABASE_URL=postgresql+psycopg://...): "
    "on SQLite trunks and call records can be managed, but no call is placed"
)


def register(main: click.Group, admin: click.Group | None = None) -> None:
    """Add ``trunk`` and ``calls`` to ``uvox admin``."""
    if admin is not None:
        admin.add_command(trunk)
        admin.add_command(calls)


def _notice_text() -> str:
    try:
        from uvox.voice import records
    except ImportError:
        return _NEEDS_POSTGRES
    return getattr(records, "VOICE_NEEDS_POSTGRES", _NEEDS_POSTGRES)


class _Out:
    """One command's output: the engine it uses and the SQLite notice that goes with it."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.notice: str | None = None

    def engine(self) -> Engine:
        return self.platform().engine

    def platform(self) -> Platform:
        from uvox.config import get_settings
        from uvox.platform import Platform

        with self.errors():
            platform = Platform.open(get_settings(), migrate=True)
        if platform.engine.dialect.name == "sqlite":
            self.notice = _notice_text()
        return platform

    def _with_notice(self, data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "notice": self.notice} if self.notice else data

    def emit(self, data: dict[str, Any], text: str) -> None:
        if self.as_json:
            click.echo(json.dumps(self._with_notice(data), default=str))
            return
        if self.notice:
            click.echo(f"notice: {self.notice}", err=True)
        click.echo(text)

    def fail(self, message: str) -> None:
        if self.as_json:
            click.echo(json.dumps(self._with_notice({"error": message})))
        else:
            if self.notice:
                click.echo(f"notice: {self.notice}", err=True)
            click.echo(f"error: {message}", err=True)
        sys.exit(1)

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Refusals a user can act on become one clear line, never a traceback."""
        from uvox.prompt import NoSecret
        from uvox.voice.trunks import InvalidTrunk

        try:
            yield
        except (InvalidTrunk, Conflict, NotFound, NoSecret) as exc:
            self.fail(str(exc))
        except SQLAlchemyError as exc:
            detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            self.fail(f"database error: {detail}")


def _prefixes_text(prefixes: Iterable[str]) -> str:
    return ",".join(prefixes) if prefixes else "every number"


# --- trunks ----------------------------------------------------------------------------


@click.group("trunk", help="Carrier trunks: where outbound calls go (longest prefix, then priority).")
def trunk() -> None:
    pass


@trunk.command("add", help="Add a carrier trunk. Without --prefix it serves every number.")
@click.argument("name")
@click.option("--host", required=True, help="The carrier's SIP host name or IP address.")
@click.option("--port", default=5060, show_default=True, type=int)
@click.option("--transport", default="udp", show_default=True, help="udp or tcp.")
@click.option(
    "--prefix",
    "prefixes",
    multiple=True,
    help="Dial prefix (country code first) this trunk serves; repeat for several.",
)
@click.option(
    "--priority",
    default=10,
    show_default=True,
    type=int,
    help="Among trunks matching the same prefix length, the lowest is tried first.",
)
@click.option(
    "--strip", default=0, show_default=True, type=int, help="Leading digits removed from the number before it is sent."
)
@click.option("--add-prefix", default="", help="Digits put in front of the number sent (after --strip).")
@click.option("--username", default="", help="Digest user name, for a trunk that challenges (401/407).")
@click.option("--password", default="", help="Digest password (with --username).")
@click.option(
    "--max-channels",
    default=0,
    show_default=True,
    type=int,
    help="Most calls at once on this trunk (0: no limit); when full, the next trunk.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def trunk_add(
    name: str,
    host: str,
    port: int,
    transport: str,
    prefixes: tuple[str, ...],
    priority: int,
    strip: int,
    add_prefix: str,
    username: str,
    password: str,
    max_channels: int,
    as_json: bool,
) -> None:
    from uvox.voice import trunks

    out = _Out(as_json)
    platform = out.platform()
    with out.errors():
        tr = trunks.add_trunk(
            platform.engine,
            name,
            host,
            port=port,
            transport=transport,
            prefixes=prefixes,
            priority=priority,
            strip=strip,
            add_prefix=add_prefix,
            username=username,
            password=password,
            max_channels=max_channels,
            secret=platform.secret,
        )
    out.emit(
        tr.public(),
        f"trunk {tr.name} added ({tr.transport} {tr.uri_host}:{tr.port}, "
        f"prefixes {_prefixes_text(tr.prefixes)}, priority {tr.priority})",
    )


@trunk.command(
    "set-password",
    help="Change a trunk's digest password, read from a hidden prompt (or one "
    "line of standard input when it is not a terminal), so it never appears "
    "on a command line; stored sealed. The next call uses it.",
)
@click.argument("name")
@click.option("--username", default=None, help="A new digest user name too (needed if the trunk has none).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def trunk_set_password(name: str, username: str | None, as_json: bool) -> None:
    from uvox.prompt import read_secret
    from uvox.voice import trunks

    out = _Out(as_json)
    platform = out.platform()
    with out.errors():
        trunks.get_trunk(platform.engine, name)  # before asking: an unknown name is told at once
        tr = trunks.set_password(platform.engine, name, read_secret("password"), platform.secret, username=username)
    out.emit(tr.public(), f"trunk {tr.name}: digest credentials changed (user {tr.username or '-'})")


@trunk.command("list", help="List trunks (never their passwords).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def trunk_list(as_json: bool) -> None:
    from uvox.voice import trunks

    out = _Out(as_json)
    engine = out.engine()
    with out.errors():
        items = trunks.list_trunks(engine)
    lines = [
        "\t".join(
            (
                tr.name,
                f"{tr.transport}:{tr.uri_host}:{tr.port}",
                "on" if tr.enabled else "off",
                _prefixes_text(tr.prefixes),
                f"priority {tr.priority}",
                f"strip {tr.strip}",
                f"add {tr.add_prefix or '-'}",
                f"auth {tr.username}" if tr.auth else "no auth",
                f"max {tr.max_channels}" if tr.max_channels else "no channel limit",
            )
        )
        for tr in items
    ]
    out.emit({"trunks": [tr.public() for tr in items]}, "\n".join(lines) or "no trunks")


def _toggle(name: str, enabled: bool, as_json: bool) -> None:
    from uvox.voice import trunks

    out = _Out(as_json)
    engine = out.engine()
    with out.errors():
        trunks.set_enabled(engine, name, enabled)
    out.emit({"trunk": name, "enabled": enabled}, f"trunk {name} {'enabled' if enabled else 'disabled'}")


@trunk.command("enable", help="Send calls to a disabled trunk again.")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def trunk_enable(name: str, as_json: bool) -> None:
    _toggle(name, True, as_json)


@trunk.command("disable", help="Stop sending new calls to a trunk (calls in progress go on).")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def trunk_disable(name: str, as_json: bool) -> None:
    _toggle(name, False, as_json)


@trunk.command("remove", help="Remove a trunk (call records keep its name).")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def trunk_remove(name: str, as_json: bool) -> None:
    from uvox.voice import trunks

    out = _Out(as_json)
    engine = out.engine()
    with out.errors():
        trunks.remove_trunk(engine, name)
    out.emit({"removed": name}, f"trunk {name} removed")


# --- call records ----------------------------------------------------------------------


@click.group("calls", help="Call records.")
def calls() -> None:
    pass


@calls.command("list", help="An account's call records, newest first.")
@click.argument("account")
@click.option(
    "--limit", default=100, show_default=True, type=click.IntRange(1, 1000), help="Most records shown (1 to 1000)."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def calls_list(account: str, limit: int, as_json: bool) -> None:
    from uvox.accounts import service as accounts

    out = _Out(as_json)
    engine = out.engine()
    with out.errors():
        try:
            acct = accounts.find(engine, account)
        except NotFound:
            out.fail(f"no account {account!r} (give the account number or e-mail)")
    try:
        from uvox.voice.records import list_calls
    except ImportError:
        out.fail("call records are not available in this installation (uvox.voice.records is missing)")
    with out.errors():
        records, _cursor = list_calls(engine, acct.id, limit=limit)
        wire = [r.as_wire() for r in records]
    lines = [
        f"{w.get('started_at') or '-'}\t{w.get('from') or '-'} -> {w.get('to') or '-'}\t{w.get('status')}"
        f"\t{w.get('duration') or '0'}s\t{w.get('price') or '0'} {w.get('currency') or ''}".rstrip()
        for w in wire
    ]
    out.emit({"calls": wire}, "\n".join(lines) or f"no calls for {acct.number}")
