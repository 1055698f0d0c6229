"""The interactive API documentation renders in the browser from the app's own files, under the
app's content security policy."""

from __future__ import annotations


def test_it_shows_the_interactive_api_docs(page, live_server, login, axe):
    external: list[str] = []
    page.on(
        "request",
        lambda r: external.append(r.url) if not r.url.startswith(live_server.url) else None,
    )
    login(page, "analyst")
    page.goto(live_server.url + "/api/docs")
    page.wait_for_selector(".opblock", timeout=15000)
    assert page.locator(".opblock").count() > 50
    assert external == []
    axe(page, context="API docs (Swagger UI)")
