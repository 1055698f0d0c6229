"""Queue and run background jobs.

A job kind is registered by its app (in AppConfig.ready) with a function
``handler(job, progress) -> dict`` whose return value becomes ``job.result``. Handlers must be
all-or-nothing (their writes in one transaction) so that a job interrupted by a restart can
simply run again. A handler that cannot start yet because what it needs is busy raises
:class:`JobDeferred`: the job goes back to the queue for a while and the worker takes the
next one, rather than waiting (the embedded default has a single worker).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections, transaction
from django.db.models import Q
from django.utils import timezone

from styrkort.jobs.models import Job

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]
Handler = Callable[[Job, Progress], dict]
_HANDLERS: dict[str, Handler] = {}
_STARTUP: list[Callable[[], object]] = []
MAX_ATTEMPTS = 3


class JobFailed(Exception):
    """Raised by a handler to fail with a message meant for the user (no traceback logged)."""


#: How long a deferred job waits before a worker takes it again, by default.
DEFER_SECONDS = 30.0


class JobDeferred(Exception):
    """Raised by a handler, before it has written anything, when what it needs is busy (a
    region another computation holds): the job is queued again, not taken before
    ``seconds`` have passed, and the attempt is not counted. ``str(exc)`` is shown as its
    progress meanwhile."""

    def __init__(self, message: str, seconds: float = DEFER_SECONDS):
        super().__init__(message)
        self.seconds = seconds


def can_defer() -> bool:
    """Whether a handler may defer its job: not when jobs run inline (tests, the command
    line), where nothing would take it again."""
    return settings.STYRKORT_JOBS != "inline"


def register(kind: str, handler: Handler) -> None:
    _HANDLERS[kind] = handler


def register_startup(hook: Callable[[], object]) -> None:
    """Run ``hook`` whenever a worker starts, after interrupted jobs are queued again: the place
    for an app to clear what a crash left behind (e.g. extracts' half-written files)."""
    if hook not in _STARTUP:
        _STARTUP.append(hook)


def run_startup() -> None:
    requeue_interrupted()
    for hook in _STARTUP:
        try:
            hook()
        except Exception:
            log.exception("worker start-up hook %s failed", getattr(hook, "__name__", hook))


def _progress_key(job_id) -> str:
    return f"job-progress:{job_id}"


def report_progress(job_id, done: int, total: int, message: str = "") -> None:
    cache.set(_progress_key(job_id), {"done": done, "total": total, "message": message}, 24 * 3600)


def progress_of(job: Job) -> dict:
    if job.status == Job.Status.DONE:
        return {"done": 1, "total": 1, "percent": 100, "message": ""}
    data = cache.get(_progress_key(job.id)) or {"done": 0, "total": 0, "message": ""}
    total = data["total"] or 0
    data["percent"] = int(100 * data["done"] / total) if total else 0
    return data


def enqueue(actor, kind: str, params: dict) -> Job:
    """Queue a job. In "inline" mode (tests, CLI) it runs at once."""
    if kind not in _HANDLERS:
        raise KeyError(f"unknown job kind {kind!r}")
    job = Job.objects.create(kind=kind, params=params, created_by=actor)
    if settings.STYRKORT_JOBS == "inline":
        run_job(job)
        job.refresh_from_db()
    return job


def run_job(job: Job) -> Job:
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.RUNNING, started=timezone.now(), attempts=job.attempts + 1
    )
    job.refresh_from_db()

    def progress(done: int, total: int, message: str = "") -> None:
        report_progress(job.pk, done, total, message)

    try:
        result = _HANDLERS[job.kind](job, progress)
    except JobDeferred as exc:
        Job.objects.filter(pk=job.pk).update(
            status=Job.Status.QUEUED,
            started=None,
            attempts=job.attempts - 1,
            not_before=timezone.now() + timedelta(seconds=exc.seconds),
        )
        report_progress(job.pk, 0, 0, str(exc))
    except JobFailed as exc:
        _finish(job, Job.Status.FAILED, error=str(exc))
    except Exception as exc:
        log.exception("job %s (%s) failed", job.pk, job.kind)
        _finish(job, Job.Status.FAILED, error=f"{type(exc).__name__}: {exc}")
    else:
        _finish(job, Job.Status.DONE, result=result or {})
    job.refresh_from_db()
    return job


def _finish(job: Job, status: str, *, result: dict | None = None, error: str = "") -> None:
    Job.objects.filter(pk=job.pk).update(
        status=status, result=result, error=error[:5000], finished=timezone.now()
    )


def claim_next() -> Job | None:
    """Take the oldest queued job that is not deferred, atomically, so that two workers never
    run the same one."""
    with transaction.atomic():
        job = (
            Job.objects.select_for_update(skip_locked=True)
            .filter(status=Job.Status.QUEUED)
            .filter(Q(not_before__isnull=True) | Q(not_before__lte=timezone.now()))
            .order_by("created")
            .first()
        )
        if job is None:
            return None
        Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, started=timezone.now())
    return job


def requeue_interrupted() -> int:
    """Jobs left running by a process that died are queued again (or failed after 3 tries)."""
    failed = Job.objects.filter(status=Job.Status.RUNNING, attempts__gte=MAX_ATTEMPTS).update(
        status=Job.Status.FAILED, error="interrupted too many times", finished=timezone.now()
    )
    return failed + Job.objects.filter(status=Job.Status.RUNNING).update(status=Job.Status.QUEUED)


def run_pending(limit: int | None = None) -> int:
    ran = 0
    while limit is None or ran < limit:
        job = claim_next()
        if job is None:
            break
        run_job(job)
        ran += 1
    return ran


def work_forever(poll_seconds: float = 1.0, stop: threading.Event | None = None) -> None:
    run_startup()
    while stop is None or not stop.is_set():
        close_old_connections()
        try:
            if not run_pending(limit=1):
                time.sleep(poll_seconds)
        except Exception:
            log.exception("job poller error")
            time.sleep(poll_seconds)


def start_poller_thread() -> threading.Thread:
    """The embedded default: a thread in the serving process works the queue."""
    thread = threading.Thread(target=work_forever, name="styrkort-jobs", daemon=True)
    thread.start()
    return thread
