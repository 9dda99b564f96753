"""The request plumbing every portal page shares: language, session, CSRF, rendering.

A page is a plain function ``fn(ctx) -> Response`` run in the thread pool (the
domain services are synchronous SQLAlchemy); :func:`view` reads the form first,
then resolves who is signed in and refuses a POST without a valid CSRF token.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from uvox.accounts import sessions
from uvox.accounts.service import Account
from uvox.billing.money import show
from uvox.clock import aware
from uvox.dispatch import status
from uvox.limits import MAX_PORTAL_BODY, BodyTooLarge
from uvox.platform import Platform
from uvox.portal import i18n, security
from uvox.strings import is_digits

log = logging.getLogger("uvox.portal")

MAX_FORM_BYTES = MAX_PORTAL_BODY
CSP = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"  # a 100,000-row rate deck is about 4 MB


class Refused(Exception):
    """End the request with an error page (403/404/429...)."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def client_address(request: Request) -> str:
    # X-Forwarded-For is not trusted here: behind a proxy, run uvicorn with
    # --proxy-headers / forwarded_allow_ips so request.client is the real peer.
    return request.client.host if request.client else "unknown"


def is_secure(p: Platform, request: Request) -> bool:
    return (
        p.settings.secure_cookies
        or request.url.scheme == "https"
        or request.headers.get("x-forwarded-proto", "").split(",")[0].strip() == "https"
    )


def simulator_route(platform: Platform) -> bool:
    """uvox.dispatch.status.simulator_active, asked at most every 2 s per platform
    (``platform.simulator_route`` remembers the answer)."""
    remembered = platform.simulator_route
    active = remembered.get()
    if active is None:
        active = status.simulator_active(platform)
        remembered.put(active)
    return bool(active)


@dataclass
class Ctx:
    request: Request
    platform: Platform
    lang: str
    form: FormData | None
    account: Account | None
    session_token: str | None
    csrf_cookie: str
    set_cookies: list[tuple[str, str, dict]] = field(default_factory=list)
    delete_cookies: list[str] = field(default_factory=list)

    # --- helpers for pages ---
    @property
    def engine(self):
        return self.platform.engine

    @property
    def settings(self):
        return self.platform.settings

    def _(self, text: str, **kw) -> str:
        out = i18n.gettext_for(self.lang)(text)
        return out % kw if kw else out

    def f(self, name: str, default: str = "") -> str:
        if self.form is None:
            return default
        value = self.form.get(name)
        return value.strip() if isinstance(value, str) else default

    def q(self, name: str, default: str = "") -> str:
        return (self.request.query_params.get(name) or default).strip()

    def page_number(self) -> int:
        """The ``page`` of a paged list: 1 when missing or not a number, at most a million."""
        raw = self.q("page", "1")
        return max(1, min(int(raw), 10**6)) if is_digits(raw) else 1

    @property
    def csrf(self) -> str:
        return security.csrf_token(self.platform.secret, self.csrf_cookie)

    @property
    def simulator_route(self) -> bool:
        """Whether the SMSC simulator is a route now: every page then says so in a banner."""
        return simulator_route(self.platform)

    @property
    def base_url(self) -> str:
        return self.settings.public_url or str(self.request.base_url).rstrip("/")

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        env = i18n.environment(self.lang)
        html = env.get_template(template).render(
            ctx=self,
            account=self.account,
            lang=self.lang,
            languages=i18n.LANGUAGES,
            csrf=self.csrf,
            path=self.request.url.path,
            money=show,
            when=when,
            when_short=when_short,
            **values,
        )
        return self.finish(HTMLResponse(html, status_code=status))

    def redirect(self, url: str, **params: str) -> Response:
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params)
        return self.finish(RedirectResponse(url, status_code=303))

    def finish(self, response: Response) -> Response:
        secure = is_secure(self.platform, self.request)
        for name, value, opts in self.set_cookies:
            response.set_cookie(name, value, path="/", secure=secure, samesite="lax", **opts)
        for name in self.delete_cookies:
            response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="lax")
        response.headers.setdefault("cache-control", "no-store")
        response.headers.setdefault("x-frame-options", "DENY")
        response.headers.setdefault("x-content-type-options", "nosniff")
        response.headers.setdefault("referrer-policy", "same-origin")
        # Our pages load nothing from elsewhere and run no inline script.
        response.headers.setdefault("content-security-policy", CSP)
        return response

    def sign_in(self, account: Account) -> None:
        token = sessions.open_session(self.engine, account.id, client_address(self.request))
        self.session_token = token
        self.account = account
        self.set_cookies.append(
            (security.SESSION_COOKIE, token, {"httponly": True, "max_age": sessions.SESSION_DAYS * 86400})
        )

    def sign_out(self) -> None:
        sessions.close_session(self.engine, self.session_token)
        self.session_token = None
        self.account = None
        self.delete_cookies.append(security.SESSION_COOKIE)


def when_short(value) -> str:
    """For tables, where the column header says UTC."""
    return aware(value).strftime("%Y-%m-%d %H:%M") if value is not None else ""


def when(value) -> str:
    """Times are stored in UTC and shown in UTC, with the zone written out."""
    if value is None:
        return ""
    return aware(value).strftime("%Y-%m-%d %H:%M:%S") + " UTC"


def choose_language(request: Request) -> str:
    cookie = request.cookies.get(security.LANG_COOKIE)
    if cookie in i18n.LANGUAGES:
        return cookie
    return i18n.negotiate(request.headers.get("accept-language"))


_SAFE_NEXT = re.compile(r"/[A-Za-z0-9_\-/.?=&%]*")


def safe_next(value: str | None, default: str = "/dashboard") -> str:
    """Only local paths: an open redirect would make phishing links look like ours."""
    if value and _SAFE_NEXT.fullmatch(value) and not value.startswith("//"):
        return value
    return default


def view(fn: Callable[[Ctx], Response], *, auth: str = "customer") -> Callable:
    """Wrap a page. ``auth``: "none" (anyone), "customer" (signed in) or "staff"."""

    async def endpoint(request: Request) -> Response:
        form = None
        if request.method == "POST":
            # The body's size is limited as it arrives (uvox.limits, 413 above it).
            try:
                form = await request.form(max_part_size=MAX_FORM_BYTES)
            except BodyTooLarge:
                raise
            except Exception:
                form = FormData()
            # Uploaded files are read here, on the event loop; pages get bytes. The
            # form's temporary files are closed at once rather than by the collector.
            files = {}
            try:
                for k, v in form.multi_items():
                    if not isinstance(v, str):
                        files[k] = await v.read()
            finally:
                await form.close()
            request.state.files = files
        return await run_in_threadpool(_run, fn, request, form, auth)

    endpoint.__name__ = getattr(fn, "__name__", "page")
    return endpoint


def _run(fn, request: Request, form, auth: str) -> Response:
    platform: Platform = request.app.state.platform
    lang = choose_language(request)
    token = request.cookies.get(security.SESSION_COOKIE)
    account = sessions.session_account(platform.engine, token)
    csrf_cookie = request.cookies.get(security.CSRF_COOKIE) or ""
    ctx = Ctx(request, platform, lang, form, account, token if account else None, csrf_cookie)
    if not csrf_cookie:
        ctx.csrf_cookie = security.new_csrf_cookie()
        ctx.set_cookies.append((security.CSRF_COOKIE, ctx.csrf_cookie, {"httponly": True}))
    try:
        if request.method == "POST" and not security.csrf_ok(platform.secret, csrf_cookie, ctx.f("csrf_token")):
            raise Refused(403, ctx._("This form has expired. Please reload the page and try again."))
        if auth in ("customer", "staff") and account is None:
            if request.method == "GET":
                return ctx.redirect(
                    "/sign_in", next=request.url.path + (("?" + request.url.query) if request.url.query else "")
                )
            return ctx.redirect("/sign_in")
        if auth == "staff" and not account.is_staff:
            # Not "forbidden": customers need not learn that an operator area exists.
            raise Refused(404)
        return fn(ctx)
    except Refused as exc:
        message = exc.message or {
            404: ctx._("This page does not exist, or it is not yours to see."),
            403: ctx._("You cannot do this."),
        }.get(exc.status, ctx._("Something went wrong."))
        return ctx.render("error.html", status=exc.status, message=message, status_code=exc.status)
    except Exception:
        # A bug must not show a traceback (nor a half-rendered page with someone's data).
        log.exception("portal page %s %s failed", request.method, request.url.path)
        return ctx.render("error.html", status=500, message=ctx._("Something went wrong."), status_code=500)
