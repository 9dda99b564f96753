"""The portal's URLs, collected by uvox.app.create_app next to the API.

No session middleware: each page reads its own cookies (uvox.portal.web), so the
API under /api never sees portal machinery. Addresses follow the manual
(``/sign_in``, ``/sign_up``).

Softphone pages (SIP accounts, QR codes) are uvox.portal.softphone, a front end
over uvox.softphone.service (templates in ``uvox/softphone/templates``, extending
``base.html``).
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from uvox.platform import Platform
from uvox.portal import calls as calls_page
from uvox.portal import console, softphone
from uvox.portal import customer as c
from uvox.portal import operator as o
from uvox.portal.i18n import HERE
from uvox.portal.web import view

GET = ["GET"]
BOTH = ["GET", "POST"]
POST = ["POST"]


def routes(platform: Platform) -> list[BaseRoute]:
    out: list[BaseRoute] = [
        Mount("/static/portal", app=StaticFiles(directory=str(HERE / "static")), name="portal-static"),
        Route("/sign_up", view(c.sign_up, auth="none"), methods=BOTH),
        Route("/sign_in", view(c.sign_in, auth="none"), methods=BOTH),
        Route("/sign_out", view(c.sign_out, auth="none"), methods=POST),
        Route("/lang/{lang}", view(c.set_language, auth="none"), methods=GET),
        Route("/password", view(c.password), methods=BOTH),
        Route("/dashboard", view(c.dashboard), methods=GET),
        Route("/apikeys", view(c.api_keys), methods=BOTH),
        Route("/apikeys/{key_id:int}/revoke", view(c.revoke_key), methods=POST),
        Route("/otp-templates", view(c.otp_templates), methods=BOTH),
        Route("/otp-templates/{template_id:int}", view(c.otp_template_edit), methods=BOTH),
        Route("/otp-templates/{template_id:int}/delete", view(c.otp_template_delete), methods=POST),
        Route("/otp-protection", view(c.otp_protection), methods=BOTH),
        Route("/otp-protection/resume", view(c.otp_resume), methods=POST),
        Route("/sms", view(c.sms), methods=GET),
        Route("/sms/send", view(c.sms_send), methods=POST),
        Route("/sms/export.csv", view(c.sms_export), methods=GET),
        Route("/sms/{message_id}", view(c.sms_detail), methods=GET),
        Route("/calls", view(calls_page.calls), methods=GET),
        Route("/calls/export.csv", view(calls_page.calls_export), methods=GET),
        Route("/rates", view(c.rates), methods=GET),
        Route("/documentation", view(c.documentation), methods=GET),
        Route("/documentation/vtiger/UVox.php", view(c.vtiger_provider), methods=GET),
        Route("/settings", view(c.settings_page), methods=BOTH),
        Route("/operator", view(o.customers, auth="staff"), methods=GET),
        Route("/operator/overview", view(console.overview, auth="staff"), methods=GET),
        Route("/operator/customers/{account_id:int}", view(o.customer, auth="staff"), methods=BOTH),
        Route("/operator/plans", view(o.plan_list, auth="staff"), methods=BOTH),
        Route("/operator/connectors", view(o.connectors, auth="staff"), methods=GET),
        Route("/operator/messages", view(o.messages, auth="staff"), methods=GET),
    ]
    return out + softphone.pages(platform)
