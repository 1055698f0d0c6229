from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET

from styrkort.jobs.models import Job
from styrkort.jobs.services import progress_of


def get_job_for_user(user, job_id) -> Job:
    """A job is visible to the user who started it only."""
    from django.core.exceptions import ValidationError

    try:
        return Job.objects.get(pk=job_id, created_by=user)
    except (Job.DoesNotExist, ValidationError):
        raise Http404("no such job")


@require_GET
@login_required
def job_progress(request, job_id):
    """The progress fragment, polled by htmx every second until the job has finished; then, when
    the page passed a done_url, htmx is told to load that page (the result) in its place."""
    job = get_job_for_user(request.user, job_id)
    done_url = request.GET.get("done_url", "")
    if not url_has_allowed_host_and_scheme(done_url, allowed_hosts=None):
        done_url = ""
    context = {"job": job, "progress": progress_of(job), "done_url": done_url}
    response = render(request, "jobs/_progress.html", context)
    if job.is_finished and done_url:
        response["HX-Redirect"] = done_url
    return response
