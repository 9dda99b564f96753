"""Operator (staff) pages: customers, money, plans and rate decks, connectors, messages."""

from __future__ import annotations

import importlib
import io
import math

import sqlalchemy as sa
from starlette.responses import Response

from uvox.accounts import service as accounts
from uvox.billing import ledger, plans
from uvox.billing.money import parse_amount
from uvox.billing.service import change_plan, set_credit_limit, topup
from uvox.db import schema as t
from uvox.db.session import read
from uvox.errors import Conflict, NotFound
from uvox.portal import history
from uvox.portal.history import N_
from uvox.portal.web import Ctx, Refused
from uvox.strings import is_digits

PAGE_SIZE = 50


def _pageno(ctx: Ctx) -> int:
    raw = ctx.q("page", "1")
    return max(1, min(int(raw), 10**6)) if is_digits(raw) else 1


def customers(ctx: Ctx) -> Response:
    query = ctx.q("q")[:100]
    page = _pageno(ctx)
    rows = accounts.list_accounts(ctx.engine, query, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
    plan_names = {p.id: p.name for p in plans.list_plans(ctx.engine)}
    return ctx.render("operator/customers.html", rows=rows[:PAGE_SIZE], more=len(rows) > PAGE_SIZE, page=page,
                      query=query, plan_names=plan_names)


def _customer(ctx: Ctx) -> accounts.Account:
    try:
        with read(ctx.engine) as conn:
            return accounts.get(conn, id=int(ctx.request.path_params["account_id"]))
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
                topup(ctx.engine, acct.id, amount, note=ctx.f("note")[:200] or "top-up (portal)")
            elif action == "credit":
                set_credit_limit(ctx.engine, acct.id, parse_amount(ctx.f("amount")))
            elif action == "plan":
                change_plan(ctx.engine, acct.id, ctx.f("plan"))
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
    return ctx.render("operator/customer.html", status=400 if error else 200, c=acct, message=message, error=error,
                      plans=plans.list_plans(ctx.engine), recent=recent, ledger=ledger.history(ctx.engine, acct.id, 20),
                      kinds=LEDGER_KINDS, state_label=history.state_label, state_group=history.state_group)


def plan_list(ctx: Ctx) -> Response:
    message, error = "", ""
    if ctx.request.method == "POST":
        action = ctx.f("action")
        try:
            if action == "create":
                plans.create_plan(ctx.engine, ctx.f("name")[:100], ctx.f("currency")[:8] or ctx.settings.default_currency)
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
    with read(ctx.engine) as conn:
        counts = dict(conn.execute(sa.select(t.rates.c.plan_id, sa.func.count()).group_by(t.rates.c.plan_id)).all())
        customers_by_plan = dict(conn.execute(
            sa.select(t.accounts.c.plan_id, sa.func.count()).group_by(t.accounts.c.plan_id)).all())
    return ctx.render("operator/plans.html", status=400 if error else 200, plans=plans.list_plans(ctx.engine),
                      counts=counts, customers_by_plan=customers_by_plan, message=message, error=error)


def connector_states(platform) -> dict | None:
    """Live states from the dispatcher, when the delivery package provides them."""
    try:
        mod = importlib.import_module("uvox.dispatch.status")
    except ModuleNotFoundError:
        return None
    fn = getattr(mod, "connector_states", None)
    if fn is None:
        return None
    try:
        return fn(platform) or {}
    except Exception:  # the page must still show the table if the dispatcher is down
        return {}


def connectors(ctx: Ctx) -> Response:
    with read(ctx.engine) as conn:
        rows = conn.execute(sa.select(t.connectors).order_by(t.connectors.c.name)).all()
        routes = conn.execute(sa.select(t.routes.c.connector_id, t.routes.c.prefix, t.routes.c.priority)
                              .order_by(t.routes.c.prefix)).all()
    by_connector: dict[int, list[str]] = {}
    for r in routes:
        by_connector.setdefault(r.connector_id, []).append(r.prefix or "*")
    return ctx.render("operator/connectors.html", rows=rows, routes=by_connector, states=connector_states(ctx.platform))


def messages(ctx: Ctx) -> Response:
    filters, bad = history.Filters.parse(ctx.request.query_params.get)
    page = _pageno(ctx)
    total, rows = history.page(ctx.engine, None, filters, PAGE_SIZE, (page - 1) * PAGE_SIZE)
    return ctx.render("operator/messages.html", rows=rows, total=total, page=page,
                      pages=max(1, math.ceil(total / PAGE_SIZE)), filters=filters, query=filters.as_query(), bad=bad,
                      groups=history.STATE_GROUPS, state_label=history.state_label, state_group=history.state_group)
