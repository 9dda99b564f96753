"""Customer pages: sign-up to first SMS, keys, OTP templates, history, rates, docs, settings."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from functools import partial
from pathlib import Path

import anyio.from_thread
from babel import Locale
from starlette.concurrency import iterate_in_threadpool
from starlette.responses import Response, StreamingResponse

from uvox.accounts import apikeys, countries, sessions
from uvox.accounts import service as accounts
from uvox.api.v1 import endpoints
from uvox.api.v1.codes import CODES
from uvox.api.v1.params import Variables
from uvox.billing import alerts, caps, plans
from uvox.billing.money import parse_amount
from uvox.errors import Conflict, NotFound
from uvox.otp import guard
from uvox.otp import service as otp
from uvox.portal import console, docs, history, security
from uvox.portal.history import N_
from uvox.portal.web import Ctx, Refused, client_address, safe_next
from uvox.sms.numbers import normalise_sender
from uvox.strings import is_digits

PAGE_SIZE = 50

#: Messages shown after a redirect (?m=...): a fixed list, so a link cannot put
#: arbitrary text on our page.
NOTICES = {
    "welcome": N_("Welcome! Your account is ready."),
    "signed_out": N_("You are signed out."),
    "password_changed": N_("Your password has been changed. Other browsers have been signed out."),
    "key_revoked": N_("The API key has been revoked."),
    "template_created": N_("The template has been created."),
    "template_saved": N_("The template has been saved."),
    "template_deleted": N_("The template has been deleted."),
    "settings_saved": N_("Your settings have been saved."),
    "secret_rotated": N_("A new signing secret has been created."),
    "countries_saved": N_("Your country rules have been saved."),
    "prefix_resumed": N_("Code requests to that prefix are allowed again."),
    "cap_saved": N_("The spend cap has been saved."),
    "cap_removed": N_("The spend cap has been removed."),
    "alert_saved": N_("The low-balance alert has been saved."),
    "alert_removed": N_("The low-balance alert has been removed."),
}


#: API replies the send form can show, marked for translation (the API itself
#: always answers in the manual's English).
SEND_RESULTS = [
    N_("Message sent successfully"),
    N_("No Plan or Balance in account (SMS queued)"),
    N_("Invalid format in the destination number"),
    N_("Invalid or empty text"),
    N_("Invalid destination number"),
    N_("Missing variables in your request"),
    N_("Too many recipients"),
    N_("Invalid sender (from)"),
    N_("Destination country not allowed for this account"),
    N_("Spend cap reached"),
]


def notice(ctx: Ctx) -> str:
    key = ctx.q("m")
    return ctx._(NOTICES[key]) if key in NOTICES else ""


# --- signing up and in ---------------------------------------------------------


def _password_problem(ctx: Ctx, password: str) -> str:
    problem = accounts.password_problem(password)
    if problem is accounts.PasswordProblem.TOO_SHORT:
        return ctx._("The password must have at least %(n)s characters.", n=accounts.MIN_PASSWORD)
    if problem is accounts.PasswordProblem.TOO_LONG:
        return ctx._("The password is too long.")
    return ""


def sign_up(ctx: Ctx) -> Response:
    if ctx.account and ctx.request.method == "GET":
        return ctx.redirect("/dashboard")
    errors: list[str] = []
    email = ctx.f("email")
    if ctx.request.method == "POST":
        password = ctx.form.get("password") or ""
        if not accounts.valid_email(email):
            errors.append(ctx._("Enter a valid e-mail address."))
        if problem := _password_problem(ctx, password):
            errors.append(problem)
        elif password != (ctx.form.get("password2") or ""):
            errors.append(ctx._("The two passwords do not match."))
        address = client_address(ctx.request)
        if not errors and sessions.signup_blocked(ctx.engine, address):
            return ctx.render(
                "sign_up.html",
                status=429,
                email=email,
                errors=[ctx._("Too many accounts were created from your address. Please try again later.")],
            )
        if not errors:
            try:
                account = accounts.sign_up(
                    ctx.engine,
                    email,
                    password,
                    default_plan=ctx.settings.default_plan,
                    default_currency=ctx.settings.default_currency,
                )
            except Conflict:
                # Counted like a sign-up, so the form cannot be used to list our customers' e-mails.
                sessions.record_attempt(ctx.engine, "signup", accounts.normalise_email(email), address, False)
                errors.append(ctx._("An account with this e-mail address already exists. Sign in instead."))
            else:
                sessions.record_attempt(ctx.engine, "signup", accounts.normalise_email(email), address, True)
                ctx.sign_in(account)
                return ctx.redirect("/dashboard", m="welcome")
    return ctx.render("sign_up.html", status=400 if errors else 200, email=email, errors=errors)


def sign_in(ctx: Ctx) -> Response:
    nxt = safe_next(ctx.q("next") or ctx.f("next"))
    if ctx.account and ctx.request.method == "GET":
        return ctx.redirect(nxt)
    email = ctx.f("email")
    error = ""
    status = 200
    if ctx.request.method == "POST":
        password = ctx.form.get("password") or ""
        norm = accounts.normalise_email(email)
        address = client_address(ctx.request)
        if sessions.signin_blocked(ctx.engine, norm, address):
            error = ctx._("Too many failed attempts. Please wait 15 minutes and try again.")
            status = 429
        else:
            account = (
                accounts.authenticate_password(ctx.engine, norm, password[: accounts.MAX_PASSWORD]) if norm else None
            )
            sessions.record_attempt(ctx.engine, "signin", norm, address, account is not None)
            if account is not None:
                ctx.sign_in(account)
                return ctx.redirect(nxt)
            error = ctx._("Wrong e-mail or password.")
            status = 401
    return ctx.render("sign_in.html", status=status, email=email, error=error, next=nxt, notice=notice(ctx))


def sign_out(ctx: Ctx) -> Response:
    ctx.sign_out()
    return ctx.redirect("/sign_in", m="signed_out")


def password(ctx: Ctx) -> Response:
    errors: list[str] = []
    if ctx.request.method == "POST":
        current = ctx.form.get("current") or ""
        new = ctx.form.get("password") or ""
        if (
            accounts.authenticate_password(ctx.engine, ctx.account.email or "", current[: accounts.MAX_PASSWORD])
            is None
        ):
            errors.append(ctx._("The current password is wrong."))
        elif problem := _password_problem(ctx, new):
            errors.append(problem)
        elif new != (ctx.form.get("password2") or ""):
            errors.append(ctx._("The two passwords do not match."))
        else:
            accounts.set_password(ctx.engine, ctx.account.id, new)
            sessions.close_other_sessions(ctx.engine, ctx.account.id, ctx.session_token)
            return ctx.redirect("/dashboard", m="password_changed")
    return ctx.render("password.html", status=400 if errors else 200, errors=errors)


# --- dashboard -----------------------------------------------------------------


def _plan_name(ctx: Ctx) -> str:
    return plans.plan_name(ctx.engine, ctx.account.plan_id)


def dashboard(ctx: Ctx) -> Response:
    _, recent = history.page(ctx.engine, ctx.account.id, history.Filters(), limit=10)
    return ctx.render(
        "dashboard.html",
        recent=recent,
        plan=_plan_name(ctx),
        notice=notice(ctx),
        charts=console.customer_charts(ctx),
        pauses=guard.active_pauses(ctx.engine, ctx.account.id),
        country_name=_country_namer(ctx),
        state_label=history.state_label,
        state_group=history.state_group,
        keys=len(apikeys.list_keys(ctx.engine, ctx.account.id)),
    )


# --- API keys --------------------------------------------------------------------


def api_keys(ctx: Ctx) -> Response:
    error = ""
    if ctx.request.method == "POST":
        try:
            key, created = apikeys.create(
                ctx.engine,
                ctx.account.id,
                ctx.f("description")[:200],
                limit=ctx.settings.max_api_keys,
                test=ctx.f("mode") == "test",
            )
        except Conflict:
            error = ctx._("You already have %(n)s API keys. Revoke one to create another.", n=ctx.settings.max_api_keys)
        else:
            return ctx.render("api_key_created.html", key=key, created=created)
    keys = apikeys.list_keys(ctx.engine, ctx.account.id)
    return ctx.render(
        "api_keys.html",
        status=409 if error else 200,
        keys=keys,
        error=error,
        limit=ctx.settings.max_api_keys,
        notice=notice(ctx),
    )


def revoke_key(ctx: Ctx) -> Response:
    try:
        apikeys.revoke(ctx.engine, ctx.account.id, int(ctx.request.path_params["key_id"]))
    except NotFound:
        raise Refused(404) from None
    return ctx.redirect("/apikeys", m="key_revoked")


# --- OTP templates ---------------------------------------------------------------


def _template(ctx: Ctx) -> otp.Template:
    tid = int(ctx.request.path_params["template_id"])
    for tpl in otp.list_templates(ctx.engine, ctx.account.id):
        if tpl.id == tid:
            return tpl
    raise Refused(404)


def _sender_problem(ctx: Ctx) -> str:
    try:
        normalise_sender(ctx.f("sender"))
    except ValueError:
        return ctx._(
            "The sender must be a number of up to 15 digits or a name of up to 11 characters: letters A-Z, digits, spaces and simple punctuation."
        )
    return ""


def _save_template(ctx: Ctx, save: Callable[..., object]) -> str:
    """Save the form's template with ``save(text=, name=, sender=)`` (creating or
    updating one); the error to show when the sender or the text is refused, else ""."""
    error = _sender_problem(ctx)
    if error:
        return error
    try:
        save(text=ctx.f("text"), name=ctx.f("name"), sender=normalise_sender(ctx.f("sender")))
    except ValueError:
        return ctx._("The text must contain {code} where the one-time code goes, and at most 480 characters.")
    return ""


def otp_templates(ctx: Ctx) -> Response:
    error = ""
    if ctx.request.method == "POST":
        error = _save_template(ctx, partial(otp.create_template, ctx.engine, ctx.account.id))
        if not error:
            return ctx.redirect("/otp-templates", m="template_created")
    return ctx.render(
        "otp_templates.html",
        status=400 if error else 200,
        templates=otp.list_templates(ctx.engine, ctx.account.id),
        error=error,
        notice=notice(ctx),
        form={"name": ctx.f("name"), "text": ctx.f("text"), "sender": ctx.f("sender")},
    )


def otp_template_edit(ctx: Ctx) -> Response:
    tpl = _template(ctx)
    error = ""
    if ctx.request.method == "POST":
        error = _save_template(ctx, partial(otp.update_template, ctx.engine, ctx.account.id, tpl.id))
        if not error:
            return ctx.redirect("/otp-templates", m="template_saved")
    return ctx.render("otp_edit.html", status=400 if error else 200, tpl=tpl, error=error)


def otp_template_delete(ctx: Ctx) -> Response:
    tpl = _template(ctx)
    otp.delete_template(ctx.engine, ctx.account.id, tpl.id)
    return ctx.redirect("/otp-templates", m="template_deleted")


# --- OTP protection (SMS pumping) -----------------------------------------------


def _country_namer(ctx: Ctx):
    """ISO code → the country's name in the page's language (Babel's CLDR data)."""
    names = Locale.parse(ctx.lang).territories

    def name(code: str) -> str:
        return names.get(code, code) if code != countries.NON_GEOGRAPHIC else ctx._("no single country")

    return name


def otp_protection(ctx: Ctx) -> Response:
    error = ""
    account = ctx.account
    if ctx.request.method == "POST":
        try:
            allowed, blocked = countries.parse(ctx.f("allowed")), countries.parse(ctx.f("blocked"))
        except countries.BadCountry as exc:
            error = ctx._(
                "These are not ISO country codes: %(codes)s. Use two letters, e.g. ES, VE, US.",
                codes=", ".join(exc.codes),
            )
        else:
            countries.set_lists(ctx.engine, account.id, allowed=allowed, blocked=blocked)
            return ctx.redirect("/otp-protection", m="countries_saved")
    s = ctx.settings
    lim, _ = guard.limits(ctx.engine, s, account.id)
    limits = [
        (ctx._("Per phone number"), lim.per_number, s.otp_send_window_seconds, "102"),
        (ctx._("Per number prefix"), lim.per_prefix, s.otp_limit_window_seconds, "154"),
        (ctx._("Per client address"), lim.per_address, s.otp_limit_window_seconds, "155"),
        (ctx._("For the whole account"), lim.per_account, s.otp_limit_window_seconds, "153"),
    ]
    form = {
        "allowed": ctx.f("allowed") if error else ", ".join(account.allowed_countries),
        "blocked": ctx.f("blocked") if error else ", ".join(account.blocked_countries),
    }
    return ctx.render(
        "otp_protection.html",
        status=400 if error else 200,
        error=error,
        form=form,
        allowed=account.allowed_countries,
        blocked=account.blocked_countries,
        pauses=guard.active_pauses(ctx.engine, account.id),
        country_name=_country_namer(ctx),
        limits=limits,
        prefix_digits=s.otp_prefix_digits,
        alarm_requests=s.otp_alarm_min_requests,
        alarm_minutes=s.otp_alarm_window_seconds // 60,
        alarm_percent=s.otp_alarm_min_verified_percent,
        notice=notice(ctx),
    )


def otp_resume(ctx: Ctx) -> Response:
    """Lift the alarm's pause of a prefix (the button of the notice)."""
    guard.lift(ctx.engine, ctx.account.id, ctx.f("prefix")[:20], by="account")
    return ctx.redirect(safe_next(ctx.f("next"), "/otp-protection"), m="prefix_resumed")


# --- SMS -------------------------------------------------------------------------


def sms(ctx: Ctx) -> Response:
    result = None
    code = ctx.q("result")
    if code in CODES:
        ids = [i for i in ctx.q("ids").split(",") if is_digits(i)][:200]
        result = {
            "code": code,
            "message": CODES[code].message,
            "ok": CODES[code].success,
            "ids": ids,
            "detail": ctx.q("detail")[:300],
        }
    return ctx.render(
        "sms.html",
        **history.listing(ctx, ctx.account.id),
        result=result,
        form={"from": ctx.q("from_"), "to": ctx.q("to_")},
    )


def sms_send(ctx: Ctx) -> Response:
    """The portal's send form goes through the API's own handler: one set of rules."""
    v = Variables()
    for name in ("from", "to", "text"):
        if ctx.form is not None and name in ctx.form:
            v.set(name, [ctx.form.get(name) or ""])
    # Pages run in a worker thread; the API handler is a coroutine (it hands its
    # writes to the group-commit writer on the event loop), so call it there.
    if inspect.iscoroutinefunction(endpoints.send_sms):
        result = anyio.from_thread.run(endpoints.send_sms, ctx.platform, ctx.account, v)
    else:
        result = endpoints.send_sms(ctx.platform, ctx.account, v)
    ids = result.fields.get("id", "")
    params = {"result": result.code, "ids": ids}
    if result.fields.get("detail"):
        params["detail"] = result.fields["detail"]
    return ctx.redirect("/sms", **params)


def sms_detail(ctx: Ctx) -> Response:
    raw = ctx.request.path_params["message_id"]
    row = history.one(ctx.engine, ctx.account.id, int(raw)) if is_digits(raw) and len(raw) < 18 else None
    if row is None:
        raise Refused(404)
    return ctx.render("sms_detail.html", m=row, state_label=history.state_label, state_group=history.state_group)


def sms_export(ctx: Ctx) -> Response:
    filters, _ = history.Filters.parse(ctx.request.query_params.get)
    rows = history.csv_rows(ctx.engine, ctx.account.id, filters)
    response = StreamingResponse(
        iterate_in_threadpool(rows),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="sms-{ctx.account.number}.csv"'},
    )
    return ctx.finish(response)


# --- rates -----------------------------------------------------------------------


def rates(ctx: Ctx) -> Response:
    plan_id = ctx.account.plan_id
    number = "".join(ch for ch in ctx.q("number") if ch.isdigit())[:20]
    destination = ctx.q("destination")[:100]
    page = ctx.page_number()
    applied = None
    total, rows = 0, []
    if plan_id is not None:
        if number:
            applied, rows = plans.rates_for_number(ctx.engine, plan_id, number)
            total = len(rows)
        else:
            total, rows = plans.search_rates(
                ctx.engine, plan_id, destination=destination, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
            )
    query = {k: v for k, v in {"number": number, "destination": destination}.items() if v}
    return ctx.render(
        "rates.html",
        rows=rows,
        total=total,
        page=page,
        number=number,
        destination=destination,
        applied=applied,
        pages=max(1, math.ceil(total / PAGE_SIZE)) if not number else 1,
        query=query,
        has_plan=plan_id is not None,
        plan=_plan_name(ctx),
    )


# --- documentation, settings, language -------------------------------------------


def documentation(ctx: Ctx) -> Response:
    return ctx.render(
        "docs.html",
        sections=docs.sections(ctx.base_url, ctx.account.number),
        api_base=f"{ctx.base_url}/api/get-api/v1/",
        codes=sorted(CODES.values(), key=lambda c: c.code),
    )


VTIGER_PROVIDER = Path(__file__).with_name("downloads") / "UVox.php"


def vtiger_provider(ctx: Ctx) -> Response:
    """The manual's "download our library" for Vtiger, pointing at this platform.

    The file in the repository defaults to the public my.unityvox.com; an operator's
    customers get a copy whose default address is this installation, so the Vtiger form's
    address field can stay empty.
    """
    code = VTIGER_PROVIDER.read_text(encoding="utf-8")
    base = ctx.base_url
    if base != "https://my.unityvox.com" and "'" not in base and "\\" not in base:
        code = code.replace("'https://my.unityvox.com'", "'%s'" % base)
        code = code.replace("(empty: https://my.unityvox.com)", "(empty: %s)" % base)
    return Response(
        code, media_type="application/x-php", headers={"Content-Disposition": 'attachment; filename="UVox.php"'}
    )


def settings_page(ctx: Ctx) -> Response:
    error = cap_error = alert_error = ""
    action = ctx.f("action")
    if ctx.request.method == "POST" and action in ("cap", "cap_remove"):
        cap_error = _save_cap(ctx, remove=action == "cap_remove")
        if not cap_error:
            return ctx.redirect("/settings#caps", m="cap_removed" if action == "cap_remove" else "cap_saved")
    elif ctx.request.method == "POST" and action == "alert":
        raw = ctx.f("threshold")
        try:
            threshold = parse_amount(raw) if raw else None
        except ValueError:
            alert_error = ctx._("Enter an amount such as 5.00 (at most 6 decimals, not negative), or leave it empty.")
        else:
            alerts.set_threshold(ctx.engine, ctx.account.id, threshold)
            return ctx.redirect("/settings#alert", m="alert_saved" if threshold is not None else "alert_removed")
    elif ctx.request.method == "POST":
        url = ctx.f("callback_url")
        if action == "rotate":
            accounts.set_callback(ctx.engine, ctx.account.id, ctx.account.callback_url, rotate_secret=True)
            return ctx.redirect("/settings", m="secret_rotated")
        if url and not accounts.callback_url_ok(url):
            error = ctx._("The callback URL must start with http:// or https://.")
        else:
            accounts.set_callback(ctx.engine, ctx.account.id, url or None)
            return ctx.redirect("/settings", m="settings_saved")
    callback_url, callback_secret = accounts.get_callback(ctx.engine, ctx.account.id)
    status = 400 if error or cap_error or alert_error else 200
    return ctx.render(
        "settings.html",
        status=status,
        callback_url=ctx.f("callback_url") or callback_url or "",
        callback_secret=callback_secret or "",
        error=error,
        notice=notice(ctx),
        caps=caps.statuses(ctx.engine, ctx.account.id),
        cap_error=cap_error,
        alert=alerts.get(ctx.engine, ctx.account.id),
        alert_error=alert_error,
        cap_services=CAP_SERVICES,
        cap_periods=CAP_PERIODS,
    )


#: How the portal names a cap's service and period (the API's words are sms, calls, all; day, month).
CAP_SERVICES = {"sms": N_("SMS and one-time codes"), "calls": N_("Calls"), "all": N_("SMS and calls together")}
CAP_PERIODS = {"day": N_("Per day"), "month": N_("Per month")}


def _save_cap(ctx: Ctx, *, remove: bool) -> str:
    """Set or remove one cap from the settings form; the error to show, or ""."""
    period = ctx.f("period")
    try:
        service, country = caps.parse_scope(ctx.f("service"), ctx.f("country"))
    except caps.BadCap:
        return ctx._("The country must be a two-letter code such as MX or US, or empty for every destination.")
    if period not in caps.PERIODS:
        return ctx._("Choose per day or per month.")
    amount = None
    if not remove:
        try:
            amount = parse_amount(ctx.f("amount"))
        except ValueError:
            return ctx._("Enter an amount such as 25.00 (at most 6 decimals, not negative).")
    caps.set_caps(ctx.engine, ctx.account.id, service, country, {period: amount})
    return ""


def set_language(ctx: Ctx) -> Response:
    from uvox.portal import i18n

    lang = ctx.request.path_params["lang"]
    if lang not in i18n.LANGUAGES:
        raise Refused(404)
    ctx.set_cookies.append((security.LANG_COOKIE, lang, {"max_age": 365 * 86400, "httponly": True}))
    return ctx.redirect(safe_next(ctx.q("next"), "/dashboard" if ctx.account else "/sign_in"))
