"""QR codes and QR URLs for softphone provisioning.

Linphone's QR is rendered here with segno (fully self-hosted). Zoiper's QR
must come from Zoiper's OEM service, which embeds the operator's OEM settings
(Token URL, Balance URL, Rate URL) in the code; the platform only builds the
image URL, with user and password left empty and the single-use token in ``t``.
"""

from __future__ import annotations

import io
from urllib.parse import urlencode

import segno

from .formats import ZOIPER_TRANSPORT_CODE

ZOIPER_QR_BASE = "https://oem.zoiper.com/qr.php"


def zoiper_qr_url(*, provider_id: str, token: str, domain: str, transport: str) -> str:
    query = urlencode(
        {
            "provider_id": provider_id,
            "u": "",
            "p": "",
            "t": token,
            "h": domain,
            "tr": ZOIPER_TRANSPORT_CODE[transport.lower()],
        }
    )
    return f"{ZOIPER_QR_BASE}?{query}"


def qr_png(data: str, scale: int = 6) -> bytes:
    buf = io.BytesIO()
    segno.make(data, error="m", micro=False).save(buf, kind="png", scale=scale, border=4)
    return buf.getvalue()


def qr_svg(data: str, scale: int = 4) -> str:
    buf = io.BytesIO()
    segno.make(data, error="m", micro=False).save(buf, kind="svg", scale=scale, border=4, xmldecl=False)
    return buf.getvalue().decode("utf-8")


def qr_data_uri(data: str) -> str:
    """A PNG data: URI, handy for an <img> in a portal page."""
    return segno.make(data, error="m", micro=False).png_data_uri(scale=6, border=4)
