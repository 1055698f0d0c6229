"""Demo step "ingest": load the synthetic extracts (step "synth") as the demo analyst would.

Every month's files go through :func:`styrkort.extracts.services.ingest`, the same validation
and storage as an upload, with the demo analyst ("analys") as the one who uploaded. Idempotent:
a table whose version in force was made from a file with the same SHA-256 is skipped, so a
second build ingests nothing, and a regenerated month replaces only the tables that changed
(as new versions, the old ones kept until purged). Indicators are not recomputed here, one run
per month would repeat work: the months ingested are left in ``ctx.data["ingest"]`` for a
computing step, and ``styrkort compute --stale`` recomputes what they changed.
"""

from __future__ import annotations

import time
from pathlib import Path

from django.contrib.auth import get_user_model

from styrkort.accounts.models import Membership, Role
from styrkort.extracts import services, synth
from styrkort.extracts.models import ExtractVersion
from styrkort.extracts.schema import TABLE_NAMES

DEMO_ANALYST = "analys"
NOTE = "demo"  # the history note of everything the demo build writes


class DemoIngestError(RuntimeError):
    """The demo's own synthetic extract was refused (a bug in the generator or the rules)."""


def ingest_step(ctx) -> str:
    """Ingest every generated month whose files differ from the versions in force."""
    region = ctx.region
    if region is None:
        raise DemoIngestError("the demo region does not exist yet (run the region step first)")
    analyst = demo_analyst(region)
    synth_data = ctx.data.get("synth") or {}
    folder = Path(synth_data.get("dir") or synth.demo_settings()[0])
    files_by_month = synth_data.get("files") or synth.month_files(folder)
    if not files_by_month:
        return f"no synthetic extracts in {folder}; nothing ingested"
    in_force = {
        (v.period, v.table): v.source_checksum
        for v in ExtractVersion.objects.filter(region=region, status=ExtractVersion.Status.ACTIVE)
    }
    ingested: dict[str, list[str]] = {}
    rows = 0
    started = time.perf_counter()
    for month in sorted(files_by_month):
        files = files_by_month[month]
        # The files' own checksums, not the manifest's: a file changed by hand is noticed.
        todo = {
            table: Path(path)
            for table, path in files.items()
            if in_force.get((month, table)) != services.sha256_of(Path(path))
        }
        if not todo:
            continue
        result = services.ingest(analyst, region, month, todo, recompute=False, note=NOTE)
        if not result.ok:
            counts = result.upload.error_counts
            raise DemoIngestError(
                f"the synthetic extract for {month} was refused with {result.upload.error_count} "
                f"error(s): {counts}"
            )
        ingested[month] = [t for t in TABLE_NAMES if t in todo]
        rows += sum(v.rows for v in result.versions)
        ctx.write(f"    {month}: {', '.join(ingested[month])} ({rows:,} rows so far)")
    ctx.data["ingest"] = {"months": sorted(ingested), "tables": ingested}
    skipped = len(files_by_month) - len(ingested)
    if not ingested:
        return f"unchanged: all {len(files_by_month)} months in force with the same checksums"
    return (
        f"{len(ingested)} month(s) ingested as {analyst.username} ({rows:,} rows, "
        f"{time.perf_counter() - started:.1f} s); {skipped} unchanged"
    )


def demo_analyst(region):
    user = get_user_model().objects.filter(username=DEMO_ANALYST).first()
    membership = Membership.objects.filter(user=user, region=region).first() if user else None
    if membership is None or membership.role != Role.ANALYST:
        raise DemoIngestError(
            f"the demo analyst {DEMO_ANALYST!r} is missing (run the users step first)"
        )
    return user
