"""The indicators' API: definitions, results as JSON and CSV with the pages' suppression,
and starting a computation."""

import csv
import io

import pytest

from styrkort.indicators import services
from styrkort.indicators.catalogue import load_catalogue
from styrkort.indicators.models import ComputationRun, IndicatorResult
from styrkort.jobs.models import Job

BASE = "/api/indicators"


def _get(client, path, **params):
    return client.get(BASE + path, params)


def _cell(items, hsa, period="2025-03", sex="T", band="alla"):
    return next(
        r
        for r in items
        if r["unit_hsa_id"] == hsa and r["period"] == period and r["sex"] == sex
        and r["age_band"] == band
    )  # fmt: skip


# --- definitions ------------------------------------------------------------------------------


def test_it_lists_every_definition(client_for, users):
    r = _get(client_for("viewer"), "/definitions")
    assert r.status_code == 200
    body = r.json()
    catalogue = load_catalogue()
    assert [d["code"] for d in body] == [d.code for d in catalogue]
    po04 = next(d for d in body if d["code"] == "PO04")
    assert po04["version"] == catalogue.get("PO04").version
    assert po04["kind"] == "proportion"
    assert po04["polarity"] == "higher_better"
    assert po04["target"]["value"] == 60.0
    assert po04["multiplier"] == 100
    assert po04["pack"] == "psykisk_ohalsa" or po04["pack_name"]
    assert po04["numerator"]


def test_it_shows_one_definition_and_404s_unknown_codes(client_for, users):
    c = client_for("auditor")
    r = _get(c, "/definitions/PO03A")
    assert r.status_code == 200
    assert r.json()["kind"] == "rate_per_1000"
    assert _get(c, "/definitions/XX99").status_code == 404


def test_it_refuses_anonymous_and_users_without_a_role(client, client_for, users):
    assert _get(client, "/definitions").status_code == 401
    assert _get(client_for("nobody"), "/results", indicator="PO09").status_code == 401


# --- results ----------------------------------------------------------------------------------


def test_it_suppresses_results_for_a_viewer_but_not_an_analyst(client_for, po09):
    a = po09["A"].hsa_id
    query = {"indicator": "PO09", "period": "2025-03", "limit": 500}
    viewer = _get(client_for("viewer"), "/results", **query).json()
    cell = _cell(viewer["items"], a)
    assert cell["suppressed"] is True
    assert cell["value"] is None
    assert cell["numerator"] is None
    assert cell["comparison"] == "not_compared"
    analyst = _get(client_for("analyst"), "/results", **query).json()
    cell = _cell(analyst["items"], a)
    assert cell["suppressed"] is False
    assert cell["numerator"] == 3
    assert cell["value"] == pytest.approx(100 / 3)
    assert cell["suppression_reason"] == "primary"  # what others do not see


def test_a_manager_gets_the_own_unit_unsuppressed(client_for, po09):
    a = po09["A"].hsa_id
    query = {"indicator": "PO09", "period": "2025-03", "limit": 500}
    own = _cell(_get(client_for("manager"), "/results", **query).json()["items"], a)
    assert own["numerator"] == 3
    other = _cell(_get(client_for("colleague"), "/results", **query).json()["items"], a)
    assert other["suppressed"] is True


def test_it_filters_results(client_for, po09):
    c = client_for("analyst")
    a = po09["A"]
    body = _get(c, "/results", indicator="PO09", unit=a.pk, period_type="quarter", sex="K",
                age_band="25-44").json()  # fmt: skip
    assert body["count"] == 2
    assert {(r["unit_id"], r["period"], r["sex"], r["age_band"]) for r in body["items"]} == {
        (a.pk, "2025Q1", "K", "25-44"),
        (a.pk, "2025Q2", "K", "25-44"),
    }
    assert body["items"][0]["period_type"] == "quarter"
    assert body["items"][0]["indicator"] == "PO09"
    body = _get(c, "/results", indicator="PO09", unit=a.hsa_id, period="2025").json()
    assert {r["unit_hsa_id"] for r in body["items"]} == {a.hsa_id}
    body = _get(c, "/results", indicator="PO09", unit="region", period="2025Q1", sex="T",
                age_band="alla").json()  # fmt: skip
    assert body["count"] == 1
    assert body["items"][0]["unit_id"] is None


def test_it_pages_results(client_for, po09):
    c = client_for("viewer")
    first = _get(c, "/results", indicator="PO09", limit=10, offset=0).json()
    total = IndicatorResult.objects.filter(definition__code="PO09").count()
    assert first["count"] == total
    assert len(first["items"]) == 10
    second = _get(c, "/results", indicator="PO09", limit=10, offset=10).json()
    assert {r["unit_hsa_id"] for r in second["items"]}
    assert first["items"] != second["items"]


def test_it_refuses_bad_filters(client_for, po09, other_unit):
    c = client_for("viewer")
    assert _get(c, "/results").status_code == 422  # the indicator is required
    assert _get(c, "/results", indicator="PO09", period="2025Q9").status_code == 422
    assert _get(c, "/results", indicator="PO09", sex="X").status_code == 422
    assert _get(c, "/results", indicator="PO09", age_band="25-29").status_code == 422
    assert _get(c, "/results", indicator="XX99").status_code == 404
    assert _get(c, "/results", indicator="PO09", unit=other_unit.pk).status_code == 404


def test_it_answers_other_regions_with_nothing(client_for, po09):
    body = _get(client_for("outsider"), "/results", indicator="PO09").json()
    assert body == {"items": [], "count": 0}


# --- CSV --------------------------------------------------------------------------------------


def _csv(response) -> list[dict]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_it_gives_csv_with_the_same_suppression(client_for, po09):
    a = po09["A"].hsa_id
    query = {"indicator": "PO09", "period": "2025-03", "sex": "T", "age_band": "alla"}
    viewer = _csv(_get(client_for("viewer"), "/results.csv", **query))
    assert {r["Period"] for r in viewer} == {"2025-03"}
    row = next(r for r in viewer if r["HSA-id"] == a)
    assert row["Value"] == ""
    analyst = _csv(_get(client_for("analyst"), "/results.csv", **query))
    row = next(r for r in analyst if r["HSA-id"] == a)
    assert float(row["Numerator"]) == 3
    assert _get(client_for("viewer"), "/results.csv", indicator="PO09", sex="X").status_code == 422


def test_it_404s_csv_before_anything_is_computed(client_for, users):
    assert _get(client_for("viewer"), "/results.csv", indicator="PO09").status_code == 404


# --- compute ----------------------------------------------------------------------------------


def test_it_queues_a_computation_for_an_analyst(client_for, users, settings, monkeypatch):
    settings.STYRKORT_JOBS = "inline"
    monkeypatch.setattr(
        services,
        "compute",
        lambda region, *a, **kw: ComputationRun.objects.create(
            region=region, status=ComputationRun.Status.DONE
        ),
    )
    c = client_for("analyst")
    r = c.post(BASE + "/compute", {"periods": ["2025-03"]}, content_type="application/json")
    assert r.status_code == 202
    job = Job.objects.get()
    assert r.json()["job"] == str(job.pk)
    assert r.json()["status_url"] == f"/api/jobs/{job.pk}"
    assert job.params["periods"] == ["2025-03"]
    status = c.get(f"/api/jobs/{job.pk}").json()
    assert status["status"] == "done"
    assert status["kind"] == services.JOB_KIND
    r = client_for("admin").post(BASE + "/compute", {}, content_type="application/json")
    assert r.status_code == 202


@pytest.mark.parametrize("persona", ["viewer", "auditor", "manager", "colleague"])
def test_it_refuses_to_compute_for_other_roles_and_queues_nothing(client_for, users, persona):
    r = client_for(persona).post(BASE + "/compute", {}, content_type="application/json")
    assert r.status_code == 403
    assert not Job.objects.exists()
    assert not ComputationRun.objects.exists()


def test_it_refuses_bad_compute_periods(client_for, users):
    r = client_for("analyst").post(
        BASE + "/compute", {"periods": ["2025-13"]}, content_type="application/json"
    )
    assert r.status_code == 422
    assert not Job.objects.exists()
