"""Documents the softphones read: Zoiper XML, Linphone lpconfig XML, Acrobits JSON.

Built with ElementTree / json so that every value is escaped; the shapes follow
each vendor's published provisioning documentation:
- Zoiper OEM "Token URL": ``<options><accounts><account>`` with ``username``,
  ``password`` and ``authentication_username`` (the three tags Zoiper documents),
  plus the SIP domain, transport and caller id in Zoiper's configuration tags.
- Zoiper "Balance URL": ``<balance><currency/><amount/></balance>``;
  "Rate URL": ``<rate><currency/><price/></rate>`` (price per minute).
- Linphone remote provisioning: an lpconfig document with ``proxy_0`` and
  ``auth_info_0`` sections (``ha1`` instead of a password) and
  ``misc/transient_provisioning`` (the URL is single-use). Checked against a
  real liblinphone in tests/softphone/test_linphone.py.
- Acrobits balance checker (``balanceString``, ``balance``, ``currency``) and
  rate checker (``callRateString``, ``messageRateString``).
"""

from __future__ import annotations

import json
from decimal import Decimal
from xml.etree import ElementTree as ET

LPCONFIG_NS = "http://www.linphone.org/xsds/lpconfig.xsd"

# Zoiper's transport numbering (QR ``tr=``) and names.
ZOIPER_TRANSPORT_CODE = {"udp": "0", "tcp": "1", "tls": "2"}


def _xml(root: ET.Element) -> bytes:
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True)


def _sub(parent: ET.Element, tag: str, text: str | None) -> ET.Element:
    el = ET.SubElement(parent, tag)
    el.text = "" if text is None else str(text)
    return el


def money(amount: Decimal, places: int = 2) -> str:
    """Decimal to a fixed-point string, never through float."""
    q = Decimal(1).scaleb(-places)
    return str(Decimal(amount).quantize(q))


def rate_text(price: Decimal) -> str:
    """A rate keeps its own precision (rates are often 4-5 decimals) but at least 2."""
    price = Decimal(price).normalize()
    exp = -price.as_tuple().exponent if price.as_tuple().exponent < 0 else 0
    return money(price, max(2, exp))


def zoiper_account_xml(
    *,
    username: str,
    password: str,
    domain: str,
    transport: str,
    caller_id: str | None = None,
    proxy: str | None = None,
) -> bytes:
    """Answer to Zoiper's Token URL call."""
    root = ET.Element("options")
    account = ET.SubElement(ET.SubElement(root, "accounts"), "account")
    _sub(account, "username", username)
    _sub(account, "password", password)
    _sub(account, "authentication_username", username)
    _sub(account, "SIP_domain", domain)
    _sub(account, "SIP_transport_type", transport.lower())
    if proxy:
        _sub(account, "SIP_use_outbound_proxy", "1")
        _sub(account, "SIP_outbound_proxy", proxy)
    if caller_id:
        _sub(account, "callerid", caller_id)
    return _xml(root)


def zoiper_balance_xml(*, currency: str, amount: Decimal) -> bytes:
    root = ET.Element("balance")
    _sub(root, "currency", currency)
    _sub(root, "amount", money(amount))
    return _xml(root)


def zoiper_rate_xml(*, currency: str, price: Decimal) -> bytes:
    root = ET.Element("rate")
    _sub(root, "currency", currency)
    _sub(root, "price", rate_text(price))
    return _xml(root)


def error_xml(message: str) -> bytes:
    root = ET.Element("error")
    _sub(root, "message", message)
    return _xml(root)


def sip_uri(host: str, transport: str, user: str | None = None) -> str:
    who = f"{user}@" if user else ""
    return f"sip:{who}{host};transport={transport.lower()}"


def linphone_lpconfig_xml(
    *,
    username: str,
    ha1: str,
    domain: str,
    transport: str,
    caller_id: str | None = None,
    proxy: str | None = None,
) -> bytes:
    """Linphone remote provisioning document for one SIP account.

    Linphone accepts ``ha1`` in ``auth_info``, so the password never leaves
    the platform; ``realm`` must then be the SIP domain (Kamailio's realm).
    """
    ET.register_namespace("", LPCONFIG_NS)
    root = ET.Element(f"{{{LPCONFIG_NS}}}config")

    def section(name: str, entries: list[tuple[str, str]]) -> None:
        sec = ET.SubElement(root, f"{{{LPCONFIG_NS}}}section", name=name, overwrite="true")
        for key, value in entries:
            e = ET.SubElement(sec, f"{{{LPCONFIG_NS}}}entry", name=key, overwrite="true")
            e.text = value

    display = f'"{caller_id}" ' if caller_id else ""
    section(
        "proxy_0",
        [
            ("reg_proxy", f"<{sip_uri(proxy or domain, transport)}>"),
            # Linphone's "outbound proxy": every request (INVITE too, not only REGISTER)
            # goes through Kamailio, so calls work where the SIP domain has no DNS.
            ("reg_route", f"<{sip_uri(proxy or domain, transport)};lr>"),
            ("reg_identity", f"{display}<sip:{username}@{domain}>"),
            ("reg_expires", "3600"),
            ("reg_sendregister", "1"),
            ("realm", domain),
        ],
    )
    section(
        "auth_info_0",
        [
            ("username", username),
            ("userid", username),
            ("ha1", ha1),
            ("realm", domain),
            ("domain", domain),
            ("algorithm", "MD5"),
        ],
    )
    # The URL holds a single-use code: liblinphone keeps ``misc/config-uri``
    # and fetches it again at every start unless told the provisioning was
    # transient; a spent code would then fail each time (404, "provisioning failed").
    section("misc", [("transient_provisioning", "1")])
    return _xml(root)


def acrobits_balance_json(*, currency: str, amount: Decimal) -> str:
    """Acrobits balance checker reply. ``balance`` is a JSON number as Acrobits
    expects; it is written from the Decimal's text, never via float."""
    text = money(amount)
    return (
        '{"balanceString": '
        + json.dumps(f"{text} {currency}")
        + ', "balance": '
        + text
        + ', "currency": '
        + json.dumps(currency)
        + "}"
    )


def acrobits_rate_json(*, currency: str, call_price: Decimal | None, message_price: Decimal | None) -> str:
    doc = {}
    if call_price is not None:
        doc["callRateString"] = f"{rate_text(call_price)} {currency}/min"
    if message_price is not None:
        doc["messageRateString"] = f"{rate_text(message_price)} {currency}"
    return json.dumps(doc)
