"""The job queue: running, failing, claiming, recovery after a crash, and the progress fragment."""

from __future__ import annotations

import pytest

from styrkort.jobs import services
from styrkort.jobs.models import Job


@pytest.fixture
def kinds():
    def ok(job, progress):
        progress(1, 2, "half")
        return {"echo": job.params.get("x")}

    def refused(job, progress):
        raise services.JobFailed("the file is empty")

    def crashes(job, progress):
        raise RuntimeError("boom")

    def busy(job, progress):
        if job.params.get("busy"):
            raise services.JobDeferred("waiting for the region", seconds=60)
        return {"ran": True}

    services.register("test.ok", ok)
    services.register("test.refused", refused)
    services.register("test.crashes", crashes)
    services.register("test.busy", busy)
    yield
    for k in ("test.ok", "test.refused", "test.crashes", "test.busy"):
        services._HANDLERS.pop(k, None)


def test_it_runs_a_job_at_once_in_inline_mode(settings, users, kinds):
    settings.STYRKORT_JOBS = "inline"
    job = services.enqueue(users["analyst"], "test.ok", {"x": 7})
    assert job.status == Job.Status.DONE
    assert job.result == {"echo": 7}
    assert job.attempts == 1


def test_it_queues_a_job_for_the_worker_otherwise(settings, users, kinds):
    settings.STYRKORT_JOBS = "poller"
    job = services.enqueue(users["analyst"], "test.ok", {})
    assert job.status == Job.Status.QUEUED
    assert services.run_pending() == 1
    job.refresh_from_db()
    assert job.status == Job.Status.DONE
    assert services.run_pending() == 0


def test_it_records_a_failure_with_the_message_meant_for_the_user(settings, users, kinds):
    settings.STYRKORT_JOBS = "inline"
    assert services.enqueue(users["analyst"], "test.refused", {}).error == "the file is empty"
    crashed = services.enqueue(users["analyst"], "test.crashes", {})
    assert crashed.status == Job.Status.FAILED
    assert crashed.error == "RuntimeError: boom"


def test_a_deferred_job_waits_in_the_queue_and_lets_the_next_one_run(
    settings, users, kinds, client_for
):
    settings.STYRKORT_JOBS = "poller"
    busy = services.enqueue(users["analyst"], "test.busy", {"busy": True})
    other = services.enqueue(users["analyst"], "test.ok", {"x": 1})
    assert services.run_pending() == 2  # the busy one, deferred, then the other
    busy.refresh_from_db()
    other.refresh_from_db()
    assert other.status == Job.Status.DONE
    assert (busy.status, busy.attempts, busy.started) == (Job.Status.QUEUED, 0, None)
    assert busy.not_before > busy.created
    assert services.progress_of(busy)["message"] == "waiting for the region"
    page = client_for("analyst").get(f"/jobs/{busy.pk}/progress/").content.decode()
    assert "Waiting to start… (waiting for the region)" in page
    assert services.run_pending() == 0  # not taken again before its time
    Job.objects.filter(pk=busy.pk).update(not_before=busy.created, params={})
    assert services.run_pending() == 1
    busy.refresh_from_db()
    assert (busy.status, busy.result, busy.attempts) == (Job.Status.DONE, {"ran": True}, 1)


def test_it_refuses_an_unknown_kind(users):
    with pytest.raises(KeyError):
        services.enqueue(users["analyst"], "no.such.kind", {})
    assert not Job.objects.exists()


def test_it_requeues_jobs_a_dead_process_left_running_and_gives_up_after_three(users, kinds):
    alive = Job.objects.create(kind="test.ok", status=Job.Status.RUNNING, attempts=1)
    tired = Job.objects.create(kind="test.ok", status=Job.Status.RUNNING, attempts=3)
    hook_calls = []
    services.register_startup(lambda: hook_calls.append(1))
    try:
        services.run_startup()
    finally:
        services._STARTUP.pop()
    alive.refresh_from_db()
    tired.refresh_from_db()
    assert alive.status == Job.Status.QUEUED
    assert tired.status == Job.Status.FAILED
    assert hook_calls == [1]


def test_it_registers_the_extracts_cleanup_as_a_startup_hook():
    from styrkort.extracts.services import cleanup

    assert cleanup in services._STARTUP


def test_it_shows_progress_to_the_user_who_started_the_job(settings, users, client_for, kinds):
    settings.STYRKORT_JOBS = "poller"
    job = services.enqueue(users["analyst"], "test.ok", {})
    r = client_for("analyst").get(f"/jobs/{job.pk}/progress/")
    assert r.status_code == 200
    assert "job-progress" in r.content.decode()
    assert "HX-Redirect" not in r


def test_it_hides_a_job_from_everyone_else(settings, users, client_for, kinds):
    settings.STYRKORT_JOBS = "poller"
    job = services.enqueue(users["analyst"], "test.ok", {})
    for persona in ("colleague", "admin", "outsider"):
        assert client_for(persona).get(f"/jobs/{job.pk}/progress/").status_code == 404
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED


def test_it_sends_the_page_to_the_result_when_the_job_has_finished(
    settings, users, client_for, kinds
):
    settings.STYRKORT_JOBS = "inline"
    job = services.enqueue(users["analyst"], "test.ok", {})
    c = client_for("analyst")
    r = c.get(f"/jobs/{job.pk}/progress/", {"done_url": "/extracts/"})
    assert r["HX-Redirect"] == "/extracts/"
    r = c.get(f"/jobs/{job.pk}/progress/", {"done_url": "https://evil.example/"})
    assert "HX-Redirect" not in r


def test_it_keeps_the_done_url_while_it_polls(settings, users, client_for, kinds):
    settings.STYRKORT_JOBS = "poller"
    job = services.enqueue(users["analyst"], "test.ok", {})
    r = client_for("analyst").get(f"/jobs/{job.pk}/progress/", {"done_url": "/extracts/"})
    assert "done_url=/extracts/" in r.content.decode().replace("%2F", "/")
