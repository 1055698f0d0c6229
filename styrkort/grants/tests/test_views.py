"""The grant pages, walked as the analyst and the unit managers would, and every refusal."""

from __future__ import annotations

import io
from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from openpyxl import load_workbook

from styrkort.grants import services
from styrkort.grants.models import (
    AccountStatus,
    Grant,
    GrantState,
    PlanStatus,
    StateReport,
    UnitAccount,
)
from styrkort.grants.tests.conftest import POPULATION_TEXT, plan_spec
from styrkort.grants.tests.test_services import counts, lines
from styrkort.history.models import ChangeRecord


def url(name, **kwargs):
    return reverse(f"grants:{name}", kwargs=kwargs)


def account_form(used="300 000", action="save", **extra):
    data = {
        "action": action,
        "used_psykolog": used,
        "persons_psykolog": "1",
        "fte_added_psykolog": "0,8",
        "measures_psykolog": "Psykolog anställd för KBT-grupper",
        "used_kurator": "",
        "comment": "",
    }
    data.update(extra)
    return data


# --------------------------------------------------------------------------------------------
# The whole cycle through the pages


def test_it_walks_the_whole_cycle_through_the_pages(client_for, users, listings, unit_a):
    analyst, manager = client_for("analyst"), client_for("manager")

    # Register
    r = analyst.post(
        url("create"),
        {
            "name": "Psykisk ohälsa 2025", "dnr": "S2025/1", "authority": "Socialstyrelsen",
            "total": "14 446 372", "first_year": "2025", "accounts_deadline": "2026-01-31",
            "report_deadline": "2026-03-15", "repayment_deadline": "2026-03-31",
        },
    )  # fmt: skip
    assert r.status_code == 302, r.content.decode()[:2000]
    grant = Grant.objects.get()
    assert grant.total == 14_446_372
    page = analyst.get(url("detail", grant_id=grant.pk)).content.decode()
    assert "14\xa0446\xa0372\xa0kr" in page
    assert 'id="plan-new"' in page

    # Plan: new draft with 15 % training, preview, decide
    assert analyst.get(url("plan_new", grant_id=grant.pk)).status_code == 200
    r = analyst.post(
        url("plan_new", grant_id=grant.pk),
        {
            "reference_month": "2025-10", "weighting": "none",
            "central-0-name": "Utbildningsinsatser", "central-0-amount": "",
            "central-0-percent": "15", "central-0-category": "utbildning",
            "central-1-name": "", "central-1-amount": "", "central-1-percent": "",
            "central-1-category": "",
        },
    )  # fmt: skip
    assert r.status_code == 302, r.content.decode()[:3000]
    plan = grant.plans.get()
    preview = analyst.get(r["Location"]).content.decode()
    assert "2\xa0166\xa0956\xa0kr" in preview  # 15 % of 14 446 372 = 2 166 955.8
    assert 'id="plan-decide-form"' in preview
    assert "per listed" in preview
    r = analyst.post(url("plan_decide", grant_id=grant.pk, plan_id=plan.pk), {"dnr": "RS 1/2025"})
    assert r.status_code == 302
    plan.refresh_from_db()
    assert plan.status == PlanStatus.DECIDED
    grant.refresh_from_db()
    assert grant.state == GrantState.ALLOCATED

    # Account: the manager saves a draft, attaches a file and submits
    detail = manager.get(url("detail", grant_id=grant.pk)).content.decode()
    assert f'id="account-link-{unit_a.hsa_id}"' in detail
    account_url = url("account", grant_id=grant.pk, unit_id=unit_a.pk)
    page = manager.get(account_url).content.decode()
    assert 'id="account-form"' in page
    assert 'for="id_used_psykolog"' in page
    r = manager.post(account_url, account_form())
    assert r.status_code == 302
    r = manager.post(
        url("attachment_add", grant_id=grant.pk, unit_id=unit_a.pk),
        {"file": SimpleUploadedFile("underlag.pdf", b"%PDF-1.4 test")},
    )
    assert r.status_code == 302
    account = UnitAccount.objects.get()
    attachment = account.attachments.get()
    download = manager.get(
        url("attachment", grant_id=grant.pk, unit_id=unit_a.pk, attachment_id=attachment.pk)
    )
    assert b"".join(download.streaming_content) == b"%PDF-1.4 test"
    r = manager.post(account_url, account_form(action="submit"))
    assert r.status_code == 302
    account.refresh_from_db()
    assert account.status == AccountStatus.SUBMITTED
    assert account.submission.late  # the deadline 2026-01-31 has passed by now

    # Review: the analyst sees it, approves
    overview = analyst.get(url("accounts", grant_id=grant.pk)).content.decode()
    assert "Vårdcentralen Ankarsrum" in overview
    assert 'id="reminder-link"' in overview  # unit_b has not submitted
    reminder = analyst.get(url("accounts_reminder", grant_id=grant.pk) + "?format=csv")
    assert "Hälsocentralen Björkby" in reminder.content.decode("utf-8-sig")
    assert "colleague" in reminder.content.decode("utf-8-sig")
    r = analyst.post(
        url("account_review", grant_id=grant.pk, unit_id=unit_a.pk), {"action": "approve"}
    )
    assert r.status_code == 302
    account.refresh_from_db()
    assert account.status == AccountStatus.APPROVED

    # Repayment, central spending
    central = analyst.post(
        url("repayment", grant_id=grant.pk),
        {"central-0-name": "Utbildningsinsatser", "central-0-used": "2 000 000",
         "central-0-persons": "120", "central-0-fte_added": "", "central-0-measures": "KBT"},
    )  # fmt: skip
    assert central.status_code == 302
    repay = analyst.get(url("repayment", grant_id=grant.pk)).content.decode()
    assert 'id="repay-total"' in repay

    # Report: start, write the perspectives, submit, export
    r = analyst.post(url("report", grant_id=grant.pk))
    assert r.status_code == 302
    report_url = url("report_version", grant_id=grant.pk, version=1)
    r = analyst.post(
        report_url,
        {"action": "submit", "measures_summary": "Psykologer och utbildning",
         "gender_equality": "Uppföljt per kön", "childrens_rights": "Barn och unga prioriterade",
         "disability": "Tillgänglig information", "other_comments": ""},
    )  # fmt: skip
    assert r.status_code == 302
    report = StateReport.objects.get()
    assert report.is_submitted
    page = analyst.get(report_url).content.decode()
    assert 'data-submitted="yes"' in page
    assert "Psykologer och utbildning" in page
    pdf = analyst.get(url("report_pdf", grant_id=grant.pk, version=1))
    assert pdf.content.startswith(b"%PDF")
    xlsx = analyst.get(url("report_xlsx", grant_id=grant.pk, version=1))
    book = load_workbook(io.BytesIO(xlsx.content))
    assert book.active["A1"].value.startswith("Psykisk ohälsa 2025")


def test_each_page_renders_for_the_analyst(client_for, users, grant, decided_plan, unit_a):
    services.save_account(users["manager"], grant, unit_a, lines=lines())
    services.start_report(users["analyst"], grant)
    analyst = client_for("analyst")
    names = [
        ("list", {}), ("create", {}), ("national", {}), ("detail", {"grant_id": grant.pk}),
        ("edit", {"grant_id": grant.pk}), ("plan_new", {"grant_id": grant.pk}),
        ("plan_detail", {"grant_id": grant.pk, "plan_id": decided_plan.pk}),
        ("accounts", {"grant_id": grant.pk}), ("accounts_reminder", {"grant_id": grant.pk}),
        ("account", {"grant_id": grant.pk, "unit_id": unit_a.pk}),
        ("repayment", {"grant_id": grant.pk}),
        ("report_version", {"grant_id": grant.pk, "version": 1}),
    ]  # fmt: skip
    for name, kwargs in names:
        r = analyst.get(url(name, **kwargs))
        assert r.status_code == 200, name
        assert "<h1>" in r.content.decode(), name


def test_pages_are_swedish_by_default(client_for, grant, settings):
    settings.LANGUAGE_CODE = "sv"
    page = client_for("analyst").get(url("list")).content.decode()
    assert 'lang="sv"' in page


def test_the_plan_preview_shows_the_difference_against_the_previous_version(
    client_for, users, grant, decided_plan
):
    draft = services.create_plan(users["analyst"], grant, plan_spec(cap="450 000"))
    page = client_for("analyst").get(url("plan_detail", grant_id=grant.pk, plan_id=draft.pk))
    text = page.content.decode()
    assert "−60\xa0000\xa0kr" in text
    assert "+60\xa0000\xa0kr" in text
    assert 'id="id_reason"' in text  # superseding needs a reason


def test_deciding_without_a_reason_is_refused_on_the_page(client_for, users, grant, decided_plan):
    draft = services.create_plan(users["analyst"], grant, plan_spec(cap="450 000"))
    before = counts()
    r = client_for("analyst").post(
        url("plan_decide", grant_id=grant.pk, plan_id=draft.pk), {"dnr": "RS 2"}, follow=True
    )
    assert "give a reason" in r.content.decode()
    assert counts() == before


def test_a_decided_plan_cannot_be_edited_on_the_page(client_for, grant, decided_plan):
    before = counts()
    analyst = client_for("analyst")
    edit = url("plan_edit", grant_id=grant.pk, plan_id=decided_plan.pk)
    assert analyst.get(edit).status_code == 302
    r = analyst.post(edit, {"reference_month": "2025-10", "weighting": "none", "cap": "1"})
    assert r.status_code == 302
    assert counts() == before


def test_the_national_distribution_page_previews_and_saves(client_for, users):
    analyst = client_for("analyst")
    data = {"name": "Statsbidrag 2025", "total": "496 000 000", "reference_date": "2024-12-31",
            "action": "preview",
            "population_file": SimpleUploadedFile("pop.csv", POPULATION_TEXT.encode())}  # fmt: skip
    r = analyst.post(url("national"), data)
    assert r.status_code == 200
    text = r.content.decode()
    assert "14\xa0446\xa0372\xa0kr" in text
    assert "2.9126 %" in text  # English number format in the tests
    assert "496\xa0000\xa0000\xa0kr" in text
    assert 'id="distribution-checks"' in text
    # Save from the preview without uploading again (the text travels in a hidden field).
    r = analyst.post(
        url("national"),
        {"name": "Statsbidrag 2025", "total": "496 000 000", "reference_date": "2024-12-31",
         "action": "save", "population_text": POPULATION_TEXT, "source_name": "pop.csv"},
    )  # fmt: skip
    assert r.status_code == 302
    detail = analyst.get(r["Location"]).content.decode()
    assert "Örebro län" in detail


def test_a_bad_population_file_is_listed_and_nothing_saved(client_for, users):
    before = counts()
    bad = POPULATION_TEXT.replace("18,308375\n", "").replace("01,2473307", "01,-5")
    r = client_for("analyst").post(
        url("national"),
        {"name": "x", "total": "496000000", "reference_date": "2024-12-31", "action": "save",
         "population_file": SimpleUploadedFile("pop.csv", bad.encode())},
    )  # fmt: skip
    assert r.status_code == 200
    text = r.content.decode()
    assert 'id="form-errors"' in text
    assert "Örebro län" in text  # the missing county is named
    assert "-5" in text
    assert counts() == before


# --------------------------------------------------------------------------------------------
# Refusals: a unit manager and other units


def test_a_unit_manager_cannot_see_another_units_account(client_for, users, grant, decided_plan,
                                                         unit_b):  # fmt: skip
    services.save_account(users["colleague"], grant, unit_b, lines=lines(123_456))
    manager = client_for("manager")
    assert manager.get(url("account", grant_id=grant.pk, unit_id=unit_b.pk)).status_code == 403
    overview = manager.get(url("accounts", grant_id=grant.pk)).content.decode()
    assert "Hälsocentralen Björkby" not in overview
    assert "123" not in overview
    assert manager.get(url("accounts_reminder", grant_id=grant.pk)).status_code == 403
    assert manager.get(url("repayment", grant_id=grant.pk)).status_code == 403
    assert manager.get(url("report", grant_id=grant.pk)).status_code == 403


def test_a_unit_manager_cannot_report_for_another_unit_on_the_page(
    client_for, users, grant, decided_plan, unit_b
):
    before = counts()
    manager = client_for("manager")
    r = manager.post(url("account", grant_id=grant.pk, unit_id=unit_b.pk), account_form())
    assert r.status_code == 403
    r = manager.post(
        url("attachment_add", grant_id=grant.pk, unit_id=unit_b.pk),
        {"file": SimpleUploadedFile("a.txt", b"hej")},
    )
    assert r.status_code == 403
    r = manager.post(url("account_review", grant_id=grant.pk, unit_id=unit_b.pk),
                     {"action": "approve"})  # fmt: skip
    assert r.status_code == 403
    assert counts() == before


def test_an_outsider_gets_404_and_nobody_403(client_for, grant, decided_plan, unit_a):
    assert client_for("outsider").get(url("detail", grant_id=grant.pk)).status_code == 404
    assert (
        client_for("outsider").get(url("account", grant_id=grant.pk, unit_id=unit_a.pk)).status_code
        == 404
    )
    assert client_for("nobody").get(url("list")).status_code == 403


def test_bad_account_input_is_shown_and_nothing_changes(client_for, users, grant, decided_plan,
                                                        unit_a):  # fmt: skip
    manager = client_for("manager")
    account_url = url("account", grant_id=grant.pk, unit_id=unit_a.pk)
    manager.post(account_url, account_form())
    before = counts()
    for bad in ({"used_psykolog": "-100"}, {"used_psykolog": "tusen"},
                {"fte_added_psykolog": "-1"}):  # fmt: skip
        r = manager.post(account_url, account_form(**bad))
        assert r.status_code == 200
        assert 'id="form-errors"' in r.content.decode()
    assert counts() == before


def test_a_late_submission_is_accepted_and_marked(client_for, users, grant, decided_plan, unit_a):
    grant.accounts_deadline = date(2020, 1, 1)
    grant.save()
    r = client_for("manager").post(
        url("account", grant_id=grant.pk, unit_id=unit_a.pk), account_form(action="submit"),
        follow=True,
    )  # fmt: skip
    account = UnitAccount.objects.get()
    assert account.status == AccountStatus.SUBMITTED
    assert account.submission.late
    assert "marked late" in r.content.decode()


def test_a_returned_account_shows_the_comment_and_can_be_edited(
    client_for, users, grant, decided_plan, unit_a
):
    account = services.save_account(users["manager"], grant, unit_a, lines=lines())
    services.submit_account(users["manager"], account)
    r = client_for("analyst").post(
        url("account_review", grant_id=grant.pk, unit_id=unit_a.pk),
        {"action": "return", "comment": "Specificera åtgärderna"},
    )
    assert r.status_code == 302
    page = client_for("manager").get(url("account", grant_id=grant.pk, unit_id=unit_a.pk))
    text = page.content.decode()
    assert "Specificera åtgärderna" in text
    assert 'id="account-form"' in text


def test_the_submitted_report_page_shows_changes_in_a_new_version(
    client_for, users, grant, decided_plan, unit_a
):
    report = services.start_report(users["analyst"], grant)
    services.update_report(users["analyst"], report, gender_equality="a", childrens_rights="b",
                           disability="c")  # fmt: skip
    services.submit_report(users["analyst"], report)
    account = services.save_account(users["manager"], grant, unit_a, lines=lines(50_000))
    services.submit_account(users["manager"], account)
    services.approve_account(users["analyst"], account)
    analyst = client_for("analyst")
    r = analyst.post(url("report", grant_id=grant.pk), {"correction_reason": "Sent konto"})
    assert r["Location"].endswith("/report/2/")
    text = analyst.get(r["Location"]).content.decode()
    assert 'id="report-changes"' in text
    assert "50\xa0000\xa0kr" in text
    old = analyst.get(url("report_version", grant_id=grant.pk, version=1)).content.decode()
    assert 'id="report-form"' not in old  # frozen


def test_viewer_reads_the_report_but_not_the_accounts(client_for, users, grant, decided_plan):
    services.start_report(users["analyst"], grant)
    viewer = client_for("viewer")
    assert viewer.get(url("report_version", grant_id=grant.pk, version=1)).status_code == 200
    assert viewer.get(url("accounts", grant_id=grant.pk)).status_code == 403
    before = counts()
    r = viewer.post(url("report_version", grant_id=grant.pk, version=1), {"disability": "x"})
    assert r.status_code == 403
    assert counts() == before


@pytest.mark.parametrize("persona", ["manager", "viewer", "auditor", "admin"])
def test_only_the_analyst_changes_the_grant(client_for, grant, persona):
    before = counts()
    changes_before = ChangeRecord.objects.count()
    c = client_for(persona)
    assert c.post(url("transition", grant_id=grant.pk), {"state": "allocated"}).status_code == 403
    assert c.post(url("plan_new", grant_id=grant.pk), {}).status_code == 403
    assert c.post(url("create"), {"name": "x"}).status_code == 403
    assert counts() == before
    assert ChangeRecord.objects.count() == changes_before
