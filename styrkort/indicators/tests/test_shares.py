"""What the engine keeps between runs under the region's derived directory, and that it gives
exactly the figures it gives without it:

* per-period shares (per-period views and window-free case rows as Parquet), of which only a
  replaced month's are made again;
* the case rows of per-patient definitions over all periods, brought up to date for the
  patients whose rows changed."""

from __future__ import annotations

import json

import duckdb
import pytest

from styrkort.extracts.models import ExtractVersion
from styrkort.extracts.services import derived_dir
from styrkort.indicators import engine, services
from styrkort.indicators.catalogue import load_catalogue
from styrkort.indicators.models import IndicatorResult
from styrkort.indicators.tests.scenario import A, B, Extract, listing, write_extract
from styrkort.jobs.services import run_pending
from styrkort.periods import Period, period_range

MONTHS = [str(p) for p in period_range("2024-10", "2025-06")]


@pytest.fixture
def uploader(db):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create(username="uploader")


def _scenario() -> Extract:
    """A little of everything, spread over months: new visits, depression and its follow-up,
    treatment courses with ratings, waits, sick leave, two units."""
    e = Extract()
    e.contact("p1", "2024-11-05", new=True, dx=("F32.1",))
    e.contact("p1", "2025-01-20", profession="psykolog", kva=("DU011",))
    e.contact("p1", "2025-02-20", profession="psykolog", kva=("DU011",))
    e.contact("p1", "2025-03-02", dx=("F32.1",), new=True)
    e.contact("p2", "2025-02-01", B, new=True, sex="M", dx=("F41.1",), kind="video")
    e.contact("p2", "2025-03-15", B, profession="kurator", dx=("F41.1",), kind="grupp")
    e.contact("p2", "2025-03-20", B, profession="psykolog", kva=("DU022",))
    e.contact("p2", "2025-05-02", B, profession="psykolog", kva=("DU022",))
    e.contact("p3", "2025-03-01", new=True, dx=("F33.0",), born=1990)
    e.contact("p3", "2025-03-12", dx=("F33.0",), born=1990)
    e.contact("p4", "2025-03-09", new=True, dx=("J06.9",))
    e.contact("p5", "2024-12-01", dx=("Z73.0",), sex="M")
    e.contact("p5", "2025-04-01", profession="psykolog", kva=("DU008",), sex="M")
    e.contact("p5", "2025-06-11", profession="psykolog", kva=("DU008",), sex="M")
    for patient, day, score in (("p1", "2025-01-18", 16), ("p1", "2025-03-30", 8),
                                ("p2", "2025-03-18", 12), ("p2", "2025-05-01", 5),
                                ("p5", "2025-04-01", 20), ("p5", "2025-06-10", 19)):  # fmt: skip
        e.rating(patient, day, "PHQ-9", score, B if patient == "p2" else A)
    e.leave("p3", "2024-10-01", "2025-05-31", "F43.8A")
    e.leave("p4", "2025-01-10", "2025-06-30", "M54.5")
    e.leave("p5", "2024-12-15", "2025-04-30", "F32.1", unit=B)
    return e


@pytest.fixture
def env(settings, tmp_path, region, uploader, unit_a, unit_b):
    settings.EXTRACT_DIR = tmp_path / "extracts"
    for unit in (unit_a, unit_b):
        listing(unit, MONTHS, {("K", "40-44"): 300, ("M", "40-44"): 200})
    e = _scenario()
    e.write(region, uploader, settings.EXTRACT_DIR, MONTHS)
    return e


def _blocks(region, cache_dir, skip_untouched=(), exact=False) -> list[engine.Block]:
    """Every indicator for every period, straight from the engine (nothing stored)."""
    catalogue = load_catalogue()
    files = services.active_files(region)
    staffing = services._staffing(region)
    plan, _ = services.plan_compute(
        catalogue, files, staffing, changes=None,
        stored_versions={}, stored_periods={}, full_versions={},
    )  # fmt: skip
    return engine.compute_blocks(
        catalogue,
        {code: periods for code, periods in plan.items() if periods},
        units=services._units(region),
        files=files,
        listing=services._listing(region, MONTHS),
        staffing=staffing,
        engine_options={"cache_dir": cache_dir, "exact_patient_keys": exact},
        skip_untouched=skip_untouched,
    )


def _figures(region, cache_dir, exact=False) -> dict[str, list[dict]]:
    return {b.code: b.rows() for b in _blocks(region, cache_dir, exact=exact)}


def _by_period(figures: dict[str, list[dict]]) -> dict[tuple[str, str], list[dict]]:
    out: dict[tuple[str, str], list[dict]] = {}
    for code, rows in figures.items():
        for row in rows:
            out.setdefault((code, row["period"]), []).append(row)
    return out


def _shares(root) -> dict[str, int]:
    """The per-period shares (the kept case rows of per-patient definitions, under state/,
    are one file over all periods)."""
    return {
        str(p.relative_to(root)): p.stat().st_mtime_ns
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0] != "state"
    }


def test_it_gives_the_same_figures_from_shares_as_from_whole_tables(region, env, tmp_path):
    whole = _figures(region, None)
    assert sum(len(rows) for rows in whole.values()) > 1000
    cold = _figures(region, tmp_path / "derived")
    warm = _figures(region, tmp_path / "derived")
    assert cold == whole
    assert warm == whole
    names = set(_shares(tmp_path / "derived"))
    # One share per month of each per-period view and window-free indicator.
    for view in ("sick_leave_demographics", "depression_days", "treatment_days", "daily_ratings"):
        assert sum(n.startswith(f"views/{view}/") for n in names) == len(MONTHS)
    assert sum(n.startswith("cases/PO01/") for n in names) == len(MONTHS)
    assert not any(n.startswith(("cases/PO04/", "views/new_depression/")) for n in names)


def _replace_march(region, env, uploader, settings) -> None:
    """March sent again, corrected: p3's second visit is gone, p4's visit was a depression."""
    env.contacts = [r for r in env.contacts if (r["patient_key"], str(r["contact_date"]))
                    != ("p3", "2025-03-12")]  # fmt: skip
    env.contact("p4", "2025-03-10", dx=("F32.0",))
    _send_march(region, env, uploader, settings)


def _send_march(region, env, uploader, settings) -> None:
    """March's contacts and diagnoses of ``env`` sent as new versions."""
    _send_month(region, env, uploader, settings, "2025-03", ("diagnoses",))


def _send_month(
    region, env, uploader, settings, month: str, tables=("diagnoses", "procedures")
) -> None:
    """A month's contacts and the rows of ``tables`` naming them sent as new versions."""
    period = Period.parse(month)
    rows = [r for r in env.contacts if period.contains(r["contact_date"])]
    ids = {r["contact_id"] for r in rows}
    write_extract(region, uploader, settings.EXTRACT_DIR, "contacts", month, rows)
    for table in tables:
        write_extract(region, uploader, settings.EXTRACT_DIR, table, month,
                      [r for r in getattr(env, table) if r["contact_id"] in ids])  # fmt: skip


def test_it_rebuilds_only_the_shares_of_a_replaced_month(region, env, uploader, settings, tmp_path):
    root = tmp_path / "derived"
    _figures(region, root)
    before = _shares(root)
    _replace_march(region, env, uploader, settings)
    assert _figures(region, root) == _figures(region, None)
    after = _shares(root)
    kept = {n: t for n, t in before.items() if "/2025-03." not in n}
    assert {n: after[n] for n in kept} == kept  # untouched months: same files, not rewritten
    replaced = [n for n in before if "/2025-03." in n]
    # Shares reading contacts or diagnoses got new keys; the old ones are gone.
    for name in ("views/depression_days/", "views/sick_leave_demographics/", "cases/PO01/"):
        old = [n for n in replaced if n.startswith(name)]
        new = [n for n in after if n.startswith(name) and "/2025-03." in n]
        assert len(old) == len(new) == 1
        assert old != new
        assert old[0] not in after
    assert not [n for n in after if n.endswith(".tmp")]


def test_it_keeps_the_shares_of_a_month_sent_again_unchanged(
    region, env, uploader, settings, tmp_path
):
    root = tmp_path / "derived"
    _figures(region, root)
    before = _shares(root)
    march = Period.parse("2025-03")
    rows = [r for r in env.contacts if march.contains(r["contact_date"])]
    old = services.active_files(region)
    write_extract(region, uploader, settings.EXTRACT_DIR, "contacts", "2025-03", rows)
    new = services.active_files(region)
    old_march, new_march = ([f for f in files if f.table == "contacts" and f.period == "2025-03"]
                            for files in (old, new))  # fmt: skip
    assert old_march[0].id != new_march[0].id
    assert old_march[0].checksum == new_march[0].checksum
    assert _figures(region, root) == _figures(region, None)
    assert _shares(root) == before  # the same files, none rewritten


def _patients(*pseudonyms: str) -> set:
    """The engine's keys of these pseudonyms (their hashes, see ``engine.PATIENT_KEY``)."""
    key = engine.PATIENT_KEY.format("k")
    return {
        h
        for (h,) in duckdb.execute(
            f"SELECT {key} FROM unnest(?) AS t(k)", [list(pseudonyms)]
        ).fetchall()
    }


PER_PATIENT = {"PO02", "PO04", "PO05", "PO06", "PO07A", "PO07B", "PO08A", "PO08B", "PO08C",
               "PO12"}  # fmt: skip


@pytest.fixture
def states(monkeypatch):
    """Records, per run, which kept case rows were updated (with the patients whose rows were
    computed again) and which were computed for every patient."""
    calls: list[dict] = []
    update, make = engine.Engine.update_states, engine.Engine.make_states

    def update_states(self, catalogue, states):
        update(self, catalogue, states)
        patients = set()
        if states:
            patients = {
                k for (k,) in self.con.execute("SELECT patient_key FROM affected").fetchall()
            }
        calls.append({"updated": {s.definition.code for s in states}, "patients": patients})

    def make_states(self, states):
        make(self, states)
        calls[-1]["made"] = {s.definition.code for s in states}

    monkeypatch.setattr(engine.Engine, "update_states", update_states)
    monkeypatch.setattr(engine.Engine, "make_states", make_states)
    return calls


def test_it_updates_the_kept_cases_of_the_patients_whose_rows_changed(
    region, env, uploader, settings, tmp_path, states, monkeypatch
):
    # Kept as changes however many (a handful of patients here: most rows change).
    monkeypatch.setattr(engine, "STATE_CHANGES_LIMIT", float("inf"))
    root = tmp_path / "derived"
    _figures(region, root)
    assert states[-1] == {"updated": set(), "patients": set(), "made": PER_PATIENT}
    _replace_march(region, env, uploader, settings)
    figures = _figures(region, root)
    assert states[-1] == {"updated": PER_PATIENT, "patients": _patients("p3", "p4"), "made": set()}
    assert figures == _figures(region, None)
    # One state per definition, kept as changes to the earlier rows: nothing else is left.
    for code in PER_PATIENT:
        (manifest,) = (root / "state" / code).glob("*.json")
        content = json.loads(manifest.read_text())
        assert content["base"]["removed"] == f"{manifest.stem}.removed.parquet"
        files = engine.state_files(manifest.with_suffix(".parquet"), content)
        assert sorted((root / "state" / code).glob("*.parquet")) == sorted(files)


def test_it_keeps_the_cases_right_over_successive_corrections(
    region, env, uploader, settings, tmp_path, states, monkeypatch
):
    monkeypatch.setattr(engine, "STATE_CHANGES_LIMIT", float("inf"))
    root = tmp_path / "derived"
    _figures(region, root)
    _replace_march(region, env, uploader, settings)
    assert _figures(region, root) == _figures(region, None)
    # April corrected: changes on top of the changes, to the same earlier rows.
    env.contact("p1", "2025-04-02", profession="psykolog", kva=("DU011",))
    env.contact("p6", "2025-04-03", new=True, dx=("F32.1",), sex="M")
    _send_month(region, env, uploader, settings, "2025-04")
    bases = {code: _state(root, code)["base"]["rows"] for code in PER_PATIENT}
    assert _figures(region, root) == _figures(region, None)
    assert states[-2]["patients"] == _patients("p1", "p6")  # [-1] is the run without a cache
    assert {code: _state(root, code)["base"]["rows"] for code in PER_PATIENT} == bases
    # March again, as first sent; past the share of changes allowed, the rows are kept whole.
    monkeypatch.setattr(engine, "STATE_CHANGES_LIMIT", 0.0)
    env.contacts = [r for r in env.contacts if (r["patient_key"], str(r["contact_date"]))
                    != ("p4", "2025-03-10")]  # fmt: skip
    _send_month(region, env, uploader, settings, "2025-03")
    assert _figures(region, root) == _figures(region, None)
    for code in PER_PATIENT:
        assert "base" not in _state(root, code)
        assert len(list((root / "state" / code).glob("*.parquet"))) == 1


def _state(root, code) -> dict:
    (manifest,) = (root / "state" / code).glob("*.json")
    return json.loads(manifest.read_text())


def test_it_reads_kept_cases_as_they_are_when_no_file_changed(region, env, tmp_path, states):
    root = tmp_path / "derived"
    first = _figures(region, root)
    kept = {p: p.stat().st_mtime_ns for p in (root / "state").rglob("*.parquet")}
    assert _figures(region, root) == first
    assert states[-1] == {"updated": set(), "patients": set(), "made": set()}
    assert {p: p.stat().st_mtime_ns for p in (root / "state").rglob("*.parquet")} == kept


def test_it_computes_every_patients_cases_when_an_earlier_file_is_gone(
    region, env, uploader, settings, tmp_path, states
):
    from styrkort.extracts.models import ExtractVersion

    root = tmp_path / "derived"
    _figures(region, root)
    _replace_march(region, env, uploader, settings)
    ExtractVersion.objects.get(table="contacts", period="2025-03", version=1).full_path.unlink()
    assert _figures(region, root) == _figures(region, None)
    assert states[-2]["updated"] == set()  # [-1] is the run without a cache
    assert states[-2]["made"] == PER_PATIENT


def test_it_leaves_out_the_periods_whose_kept_cases_did_not_change(
    region, env, uploader, settings, tmp_path
):
    root = tmp_path / "derived"
    before = _by_period(_figures(region, root))
    earlier = {(f.table, f.period, f.checksum) for f in services.active_files(region)}
    _replace_march(region, env, uploader, settings)
    blocks = _blocks(region, root, skip_untouched=PER_PATIENT)
    after = _by_period(_figures(region, None))
    untouched = {(b.code, p): files for b in blocks for p, files in b.untouched.items()}
    computed = {(b.code, p) for b in blocks for p in b.period.tolist()}
    assert {code for code, _p in untouched} == PER_PATIENT
    assert not untouched.keys() & computed
    for cell, files in untouched.items():
        # Left out rightly: the same figures as before the change.
        assert before.get(cell) == after.get(cell), cell
        assert set(files) <= earlier  # the files the stored figures must come from
    # Periods reading March name its earlier contacts file.
    old_march = next(e for e in earlier if e[:2] == ("contacts", "2025-03"))
    assert old_march in untouched[("PO02", "2025-03")]
    for b in blocks:
        figures = _by_period({b.code: b.rows()})
        assert figures == {cell: after[cell] for cell in figures}
    # Not asked to: every period computed, as before.
    assert not any(b.untouched for b in _blocks(region, root))


def _stored() -> dict[tuple, tuple]:
    rows = IndicatorResult.objects.values_list(
        "definition__code", "unit__hsa_id", "period", "sex", "age_band",
        "numerator", "denominator", "value", "comparison",
    )  # fmt: skip
    return {tuple(r[:5]): tuple(r[5:]) for r in rows}


def _scratch(region) -> dict[tuple, tuple]:
    out = {}
    for code, rows in _figures(region, None).items():
        for r in rows:
            key = (code, r["unit"] or None, r["period"], r["sex"], r["age_band"])
            out[key] = (r["numerator"], r["denominator"], r["value"], r["comparison"])
    return out


def _same(stored, scratch) -> bool:
    def close(a, b):
        if isinstance(a, float) or isinstance(b, float):
            return a is not None and b is not None and abs(a - b) <= 1e-9 * max(1, abs(b))
        return a == b

    return stored.keys() == scratch.keys() and all(
        all(close(a, b) or a == b for a, b in zip(stored[k], scratch[k], strict=True))
        for k in stored
    )


def test_it_keeps_the_stored_figures_of_periods_whose_cases_did_not_change(
    region, env, uploader, settings
):
    first = services.compute(region)
    _replace_march(region, env, uploader, settings)
    run = services.compute(region, stale=True)
    assert _same(_stored(), _scratch(region))
    # PO02 (sick leave ongoing at a period's end) depends on every month: the periods whose
    # cases did not change keep their stored rows, restamped with the new files.
    march = ExtractVersion.objects.get(table="contacts", period="2025-03", status="active")
    computed = set(run.computed["PO02"])
    kept = IndicatorResult.objects.filter(definition__code="PO02").exclude(period__in=computed)
    assert computed
    assert kept.exists()
    assert {r.run_id for r in kept} == {run.pk} != {first.pk}
    assert all(march.id in {e["id"] for e in r.inputs.extracts} for r in kept)
    assert services.stale_changes(region) == []


def test_it_computes_periods_whose_stored_figures_come_from_other_files(
    region, env, uploader, settings, monkeypatch
):
    services.compute(region)
    # The kept cases brought up to date by a run whose results were not stored ...
    _replace_march(region, env, uploader, settings)
    _figures(region, derived_dir(region))
    # ... then March corrected once more, for p1 only: periods that p3's and p4's changes
    # moved, but p1's did not, are untouched since the kept cases, not since the results.
    env.contacts = [r for r in env.contacts if (r["patient_key"], str(r["contact_date"]))
                    != ("p1", "2025-03-02")]  # fmt: skip
    _send_march(region, env, uploader, settings)
    calls = []
    compute_blocks = engine.compute_blocks

    def counted(*args, **kwargs):
        calls.append(set(args[1]))
        return compute_blocks(*args, **kwargs)

    monkeypatch.setattr(engine, "compute_blocks", counted)
    services.compute(region, stale=True)
    assert len(calls) == 2  # the second for the periods whose stored figures were older
    assert _same(_stored(), _scratch(region))


def test_it_names_the_changed_files_of_a_kept_state(tmp_path):
    def file(i, table, period, checksum):
        path = tmp_path / f"{i}.parquet"
        path.touch()
        return engine.ExtractFile(i, table, period, 1, path, checksum)

    contacts, diagnoses = file(1, "contacts", "2025-03", "a"), file(2, "diagnoses", "2025-03", "b")
    old = {"files": [["contacts", "2025-03", "a"], ["diagnoses", "2025-03", "b"]],
           "paths": [["contacts", "2025-03", str(contacts.path)],
                     ["diagnoses", "2025-03", str(diagnoses.path)]]}  # fmt: skip
    new_diagnoses = file(3, "diagnoses", "2025-03", "c")
    april = file(4, "contacts", "2025-04", "d")
    now = {"contacts": [contacts, april], "diagnoses": [new_diagnoses]}
    assert engine.changed_files(old, now) == [
        engine.ChangedFile("contacts", "2025-04", None, str(april.path)),
        engine.ChangedFile(
            "diagnoses",
            "2025-03",
            str(diagnoses.path),
            str(new_diagnoses.path),
            (str(contacts.path),),
        ),  # fmt: skip
    ]
    diagnoses.path.unlink()  # the earlier file is gone: its patients cannot be named
    assert engine.changed_files(old, now) is None


def test_it_splits_files_only_into_separate_periods():
    def file(i, table, period):
        return engine.ExtractFile(i, table, period, 1, f"/x/{i}", "0" * 64)  # type: ignore[arg-type]

    months = {
        "contacts": [file(1, "contacts", "2025-01"), file(2, "contacts", "2025-02")],
        "diagnoses": [file(3, "diagnoses", "2025-02")],
    }
    parts = engine.partitions(months, ["contacts", "diagnoses"])
    assert parts is not None
    assert {str(p): sorted(g) for p, g in parts.items()} == {
        "2025-01": ["contacts"],
        "2025-02": ["contacts", "diagnoses"],
    }
    overlapping = {"contacts": [file(1, "contacts", "2025Q1")],
                   "diagnoses": [file(3, "diagnoses", "2025-02")]}  # fmt: skip
    assert engine.partitions(overlapping, ["contacts", "diagnoses"]) is None


def test_it_computes_whole_tables_when_periods_overlap(
    region, settings, uploader, unit_a, tmp_path
):
    settings.EXTRACT_DIR = tmp_path / "extracts"
    e = Extract()
    e.contact("q1", "2025-01-05", new=True, dx=("F32.1",))
    e.contact("q2", "2025-02-05", new=True)
    e.write(region, uploader, settings.EXTRACT_DIR, ["2025Q1"])
    february = [r for r in e.contacts if r["patient_key"] == "q2"]
    write_extract(region, uploader, settings.EXTRACT_DIR, "contacts", "2025-02", february)
    assert _figures(region, tmp_path / "derived") == _figures(region, None)
    assert not (tmp_path / "derived" / "cases" / "PO01").exists()


def test_a_failed_share_leaves_no_file(tmp_path):
    e = engine.Engine({})
    e.cache_dir = tmp_path
    with pytest.raises(duckdb.Error):
        e._cached("views", "broken", "k", Period.parse("2025-03"), lambda: "SELECT * FROM nowhere",
                  {})  # fmt: skip
    e.close()
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_purging_a_version_removes_the_shares_of_its_period(
    region, env, uploader, settings, django_capture_on_commit_callbacks
):
    from styrkort.accounts.models import Membership, Role
    from styrkort.extracts import services as extracts
    from styrkort.extracts.models import ExtractVersion

    Membership.objects.create(user=uploader, region=region, role=Role.ANALYST)
    services.compute(region)
    root = extracts.derived_dir(region)
    assert list(root.rglob("2025-03.*.parquet"))
    rows = [r for r in env.contacts if Period.parse("2025-03").contains(r["contact_date"])]
    write_extract(region, uploader, settings.EXTRACT_DIR, "contacts", "2025-03", rows)
    old = ExtractVersion.objects.get(table="contacts", period="2025-03", version=1)
    made_from_old = list(root.glob("state/*/*.parquet"))
    assert made_from_old  # made before the new version, from the one purged below
    with django_capture_on_commit_callbacks(execute=True):
        extracts.purge(uploader, old)
    assert run_pending() == 1  # the job that deletes the files
    assert not list(root.rglob("2025-03.*.parquet"))
    assert list(root.rglob("2025-02.*.parquet"))  # other months keep theirs
    assert not [p for p in made_from_old if p.exists()]
    assert not list(root.glob("state/*/*.json"))


def test_purging_a_version_removes_the_cases_kept_as_changes_to_rows_made_from_it(
    region, env, uploader, settings, django_capture_on_commit_callbacks, monkeypatch
):
    from styrkort.accounts.models import Membership, Role
    from styrkort.extracts import services as extracts
    from styrkort.extracts.models import ExtractVersion

    monkeypatch.setattr(engine, "STATE_CHANGES_LIMIT", float("inf"))
    Membership.objects.create(user=uploader, region=region, role=Role.ANALYST)
    services.compute(region)
    _replace_march(region, env, uploader, settings)
    services.compute(region, ["2025-03"])
    root = extracts.derived_dir(region)
    kept = list(root.glob("state/*/*.parquet"))
    # The earlier whole rows were made from March's first contacts, now superseded.
    assert any(p.name.endswith(".removed.parquet") for p in kept)
    old = ExtractVersion.objects.get(table="contacts", period="2025-03", version=1)
    with django_capture_on_commit_callbacks(execute=True):
        extracts.purge(uploader, old)
    assert run_pending() == 1
    assert not [p for p in kept if p.exists()]
    assert not list(root.glob("state/*/*.json"))


def _key_modes(root) -> set[str]:
    return {json.loads(p.read_text())["patient_keys"] for p in (root / "state").rglob("*.json")}


def test_it_counts_patients_by_the_hash_of_their_pseudonym_as_by_its_text(
    region, env, uploader, settings, tmp_path
):
    hashed, text = tmp_path / "hashed", tmp_path / "text"
    assert _figures(region, hashed) == _figures(region, text, exact=True)
    assert _key_modes(hashed) == {f"hash64 duckdb {duckdb.__version__}"}
    assert _key_modes(text) == {"text"}
    _replace_march(region, env, uploader, settings)
    assert _figures(region, hashed) == _figures(region, text, exact=True)


def test_it_counts_by_the_pseudonyms_text_once_two_share_a_hash(
    region, env, uploader, settings, tmp_path, monkeypatch, states
):
    exact = _figures(region, tmp_path / "text", exact=True)
    # Five pseudonyms, two hashes: patients that would be counted as one.
    monkeypatch.setattr(engine, "PATIENT_KEY", "(hash({}) % 2)")
    unchecked = tmp_path / "unchecked"
    with monkeypatch.context() as m:
        m.setattr(engine.Engine, "check_patient_keys", lambda self, files: None)
        assert _figures(region, unchecked) != exact  # what the check is there for
    root = tmp_path / "derived"
    assert _figures(region, root) == exact
    assert (root / engine.EXACT_KEYS_MARKER).is_file()
    assert _key_modes(root) == {"text"}
    # Later runs bring the rows kept by the text up to date, without looking again.
    _replace_march(region, env, uploader, settings)
    assert _figures(region, root) == _figures(region, tmp_path / "text", exact=True)
    assert states[-1]["updated"] == PER_PATIENT
    assert _key_modes(root) == {"text"}
    # Without a derived directory every run looks, and computes by the text.
    assert _figures(region, None) == _figures(region, tmp_path / "text", exact=True)
