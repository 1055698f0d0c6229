"""Pages for visit-level extracts: versions, upload, upload status with the error report, purge.

Analysts only (capability ``handle_extracts``); every other role gets 403 and anonymous users
the login page. Visit-level data is never shown row by row: the pages show counts, checksums
and, for a refused upload, the validator's error list (row, column, masked value, rule) to the
analyst who sent it. Every write goes through ``styrkort.extracts.services``.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods

from styrkort.accounts import access
from styrkort.extracts import services
from styrkort.extracts.forms import UploadForm, VersionFilterForm
from styrkort.extracts.models import ExtractVersion
from styrkort.extracts.schema import TABLE_NAMES
from styrkort.extracts.uploads import PrivateUploadHandler
from styrkort.jobs.services import progress_of

PAGE_SIZE = 50


@login_required
@require_GET
def version_list(request):
    """Every version per period and table: status, checksum, rows, who and when; purge links
    for superseded versions; the user's own latest uploads."""
    access.require(request.user, "handle_extracts")
    form = VersionFilterForm(request.GET)
    versions = services.versions_for(request.user, **form.filters())
    page = Paginator(versions, PAGE_SIZE).get_page(request.GET.get("page"))
    in_force = services.versions_for(request.user, status=ExtractVersion.Status.ACTIVE)
    return render(
        request,
        "extracts/list.html",
        {
            "form": form,
            "page": page,
            "versions": page.object_list,
            "in_force_count": in_force.count(),
            "in_force_periods": in_force.values("period").distinct().count(),
            "uploads": services.uploads_of(request.user),
        },
    )


@csrf_exempt  # checked below by csrf_protect, once the upload handler is in place
@login_required
@require_http_methods(["GET", "POST"])
def upload(request):
    """The upload form. Rights are checked before the body is read; the files are then
    streamed to a private directory (never held in memory) and handed to a background job."""
    access.require(request.user, "handle_extracts")
    handler = PrivateUploadHandler(request)
    if request.method == "POST":
        request.upload_handlers = [handler]
    try:
        return _upload(request)
    finally:
        handler.discard()  # files handed to the job were moved out of it first


@csrf_protect
def _upload(request):
    if request.method != "POST":
        return render(request, "extracts/upload.html", {"form": UploadForm()})
    form = UploadForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            record = services.start_upload(
                request.user, form.cleaned_data["period"], form.files_by_table()
            )
        except services.UploadError as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("extracts:upload_status", upload_id=record.pk)
    return render(request, "extracts/upload.html", {"form": form}, status=400)


@login_required
@require_GET
def upload_status(request, upload_id):
    """Progress while the job runs (polled with htmx), then the result: the versions stored,
    or the errors (all counted, the first 1,000 listed) with a link to the CSV report."""
    record = access.get_extract_upload_for_user(request.user, upload_id)
    job = record.job
    running = not record.is_finished and job is not None and not job.is_finished
    versions = record.versions.order_by("table") if record.status == "accepted" else []
    by_rule = _counts_by_rule(record.error_counts)
    return render(
        request,
        "extracts/upload_status.html",
        {
            "upload": record,
            "job": job,
            "running": running,
            "progress": progress_of(job) if job is not None else None,
            "done_url": reverse("extracts:upload_status", args=[record.pk]),
            "versions": versions,
            "by_rule": by_rule,
            "tables": [
                (t, (record.source_names or {}).get(t, ""))
                for t in TABLE_NAMES
                if t in record.tables
            ],
            "listed": len(record.errors),
            "has_report": bool(record.report_path),
        },
    )


def _counts_by_rule(counts: dict) -> list[dict]:
    rows = [
        {"table": table, "rule": rule, "count": n}
        for table, rules in (counts or {}).items()
        for rule, n in rules.items()
    ]
    return sorted(rows, key=lambda r: (-r["count"], r["table"], r["rule"]))


@login_required
@require_GET
def error_report(request, upload_id):
    """The refused upload's error report as CSV (masked values only), for its uploader."""
    record = access.get_extract_upload_for_user(request.user, upload_id)
    path = record.report_full_path
    if path is None or not path.is_file():
        raise Http404("no error report")
    filename = f"extract-errors-{record.period}-{record.created:%Y%m%d-%H%M}.csv"
    return FileResponse(
        path.open("rb"),
        as_attachment=True,
        filename=filename,
        content_type="text/csv; charset=utf-8",
    )


@login_required
@require_http_methods(["GET", "POST"])
def purge(request, version_id):
    """Confirm (GET) and purge (POST) a superseded version: its file is deleted, the row kept."""
    version = access.get_extract_version_for_user(request.user, version_id)
    if request.method == "POST":
        try:
            services.purge(request.user, version)
        except services.UploadError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request,
                _(
                    "Version %(version)s of %(table)s for %(period)s was purged. Its file is "
                    "deleted in the background as soon as no computation reads it."
                )
                % {"version": version.version, "table": version.table, "period": version.period},
            )
        return redirect("extracts:list")
    return render(
        request,
        "extracts/purge.html",
        {"version": version, "can_purge": version.status == ExtractVersion.Status.SUPERSEDED},
    )
