"""Uploading, storing and purging visit-level extracts (the Django side of DESIGN §4).

* :func:`start_upload` (pages and API) streams the files sent into a private directory under
  ``settings.UPLOAD_DIR`` and queues the job ``extracts.ingest``; :func:`ingest_job` runs it.
* :func:`ingest` (the job and ``styrkort ingest``) validates the files with
  :func:`styrkort.extracts.validation.validate_extract` into a staging directory, then moves the
  Parquet files into place and registers them in ONE transaction that also supersedes the
  versions in force and writes the history. A refused upload keeps only its error report.
* :func:`purge` marks a superseded version purged, with history, and queues the job
  ``extracts.delete_purged`` (:func:`delete_purged_job`), which removes its file once no
  computation of the region reads it.
* :func:`cleanup` removes what a crash may leave behind: Parquet files without a version row,
  staging and raw-upload directories of uploads that are no longer running.

Why the order of operations (see "Storage and crash safety" in docs/extracts.md): the database
is the truth, files are only read through a version row. Files are moved into place inside the
registering transaction, under a lock on the region, and numbered above every committed
version; so a crash before the commit leaves at worst a file without a row, which no one reads
and which the next ingest of the region (under the same lock) or :func:`cleanup` deletes. The
previous version stays in force because superseding it is part of the same transaction.

Privacy: the raw files sent are deleted as soon as they have been validated, whatever the
outcome. No value from a file is logged, raised or stored except in the validator's error
list, where every identifier is masked; exceptions are logged by type and place only.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path

import filelock
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from styrkort.accounts import access
from styrkort.extracts.models import ExtractUpload, ExtractVersion
from styrkort.extracts.schema import TABLE_NAMES, TABLES
from styrkort.extracts.validation import (
    ExtractProcessingError,
    ExtractReport,
    validate_extract,
    write_error_report_csv,
)
from styrkort.history.services import new_batch, record, record_many, snapshot
from styrkort.identifiers import find_personal_number, mask
from styrkort.indicators import services as indicator_services
from styrkort.indicators.engine import remove_states
from styrkort.jobs.models import Job
from styrkort.jobs.services import JobDeferred, JobFailed, can_defer, enqueue
from styrkort.organisation.models import CareUnit, Region
from styrkort.periods import Period, PeriodError

log = logging.getLogger(__name__)

JOB_KIND = "extracts.ingest"
PURGE_JOB_KIND = "extracts.delete_purged"
MAX_LISTED_ERRORS = 1000
REPORT_DIR_NAME = "extract_reports"
STAGING_DIR_NAME = ".staging"
# Leftovers of a request or command still running must not be removed by cleanup: only what
# is older than this is taken for abandoned when no upload row says otherwise.
ABANDONED_AFTER = timedelta(hours=12)
_CHUNK = 1 << 20
# Steps after validation, for the progress bar: moving into place, registering.
_STORE_STEPS = 2

Progress = Callable[[int, int, str], None]


class UploadError(ValueError):
    """The upload cannot be started or a version cannot be purged; the message is for the user
    and never holds a value from a file."""


# ----------------------------------------------------------------------------------------------
# Where things are
# ----------------------------------------------------------------------------------------------


def extract_dir() -> Path:
    return Path(settings.EXTRACT_DIR)


def upload_dir() -> Path:
    return Path(settings.UPLOAD_DIR)


def report_dir() -> Path:
    return Path(settings.DATA_DIR) / REPORT_DIR_NAME


def staging_root() -> Path:
    # Inside EXTRACT_DIR so that moving a validated file into place is a rename on one disk.
    return extract_dir() / STAGING_DIR_NAME


def raw_dir_of(upload: ExtractUpload) -> Path:
    return upload_dir() / str(upload.pk)


def region_dir(region: Region) -> Path:
    return extract_dir() / region.lan_code


def derived_dir(region: Region) -> Path:
    """Where the indicator engine keeps what it derives from a region's extracts between runs
    (per-period shares; visit-level, so under the extract directory like the extracts)."""
    return extract_dir() / "derived" / region.lan_code


def derived_lock(region: Region) -> filelock.FileLock:
    """The lock on a region's derived files, held by a computation from the moment it reads
    which extracts are in force until its results are stored, and by a purge while it deletes
    shares. A run deletes the shares and case states it did not use (made from files since
    replaced), which would pull the files from under another run of the region reading
    them; with the lock, runs of one region take turns. An operating-system lock on a file
    beside the derived folder: it goes with the process that held it, also on a crash.
    Waiting longer than ``STYRKORT_COMPUTE_LOCK_TIMEOUT`` seconds raises ``filelock.Timeout``.
    """
    folder = derived_dir(region).parent
    folder.mkdir(parents=True, exist_ok=True)
    timeout = settings.STYRKORT_COMPUTE_LOCK_TIMEOUT
    return filelock.FileLock(folder / f"{region.lan_code}.lock", timeout=timeout)


def region_busy(region: Region) -> bool:
    """Whether a computation (or the deletion of a purged file) holds the region's
    :func:`derived_lock` now."""
    lock = derived_lock(region)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        return True
    lock.release()
    return False


#: What a job that waits for its region shows in its progress (computations and deletions).
REGION_BUSY = gettext_noop("waiting for another computation of the region to end")


def defer_while_region_busy(region: Region) -> None:
    """In a job handler: send the job back to the queue (``JobDeferred``) while another run
    holds the region's lock, so that the worker takes other jobs (uploads, imports)
    meanwhile. Inline jobs (the command line) cannot be deferred; they wait for the lock."""
    if can_defer() and region_busy(region):
        raise JobDeferred(_(REGION_BUSY))


def remove_derived(region: Region, period: str, path: str | Path | None = None) -> int:
    """Delete every derived share of ``period`` and the kept case rows made from the file
    ``path`` (the engine makes them again when needed); returns how many files. Call it
    holding the region's :func:`derived_lock`."""
    removed = 0
    for share in derived_dir(region).glob(f"*/*/{period}.*.parquet"):
        share.unlink(missing_ok=True)
        removed += 1
    if path is not None:
        removed += remove_states(derived_dir(region), path)
    return removed


def version_relpath(region: Region, period: str, table: str, version: int) -> str:
    return f"{region.lan_code}/{period}/{table}/v{version}.parquet"


def private_dir(parent: Path, name: str) -> Path:
    """A directory only this process's user can read (0700), created with its parents."""
    parent.mkdir(parents=True, exist_ok=True)
    path = parent / name
    path.mkdir(mode=0o700)
    return path


def shown_name(name: str | None) -> str:
    """A file name as it may be stored: only the last path part, identifiers masked."""
    base = Path(str(name or "")).name[:255]
    return mask(base) if find_personal_number(base) else base


# ----------------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------------


@dataclass
class IngestResult:
    """What :func:`ingest` did: the upload row, the validator's report, the new versions."""

    upload: ExtractUpload
    report: ExtractReport | None
    versions: list[ExtractVersion] = field(default_factory=list)
    compute_job: Job | None = None

    @property
    def ok(self) -> bool:
        return self.upload.status == ExtractUpload.Status.ACCEPTED

    def summary(self) -> str:
        """One line for the command line and logs (counts only)."""
        up = self.upload
        if self.ok:
            parts = ", ".join(f"{v.table} v{v.version} ({v.rows} rows)" for v in self.versions)
            return f"accepted {up.period}: {parts}"
        if up.status == ExtractUpload.Status.REFUSED:
            return (
                f"refused {up.period}: {up.error_count} error(s) in "
                f"{', '.join(up.tables)}; nothing was stored"
            )
        return f"failed {up.period}: {up.message}"

    def as_dict(self) -> dict:
        """JSON-ready, for a job's result: counts, checksums and ids, never a value."""
        up = self.upload
        return {
            "upload": str(up.pk),
            "status": up.status,
            "period": up.period,
            "tables": list(up.tables),
            "row_counts": dict(up.row_counts),
            "error_count": up.error_count,
            "error_counts": dict(up.error_counts),
            "versions": [
                {
                    "id": v.pk,
                    "table": v.table,
                    "version": v.version,
                    "rows": v.rows,
                    "checksum": v.checksum,
                }
                for v in self.versions
            ],
            "compute_job": str(self.compute_job.pk) if self.compute_job else None,
            "summary": self.summary(),
        }


# ----------------------------------------------------------------------------------------------
# Starting an upload (pages and API)
# ----------------------------------------------------------------------------------------------


def parse_period(value: str | Period) -> str:
    """The canonical declared period, or UploadError."""
    try:
        return str(Period.parse(str(value).strip().upper()))
    except (PeriodError, ValueError):
        raise UploadError(
            _("The period must be a year (2025), a quarter (2025Q1) or a month (2025-03).")
        )


def check_tables(tables: Iterable[str]) -> list[str]:
    """The tables in schema order, or UploadError for none or an unknown one."""
    tables = list(tables)
    unknown = sorted(set(tables) - set(TABLE_NAMES))
    if unknown:
        raise UploadError(
            _("Unknown table(s): %(names)s. The tables are: %(all)s.")
            % {"names": ", ".join(unknown), "all": ", ".join(TABLE_NAMES)}
        )
    if not tables:
        raise UploadError(_("Choose at least one file."))
    return [t for t in TABLE_NAMES if t in tables]


def start_upload(
    actor,
    period: str,
    files: Mapping[str, object],
    *,
    recompute: bool = True,
) -> ExtractUpload:
    """Store the files sent in a private directory and queue their ingest; returns the upload.

    ``files`` maps a table name to an uploaded file: either one written by
    :class:`styrkort.extracts.uploads.PrivateUploadHandler` (already in a private directory; it
    is moved, not copied) or any Django ``UploadedFile`` (streamed chunk by chunk). Rights are
    checked before anything is written. In the "inline" job mode (tests, commands) the job has
    run when this returns.
    """
    m = access.require(actor, "handle_extracts")
    period = parse_period(period)
    tables = check_tables(files)
    upload = ExtractUpload(
        region=m.region,
        period=period,
        tables=tables,
        uploaded_by=actor,
        source_names={t: shown_name(getattr(files[t], "name", "")) for t in tables},
    )
    # The row first: cleanup keeps the directories of queued and running uploads only.
    upload.save()
    target = upload_dir() / str(upload.pk)
    try:
        private_dir(upload_dir(), str(upload.pk))
        for table in tables:
            _place_raw(files[table], target / table)
        job = enqueue(actor, JOB_KIND, {"upload": str(upload.pk), "recompute": bool(recompute)})
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        upload.delete()
        raise
    upload.refresh_from_db()
    if upload.job_id is None:
        ExtractUpload.objects.filter(pk=upload.pk, job__isnull=True).update(job=job)
        upload.job = job
    return upload


def _place_raw(uploaded, target: Path) -> None:
    """Move a privately written upload into ``target`` or stream it there chunk by chunk."""
    private = getattr(uploaded, "private_path", None)
    if private is not None:
        os.replace(private, target)
        return
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        if hasattr(uploaded, "chunks"):
            for chunk in uploaded.chunks(_CHUNK):
                out.write(chunk)
        else:
            with Path(uploaded).open("rb") as src:
                shutil.copyfileobj(src, out, _CHUNK)


# ----------------------------------------------------------------------------------------------
# The job
# ----------------------------------------------------------------------------------------------


def ingest_job(job: Job, progress: Progress) -> dict:
    """Job handler for ``extracts.ingest`` (params: upload, recompute).

    The raw files are deleted when it ends, whatever the outcome. A job run again after a
    restart finds its upload either finished (then it only cleans up) or still running with its
    raw files (then it validates again; a half-stored attempt left nothing but orphan files,
    which ingest removes).
    """
    params = job.params or {}
    upload_id = params.get("upload")
    if upload_id is None:
        raise JobFailed("the upload of this job no longer exists")
    try:
        upload = ExtractUpload.objects.select_related("region", "uploaded_by").get(pk=upload_id)
    except (ExtractUpload.DoesNotExist, ValueError):
        raise JobFailed("the upload of this job no longer exists")
    raw = raw_dir_of(upload)
    # What earlier attempts left (raw files of a job that gave up, a crashed staging area).
    _remove_stale_dirs(CleanupResult())
    try:
        ExtractUpload.objects.filter(pk=upload.pk).update(job=job)
        upload.job = job
        if upload.is_finished:
            return {"upload": str(upload.pk), "status": upload.status, "rerun": True}
        files = {t: raw / t for t in upload.tables}
        if not all(p.is_file() for p in files.values()):
            _fail(
                upload,
                "the files sent are no longer there (the job was interrupted); send them again",
            )
            raise JobFailed(upload.message)
        try:
            result = ingest(
                upload.uploaded_by,
                upload.region,
                upload.period,
                files,
                upload=upload,
                progress=progress,
                recompute=bool(params.get("recompute", True)),
            )
        except (UploadError, PermissionDenied, ExtractProcessingError) as exc:
            message = str(exc) or type(exc).__name__
            _fail(upload, message)
            raise JobFailed(message)
        except Exception as exc:  # noqa: BLE001 - its text may quote data: type and place only
            message = _describe(exc)
            _fail(upload, message)
            raise JobFailed(message)
        return result.as_dict()
    finally:
        shutil.rmtree(raw, ignore_errors=True)


# ----------------------------------------------------------------------------------------------
# Ingest
# ----------------------------------------------------------------------------------------------


def ingest(
    actor,
    region: Region,
    period: str | Period,
    files: Mapping[str, Path],
    *,
    upload: ExtractUpload | None = None,
    progress: Progress | None = None,
    recompute: bool = True,
    source_names: Mapping[str, str] | None = None,
    note: str = "",
) -> IngestResult:
    """Validate ``files`` (table → CSV or Parquet path) for ``period`` and store them as new
    versions, all or nothing; returns an :class:`IngestResult` (accepted or refused).

    The input files are not touched (the job deletes its raw files itself). A refused upload
    writes its error report (masked values only) to ``DATA_DIR/extract_reports/<job or upload
    id>.csv``. After an accepted upload the indicators depending on the period are queued for
    recomputation when ``recompute`` and the ``indicators.compute`` job exists. Raises
    PermissionDenied, UploadError, or ExtractProcessingError (a failure naming only the step);
    in every failing case nothing new is stored and the versions in force stay in force.
    """
    m = access.require(actor, "handle_extracts")
    if m.region_id != region.pk:
        raise PermissionDenied("extracts outside the user's region")
    period = parse_period(period)
    tables = check_tables(files)
    if upload is None:
        upload = ExtractUpload.objects.create(
            region=region,
            period=period,
            tables=tables,
            uploaded_by=actor,
            status=ExtractUpload.Status.RUNNING,
            source_names={
                t: shown_name((source_names or {}).get(t) or Path(files[t]).name) for t in tables
            },
        )
    else:
        ExtractUpload.objects.filter(pk=upload.pk).update(status=ExtractUpload.Status.RUNNING)
        upload.status = ExtractUpload.Status.RUNNING
    staging = staging_root() / str(upload.pk)
    shutil.rmtree(staging, ignore_errors=True)  # a previous attempt's leftovers
    progress = progress or _no_progress
    steps = {"total": 1}

    def validation_progress(done: int, total: int, message: str) -> None:
        steps["total"] = total + _STORE_STEPS
        progress(done, steps["total"], message)

    try:
        paths = {t: Path(files[t]) for t in tables}
        report = validate_extract(
            paths,
            period,
            _known_units(region),
            staging,
            progress=validation_progress,
            max_listed_errors=MAX_LISTED_ERRORS,
            reference_tables=_reference_tables(region, period, tables),
        )
        if not report.ok:
            _refuse(upload, report)
            progress(steps["total"], steps["total"], "refused")
            log.info("extract upload %s refused: %d error(s)", upload.pk, report.error_count)
            return IngestResult(upload, report)
        sources = {t: sha256_of(p) for t, p in paths.items()}
        progress(steps["total"] - _STORE_STEPS, steps["total"], "storing")
        versions = _store(actor, region, period, report, upload, sources, note)
        progress(steps["total"], steps["total"], "stored")
    except (UploadError, PermissionDenied, ExtractProcessingError) as exc:
        _fail(upload, str(exc) or type(exc).__name__)
        raise
    except Exception as exc:
        _fail(upload, _describe(exc))
        raise ExtractProcessingError(upload.message) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info(
        "extract upload %s accepted: %s",
        upload.pk,
        ", ".join(f"{v.table} v{v.version} {v.rows} rows" for v in versions),
    )
    result = IngestResult(upload, report, versions)
    if recompute:
        result.compute_job = _enqueue_recompute(actor, period, [v.table for v in versions])
    return result


def _no_progress(done: int, total: int, message: str) -> None:
    return None


def _known_units(region: Region) -> set[str]:
    return set(CareUnit.objects.filter(region=region).values_list("hsa_id", flat=True))


def _reference_tables(region: Region, period: str, tables: list[str]) -> dict[str, Path]:
    """Versions in force of tables this upload refers to but does not send (e.g. the contacts
    when only diagnoses are re-sent), so references can be checked against them."""
    wanted = {ref.target_table for t in tables for ref in TABLES[t].references} - set(tables)
    out: dict[str, Path] = {}
    for v in ExtractVersion.objects.filter(
        region=region, period=period, table__in=wanted, status=ExtractVersion.Status.ACTIVE
    ):
        if v.full_path.is_file():
            out[v.table] = v.full_path
    return out


def _refuse(upload: ExtractUpload, report: ExtractReport) -> None:
    """Keep the error report (masked values only) and mark the upload refused."""
    name = f"{upload.job_id or upload.pk}.csv"
    target = report_dir() / name
    report_dir().mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".csv", dir=report_dir())
    os.close(fd)
    try:
        write_error_report_csv(report, Path(tmp))
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    upload.status = ExtractUpload.Status.REFUSED
    upload.finished = timezone.now()
    upload.row_counts = dict(report.row_counts)
    upload.error_count = report.error_count
    upload.error_counts = report.error_counts
    upload.errors = [asdict(e) for e in report.errors]
    upload.report_path = f"{REPORT_DIR_NAME}/{name}"
    upload.save(
        update_fields=[
            "status", "finished", "row_counts", "error_count", "error_counts", "errors",
            "report_path",
        ]
    )  # fmt: skip


def _fail(upload: ExtractUpload, message: str) -> None:
    """Mark an upload failed unless it has already finished (a late error never undoes an
    acceptance or a refusal)."""
    now = timezone.now()
    changed = ExtractUpload.objects.filter(
        pk=upload.pk, status__in=[ExtractUpload.Status.QUEUED, ExtractUpload.Status.RUNNING]
    ).update(status=ExtractUpload.Status.FAILED, finished=now, message=message[:2000])
    if changed:
        upload.status, upload.finished, upload.message = (
            ExtractUpload.Status.FAILED,
            now,
            message[:2000],
        )


def _describe(exc: BaseException) -> str:
    """An unexpected failure by type and place only: its text may quote a file's content."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    text = f"storing the extract failed with {type(exc).__name__}{where}"
    log.error(text)
    return text


@dataclass(frozen=True)
class _Placed:
    table: str
    version: int
    relpath: str
    final: Path
    checksum: str
    rows: int
    source_checksum: str


def _store(
    actor,
    region: Region,
    period: str,
    report: ExtractReport,
    upload: ExtractUpload,
    sources: Mapping[str, str],
    note: str = "",
) -> list[ExtractVersion]:
    """Move the validated files into place and register them, in one transaction.

    Under the region's lock (so no other ingest or cleanup of the region is between its moves
    and its commit): remove orphan files, number each table above every version ever
    registered, fsync and rename the staged file to its final name, then
    :func:`_register`. If anything fails before the commit, the moved files are deleted; if the
    process dies instead, they are orphans for the next ingest or :func:`cleanup`.
    """
    moved: list[Path] = []
    try:
        with transaction.atomic():
            _lock_region(region)
            _remove_orphans(region)
            placed = []
            for table in [t for t in TABLE_NAMES if t in report.outputs]:
                out = report.outputs[table]
                number = _next_version(region, period, table)
                rel = version_relpath(region, period, table, number)
                final = extract_dir() / rel
                final.parent.mkdir(parents=True, exist_ok=True)
                _fsync(out.path)
                os.replace(out.path, final)
                moved.append(final)
                _fsync(final.parent)
                placed.append(
                    _Placed(table, number, rel, final, out.sha256, out.rows, sources.get(table, ""))
                )
            return _register(actor, region, period, placed, upload, report, note)
    except BaseException:
        for path in moved:
            path.unlink(missing_ok=True)
        raise


def _register(
    actor,
    region: Region,
    period: str,
    placed: list[_Placed],
    upload: ExtractUpload,
    report: ExtractReport,
    note: str = "",
) -> list[ExtractVersion]:
    """The database half of storing (inside _store's transaction): supersede the versions in
    force, create the new ones, write the history, mark the upload accepted."""
    batch = new_batch()
    entries: list[dict] = []
    versions = []
    note = note or f"upload {upload.pk}"
    for p in placed:
        for previous in ExtractVersion.objects.select_for_update().filter(
            region=region, period=period, table=p.table, status=ExtractVersion.Status.ACTIVE
        ):
            before = snapshot(previous)
            previous.status = ExtractVersion.Status.SUPERSEDED
            previous.save(update_fields=["status"])
            entries.append(
                {"action": "transition", "obj": previous, "before": before,
                 "after": snapshot(previous), "note": note}
            )  # fmt: skip
        version = ExtractVersion.objects.create(
            region=region,
            period=period,
            table=p.table,
            version=p.version,
            path=p.relpath,
            checksum=p.checksum,
            rows=p.rows,
            status=ExtractVersion.Status.ACTIVE,
            uploaded_by=actor,
            source_name=upload.source_names.get(p.table, ""),
            source_checksum=p.source_checksum,
            upload=upload,
        )
        entries.append(
            {"action": "import", "obj": version, "after": snapshot(version), "note": note}
        )
        versions.append(version)
    record_many(actor, entries, batch=batch)
    upload.status = ExtractUpload.Status.ACCEPTED
    upload.finished = timezone.now()
    upload.row_counts = dict(report.row_counts)
    upload.error_count = 0
    upload.error_counts = {}
    upload.errors = []
    upload.save(
        update_fields=[
            "status", "finished", "row_counts", "error_count", "error_counts", "errors",
        ]
    )  # fmt: skip
    return versions


def _next_version(region: Region, period: str, table: str) -> int:
    """One above every version ever registered (purged ones too: numbers are never reused)."""
    top = ExtractVersion.objects.filter(region=region, period=period, table=table).aggregate(
        top=Max("version")
    )["top"]
    return (top or 0) + 1


def _lock_region(region: Region) -> None:
    """Serialise ingests, purges and cleanups of one region until the transaction ends.

    PostgreSQL: a row lock on the region. SQLite: the settings open every transaction with
    BEGIN IMMEDIATE, which already takes the database's write lock.
    """
    list(Region.objects.select_for_update().filter(pk=region.pk).values_list("pk", flat=True))


def _fsync(path: Path) -> None:
    """Flush a file or directory to disk, so a committed row never points at a lost file."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _enqueue_recompute(actor, period: str, tables: list[str]) -> Job | None:
    """Queue ``indicators.compute`` for what depends on the period; None when that job kind
    is not registered or the actor may not compute. A failure here never undoes the ingest."""
    try:
        return indicator_services.enqueue_compute(actor, [period], tables=tables)
    except (KeyError, PermissionDenied):
        return None
    except Exception as exc:  # noqa: BLE001 - the upload is stored; recomputing can be redone
        log.warning("queueing the recomputation after an ingest failed: %s", type(exc).__name__)
        return None


# ----------------------------------------------------------------------------------------------
# Purge
# ----------------------------------------------------------------------------------------------


@transaction.atomic
def purge(actor, version: ExtractVersion) -> ExtractVersion:
    """Mark a superseded version purged, with a "purge" history entry, and have its file
    deleted.

    The version in force cannot be purged. The row is kept (who uploaded what, its checksum)
    and the file, with the engine's shares of its period, is deleted by a background job
    (:func:`delete_purged_job`) queued once the transaction has committed: a failed commit
    must not lose the file of a version that is still registered; a crash after the commit
    leaves a file of a purged version, which :func:`cleanup` deletes.
    """
    m = access.require(actor, "handle_extracts")
    if version.region_id != m.region_id:
        raise PermissionDenied("extracts outside the user's region")
    _lock_region(m.region)
    version = ExtractVersion.objects.select_for_update().get(pk=version.pk)
    if version.status == ExtractVersion.Status.ACTIVE:
        raise UploadError(_("The version in force cannot be purged; upload a new one first."))
    if version.status == ExtractVersion.Status.PURGED:
        raise UploadError(_("This version has already been purged."))
    before = snapshot(version)
    version.status = ExtractVersion.Status.PURGED
    version.save(update_fields=["status"])
    record(actor, "purge", version, before=before, after=snapshot(version))
    # A computation that began before the version was superseded may still be reading the
    # file or its shares, so they go in a background job that waits for it to end: the
    # page answers at once instead of for as long as the computation takes.
    transaction.on_commit(lambda: enqueue(actor, PURGE_JOB_KIND, {"version": version.pk}))
    return version


def delete_purged(version: ExtractVersion) -> bool:
    """Delete a purged version's file and the engine's shares of its period as soon as no
    computation of the region reads them; False when the region stayed busy for longer
    than ``STYRKORT_COMPUTE_LOCK_TIMEOUT`` (the file is then left for :func:`cleanup`)."""
    path = version.full_path
    try:
        with derived_lock(version.region):
            Path(path).unlink(missing_ok=True)
            remove_derived(version.region, version.period, path)
    except filelock.Timeout:
        log.warning("purged %s: its file is left for extracts-cleanup (region busy)", path)
        return False
    return True


def delete_purged_job(job: Job, progress: Progress) -> dict:
    """Job handler for ``extracts.delete_purged`` (params: version), queued by :func:`purge`."""
    try:
        version = ExtractVersion.objects.select_related("region").get(
            pk=int((job.params or {})["version"])
        )
    except (ExtractVersion.DoesNotExist, KeyError, ValueError, TypeError):
        raise JobFailed("the purged version of this job no longer exists")
    if version.status != ExtractVersion.Status.PURGED:
        raise JobFailed(f"version {version.pk} is not purged; its file stays")
    defer_while_region_busy(version.region)
    progress(0, 1, _("deleting the purged file once no computation reads it"))
    deleted = delete_purged(version)
    progress(1, 1, "")
    return {"version": version.pk, "deleted": deleted}


# ----------------------------------------------------------------------------------------------
# Cleanup after crashes
# ----------------------------------------------------------------------------------------------


@dataclass
class CleanupResult:
    orphan_files: int = 0
    staging_dirs: int = 0
    upload_dirs: int = 0
    interrupted_uploads: int = 0

    def summary(self) -> str:
        return (
            f"{self.orphan_files} orphan file(s), {self.staging_dirs} staging and "
            f"{self.upload_dirs} upload director(ies) removed; {self.interrupted_uploads} "
            "interrupted upload(s) marked failed"
        )


def cleanup() -> CleanupResult:
    """Remove what an interrupted ingest or purge may have left (``styrkort extracts-cleanup``).

    Safe while other ingests run: Parquet files are judged per region under the region's lock,
    and directories of uploads that are still queued or running are kept.
    """
    result = CleanupResult()
    result.interrupted_uploads = _mark_interrupted()
    _remove_stale_dirs(result)
    for region in Region.objects.all():
        with transaction.atomic():
            _lock_region(region)
            result.orphan_files += _remove_orphans(region)
    return result


def _remove_stale_dirs(result: CleanupResult) -> None:
    """Staging and raw-upload directories of uploads that are no longer queued or running (a
    crashed or abandoned attempt); a request's incoming directory only when it is old."""
    live = {
        str(pk)
        for pk in ExtractUpload.objects.filter(
            status__in=[ExtractUpload.Status.QUEUED, ExtractUpload.Status.RUNNING]
        ).values_list("pk", flat=True)
    }
    cutoff = (timezone.now() - ABANDONED_AFTER).timestamp()
    for root, counter in ((staging_root(), "staging_dirs"), (upload_dir(), "upload_dirs")):
        if not root.is_dir():
            continue
        for entry in root.iterdir():
            if not entry.is_dir() or entry.name in live:
                continue
            try:
                if not _is_uuid(entry.name) and entry.stat().st_mtime > cutoff:
                    continue  # a request's incoming files, perhaps still being written
            except FileNotFoundError:
                continue  # removed meanwhile by its own request
            shutil.rmtree(entry, ignore_errors=True)
            setattr(result, counter, getattr(result, counter) + 1)


def _mark_interrupted() -> int:
    """Uploads whose job has ended without finishing them, or (no job: the command line) that
    have been running for longer than ABANDONED_AFTER."""
    waiting = ExtractUpload.objects.filter(
        status__in=[ExtractUpload.Status.QUEUED, ExtractUpload.Status.RUNNING]
    )
    ended = waiting.filter(job__status__in=[Job.Status.DONE, Job.Status.FAILED])
    stale = waiting.filter(job__isnull=True, created__lt=timezone.now() - ABANDONED_AFTER)
    return (ended | stale).update(
        status=ExtractUpload.Status.FAILED,
        finished=timezone.now(),
        message="interrupted; send the files again",
    )


def _is_uuid(name: str) -> bool:
    try:
        uuid.UUID(name)
    except ValueError:
        return False
    return True


def _remove_orphans(region: Region) -> int:
    """Delete Parquet files under the region's directory that no live version row names.

    Call only under :func:`_lock_region`: then no other ingest of the region is between moving
    its files and committing their rows, so a file without a row is garbage.
    """
    root = region_dir(region)
    if not root.is_dir():
        return 0
    live = {
        extract_dir() / p
        for p in ExtractVersion.objects.filter(region=region)
        .exclude(status=ExtractVersion.Status.PURGED)
        .values_list("path", flat=True)
    }
    removed = 0
    for path in root.rglob("*"):
        if path.is_file() and path not in live:
            path.unlink(missing_ok=True)
            removed += 1
    if removed:
        log.info("removed %d orphan extract file(s) of region %s", removed, region.lan_code)
    return removed


# ----------------------------------------------------------------------------------------------
# Reading (pages, API)
# ----------------------------------------------------------------------------------------------


def versions_for(user, *, period: str | None = None, table: str | None = None, status=None):
    """The user's region's extract versions (analysts only), newest first per table."""
    m = access.require(user, "handle_extracts")
    qs = ExtractVersion.objects.filter(region=m.region).select_related("uploaded_by")
    if period:
        qs = qs.filter(period=period)
    if table:
        qs = qs.filter(table=table)
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("-period", "table", "-version")


def uploads_of(user, limit: int = 20):
    """The user's own latest upload attempts."""
    m = access.require(user, "handle_extracts")
    return ExtractUpload.objects.filter(region=m.region, uploaded_by=user).order_by("-created")[
        :limit
    ]
