"""The customer portal's "Softphone" section (manual: "Softphone" / Zoiper).

A front end over uvox.softphone.service, in the portal because it is one (it was
uvox.softphone.portal, and softphone and portal imported each other). Pages use the
portal's plumbing (uvox.portal.web: session, CSRF, language, security headers) and
its base.html; their templates and Spanish strings stay in the softphone package,
next to the feature, and that gettext catalogue falls back to the portal's.
"""

from __future__ import annotations

import gettext
from functools import cache
from pathlib import Path

from jinja2 import ChoiceLoader, Environment, FileSystemLoader
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from uvox import softphone
from uvox.billing.money import show
from uvox.portal import i18n as portal_i18n
from uvox.portal.web import Ctx, Refused, view, when
from uvox.softphone import service

HERE = Path(softphone.__file__).resolve().parent
N_ = lambda s: s  # noqa: E731  (marks a string for translation)

NOTICES = {
    "renamed": N_("The name has been saved."),
    "deleted": N_("The SIP account has been deleted. Its phones can no longer register."),
}


@cache
def _translations(lang: str) -> gettext.NullTranslations:
    mine = portal_i18n.load_catalogue(HERE / "locale", lang)
    mine.add_fallback(portal_i18n.translations(lang))
    return mine


@cache
def _env(lang: str) -> Environment:
    loader = ChoiceLoader([FileSystemLoader(str(HERE / "templates")), FileSystemLoader(str(portal_i18n.TEMPLATES))])
    return portal_i18n.make_environment(loader, _translations(lang))


def _(ctx: Ctx, text: str, **kw) -> str:
    out = _translations(ctx.lang).gettext(text)
    return out % kw if kw else out


def _render(ctx: Ctx, template: str, status: int = 200, **values) -> HTMLResponse:
    html = (
        _env(ctx.lang)
        .get_template(template)
        .render(
            ctx=ctx,
            account=ctx.account,
            lang=ctx.lang,
            languages=portal_i18n.LANGUAGES,
            csrf=ctx.csrf,
            path=ctx.request.url.path,
            money=show,
            when=when,
            **values,
        )
    )
    return ctx.finish(HTMLResponse(html, status_code=status))


def _sip(ctx: Ctx) -> service.SipAccount:
    try:
        return service.get_sip_account(ctx.engine, ctx.account.id, int(ctx.request.path_params["sip_id"]))
    except service.SipAccountNotFound:
        raise Refused(404) from None


def _list(ctx: Ctx, error: str = "", status: int = 200) -> Response:
    key = ctx.q("m")
    return _render(
        ctx,
        "sip_accounts.html",
        status=status,
        error=error,
        notice=_(ctx, NOTICES[key]) if key in NOTICES else "",
        sips=service.list_sip_accounts(ctx.engine, ctx.account.id),
        transports=[t.upper() for t in service.credentials.TRANSPORTS],
        zoiper=bool(ctx.settings.zoiper_provider_id),
    )


def sip_accounts(ctx: Ctx) -> Response:
    """GET: the list and the form; POST: create, then show the password once."""
    if ctx.request.method == "POST":
        try:
            creds = service.create_sip_account(
                ctx.engine,
                ctx.account.id,
                domain=ctx.settings.sip_domain,
                label=ctx.f("label"),
                transport=ctx.f("transport") or "udp",
                caller_id=ctx.f("caller_id"),
            )
        except service.InvalidSipInput as exc:
            return _list(ctx, error=_(ctx, str(exc)), status=400)
        return _render(ctx, "sip_credentials.html", creds=creds, title=_(ctx, "Your new SIP account"))
    return _list(ctx)


def rename(ctx: Ctx) -> Response:
    sip = _sip(ctx)
    try:
        service.rename_sip_account(ctx.engine, ctx.account.id, sip.id, ctx.f("label"))
    except service.InvalidSipInput as exc:
        return _list(ctx, error=_(ctx, str(exc)), status=400)
    return ctx.redirect("/softphone", m="renamed")


def reset(ctx: Ctx) -> Response:
    sip = _sip(ctx)
    creds = service.reset_sip_password(ctx.engine, ctx.account.id, sip.id)
    return _render(ctx, "sip_credentials.html", creds=creds, title=_(ctx, "New password"))


def delete(ctx: Ctx) -> Response:
    sip = _sip(ctx)
    service.delete_sip_account(ctx.engine, ctx.account.id, sip.id)
    return ctx.redirect("/softphone", m="deleted")


def qr(ctx: Ctx) -> Response:
    """POST (not GET) because each view mints fresh single-use codes."""
    sip = _sip(ctx)
    prov = service.provision_device(
        ctx.engine,
        ctx.account.id,
        sip.id,
        base_url=ctx.base_url,
        zoiper_provider_id=ctx.settings.zoiper_provider_id,
    )
    return _render(ctx, "sip_qr.html", sip=sip, prov=prov, minutes=prov.expires_in_seconds // 60, base_url=ctx.base_url)


def pages(platform) -> list[BaseRoute]:
    return [
        Route("/softphone", view(sip_accounts), methods=["GET", "POST"]),
        Route("/softphone/{sip_id:int}/rename", view(rename), methods=["POST"]),
        Route("/softphone/{sip_id:int}/reset", view(reset), methods=["POST"]),
        Route("/softphone/{sip_id:int}/delete", view(delete), methods=["POST"]),
        Route("/softphone/{sip_id:int}/qr", view(qr), methods=["POST"]),
    ]
