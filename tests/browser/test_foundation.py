"""The foundation in a real browser: log-in per role, finding a unit, the language switch.
axe-core checks every page visited."""

import pytest

MENUS = {
    # persona: (must see, must not see) — menu labels in Swedish
    "analyst": (["Vårdcentraler", "Ändringslogg", "Importera"], ["Användare"]),
    "admin": (["Vårdcentraler", "Användare", "Importera"], []),
    "manager": (["Vårdcentraler"], ["Importera", "Ändringslogg", "Användare"]),
    "auditor": (["Vårdcentraler", "Ändringslogg"], ["Importera", "Användare"]),
    "viewer": (["Vårdcentraler"], ["Importera", "Ändringslogg", "Användare"]),
}


@pytest.mark.parametrize("persona", sorted(MENUS))
def test_it_shows_each_role_the_right_menu(page, live_server, users, login, axe, persona):
    login(page, persona)
    nav = page.locator("nav.main-nav")
    labels = [t.strip() for t in nav.locator("a").all_inner_texts()]
    must, must_not = MENUS[persona]
    for label in must:
        assert label in labels, (persona, labels)
    for label in must_not:
        assert label not in labels, (persona, labels)
    axe(page, context=f"start page as {persona}")


def test_it_finds_a_unit_and_opens_it(page, live_server, users, login, axe, unit_a):
    login(page, "viewer")
    page.goto(live_server.url + "/organisation/units/")
    axe(page, context="unit list")
    # Typing filters the list in place (htmx, 300 ms after the last key) and updates the
    # address once the filtered list is in; "networkidle" would not wait for it, since no
    # page loads.
    page.get_by_label("Sök").first.fill("Ankarsrum")
    page.wait_for_url("**q=Ankarsrum**")
    page.get_by_role("link", name=unit_a.name).first.click()
    page.wait_for_url(f"**/organisation/units/{unit_a.pk}/")
    page.wait_for_load_state("networkidle")
    assert page.locator("h1").inner_text() == unit_a.name
    assert unit_a.hsa_id in page.content()
    axe(page, context="unit page")


def test_it_fetches_the_unit_list_once_per_search(page, live_server, users, login, unit_a):
    """Enter in the search box, or leaving it for a result, used to fetch the list a second
    time (the box's change event), and a click could land on a list being replaced."""
    login(page, "viewer")
    page.goto(live_server.url + "/organisation/units/")
    page.wait_for_load_state("networkidle")
    fetched: list[str] = []
    page.on(
        "request",
        lambda r: fetched.append(r.url) if r.headers.get("hx-request") == "true" else None,
    )
    box = page.get_by_label("Sök").first
    box.fill("Ankarsrum")
    box.press("Enter")  # before the 300 ms of the typed search have passed
    page.wait_for_url("**q=Ankarsrum**")
    page.wait_for_timeout(800)  # time for a second request, were one coming
    assert len(fetched) == 1, fetched
    page.get_by_label("Aktiv").select_option("yes")  # a filter fetches at once
    page.wait_for_url("**active=yes**")
    page.wait_for_timeout(500)
    assert len(fetched) == 2, fetched
    box.fill("Ankarsrum ")
    page.wait_for_timeout(500)  # the typed search goes out 300 ms after the last key
    assert len(fetched) == 3, fetched
    page.get_by_role("link", name=unit_a.name).first.click()  # leaves the box: no fetch
    page.wait_for_url(f"**/organisation/units/{unit_a.pk}/")
    assert len(fetched) == 3, "\n".join(fetched)


def test_it_switches_language(page, live_server, users, login, axe):
    login(page, "analyst")
    assert page.locator("html").get_attribute("lang") == "sv"
    page.get_by_role("button", name="English").click()
    page.wait_for_load_state("networkidle")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_role("link", name="Care units").count() >= 1
    axe(page, context="English page")
    page.get_by_role("button", name="Svenska").click()
    page.wait_for_load_state("networkidle")
    assert page.locator("html").get_attribute("lang") == "sv"


def test_it_refuses_a_wrong_password_with_a_message(page, live_server, users, axe):
    page.goto(live_server.url + "/login/")
    page.fill("#id_username", "analyst")
    page.fill("#id_password", "wrong-password")
    page.click("main button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("alert").count() == 1
    axe(page, context="login with error")
