"""The demo's "ingest" step: every synthetic month stored as the demo analyst, idempotently."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from styrkort.extracts.demo import ingest_step
from styrkort.extracts.models import ExtractUpload, ExtractVersion
from styrkort.history.models import ChangeRecord
from styrkort.organisation.demo import MONTHS
from styrkort.web import demo

SEED = 7


@pytest.fixture
def built(db, extract_dirs):
    """The demo without the grant: region, registry, users, synthetic extracts, ingest."""
    steps = [s for s in demo.STEPS if s.name in {"region", "registry", "users", "synth", "ingest"}]
    assert [s.name for s in steps][-2:] == ["synth", "ingest"]
    lines: list[str] = []
    ctx = demo.build_demo(SEED, write=lines.append, steps=steps)
    return ctx, steps, lines


def test_it_stores_every_month_and_table_as_the_demo_analyst(built):
    ctx, _steps, lines = built
    active = ExtractVersion.objects.filter(region=ctx.region, status="active")
    assert active.count() == len(MONTHS) * 6
    assert set(active.values_list("period", flat=True)) == set(MONTHS)
    assert set(active.values_list("uploaded_by__username", flat=True)) == {"analys"}
    assert set(active.values_list("version", flat=True)) == {1}
    assert ExtractUpload.objects.filter(status="accepted").count() == len(MONTHS)
    assert ctx.data["ingest"]["months"] == sorted(MONTHS)
    assert any(line.strip().startswith("ingest") for line in lines)
    imports = ChangeRecord.objects.filter(object_type="extracts.extractversion")
    assert set(imports.values_list("action", "note", "actor__username")) == {
        ("import", "demo", "analys")
    }


def test_it_is_idempotent_and_reingests_only_what_changed(built):
    ctx, steps, _lines = built
    history = ChangeRecord.objects.count()
    lines: list[str] = []
    demo.build_demo(SEED, write=lines.append, steps=steps)
    assert "unchanged" in lines[-1]
    assert ChangeRecord.objects.count() == history
    # A month's contacts file changes (same rows, written again differently): only it is new.
    month = MONTHS[3]
    path = ctx.data["synth"]["files"][month]["contacts"]
    pq.write_table(pq.read_table(path), path, compression="gzip")
    summary = ingest_step(ctx)
    assert summary.startswith("1 month(s) ingested")
    versions = ExtractVersion.objects.filter(period=month, table="contacts").order_by("version")
    assert [(v.version, v.status) for v in versions] == [(1, "superseded"), (2, "active")]
    assert ExtractVersion.objects.filter(version=2).count() == 1
