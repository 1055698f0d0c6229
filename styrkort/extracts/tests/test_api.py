"""The extracts' API: multipart upload → job, upload status, versions, purge; analysts only."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from styrkort.accounts.models import ApiToken
from styrkort.extracts import services
from styrkort.extracts.models import ExtractUpload, ExtractVersion
from styrkort.extracts.tests.conftest import (
    PNR,
    PNR_DIGITS,
    changed_contacts,
    files_on_disk,
    read_csv,
    sample_files,
    write_csv,
)
from styrkort.history.models import ChangeRecord
from styrkort.jobs.models import Job
from styrkort.jobs.services import run_pending

PERIOD = "2025Q1"
ALL = ("contacts", "diagnoses", "procedures", "measurements", "sick_leave", "listings")


@pytest.fixture
def inline(settings):
    settings.STYRKORT_JOBS = "inline"


@pytest.fixture
def v1(users, region, sample_units, extract_dirs, sample_dir, no_recompute):
    result = services.ingest(users["analyst"], region, PERIOD, sample_files(sample_dir))
    assert result.ok
    return result


@pytest.fixture
def superseded(v1, users, region, sample_dir):
    services.ingest(users["analyst"], region, PERIOD, {"contacts": changed_contacts(sample_dir)})
    return ExtractVersion.objects.get(table="contacts", version=1)


def _multipart(sample_dir, *tables, period=PERIOD) -> dict:
    data: dict = {"period": period} if period is not None else {}
    for t in tables:
        data[t] = SimpleUploadedFile(f"{t}.csv", (sample_dir / f"{t}.csv").read_bytes())
    return data


def _world() -> dict:
    return {
        "versions": list(ExtractVersion.objects.order_by("pk").values()),
        "uploads": list(ExtractUpload.objects.order_by("pk").values()),
        "history": ChangeRecord.objects.count(),
        "jobs": Job.objects.count(),
    }


def test_an_analyst_uploads_follows_the_job_and_reads_the_outcome(
    users, region, sample_units, extract_dirs, sample_dir, client_for, inline, no_recompute
):
    client = client_for("analyst")
    response = client.post("/api/extracts/uploads", _multipart(sample_dir, *ALL))
    assert response.status_code == 202, response.content
    body = response.json()
    upload = ExtractUpload.objects.get()
    assert body["upload_id"] == str(upload.pk)
    assert body["job_id"] == str(upload.job_id)
    job = client.get(f"/api/jobs/{body['job_id']}").json()
    assert job["status"] == "done"
    assert job["result"]["status"] == "accepted"
    status = client.get(body["status_url"]).json()
    assert status["status"] == "accepted"
    assert sorted(v["table"] for v in status["versions"]) == sorted(ALL)
    assert status["error_report_url"] is None
    versions = client.get("/api/extracts/versions").json()
    assert len(versions) == 6
    assert {v["status"] for v in versions} == {"active"}
    assert files_on_disk(extract_dirs / "uploads") == []


def test_a_refused_upload_answers_with_masked_errors_and_stores_nothing(
    v1, users, sample_dir, extract_dirs, client_for, inline
):
    rows = read_csv(sample_dir / "contacts.csv")
    rows[4]["patient_key"] = PNR
    bad = write_csv(sample_dir / "bad.csv", rows)
    client = client_for("analyst")
    before = list(ExtractVersion.objects.order_by("pk").values())
    response = client.post(
        "/api/extracts/uploads",
        {"period": PERIOD, "contacts": SimpleUploadedFile("c.csv", bad.read_bytes())},
    )
    assert response.status_code == 202
    status = client.get(response.json()["status_url"])
    text = status.content.decode()
    body = status.json()
    assert body["status"] == "refused"
    assert body["error_count"] == 1
    assert body["errors"][0]["rule"] == "personal_number"
    assert body["errors"][0]["row"] == 6
    assert body["errors"][0]["column"] == "patient_key"
    assert "*" in body["errors"][0]["value"]
    assert body["error_report_url"].endswith("/errors.csv")
    assert client.get(body["error_report_url"]).status_code == 200
    for raw in PNR_DIGITS:
        assert raw not in text
        assert raw not in client.get(f"/api/jobs/{body['job_id']}").content.decode()
    assert list(ExtractVersion.objects.order_by("pk").values()) == before


def test_an_upload_without_a_period_or_files_is_refused_before_anything_is_written(
    users, region, sample_units, extract_dirs, sample_dir, client_for, inline
):
    client = client_for("analyst")
    response = client.post("/api/extracts/uploads", _multipart(sample_dir, "contacts", period=None))
    assert response.status_code == 400
    assert "period" in response.json()["detail"]
    response = client.post("/api/extracts/uploads", {"period": PERIOD})
    assert response.status_code == 400
    response = client.post("/api/extracts/uploads", _multipart(sample_dir, "contacts", period="x"))
    assert response.status_code == 400
    assert not ExtractUpload.objects.exists()
    assert files_on_disk(extract_dirs) == []


def test_a_script_uploads_with_a_token(
    users, region, sample_units, extract_dirs, sample_dir, inline, no_recompute
):
    _token, secret = ApiToken.issue(users["analyst"], "script")
    response = Client().post(
        "/api/extracts/uploads",
        _multipart(sample_dir, "contacts"),
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 202, response.content
    assert ExtractVersion.objects.get().table == "contacts"


def test_the_versions_can_be_filtered(superseded, client_for):
    client = client_for("analyst")
    rows = client.get("/api/extracts/versions", {"table": "contacts"}).json()
    assert [(r["version"], r["status"]) for r in rows] == [(2, "active"), (1, "superseded")]
    rows = client.get("/api/extracts/versions", {"status": "superseded"}).json()
    assert [r["id"] for r in rows] == [superseded.pk]
    assert client.get("/api/extracts/versions", {"period": "2025-02"}).json() == []
    assert len(client.get("/api/extracts/versions", {"period": "2025q1"}).json()) == 7
    assert "path" not in rows[0]


def test_an_analyst_purges_a_superseded_version(
    superseded, client_for, django_capture_on_commit_callbacks
):
    path = superseded.full_path
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for("analyst").post(f"/api/extracts/versions/{superseded.pk}/purge")
    assert response.status_code == 200
    assert response.json()["status"] == "purged"
    assert path.exists()  # deleted by a background job
    assert run_pending() == 1
    assert not path.exists()


def test_the_version_in_force_cannot_be_purged(v1, client_for):
    active = ExtractVersion.objects.get(table="contacts")
    before = _world()
    response = client_for("analyst").post(f"/api/extracts/versions/{active.pk}/purge")
    assert response.status_code == 400
    assert _world() == before
    assert active.full_path.is_file()


@pytest.mark.parametrize(
    ("persona", "status"),
    [
        ("anonymous", 401), ("nobody", 401), ("viewer", 403), ("auditor", 403),
        ("manager", 403), ("colleague", 403), ("admin", 403),
    ],
)  # fmt: skip
def test_every_other_role_is_refused_every_operation_and_nothing_changes(
    persona, status, superseded, users, sample_dir, extract_dirs, inline
):
    client = Client()
    if persona != "anonymous":
        client.force_login(users[persona])
    upload = ExtractUpload.objects.first()
    before = _world()
    files = files_on_disk(extract_dirs)
    assert client.get("/api/extracts/versions").status_code == status
    assert client.get(f"/api/extracts/uploads/{upload.pk}").status_code == status
    response = client.post("/api/extracts/uploads", _multipart(sample_dir, "contacts"))
    assert response.status_code == status
    assert client.post(f"/api/extracts/versions/{superseded.pk}/purge").status_code == status
    assert _world() == before
    assert files_on_disk(extract_dirs) == files


def test_an_analyst_of_another_region_cannot_reach_this_regions_extracts(superseded, client_for):
    client = client_for("outsider")
    upload = ExtractUpload.objects.first()
    before = _world()
    assert client.get("/api/extracts/versions").json() == []
    assert client.get(f"/api/extracts/uploads/{upload.pk}").status_code == 404
    assert client.post(f"/api/extracts/versions/{superseded.pk}/purge").status_code == 404
    assert _world() == before


def test_the_api_streams_the_files_to_a_private_directory_and_drops_refused_ones(
    superseded, users, region, sample_dir, extract_dirs, client_for, monkeypatch, settings
):
    settings.STYRKORT_JOBS = "poller"
    seen = []
    real = services.start_upload

    def spy(actor, period, files, **kwargs):
        seen.extend(type(f).__name__ for f in files.values())
        return real(actor, period, files, **kwargs)

    monkeypatch.setattr(services, "start_upload", spy)
    client = client_for("analyst")
    assert (
        client.post("/api/extracts/uploads", _multipart(sample_dir, "contacts")).status_code == 202
    )
    assert seen == ["PrivateUploadedFile"]
    upload = ExtractUpload.objects.latest("created")
    assert files_on_disk(extract_dirs / "uploads") == [f"{upload.pk}/contacts"]
    # A refused request (here: no period) leaves nothing of what it sent.
    response = client.post("/api/extracts/uploads", _multipart(sample_dir, "contacts", period=None))
    assert response.status_code == 400
    assert files_on_disk(extract_dirs / "uploads") == [f"{upload.pk}/contacts"]
