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
    # address once the filtered list is in. No Enter: it would send the search a second time
    # (change and submit) beside the typed one, and a click on a loaded machine could then hit
    # a list being replaced; "networkidle" does not wait for either, since no page loads.
    page.get_by_label("Sök").first.fill("Ankarsrum")
    page.wait_for_url("**q=Ankarsrum**")
    page.get_by_role("link", name=unit_a.name).first.click()
    page.wait_for_url(f"**/organisation/units/{unit_a.pk}/")
    page.wait_for_load_state("networkidle")
    assert page.locator("h1").inner_text() == unit_a.name
    assert unit_a.hsa_id in page.content()
    axe(page, context="unit page")


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
