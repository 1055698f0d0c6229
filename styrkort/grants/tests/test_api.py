"""The grants API: the same cycle and the same refusals as the pages."""

from __future__ import annotations

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from openpyxl import load_workbook

from styrkort.grants import services
from styrkort.grants.models import AccountStatus, Grant, PlanStatus
from styrkort.grants.tests.conftest import POPULATION_TEXT, plan_spec
from styrkort.grants.tests.test_services import counts, lines

API = "/api/grants"


def call(client, method: str, path: str, body=None):
    return client.generic(
        method, API + path, json.dumps(body or {}), content_type="application/json"
    )


GRANT_BODY = {
    "name": "Psykisk ohälsa 2025",
    "total": "14 446 372",
    "first_year": 2025,
    "accounts_deadline": "2026-01-31",
    "report_deadline": "2026-03-15",
    "repayment_deadline": "2026-03-31",
    "dnr": "S2025/1",
}


def test_it_runs_the_cycle_through_the_api(client_for, users, listings, unit_a, unit_b):
    analyst, manager = client_for("analyst"), client_for("manager")
    r = call(analyst, "POST", "", GRANT_BODY)
    assert r.status_code == 201, r.content
    grant_id = r.json()["id"]
    assert r.json()["state"] == "decided"
    assert [c["code"] for c in r.json()["categories"]][:2] == ["psykolog", "ptp_psykolog"]

    body = {
        "reference_month": "2025-10",
        "central_items": [{"name": "Utbildning", "percent": "15", "category": "utbildning"}],
    }
    r = call(analyst, "POST", f"/{grant_id}/plans", body)
    assert r.status_code == 201, r.content
    plan = r.json()
    assert plan["status"] == "draft"
    assert plan["balanced"] is True
    assert sum(u["amount"] for u in plan["units"]) + plan["central"][0]["amount"] == 14_446_372
    r = call(analyst, "POST", f"/{grant_id}/plans/{plan['id']}/decide", {"dnr": "RS 1"})
    assert r.status_code == 200
    assert r.json()["status"] == "decided"
    assert r.json()["dnr"] == "RS 1"

    # The manager sees only the own unit and accounts for it.
    r = call(manager, "GET", f"/{grant_id}/accounts")
    assert [a["hsa_id"] for a in r.json()] == [unit_a.hsa_id]
    r = call(
        manager,
        "PUT",
        f"/{grant_id}/accounts/{unit_a.pk}",
        {"lines": {"psykolog": {"used": 500_000, "persons": 1, "fte_added": "0.5"}}},
    )
    assert r.status_code == 200, r.content
    assert r.json()["used_total"] == 500_000
    r = manager.post(
        f"{API}/{grant_id}/accounts/{unit_a.pk}/attachments",
        {"file": SimpleUploadedFile("intyg.txt", b"Intyg")},
    )
    assert r.status_code == 201, r.content
    r = call(manager, "POST", f"/{grant_id}/accounts/{unit_a.pk}/submit")
    assert r.status_code == 200
    assert r.json()["status"] == "submitted"
    assert r.json()["late"] is True  # 2026-01-31 has passed

    # The analyst approves; the colleague's unit is in the reminder list.
    r = call(analyst, "GET", f"/{grant_id}/accounts/missing")
    assert [m["hsa_id"] for m in r.json()] == [unit_b.hsa_id]
    assert r.json()[0]["managers"][0]["username"] == "colleague"
    r = call(analyst, "POST", f"/{grant_id}/accounts/{unit_a.pk}/approve", {"comment": ""})
    assert r.json()["status"] == "approved"

    r = call(analyst, "PUT", f"/{grant_id}/central-spending", [
        {"name": "Utbildning", "used": "2 000 000", "persons": 80}
    ])  # fmt: skip
    assert r.status_code == 200, r.content
    repayment = r.json()
    assert repayment["central_repay"] == plan["central"][0]["amount"] - 2_000_000
    assert repayment["total_repay"] == 14_446_372 - 500_000 - 2_000_000

    r = call(analyst, "POST", f"/{grant_id}/reports", {})
    assert r.status_code == 201
    r = call(analyst, "PATCH", f"/{grant_id}/reports/1", {
        "gender_equality": "a", "childrens_rights": "b", "disability": "c",
    })  # fmt: skip
    assert r.status_code == 200
    r = call(analyst, "POST", f"/{grant_id}/reports/1/submit")
    assert r.status_code == 200
    assert r.json()["submitted"] is True
    assert r.json()["data"]["units_used"] == 500_000
    pdf = analyst.get(f"{API}/{grant_id}/reports/1/pdf")
    assert pdf.content.startswith(b"%PDF")
    book = load_workbook(io.BytesIO(analyst.get(f"{API}/{grant_id}/reports/1/xlsx").content))
    assert "Psykisk ohälsa 2025" in book.active["A1"].value


def test_a_unit_manager_cannot_see_or_report_for_another_unit(
    client_for, users, grant, decided_plan, unit_b
):
    services.save_account(users["colleague"], grant, unit_b, lines=lines(77_000))
    manager = client_for("manager")
    before = counts()
    assert call(manager, "GET", f"/{grant.pk}/accounts/{unit_b.pk}").status_code == 403
    body = {"lines": {"psykolog": {"used": 1}}}
    assert call(manager, "PUT", f"/{grant.pk}/accounts/{unit_b.pk}", body).status_code == 403
    assert call(manager, "POST", f"/{grant.pk}/accounts/{unit_b.pk}/submit").status_code == 403
    r = manager.post(
        f"{API}/{grant.pk}/accounts/{unit_b.pk}/attachments",
        {"file": SimpleUploadedFile("x.txt", b"x")},
    )
    assert r.status_code == 403
    assert call(manager, "GET", f"/{grant.pk}/accounts/missing").status_code == 403
    assert call(manager, "GET", f"/{grant.pk}/repayment").status_code == 403
    assert call(manager, "GET", f"/{grant.pk}/reports").status_code == 403
    listed = call(manager, "GET", f"/{grant.pk}/accounts").json()
    assert all(a["hsa_id"] != unit_b.hsa_id for a in listed)
    assert counts() == before


def test_refusals_answer_400_with_every_problem_and_change_nothing(
    client_for, users, grant, decided_plan, unit_a
):
    analyst, manager = client_for("analyst"), client_for("manager")
    before = counts()
    r = call(manager, "PUT", f"/{grant.pk}/accounts/{unit_a.pk}", {
        "lines": {"psykolog": {"used": -5}, "tandvard": {"used": 1}}
    })  # fmt: skip
    assert r.status_code == 400
    assert len(r.json()["errors"]) == 2
    assert "negative" in r.json()["errors"][0]
    r = call(analyst, "POST", f"/{grant.pk}/plans", {"reference_month": "2024-02"})
    assert r.status_code == 400
    assert "no listed patients in 2024-02" in r.json()["detail"]
    r = call(
        analyst, "POST", f"/{grant.pk}/plans", {"reference_month": "2025-10", "floor": "600000"}
    )
    assert r.status_code == 400
    assert "floors sum to" in r.json()["detail"]
    r = call(
        analyst, "PATCH", f"/{grant.pk}/plans/{decided_plan.pk}", {"reference_month": "2025-10"}
    )
    assert r.status_code == 400
    assert "cannot be changed" in r.json()["detail"]
    r = call(analyst, "PATCH", f"/{grant.pk}", {"total": "1000,50"})
    assert r.status_code == 400
    r = call(analyst, "POST", "/national-distributions", {
        "name": "x", "total": 496_000_000, "reference_date": "2024-12-31",
        "population_csv": POPULATION_TEXT + "18,1\n",
    })  # fmt: skip
    assert r.status_code == 400
    assert any("more than once" in e for e in r.json()["errors"])
    assert counts() == before


def test_a_float_amount_is_refused(client_for, users):
    r = call(client_for("analyst"), "POST", "", {**GRANT_BODY, "total": 1000.5})
    assert r.status_code == 422
    assert not Grant.objects.exists()


def test_national_distribution_preview_and_save(client_for, users):
    analyst = client_for("analyst")
    r = call(analyst, "POST", "/national-distributions/preview",
             {"total": 496_000_000, "population_csv": POPULATION_TEXT})  # fmt: skip
    assert r.status_code == 200
    orebro = next(row for row in r.json()["rows"] if row["lan_code"] == "18")
    assert orebro["amount"] == 14_446_372
    assert orebro["share_percent"] == "2.9126"
    before = counts()
    assert call(client_for("viewer"), "POST", "/national-distributions/preview",
                {"total": 1, "population_csv": POPULATION_TEXT}).status_code == 403  # fmt: skip
    assert counts() == before
    r = call(analyst, "POST", "/national-distributions", {
        "name": "2025", "total": "496 000 000", "reference_date": "2024-12-31",
        "population_csv": POPULATION_TEXT,
    })  # fmt: skip
    assert r.status_code == 201
    dist_id = r.json()["id"]
    assert (
        call(client_for("viewer"), "GET", f"/national-distributions/{dist_id}").status_code == 200
    )
    assert (
        call(client_for("outsider"), "GET", f"/national-distributions/{dist_id}").status_code == 404
    )


def test_drafts_are_hidden_from_unit_managers_and_viewers(client_for, users, grant, listings):
    draft = services.create_plan(users["analyst"], grant, plan_spec())
    for persona in ("manager", "viewer"):
        c = client_for(persona)
        assert call(c, "GET", f"/{grant.pk}/plans").json() == []
        assert call(c, "GET", f"/{grant.pk}/plans/{draft.pk}").status_code == 404
    assert call(client_for("auditor"), "GET", f"/{grant.pk}/plans/{draft.pk}").status_code == 200


def test_superseding_through_the_api_needs_a_reason(client_for, users, grant, decided_plan):
    analyst = client_for("analyst")
    r = call(analyst, "POST", f"/{grant.pk}/plans", {
        "reference_month": "2025-10", "cap": 450_000,
        "central_items": [{"name": "Utbildning", "percent": "15", "category": "utbildning"}],
    })  # fmt: skip
    new_id = r.json()["id"]
    assert r.json()["previous_version"] == 1
    diffs = {u["hsa_id"]: u["diff"] for u in r.json()["units"]}
    assert diffs == {"SE2321000016-A001": -60_000, "SE5566778899-B002": 60_000}
    r = call(analyst, "POST", f"/{grant.pk}/plans/{new_id}/decide", {"dnr": "RS 2"})
    assert r.status_code == 400
    r = call(analyst, "POST", f"/{grant.pk}/plans/{new_id}/decide",
             {"dnr": "RS 2", "reason": "Tak"})  # fmt: skip
    assert r.status_code == 200
    old = call(analyst, "GET", f"/{grant.pk}/plans/{decided_plan.pk}").json()
    assert old["status"] == PlanStatus.SUPERSEDED
    assert old["superseded_reason"] == "Tak"


@pytest.mark.parametrize("persona", ["viewer", "auditor", "admin", "manager"])
def test_only_the_analyst_reviews(client_for, users, grant, decided_plan, unit_a, persona):
    account = services.save_account(users["manager"], grant, unit_a, lines=lines())
    services.submit_account(users["manager"], account)
    before = counts()
    r = call(client_for(persona), "POST", f"/{grant.pk}/accounts/{unit_a.pk}/approve")
    assert r.status_code == 403
    assert counts() == before
    account.refresh_from_db()
    assert account.status == AccountStatus.SUBMITTED
