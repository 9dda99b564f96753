"""The customer's Calls page over real HTTP, on SQLite and PostgreSQL: history,
filters, totals, calls in progress, CSV export, the SQLite notice, both languages;
and one look at it in headless Chromium.

Call records are made as the platform makes them: ``authorize()`` records refused
and in-progress calls; an answered call is, on PostgreSQL, the ``acc_cdrs`` row
Kamailio's acc module writes, rated by ``records.settle``. SQLite has no Kamailio
(calls need PostgreSQL), so there the test finishes the record as settle would.
"""

from __future__ import annotations

import csv
import io
import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.portal.conftest import PASSWORD, shot, sign_in
from uvox.billing import plans
from uvox.db import schema as t
from uvox.portal import calls as calls_page
from uvox.softphone import service as sip
from uvox.voice import records, trunks
from uvox.voice.authorize import authorize
from uvox.voice.rating import Tariff

DOMAIN = "sip.uvox.test"
DECK = """dialprefix,destination,rateinitial,smsrate,connectcharge,initblock,billingblock
1,USA,0.6000,0.0075,0,1,1
58,Venezuela,0.0202,0.0500,0.05,30,6
34,Spain,0.0150,0.0400,,,
"""


@pytest.fixture
def voice(platform, make_customer, client):
    """Factory: (customer, SIP username, signed-in portal client) on a voice plan with a trunk."""
    if platform.engine.dialect.name == "postgresql":
        from uvox.db.kamailio_tables import acc_cdrs

        with platform.engine.begin() as conn:
            conn.execute(sa.delete(acc_cdrs))
    plans.create_plan(platform.engine, "voice", "US$")
    plans.import_rates(platform.engine, "voice", DECK)
    trunks.add_trunk(platform.engine, "carrier", "127.0.0.1", 5090)

    def make(balance: str = "5", lang: str = "en"):
        c = make_customer(balance=balance, plan="voice", password=PASSWORD)
        user = sip.create_sip_account(platform.engine, c.id, domain=DOMAIN).account.username
        b = client(**{"accept-language": lang})
        assert b.sign_in(c.email).status_code == 303
        return c, user, b

    return make


def call(platform, user: str, dialled: str):
    return authorize(
        platform.engine,
        platform.settings,
        caller=user,
        domain=DOMAIN,
        dialled=dialled,
        sip_call_id=f"{user}-{dialled}-{threading.get_ident()}-{datetime.now().timestamp()}",
    )


def answer(platform, call_id: int, seconds: float, hangup: str = "caller") -> None:
    """The call was answered and lasted ``seconds``: its record is settled."""
    end = datetime.now(UTC).replace(tzinfo=None)
    if platform.engine.dialect.name == "postgresql":
        from uvox.db.kamailio_tables import acc_cdrs

        with platform.engine.begin() as conn:
            conn.execute(
                sa.insert(acc_cdrs).values(
                    start_time=end - timedelta(seconds=seconds),
                    end_time=end,
                    duration=seconds,
                    uvox_call=str(call_id),
                    sip_code="200",
                    hangup=hangup,
                    trunk="carrier",
                    callid=f"c{call_id}",
                )
            )
        assert records.settle(platform.engine) == 1
        return
    C, A = t.calls, t.accounts
    with platform.engine.begin() as conn:
        row = conn.execute(sa.select(C).where(C.c.id == call_id)).one()
        duration = -(-int(seconds * 1000) // 1000)
        tariff = Tariff(row.rate, row.connect_charge, row.init_block, row.billing_block)
        billed = tariff.billed_seconds(duration)
        price = tariff.price_of_billed(billed)
        stamp = datetime.now(UTC)
        conn.execute(
            sa.update(C)
            .where(C.c.id == call_id)
            .values(
                status="answered",
                sip_code=200,
                hangup=hangup,
                answered_at=stamp - timedelta(seconds=duration),
                ended_at=stamp,
                duration=duration,
                billed=billed,
                price=price,
                trunk="carrier",
                settled_at=stamp,
            )
        )
        conn.execute(
            sa.update(A).where(A.c.id == row.account_id).values(held=A.c.held - row.hold, balance=A.c.balance - price)
        )


def shown(b, query: str = "") -> list[int]:
    return [int(x) for x in re.findall(r'<tr data-id="(\d+)"', b.c.get("/calls" + query).text)]


def totals(html: str) -> dict[str, str]:
    return {
        k: re.search(rf'id="total-{k}">([^<]*)<', html).group(1).strip()
        for k in ("calls", "answered", "billed", "price")
    }


@pytest.fixture
def history(platform, voice):
    """Two answered calls, one refused 40 days ago, and one still in progress."""
    c, user, b = voice("5")
    refused = call(platform, user, "4420000000")  # no rate: 404; made first, dated 40 days ago
    assert refused.code == 404
    old = datetime.now(UTC) - timedelta(days=40)
    with platform.engine.begin() as conn:
        conn.execute(sa.update(t.calls).where(t.calls.c.id == refused.call_id).values(started_at=old, ended_at=old))
    usa = call(platform, user, "+1 305-555-0100")
    assert usa.code == 200
    answer(platform, usa.call_id, 64.2)  # 65 s at 0.6/min, 1 s blocks: 0.65
    ven = call(platform, user, "00582121234567")
    assert ven.code == 200
    answer(platform, ven.call_id, 31.2)  # 32 s -> 30 + 6: 36 s, 0.05 + 0.0202 * 36/60 = 0.06212
    live = call(platform, user, "34911000000")  # Spain, in progress: 10800 s cap at 0.015/min holds 2.70
    assert live.code == 200
    return {
        "customer": c,
        "user": user,
        "b": b,
        "usa": usa.call_id,
        "ven": ven.call_id,
        "refused": refused.call_id,
        "live": live.call_id,
        "old": old,
    }


def test_history_newest_first_with_totals_and_calls_in_progress(platform, history):
    b, h = history["b"], history
    r = b.c.get("/calls")
    assert r.status_code == 200
    assert shown(b) == [h["ven"], h["usa"], h["refused"]]  # in progress is not a record yet
    assert totals(r.text) == {"calls": "3", "answered": "2", "billed": "1:41", "price": "US$ 0.71212"}
    assert re.search(r'id="in-progress">\s*Calls in progress: 1, holding US\$ 2.70 until they end', r.text)
    row = re.search(rf'<tr data-id="{h["ven"]}".*?</tr>', r.text, re.S).group(0)
    assert "+582121234567" in row and "Venezuela" in row and "Answered" in row and "0:32" in row and "0:36" in row
    assert "US$ 0.06212" in row and "Caller" in row
    refused = re.search(rf'<tr data-id="{h["refused"]}".*?</tr>', r.text, re.S).group(0)
    assert "Refused" in refused and "404" in refused and "Number not valid or without a rate" in refused
    # The navigation links the page next to the SMS history.
    nav = re.search(r'<nav id="sidenav".*?</nav>', r.text, re.S).group(0)
    assert re.search(r'href="/sms"\s*>SMS</a>\s*<a href="/calls"\s*class="active" aria-current="page">Calls</a>', nav)


def test_filters_by_date_and_number_with_their_totals(history):
    b, h = history["b"], history
    assert shown(b, "?number=%2B58 212") == [h["ven"]]  # typed as people write it
    assert shown(b, "?number=0058212") == [h["ven"]]
    assert totals(b.c.get("/calls?number=58212").text) == {
        "calls": "1",
        "answered": "1",
        "billed": "0:36",
        "price": "US$ 0.06212",
    }
    recent = (h["old"] + timedelta(days=5)).date().isoformat()
    assert shown(b, f"?from={recent}") == [h["ven"], h["usa"]]
    assert shown(b, f"?to={recent}") == [h["refused"]]
    assert shown(b, f"?to={h['old'].date().isoformat()}") == [h["refused"]]  # the "to" day is included
    page = b.c.get(f"/calls?from={recent}&number=1305").text
    assert totals(page) == {"calls": "1", "answered": "1", "billed": "1:05", "price": "US$ 0.65"}
    assert 'value="1305"' in page and f'value="{recent}"' in page  # the form keeps what was asked
    # The filter also matches the caller's SIP username (the account number and random
    # digits): ask for digits that are in neither.
    nothing = next(
        n for n in ("999", "7777", "88888", "606060") if n not in h["user"] and n not in h["customer"].number
    )
    assert totals(b.c.get(f"/calls?number={nothing}").text) == {
        "calls": "0",
        "answered": "0",
        "billed": "0:00",
        "price": "US$ 0.00",
    }
    assert "No calls." in b.c.get(f"/calls?number={nothing}").text


@pytest.mark.parametrize(
    "query,what",
    [
        ("?from=yesterday", "YYYY-MM-DD"),
        ("?to=2026-02-30", "YYYY-MM-DD"),
        ("?from=2026-12-10&to=2026-12-01", "YYYY-MM-DD"),
        ("?from=9999-12-31&to=9999-12-31", "YYYY-MM-DD"),
        ("?from=0001-01-01", "YYYY-MM-DD"),
        ("?number=abc", "only digits"),
        ("?number=1' OR '1'='1", "only digits"),
        ("?number=%25", "only digits"),
        ("?number=" + "1" * 40, "only digits"),
        ("?cursor=abc", "does not exist"),
        ("?cursor=" + "9" * 30, "does not exist"),
    ],
)
def test_bad_filter_input_is_a_message_never_an_error(history, query, what):
    b = history["b"]
    r = b.c.get("/calls" + query)
    assert r.status_code == 200, r.text
    assert what in r.text
    assert len(shown(b, query)) == 3  # the invalid filter is ignored, the rest of the page works
    assert b.c.get("/calls/export.csv" + query).status_code == 200


def test_pages_with_the_cursor(history, monkeypatch):
    monkeypatch.setattr(calls_page, "PAGE_SIZE", 2)  # the page reads it on each request (same process)
    b, h = history["b"], history
    first = b.c.get("/calls").text
    assert shown(b) == [h["ven"], h["usa"]] and 'rel="first"' not in first
    nxt = re.search(r'rel="next" href="([^"]+)"', first).group(1).replace("&amp;", "&")
    assert "cursor=" in nxt
    second = b.c.get(nxt).text
    assert re.findall(r'<tr data-id="(\d+)"', second) == [str(h["refused"])]
    assert 'rel="next"' not in second and 'rel="first" href="/calls"' in second
    assert totals(second)["calls"] == "3"  # totals are of the filtered set, not of the page
    # The cursor keeps the filters.
    recent = (h["old"] + timedelta(days=5)).date().isoformat()
    monkeypatch.setattr(calls_page, "PAGE_SIZE", 1)
    page = b.c.get(f"/calls?from={recent}").text
    nxt = re.search(r'rel="next" href="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert f"from={recent}" in nxt
    assert re.findall(r'<tr data-id="(\d+)"', b.c.get(nxt).text) == [str(h["usa"])]


def test_csv_export_has_the_voice_columns_and_the_filters(history, http):
    b, h, c = history["b"], history, history["customer"]
    page = b.c.get("/calls?number=58212").text
    link = re.search(r'id="export-csv" href="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert link == "/calls/export.csv?number=58212"
    r = b.c.get(link)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert f"calls-{c.number}.csv" in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.text)))
    assert tuple(rows[0]) == records.CSV_COLUMNS
    data = [dict(zip(rows[0], x)) for x in rows[1:]]
    assert [(d["id"], d["to"], d["status"], d["duration"], d["billed"], d["price"], d["currency"]) for d in data] == [
        (str(h["ven"]), "+582121234567", "answered", "32", "36", "0.06212", "US$")
    ]
    # Unfiltered, it is what the API's format=csv gives.
    every = b.c.get("/calls/export.csv").text
    api = http.get("/api/get-api/v1/calls", params={"format": "csv"}, headers={"Api-Key": c.apikey}).text
    assert every == api and len(every.strip().splitlines()) == 4
    recent = (h["old"] + timedelta(days=5)).date().isoformat()
    dated = list(csv.DictReader(io.StringIO(b.c.get(f"/calls/export.csv?to={recent}").text)))
    assert [d["id"] for d in dated] == [str(h["refused"])] and dated[0]["sip_code"] == "404"


def test_spanish_labels_and_the_sqlite_notice(platform, history, client):
    c = history["customer"]
    es = client(**{"accept-language": "es-ES,es;q=0.9"})
    assert es.sign_in(c.email).status_code == 303
    page = es.c.get("/calls").text
    assert "<h1>Llamadas</h1>" in page and 'href="/calls"' in page
    for text in (
        "Contestada",
        "Rechazada",
        "Número no válido o sin tarifa",
        "Facturado (min:s)",
        "Precio total",
        "Exportar CSV",
        "Quien llama",
        "Llamadas en curso: 1, que reservan US$ 2.70",
    ):
        assert text in page, text
    assert "Algunos filtros no eran válidos" in es.c.get("/calls?from=ayer").text
    en_page = history["b"].c.get("/calls").text
    if platform.engine.dialect.name == "sqlite":
        assert 'id="needs-postgres"' in en_page and "Calls need PostgreSQL" in en_page
        assert "Las llamadas necesitan PostgreSQL" in page
    else:
        assert 'id="needs-postgres"' not in en_page and 'id="needs-postgres"' not in page


def test_the_catalogues_keep_the_postgres_notice_of_records():
    assert calls_page.POSTGRES_NOTICE == records.VOICE_NEEDS_POSTGRES


def test_only_the_signed_in_accounts_calls(history, voice, client):
    other, _, ob = voice("1")
    page = ob.c.get("/calls").text
    assert shown(ob) == [] and "No calls." in page and 'id="in-progress"' not in page
    assert totals(page)["calls"] == "0"
    assert len(list(csv.reader(io.StringIO(ob.c.get("/calls/export.csv").text)))) == 1  # the header alone
    anonymous = client()
    r = anonymous.c.get("/calls?number=1305")
    assert r.status_code == 303 and r.headers["location"].startswith("/sign_in?next=%2Fcalls")
    assert anonymous.c.get("/calls/export.csv").status_code == 303


def test_calls_page_in_chromium(new_page, base_url, history, platform):
    c = history["customer"]
    page = new_page(base_url, locale="en-US")
    sign_in(page, c.email)
    page.click("#sidenav a[href='/calls']")
    page.wait_for_url("**/calls")
    assert page.locator("h1").inner_text() == "Calls"
    assert page.is_visible("#totals") and page.locator("#total-price").inner_text() == "US$ 0.71212"
    assert page.locator("#calls tbody tr").count() == 3 and page.is_visible("#in-progress")
    assert page.is_visible("#needs-postgres") == (platform.engine.dialect.name == "sqlite")
    page.fill("input[name=number]", "+58 212")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r"/calls\?.*number=%2B58"))  # as typed; the page reads the digits
    assert page.locator("#calls tbody tr").count() == 1
    with page.expect_download() as download:
        page.click("#export-csv")
    path = download.value.path()
    with open(path, encoding="utf-8") as fh:
        assert len(fh.read().strip().splitlines()) == 2
    page.goto("/calls?number=58212")
    page.click("nav.langs a.lang-es")
    page.wait_for_url(re.compile(r"/calls\?number=58212$"))  # the switch stays on the filtered page
    assert page.locator("h1").inner_text() == "Llamadas" and page.locator("#calls tbody tr").count() == 1
    shot(page, f"calls-{platform.engine.dialect.name}")
    # Phone-sized: nothing wider than the screen.
    phone = new_page(base_url, locale="es-ES", width=390, height=844)
    sign_in(phone, c.email)
    phone.goto("/calls")
    assert phone.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    shot(phone, f"calls-phone-{platform.engine.dialect.name}")
