"""Customer commands of the ``uvox`` command line, built on ``uvox.client``.

    uvox sms send --to +13058888888 --text "Hello" [--from UVox]
    uvox sms status MESSAGE_ID
    uvox otp request --ref-id REF --phone +13058888888
    uvox otp verify --session SESSION --code 123456
    uvox balance
    uvox rates [--number +13058888888]

The key never goes on the command line (shell history, ``ps``): it comes from the
environment (UVOX_API_KEY, UVOX_ACCOUNT, UVOX_URL) or from a TOML file, UVOX_CONFIG or
~/.config/uvox/client.toml, with ``api_key``, ``account`` and ``url``. The environment
wins over the file. Exit status: 0 done, 1 the API refused (the code is printed),
2 bad usage or no configuration, 3 the platform could not be reached.

``register(group)`` adds these commands to the main ``uvox`` group.
"""

from __future__ import annotations

import json
import stat
import sys
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from uvox.config import client_settings

if TYPE_CHECKING:
    from uvox.client import Balance, Client, MessageStatus

__all__ = ["ClientConfig", "customer_commands", "load_config", "main", "register"]

EXIT_REFUSED = 1
EXIT_UNREACHABLE = 3
#: What one call of the API answered (a dataclass of uvox.client).
Result = TypeVar("Result")


@dataclass(frozen=True)
class ClientConfig:
    api_key: str
    account: str | None
    url: str | None
    source: str


def config_path() -> Path:
    return client_settings().config_path


def load_config() -> ClientConfig:
    """Environment first, then the config file; a clear message when neither has a key."""
    env = client_settings()
    path = env.config_path
    file_values: dict[str, Any] = {}
    if path.is_file():
        try:
            with path.open("rb") as handle:
                file_values = tomllib.load(handle)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise click.UsageError(f"cannot read {path}: {exc}") from exc
        mode = path.stat().st_mode
        if mode & (stat.S_IRGRP | stat.S_IROTH) and file_values.get("api_key"):
            click.echo(f"warning: {path} holds an API key and others can read it (chmod 600 {path})", err=True)
    elif env.config_file:
        raise click.UsageError(f"UVOX_CONFIG names {path}, which does not exist")

    def pick(value: str, *keys: str) -> str | None:
        if value:
            return value.strip()
        for key in keys:
            if file_values.get(key) not in (None, ""):
                return str(file_values[key]).strip()
        return None

    api_key = pick(env.api_key, "api_key", "apikey")
    if not api_key:
        raise click.UsageError(
            f"no API key: set UVOX_API_KEY (and UVOX_ACCOUNT), or write api_key and account in {path}"
        )
    source = "environment" if env.api_key else str(path)
    return ClientConfig(
        api_key=api_key,
        account=pick(env.account, "account", "accountnumber"),
        url=pick(env.url, "url"),
        source=source,
    )


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k != "raw"}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _emit_json(value: Any) -> None:
    click.echo(json.dumps(_plain(value), ensure_ascii=False))


def _run(action: Callable[[Client], int | None]) -> None:
    # The client (httpx) is imported when a command calls the API, not at start-up:
    # `uvox admin ...` and `uvox --help` need none of it (a tenth of a second each).
    from uvox.client import Client, UVoxConnectionError, UVoxError

    config = load_config()
    try:
        with Client(config.account, config.api_key, url=config.url) as client:
            code = action(client)
    except UVoxConnectionError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(EXIT_UNREACHABLE)
    except UVoxError as exc:
        extra = f" ({exc.detail})" if exc.detail else ""
        extra += f" (session {exc.session_id})" if exc.session_id else ""
        click.echo(f"error {exc.code}: {exc.message}{extra}", err=True)
        sys.exit(EXIT_REFUSED)
    if code:
        sys.exit(code)


def _show(call: Callable[[Client], Result], as_json: bool, line: Callable[[Result], str]) -> None:
    """Make one call and print what it answered: its fields as JSON with ``--json``,
    else the one line ``line`` writes of it."""

    def action(client: Client) -> None:
        result = call(client)
        if as_json:
            _emit_json(asdict(result))
        else:
            click.echo(line(result))

    _run(action)


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


@click.group("sms")
def sms_group() -> None:
    """Send SMS and follow their status."""


@sms_group.command("send")
@click.option(
    "--to",
    "to",
    multiple=True,
    required=True,
    help="Destination with country code; repeat or comma-separate (up to 200 a request, more are split).",
)
@click.option("--text", required=True, help="Message text.")
@click.option("--from", "sender", default=None, help="Sender: a number or up to 11 letters.")
@json_option
def sms_send(to: tuple[str, ...], text: str, sender: str | None, as_json: bool) -> None:
    """Send one text to one or more numbers."""

    def action(client: Client) -> int:
        results = client.send_bulk(list(to), text, sender=sender)
        if as_json:
            _emit_json([asdict(r) for r in results])
        else:
            for r in results:
                click.echo(f"{r.to}\t{r.id or '-'}\t{r.code}\t{r.statusmessage}")
        return 0 if all(r.accepted for r in results) else EXIT_REFUSED

    _run(action)


@sms_group.command("status")
@click.argument("message_id")
@json_option
def sms_status(message_id: str, as_json: bool) -> None:
    """Status of a message by the id ``sms send`` printed."""

    def line(status: MessageStatus) -> str:
        state = f" [{status.state}]" if status.state else ""
        reason = f" ({status.error})" if status.error else ""
        return f"{status.id}\t{status.code}\t{status.statusmessage}{state}{reason}"

    _show(lambda client: client.sms_status(message_id), as_json, line)


@click.group("otp")
def otp_group() -> None:
    """One-time codes: send one, check one."""


@otp_group.command("request")
@click.option("--ref-id", required=True, help="The ref_id of your OTP template.")
@click.option("--phone", "phone_number", required=True, help="Number that receives the code.")
@json_option
def otp_request(ref_id: str, phone_number: str, as_json: bool) -> None:
    """Send a one-time code; prints the session id to verify it with."""
    _show(
        lambda client: client.otp_request(ref_id, phone_number),
        as_json,
        lambda session: f"{session.session_id}\t{session.phone_number}\t{session.code}\t{session.statusmessage}",
    )


@otp_group.command("verify")
@click.option("--session", "session_id", required=True, help="Session id from ``otp request``.")
@click.option("--code", "otp_code", required=True, help="The code the person received.")
@json_option
def otp_verify(session_id: str, otp_code: str, as_json: bool) -> None:
    """Check a code; exit status 0 only when it matches."""
    _show(
        lambda client: client.otp_verify(session_id, otp_code),
        as_json,
        lambda result: f"{result.code}\t{result.statusmessage}",
    )


@click.command("balance")
@json_option
def balance(as_json: bool) -> None:
    """Prepaid balance (and credit) of the account."""

    def line(result: Balance) -> str:
        credit = f" (credit {result.credit})" if result.credit is not None else ""
        return f"{result.balance} {result.currency}{credit}\taccount {result.accountnumber}"

    _show(lambda client: client.balance(), as_json, line)


@click.command("rates")
@click.option("--number", default=None, help="Only the rate that applies to this number (longest prefix).")
@json_option
def rates(number: str | None, as_json: bool) -> None:
    """The account's price list, or the price for one number."""

    def action(client: Client) -> int:
        table = client.rates()
        if number is not None:
            from uvox.client import best_rate

            rate = best_rate(table, number)
            if rate is None:
                click.echo(f"no rate for {number} in your plan", err=True)
                return EXIT_REFUSED
            table = [rate]
        if as_json:
            _emit_json([asdict(r) for r in table])
        else:
            for r in table:
                click.echo(f"{r.dialprefix}\t{r.destination}\t{r.rateinitial}")
        return 0

    _run(action)


customer_commands: tuple[click.Command, ...] = (sms_group, otp_group, balance, rates)


def register(group: click.Group, admin: click.Group | None = None) -> None:
    """Add the customer commands to the main ``uvox`` group (without replacing any).
    ``admin`` is part of the domain-command convention of ``uvox.cli``; customers get no
    operator commands."""
    for command in customer_commands:
        if command.name not in group.commands:
            group.add_command(command)


@click.group()
def main() -> None:
    """UVox customer commands (also available as ``uvox sms``, ``uvox balance``...)."""


register(main)

if __name__ == "__main__":  # pragma: no cover
    main()
