"""The ``uvox`` command: serve, database, operator (admin) commands.

Every ``admin`` command takes ``--json`` and then prints exactly one JSON object on
stdout, so scripts and tests can drive the platform without a browser.
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path

import click

from uvox import client_cli
from uvox.config import Settings
from uvox.dispatch import cli as dispatch_cli
from uvox.errors import Conflict, NotFound
from uvox.platform import Platform
from uvox.smpp import cli as smpp_cli
from uvox.softphone import cli as softphone_cli
from uvox.voice import cli as voice_cli


def _platform() -> Platform:
    return Platform.open(Settings.from_env(), migrate=True)


def _emit(as_json: bool, data: dict, text: str) -> None:
    if as_json:
        click.echo(json.dumps(data, default=str))
    else:
        click.echo(text)


def _fail(as_json: bool, message: str) -> None:
    if as_json:
        click.echo(json.dumps({"error": message}))
    else:
        click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _amount(as_json: bool, raw: str, allow_negative: bool = False) -> Decimal:
    from uvox.billing.money import parse_amount

    try:
        return parse_amount(raw, allow_negative=allow_negative)
    except ValueError as exc:
        _fail(as_json, str(exc))
        raise  # unreachable


def _account(p: Platform, as_json: bool, ref: str):
    from uvox.accounts import service

    try:
        return service.find(p.engine, ref)
    except NotFound:
        _fail(as_json, f"no account {ref!r} (give the account number or e-mail)")


json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")


class _Main(click.Group):
    """With ``--json`` a usage error is one JSON object on stdout too (API.md: every
    ``admin`` command then prints one JSON object), so an operator's script never has
    to parse click's text."""

    def main(self, args=None, *rest, **kwargs):
        argv = list(sys.argv[1:] if args is None else args)
        if "--json" not in argv:
            return super().main(argv, *rest, **kwargs)
        try:
            return super().main(argv, *rest, standalone_mode=False, **kwargs)
        except click.ClickException as exc:
            click.echo(json.dumps({"error": exc.format_message()}))
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo(json.dumps({"error": "aborted"}))
            sys.exit(1)


@click.group(cls=_Main, help="UVox: SMS and OTP API, prepaid billing, SMPP delivery, softphone provisioning.")
@click.version_option(package_name="uvox")
def main() -> None:
    from uvox.process import configure_logging

    configure_logging(Settings.from_env())


@main.command(help="Run the API, the portal and the dispatcher (SQLite and the SMSC simulator by default).")
@click.option("--host", default=None, help="Address to listen on (UVOX_HOST, default 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (UVOX_PORT, default 8000).")
@click.option(
    "--workers",
    default=None,
    type=click.IntRange(min=1),
    help="HTTP processes (UVOX_WORKERS, default: one per core). With more than one, delivery "
    "and the SMSC simulator run in processes of their own beside them, and this process "
    "supervises; 1 runs everything in one process.",
)
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    from uvox.server import exec_supervisor, http_processes
    from uvox.server import serve as run

    settings = Settings.from_env()
    n = http_processes(settings, workers)
    if n > 1:
        exec_supervisor(settings, host, port, n)  # does not return
    run(settings, host, port, n)


@main.group(help="Database commands.")
def db() -> None:
    pass


@db.command(help="Apply the migrations (also done by `uvox serve` at start).")
def upgrade() -> None:
    from uvox.db.engine import make_engine
    from uvox.db.migrate import current_heads
    from uvox.db.migrate import upgrade as do_upgrade

    settings = Settings.from_env()
    engine = make_engine(settings)

    def revision() -> str:
        return ", ".join(sorted(current_heads(engine))) or "empty"

    before = revision()
    do_upgrade(engine, secret_key=settings.secret_key)  # migrations that seal secrets need it
    after = revision()
    engine.dispose()
    click.echo(
        f"database is up to date ({after})" if before == after else f"database upgraded from {before} to {after}"
    )


@db.command(
    help="Seal every stored secret again under the current instance secret (UVOX_SECRET_KEY, or the "
    "database's generated one when it is unset), after changing it. The old key is read from a "
    "hidden prompt, or one line of standard input when it is not a terminal."
)
@click.option(
    "--from-database",
    is_flag=True,
    help="The old key is the one the platform generated and keeps in the database (moving to "
    "UVOX_SECRET_KEY for the first time): nothing is read.",
)
@json_option
def reseal(from_database: bool, as_json: bool) -> None:
    from uvox.db import reseal as service
    from uvox.prompt import NoSecret, read_secret

    p = _platform()
    try:
        old = (
            service.stored_secret(p.engine) if from_database else read_secret("old secret key", confirm=False).encode()
        )
        counts = service.reseal(p.engine, old, p.secret)
    except (NoSecret, service.ResealError) as exc:
        _fail(as_json, str(exc))
    _emit(as_json, counts, "resealed: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items()))


@main.group(help="Operator commands.")
def admin() -> None:
    pass


@admin.group(help="Customer accounts.")
def account() -> None:
    pass


@account.command("create", help="Create an account; prints its number.")
@click.option("--email", required=True)
@click.option("--password", default=None, help="Portal password (omit for an API-only account).")
@click.option("--plan", default=None, help="Plan name.")
@click.option("--currency", default=None)
@click.option("--staff", is_flag=True, help="An operator (staff) account.")
@json_option
def account_create(email, password, plan, currency, staff, as_json) -> None:
    from uvox.accounts import service

    p = _platform()
    try:
        a = service.create_account(
            p.engine,
            email=email,
            password=password,
            plan=plan,
            currency=currency,
            is_staff=staff,
            default_currency=p.settings.default_currency,
        )
    except (NotFound, Conflict) as exc:
        _fail(as_json, str(exc))
    _emit(
        as_json,
        {"accountnumber": a.number, "email": a.email, "currency": a.currency, "plan": plan, "staff": a.is_staff},
        f"account {a.number} created for {a.email}",
    )


@account.command("show", help="Show an account's balance, credit and plan.")
@click.argument("ref")
@json_option
def account_show(ref, as_json) -> None:
    from uvox.billing.money import show

    p = _platform()
    a = _account(p, as_json, ref)
    _emit(
        as_json,
        {
            "accountnumber": a.number,
            "email": a.email,
            "currency": a.currency,
            "balance": show(a.balance),
            "credit": show(a.credit_limit),
            "plan_id": a.plan_id,
            "staff": a.is_staff,
            "disabled": a.disabled,
            "per_second": a.rate_limit or 0,
        },
        f"{a.number} {a.email or ''} balance {show(a.balance)} {a.currency} credit {show(a.credit_limit)}",
    )


@account.command("set-plan", help="Move an account to another plan.")
@click.argument("ref")
@click.argument("plan")
@json_option
def account_set_plan(ref, plan, as_json) -> None:
    from uvox.billing.service import change_plan

    p = _platform()
    a = _account(p, as_json, ref)
    try:
        released = change_plan(p.engine, a.id, plan, on_queued=p.queued.notify)
    except NotFound as exc:
        _fail(as_json, str(exc))
    _emit(as_json, {"accountnumber": a.number, "plan": plan, "released": released}, f"{a.number} is on plan {plan}")


@account.command("set-limit", help="Limit an account's API requests a second, across every process (0: no limit).")
@click.argument("ref")
@click.option(
    "--per-second",
    type=click.IntRange(min=0),
    required=True,
    help="Requests a second; more get code 107 (HTTP 429) and Retry-After: 1.",
)
@json_option
def account_set_limit(ref, per_second, as_json) -> None:
    from uvox.accounts import service

    p = _platform()
    a = service.set_rate_limit(p.engine, _account(p, as_json, ref).id, per_second)
    _emit(
        as_json,
        {"accountnumber": a.number, "per_second": a.rate_limit or 0},
        f"{a.number}: at most {a.rate_limit} API requests a second"
        if a.rate_limit
        else f"{a.number}: no request rate limit",
    )


def _limit_value(as_json: bool, name: str, raw: str) -> int | None:
    raw = raw.strip().lower()
    if raw == "default":
        return None
    if not raw.isdigit():
        _fail(as_json, f"--{name.replace('_', '-')} takes a number of codes (0: no limit) or 'default'")
    return int(raw)


@account.command(
    "otp-limits",
    help="Show or set an account's OTP request limits (SMS pumping protection): "
    "codes per phone number, per number prefix, per client address and in all. "
    "A number (0: no limit) or 'default' (the configured one).",
)
@click.argument("ref")
@click.option(
    "--per-number", default=None, help="Codes per phone number every UVOX_OTP_SEND_WINDOW_SECONDS (code 102)."
)
@click.option("--per-prefix", default=None, help="Codes per number prefix every UVOX_OTP_LIMIT_WINDOW_SECONDS (154).")
@click.option("--per-address", default=None, help="Codes per client address every UVOX_OTP_LIMIT_WINDOW_SECONDS (155).")
@click.option("--per-account", default=None, help="Codes in all every UVOX_OTP_LIMIT_WINDOW_SECONDS (153).")
@json_option
def account_otp_limits(ref, per_number, per_prefix, per_address, per_account, as_json) -> None:
    from uvox.otp import guard

    p = _platform()
    a = _account(p, as_json, ref)
    given = {"per_number": per_number, "per_prefix": per_prefix, "per_address": per_address, "per_account": per_account}
    changes = {k: _limit_value(as_json, k, v) for k, v in given.items() if v is not None}
    if changes:
        guard.set_limits(p.engine, p.settings, a.id, changes)
    lim, overrides = guard.limits(p.engine, p.settings, a.id)
    data = {
        "accountnumber": a.number,
        **{k: getattr(lim, k) for k in guard.LIMIT_NAMES},
        "window_seconds": p.settings.otp_limit_window_seconds,
        "number_window_seconds": p.settings.otp_send_window_seconds,
        "overridden": sorted(overrides),
    }
    _emit(
        as_json,
        data,
        "\n".join(
            f"{k.replace('_', ' ')}: {getattr(lim, k) or 'no limit'}{'' if k in overrides else ' (default)'}"
            for k in guard.LIMIT_NAMES
        ),
    )


@account.command(
    "countries",
    help="Show or set the countries an account may send OTP and SMS to: ISO codes "
    "separated by commas; an empty value clears a list.",
)
@click.argument("ref")
@click.option("--allow", default=None, help="Only these countries (e.g. ES,VE); empty: any.")
@click.option("--block", default=None, help="Never these countries (e.g. NG,RU).")
@json_option
def account_countries(ref, allow, block, as_json) -> None:
    from uvox.accounts import countries

    p = _platform()
    a = _account(p, as_json, ref)
    try:
        changes = {k: countries.parse(v) for k, v in (("allowed", allow), ("blocked", block)) if v is not None}
    except countries.BadCountry as exc:
        _fail(as_json, str(exc))
    allowed, blocked = countries.set_lists(p.engine, a.id, **changes)
    _emit(
        as_json,
        {"accountnumber": a.number, "allowed": list(allowed), "blocked": list(blocked)},
        f"allowed: {','.join(allowed) or 'any'}\nblocked: {','.join(blocked) or 'none'}",
    )


@account.command("otp-pauses", help="List the number prefixes the OTP conversion-rate alarm has paused for an account.")
@click.argument("ref")
@json_option
def account_otp_pauses(ref, as_json) -> None:
    from uvox.otp import guard

    p = _platform()
    a = _account(p, as_json, ref)
    pauses = guard.active_pauses(p.engine, a.id)
    _emit(
        as_json,
        {
            "accountnumber": a.number,
            "pauses": [
                {
                    "prefix": x.prefix,
                    "country": x.country,
                    "requested": x.requested,
                    "verified": x.verified,
                    "paused_at": x.paused_at.isoformat(),
                    "until": x.until.isoformat(),
                }
                for x in pauses
            ],
        },
        "\n".join(
            f"{x.prefix}\t{x.country}\t{x.verified}/{x.requested} verified\tuntil {x.until:%Y-%m-%d %H:%M} UTC"
            for x in pauses
        )
        or "no paused prefixes",
    )


@account.command("otp-resume", help="Lift the OTP alarm's pause of a number prefix (e.g. +1305) for an account.")
@click.argument("ref")
@click.argument("prefix")
@json_option
def account_otp_resume(ref, prefix, as_json) -> None:
    from uvox.otp import guard

    p = _platform()
    a = _account(p, as_json, ref)
    resumed = guard.lift(p.engine, a.id, prefix, by="operator")
    if resumed is None:
        _fail(as_json, f"{prefix} is not paused for {a.number}")
    _emit(as_json, {"accountnumber": a.number, "resumed": resumed}, f"{resumed} resumed for {a.number}")


@account.command("disable", help="Disable an account: its API keys, portal sign-in and calls stop at once.")
@click.argument("ref")
@json_option
def account_disable(ref, as_json) -> None:
    _set_disabled(ref, True, as_json)


@account.command("enable", help="Enable a disabled account again.")
@click.argument("ref")
@json_option
def account_enable(ref, as_json) -> None:
    _set_disabled(ref, False, as_json)


def _set_disabled(ref: str, disabled: bool, as_json: bool) -> None:
    from uvox.accounts import service

    p = _platform()
    a = service.set_disabled(p.engine, _account(p, as_json, ref).id, disabled)
    _emit(
        as_json,
        {"accountnumber": a.number, "disabled": a.disabled},
        f"{a.number} is {'disabled' if a.disabled else 'enabled'}",
    )


@admin.group(help="API keys.")
def apikey() -> None:
    pass


@apikey.command("create", help="Create an API key (shown once).")
@click.argument("ref")
@click.option("--description", default="", help="What the key is for.")
@click.option(
    "--test",
    "test",
    is_flag=True,
    help="A test key: its sends are answered like live ones but never reach a carrier and never charge.",
)
@json_option
def apikey_create(ref, description, test, as_json) -> None:
    from uvox.accounts import apikeys

    p = _platform()
    a = _account(p, as_json, ref)
    try:
        key, info = apikeys.create(p.engine, a.id, description, limit=p.settings.max_api_keys, test=test)
    except Conflict as exc:
        _fail(as_json, str(exc))
    out = {"accountnumber": a.number, "apikey": key, "id": info.id, "description": info.description}
    if test:
        out["test"] = True
    _emit(as_json, out, f"{'Test API key' if test else 'API key'} for {a.number} (shown once): {key}")


@apikey.command("list", help="List an account's active keys (never the keys themselves).")
@click.argument("ref")
@json_option
def apikey_list(ref, as_json) -> None:
    from uvox.accounts import apikeys

    p = _platform()
    a = _account(p, as_json, ref)
    keys = apikeys.list_keys(p.engine, a.id)
    _emit(
        as_json,
        {
            "accountnumber": a.number,
            "keys": [
                {
                    "id": k.id,
                    "hint": k.hint,
                    "description": k.description,
                    "test": k.test,
                    "created_at": k.created_at.isoformat(),
                }
                for k in keys
            ],
        },
        "\n".join(f"{k.id}\t{k.hint}\t{'test' if k.test else 'live'}\t{k.description}" for k in keys)
        or "no active keys",
    )


@apikey.command("revoke", help="Revoke a key by its id (see `apikey list`).")
@click.argument("ref")
@click.argument("key_id", type=int)
@json_option
def apikey_revoke(ref, key_id, as_json) -> None:
    from uvox.accounts import apikeys

    p = _platform()
    a = _account(p, as_json, ref)
    try:
        apikeys.revoke(p.engine, a.id, key_id)
    except NotFound as exc:
        _fail(as_json, str(exc))
    _emit(as_json, {"accountnumber": a.number, "revoked": key_id}, f"key {key_id} revoked")


# A negative AMOUNT corrects a balance: "-5" must reach the argument, not be taken for an option.
@admin.command(
    "topup",
    help="Add prepaid balance (releases messages waiting for balance).",
    context_settings={"ignore_unknown_options": True},
)
@click.argument("ref")
@click.argument("amount")
@click.option("--note", default="top-up")
@json_option
def topup(ref, amount, note, as_json) -> None:
    from uvox.billing.money import show
    from uvox.billing.service import topup as do_topup

    p = _platform()
    a = _account(p, as_json, ref)
    value = _amount(as_json, amount, allow_negative=True)
    new_balance, released = do_topup(p.engine, a.id, value, note, on_queued=p.queued.notify)
    _emit(
        as_json,
        {"accountnumber": a.number, "currency": a.currency, "balance": show(new_balance), "released": released},
        f"{a.number} balance {show(new_balance)} {a.currency}",
    )


@admin.command("credit-limit", help="Set how far below zero an account may go.")
@click.argument("ref")
@click.argument("amount")
@json_option
def credit_limit(ref, amount, as_json) -> None:
    from uvox.billing.money import show
    from uvox.billing.service import set_credit_limit

    p = _platform()
    a = _account(p, as_json, ref)
    value = _amount(as_json, amount)
    released = set_credit_limit(p.engine, a.id, value, on_queued=p.queued.notify)
    _emit(
        as_json,
        {"accountnumber": a.number, "credit": show(value), "released": released},
        f"{a.number} credit limit {show(value)} {a.currency}",
    )


@admin.group(help="Plans (price lists).")
def plan() -> None:
    pass


@plan.command("create", help="Create a plan.")
@click.argument("name")
@click.option("--currency", required=True, help="For example US$.")
@json_option
def plan_create(name, currency, as_json) -> None:
    from uvox.billing import plans

    p = _platform()
    try:
        pl = plans.create_plan(p.engine, name, currency)
    except (Conflict, ValueError) as exc:
        _fail(as_json, str(exc))
    _emit(as_json, {"plan": pl.name, "id": pl.id, "currency": pl.currency}, f"plan {pl.name} ({pl.currency}) created")


@plan.command("list", help="List plans.")
@json_option
def plan_list(as_json) -> None:
    from uvox.billing import plans

    p = _platform()
    items = plans.list_plans(p.engine)
    _emit(
        as_json,
        {"plans": [{"name": x.name, "currency": x.currency} for x in items]},
        "\n".join(f"{x.name}\t{x.currency}" for x in items) or "no plans",
    )


@admin.group(help="Rate decks.")
def rates() -> None:
    pass


@rates.command(
    "import",
    help="Replace a plan's rates with a CSV: dialprefix,destination,rateinitial,smsrate "
    "and optionally connectcharge,initblock,billingblock (voice; defaults 0, 60, 60).",
)
@click.argument("plan_name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
def rates_import(plan_name, file, as_json) -> None:
    from uvox.billing import plans

    p = _platform()
    try:
        with file.open(encoding="utf-8-sig", newline="") as fh:
            count = plans.import_rates(p.engine, plan_name, fh)
    except (NotFound, plans.RateDeckError) as exc:
        _fail(as_json, str(exc))
    _emit(as_json, {"plan": plan_name, "rates": count}, f"{count} rates imported into {plan_name}")


@rates.command("export", help="Print a plan's rates as CSV, every column `rates import` reads.")
@click.argument("plan_name")
def rates_export(plan_name) -> None:
    from uvox.billing import plans

    p = _platform()
    try:
        lines = plans.export_csv(p.engine, plan_name)
        click.echo(next(lines), nl=False)
    except NotFound as exc:
        _fail(False, str(exc))
    for line in lines:
        click.echo(line, nl=False)


@admin.group("otp-template", help="One-time code templates.")
def otp_template() -> None:
    pass


@otp_template.command("create", help="Create a template; prints its ref_id.")
@click.argument("ref")
@click.option("--text", required=True, help='Must contain {code}, e.g. "Your code is {code}".')
@click.option("--name", default="")
@click.option("--sender", default="")
@json_option
def otp_template_create(ref, text, name, sender, as_json) -> None:
    from uvox.otp import service as otp

    p = _platform()
    a = _account(p, as_json, ref)
    try:
        tpl = otp.create_template(p.engine, a.id, text, name, sender)
    except ValueError as exc:
        _fail(as_json, str(exc))
    _emit(as_json, {"accountnumber": a.number, "ref_id": tpl.ref_id, "text": tpl.text}, f"ref_id {tpl.ref_id}")


def _register_domain_commands() -> None:
    """Commands owned by domain packages (connectors, simulator, worker, SIP, client)."""
    for module in (smpp_cli, dispatch_cli, softphone_cli, voice_cli, client_cli):
        module.register(main, admin)


_register_domain_commands()

if __name__ == "__main__":
    main()
