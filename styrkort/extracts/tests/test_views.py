"""The extract pages: list, upload, status with errors, error report, purge; analysts only."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

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
DENIED = ("nobody", "viewer", "auditor", "manager", "colleague", "admin")


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


def _post_files(sample_dir, *tables, period=PERIOD, **overrides):
    data = {"period": period}
    for t in tables:
        data[t] = SimpleUploadedFile(f"{t}.csv", (sample_dir / f"{t}.csv").read_bytes())
    data.update(overrides)
    return data


def _world() -> dict:
    return {
        "versions": list(ExtractVersion.objects.order_by("pk").values()),
        "uploads": list(ExtractUpload.objects.order_by("pk").values()),
        "history": ChangeRecord.objects.count(),
        "jobs": Job.objects.count(),
    }


def test_the_list_shows_versions_with_counts_and_checksums_but_no_rows(v1, client_for):
    response = client_for("analyst").get(reverse("extracts:list"))
    assert response.status_code == 200
    html = response.content.decode()
    for v in ExtractVersion.objects.all():
        assert v.checksum in html
    assert "99/2025Q1" not in html  # no paths either
    assert "p-db9a51ab1039" not in html  # a patient key of the sample
    assert "K0011" not in html  # a contact id
    assert reverse("extracts:upload_status", args=[v1.upload.pk]) in html


def test_the_list_offers_purge_only_for_superseded_versions(superseded, client_for):
    html = client_for("analyst").get(reverse("extracts:list")).content.decode()
    assert reverse("extracts:purge", args=[superseded.pk]) in html
    active = ExtractVersion.objects.get(table="contacts", status="active")
    assert reverse("extracts:purge", args=[active.pk]) not in html


def test_the_list_filters_by_table_and_status(superseded, client_for):
    response = client_for("analyst").get(
        reverse("extracts:list"), {"table": "contacts", "status": "superseded"}
    )
    assert list(response.context["versions"]) == [superseded]


def test_an_analyst_uploads_through_the_page_and_sees_the_versions(
    users, region, sample_units, extract_dirs, sample_dir, client_for, inline, no_recompute
):
    client = client_for("analyst")
    assert client.get(reverse("extracts:upload")).status_code == 200
    response = client.post(reverse("extracts:upload"), _post_files(sample_dir, *ALL))
    upload = ExtractUpload.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("extracts:upload_status", args=[upload.pk])
    assert upload.status == ExtractUpload.Status.ACCEPTED
    assert upload.source_names["contacts"] == "contacts.csv"
    assert ExtractVersion.objects.filter(status="active").count() == 6
    assert files_on_disk(extract_dirs / "uploads") == []  # the raw files are gone
    page = client.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200
    for v in ExtractVersion.objects.all():
        assert v.checksum in html


def test_a_refused_upload_shows_every_error_masked_and_offers_the_report(
    v1, users, region, sample_dir, extract_dirs, client_for, inline
):
    rows = read_csv(sample_dir / "contacts.csv")
    rows[4]["patient_key"] = PNR
    rows[6]["unit_hsa_id"] = "SE2321000099-9999"
    bad = write_csv(sample_dir / "bad.csv", rows)
    client = client_for("analyst")
    before = list(ExtractVersion.objects.order_by("pk").values())
    response = client.post(
        reverse("extracts:upload"),
        {"period": PERIOD, "contacts": SimpleUploadedFile("contacts.csv", bad.read_bytes())},
    )
    upload = ExtractUpload.objects.latest("created")
    assert upload.status == ExtractUpload.Status.REFUSED
    assert list(ExtractVersion.objects.order_by("pk").values()) == before
    page = client.get(response["Location"])
    html = page.content.decode()
    assert "personal_number" in html
    assert "unit_unknown" in html
    assert "19*********54" in html or "19********54" in html
    for raw in PNR_DIGITS:
        assert raw not in html
    report_url = reverse("extracts:error_report", args=[upload.pk])
    assert report_url in html
    report = client.get(report_url)
    assert report.status_code == 200
    assert report["Content-Type"].startswith("text/csv")
    assert "attachment" in report["Content-Disposition"]
    text = b"".join(report.streaming_content).decode("utf-8-sig")
    assert "personal_number" in text
    for raw in PNR_DIGITS:
        assert raw not in text


def test_the_upload_status_and_report_belong_to_the_uploader_only(v1, users, region, client_for):
    from conftest import _make_user

    _make_user("analyst2", "analyst", region)
    other = ExtractUpload.objects.create(
        region=region, period=PERIOD, tables=["contacts"], uploaded_by=users["analyst"],
        status=ExtractUpload.Status.REFUSED, report_path="extract_reports/x.csv",
    )  # fmt: skip
    from django.test import Client

    c = Client()
    c.force_login(type(users["analyst"]).objects.get(username="analyst2"))
    assert c.get(reverse("extracts:upload_status", args=[other.pk])).status_code == 404
    assert c.get(reverse("extracts:error_report", args=[other.pk])).status_code == 404
    outsider = client_for("outsider")
    assert outsider.get(reverse("extracts:upload_status", args=[other.pk])).status_code == 404


def test_the_status_page_polls_the_job_while_it_runs(
    users, region, sample_units, extract_dirs, sample_dir, client_for, settings
):
    settings.STYRKORT_JOBS = "poller"  # the job is queued and nothing has run yet
    client = client_for("analyst")
    response = client.post(reverse("extracts:upload"), _post_files(sample_dir, "contacts"))
    upload = ExtractUpload.objects.get()
    assert upload.status == ExtractUpload.Status.QUEUED
    assert upload.job.status == Job.Status.QUEUED
    html = client.get(response["Location"]).content.decode()
    assert reverse("jobs:progress", args=[upload.job.pk]) in html
    assert "hx-get" in html
    assert files_on_disk(extract_dirs / "uploads") == [f"{upload.pk}/contacts"]


def test_an_invalid_form_stores_nothing_and_leaves_no_file(
    users, region, sample_units, extract_dirs, sample_dir, client_for, inline
):
    client = client_for("analyst")
    response = client.post(
        reverse("extracts:upload"), _post_files(sample_dir, "contacts", period="2025-13")
    )
    assert response.status_code == 400
    assert "period" in response.context["form"].errors
    response = client.post(reverse("extracts:upload"), {"period": PERIOD})
    assert response.status_code == 400
    assert not ExtractUpload.objects.exists()
    assert files_on_disk(extract_dirs) == []


def test_a_zero_byte_file_is_reported_by_the_validator(
    v1, region, extract_dirs, client_for, inline
):
    client = client_for("analyst")
    response = client.post(
        reverse("extracts:upload"),
        {"period": PERIOD, "contacts": SimpleUploadedFile("contacts.csv", b"")},
    )
    upload = ExtractUpload.objects.latest("created")
    assert response.status_code == 302
    assert upload.status == ExtractUpload.Status.REFUSED
    assert [e["rule"] for e in upload.errors] == ["file_empty"]
    assert ExtractVersion.objects.get(table="contacts", status="active").version == 1


def test_an_analyst_purges_a_superseded_version(
    superseded, client_for, django_capture_on_commit_callbacks
):
    client = client_for("analyst")
    url = reverse("extracts:purge", args=[superseded.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert page.context["can_purge"] is True
    path = superseded.full_path
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url)
    assert response.status_code == 302
    superseded.refresh_from_db()
    assert superseded.status == ExtractVersion.Status.PURGED
    assert path.exists()  # deleted by a background job
    assert run_pending() == 1
    assert not path.exists()
    assert ChangeRecord.objects.filter(action="purge", object_id=str(superseded.pk)).exists()


def test_the_version_in_force_cannot_be_purged_from_the_page(v1, client_for):
    active = ExtractVersion.objects.get(table="contacts")
    client = client_for("analyst")
    assert client.get(reverse("extracts:purge", args=[active.pk])).context["can_purge"] is False
    before = _world()
    response = client.post(reverse("extracts:purge", args=[active.pk]), follow=True)
    assert "cannot be purged" in response.content.decode()
    assert _world() == before
    assert active.full_path.is_file()


@pytest.mark.parametrize("persona", DENIED)
def test_every_other_role_gets_403_on_every_extracts_page_and_nothing_changes(
    persona, superseded, client_for, sample_dir, extract_dirs, inline
):
    client = client_for(persona)
    upload = ExtractUpload.objects.first()
    urls = [
        reverse("extracts:list"),
        reverse("extracts:upload"),
        reverse("extracts:upload_status", args=[upload.pk]),
        reverse("extracts:error_report", args=[upload.pk]),
        reverse("extracts:purge", args=[superseded.pk]),
    ]
    before = _world()
    files = files_on_disk(extract_dirs)
    for url in urls:
        assert client.get(url).status_code == 403, url
    assert (
        client.post(reverse("extracts:upload"), _post_files(sample_dir, "contacts")).status_code
        == 403
    )
    assert client.post(reverse("extracts:purge", args=[superseded.pk])).status_code == 403
    assert _world() == before
    assert files_on_disk(extract_dirs) == files  # not even a raw upload was written


def test_anonymous_users_are_sent_to_the_login_page(superseded, client, sample_dir, extract_dirs):
    before = _world()
    for url in (
        reverse("extracts:list"),
        reverse("extracts:upload"),
        reverse("extracts:purge", args=[superseded.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
    response = client.post(reverse("extracts:upload"), _post_files(sample_dir, "contacts"))
    assert response["Location"].startswith(reverse("login"))
    assert _world() == before


def test_an_analyst_of_another_region_sees_nothing_of_this_one(superseded, client_for):
    client = client_for("outsider")
    response = client.get(reverse("extracts:list"))
    assert response.status_code == 200
    assert list(response.context["versions"]) == []
    before = _world()
    assert client.get(reverse("extracts:purge", args=[superseded.pk])).status_code == 404
    assert client.post(reverse("extracts:purge", args=[superseded.pk])).status_code == 404
    assert _world() == before


def test_the_page_streams_the_files_to_a_private_directory(
    users, region, sample_units, extract_dirs, sample_dir, client_for, monkeypatch, settings
):
    settings.STYRKORT_JOBS = "poller"  # look at the raw files before the job deletes them
    seen = {}
    real = services.start_upload

    def spy(actor, period, files, **kwargs):
        for table, f in files.items():
            path = f.private_path
            seen[table] = (
                type(f).__name__,
                path.parent.parent == extract_dirs / "uploads",
                oct(path.stat().st_mode & 0o777),
                oct(path.parent.stat().st_mode & 0o777),
            )
        return real(actor, period, files, **kwargs)

    monkeypatch.setattr(services, "start_upload", spy)
    client_for("analyst").post(reverse("extracts:upload"), _post_files(sample_dir, "contacts"))
    assert seen == {"contacts": ("PrivateUploadedFile", True, "0o600", "0o700")}
    upload = ExtractUpload.objects.get()
    raw = extract_dirs / "uploads" / str(upload.pk)
    assert oct(raw.stat().st_mode & 0o777) == "0o700"
    # Only the job's raw directory is left (the request's own directory is gone).
    assert files_on_disk(extract_dirs / "uploads") == [f"{upload.pk}/contacts"]


def test_the_upload_handler_leaves_other_uploads_to_django():
    from types import SimpleNamespace

    from styrkort.extracts.uploads import PrivateUploadHandler

    request = SimpleNamespace(resolver_match=SimpleNamespace(view_name="grants:attachment_add"))
    handler = PrivateUploadHandler(request)
    handler.new_file("contacts", "c.csv", "text/csv", 3)
    assert handler.receive_data_chunk(b"abc", 0) == b"abc"
    assert handler.file_complete(3) is None
    assert handler.dir is None


def test_the_status_page_of_an_upload_still_being_checked_without_a_job(
    users, region, extract_dirs, client_for
):
    running = ExtractUpload.objects.create(
        region=region, period=PERIOD, tables=["contacts"], uploaded_by=users["analyst"],
        status=ExtractUpload.Status.RUNNING,
    )  # fmt: skip
    response = client_for("analyst").get(reverse("extracts:upload_status", args=[running.pk]))
    assert response.status_code == 200
    assert "being checked" in response.content.decode()
