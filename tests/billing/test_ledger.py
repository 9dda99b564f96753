"""The ledger: concurrent sends never overspend; the balance is the ledger's sum."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import pytest

from uvox.billing import ledger
from uvox.billing.money import parse_amount, show


def test_64_concurrent_sends_charge_exactly_n(base_url, make_customer, platform):
    n = 20
    c = make_customer(balance=str(Decimal("0.0080") * n))  # exactly n messages to +1305

    def send(i: int) -> str:
        with httpx.Client(base_url=base_url, timeout=60) as h:
            r = h.post("/api/get-api/v1/sms-api", data={**c.auth, "to": f"1305555{i:04d}", "text": "race"})
            return r.json()["code"]

    with ThreadPoolExecutor(64) as pool:
        codes = list(pool.map(send, range(64)))
    assert codes.count("005") == n
    assert codes.count("009") == 64 - n
    cached, total = ledger.audit(platform.engine, c.id)
    assert cached == total == Decimal(0)


def test_audit_matches_after_topups_charges_refunds(platform, make_customer, http):
    from uvox.billing.service import topup
    from uvox.db.session import write

    c = make_customer(balance="1")
    ids = [
        http.get("/api/get-api/v1/sms-api", params={**c.auth, "to": "56912345678", "text": "x"}).json()["id"]
        for _ in range(3)
    ]
    topup(platform.engine, c.id, Decimal("2.5"))
    with write(platform.engine) as conn:
        assert ledger.refund_message(conn, int(ids[0])) is True
        assert ledger.refund_message(conn, int(ids[0])) is False  # never twice
    cached, total = ledger.audit(platform.engine, c.id)
    assert cached == total == Decimal("1") - 3 * Decimal("0.03") + Decimal("2.5") + Decimal("0.03")
    kinds = [r["kind"] for r in ledger.history(platform.engine, c.id)]
    assert kinds.count("charge") == 3 and kinds.count("refund") == 1 and kinds.count("topup") == 2


@pytest.mark.parametrize("raw,expected", [("10", "10"), ("10.50", "10.50"), ("0.0285", "0.0285"), ("1,5", "1.5")])
def test_parse_amount(raw, expected):
    assert parse_amount(raw) == Decimal(expected)


@pytest.mark.parametrize("raw", ["abc", "NaN", "Infinity", "-1", "0.0000001", "1e30", ""])
def test_parse_amount_refuses(raw):
    with pytest.raises(ValueError):
        parse_amount(raw)


def test_parse_amount_never_takes_float():
    with pytest.raises(ValueError):
        parse_amount(0.1)


def test_show():
    assert show(Decimal("100")) == "100.00"
    assert show(Decimal("99.9925")) == "99.9925"
    assert show(Decimal("0.0285"), 5) == "0.02850"
