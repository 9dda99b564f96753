"""Portal fixtures: one headless Debian Chromium per test session, helpers for pages.

The browser is Debian's own /usr/bin/chromium driven by Playwright through
``executable_path`` (browsers cannot be downloaded here). Screenshots go to
test-output/screenshots/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, uvox_require

CHROMIUM = os.environ.get("UVOX_CHROMIUM", "/usr/bin/chromium")
SHOTS = ROOT / "test-output" / "screenshots"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct horse 42"


# One Playwright and one Chromium per process, however many modules import the
# ``browser`` fixture (the softphone tests do): a second sync Playwright started in
# the same thread fails, and one browser is also the fast choice.
_shared: dict = {"users": 0}


def _launch():
    if "browser" not in _shared:
        from playwright.sync_api import sync_playwright

        pw = sync_playwright().start()
        _shared["pw"] = pw
        _shared["browser"] = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
    _shared["users"] += 1
    return _shared["browser"]


def _release() -> None:
    _shared["users"] -= 1
    if _shared["users"] == 0 and "browser" in _shared:
        _shared.pop("browser").close()
        _shared.pop("pw").stop()


@pytest.fixture(scope="session")
def browser():
    uvox_require(
        Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is not None,
        f"Chromium is not installed at {CHROMIUM} (apt install chromium)",
    )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        uvox_require(False, "the playwright Python package is not installed")
    b = _launch()
    yield b
    _release()


@pytest.fixture
def new_page(browser):
    """Factory: a page in a fresh browser context (own cookies), closed at test end."""
    contexts = []

    def make(base_url: str, locale: str = "es-ES", width: int = 1280, height: int = 900):
        ctx = browser.new_context(
            base_url=base_url,
            locale=locale,
            viewport={"width": width, "height": height},
            accept_downloads=True,
            extra_http_headers={"Accept-Language": locale},
        )
        ctx.set_default_timeout(15_000)
        contexts.append(ctx)
        return ctx.new_page()

    yield make
    for c in contexts:
        c.close()


def shot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_up(page, email: str, password: str = PASSWORD) -> str:
    """Sign up through the form; returns the account number the dashboard shows."""
    page.goto("/sign_up")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.fill("input[name=password2]", password)
    page.click("form[action='/sign_up'] button[type=submit]")
    page.wait_for_url(re.compile(r"/dashboard"))
    return page.inner_text("#account-number").strip()


def sign_in(page, email: str, password: str = PASSWORD) -> None:
    page.goto("/sign_in")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("form[action='/sign_in'] button[type=submit]")
    page.wait_for_url(re.compile(r"/dashboard"))


class Browserless:
    """A portal client over plain HTTP (httpx), for the checks that need no JavaScript."""

    def __init__(self, base_url: str, **headers: str) -> None:
        self.c = httpx.Client(base_url=base_url, timeout=30, headers={"accept-language": "en", **headers})

    def csrf(self, path: str = "/sign_in") -> str:
        for page in (path, "/dashboard", "/sign_in"):
            found = re.search(r'name="csrf_token" value="([^"]+)"', self.c.get(page).text)
            if found:
                return found.group(1)
        raise AssertionError("no page with a form")

    def post(self, path: str, data: dict, files=None, csrf_from: str | None = None) -> httpx.Response:
        token = self.csrf(csrf_from or ("/sign_in" if path in ("/sign_in", "/sign_up") else "/dashboard"))
        return self.c.post(path, data={"csrf_token": token, **data}, files=files)

    def sign_in(self, email: str, password: str = PASSWORD) -> httpx.Response:
        return self.post("/sign_in", {"email": email, "password": password})

    def close(self) -> None:
        self.c.close()


@pytest.fixture
def client(base_url):
    """Factory of Browserless clients on the test server, each with its own cookies."""
    made = []

    def make(**headers: str) -> Browserless:
        b = Browserless(base_url, **headers)
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()
