from datetime import datetime
from uuid import UUID

from ninja import Router, Schema

from styrkort.jobs.services import progress_of
from styrkort.jobs.views import get_job_for_user

router = Router()


class JobOut(Schema):
    id: UUID
    kind: str
    status: str
    created: datetime
    finished: datetime | None
    percent: int
    message: str
    result: dict | None
    error: str


@router.get("/{job_id}", response=JobOut, summary="Status and result of a background job")
def job_status(request, job_id: UUID):
    job = get_job_for_user(request.auth, job_id)
    p = progress_of(job)
    return {
        "id": job.id, "kind": job.kind, "status": job.status, "created": job.created,
        "finished": job.finished, "percent": p["percent"], "message": p.get("message", ""),
        "result": job.result, "error": job.error,
    }  # fmt: skip
