"""A state grant's cycle in a real browser (issue 4): the analyst registers the grant and
allocates it over the units by listed patients; then (from the same allocation, made through the
services so that each test stays short) the unit manager accounts for the own unit, the analyst
approves the account and opens the report to the state, whose PDF and XLSX download. Elements
are found by the stable ids of docs/grants.md; axe checks every page visited."""

from __future__ import annotations

import re

import pytest

MONTH = "2025-10"


@pytest.fixture
def listed(users, unit_a, unit_b, settings, tmp_path):
    """October 2025: unit_a 6 000 listed, unit_b 4 000 (unit_c closed at the end of 2024)."""
    from styrkort.organisation.models import Listing

    settings.MEDIA_ROOT = tmp_path / "media"
    for unit, women, men in ((unit_a, 3_000, 3_000), (unit_b, 2_500, 1_500)):
        Listing.objects.create(unit=unit, month=MONTH, sex="K", age_band="25-29", listed=women)
        Listing.objects.create(unit=unit, month=MONTH, sex="M", age_band="25-29", listed=men)
    return {"a": unit_a, "b": unit_b}


def _kr(text: str) -> int:
    """A displayed amount ("510 000 kr", with whatever spaces) as whole kronor."""
    return int(re.sub(r"\D", "", text.replace("kr", "")))


def _as(page, login, persona: str) -> None:
    page.context.clear_cookies()
    login(page, persona)


def _register(analyst):
    from datetime import date

    from styrkort.grants import services

    values = {
        "name": "Psykisk ohälsa i primärvården 2025", "dnr": "S2025/01234", "total": 1_000_000,
        "first_year": 2025, "accounts_deadline": date(2026, 1, 31),
        "report_deadline": date(2026, 3, 15), "repayment_deadline": date(2026, 3, 31),
    }  # fmt: skip
    return services.create_grant(analyst, **values)


@pytest.fixture
def allocated(users, listed):
    """The grant of the first test, allocated as that test does it, through the services."""
    from styrkort.grants import services

    grant = _register(users["analyst"])
    spec = services.plan_input_from_values(
        {
            "reference_month": MONTH,
            "central_items": [{"name": "Utbildning", "percent": "15", "category": "utbildning"}],
        }
    )
    plan = services.create_plan(users["analyst"], grant, spec)
    services.decide_plan(users["analyst"], plan, dnr="RS 2025/100")
    return grant


def test_it_registers_a_grant_and_decides_its_allocation(page, live_server, login, axe, listed):
    from styrkort.grants.models import Grant, GrantState, PlanStatus

    unit_a, unit_b = listed["a"], listed["b"]
    login(page, "analyst")
    page.goto(live_server.url + "/grants/")
    axe(page, context="grant list")
    page.click("#grant-create")
    page.wait_for_url("**/grants/new/")
    axe(page, context="grant form")
    page.fill("#id_name", "Psykisk ohälsa i primärvården 2025")
    page.fill("#id_dnr", "S2025/01234")
    page.fill("#id_total", "1 000 000")
    page.fill("#id_first_year", "2025")
    page.fill("#id_accounts_deadline", "2026-01-31")
    page.fill("#id_report_deadline", "2026-03-15")
    page.fill("#id_repayment_deadline", "2026-03-31")
    page.click("#grant-save")
    page.wait_for_url(re.compile(r".*/grants/\d+/$"))
    grant = Grant.objects.get()
    assert grant.total == 1_000_000
    assert _kr(page.locator("#grant-total").inner_text()) == 1_000_000
    axe(page, context="grant detail")

    # A plan: 15 % to central training (the form's default), the rest by listed patients.
    page.click("#plan-new")
    page.wait_for_url("**/plans/new/")
    assert page.input_value("#central-0-percent") == "15"
    page.fill("#id_reference_month", MONTH)
    page.check("input[name=weighting][value=none]")
    axe(page, context="plan form")
    page.click("#plan-save")
    page.wait_for_url(re.compile(r".*/plans/\d+/$"))
    assert _kr(page.locator("#plan-central-total").inner_text()) == 150_000
    assert _kr(page.locator("#plan-units-total").inner_text()) == 850_000
    amounts = {
        hsa: _kr(page.locator(f"#plan-units tr[data-hsa='{hsa}'] td").nth(2).inner_text())
        for hsa in (unit_a.hsa_id, unit_b.hsa_id)
    }
    assert amounts == {unit_a.hsa_id: 510_000, unit_b.hsa_id: 340_000}
    axe(page, context="plan preview (draft)")
    page.fill("#id_dnr", "RS 2025/100")
    page.click("#plan-decide")
    page.wait_for_selector("#plan-decision")
    assert grant.plans.get().status == PlanStatus.DECIDED
    grant.refresh_from_db()
    assert grant.state == GrantState.ALLOCATED
    axe(page, context="plan preview (decided)")


def test_it_takes_a_units_account_through_approval_to_the_report(
    page, live_server, login, axe, listed, allocated
):
    from styrkort.grants.models import AccountStatus, UnitAccount

    unit_a, unit_b = listed["a"], listed["b"]
    grant = allocated
    base = live_server.url + f"/grants/{grant.pk}/"

    # The unit manager accounts for the own unit, and only that one.
    login(page, "manager")
    page.goto(base)
    assert page.locator(f"#account-link-{unit_b.hsa_id}").count() == 0
    axe(page, context="grant detail as unit manager")
    page.click(f"#account-link-{unit_a.hsa_id}")
    page.wait_for_url(f"**/grants/{grant.pk}/accounts/{unit_a.pk}/")
    assert _kr(page.locator("#account-allocated").inner_text()) == 510_000
    axe(page, context="account form")
    page.fill("#id_used_psykolog", "400 000")
    page.fill("#id_persons_psykolog", "2")
    page.fill("#id_fte_added_psykolog", "1,5")
    page.fill("#id_measures_psykolog", "Två psykologer för KBT i grupp")
    page.fill("#id_comment", "Rekrytering klar i mars.")
    page.click("#account-submit")
    page.wait_for_selector(f"#account-status[data-status='{AccountStatus.SUBMITTED}']")
    assert _kr(page.locator("#account-used").inner_text()) == 400_000
    assert page.locator("#account-form").count() == 0  # a submitted account is read-only
    axe(page, context="account, submitted")

    # The analyst approves it.
    _as(page, login, "analyst")
    page.goto(base + "accounts/")
    axe(page, context="accounts overview")
    page.goto(base + f"accounts/{unit_a.pk}/")
    page.click("#account-approve")
    page.wait_for_selector(f"#account-status[data-status='{AccountStatus.APPROVED}']")
    assert UnitAccount.objects.get(unit=unit_a).status == AccountStatus.APPROVED
    axe(page, context="account, approved")

    # The report to the state: received, used (approved accounts only), to repay.
    page.goto(base)
    page.click("#report-link")
    page.wait_for_url(f"**/grants/{grant.pk}/report/")
    axe(page, context="report, not started")
    page.click("#report-start")
    page.wait_for_url(f"**/grants/{grant.pk}/report/1/")
    assert page.locator("#report-status").get_attribute("data-submitted") == "no"
    assert _kr(page.locator("#report-received").inner_text()) == 1_000_000
    assert _kr(page.locator("#report-units-used").inner_text()) == 400_000
    # unit_a's unused 110 000 + unit_b's 340 000 (no approved account) + 150 000 central unspent
    assert _kr(page.locator("#report-repay").inner_text()) == 600_000
    units = page.locator("#report-units tbody").inner_text()
    assert unit_a.name in units
    assert unit_b.name in units
    assert "Två psykologer för KBT i grupp" in page.locator("#report-measures").inner_text()
    axe(page, context="report, draft")
    page.fill("#id_gender_equality", "Uppföljt per kön.")
    page.fill("#id_childrens_rights", "Barn och unga prioriterade.")
    page.fill("#id_disability", "Tillgänglig information.")
    page.click("#report-submit")
    page.wait_for_selector("#report-status[data-submitted='yes']")
    assert _kr(page.locator("#report-repay").inner_text()) == 600_000
    axe(page, context="report, submitted")

    # The downloads answer with the right kind of file.
    for link, magic in (("#report-pdf", b"%PDF"), ("#report-xlsx", b"PK")):
        href = page.locator(link).get_attribute("href")
        response = page.request.get(live_server.url + href)
        assert response.status == 200, (link, response.status)
        assert response.body().startswith(magic), link
