"""Stored results: runs and provenance, incremental recomputation, disclosure control through
results_for for each role, exports, the background job and the command."""

from __future__ import annotations

import csv
import dataclasses
import io
import threading

import numpy as np
import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.http import Http404
from django.utils import translation

from styrkort.bulk import update_rows
from styrkort.extracts.services import derived_lock
from styrkort.history.models import ChangeRecord
from styrkort.indicators import engine, services
from styrkort.indicators.catalogue import load_catalogue
from styrkort.indicators.models import ComputationRun, IndicatorResult, InputSet
from styrkort.indicators.tests.scenario import A, B, Extract, listing, write_extract
from styrkort.jobs.models import Job
from styrkort.jobs.services import run_pending
from styrkort.organisation.models import CareUnit, Listing


@pytest.fixture
def extract_dir(settings, tmp_path):
    settings.EXTRACT_DIR = tmp_path
    return tmp_path


def _monthly(region, user, directory):
    """Mental-health contacts January-June 2025, one file per month and table."""
    e = Extract()
    for month in range(1, 7):
        for i in range(month + 5):
            e.contact(f"p{month}-{i}", f"2025-{month:02d}-10", dx=("F41.1",),
                      profession="psykolog" if i % 2 else "lakare", new=True)  # fmt: skip
    e.write(region, user, directory, [f"2025-{m:02d}" for m in range(1, 7)])
    return e


def _ids(code, periods):
    return dict(
        IndicatorResult.objects.filter(definition__code=code, period__in=periods).values_list(
            "id", "period"
        )
    )


# ------------------------------------------------------------------------------------------
# Runs and provenance
# ------------------------------------------------------------------------------------------


def test_it_stores_a_run_with_its_inputs_and_history(region, users, unit_a, extract_dir):
    _monthly(region, users["analyst"], extract_dir)
    run = services.compute(region, actor=users["analyst"])
    assert run.status == ComputationRun.Status.DONE
    assert run.full
    assert run.started_by == users["analyst"]
    assert run.results_written == IndicatorResult.objects.count() > 0
    assert run.extract_versions.count() == 6 * 5  # every file of every table
    r = IndicatorResult.objects.get(
        definition__code="PO09", unit=unit_a, period="2025-03", sex="T", age_band="alla"
    )
    assert (r.numerator, r.denominator) == (4, 8)
    assert r.definition.is_current
    assert r.definition_version == r.definition.version
    assert r.run == run
    files = {(e["table"], e["period"]) for e in r.inputs.extracts}
    assert ("contacts", "2025-03") in files
    assert all(len(c) == 64 for c in r.inputs.checksums)
    change = ChangeRecord.objects.get(object_type="indicators.computationrun")
    assert change.actor == users["analyst"]
    assert "results written" in change.note


def test_it_refuses_a_viewer_and_changes_nothing(region, users, unit_a, extract_dir):
    _monthly(region, users["analyst"], extract_dir)
    for name in ("viewer", "manager", "auditor", "nobody", "outsider"):
        with pytest.raises(PermissionDenied):
            services.compute(region, actor=users[name])
    assert not ComputationRun.objects.exists()
    assert not IndicatorResult.objects.exists()
    assert not ChangeRecord.objects.filter(object_type="indicators.computationrun").exists()


def test_it_keeps_the_previous_results_when_a_run_fails(
    region, users, unit_a, extract_dir, monkeypatch
):
    _monthly(region, users["analyst"], extract_dir)
    services.compute(region)
    before = set(IndicatorResult.objects.values_list("id", flat=True))

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(engine, "compute_blocks", broken)
    with pytest.raises(RuntimeError):
        services.compute(region)
    failed = ComputationRun.objects.order_by("-pk").first()
    assert failed.status == ComputationRun.Status.FAILED
    assert "disk full" in failed.error
    assert set(IndicatorResult.objects.values_list("id", flat=True)) == before


def test_it_keeps_the_previous_provenance_when_storing_fails(
    region, users, unit_a, extract_dir, monkeypatch
):
    e = _monthly(region, users["analyst"], extract_dir)
    services.compute(region)
    before = dict(IndicatorResult.objects.values_list("id", "run_id"))
    # PO09 changes; PO01 does not, and is stored first.
    next(r for r in e.contacts if r["patient_key"] == "p3-0")["profession"] = "psykolog"
    march = [r for r in e.contacts if r["contact_date"].month == 3]
    write_extract(region, users["analyst"], extract_dir, "contacts", "2025-03", march)

    def broken(*args, **kwargs):
        # Rows already have the new run (PO09's updated cells, or PO01's kept rows once
        # restamped): the failure must undo that too.
        assert IndicatorResult.objects.exclude(run_id__in=set(before.values())).exists()
        raise RuntimeError("disk full")

    def update_then_fail(*args, **kwargs):
        update_rows(*args, **kwargs)
        broken()

    figures = dict(IndicatorResult.objects.values_list("id", "numerator"))
    # PO09's changed cells are updated in place; a new cell would be inserted.
    monkeypatch.setattr(services, "update_rows", update_then_fail)
    monkeypatch.setattr(services, "insert_rows", broken)
    with pytest.raises(RuntimeError):
        services.compute(region, stale=True)
    assert dict(IndicatorResult.objects.values_list("id", "run_id")) == before
    assert dict(IndicatorResult.objects.values_list("id", "numerator")) == figures
    assert services.stale_changes(region) == [engine.Change.of("contacts", "2025-03")]


def test_it_waits_while_another_run_of_the_region_holds_its_data(
    region, users, unit_a, extract_dir
):
    _monthly(region, users["analyst"], extract_dir)
    holding, waiting, released = threading.Event(), threading.Event(), threading.Event()

    def other_run() -> None:
        # Held until the run says it waits (a fixed sleep lost the race on a loaded
        # machine: the run reached the lock after it was released), at most 10 s.
        with derived_lock(region):
            holding.set()
            waiting.wait(10)
            released.set()

    def progress(done: int, total: int, message: str) -> None:
        messages.append(message)
        if message.startswith("waiting"):
            waiting.set()

    thread = threading.Thread(target=other_run)
    thread.start()
    holding.wait(5)
    messages: list[str] = []
    with translation.override("en"):
        run = services.compute(region, progress=progress)
    thread.join()
    assert released.is_set()
    assert waiting.is_set()
    assert run.status == ComputationRun.Status.DONE
    assert messages[0] == "waiting for another computation of the region to end"


def test_it_gives_up_when_the_region_stays_busy_and_changes_nothing(
    region, users, unit_a, extract_dir, settings
):
    e = _monthly(region, users["analyst"], extract_dir)
    services.compute(region)
    figures = set(IndicatorResult.objects.values_list("id", "run_id", "numerator"))
    march = [r for r in e.contacts if r["contact_date"].month == 3][1:]
    write_extract(region, users["analyst"], extract_dir, "contacts", "2025-03", march)
    history = ChangeRecord.objects.count()
    settings.STYRKORT_COMPUTE_LOCK_TIMEOUT = 0.1
    with derived_lock(region), pytest.raises(services.RegionBusy, match="run this one again"):
        services.compute(region, stale=True, actor=users["analyst"])
    failed = ComputationRun.objects.order_by("-pk").first()
    assert failed.status == ComputationRun.Status.FAILED
    assert "RegionBusy" in failed.error
    assert set(IndicatorResult.objects.values_list("id", "run_id", "numerator")) == figures
    assert ChangeRecord.objects.count() == history
    assert services.stale_changes(region) == [engine.Change.of("contacts", "2025-03")]


# ------------------------------------------------------------------------------------------
# Incremental recomputation
# ------------------------------------------------------------------------------------------


def test_it_recomputes_only_the_periods_that_depend_on_a_replaced_month(
    region, users, unit_a, extract_dir
):
    e = _monthly(region, users["analyst"], extract_dir)
    services.compute(region)
    untouched = ["2025-01", "2025-02", "2025-04", "2025-05", "2025-06", "2025Q2"]
    affected = ["2025-03", "2025Q1", "2025"]
    kept = _ids("PO09", untouched)
    old = _ids("PO09", affected)
    po01 = _ids("PO01", affected)
    # March is replaced: two more psychologist contacts.
    e.contact("extra1", "2025-03-20", profession="psykolog", dx=("F41.1",))
    e.contact("extra2", "2025-03-21", profession="psykolog", dx=("F41.1",))
    march = [r for r in e.contacts if r["contact_date"].month == 3]
    ids = {r["contact_id"] for r in march}
    contacts = write_extract(region, users["analyst"], extract_dir, "contacts", "2025-03", march)
    write_extract(region, users["analyst"], extract_dir, "diagnoses", "2025-03",
                  [r for r in e.diagnoses if r["contact_id"] in ids])  # fmt: skip
    run = services.compute(region, ["2025-03"], tables=["contacts", "diagnoses"])
    assert not run.full
    assert sorted(run.computed["PO09"]) == sorted(affected)
    assert _ids("PO09", untouched) == kept  # same rows, same ids
    new = _ids("PO09", affected)
    # The cells of the dependent periods are updated in place, new cells inserted, and every
    # row of those periods takes the new run.
    assert set(old) <= set(new)
    assert {r.run_id for r in IndicatorResult.objects.filter(id__in=new)} == {run.pk}
    r = IndicatorResult.objects.get(
        definition__code="PO09", unit=unit_a, period="2025-03", sex="T", age_band="alla"
    )
    assert (r.numerator, r.denominator) == (6, 10)
    assert r.run == run
    # PO01 (new visits) is recomputed for the same periods, but the extra contacts are no new
    # visits: its rows stay, with the new run and inputs.
    assert sorted(run.computed["PO01"]) == sorted(affected)
    assert po01
    assert _ids("PO01", affected) == po01
    for r in IndicatorResult.objects.filter(id__in=po01).select_related("inputs"):
        assert r.run == run
        assert contacts.id in {x["id"] for x in r.inputs.extracts}
    assert run.results_unchanged == len(po01)
    assert run.results_written == run.results_replaced > 0
    # An episode indicator also recomputes the months whose follow-up reaches March.
    assert "2025-01" in run.computed["PO04"]
    # Staffing did not change; PO02 takes sex and age from any contact, so it depends on all.
    assert "PO11" not in run.computed
    assert len(run.computed["PO02"]) == 6 + 2 + 1


def test_it_finds_what_changed_since_the_last_run(region, users, unit_a, extract_dir):
    e = _monthly(region, users["analyst"], extract_dir)
    services.compute(region)
    assert services.stale_changes(region) == []
    next(r for r in e.contacts if r["patient_key"] == "p3-0")["profession"] = "psykolog"
    march = [r for r in e.contacts if r["contact_date"].month == 3]
    write_extract(region, users["analyst"], extract_dir, "contacts", "2025-03", march)
    assert services.stale_changes(region) == [engine.Change.of("contacts", "2025-03")]
    kept = _ids("PO09", ["2025-05"])
    run = services.compute(region, stale=True)
    assert sorted(run.computed["PO09"]) == ["2025", "2025-03", "2025Q1"]
    assert _ids("PO09", ["2025-05"]) == kept
    assert services.stale_changes(region) == []


def test_it_recomputes_an_edited_definition_in_full(region, users, unit_a, extract_dir):
    _monthly(region, users["analyst"], extract_dir)
    services.compute(region)
    # As if computed with an earlier text of the definition: a stored version of its own.
    earlier = services.current_definition("PO09")
    earlier.pk, earlier.version, earlier.is_current = None, "old", False
    earlier.save()
    IndicatorResult.objects.filter(definition__code="PO09").update(
        definition=earlier, definition_version="old"
    )
    old = IndicatorResult.objects.filter(definition__code="PO09").values_list("id", flat=True)
    old = set(old)
    run = services.compute(region, ["2025-03"], tables=["contacts"])
    assert not set(_ids("PO09", ["2025-01", "2025-06", "2025Q2", "2025"])) & old
    assert len(run.computed["PO09"]) == 6 + 2 + 1
    assert run.full_versions == {"PO09": services.current_definition("PO09").version}
    # Unchanged definitions with unchanged inputs: not computed, the dependent periods' rows
    # kept and given this run.
    assert "PO01" not in run.computed
    restamped = IndicatorResult.objects.filter(definition__code="PO01", run=run)
    assert set(restamped.values_list("period", flat=True)) == {"2025-03", "2025Q1", "2025"}
    assert set(
        IndicatorResult.objects.filter(definition__code="PO09").values_list(
            "definition_version", flat=True
        )
    ) == {services.current_definition("PO09").version}


def test_it_reads_the_stored_periods_of_each_definition_version(
    region, other_region, users, unit_a, extract_dir
):
    _monthly(region, users["analyst"], extract_dir)
    services.compute(region)
    earlier = services.current_definition("PO09")
    earlier.pk, earlier.version, earlier.is_current = None, "old", False
    earlier.save()
    IndicatorResult.objects.filter(definition__code="PO09", period="2025-03").update(
        definition=earlier, definition_version="old"
    )
    pairs = IndicatorResult.objects.values_list("definition_id", "period").distinct()
    assert sorted(services._stored_periods(region)) == sorted(pairs)
    assert services._stored_periods(other_region) == []
    versions, periods = services._stored(region)
    assert versions["PO09"] == {"old", services.current_definition("PO09").version}
    assert "2025-03" in periods["PO09"]
    assert periods["PO01"] == set(
        IndicatorResult.objects.filter(definition__code="PO01").values_list("period", flat=True)
    )


def _rows(**filters):
    return dict(IndicatorResult.objects.filter(**filters).values_list("id", "run_id"))


def test_it_keeps_every_row_when_a_month_is_uploaded_again_unchanged(
    region, users, unit_a, extract_dir
):
    e = _monthly(region, users["analyst"], extract_dir)
    first = services.compute(region)
    before = _rows()
    march = [r for r in e.contacts if r["contact_date"].month == 3]
    again = write_extract(region, users["analyst"], extract_dir, "contacts", "2025-03", march)
    assert services.stale_changes(region) == [engine.Change.of("contacts", "2025-03")]
    run = services.compute(region, stale=True)
    assert set(_rows()) == set(before)  # nothing deleted, nothing inserted
    assert (run.results_written, run.results_replaced) == (0, 0)
    # The same content: no figure computed again (only periods without stored figures, such
    # as those of sick leave here, have nothing to compare with).
    assert not {code for code, periods in run.computed.items() if _ids(code, periods)}
    dependent = IndicatorResult.objects.filter(run=run).select_related("definition", "inputs")
    assert run.results_unchanged == dependent.count() > 0
    candidates = engine.result_periods(engine.data_months(services.active_files(region)))
    changes = [engine.Change.of("contacts", "2025-03")]
    assert {(r.definition.code, r.period) for r in dependent} == {
        (d.code, str(p))
        for d in load_catalogue()
        for p in engine.dependent_periods(d, changes, candidates)
        if _ids(d.code, [str(p)])  # indicators with figures for the period
    }
    for r in dependent:
        assert again.id in {x["id"] for x in r.inputs.extracts}
    assert set(_rows(period="2025-05").values()) == {first.pk}  # not dependent: untouched
    assert services.stale_changes(region) == []
    assert "0 replaced, " in services.summarise(run)


@pytest.mark.parametrize("moved", ["one row", "all rows but one"])
def test_it_computes_a_period_whose_rows_come_from_two_input_sets(
    region, users, unit_a, extract_dir, moved
):
    e = _monthly(region, users["analyst"], extract_dir)
    services.compute(region)
    rows = IndicatorResult.objects.filter(definition__code="PO01", period="2025-03")
    ids = sorted(rows.values_list("id", flat=True))
    other = IndicatorResult.objects.filter(definition__code="PO01", period="2025-01").first()
    assert other.inputs_id != rows.first().inputs_id
    # Whichever row is looked at first, one of the period's rows is of another input set.
    chosen = ids[:1] if moved == "one row" else ids[1:]
    IndicatorResult.objects.filter(id__in=chosen).update(inputs_id=other.inputs_id)
    march = [r for r in e.contacts if r["contact_date"].month == 3]
    write_extract(region, users["analyst"], extract_dir, "contacts", "2025-03", march)
    run = services.compute(region, stale=True)
    assert run.computed["PO01"] == ["2025-03"]  # its quarter and year: kept
    assert len(set(rows.values_list("inputs_id", flat=True))) == 1


@pytest.mark.postgres_only
def test_it_restamps_kept_rows_without_touching_an_index(region, users, unit_a, extract_dir):
    """PostgreSQL: the kept rows' new run and inputs are HOT updates (migration 0003: no
    index holds them, and pages are left half full), which is most of a recompute's writes."""
    from django.db import connection

    e = _monthly(region, users["analyst"], extract_dir)
    services.compute(region)
    march = [r for r in e.contacts if r["contact_date"].month == 3]
    write_extract(region, users["analyst"], extract_dir, "contacts", "2025-03", march)
    run = services.compute(region, stale=True)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = %s",
            [IndicatorResult._meta.db_table],
        )
        updated, hot = cursor.fetchone()
    assert updated == hot == run.results_unchanged > 0


RATES = ("PO03A", "PO03B", "PO12")


def test_it_computes_a_month_sent_again_unchanged_when_other_inputs_changed(
    region, users, unit_a, extract_dir, settings
):
    listing(unit_a, [f"2025-{m:02d}" for m in range(1, 7)], {("K", "40-44"): 300})
    e = _monthly(region, users["analyst"], extract_dir)
    services.compute(region)
    march = [r for r in e.contacts if r["contact_date"].month == 3]
    # A listing corrected for March: the rates of March, its quarter and year, and nothing else.
    Listing.objects.filter(unit=unit_a, month="2025-03").update(listed=320)
    write_extract(region, users["analyst"], extract_dir, "contacts", "2025-03", march)
    run = services.compute(region, stale=True)
    # (Indicators without stored figures, such as those of sick leave here, are computed.)
    with_figures = {c: sorted(ps) for c, ps in run.computed.items() if _ids(c, ps)}
    assert with_figures == {code: ["2025", "2025-03", "2025Q1"] for code in RATES}
    # Another suppression threshold: the stored pattern no longer holds, everything dependent
    # is computed and protected again.
    settings.STYRKORT_SUPPRESSION_THRESHOLD = 3
    write_extract(region, users["analyst"], extract_dir, "contacts", "2025-03", march)
    run = services.compute(region, stale=True)
    assert sorted(run.computed["PO09"]) == ["2025", "2025-03", "2025Q1"]
    assert "PO01" in run.computed
    # A unit joining the region: every dependent figure may change.
    write_extract(region, users["analyst"], extract_dir, "contacts", "2025-03", march)
    CareUnit.objects.create(region=region, provider=unit_a.provider, hsa_id="SE2321000990-7777",
                            name="Vårdcentralen Ny")  # fmt: skip
    run = services.compute(region, stale=True)
    assert sorted(run.computed["PO09"]) == ["2025", "2025-03", "2025Q1"]


def test_it_updates_changed_cells_in_place_and_inserts_and_deletes_the_others(
    region, users, unit_a, extract_dir
):
    e = _monthly(region, users["analyst"], extract_dir)
    services.compute(region)
    po09 = {"definition__code": "PO09", "unit": unit_a}

    def cells(period):
        rows = IndicatorResult.objects.filter(period=period, **po09)
        return {(r.sex, r.age_band): r for r in rows}

    march_before = cells("2025-03")
    old_band = next(b for s, b in march_before if b != "alla")
    # March sent again: everyone born in 1950 (another age band), p3-0 (a doctor's) a man.
    for r in e.contacts:
        if r["contact_date"].month == 3:
            r["birth_year"] = 1950
            r["sex"] = "M" if r["patient_key"] == "p3-0" else r["sex"]
    march = [r for r in e.contacts if r["contact_date"].month == 3]
    write_extract(region, users["analyst"], extract_dir, "contacts", "2025-03", march)
    run = services.compute(region, ["2025-03"], tables=["contacts"])
    after = cells("2025-03")
    # The same cell, the same figures: the row stays, restamped.
    total = after[("T", "alla")]
    assert total.pk == march_before[("T", "alla")].pk
    assert (total.numerator, total.denominator, total.run) == (4, 8, run)
    # The same cell, other figures: updated in place.
    women = after[("K", "alla")]
    assert women.pk == march_before[("K", "alla")].pk
    assert (women.numerator, women.denominator, women.run) == (4, 7, run)
    # A cell gone (nobody of the old band in March) is deleted; new cells are inserted.
    assert ("K", old_band) not in after
    new_band = next(b for s, b in after if b not in ("alla", old_band))
    assert after[("M", new_band)].pk not in {r.pk for r in march_before.values()}
    assert (after[("M", new_band)].numerator, after[("M", new_band)].denominator) == (0, 1)
    # The quarter keeps January's and February's people in the old band: updated, smaller.
    quarter = IndicatorResult.objects.get(period="2025Q1", sex="K", age_band=old_band, **po09)
    assert (quarter.denominator, quarter.run) == (6 + 7, run)
    every = IndicatorResult.objects.filter(run=run, definition__code="PO09")
    assert set(every.values_list("period", flat=True)) == {"2025-03", "2025Q1", "2025"}
    assert run.results_written > run.results_replaced > 0  # new cells: more written


def test_it_sets_the_definition_only_in_updated_rows_of_another_version(
    region, users, unit_a, extract_dir
):
    _monthly(region, users["analyst"], extract_dir)
    services.compute(region, codes=["PO09"])
    definition = services.current_definition("PO09")
    a, b = IndicatorResult.objects.filter(definition=definition).order_by("pk")[:2]
    IndicatorResult.objects.filter(pk=b.pk).update(definition_version="older")
    two = np.array([1.0, 2.0])
    block = dataclasses.replace(
        engine.empty_block("PO09"), numerator=two, denominator=two * 10, value=two / 10,
        lower=two / 20, upper=two / 5, comparison=np.array(["similar", "worse"], dtype=object),
        complete=np.array([True, True]), reason=np.array(["", ""], dtype=object),
        period=np.array([a.period, b.period], dtype=object),
    )  # fmt: skip
    writes = services._CellWrites(
        row_id=np.array([a.pk, b.pk]), same=np.array([False, False]), orphans=[],
        version=np.array([True, False]),
    )  # fmt: skip
    inputs = {a.period: a.inputs_id, b.period: b.inputs_id}
    updates = services._cell_updates(block, writes, definition, a.run, inputs)
    for names, rows in updates.items():
        update_rows(IndicatorResult, names, rows)
    assert sum(len(rows) for rows in updates.values()) == 2
    columns_of = {row[-1]: names for names, rows in updates.items() for row in rows}
    assert "definition_id" in columns_of[b.pk]
    assert "definition_id" not in columns_of[a.pk]
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.numerator, a.comparison, b.numerator, b.comparison) == (1, "similar", 2, "worse")
    assert a.definition_version == b.definition_version == definition.version


def test_it_rewrites_only_the_periods_whose_figures_changed(region, users, unit_a, extract_dir):
    e = _monthly(region, users["analyst"], extract_dir)
    services.compute(region)
    changed = ["2025-03", "2025Q1", "2025"]
    same = ["2025-01", "2025-02", "2025-04", "2025-05", "2025-06", "2025Q2"]
    old, kept = _ids("PO09", changed), _ids("PO09", same)
    # One March contact with a doctor becomes one with a psychologist.
    next(r for r in e.contacts if r["patient_key"] == "p3-0")["profession"] = "psykolog"
    march = [r for r in e.contacts if r["contact_date"].month == 3]
    write_extract(region, users["analyst"], extract_dir, "contacts", "2025-03", march)
    run = services.compute(region, codes=["PO09"])  # in full: every period is compared
    assert run.full
    assert _ids("PO09", same) == kept
    assert not set(_ids("PO09", changed)) & set(old)
    assert set(_rows(definition__code="PO09").values()) == {run.pk}
    r = IndicatorResult.objects.get(
        definition__code="PO09", unit=unit_a, period="2025-03", sex="T", age_band="alla"
    )
    assert (r.numerator, r.denominator) == (5, 8)
    assert run.results_unchanged == len(kept)
    assert run.results_written == run.results_replaced == len(old)


def test_it_compares_figures_within_a_relative_tolerance(region, users, unit_a, extract_dir):
    _monthly(region, users["analyst"], extract_dir)
    services.compute(region, codes=["PO09"])
    feb, apr = _ids("PO09", ["2025-02"]), _ids("PO09", ["2025-04"])
    cell = {"definition__code": "PO09", "unit": unit_a, "sex": "T", "age_band": "alla"}
    r = IndicatorResult.objects.get(period="2025-02", **cell)
    r.value *= 1 + 1e-12  # the last bits of a parallel sum
    r.save()
    IndicatorResult.objects.filter(period="2025-04", **cell).update(numerator=4.0001)
    services.compute(region, codes=["PO09"])
    assert _ids("PO09", ["2025-02"]) == feb
    assert not set(_ids("PO09", ["2025-04"])) & set(apr)
    assert IndicatorResult.objects.get(period="2025-04", **cell).numerator == 4


def test_it_rewrites_nothing_in_a_second_full_run_over_the_same_data(
    region, users, unit_a, extract_dir
):
    _monthly(region, users["analyst"], extract_dir)
    first = services.compute(region)
    before = _rows()
    run = services.compute(region)
    assert run.full
    assert (run.results_written, run.results_replaced) == (0, 0)
    assert run.results_unchanged == first.results_written == len(before)
    assert set(_rows()) == set(before)
    assert set(_rows().values()) == {run.pk}
    assert services.stale_changes(region) == []
    assert "0 results written (0 replaced, " in services.summarise(run)


def test_it_compares_again_when_another_run_stored_results_meanwhile(
    region, users, unit_a, extract_dir, monkeypatch
):
    _monthly(region, users["analyst"], extract_dir)
    services.compute(region, codes=["PO09"])
    prepare = services._prepare
    cell = {"definition__code": "PO09", "unit": unit_a, "period": "2025-02", "sex": "T",
            "age_band": "alla"}  # fmt: skip

    def then_another_run(region, *args, **kwargs):
        out = prepare(region, *args, **kwargs)
        if not ComputationRun.objects.filter(error="meanwhile").exists():
            # Another run finishes after the comparison, with other figures for February.
            other = ComputationRun.objects.create(
                region=region, status=ComputationRun.Status.DONE, error="meanwhile"
            )
            IndicatorResult.objects.filter(**cell).update(numerator=99, run=other)
        return out

    monkeypatch.setattr(services, "_prepare", then_another_run)
    run = services.compute(region, codes=["PO09"])
    r = IndicatorResult.objects.get(**cell)
    assert (r.numerator, r.run) == (3, run)


# ------------------------------------------------------------------------------------------
# Disclosure control
# ------------------------------------------------------------------------------------------


def _psychosocial_contacts(day: str, cells) -> Extract:
    """Mental-health contacts on ``day``, everyone born 1990: per (unit, sex, hits, total),
    ``hits`` of ``total`` with a psychologist."""
    e = Extract()
    for unit, sex, hits, total in cells:
        for i in range(total):
            e.contact(f"{day}{unit}{sex}{i}", day, unit, sex=sex, born=1990,
                      profession="psykolog" if i < hits else "lakare", dx=("F41.1",))  # fmt: skip
    return e


@pytest.fixture
def small_numbers(region, users, unit_a, unit_b, extract_dir):
    """PO09 in January 2025, everyone aged 35 (band 25-44):

    unit A: K 2 of 10 psychosocial, M 6 of 10;  unit B: K 7 of 12, M 8 of 12.
    """
    e = _psychosocial_contacts(
        "2025-01-15", [(A, "K", 2, 10), (A, "M", 6, 10), (B, "K", 7, 12), (B, "M", 8, 12)]
    )
    e.write(region, users["analyst"], extract_dir, ["2025-01"])
    services.compute(region, codes=["PO09"])
    return e


def _cells(rows, period="2025-01", band="alla"):
    return {
        (r["unit_hsa_id"] or "region", r["sex"]): r
        for r in rows
        if r["period"] == period and r["age_band"] == band
    }


def test_it_shows_analysts_every_figure(users, small_numbers):
    rows = services.results_for(users["analyst"], "PO09")
    cells = _cells(rows)
    assert cells[(A, "K")]["value"] == pytest.approx(20.0)
    assert cells[(A, "K")]["numerator"] == 2
    assert not any(r["suppressed"] for r in rows)
    assert cells[(A, "K")]["publicly_suppressed"]
    assert cells[(A, "K")]["suppression_reason"] == "primary"


def _no_single_hidden(cells):
    """No equation (K + M = T per unit/region, units = region per sex) has exactly one hidden
    cell: nothing hidden can be derived by subtraction."""
    for unit in (A, B, "region"):
        hidden = [cells[(unit, s)]["suppressed"] for s in ("K", "M", "T")]
        assert sum(hidden) != 1, unit
    for sex in ("K", "M", "T"):
        hidden = [cells[(u, sex)]["suppressed"] for u in (A, B, "region")]
        assert sum(hidden) != 1, sex


def test_it_suppresses_small_numbers_for_viewers(users, small_numbers):
    for name in ("viewer", "auditor", "admin"):
        cells = _cells(services.results_for(users[name], "PO09"))
        small = cells[(A, "K")]
        assert small["suppressed"]
        assert small["suppression_reason"] == "primary"
        assert [small[k] for k in ("numerator", "denominator", "value", "lower", "upper")] == [
            None
        ] * 5
        assert small["comparison"] == "not_compared"
        assert cells[(A, "M")]["suppressed"]  # K + M = T
        assert cells[(A, "M")]["suppression_reason"] == "secondary"
        assert cells[(B, "K")]["suppressed"]  # A + B = region
        assert not cells[("region", "T")]["suppressed"]
        assert cells[("region", "T")]["numerator"] == 23
        _no_single_hidden(cells)


def test_it_shows_a_manager_the_own_unit_and_protects_the_others(users, small_numbers):
    cells = _cells(services.results_for(users["manager"], "PO09"))  # owns unit A
    assert cells[(A, "K")]["numerator"] == 2
    assert not cells[(A, "K")]["suppressed"]
    # Knowing A's figures, nothing about B needs hiding.
    assert not any(c["suppressed"] for c in cells.values())

    cells = _cells(services.results_for(users["colleague"], "PO09"))  # owns unit B
    assert not cells[(B, "K")]["suppressed"]
    assert cells[(A, "K")]["suppressed"]
    # B's manager knows B's K (7): the region's K (9) would give A's K away.
    assert cells[("region", "K")]["suppressed"]
    assert cells[("region", "K")]["value"] is None
    known = {k: dict(v, suppressed=False) if k[0] == B else v for k, v in cells.items()}
    _no_single_hidden(known)


def test_it_protects_age_bands_that_add_up_to_all_ages(users, small_numbers):
    rows = services.results_for(users["viewer"], "PO09", {"unit": A, "sex": "K"})
    by_band = {r["age_band"]: r for r in rows if r["period"] == "2025-01"}
    # Everyone is 25-44: that band equals "alla", so both are hidden.
    assert by_band["25-44"]["suppressed"]
    assert by_band["alla"]["suppressed"]


def test_it_keeps_suppression_right_after_a_partial_rewrite(
    region, users, small_numbers, extract_dir
):
    jan = _ids("PO09", ["2025-01"])
    # February: unit A's women 6 of 10, so the quarter's 8 of 20 is no longer small.
    e = _psychosocial_contacts(
        "2025-02-15", [(A, "K", 6, 10), (A, "M", 6, 10), (B, "K", 7, 12), (B, "M", 8, 12)]
    )
    e.write(region, users["analyst"], extract_dir, ["2025-02"])
    run = services.compute(region, codes=["PO09"])
    assert _ids("PO09", ["2025-01"]) == jan  # January kept with its stored pattern
    assert run.results_unchanged == len(jan)
    rows = services.results_for(users["viewer"], "PO09")
    january = _cells(rows)
    assert january[(A, "K")]["suppressed"]
    assert january[(A, "M")]["suppressed"]
    assert january[(B, "K")]["suppressed"]
    _no_single_hidden(january)
    assert not any(c["suppressed"] for c in _cells(rows, "2025Q1").values())

    def shown(name):
        return [
            {k: v for k, v in r.items() if k != "run_id"}
            for r in services.results_for(users[name], "PO09")
        ]

    # Every role sees exactly what a computation from scratch shows.
    names = ("viewer", "manager", "colleague", "analyst")
    before = {name: shown(name) for name in names}
    IndicatorResult.objects.all().delete()
    services.compute(region, codes=["PO09"])
    assert {name: shown(name) for name in names} == before


def test_it_filters_results(users, small_numbers, unit_a):
    rows = services.results_for(
        users["analyst"], "PO09", {"unit": unit_a.pk, "period": "2025-01", "sex": "T"}
    )
    assert {(r["unit_id"], r["period"], r["sex"]) for r in rows} == {(unit_a.pk, "2025-01", "T")}
    assert {r["age_band"] for r in rows} == {"25-44", "alla"}
    rows = services.results_for(users["analyst"], "PO09", {"unit": "region", "period_kind": "year"})
    assert {(r["unit_id"], r["period"]) for r in rows} == {(None, "2025")}
    rows = services.results_for(users["analyst"], "PO09", {"unit": A, "age_band": "alla"})
    assert {r["unit_hsa_id"] for r in rows} == {A}


def test_it_refuses_units_outside_the_region_and_users_without_a_role(
    users, small_numbers, other_unit
):
    with pytest.raises(Http404):
        services.results_for(users["analyst"], "PO09", {"unit": other_unit.pk})
    with pytest.raises(PermissionDenied):
        services.results_for(users["nobody"], "PO09")
    assert services.results_for(users["outsider"], "PO09") == []


def test_it_states_the_method_and_threshold(settings):
    settings.STYRKORT_SUPPRESSION_THRESHOLD = 5
    assert "mindre än 5" in services.suppression_notice("sv")
    assert "below 5" in services.suppression_notice("en")


def test_it_uses_the_configured_threshold(region, users, small_numbers, settings):
    settings.STYRKORT_SUPPRESSION_THRESHOLD = 2
    services.compute(region, codes=["PO09"])
    cells = _cells(services.results_for(users["viewer"], "PO09"))
    assert not cells[(A, "K")]["suppressed"]  # 2 is not below 2


def test_the_pattern_leaves_no_equation_with_one_hidden_cell():
    # A random-ish table: every stratum protected in both directions.
    cells = []
    key = 0
    values = {("U1", "K"): (1, 9), ("U1", "M"): (9, 20), ("U2", "K"): (30, 40),
              ("U2", "M"): (3, 40), ("U3", "K"): (12, 30), ("U3", "M"): (12, 31)}  # fmt: skip
    for (unit, sex), (num, den) in values.items():
        for band, share in (("25-44", 1), ("alla", 1)):
            cells.append(services.SCell(key, unit, "2025", sex, band, num * share, den))
            key += 1
    for unit in ("U1", "U2", "U3"):
        for band in ("25-44", "alla"):
            num = values[(unit, "K")][0] + values[(unit, "M")][0]
            den = values[(unit, "K")][1] + values[(unit, "M")][1]
            cells.append(services.SCell(key, unit, "2025", "T", band, num, den))
            key += 1
    for sex in ("K", "M", "T"):
        for band in ("25-44", "alla"):
            num = sum(c.numerator for c in cells if c.sex == sex and c.age_band == band)
            den = sum(c.denominator for c in cells if c.sex == sex and c.age_band == band)
            cells.append(services.SCell(key, "", "2025", sex, band, num, den))
            key += 1
    hidden = services.suppression_pattern(cells, 5)
    assert hidden
    groups = {}
    for c in cells:
        groups.setdefault(("sex", c.unit, c.age_band), []).append(c.key in hidden)
        groups.setdefault(("unit", c.sex, c.age_band), []).append(c.key in hidden)
        groups.setdefault(("band", c.unit, c.sex), []).append(c.key in hidden)
    assert all(sum(flags) != 1 for flags in groups.values())


# ------------------------------------------------------------------------------------------
# Exports, the job and the command
# ------------------------------------------------------------------------------------------


def test_it_exports_csv_with_suppressed_cells_empty(users, small_numbers):
    export = services.export_results(users["viewer"], "PO09", {"period": "2025-01"}, "csv")
    assert export.filename.endswith(".csv")
    assert export.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(export.content.decode("utf-8-sig"))))
    small = next(
        r for r in rows if r["HSA-id"] == A and r["Sex"] == "K" and r["Age band"] == "alla"
    )
    assert small["Value"] == ""
    assert small["Numerator"] == ""
    assert small["Suppressed"] == "yes"
    region = next(r for r in rows if r["Unit"] == "Region" and r["Sex"] == "T"
                  and r["Age band"] == "alla")  # fmt: skip
    assert float(region["Numerator"]) == 23
    analyst = services.export_results(users["analyst"], "PO09", {"period": "2025-01"}, "csv")
    assert b",20.0," in analyst.content


def test_it_exports_xlsx_with_the_method(users, small_numbers):
    from openpyxl import load_workbook

    export = services.export_results(users["viewer"], "PO09", None, "xlsx")
    book = load_workbook(io.BytesIO(export.content))
    results, about = book.worksheets
    header = [c.value for c in results[1]]
    assert header[0] == "Indicator"
    assert any("suppressed" in str(row[1].value) or "döljs" in str(row[1].value)
               for row in about.iter_rows())  # fmt: skip
    with pytest.raises(ValueError, match="csv or xlsx"):
        services.export_results(users["viewer"], "PO09", None, "pdf")


def test_it_computes_as_a_background_job(region, users, unit_a, extract_dir, settings):
    settings.STYRKORT_JOBS = "inline"
    _monthly(region, users["analyst"], extract_dir)
    job = services.enqueue_compute(users["analyst"])
    assert job.status == Job.Status.DONE, job.error
    run = ComputationRun.objects.get(pk=job.result["run"])
    assert run.job_id == job.pk
    assert job.result["results_written"] == run.results_written > 0
    assert job.result["results_unchanged"] == run.results_unchanged == 0
    with pytest.raises(PermissionDenied):
        services.enqueue_compute(users["viewer"])
    assert Job.objects.count() == 1


def test_a_compute_job_goes_back_to_the_queue_while_another_run_holds_the_region(
    region, users, unit_a, extract_dir, settings
):
    settings.STYRKORT_JOBS = "poller"
    _monthly(region, users["analyst"], extract_dir)
    job = services.enqueue_compute(users["analyst"])
    history = ChangeRecord.objects.count()
    with derived_lock(region):
        assert run_pending() == 1
    job.refresh_from_db()
    assert (job.status, job.attempts) == (Job.Status.QUEUED, 0)
    assert job.not_before is not None
    assert not ComputationRun.objects.exists()
    assert not IndicatorResult.objects.exists()
    assert ChangeRecord.objects.count() == history
    assert run_pending() == 0  # not before its time
    Job.objects.filter(pk=job.pk).update(not_before=None)
    assert run_pending() == 1
    job.refresh_from_db()
    assert job.status == Job.Status.DONE, job.error
    assert IndicatorResult.objects.filter(run_id=job.result["run"]).exists()


def test_the_command_computes_and_prints_a_summary(region, users, unit_a, extract_dir):
    _monthly(region, users["analyst"], extract_dir)
    out, err = io.StringIO(), io.StringIO()
    call_command("compute", "--user", "analyst", stdout=out, stderr=err)
    line = out.getvalue().strip()
    assert line.startswith("Region Exempel: 17 indicator(s), all periods,")
    assert "PO04" in err.getvalue()
    out = io.StringIO()
    call_command("compute", "--period", "2025-03", "--table", "contacts", "--region", "99",
                 stdout=out, stderr=err)  # fmt: skip
    assert "dependent period(s)" in out.getvalue()
    assert InputSet.objects.exists()


def test_the_command_refuses_bad_input(region, users, extract_dir):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="is not a period"):
        call_command("compute", "--period", "March")
    with pytest.raises(CommandError, match="may not compute"):
        call_command("compute", "--user", "viewer")
    with pytest.raises(CommandError, match="no user"):
        call_command("compute", "--user", "ghost")
    assert not ComputationRun.objects.exists()


def test_the_command_says_when_the_region_stays_busy(region, users, extract_dir, settings):
    from django.core.management import CommandError

    settings.STYRKORT_COMPUTE_LOCK_TIMEOUT = 0.1
    with derived_lock(region), pytest.raises(CommandError, match="run this one again"):
        call_command("compute", "--user", "analyst", stderr=io.StringIO())
    assert not IndicatorResult.objects.exists()
