"""`uvox smsc-sim`: run the SMSC simulator as its own process."""

from __future__ import annotations

import asyncio
import json
import logging
import sys

import click

from uvox.smpp.simulator import SIMULATOR_WARNING, SmscSimulator, run_forever


@click.command("smsc-sim")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=2775, show_default=True, type=int,
              help="SMPP port (0 picks a free one).")
@click.option("--receipt-delay", default=1.0, show_default=True, type=float,
              help="Seconds between accepting a message and its delivery receipt.")
@click.option("--system-id", default=None, help="Only accept binds with this system_id.")
@click.option("--password", default=None, help="Only accept binds with this password.")
@click.option("--control-port", default=None, type=int,
              help="HTTP control/inspection port (0 picks a free one; off when omitted).")
@click.option("--rules", "rules_json", default=None,
              help='Initial behaviour rules as JSON, e.g. \'[{"action":"throttle","count":5}]\'.')
def smsc_sim(host, port, receipt_delay, system_id, password, control_port, rules_json):
    """A standalone SMSC simulator (SMPP v3.4 server).

    Accepts binds, answers submit_sm with a message id and sends delivery receipts.
    Nothing it receives reaches a phone. Once listening it prints one JSON line
    on stdout: {"smpp_port": P, "control_port": C, "simulated": true}.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    click.echo(f"WARNING: {SIMULATOR_WARNING}", err=True)
    sim = SmscSimulator(host, port, system_id=system_id, password=password,
                        receipt_delay=receipt_delay, control_port=control_port)
    if rules_json:
        sim.set_rules(json.loads(rules_json))

    def ready(s: SmscSimulator) -> None:
        print(json.dumps({"smpp_host": host, "smpp_port": s.port, "control_port": s.control_port,
                          "simulated": True}), flush=True)

    try:
        asyncio.run(run_forever(sim, ready))
    except KeyboardInterrupt:
        pass
    sys.exit(0)


def register(group: click.Group) -> None:
    """Add this module's commands to the `uvox` group."""
    group.add_command(smsc_sim)


if __name__ == "__main__":  # `python -m uvox.smpp.cli`, before the `uvox` group registers it
    smsc_sim()
