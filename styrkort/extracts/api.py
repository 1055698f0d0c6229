"""The extracts' API: upload (multipart, then a background job), upload status, versions, purge.

Analysts only, like the pages: every other role gets 403 (401 without a role). Rights are
checked before a file is looked at. No visit-level row is ever returned: versions carry counts
and checksums; a refused upload's errors carry masked values only.

No ``from __future__ import annotations`` here: django-ninja reads the annotations at import.
"""

from datetime import datetime
from uuid import UUID

from django.urls import reverse
from django.utils.translation import gettext as _
from ninja import File, Form, Router, Schema, Status
from ninja.files import UploadedFile

from styrkort.accounts import access
from styrkort.extracts import services
from styrkort.extracts.models import ExtractUpload, ExtractVersion

router = Router()


class ErrorOut(Schema):
    detail: str


class VersionOut(Schema):
    id: int
    period: str
    table: str
    version: int
    status: str
    rows: int
    checksum: str
    uploaded_by: str
    uploaded_at: datetime
    source_name: str


class UploadStartedOut(Schema):
    upload_id: UUID
    job_id: UUID | None
    status: str
    status_url: str


class ExtractErrorOut(Schema):
    table: str
    row: int | None
    column: str | None
    value: str | None
    rule: str
    message: str


class UploadOut(Schema):
    id: UUID
    job_id: UUID | None
    period: str
    tables: list[str]
    status: str
    created: datetime
    finished: datetime | None
    row_counts: dict[str, int]
    error_count: int
    error_counts: dict[str, dict[str, int]]
    errors: list[ExtractErrorOut]
    errors_listed: int
    error_report_url: str | None
    message: str
    versions: list[VersionOut]


def _version_out(v: ExtractVersion) -> dict:
    return {
        "id": v.pk, "period": v.period, "table": v.table, "version": v.version,
        "status": v.status, "rows": v.rows, "checksum": v.checksum,
        "uploaded_by": v.uploaded_by.username, "uploaded_at": v.uploaded_at,
        "source_name": v.source_name,
    }  # fmt: skip


def _upload_out(u: ExtractUpload) -> dict:
    return {
        "id": u.pk, "job_id": u.job_id, "period": u.period, "tables": list(u.tables),
        "status": u.status, "created": u.created, "finished": u.finished,
        "row_counts": u.row_counts or {}, "error_count": u.error_count,
        "error_counts": u.error_counts or {}, "errors": u.errors or [],
        "errors_listed": len(u.errors or []),
        "error_report_url": (
            reverse("extracts:error_report", args=[u.pk]) if u.report_path else None
        ),
        "message": u.message,
        "versions": [
            _version_out(v) for v in u.versions.select_related("uploaded_by").order_by("table")
        ],
    }  # fmt: skip


@router.post(
    "/uploads",
    url_name="extracts_upload",  # styrkort.extracts.uploads streams its files to disk
    response={202: UploadStartedOut, 400: ErrorOut},
    summary="Upload an extract: multipart fields 'period' and one file per table",
    description=(
        "Multipart form: `period` (2025, 2025Q1 or 2025-03) and any of the file fields "
        "`contacts`, `diagnoses`, `procedures`, `measurements`, `sick_leave`, `listings` (CSV or "
        "Parquet). Answers 202 with the upload's id and its background job; follow the job at "
        "GET /api/jobs/{job_id} and the outcome at GET /api/extracts/uploads/{upload_id}. "
        "Accepted or refused, the files sent are deleted after validation."
    ),
)
def upload(
    request,
    period: str | None = Form(None),  # noqa: B008
    contacts: UploadedFile | None = File(None),  # noqa: B008
    diagnoses: UploadedFile | None = File(None),  # noqa: B008
    procedures: UploadedFile | None = File(None),  # noqa: B008
    measurements: UploadedFile | None = File(None),  # noqa: B008
    sick_leave: UploadedFile | None = File(None),  # noqa: B008
    listings: UploadedFile | None = File(None),  # noqa: B008
):
    access.require(request.auth, "handle_extracts")
    sent = {
        "contacts": contacts, "diagnoses": diagnoses, "procedures": procedures,
        "measurements": measurements, "sick_leave": sick_leave, "listings": listings,
    }  # fmt: skip
    files = {table: f for table, f in sent.items() if f is not None}
    if not period:
        return Status(400, {"detail": _("Send the declared period in the field 'period'.")})
    try:
        record = services.start_upload(request.auth, period, files)
    except services.UploadError as exc:
        return Status(400, {"detail": str(exc)})
    return Status(
        202,
        {
            "upload_id": record.pk,
            "job_id": record.job_id,
            "status": record.status,
            "status_url": f"/api/extracts/uploads/{record.pk}",
        },
    )


@router.get(
    "/uploads/{upload_id}",
    response=UploadOut,
    summary="One of your uploads: status, errors (masked values) or the versions stored",
)
def upload_status(request, upload_id: UUID):
    return _upload_out(access.get_extract_upload_for_user(request.auth, upload_id))


@router.get(
    "/versions",
    response=list[VersionOut],
    summary="Extract versions of the region (counts and checksums, never rows)",
)
def versions(
    request, period: str | None = None, table: str | None = None, status: str | None = None
):
    if period:
        try:
            period = services.parse_period(period)
        except services.UploadError:
            access.require(request.auth, "handle_extracts")
            return []
    return [
        _version_out(v)
        for v in services.versions_for(request.auth, period=period, table=table, status=status)
    ]


@router.post(
    "/versions/{version_id}/purge",
    response={200: VersionOut, 400: ErrorOut},
    summary="Purge a superseded version: its file is deleted, the record kept",
)
def purge(request, version_id: int):
    version = access.get_extract_version_for_user(request.auth, version_id)
    try:
        version = services.purge(request.auth, version)
    except services.UploadError as exc:
        return Status(400, {"detail": str(exc)})
    return _version_out(version)
