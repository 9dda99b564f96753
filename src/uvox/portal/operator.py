"""Operator (staff) pages: customers, money, plans and rate decks, connectors, messages."""

from __future__ import annotations

import io

from starlette.responses import Response

from uvox.accounts import service as accounts
from uvox.billing import ledger, plans
from uvox.billing.money import parse_amount
from uvox.billing.service import change_plan, set_credit_limit, topup
from uvox.dispatch import status
from uvox.errors import Conflict, NotFound
from uvox.portal import history
from uvox.portal.history import N_
from uvox.portal.web import Ctx, Refused

PAGE_SIZE = 50


def customers(ctx: Ctx) -> Response:
    query = ctx.q("q")[:100]
    page = ctx.page_number()
    rows = accounts.list_accounts(ctx.engine, query, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
    plan_names = {p.id: p.name for p in plans.list_plans(ctx.engine)}
    return ctx.render(
        "operator/customers.html",
        rows=rows[:PAGE_SIZE],
        more=len(rows) > PAGE_SIZE,
        page=page,
        query=query,
        plan_names=plan_names,
    )


def _customer(ctx: Ctx) -> accounts.Account:
    try:
        return accounts.get_by_id(ctx.engine, int(ctx.request.path_params["account_id"]))
    except NotFound:
        raise Refused(404) from None


#: Results shown after the redirect that follows a money action (?m=...): a refresh
#: of the page must never post a top-up twice.
NOTICES = {
    "topup": N_("Top-up recorded."),
    "credit": N_("Credit limit set."),
    "plan": N_("Plan changed."),
}
LEDGER_KINDS = {"topup": N_("Top-up"), "charge": N_("Charge"), "refund": N_("Refund"), "adjustment": N_("Adjustment")}


def customer(ctx: Ctx) -> Response:
    acct = _customer(ctx)
    error = ""
    if ctx.request.method == "POST":
        action = ctx.f("action")
        try:
            if action == "topup":
                amount = parse_amount(ctx.f("amount"), allow_negative=True)
                if amount == 0:
                    raise ValueError("zero")
                topup(
                    ctx.engine,
                    acct.id,
                    amount,
                    note=ctx.f("note")[:200] or "top-up (portal)",
                    on_queued=ctx.platform.queued.notify,
                )
            elif action == "credit":
                set_credit_limit(
                    ctx.engine, acct.id, parse_amount(ctx.f("amount")), on_queued=ctx.platform.queued.notify
                )
            elif action == "plan":
                change_plan(ctx.engine, acct.id, ctx.f("plan"), on_queued=ctx.platform.queued.notify)
            else:
                raise Refused(400)
        except ValueError:
            error = ctx._("Enter an amount such as 10 or 10.50 (a credit limit cannot be negative).")
        except NotFound:
            error = ctx._("No such plan.")
        else:
            return ctx.redirect(f"/operator/customers/{acct.id}", m=action)
    key = ctx.q("m")
    message = ctx._(NOTICES[key]) if key in NOTICES else ""
    _, recent = history.page(ctx.engine, acct.id, history.Filters(), limit=20)
    return ctx.render(
        "operator/customer.html",
        status=400 if error else 200,
        c=acct,
        message=message,
        error=error,
        plans=plans.list_plans(ctx.engine),
        recent=recent,
        ledger=ledger.history(ctx.engine, acct.id, 20),
        kinds=LEDGER_KINDS,
        state_label=history.state_label,
        state_group=history.state_group,
    )


def plan_list(ctx: Ctx) -> Response:
    message, error = "", ""
    if ctx.request.method == "POST":
        action = ctx.f("action")
        try:
            if action == "create":
                plans.create_plan(
                    ctx.engine, ctx.f("name")[:100], ctx.f("currency")[:8] or ctx.settings.default_currency
                )
                message = ctx._("Plan created.")
            elif action == "upload":
                data = ctx.request.state.files.get("deck") or b""
                if not data:
                    raise plans.RateDeckError(ctx._("Choose a CSV file."))
                text = data.decode("utf-8-sig", errors="replace")
                n = plans.import_rates(ctx.engine, ctx.f("plan"), io.StringIO(text))
                message = ctx._("Rate deck imported. Rates: %(n)s.", n=n)
            else:
                raise Refused(400)
        except plans.RateDeckError as exc:
            error = str(exc)
        except (ValueError, Conflict, NotFound) as exc:
            error = str(exc)
    usage = plans.plan_usage(ctx.engine)
    return ctx.render(
        "operator/plans.html",
        status=400 if error else 200,
        plans=plans.list_plans(ctx.engine),
        counts=usage.rates,
        customers_by_plan=usage.customers,
        message=message,
        error=error,
    )


def connectors(ctx: Ctx) -> Response:
    rows, prefixes = status.connectors_and_prefixes(ctx.engine)
    try:
        states = status.connector_states(ctx.platform)
    except Exception:  # the page must still show the table if the database's state rows are unreadable
        states = {}
    return ctx.render("operator/connectors.html", rows=rows, routes=prefixes, states=states)


def messages(ctx: Ctx) -> Response:
    return ctx.render("operator/messages.html", **history.listing(ctx, None))
