"""Browser tests: Playwright driving Debian's Chromium (/usr/bin/chromium) against a live server.

`playwright install` cannot download here, so the system Chromium is launched by path with the
flags that keep it off the network. axe-core is vendored (tests/browser/vendor/axe.min.js) and
injected into every page a test visits.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("STYRKORT_CHROMIUM", "/usr/bin/chromium")
AXE_JS = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

# Django refuses synchronous DB access from inside Playwright's event loop thread otherwise.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make install-dev` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="sv-SE", viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(15000)
    yield pg
    context.close()


class AxeViolations(AssertionError):
    pass


def check_axe(page, *, context: str = "") -> list[dict]:
    """Run axe-core (WCAG 2.0/2.1 A and AA rules) on the page; fail on serious or critical."""
    # Evaluated through the DevTools protocol, which the page's CSP does not govern; a <script>
    # tag would be refused, rightly, by our own script-src policy.
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate("() => {" + AXE_JS + "\n}")
    result = page.evaluate(
        """async () => await axe.run(document, {
            runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},
            resultTypes: ['violations']
        })"""
    )
    bad = [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
    if bad:
        lines = [
            f"{v['id']} ({v['impact']}): {v['help']} — "
            + "; ".join(n["target"][0] if n["target"] else "?" for n in v["nodes"][:5])
            for v in bad
        ]
        raise AxeViolations(f"axe on {context or page.url}:\n" + "\n".join(lines))
    return result["violations"]


@pytest.fixture(autouse=True)
def _swedish_by_default(settings):
    # As users get it: Swedish unless they switch (the root conftest pins English elsewhere).
    settings.LANGUAGE_CODE = "sv"


@pytest.fixture(autouse=True)
def _plain_http_cookies(settings):
    # The live server speaks plain http; secure cookies are for production behind HTTPS.
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False


@pytest.fixture
def axe():
    return check_axe


@pytest.fixture
def login(live_server):
    """login(page, username) logs a persona in through the real form."""
    from conftest import PASSWORD

    def do(page, username: str, password: str = PASSWORD):
        page.goto(live_server.url + "/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("main button[type=submit]")
        page.wait_for_load_state("networkidle")

    return do
