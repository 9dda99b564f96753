"""HTTP endpoints softphones call. Thin: read variables, call service, format.

Paths (configure them in Zoiper's OEM "Configure options" / Acrobits account XML):
  GET /prov/<token>                       Linphone remote provisioning (lpconfig XML), once
  GET /prov/<token>/qr.png                QR code of that provisioning URL (for the portal)
  GET /softphone/zoiper/token?t=<token>   Zoiper "Token URL" (configure ``.../token?t=``), once
  GET /softphone/zoiper/balance?u=${USERNAME}&p=${PASSWORD}
  GET /softphone/zoiper/rate?u=${USERNAME}&p=${PASSWORD}&d=${DESTINATION}
  GET /softphone/acrobits/balance?username=%account[username]%&password=%account[password]%
  GET /softphone/acrobits/rate?username=...&password=...&targetNumber=%targetNumber%
POST works as well as GET. Wrong SIP credentials: 401; used or expired token: 404.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from uvox.config import Settings

from . import formats, qr, service

XML = "application/xml; charset=utf-8"
JSON = "application/json; charset=utf-8"
NO_STORE = {"Cache-Control": "no-store"}


async def _vars(request: Request) -> dict[str, str]:
    """Query string, overridden by a form body (POST) if any."""
    values = dict(request.query_params)
    if request.method == "POST":
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            values.update({k: v for k, v in form.items() if isinstance(v, str)})
            await form.close()  # a file part's temporary file: no variable of ours is a file
    return values


def _pick(values: dict[str, str], *names: str) -> str:
    for n in names:
        v = values.get(n)
        if v:
            return v.strip()
    return ""


def _xml(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type=XML, headers=NO_STORE)


def _json(body: str, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type=JSON, headers=NO_STORE)


def public_base(settings: Settings, request: Request) -> str:
    return settings.public_url or str(request.base_url).rstrip("/")


def sip_proxy(settings: Settings) -> str | None:
    """``UVOX_SIP_PROXY`` (host[:port]): where phones send SIP when the SIP domain
    itself does not resolve to Kamailio (no DNS records yet, a LAN test)."""
    return settings.sip_proxy or None


def routes(get_engine: Callable, settings: Settings) -> list[Route]:
    """Starlette routes of the softphone URLs. ``get_engine()`` returns the Engine."""

    async def linphone_provisioning(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            sip, ha1 = await run_in_threadpool(service.redeem_linphone_token, get_engine(), token)
        except service.InvalidToken as exc:
            return _xml(formats.error_xml(str(exc)), 404)
        return _xml(
            formats.linphone_lpconfig_xml(
                username=sip.username,
                ha1=ha1,
                domain=sip.domain,
                transport=sip.transport,
                caller_id=sip.caller_id or None,
                proxy=sip_proxy(settings),
            )
        )

    async def linphone_qr(request: Request) -> Response:
        token = request.path_params["token"]
        if not await run_in_threadpool(service.token_is_valid, get_engine(), token, "linphone"):
            return Response("unknown, used or expired provisioning code\n", 404, media_type="text/plain")
        url = f"{public_base(settings, request)}/prov/{token}"
        return Response(qr.qr_png(url), media_type="image/png", headers=NO_STORE)

    async def zoiper_token(request: Request) -> Response:
        values = await _vars(request)
        token = request.path_params.get("token") or _pick(values, "t", "token", "id")
        try:
            creds = await run_in_threadpool(service.redeem_zoiper_token, get_engine(), token)
        except service.InvalidToken as exc:
            return _xml(formats.error_xml(str(exc)), 404)
        a = creds.account
        return _xml(
            formats.zoiper_account_xml(
                username=a.username,
                password=creds.password,
                domain=a.domain,
                transport=a.transport,
                caller_id=a.caller_id or None,
                proxy=sip_proxy(settings),
            )
        )

    async def _auth(values: dict[str, str], user_keys, pass_keys):
        return await run_in_threadpool(
            service.authenticate,
            get_engine(),
            _pick(values, *user_keys),
            _pick(values, *pass_keys),
            settings.sip_domain,
        )

    async def zoiper_balance(request: Request) -> Response:
        values = await _vars(request)
        user = await _auth(values, ("u", "username"), ("p", "password"))
        if user is None:
            return _xml(formats.error_xml("wrong SIP username or password"), 401)
        return _xml(formats.zoiper_balance_xml(currency=service.iso_currency(user.currency), amount=user.available))

    async def zoiper_rate(request: Request) -> Response:
        values = await _vars(request)
        destination = _pick(values, "d", "destination")
        if not service.destination_digits(destination):
            return _xml(formats.error_xml("missing or invalid destination"), 400)
        user = await _auth(values, ("u", "username"), ("p", "password"))
        if user is None:
            return _xml(formats.error_xml("wrong SIP username or password"), 401)
        rate = await run_in_threadpool(service.rate_for, get_engine(), user.plan_id, destination)
        if rate is None:
            return _xml(formats.error_xml("no rate for this destination"), 404)
        return _xml(formats.zoiper_rate_xml(currency=service.iso_currency(user.currency), price=rate.price_per_minute))

    async def acrobits_balance(request: Request) -> Response:
        values = await _vars(request)
        user = await _auth(values, ("username", "u"), ("password", "p"))
        if user is None:
            return JSONResponse({"error": "wrong SIP username or password"}, 401, headers=NO_STORE)
        return _json(formats.acrobits_balance_json(currency=service.iso_currency(user.currency), amount=user.available))

    async def acrobits_rate(request: Request) -> Response:
        values = await _vars(request)
        destination = _pick(values, "targetNumber", "destination", "d")
        if not service.destination_digits(destination):
            return JSONResponse({"error": "missing or invalid targetNumber"}, 400, headers=NO_STORE)
        user = await _auth(values, ("username", "u"), ("password", "p"))
        if user is None:
            return JSONResponse({"error": "wrong SIP username or password"}, 401, headers=NO_STORE)
        rate = await run_in_threadpool(service.rate_for, get_engine(), user.plan_id, destination)
        if rate is None:
            return JSONResponse({"error": "no rate for this destination"}, 404, headers=NO_STORE)
        return _json(
            formats.acrobits_rate_json(
                currency=service.iso_currency(user.currency),
                call_price=rate.price_per_minute,
                message_price=rate.sms_price,
            )
        )

    methods = ["GET", "POST"]
    return [
        Route("/prov/{token}/qr.png", linphone_qr, methods=["GET"]),
        Route("/prov/{token}", linphone_provisioning, methods=methods),
        Route("/softphone/zoiper/token", zoiper_token, methods=methods),
        Route("/softphone/zoiper/token/{token}", zoiper_token, methods=methods),
        Route("/softphone/zoiper/balance", zoiper_balance, methods=methods),
        Route("/softphone/zoiper/rate", zoiper_rate, methods=methods),
        Route("/softphone/acrobits/balance", acrobits_balance, methods=methods),
        Route("/softphone/acrobits/rate", acrobits_rate, methods=methods),
    ]
