"""The indicator pages in a real browser: charts render from the served Vega-Lite, a click on a
funnel point opens the unit, the period select swaps the results; axe on every page."""

import pytest

from styrkort.indicators.tests.builders import PO09_MONTHLY, monthly_counts, store_results

SHOTS = None


@pytest.fixture
def po09(region, provider_region, unit_a, unit_b, users):
    from datetime import date

    from styrkort.organisation.models import CareUnit

    units = {"A": unit_a, "B": unit_b}
    for i, (name, town) in enumerate((("D", "Dalby"), ("E", "Ekby"), ("F", "Fjällby")), 4):
        units[name] = CareUnit.objects.create(
            region=region, provider=provider_region, hsa_id=f"SE2321000016-{name}00{i}",
            name=f"Vårdcentralen {town}", municipality="Västervik", opened=date(2012, 1, 1),
        )  # fmt: skip
    store_results(region, "PO09", monthly_counts(units, PO09_MONTHLY), incomplete={"2025"})
    store_results(region, "PO04", monthly_counts(units, PO09_MONTHLY), incomplete={"2025"})
    return units


def _axe(page, context: str) -> None:
    """axe-core through the DevTools protocol: the pages' CSP (rightly) refuses the inline
    script tag the shared helper adds, so the library is evaluated instead."""
    from tests.browser.conftest import AXE_JS, AxeViolations

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
        raise AxeViolations(f"axe on {context}:\n" + "\n".join(lines))


def _shot(page, name):
    if SHOTS:
        page.screenshot(path=f"{SHOTS}/{name}.png", full_page=True)


def test_the_indicator_page_draws_its_charts_and_opens_a_unit(page, live_server, login, po09):
    login(page, "viewer")
    page.goto(live_server.url + "/indicators/PO04/")
    page.wait_for_selector("#chart-funnel svg")
    page.wait_for_selector("#chart-series svg")
    page.wait_for_selector("#chart-sex svg")
    _shot(page, "detail")
    _axe(page, context="indicator page")
    # The period select swaps the results below it.
    page.select_option("#result-period", "2025-03")
    page.wait_for_function(
        "() => document.querySelector('#funnel-heading').textContent.includes('2025-03')"
    )
    page.wait_for_selector("#chart-funnel svg")
    assert page.locator("#period-results td.suppressed").count() > 0  # small numbers
    _shot(page, "detail-month")
    _axe(page, context="indicator page, one month")
    # A click on the worse unit's point opens the unit's indicator page.
    page.select_option("#result-period", "2025Q2")
    page.wait_for_function(
        "() => document.querySelector('#funnel-heading').textContent.includes('2025Q2')"
    )
    page.wait_for_selector("#chart-funnel svg")
    point = page.locator('#chart-funnel svg [aria-roledescription="point"][aria-label*="Ekby"]')
    point.first.click(force=True)
    page.wait_for_url(f"**/indicators/units/{po09['E'].pk}/")
    page.wait_for_selector("#chart-trend-PO09 svg")
    _shot(page, "unit")
    _axe(page, context="unit indicators page")


def test_the_catalogue_and_its_compute_button(page, live_server, login, users):
    login(page, "analyst")
    page.goto(live_server.url + "/indicators/")
    assert page.locator("article.indicator-definition").count() >= 12
    _axe(page, context="catalogue")
    # The compute button queues a job and shows its progress in place (htmx).
    page.locator("form[action$='/indicators/compute/'] button").click()
    page.wait_for_selector("#compute-status .job-progress")
    _shot(page, "catalogue")
    from styrkort.jobs.models import Job

    assert Job.objects.filter(kind="indicators.compute").count() == 1
