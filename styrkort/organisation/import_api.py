"""API for imports and exports of units, listings and staffing.

POST /api/organisation/imports/{kind} takes a file (multipart) and starts an import as a
background job, a dry run unless ``dry_run`` is false; the job's result (counts, samples and
refused rows, as on the review page) is read at GET /api/jobs/{id}. There is no confirmation
step here: a script runs a dry run, reads it, and posts the file again with dry_run=false.
GET /api/organisation/exports/{kind}.{csv|xlsx} downloads an export. Same rights as the pages.

No `from __future__ import annotations` here: django-ninja reads the annotations at import time.
"""

from typing import Literal
from uuid import UUID

from django.core.exceptions import PermissionDenied
from django.urls import reverse
from ninja import File, Form, Router, Schema, Status
from ninja.errors import HttpError
from ninja.files import UploadedFile

from styrkort.organisation import exports, imports
from styrkort.organisation.import_views import export_response

import_router = Router()

Kind = Literal["units", "listings", "staffing"]


class ImportJobOut(Schema):
    job_id: UUID
    kind: str
    dry_run: bool
    status: str
    status_url: str


@import_router.post(
    "/imports/{kind}",
    response={202: ImportJobOut},
    summary="Start an import (a dry run unless dry_run is false)",
    description=(
        "Columns: units — hsa_id, name, provider_org_nr, provider_name, provider_kind, "
        "municipality, opened, closed; listings — unit_hsa_id, month, sex, age_band, listed; "
        "staffing — unit_hsa_id, period, profession, fte. CSV (UTF-8, ; or ,) or XLSX with one "
        "sheet. All of the file is written or nothing. Admins and analysts import everything, "
        "unit managers staffing of their own units."
    ),
)
def start_import(
    request,
    kind: Kind,
    file: UploadedFile = File(..., description="CSV or XLSX file"),  # noqa: B008
    dry_run: bool = Form(True, description="Only check and report; write nothing"),  # noqa: B008
):
    user = request.auth
    imports.allowed_units_for_import(user, kind)  # refuse before keeping the file
    name = imports.save_upload(file)
    try:
        job = imports.enqueue_import(
            user, kind, name, dry_run=dry_run, keep=False, original_name=file.name or ""
        )
    except PermissionDenied:
        imports.delete_upload(name)
        raise
    return Status(202, {
        "job_id": job.pk, "kind": kind, "dry_run": dry_run, "status": job.status,
        "status_url": reverse("api:job_status", args=[job.pk]),
    })  # fmt: skip


@import_router.get(
    "/exports/{kind}.{fmt}",
    summary="Download units, listings or staffing as CSV or XLSX",
    description=(
        "The columns the imports read. CSV: UTF-8 with BOM, ; between values, decimal comma "
        "for fte. The user's region; every role may export."
    ),
    response={200: None},
    openapi_extra={
        "responses": {
            200: {
                "description": "The file",
                "content": {"text/csv": {}, exports.XLSX_CONTENT_TYPE: {}},
            }
        }
    },
)
def export_file(request, kind: Kind, fmt: Literal["csv", "xlsx"]):
    try:
        return export_response(request.auth, kind, fmt)
    except exports.ExportTooLarge as exc:
        raise HttpError(413, str(exc))
