"""Storing extracts: versions, all-or-nothing refusals, purge, crash safety and privacy.

The validator's own tests cover the rules; here each refusal is checked to leave nothing stored
and the previous version in force, and the identifiers sent never to reach disk, database or log.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied

from styrkort.extracts import services
from styrkort.extracts.models import ExtractUpload, ExtractVersion
from styrkort.extracts.tests.conftest import (
    PNR,
    PNR_DIGITS,
    SAMORDNING,
    SAMORDNING_DIGITS,
    changed_contacts,
    files_on_disk,
    read_csv,
    sample_files,
    write_csv,
)
from styrkort.extracts.validation import ExtractProcessingError
from styrkort.history.models import ChangeRecord
from styrkort.jobs.models import Job
from styrkort.jobs.services import run_pending

PERIOD = "2025Q1"
ALL = ("contacts", "diagnoses", "procedures", "measurements", "sick_leave", "listings")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def state(data_dir: Path) -> dict:
    """What a failed or refused upload must leave unchanged (reports and uploads aside)."""
    return {
        "versions": list(ExtractVersion.objects.order_by("pk").values()),
        "history": ChangeRecord.objects.count(),
        "files": files_on_disk(data_dir / "extracts"),
    }


@pytest.fixture
def analyst(users):
    return users["analyst"]


@pytest.fixture
def v1(analyst, region, sample_units, extract_dirs, sample_dir, no_recompute):
    """The whole sample stored once: version 1 of every table."""
    result = services.ingest(analyst, region, PERIOD, sample_files(sample_dir))
    assert result.ok, result.upload.errors[:3]
    return result


def test_it_stores_an_accepted_upload_as_version_1_of_every_table(v1, extract_dirs, region):
    versions = ExtractVersion.objects.filter(region=region).order_by("table")
    assert sorted(v.table for v in versions) == sorted(ALL)
    for v in versions:
        assert v.version == 1
        assert v.status == ExtractVersion.Status.ACTIVE
        assert v.path == f"99/2025Q1/{v.table}/v1.parquet"
        assert v.full_path.is_file()
        assert sha256(v.full_path) == v.checksum
        assert v.source_name == f"{v.table}.csv"
        assert len(v.source_checksum) == 64
        assert v.upload_id == v1.upload.pk
    assert {v.table: v.rows for v in versions}["contacts"] == 40
    # Nothing else is left: no staging, no report, no raw upload.
    assert files_on_disk(extract_dirs) == sorted(f"extracts/99/2025Q1/{t}/v1.parquet" for t in ALL)
    upload = ExtractUpload.objects.get()
    assert upload.status == ExtractUpload.Status.ACCEPTED
    assert upload.row_counts["contacts"] == 40
    history = ChangeRecord.objects.filter(action="import")
    assert history.count() == 6
    assert {h.object_type for h in history} == {"extracts.extractversion"}
    assert all(h.actor.username == "analyst" for h in history)


def test_it_keeps_the_old_version_when_a_table_is_uploaded_again(v1, analyst, region, sample_dir):
    old = ExtractVersion.objects.get(table="contacts")
    result = services.ingest(analyst, region, PERIOD, {"contacts": changed_contacts(sample_dir)})
    assert result.ok
    old.refresh_from_db()
    new = ExtractVersion.objects.get(table="contacts", status=ExtractVersion.Status.ACTIVE)
    assert (old.version, old.status) == (1, ExtractVersion.Status.SUPERSEDED)
    assert new.version == 2
    assert new.path.endswith("contacts/v2.parquet")
    assert old.full_path.is_file()
    assert new.full_path.is_file()
    assert old.checksum != new.checksum
    # The other tables are untouched.
    assert ExtractVersion.objects.filter(status="active").count() == 6
    transition = ChangeRecord.objects.get(action="transition")
    assert transition.object_id == str(old.pk)
    assert transition.before["status"] == "active"
    assert transition.after["status"] == "superseded"
    assert ChangeRecord.objects.filter(action="import").count() == 7
    assert result.versions == [new]


def test_it_purges_a_superseded_version(
    v1, analyst, region, sample_dir, django_capture_on_commit_callbacks
):
    services.ingest(analyst, region, PERIOD, {"contacts": changed_contacts(sample_dir)})
    old = ExtractVersion.objects.get(table="contacts", version=1)
    path = old.full_path
    with django_capture_on_commit_callbacks(execute=True):
        services.purge(analyst, old)
    old.refresh_from_db()
    assert old.status == ExtractVersion.Status.PURGED
    entry = ChangeRecord.objects.get(action="purge")
    assert entry.object_id == str(old.pk)
    assert entry.actor == analyst
    # The file goes in a background job.
    job = Job.objects.get(kind=services.PURGE_JOB_KIND)
    assert (job.status, job.params, job.created_by) == ("queued", {"version": old.pk}, analyst)
    assert path.exists()
    assert run_pending() == 1
    job.refresh_from_db()
    assert (job.status, job.result) == ("done", {"version": old.pk, "deleted": True})
    assert not path.exists()
    assert ExtractVersion.objects.get(table="contacts", version=2).full_path.is_file()
    with pytest.raises(services.UploadError):
        services.purge(analyst, old)


def test_jobs_run_inline_wait_for_the_running_computation_before_deleting(
    v1, analyst, region, sample_dir, settings, django_capture_on_commit_callbacks
):
    settings.STYRKORT_JOBS = "inline"  # the command line: nothing would take a deferred job
    services.ingest(analyst, region, PERIOD, {"contacts": changed_contacts(sample_dir)})
    old = ExtractVersion.objects.get(table="contacts", version=1)
    holding, releasing = threading.Event(), threading.Event()

    def computation() -> None:
        with services.derived_lock(region):
            holding.set()
            time.sleep(0.3)
            # Still there while the computation may read it.
            releasing.set() if old.full_path.exists() else None

    other = threading.Thread(target=computation)
    other.start()
    holding.wait(5)
    with django_capture_on_commit_callbacks(execute=True):
        services.purge(analyst, old)
    other.join()
    assert releasing.is_set()
    assert not old.full_path.exists()


def test_it_leaves_a_purged_file_to_cleanup_when_the_region_stays_busy(
    v1, analyst, region, sample_dir, settings, django_capture_on_commit_callbacks, caplog
):
    settings.STYRKORT_JOBS = "inline"
    services.ingest(analyst, region, PERIOD, {"contacts": changed_contacts(sample_dir)})
    old = ExtractVersion.objects.get(table="contacts", version=1)
    settings.STYRKORT_COMPUTE_LOCK_TIMEOUT = 0.1
    with services.derived_lock(region), django_capture_on_commit_callbacks(execute=True):
        services.purge(analyst, old)
    assert Job.objects.get(kind=services.PURGE_JOB_KIND).result["deleted"] is False
    assert old.full_path.exists()
    assert "left for extracts-cleanup" in caplog.text
    old.refresh_from_db()
    assert old.status == ExtractVersion.Status.PURGED
    services.cleanup()
    assert not old.full_path.exists()


def test_the_purge_job_goes_back_to_the_queue_while_the_region_is_busy(
    v1, analyst, region, sample_dir, settings, django_capture_on_commit_callbacks
):
    settings.STYRKORT_JOBS = "poller"
    services.ingest(analyst, region, PERIOD, {"contacts": changed_contacts(sample_dir)})
    old = ExtractVersion.objects.get(table="contacts", version=1)
    with services.derived_lock(region):
        with django_capture_on_commit_callbacks(execute=True):
            services.purge(analyst, old)
        assert run_pending() == 1
    job = Job.objects.get(kind=services.PURGE_JOB_KIND)
    assert (job.status, job.attempts) == (Job.Status.QUEUED, 0)
    assert old.full_path.exists()
    Job.objects.filter(pk=job.pk).update(not_before=None)
    assert run_pending() == 1
    assert not old.full_path.exists()


def test_the_purge_job_leaves_the_file_of_a_version_that_is_not_purged(v1, analyst):
    active = ExtractVersion.objects.get(table="contacts")
    job = Job.objects.create(
        kind=services.PURGE_JOB_KIND, params={"version": active.pk}, created_by=analyst
    )
    assert run_pending() == 1
    job.refresh_from_db()
    assert job.status == "failed"
    assert "is not purged" in job.error
    assert active.full_path.is_file()
    gone = Job.objects.create(kind=services.PURGE_JOB_KIND, params={}, created_by=analyst)
    assert run_pending() == 1
    gone.refresh_from_db()
    assert (gone.status, gone.error) == (
        "failed",
        "the purged version of this job no longer exists",
    )


def test_it_refuses_to_purge_the_version_in_force(v1, analyst, extract_dirs):
    active = ExtractVersion.objects.get(table="contacts")
    before = state(extract_dirs)
    with pytest.raises(services.UploadError):
        services.purge(analyst, active)
    assert state(extract_dirs) == before


def test_it_numbers_versions_above_purged_ones(
    v1, analyst, region, sample_dir, django_capture_on_commit_callbacks
):
    services.ingest(analyst, region, PERIOD, {"contacts": changed_contacts(sample_dir)})
    with django_capture_on_commit_callbacks(execute=True):
        services.purge(analyst, ExtractVersion.objects.get(table="contacts", version=1))
    services.ingest(analyst, region, PERIOD, {"contacts": sample_dir / "contacts.csv"})
    assert list(
        ExtractVersion.objects.filter(table="contacts")
        .order_by("version")
        .values_list("version", "status")
    ) == [(1, "purged"), (2, "superseded"), (3, "active")]


def test_it_checks_diagnoses_sent_alone_against_the_contacts_in_force(
    v1, analyst, region, sample_dir
):
    result = services.ingest(analyst, region, PERIOD, {"diagnoses": sample_dir / "diagnoses.csv"})
    assert result.ok
    assert ExtractVersion.objects.get(table="diagnoses", status="active").version == 2


# --- bad input: a clear report, nothing stored, the previous version in force -------------------


def _ragged(folder: Path) -> dict[str, Path]:
    text = (folder / "contacts.csv").read_text(encoding="utf-8").splitlines()
    text[3] += ",extra"
    path = folder / "ragged.csv"
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    return {"contacts": path}


def _empty(folder: Path) -> dict[str, Path]:
    path = folder / "empty.csv"
    path.write_bytes(b"")
    return {"contacts": path}


def _pnr_in_patient_key(folder: Path) -> dict[str, Path]:
    rows = read_csv(folder / "contacts.csv")
    rows[4]["patient_key"] = PNR
    return {"contacts": write_csv(folder / "pnr.csv", rows)}


def _orphan_diagnosis(folder: Path) -> dict[str, Path]:
    rows = read_csv(folder / "diagnoses.csv")
    rows.append({"contact_id": "K9999", "icd10_code": "F32.1", "rank": "1"})
    return {"diagnoses": write_csv(folder / "orphans.csv", rows)}


def _unknown_unit(folder: Path) -> dict[str, Path]:
    rows = read_csv(folder / "contacts.csv")
    rows[2]["unit_hsa_id"] = "SE2321000099-9999"
    return {"contacts": write_csv(folder / "unit.csv", rows)}


def _wrong_delimiter(folder: Path) -> dict[str, Path]:
    rows = read_csv(folder / "contacts.csv")
    path = folder / "tabs.csv"
    lines = ["\t".join(rows[0])] + ["\t".join(r.values()) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"contacts": path}


def _broken_quoting(folder: Path) -> dict[str, Path]:
    lines = (folder / "diagnoses.csv").read_text(encoding="utf-8").splitlines()
    lines[5] = lines[5].replace(",", ',"', 1)  # a quote opened, never closed
    path = folder / "quoting.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"diagnoses": path}


def _parquet_wrong_types(folder: Path) -> dict[str, Path]:
    import duckdb

    target = folder / "contacts.parquet"
    con = duckdb.connect()
    con.execute(
        "COPY (SELECT * REPLACE (CAST(replace(contact_date, '-', '') AS BIGINT) AS contact_date) "
        f"FROM read_csv('{folder / 'contacts.csv'}', all_varchar = true)) TO '{target}' "
        "(FORMAT parquet)"
    )
    con.close()
    return {"contacts": target}


def _unknown_code(folder: Path) -> dict[str, Path]:
    rows = read_csv(folder / "diagnoses.csv")
    rows[3]["icd10_code"] = "F99.9X"
    return {"diagnoses": write_csv(folder / "codes.csv", rows)}


def _date_outside(folder: Path) -> dict[str, Path]:
    rows = read_csv(folder / "contacts.csv")
    rows[5]["contact_date"] = "2025-04-02"
    return {"contacts": write_csv(folder / "dates.csv", rows)}


def _duplicate_contact(folder: Path) -> dict[str, Path]:
    rows = read_csv(folder / "contacts.csv")
    rows[9]["contact_id"] = rows[8]["contact_id"]
    return {"contacts": write_csv(folder / "dupes.csv", rows)}


def _samordningsnummer_in_contact_id(folder: Path) -> dict[str, Path]:
    rows = read_csv(folder / "contacts.csv")
    rows[2]["contact_id"] = SAMORDNING
    return {"contacts": write_csv(folder / "samordning.csv", rows)}


BAD_INPUTS = {
    "ragged rows": (_ragged, "row_field_count"),
    "a 0-byte file": (_empty, "file_empty"),
    "a personnummer in patient_key": (_pnr_in_patient_key, "personal_number"),
    "orphan diagnosis rows": (_orphan_diagnosis, "orphan_row"),
    "a unit not in the registry": (_unknown_unit, "unit_unknown"),
    "a wrong delimiter": (_wrong_delimiter, "delimiter_not_detected"),
    "broken quoting": (_broken_quoting, "row_quoting"),
    "Parquet with a wrong column type": (_parquet_wrong_types, "parquet_column_type"),
    "an unknown code": (_unknown_code, "icd10_unknown"),
    "a date outside the period": (_date_outside, "date_outside_period"),
    "duplicate contact ids": (_duplicate_contact, "duplicate_key"),
    "a samordningsnummer in an id column": (_samordningsnummer_in_contact_id, "personal_number"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_it_refuses_bad_input_leaving_nothing_and_the_previous_version_in_force(
    case, v1, analyst, region, sample_dir, extract_dirs
):
    make, rule = BAD_INPUTS[case]
    before = state(extract_dirs)
    result = services.ingest(analyst, region, PERIOD, make(sample_dir))
    assert not result.ok
    upload = result.upload
    upload.refresh_from_db()
    assert upload.status == ExtractUpload.Status.REFUSED
    assert upload.error_count >= 1
    assert rule in {e["rule"] for e in upload.errors}
    assert state(extract_dirs) == before  # no Parquet, no row, no history
    assert ExtractVersion.objects.filter(status="active").count() == 6
    report = upload.report_full_path
    assert report.is_file()
    assert report.parent == extract_dirs / "extract_reports"
    assert rule in report.read_text(encoding="utf-8-sig")
    assert files_on_disk(extract_dirs / "extracts" / ".staging") == []


def test_hsa_ids_and_organisation_numbers_are_not_taken_for_personal_numbers(
    v1, analyst, region, sample_dir, shared_data
):
    hsa_ids = [r["hsa_id"] for r in read_csv(shared_data / "hsa_id_examples.csv")]
    rows = read_csv(sample_dir / "contacts.csv")
    for i, row in enumerate(rows):
        row["contact_id"] = hsa_ids[i % len(hsa_ids)] + f"-{i}"
        row["patient_key"] = f"org-232100-0164-{i}"
    result = services.ingest(
        analyst, region, PERIOD, {"contacts": write_csv(sample_dir / "hsa.csv", rows)}
    )
    assert result.ok, result.upload.errors[:3]
    assert ExtractVersion.objects.get(table="contacts", status="active").version == 2


def test_it_refuses_without_a_previous_version_and_stores_nothing(
    analyst, region, sample_units, extract_dirs, sample_dir, no_recompute
):
    result = services.ingest(analyst, region, PERIOD, _unknown_unit(sample_dir))
    assert not result.ok
    assert not ExtractVersion.objects.exists()
    assert files_on_disk(extract_dirs / "extracts") == []
    assert no_recompute == []


# --- crash safety -------------------------------------------------------------------------------


def test_a_crash_after_the_files_were_moved_leaves_v1_in_force_and_no_new_file(
    v1, analyst, region, sample_dir, extract_dirs, monkeypatch
):
    before = state(extract_dirs)
    moved: list[list[str]] = []

    def crash(*args, **kwargs):
        moved.append(files_on_disk(extract_dirs / "extracts"))
        raise OSError("disk full while registering")

    monkeypatch.setattr(services, "_register", crash)
    with pytest.raises(ExtractProcessingError):
        services.ingest(analyst, region, PERIOD, {"contacts": changed_contacts(sample_dir)})
    # The file had been moved into place when the registration failed …
    assert "99/2025Q1/contacts/v2.parquet" in moved[0]
    # … and is gone again; version 1 is in force; no row and no history were written.
    assert state(extract_dirs) == before
    assert ExtractVersion.objects.get(table="contacts", status="active").version == 1
    upload = ExtractUpload.objects.latest("created")
    assert upload.status == ExtractUpload.Status.FAILED
    assert "OSError" in upload.message
    assert "disk full" not in upload.message


def test_an_orphan_file_left_by_a_dead_process_is_removed_by_the_next_ingest(
    v1, analyst, region, sample_dir, extract_dirs
):
    # As if a process had died between moving v2 into place and committing its row.
    orphan = extract_dirs / "extracts/99/2025Q1/contacts/v2.parquet"
    orphan.write_bytes(b"half-registered")
    stray = extract_dirs / "extracts/99/2025Q1/diagnoses/v7.parquet"
    stray.write_bytes(b"half-registered")
    assert ExtractVersion.objects.get(table="contacts", status="active").version == 1
    result = services.ingest(analyst, region, PERIOD, {"contacts": changed_contacts(sample_dir)})
    assert result.ok
    v2 = ExtractVersion.objects.get(table="contacts", status="active")
    assert v2.version == 2
    assert sha256(v2.full_path) == v2.checksum
    assert not stray.exists()


def test_cleanup_removes_orphans_stale_staging_and_raw_uploads(
    v1, analyst, region, extract_dirs, django_capture_on_commit_callbacks
):
    orphan = extract_dirs / "extracts/99/2025Q1/contacts/v9.parquet"
    orphan.write_bytes(b"x")
    failed = ExtractUpload.objects.create(
        region=region, period=PERIOD, tables=["contacts"], uploaded_by=analyst,
        status=ExtractUpload.Status.FAILED,
    )  # fmt: skip
    running = ExtractUpload.objects.create(
        region=region, period=PERIOD, tables=["contacts"], uploaded_by=analyst,
        status=ExtractUpload.Status.RUNNING,
    )  # fmt: skip
    for up in (failed, running):
        for root in (extract_dirs / "uploads", extract_dirs / "extracts/.staging"):
            (root / str(up.pk)).mkdir(parents=True)
            (root / str(up.pk) / "contacts").write_bytes(b"raw")
    result = services.cleanup()
    assert result.orphan_files == 1
    assert not orphan.exists()
    assert result.upload_dirs == 1
    assert result.staging_dirs == 1
    assert not (extract_dirs / "uploads" / str(failed.pk)).exists()
    assert (extract_dirs / "uploads" / str(running.pk) / "contacts").exists()  # still running
    # Every registered file is still there.
    for v in ExtractVersion.objects.all():
        assert v.full_path.is_file()
    assert "orphan" in result.summary()


def test_the_next_ingest_job_removes_raw_files_an_earlier_attempt_left(
    analyst, region, sample_units, extract_dirs, sample_dir, inline_jobs, no_recompute
):
    gave_up = ExtractUpload.objects.create(
        region=region, period=PERIOD, tables=["contacts"], uploaded_by=analyst,
        status=ExtractUpload.Status.FAILED,
    )  # fmt: skip
    raw = extract_dirs / "uploads" / str(gave_up.pk)
    raw.mkdir(parents=True)
    (raw / "contacts").write_bytes(b"raw")
    upload = services.start_upload(analyst, PERIOD, _uploaded(sample_dir, "contacts"))
    assert upload.status == ExtractUpload.Status.ACCEPTED
    assert files_on_disk(extract_dirs / "uploads") == []


def test_cleanup_marks_uploads_whose_job_ended_as_failed(analyst, region, extract_dirs):
    job = Job.objects.create(kind=services.JOB_KIND, status=Job.Status.FAILED, created_by=analyst)
    up = ExtractUpload.objects.create(
        region=region, period=PERIOD, tables=["contacts"], uploaded_by=analyst, job=job,
        status=ExtractUpload.Status.RUNNING,
    )  # fmt: skip
    assert services.cleanup().interrupted_uploads == 1
    up.refresh_from_db()
    assert up.status == ExtractUpload.Status.FAILED


# --- the background job ----------------------------------------------------------------------


@pytest.fixture
def inline_jobs(settings):
    settings.STYRKORT_JOBS = "inline"


def _uploaded(folder: Path, *tables: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return {
        t: SimpleUploadedFile(f"{t}.csv", (folder / f"{t}.csv").read_bytes(), "text/csv")
        for t in tables
    }


def test_it_runs_an_upload_as_a_job_and_deletes_the_raw_files(
    analyst, region, sample_units, extract_dirs, sample_dir, inline_jobs, no_recompute
):
    upload = services.start_upload(analyst, "2025q1", _uploaded(sample_dir, *ALL))
    upload.refresh_from_db()
    assert upload.status == ExtractUpload.Status.ACCEPTED
    assert upload.period == "2025Q1"
    job = upload.job
    assert job.kind == "extracts.ingest"
    assert job.status == Job.Status.DONE
    assert job.result["status"] == "accepted"
    assert {v["table"] for v in job.result["versions"]} == set(ALL)
    assert files_on_disk(extract_dirs / "uploads") == []
    assert no_recompute == [("analyst", "2025Q1", ALL)]


def test_it_reports_progress_from_validation_then_storing(
    analyst, region, sample_units, extract_dirs, sample_dir, no_recompute
):
    calls: list[tuple[int, int, str]] = []
    services.ingest(
        analyst, region, PERIOD, sample_files(sample_dir, "contacts"),
        progress=lambda d, t, m: calls.append((d, t, m)),
    )  # fmt: skip
    messages = [m for _, _, m in calls]
    assert "contacts: read" in messages
    assert "contacts: identifiers" in messages
    assert messages.index("storing") > messages.index("contacts: identifiers")
    assert calls[-1][0] == calls[-1][1]
    assert calls[-1][2] == "stored"
    dones = [d for d, _, _ in calls]
    assert dones == sorted(dones)


def test_a_rerun_job_of_a_finished_upload_only_cleans_up(
    v1, analyst, region, extract_dirs, inline_jobs
):
    from styrkort.jobs.services import run_job

    raw = extract_dirs / "uploads" / str(v1.upload.pk)
    raw.mkdir(parents=True)
    (raw / "contacts").write_bytes(b"raw")
    job = Job.objects.create(
        kind=services.JOB_KIND, params={"upload": str(v1.upload.pk)}, created_by=analyst
    )
    before = state(extract_dirs)
    job = run_job(job)
    assert job.status == Job.Status.DONE
    assert job.result["rerun"] is True
    assert not raw.exists()
    assert state(extract_dirs) == before


def test_a_rerun_job_without_its_raw_files_fails_cleanly(analyst, region, extract_dirs):
    from styrkort.jobs.services import run_job

    up = ExtractUpload.objects.create(
        region=region, period=PERIOD, tables=["contacts"], uploaded_by=analyst,
        status=ExtractUpload.Status.RUNNING,
    )  # fmt: skip
    job = Job.objects.create(
        kind=services.JOB_KIND, params={"upload": str(up.pk)}, created_by=analyst
    )
    job = run_job(job)
    up.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert "send them again" in job.error
    assert up.status == ExtractUpload.Status.FAILED


def test_it_queues_the_indicator_recomputation_after_an_accepted_upload(
    analyst, region, sample_units, extract_dirs, sample_dir, settings
):
    settings.STYRKORT_JOBS = "poller"  # queued only: the engine has its own tests
    result = services.ingest(analyst, region, PERIOD, sample_files(sample_dir, *ALL))
    job = result.compute_job
    assert job is not None
    assert job.kind == "indicators.compute"
    assert job.params["periods"] == ["2025Q1"]
    assert sorted(job.params["tables"]) == sorted(ALL)
    assert job.status == Job.Status.QUEUED
    assert result.as_dict()["compute_job"] == str(job.pk)


def test_a_refused_upload_queues_no_recomputation(
    analyst, region, sample_units, extract_dirs, sample_dir, settings
):
    settings.STYRKORT_JOBS = "poller"
    result = services.ingest(analyst, region, PERIOD, _unknown_unit(sample_dir))
    assert result.compute_job is None
    assert not Job.objects.filter(kind="indicators.compute").exists()


# --- rights ------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["admin", "auditor", "viewer", "manager", "nobody"])
def test_only_analysts_may_ingest_or_purge(persona, v1, users, region, sample_dir, extract_dirs):
    before = state(extract_dirs)
    uploads = ExtractUpload.objects.count()
    with pytest.raises(PermissionDenied):
        services.ingest(users[persona], region, PERIOD, {"contacts": changed_contacts(sample_dir)})
    with pytest.raises(PermissionDenied):
        services.start_upload(users[persona], PERIOD, _uploaded(sample_dir, "contacts"))
    with pytest.raises(PermissionDenied):
        services.purge(users[persona], ExtractVersion.objects.first())
    assert state(extract_dirs) == before
    assert ExtractUpload.objects.count() == uploads
    assert files_on_disk(extract_dirs / "uploads") == []


def test_an_analyst_of_another_region_may_not_ingest_here(
    v1, users, region, sample_dir, extract_dirs
):
    before = state(extract_dirs)
    with pytest.raises(PermissionDenied):
        services.ingest(
            users["outsider"], region, PERIOD, {"contacts": sample_dir / "contacts.csv"}
        )
    with pytest.raises(PermissionDenied):
        services.purge(users["outsider"], ExtractVersion.objects.first())
    assert state(extract_dirs) == before


def test_it_refuses_an_unknown_table_or_a_bad_period_before_writing(
    analyst, region, sample_units, extract_dirs, sample_dir
):
    with pytest.raises(services.UploadError):
        services.start_upload(analyst, "2025-13", _uploaded(sample_dir, "contacts"))
    with pytest.raises(services.UploadError):
        services.ingest(analyst, region, PERIOD, {"patients": sample_dir / "contacts.csv"})
    with pytest.raises(services.UploadError):
        services.start_upload(analyst, PERIOD, {})
    assert not ExtractUpload.objects.exists()
    assert files_on_disk(extract_dirs) == []


# --- privacy -----------------------------------------------------------------------------------


def _identifiers_upload(folder: Path) -> dict:
    """A personnummer in patient_key, a samordningsnummer in a free-text column, and file
    names holding the personnummer too."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    rows = read_csv(folder / "contacts.csv")
    rows[4]["patient_key"] = PNR
    for r in rows:
        r["kommentar"] = ""
    rows[7]["kommentar"] = f"ring {SAMORDNING} imorgon"
    contacts = write_csv(folder / "leak.csv", rows)
    return {
        "contacts": SimpleUploadedFile(f"patient {PNR}.csv", contacts.read_bytes(), "text/csv"),
        "diagnoses": SimpleUploadedFile(
            "diagnoses.csv", (folder / "diagnoses.csv").read_bytes(), "text/csv"
        ),
    }


def _everything_stored(extract_dirs: Path) -> str:
    """Every file under DATA_DIR (as Latin-1, so any byte sequence reads) and every row of the
    extracts', jobs' and history's tables, as one text."""
    parts = []
    for path in extract_dirs.rglob("*"):
        if path.is_file():
            parts.append(path.name)
            parts.append(path.read_bytes().decode("latin-1"))
    for model in (ChangeRecord, Job, ExtractUpload, ExtractVersion):
        parts.extend(str(row) for row in model.objects.values())
    return "\n".join(parts)


def test_identifiers_sent_are_never_written_to_disk_database_job_or_log(
    analyst, region, sample_units, extract_dirs, sample_dir, inline_jobs, caplog
):
    caplog.set_level(logging.DEBUG)
    upload = services.start_upload(analyst, PERIOD, _identifiers_upload(sample_dir))
    upload.refresh_from_db()
    assert upload.status == ExtractUpload.Status.REFUSED
    rules = {(e["column"], e["rule"]) for e in upload.errors}
    assert ("patient_key", "personal_number") in rules
    assert ("kommentar", "personal_number") in rules
    # The report names the row and column with the value masked.
    shown = {e["value"] for e in upload.errors if e["rule"] == "personal_number"}
    assert all("*" in v for v in shown)
    assert upload.report_full_path.is_file()
    assert upload.source_names["contacts"].startswith("pa")
    assert "*" in upload.source_names["contacts"]
    # Nothing anywhere holds the raw digits.
    stored = _everything_stored(extract_dirs)
    logged = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    for raw in PNR_DIGITS + SAMORDNING_DIGITS:
        assert raw not in stored, raw
        assert raw not in logged, raw
    assert files_on_disk(extract_dirs / "uploads") == []
    assert not ExtractVersion.objects.exists()
    job = upload.job
    assert job.status == Job.Status.DONE
    assert job.result["status"] == "refused"


def test_a_failing_job_names_no_value(
    analyst, region, sample_units, extract_dirs, sample_dir, inline_jobs, monkeypatch, caplog
):
    def boom(*args, **kwargs):
        raise ValueError(f"could not parse {PNR}")

    monkeypatch.setattr(services, "validate_extract", boom)
    upload = services.start_upload(analyst, PERIOD, _uploaded(sample_dir, "contacts"))
    upload.refresh_from_db()
    assert upload.status == ExtractUpload.Status.FAILED
    assert upload.job.status == Job.Status.FAILED
    assert "ValueError" in upload.job.error
    for raw in PNR_DIGITS:
        assert raw not in upload.job.error
        assert raw not in upload.message
        assert raw not in caplog.text
    assert files_on_disk(extract_dirs / "uploads") == []
    assert files_on_disk(extract_dirs / "extracts") == []
