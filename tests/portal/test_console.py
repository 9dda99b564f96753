"""The console's charts in headless Chromium, on SQLite and PostgreSQL: the customer's
dashboard and the operator's overview show SVG charts whose tables hold exactly the
figures the test made, at desktop and phone widths, without horizontal scrolling.

The messages are sent through the real API; what the test cannot wait for (a day to
pass, a carrier's receipts) it writes into the rows as the platform would have:
three messages moved to yesterday with their charges, and receipts for today's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.portal.conftest import PASSWORD, shot, sign_in
from uvox.db import schema as t

MIAMI = ["13055550100", "13055550101", "13055550102", "13055550103", "13055550104"]  # USA Miami, 0.0080 each
CHILE = ["56911112221", "56911112222", "56911112223"]  # Chile, 0.0300 each


def _send(http, customer, numbers: list[str]) -> list[int]:
    r = http.post("/api/get-api/v1/sms-api", data={**customer.auth, "to": ",".join(numbers), "text": "Hola"})
    body = r.json()
    results = body.get("results") or [body]
    assert all(x["code"] == "005" for x in results), body
    return [int(x["id"]) for x in results]


def _move(platform, ids: list[int], when: datetime) -> None:
    """These messages and their charges happened at ``when``."""
    with platform.engine.begin() as conn:
        conn.execute(sa.update(t.messages).where(t.messages.c.id.in_(ids)).values(created_at=when, updated_at=when))
        conn.execute(sa.update(t.ledger).where(t.ledger.c.message_id.in_(ids)).values(created_at=when))


@pytest.fixture
def traffic(platform, http, make_customer):
    """One message 40 days ago (outside every chart), three to Chile yesterday, still
    queued; five to Miami today through connector carrier-a, four delivered."""
    from uvox.accounts import service

    c = make_customer(balance="10", password=PASSWORD)
    staff = service.create_account(platform.engine, email="ops-console@example.com", password=PASSWORD, is_staff=True)
    now = datetime.now(UTC)
    old = _send(http, c, ["34911000000"])
    _move(platform, old, now - timedelta(days=40))
    _move(platform, _send(http, c, CHILE), now - timedelta(days=1))
    miami = _send(http, c, MIAMI)
    with platform.engine.begin() as conn:
        m = t.messages
        conn.execute(sa.update(m).where(m.c.id.in_(miami)).values(state="delivered", connector="carrier-a"))
        conn.execute(sa.update(m).where(m.c.id == miami[-1]).values(state="undelivered"))
        conn.execute(sa.update(m).where(m.c.id.in_(old)).values(state="delivered", connector="carrier-a"))
    return {
        "customer": c,
        "staff": staff,
        "today": now.date().isoformat(),
        "yesterday": (now - timedelta(days=1)).date().isoformat(),
    }


def numbers(page, chart: str) -> dict[str, list[str]]:
    """The table under a chart, opened as a person would: {first cell: the others}."""
    page.click(f"#chart-{chart} details.numbers summary")
    table = page.locator(f"#chart-{chart} details.numbers table")
    assert table.is_visible()
    assert table.locator("caption").inner_text().strip()
    rows = page.eval_on_selector_all(
        f"#chart-{chart} details.numbers tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))"
    )
    return {r[0]: r[1:] for r in rows}


def _bar_heights(page, chart: str) -> list[float]:
    return page.eval_on_selector_all(
        f"#chart-{chart} svg rect.bar", "bars => bars.map(b => parseFloat(b.getAttribute('height')))"
    )


def _no_overflow(page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, (page.url, overflow)


def test_dashboard_charts_show_the_customers_figures(platform, new_page, base_url, traffic):
    page = new_page(base_url, locale="en-US")
    sign_in(page, traffic["customer"].email)
    for chart in ("messages", "spend", "delivery"):
        assert page.locator(f"#chart-{chart} svg.chart-svg[role=img]").count() == 1, chart
    # Two days with messages: two bars, today's 5/3 of yesterday's.
    heights = _bar_heights(page, "messages")
    assert len(heights) == 2 and abs(heights[1] / heights[0] - 5 / 3) < 0.01, heights
    messages = numbers(page, "messages")
    assert len(messages) == 30 and list(messages)[-1] == traffic["today"]
    assert messages[traffic["today"]] == ["5", "5"] and messages[traffic["yesterday"]] == ["3", "3"]
    assert sum(int(v[0]) for v in messages.values()) == 8  # not the one of 40 days ago
    spend = numbers(page, "spend")
    assert spend[traffic["today"]] == ["0.04", "0.00", "0.04"]
    assert spend[traffic["yesterday"]] == ["0.09", "0.00", "0.09"]
    assert page.locator("#chart-spend figcaption").inner_text() == "Spend per day (US$)"
    delivery = numbers(page, "delivery")
    assert delivery == {"USA Miami": ["5", "4", "1", "0", "80.0 %"], "Chile": ["3", "0", "0", "3", "—"]}
    # Voice needs PostgreSQL: the minutes chart is there only where calls can be made.
    assert page.locator("#chart-minutes").count() == (1 if platform.settings.is_postgres else 0)
    shot(page, f"console-desktop-dashboard-{platform.engine.dialect.name}")
    phone = new_page(base_url, locale="es-ES", width=390, height=844)
    sign_in(phone, traffic["customer"].email)
    assert phone.locator("#chart-messages figcaption").inner_text() == "Mensajes por día"
    assert numbers(phone, "messages")[traffic["today"]] == ["5", "5"]
    _no_overflow(phone)
    shot(phone, f"console-phone-dashboard-{platform.engine.dialect.name}")


def test_operator_overview_charts(platform, new_page, base_url, traffic):
    page = new_page(base_url, locale="en-US")
    sign_in(page, "ops-console@example.com")
    page.click("#sidenav a[href='/operator/overview']")
    page.wait_for_url("**/operator/overview")
    assert page.locator("h1").inner_text() == "Overview"
    for chart in ("traffic", "revenue-1", "connectors", "queue"):
        assert page.locator(f"#chart-{chart} svg.chart-svg").count() == 1, chart
    traffic_rows = numbers(page, "traffic")
    assert traffic_rows[traffic["today"]] == ["5", "5"] and traffic_rows[traffic["yesterday"]] == ["3", "3"]
    revenue = numbers(page, "revenue-1")
    assert revenue[traffic["today"]] == ["0.04", "0.00", "0.04"]
    assert revenue[traffic["yesterday"]] == ["0.09", "0.00", "0.09"]
    assert numbers(page, "connectors") == {
        "carrier-a": ["5", "4", "1", "0", "20.0 %"],
        "Not routed": ["3", "0", "0", "3", "—"],
    }
    assert numbers(page, "queue") == {
        "Waiting for balance": ["0"],
        "Queued": ["3"],
        "Being submitted": ["0"],
        "Awaiting receipt": ["0"],
    }
    assert "The oldest queued message has waited" in page.locator("#chart-queue").inner_text()
    shot(page, f"console-desktop-operator-{platform.engine.dialect.name}")
    phone = new_page(base_url, locale="es-ES", width=390, height=844)
    sign_in(phone, "ops-console@example.com")
    phone.goto("/operator/overview")
    assert phone.locator("#chart-connectors figcaption").inner_text() == "Tráfico y errores por conector"
    _no_overflow(phone)
    shot(phone, f"console-phone-operator-{platform.engine.dialect.name}")
    # Customers do not see the operator's figures.
    customer = new_page(base_url, locale="en-US")
    sign_in(customer, traffic["customer"].email)
    assert customer.goto("/operator/overview").status == 404


def test_call_minutes_and_call_spend(platform, new_page, base_url, make_customer):
    """A call answered for 65 s at 0.60/min in 1 s blocks: 1:05 billed, 0.65 spent on calls
    (PostgreSQL: Kamailio's record settled by the platform, as in production)."""
    if not platform.settings.is_postgres:
        pytest.skip("calls need PostgreSQL (Kamailio writes their records there)")
    from uvox.billing import plans
    from uvox.db.kamailio_tables import acc_cdrs
    from uvox.softphone import service as sip
    from uvox.voice import records, trunks
    from uvox.voice.authorize import authorize

    with platform.engine.begin() as conn:
        conn.execute(sa.delete(acc_cdrs))
    plans.create_plan(platform.engine, "voice", "US$")
    plans.import_rates(
        platform.engine,
        "voice",
        "dialprefix,destination,rateinitial,smsrate,connectcharge,initblock,billingblock\n1,USA,0.6000,0.0075,0,1,1\n",
    )
    trunks.add_trunk(platform.engine, "carrier", "127.0.0.1", 5090)
    c = make_customer(balance="5", plan="voice", password=PASSWORD)
    user = sip.create_sip_account(platform.engine, c.id, domain="sip.uvox.test").account.username
    placed = authorize(
        platform.engine,
        platform.settings,
        caller=user,
        domain="sip.uvox.test",
        dialled="13055550100",
        sip_call_id=f"console-{user}",
    )
    assert placed.code == 200
    end = datetime.now(UTC).replace(tzinfo=None)
    with platform.engine.begin() as conn:
        conn.execute(
            sa.insert(acc_cdrs).values(
                start_time=end - timedelta(seconds=65),
                end_time=end,
                duration=65,
                uvox_call=str(placed.call_id),
                sip_code="200",
                hangup="caller",
                trunk="carrier",
                callid=f"console-{user}",
            )
        )
    assert records.settle(platform.engine) == 1
    page = new_page(base_url, locale="en-US")
    sign_in(page, c.email)
    today = datetime.now(UTC).date().isoformat()
    assert numbers(page, "minutes")[today] == ["1", "1", "1:05"]
    assert len(_bar_heights(page, "minutes")) == 1
    assert numbers(page, "spend")[today] == ["0.00", "0.65", "0.65"]
