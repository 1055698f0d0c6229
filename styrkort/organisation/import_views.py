"""Pages for importing and exporting units, listings and staffing.

The flow: upload (kept under UPLOAD_DIR with a random name) → a background dry run with
progress → the review page (new, changed and unchanged counts, a sample of the changes, every
refused row) → Confirm queues the real import, which checks the file again and writes all of it
or nothing → the result page links to the change log of the import's batch. Cancel deletes the
file; so does a refused dry run and a finished import.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from styrkort.jobs.models import Job
from styrkort.jobs.services import progress_of
from styrkort.jobs.views import get_job_for_user
from styrkort.organisation import exports, imports

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"
UPLOAD_SUFFIXES = (".csv", ".txt", ".xlsx")


class ImportForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("What to import"), widget=forms.RadioSelect)
    file = forms.FileField(
        label=gettext_lazy("File (CSV or XLSX)"),
        help_text=gettext_lazy("CSV in UTF-8 with ; or , between values, or an Excel workbook "
                               "with one sheet."),
    )  # fmt: skip

    def __init__(self, *args, kinds: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        kind_field = self.fields["kind"]
        assert isinstance(kind_field, forms.ChoiceField)
        kind_field.choices = [(k, imports.KIND_LABELS[k]) for k in kinds]
        if len(kinds) == 1:
            self.fields["kind"].initial = kinds[0]

    def clean_file(self):
        uploaded = self.cleaned_data["file"]
        if not uploaded.name.lower().endswith(UPLOAD_SUFFIXES):
            raise forms.ValidationError(_("Upload a .csv or .xlsx file."))
        return uploaded


def _kinds_or_403(user) -> list[str]:
    kinds = imports.importable_kinds(user)
    if not kinds:
        raise PermissionDenied("import_data")
    return kinds


def _import_job(user, job_id, *, dry_run: bool) -> Job:
    """The user's own import job of this stage (a dry run or a real import), else 404."""
    job = get_job_for_user(user, job_id)
    if job.kind != imports.JOB_KIND or bool(job.params.get("dry_run")) != dry_run:
        raise Http404("no such import")
    return job


def _confirmed_by(job: Job) -> Job | None:
    return (
        Job.objects.filter(kind=imports.JOB_KIND, params__source_job=str(job.pk))
        .order_by("created")
        .first()
    )


@login_required
@require_http_methods(["GET", "POST"])
def import_start(request):
    """Choose what to import and upload the file; the dry run starts at once."""
    kinds = _kinds_or_403(request.user)
    form = ImportForm(request.POST or None, request.FILES or None, kinds=kinds)
    if request.method == "POST" and form.is_valid():
        imports.purge_stale_uploads()
        uploaded = form.cleaned_data["file"]
        name = imports.save_upload(uploaded)
        job = imports.enqueue_import(
            request.user, form.cleaned_data["kind"], name, dry_run=True, keep=True,
            original_name=uploaded.name,
        )  # fmt: skip
        return redirect("organisation:import_review", job_id=job.pk)
    columns = [(k, imports.KIND_LABELS[k], imports.COLUMNS[k]) for k in kinds]
    recent = Job.objects.filter(created_by=request.user, kind=imports.JOB_KIND)[:10]
    return render(
        request,
        "organisation/import.html",
        {"form": form, "columns": columns, "recent": recent, "kinds": kinds},
    )


def _plan_context(request, job: Job) -> dict:
    return {
        "job": job,
        "progress": progress_of(job),
        "done_url": request.path,
        "result": job.result or {},
        "kind_label": imports.KIND_LABELS.get(job.params.get("kind"), ""),
        "file_name": job.params.get("original_name", ""),
    }


@login_required
@require_GET
def import_review(request, job_id):
    """The dry run: progress while it runs, then what the import would do."""
    job = _import_job(request.user, job_id, dry_run=True)
    context = _plan_context(request, job)
    confirmed = _confirmed_by(job)
    result = context["result"]
    upload_kept = False
    if job.status == Job.Status.DONE:
        try:
            upload_kept = imports.upload_path(job.params.get("upload", "")).exists()
        except ValueError:
            upload_kept = False
    context.update(
        confirmed=confirmed,
        can_confirm=bool(
            job.status == Job.Status.DONE and result.get("ok") and confirmed is None
            and upload_kept and imports.may_import(request.user, job.params.get("kind", ""))
            and (result.get("new") or result.get("changed") or result.get("providers_new")
                 or result.get("providers_changed"))
        ),
        can_cancel=upload_kept and confirmed is None,
    )  # fmt: skip
    return render(request, "organisation/import_review.html", context)


@login_required
@require_POST
def import_confirm(request, job_id):
    """Queue the real import of a clean dry run (it checks the file again)."""
    job = _import_job(request.user, job_id, dry_run=True)
    confirmed = _confirmed_by(job)
    if confirmed is not None:
        return redirect("organisation:import_result", job_id=confirmed.pk)
    name = job.params.get("upload", "")
    try:
        kept = imports.upload_path(name).exists()
    except ValueError:
        kept = False
    if job.status != Job.Status.DONE or not (job.result or {}).get("ok") or not kept:
        messages.error(request, _("This import cannot be confirmed; upload the file again."))
        return redirect("organisation:import")
    real = imports.enqueue_import(
        request.user, job.params["kind"], name, dry_run=False, source_job=str(job.pk),
        original_name=job.params.get("original_name", ""),
    )  # fmt: skip
    return redirect("organisation:import_result", job_id=real.pk)


@login_required
@require_POST
def import_cancel(request, job_id):
    """Drop an uploaded file without importing it."""
    job = _import_job(request.user, job_id, dry_run=True)
    if _confirmed_by(job) is None:
        imports.delete_upload(job.params.get("upload", ""))
    messages.success(request, _("The import was cancelled; nothing was written."))
    return redirect("organisation:import")


@login_required
@require_GET
def import_result(request, job_id):
    """The real import: progress while it runs, then what was written and its change log."""
    job = _import_job(request.user, job_id, dry_run=False)
    context = _plan_context(request, job)
    batch = context["result"].get("batch")
    if batch:
        context["log_url"] = reverse("history:log") + "?" + urlencode({"batch": batch})
    return render(request, "organisation/import_result.html", context)


@login_required
@require_GET
def import_sample(request, kind: str):
    """An example file of each kind, in the columns the import reads."""
    _kinds_or_403(request.user)
    if kind not in imports.KINDS:
        raise Http404("no such sample")
    return FileResponse(
        (SAMPLES_DIR / f"{kind}.csv").open("rb"), as_attachment=True, filename=f"{kind}.csv",
        content_type="text/csv; charset=utf-8",
    )  # fmt: skip


def export_response(user, kind: str, fmt: str) -> HttpResponseBase:
    """The download of one kind in one format (shared by the page and the API)."""
    region = exports.export_region(user)
    try:
        exports.check(kind, fmt)
    except ValueError:
        raise Http404("no such export")
    filename = exports.filename(kind, region, fmt)
    if fmt == "csv":
        response = StreamingHttpResponse(
            exports.iter_csv(kind, region), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
    export_dir = Path(settings.DATA_DIR) / "tmp"
    export_dir.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=export_dir, suffix=".xlsx", delete=False)  # noqa: SIM115
    handle.close()
    path = Path(handle.name)
    try:
        exports.write_xlsx(kind, region, path)
        # The open file keeps its contents after the name is removed (POSIX), so nothing is
        # left behind once the response has been sent.
        stream = path.open("rb")
    finally:
        path.unlink(missing_ok=True)
    return FileResponse(
        stream, as_attachment=True, filename=filename,
        content_type=exports.XLSX_CONTENT_TYPE,
    )  # fmt: skip


@login_required
@require_GET
def export(request):
    """Without parameters the page of downloads; with kind and format the download itself."""
    exports.export_region(request.user)
    kind, fmt = request.GET.get("kind"), request.GET.get("format")
    if kind or fmt:
        try:
            return export_response(request.user, kind or "", fmt or "csv")
        except exports.ExportTooLarge as exc:
            messages.error(request, str(exc))
            return redirect("organisation:export")
    choices = [
        (k, imports.KIND_LABELS[k], [(f, f"?{urlencode({'kind': k, 'format': f})}")
                                     for f in exports.FORMATS])
        for k in imports.KINDS
    ]  # fmt: skip
    return render(request, "organisation/import_export.html", {"choices": choices})
