"""`uvox smsc-sim`: run the SMSC simulator as its own process."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from uvox.platform import Platform
    from uvox.smpp.simulator import SmscSimulator


@click.command("smsc-sim")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=2775, show_default=True, type=int, help="SMPP port (0 picks a free one).")
@click.option(
    "--receipt-delay",
    default=1.0,
    show_default=True,
    type=float,
    help="Seconds between accepting a message and its delivery receipt.",
)
@click.option("--system-id", default=None, help="Only accept binds with this system_id.")
@click.option("--password", default=None, help="Only accept binds with this password.")
@click.option(
    "--control-port",
    default=None,
    type=int,
    help="HTTP control/inspection port (0 picks a free one; off when omitted).",
)
@click.option(
    "--rules",
    "rules_json",
    default=None,
    help='Initial behaviour rules as JSON, e.g. \'[{"action":"throttle","count":5}]\'.',
)
def smsc_sim(
    host: str,
    port: int,
    receipt_delay: float,
    system_id: str | None,
    password: str | None,
    control_port: int | None,
    rules_json: str | None,
) -> None:
    """A standalone SMSC simulator (SMPP v3.4 server).

    Accepts binds, answers submit_sm with a message id and sends delivery receipts.
    Nothing it receives reaches a phone. Once listening it prints one JSON line
    on stdout: {"smpp_port": P, "control_port": C, "simulated": true}.
    """
    # Imported here, not at the top: the simulator brings its HTTP control server
    # (uvicorn, Starlette), a tenth of a second that every other `uvox` command,
    # an operator's `uvox admin ...` first, would pay at start-up.
    from uvox.smpp.simulator import SIMULATOR_WARNING, SmscSimulator, run_forever

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    click.echo(f"WARNING: {SIMULATOR_WARNING}", err=True)
    sim = SmscSimulator(
        host, port, system_id=system_id, password=password, receipt_delay=receipt_delay, control_port=control_port
    )
    if rules_json:
        sim.set_rules(json.loads(rules_json))

    def ready(s: SmscSimulator) -> None:
        print(
            json.dumps({"smpp_host": host, "smpp_port": s.port, "control_port": s.control_port, "simulated": True}),
            flush=True,
        )

    try:
        asyncio.run(run_forever(sim, ready))
    except KeyboardInterrupt:
        pass
    sys.exit(0)


@click.group("connector", help="SMPP connectors (carrier links) and their routes.")
def connector() -> None:
    pass


def _json_out(as_json: bool, data: Mapping[str, Any], text: str) -> None:
    click.echo(json.dumps(data, default=str) if as_json else text)


def _fail(as_json: bool, message: str) -> NoReturn:
    click.echo(json.dumps({"error": message}) if as_json else f"error: {message}", err=not as_json)
    sys.exit(1)


def _platform() -> Platform:
    from uvox.config import get_settings
    from uvox.platform import Platform

    return Platform.open(get_settings(), migrate=True)


def _engine() -> Engine:
    return _platform().engine


@connector.command(
    "add",
    help="Add an SMPP connector. Without --prefix it is the default route "
    "for every destination (taking over from the SMSC simulator).",
)
@click.argument("name")
@click.option("--host", required=True)
@click.option("--port", required=True, type=int)
@click.option("--system-id", required=True)
@click.option("--password", required=True)
@click.option("--system-type", default="")
@click.option("--bind-mode", type=click.Choice(["transceiver", "transmitter"]), default="transceiver")
@click.option("--tps", default=0, type=int, help="Most submit_sm a second (0: no limit).")
@click.option("--window", default=64, type=int, help="Most submit_sm awaiting an answer.")
@click.option("--prefix", "prefixes", multiple=True, help="Dial prefix this connector serves (repeatable).")
@click.option("--priority", default=0, type=int, help="Among routes of equal prefix, lower wins.")
@click.option("--no-alphanumeric", is_flag=True, help="The carrier refuses alphanumeric senders.")
@click.option("--generic-sender", default=None, help="Number used instead of an alphanumeric sender.")
@click.option("--json", "as_json", is_flag=True)
def connector_add(
    name: str,
    host: str,
    port: int,
    system_id: str,
    password: str,
    system_type: str,
    bind_mode: str,
    tps: int,
    window: int,
    prefixes: tuple[str, ...],
    priority: int,
    no_alphanumeric: bool,
    generic_sender: str | None,
    as_json: bool,
) -> None:
    from uvox.errors import Conflict
    from uvox.smpp import registry

    p = _platform()
    try:
        info = registry.add(
            p.engine,
            name,
            host=host,
            port=port,
            system_id=system_id,
            password=password,
            system_type=system_type,
            bind_mode=bind_mode,
            tps=tps,
            window=window,
            prefixes=list(prefixes),
            priority=priority,
            accepts_alphanumeric=not no_alphanumeric,
            generic_sender=generic_sender,
            secret=p.secret,
        )
    except (Conflict, ValueError) as e:
        _fail(as_json, str(e))
    _json_out(
        as_json,
        info.public(),
        f"connector {info.name} added ({info.host}:{info.port}, "
        f"prefixes {', '.join(p or 'default' for p in info.prefixes)})",
    )


@connector.command(
    "set-password",
    help="Change a connector's bind password, read from a hidden prompt "
    "(or one line of standard input when it is not a terminal), so it "
    "never appears on a command line; stored sealed. Dispatchers bind "
    "again with it within a second or two.",
)
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def connector_set_password(name: str, as_json: bool) -> None:
    from uvox.errors import NotFound
    from uvox.prompt import NoSecret, read_secret
    from uvox.smpp import registry

    p = _platform()
    try:
        registry.get(p.engine, name)  # before asking: an unknown name is told at once
        registry.set_password(p.engine, name, read_secret("password"), p.secret)
    except (NotFound, NoSecret, ValueError) as e:
        _fail(as_json, str(e))
    _json_out(as_json, {"name": name, "password": "changed"}, f"connector {name}: password changed")


@connector.command("list", help="List connectors (never their passwords).")
@click.option("--json", "as_json", is_flag=True)
def connector_list(as_json: bool) -> None:
    from uvox.smpp import registry

    items = registry.list_all(_engine())
    _json_out(
        as_json,
        {"connectors": [c.public() for c in items]},
        "\n".join(
            f"{c.name}\t{c.host}:{c.port}\t{'on' if c.enabled else 'off'}\t"
            f"{','.join(p or 'default' for p in c.prefixes)}"
            for c in items
        )
        or "no connectors",
    )


@connector.command("remove", help="Remove a connector and its routes.")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def connector_remove(name: str, as_json: bool) -> None:
    from uvox.errors import NotFound
    from uvox.smpp import registry

    try:
        registry.remove(_engine(), name)
    except NotFound as e:
        _fail(as_json, str(e))
    _json_out(as_json, {"removed": name}, f"connector {name} removed")


@connector.command("disable", help="Stop using a connector (it unbinds within a second or two).")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def connector_disable(name: str, as_json: bool) -> None:
    _toggle(name, False, as_json)


@connector.command("enable", help="Use a disabled connector again.")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def connector_enable(name: str, as_json: bool) -> None:
    _toggle(name, True, as_json)


def _toggle(name: str, enabled: bool, as_json: bool) -> None:
    from uvox.errors import NotFound
    from uvox.smpp import registry

    try:
        registry.set_enabled(_engine(), name, enabled)
    except NotFound as e:
        _fail(as_json, str(e))
    _json_out(
        as_json, {"connector": name, "enabled": enabled}, f"connector {name} {'enabled' if enabled else 'disabled'}"
    )


def register(main: click.Group, admin: click.Group | None = None) -> None:
    """Add this module's commands to the `uvox` group (and `uvox admin`)."""
    main.add_command(smsc_sim)
    if admin is not None:
        admin.add_command(connector)


if __name__ == "__main__":  # `python -m uvox.smpp.cli`, before the `uvox` group registers it
    smsc_sim()
