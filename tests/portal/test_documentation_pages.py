"""The portal's Documentation page: its texts rendered (no raw Markdown) and its
code table generated from codes.py, extension codes included; and the API
reference at /docs on a phone."""

from __future__ import annotations

import re

from tests.portal.conftest import PASSWORD
from uvox.api.v1.codes import CODES


def test_documentation_lists_every_code_and_renders_its_text(client, make_customer):
    c = make_customer(password=PASSWORD)
    b = client()
    assert b.sign_in(c.email).status_code == 303
    page = b.c.get("/documentation").text
    assert "`" not in page
    rows = dict(re.findall(r'<tr id="code-(\d{3})">(.*?)</tr>', page, re.S))
    assert set(rows) == set(CODES)
    assert all(f">{CODES[code].http}<" in row for code, row in rows.items())
    assert "<p>Sends one SMS" in page  # the section's introduction is a paragraph


def test_api_reference_fits_a_phone(new_page, base_url):
    """/docs at 390 px: the code table whole (it scrolls inside its frame), the page no wider than the screen."""
    page = new_page(base_url, locale="en-US", width=390, height=844)
    page.goto("/docs#codes")
    assert page.locator("#code-table tbody tr").count() == len(CODES)
    assert page.locator("#code-table").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
