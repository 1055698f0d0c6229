"""The synthetic extract generator: shape, determinism, validity, scaling, calibration and the
differences between units, checked with DuckDB directly on the generated files.

Calibration and unit differences are checked at the demo's volume (`synth.DEMO_SCALE`, two
years), generated once per module; the other tests use small scales.
"""

from __future__ import annotations

import math
import os
from io import StringIO
from pathlib import Path

import duckdb
import pytest
from django.core.management import CommandError, call_command

from styrkort.extracts import synth
from styrkort.extracts.schema import TABLE_NAMES, TABLES
from styrkort.extracts.validation import PERSONAL_NUMBER_CANDIDATE_SQL_RE, validate_extract
from styrkort.identifiers import find_personal_number
from styrkort.organisation.demo import MONTHS, build_demo_registry
from styrkort.web import demo

SEED = 2025
LOW = ("Hälsocentralen Ekdalen", "Hälsocentralen Björkå", "Hälsa Nord Hälsocentral Björkå")
HIGH = ("Vårdcentralen Norrby",)
Z99_8 = 3.090232  # two-sided 99.8 % normal quantile, as the funnel plots use


@pytest.fixture(scope="module")
def registry():
    return build_demo_registry(SEED)


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory, registry) -> Path:
    """Two years at the demo's volume."""
    out = tmp_path_factory.mktemp("demo-volume")
    synth.generate(out, seed=SEED, scale=synth.DEMO_SCALE, registry=registry)
    return out


@pytest.fixture(scope="module")
def small(tmp_path_factory, registry) -> Path:
    out = tmp_path_factory.mktemp("small")
    synth.generate(
        out, seed=SEED, scale=0.05, months=["2024-01", "2024-02", "2024-03"], registry=registry
    )
    return out


def connect(folder: Path, months: str = "*") -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for name in TABLE_NAMES:
        con.execute(
            f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{folder}/{months}/{name}.parquet')"
        )
    return con


@pytest.fixture(scope="module")
def db(demo_data) -> duckdb.DuckDBPyConnection:
    con = connect(demo_data)
    # Sick-leave cases are sent with every month they touch: one row per case.
    con.execute(
        "CREATE TABLE cases AS SELECT DISTINCT patient_key, unit_hsa_id, start_date, end_date, "
        "icd10_code FROM sick_leave"
    )
    return con


def one(con: duckdb.DuckDBPyConnection, sql: str):
    return con.execute(sql).fetchone()


def count(con: duckdb.DuckDBPyConnection, from_where: str) -> int:
    row = con.execute(f"SELECT count(*) {from_where}").fetchone()
    assert row is not None  # an aggregate always returns one row
    return row[0]


# ---------------------------------------------------------------------------------------------
# shape, determinism, validity


def test_it_writes_one_directory_per_month_with_every_table_and_a_manifest(small):
    months = sorted(p.name for p in small.iterdir() if p.is_dir())
    assert months == ["2024-01", "2024-02", "2024-03"]
    for month in months:
        assert sorted(p.name for p in (small / month).iterdir()) == sorted(
            f"{t}.parquet" for t in TABLE_NAMES
        )
    manifest = synth.read_manifest(small)
    assert manifest["seed"] == SEED
    assert manifest["scale"] == 0.05
    assert manifest["months"] == months
    assert len(manifest["files"]) == 3 * len(TABLE_NAMES)
    assert set(synth.month_files(small)) == set(months)
    con = connect(small)
    for name in TABLE_NAMES:
        columns = [r[0] for r in con.execute(f"DESCRIBE {name}").fetchall()]
        assert columns == list(TABLES[name].column_names)
        rows = one(con, f"SELECT count(*) FROM {name}")[0]
        assert rows == manifest["rows"][name] > 0


def test_each_month_holds_only_its_own_dates(small):
    con = connect(small, "2024-02")
    first, last = one(con, "SELECT min(contact_date), max(contact_date) FROM contacts")
    assert (str(first), str(last)) == ("2024-02-01", "2024-02-29")
    first, last = one(con, "SELECT min(date), max(date) FROM measurements")
    assert str(first) >= "2024-02-01"
    assert str(last) <= "2024-02-29"
    outside = "start_date > DATE '2024-02-29' OR end_date < DATE '2024-02-01'"
    assert count(con, f"FROM sick_leave WHERE {outside}") == 0


def test_it_is_deterministic(tmp_path, registry):
    def files(folder: Path, seed: int) -> dict:
        synth.generate(folder, seed=seed, scale=0.03, months=["2025-05"], registry=registry)
        manifest = synth.read_manifest(folder)
        assert manifest is not None  # generate just wrote it
        return manifest["files"]

    first = files(tmp_path / "a", SEED)
    assert first == files(tmp_path / "b", SEED)
    other = files(tmp_path / "c", SEED + 1)
    assert other["2025-05/contacts.parquet"] != first["2025-05/contacts.parquet"]
    # The listings are the registry's, which the seed of the data does not change here.
    assert other["2025-05/listings.parquet"] == first["2025-05/listings.parquet"]


def test_a_month_is_the_same_whichever_months_are_generated_with_it(tmp_path, registry):
    synth.generate(tmp_path / "alone", seed=SEED, scale=0.03, months=["2024-02"], registry=registry)
    synth.generate(
        tmp_path / "run", seed=SEED, scale=0.03, months=["2024-01", "2024-02", "2024-03"],
        registry=registry,
    )  # fmt: skip
    alone = synth.read_manifest(tmp_path / "alone")["files"]
    run = synth.read_manifest(tmp_path / "run")["files"]
    assert alone == {k: v for k, v in run.items() if k.startswith("2024-02/")}


def test_the_listings_are_the_registrys(small, registry):
    con = connect(small)
    got = sorted(con.execute("SELECT * FROM listings").fetchall())
    wanted = sorted(
        (r.hsa_id, r.month, r.sex, r.age_band, r.listed)
        for r in registry.listings
        if r.month in ("2024-01", "2024-02", "2024-03")
    )
    assert got == wanted


def test_patients_come_from_the_listed_population(small, registry):
    con = connect(small)
    units = {u.hsa_id for u in registry.units}
    seen = con.execute("SELECT DISTINCT unit_hsa_id FROM contacts").fetchall()
    assert {r[0] for r in seen} <= units
    # One unit, sex and birth year per patient, in every table.
    mixed = "HAVING count(DISTINCT (unit_hsa_id, sex, birth_year)) > 1"
    assert count(con, f"FROM (SELECT patient_key FROM contacts GROUP BY 1 {mixed})") == 0
    # Every diagnosis and procedure points to a contact; every contact has a main diagnosis.
    for name in ("diagnoses", "procedures"):
        orphans = f"FROM {name} WHERE contact_id NOT IN (SELECT contact_id FROM contacts)"
        assert count(con, orphans) == 0
    mains = "SELECT contact_id FROM diagnoses WHERE rank = 1"
    assert count(con, f"FROM contacts WHERE contact_id NOT IN ({mains})") == 0
    # The sex mix of the patients follows the listings (women about half).
    women = one(con, "SELECT avg(CASE WHEN sex = 'K' THEN 1.0 ELSE 0 END) FROM contacts")[0]
    assert 0.48 < women < 0.6


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_a_generated_month_passes_the_validator(tmp_path, registry, fmt):
    synth.generate(
        tmp_path / "in", seed=SEED, scale=0.05, months=["2025-03"], fmt=fmt, registry=registry
    )
    files = synth.month_files(tmp_path / "in")["2025-03"]
    assert set(files) == set(TABLE_NAMES)
    report = validate_extract(files, "2025-03", {u.hsa_id for u in registry.units}, tmp_path / "o")
    assert report.ok, report.errors[:5]
    assert report.error_count == 0
    assert report.row_counts["contacts"] > 1000


def test_no_value_could_be_taken_for_a_personal_identity_number(small):
    con = connect(small)
    for name in TABLE_NAMES:
        for column, kind, *_ in con.execute(f"DESCRIBE {name}").fetchall():
            if kind != "VARCHAR":
                continue
            hits = con.execute(
                f"SELECT DISTINCT {column} FROM {name} WHERE regexp_matches({column}, ?)",
                [PERSONAL_NUMBER_CANDIDATE_SQL_RE],
            ).fetchall()
            assert [h for h in hits if find_personal_number(h[0])] == []
            # No run of ten digits at all, anywhere (HSA-ids hold them only after "SE").
            runs = con.execute(
                f"SELECT count(*) FROM {name} WHERE regexp_matches({column}, '(^|[^E])[0-9]{{10}}')"
            ).fetchone()[0]
            assert runs == 0, (name, column)
    for column, pattern in (("patient_key", "p-[a-p]{16}"), ("contact_id", "K[0-9]{4}[A-P]{7}")):
        wrong = f"NOT regexp_full_match({column}, '{pattern}')"
        assert count(con, f"FROM contacts WHERE {wrong}") == 0


def test_it_scales_linearly(tmp_path, registry):
    rows = {}
    for scale in (0.1, 0.2):
        result = synth.generate(
            tmp_path / str(scale), seed=SEED, scale=scale, months=["2025-01", "2025-02", "2025-03"],
            registry=registry,
        )  # fmt: skip
        rows[scale] = result.rows
    for name in ("contacts", "diagnoses", "procedures", "measurements", "sick_leave"):
        assert 1.8 < rows[0.2][name] / rows[0.1][name] < 2.2, name
    assert rows[0.2]["listings"] == rows[0.1]["listings"]


def test_it_refuses_months_outside_the_registry_and_bad_scales(tmp_path):
    with pytest.raises(synth.SynthError, match="2026-01"):
        synth.parse_months("2025-12:2026-01")
    with pytest.raises(synth.SynthError):
        synth.parse_months("2025")
    with pytest.raises(synth.SynthError):
        synth.parse_months("2025-03:2025-01")
    assert synth.parse_months("2025-03") == ["2025-03"]
    assert synth.parse_months(None) == list(MONTHS)
    with pytest.raises(synth.SynthError, match="scale"):
        synth.generate(tmp_path, scale=0, months=["2025-01"])
    with pytest.raises(synth.SynthError, match="format"):
        synth.generate(tmp_path, scale=0.01, months=["2025-01"], fmt="xlsx")


# ---------------------------------------------------------------------------------------------
# the command and the demo step


def test_the_command_prints_one_line_with_the_row_counts(tmp_path):
    out = StringIO()
    call_command(
        "synth", "--out", str(tmp_path), "--seed", "4", "--scale", "0.02", "--months",
        "2025-01:2025-02", "--format", "csv", stdout=out,
    )  # fmt: skip
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Generated 2 months (2025-01–2025-02), seed 4, scale 0.02, csv")
    assert "contacts " in lines[0]
    assert lines[0].endswith(" s")
    assert (tmp_path / "2025-02" / "sick_leave.csv").is_file()
    with pytest.raises(CommandError, match="2023-12"):
        call_command("synth", "--out", str(tmp_path), "--months", "2023-12")


def test_the_demo_step_generates_once_and_then_skips(settings, tmp_path, registry):
    settings.STYRKORT_SYNTH_DIR = tmp_path / "synth"
    settings.STYRKORT_DEMO_SCALE = 0.01
    ctx = demo.DemoContext(seed=SEED, registry=registry)
    summary = synth.synth_step(ctx)
    assert summary.startswith(f"extracts generated in {tmp_path / 'synth'} (scale 0.01, 24 months)")
    data = ctx.data["synth"]
    assert data["months"] == list(MONTHS)
    assert len(data["files"]) == 24
    assert all(set(files) == set(TABLE_NAMES) for files in data["files"].values())
    stamp = {p: p.stat().st_mtime_ns for p in (tmp_path / "synth").rglob("*")}
    assert synth.synth_step(ctx).startswith("extracts unchanged")
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "synth").rglob("*")} == stamp
    # A damaged file or another seed makes it generate again; nothing is left beside it.
    target = data["files"]["2024-06"]["contacts"]
    target.write_bytes(b"broken")
    assert synth.synth_step(ctx).startswith("extracts generated")
    assert target.read_bytes().startswith(b"PAR1")
    other = demo.DemoContext(seed=SEED + 1, registry=build_demo_registry(SEED + 1))
    assert synth.synth_step(other).startswith("extracts generated")
    assert synth.read_manifest(tmp_path / "synth")["seed"] == SEED + 1
    assert sorted(os.listdir(tmp_path)) == ["synth"]


def test_the_demo_runs_the_synth_step_outside_one_transaction():
    step = next(s for s in demo.STEPS if s.name == "synth")
    assert step.run is synth.synth_step
    assert step.atomic is False


# ---------------------------------------------------------------------------------------------
# calibration at the demo's volume


MENTAL = "(icd10_code LIKE 'F%' OR icd10_code = 'Z73.0')"


def test_volume_is_about_two_and_a_half_contacts_per_listed_person_and_year(db):
    person_years = "(SELECT sum(listed) / 12.0 FROM listings)"
    per_year = one(db, f"SELECT count(*) / {person_years} FROM contacts")[0] / synth.DEMO_SCALE
    assert 2.3 < per_year < 3.0


def test_about_30_percent_of_new_visits_concern_mental_ill_health(db):
    main, any_rank = one(
        db,
        f"""
        SELECT avg(CASE WHEN EXISTS (SELECT 1 FROM diagnoses d WHERE d.contact_id = c.contact_id
                                     AND d.rank = 1 AND {MENTAL}) THEN 1.0 ELSE 0 END),
               avg(CASE WHEN EXISTS (SELECT 1 FROM diagnoses d WHERE d.contact_id = c.contact_id
                                     AND {MENTAL}) THEN 1.0 ELSE 0 END)
        FROM contacts c WHERE c.is_new_visit
        """,
    )
    assert 0.28 < main < 0.32
    assert main <= any_rank < main + 0.02


def test_about_60_percent_of_long_sick_leave_is_psychiatric(db):
    share, cases = one(
        db,
        """
        SELECT avg(CASE WHEN icd10_code LIKE 'F%' THEN 1.0 ELSE 0 END), count(*)
        FROM cases, (SELECT DISTINCT last_day(contact_date) AS day FROM contacts) p
        WHERE start_date <= p.day AND end_date >= p.day
          AND date_diff('day', start_date, p.day) + 1 > 90
        """,
    )
    assert 0.55 < share < 0.65
    assert cases > 5000
    # From the first month on (the generator simulates a year before it).
    first = one(
        db,
        """
        SELECT avg(CASE WHEN icd10_code LIKE 'F%' THEN 1.0 ELSE 0 END) FROM cases
        WHERE start_date <= DATE '2024-01-31' AND end_date >= DATE '2024-01-31'
          AND date_diff('day', start_date, DATE '2024-01-31') + 1 > 90
        """,
    )[0]
    assert 0.52 < first < 0.68


def test_exhaustion_disorder_has_long_sick_leave(db):
    (cases,) = one(
        db,
        """
        SELECT count(*) * 1000.0 / (SELECT sum(listed) FROM listings WHERE month = '2025-12')
        FROM cases WHERE icd10_code = 'F43.8A' AND start_date <= DATE '2025-12-31'
          AND end_date >= DATE '2025-12-31'
          AND date_diff('day', start_date, DATE '2025-12-31') + 1 > 180
        """,
    )
    per_1000 = cases / synth.DEMO_SCALE
    assert 0.4 < per_1000 < 3


@pytest.mark.parametrize(
    "codes",
    ["'F32%' OR icd10_code LIKE 'F33%'", "'F40%' OR icd10_code LIKE 'F41%'"],
    ids=["depression", "anxiety"],
)
def test_depression_and_anxiety_are_diagnosed_about_twice_as_often_in_women(db, codes):
    rates = dict(
        db.execute(
            f"""
            WITH listed AS (SELECT sex, sum(listed) / 12.0 AS n FROM listings
                            WHERE month LIKE '2025-%' GROUP BY sex),
                 patients AS (SELECT c.sex, count(DISTINCT c.patient_key) AS k
                              FROM contacts c JOIN diagnoses d USING (contact_id)
                              WHERE year(c.contact_date) = 2025 AND (icd10_code LIKE {codes})
                              GROUP BY c.sex)
            SELECT sex, k / n FROM patients JOIN listed USING (sex)
            """
        ).fetchall()
    )
    assert 1.7 < rates["K"] / rates["M"] < 2.4


def test_mental_ill_health_peaks_between_18_and_44(db):
    by_band = dict(
        db.execute(
            f"""
            SELECT CASE WHEN 2025 - birth_year < 18 THEN '0-17'
                        WHEN 2025 - birth_year < 25 THEN '18-24'
                        WHEN 2025 - birth_year < 45 THEN '25-44'
                        WHEN 2025 - birth_year < 65 THEN '45-64'
                        WHEN 2025 - birth_year < 80 THEN '65-79' ELSE '80+' END,
                   avg(CASE WHEN {MENTAL} THEN 1.0 ELSE 0 END)
            FROM contacts c JOIN diagnoses d ON d.contact_id = c.contact_id AND d.rank = 1
            WHERE c.is_new_visit AND year(c.contact_date) = 2025
            GROUP BY 1
            """
        ).fetchall()
    )
    peak = max(by_band, key=by_band.get)
    assert peak in ("18-24", "25-44")
    assert min(by_band["18-24"], by_band["25-44"]) > by_band["45-64"] > by_band["65-79"]
    assert by_band["0-17"] < 0.2
    assert by_band["80+"] < 0.2


# Courses of psychological treatment and their paired ratings, as the indicator pack defines them.
COURSES = """
CREATE OR REPLACE TEMP TABLE treatment_days AS
    SELECT DISTINCT c.patient_key, c.contact_date, c.unit_hsa_id
    FROM contacts c JOIN procedures p USING (contact_id)
    WHERE p.kva_code IN ('DU011', 'DU022', 'DU008');
CREATE OR REPLACE TEMP TABLE courses AS
    SELECT s.patient_key, s.contact_date AS start_date, s.unit_hsa_id, count(*) AS sessions
    FROM (SELECT *, lag(contact_date) OVER (PARTITION BY patient_key ORDER BY contact_date) AS prev
          FROM treatment_days) s
    JOIN treatment_days t ON t.patient_key = s.patient_key
     AND t.contact_date BETWEEN s.contact_date AND s.contact_date + 180
    WHERE s.prev IS NULL OR date_diff('day', s.prev, s.contact_date) > 180
    GROUP BY ALL;
CREATE OR REPLACE TEMP TABLE paired AS
    SELECT c.patient_key, c.start_date, c.unit_hsa_id,
           arg_max(r.score, r.date)
               FILTER (WHERE r.date BETWEEN c.start_date - 30 AND c.start_date + 7) AS baseline,
           arg_max(r.score, r.date)
               FILTER (WHERE r.date BETWEEN c.start_date + 28 AND c.start_date + 180) AS final
    FROM courses c JOIN measurements r ON r.patient_key = c.patient_key
     AND r.date BETWEEN c.start_date - 30 AND c.start_date + 180 AND r.instrument = 'PHQ-9'
    WHERE c.sessions >= 2
    GROUP BY ALL
    HAVING baseline IS NOT NULL AND final IS NOT NULL;
"""


def test_treated_patients_start_above_caseness_and_improve_over_the_weeks(db, registry):
    db.execute(COURSES)
    above, mean_change = one(
        db,
        "SELECT avg(CASE WHEN baseline >= 10 THEN 1.0 ELSE 0 END), avg(final - baseline) "
        "FROM paired",
    )
    assert above > 0.75
    assert mean_change < -4
    # PHQ-9 at the sessions, against the course's baseline, by fortnight over the first ten
    # weeks: falling, with noise around the trend.
    fortnights = db.execute(
        """
        SELECT date_diff('day', c.start_date, r.date) // 14 AS block, avg(r.score - p.baseline)
        FROM paired p JOIN courses c USING (patient_key, start_date)
        JOIN measurements r ON r.patient_key = c.patient_key AND r.instrument = 'PHQ-9'
         AND r.date BETWEEN c.start_date AND c.start_date + 69
        JOIN treatment_days t ON t.patient_key = r.patient_key AND t.contact_date = r.date
        GROUP BY 1 ORDER BY 1
        """
    ).fetchall()
    changes = [m for _, m in fortnights]
    assert len(changes) == 5
    assert changes == sorted(changes, reverse=True)
    assert abs(changes[0]) < 1
    assert changes[-1] < -3.5
    spread = one(db, "SELECT stddev(final - baseline) FROM paired")[0]
    assert spread > 3
    # Recovery (caseness at start, below it at follow-up): about half in the best unit.
    norrby = registry.unit("norrby").hsa_id
    recovered = one(
        db,
        f"SELECT avg(CASE WHEN final <= 9 THEN 1.0 ELSE 0 END) FROM paired "
        f"WHERE baseline >= 10 AND unit_hsa_id = '{norrby}'",
    )[0]
    assert 0.42 < recovered < 0.62
    region = one(
        db, "SELECT avg(CASE WHEN final <= 9 THEN 1.0 ELSE 0 END) FROM paired WHERE baseline >= 10"
    )[0]
    assert region < recovered


# ---------------------------------------------------------------------------------------------
# units differ as their profiles say


NEW_DEPRESSION = """
CREATE OR REPLACE TEMP TABLE depression_days AS
    SELECT c.patient_key, c.contact_date,
           arg_min(c.unit_hsa_id, c.contact_id) AS unit_hsa_id,
           arg_min(c.birth_year, c.contact_id) AS birth_year,
           bool_or(d.icd10_code IN ('F32.0', 'F32.1', 'F33.0', 'F33.1')) AS mild_moderate
    FROM contacts c JOIN diagnoses d USING (contact_id)
    WHERE d.icd10_code LIKE 'F32%' OR d.icd10_code LIKE 'F33%'
    GROUP BY ALL;
CREATE OR REPLACE TEMP TABLE new_depression AS
    SELECT * FROM (
        SELECT *, lag(contact_date) OVER (PARTITION BY patient_key ORDER BY contact_date) AS prev
        FROM depression_days)
    WHERE prev IS NULL OR date_diff('day', prev, contact_date) > 365;
"""
# Indicator 4: psychological treatment within 90 days of a new mild–moderate depression (18+).
PO04 = """
SELECT n.unit_hsa_id,
       sum(CASE WHEN EXISTS (SELECT 1 FROM treatment_days t WHERE t.patient_key = n.patient_key
                   AND t.contact_date BETWEEN n.contact_date AND n.contact_date + 90)
           THEN 1 ELSE 0 END),
       count(*)
FROM new_depression n
WHERE n.mild_moderate AND year(n.contact_date) - n.birth_year >= 18
  AND year(n.contact_date) = 2025
GROUP BY 1
"""
# Indicator 5: follow-up with a depression diagnosis 10–56 days after a new depression (18+).
PO05 = """
SELECT n.unit_hsa_id,
       sum(CASE WHEN EXISTS (SELECT 1 FROM depression_days f WHERE f.patient_key = n.patient_key
                   AND f.contact_date BETWEEN n.contact_date + 10 AND n.contact_date + 56)
           THEN 1 ELSE 0 END),
       count(*)
FROM new_depression n
WHERE year(n.contact_date) - n.birth_year >= 18 AND year(n.contact_date) = 2025
GROUP BY 1
"""


def funnel(rows: list[tuple[str, int, int]]) -> dict[str, tuple[float, float, float]]:
    """{unit: (share, lower, upper)} with 99.8 % limits around the region's share."""
    total_x = sum(x for _, x, _ in rows)
    total_n = sum(n for _, _, n in rows)
    p = total_x / total_n
    out = {}
    for unit, x, n in rows:
        half = Z99_8 * math.sqrt(p * (1 - p) / n)
        out[unit] = (x / n, p - half, p + half)
    return out


@pytest.mark.parametrize("indicator", [PO04, PO05], ids=["treatment_within_90_days", "follow_up"])
def test_low_units_are_below_and_the_high_unit_above_the_funnel(db, registry, indicator):
    db.execute(COURSES)
    db.execute(NEW_DEPRESSION)
    limits = funnel(db.execute(indicator).fetchall())
    names = {u.hsa_id: u.name for u in registry.units}
    by_name = {names[hsa]: v for hsa, v in limits.items()}
    for name in LOW:
        value, lower, _ = by_name[name]
        assert value < lower, name
    for name in HIGH:
        value, _, upper = by_name[name]
        assert value > upper, name
    # Typical units with a psychologist are not singled out the other way.
    for unit in registry.units:
        profile = unit.profile
        if profile.performance == "typical" and profile.has_psychologist:
            value, lower, _ = limits[unit.hsa_id]
            assert value > lower, unit.name


def test_units_without_a_psychologist_register_little_psychological_treatment(db, registry):
    per_1000 = dict(
        db.execute(
            """
            WITH t AS (SELECT c.unit_hsa_id, count(*) AS k FROM contacts c
                       JOIN procedures p USING (contact_id)
                       WHERE p.kva_code IN ('DU011', 'DU022', 'DU008') GROUP BY 1),
                 l AS (SELECT unit_hsa_id, sum(listed) / 12.0 AS n FROM listings GROUP BY 1)
            SELECT l.unit_hsa_id, coalesce(t.k, 0) / l.n FROM l LEFT JOIN t USING (unit_hsa_id)
            """
        ).fetchall()
    )
    with_psychologist = [per_1000[u.hsa_id] for u in registry.units if u.profile.has_psychologist]
    without = [per_1000[u.hsa_id] for u in registry.units if u.profile.psych_team == "none"]
    assert max(without) < 0.3 * min(with_psychologist)
    assert sum(without) / len(without) < 0.15 * sum(with_psychologist) / len(with_psychologist)


def test_group_treatment_units_hold_group_contacts_and_others_none(db, registry):
    groups = dict(
        db.execute(
            "SELECT unit_hsa_id, count(*) FILTER (WHERE contact_type = 'grupp') FROM contacts "
            "GROUP BY 1"
        ).fetchall()
    )
    for unit in registry.units:
        if unit.profile.group_treatment:
            assert groups[unit.hsa_id] > 100, unit.name
        else:
            assert groups[unit.hsa_id] == 0, unit.name


def test_the_digital_share_drives_remote_contacts(db, registry):
    remote = dict(
        db.execute(
            "SELECT unit_hsa_id, avg(CASE WHEN contact_type IN ('video', 'telefon', 'digital') "
            "THEN 1.0 ELSE 0 END) FROM contacts GROUP BY 1"
        ).fetchall()
    )
    mental_digital = dict(
        db.execute(
            f"""
            SELECT unit_hsa_id,
                   avg(CASE WHEN contact_type IN ('video', 'digital') THEN 1.0 ELSE 0 END)
            FROM contacts WHERE contact_id IN (SELECT contact_id FROM diagnoses WHERE {MENTAL})
            GROUP BY 1
            """
        ).fetchall()
    )
    for unit in registry.units:
        assert abs(remote[unit.hsa_id] - unit.profile.digital_share) < 0.06, unit.name
    shares = [u.profile.digital_share for u in registry.units]
    digital = [mental_digital[u.hsa_id] for u in registry.units]
    assert _correlation(shares, digital) > 0.7


def _correlation(xs: list[float], ys: list[float]) -> float:
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sx = math.sqrt(sum((x - mx) ** 2 for x in xs))
    sy = math.sqrt(sum((y - my) ** 2 for y in ys))
    return cov / (sx * sy)


def test_units_without_psychosocial_staff_have_no_psychosocial_contacts(db, registry):
    shares = dict(
        db.execute(
            f"""
            SELECT unit_hsa_id, avg(CASE WHEN profession IN ('psykolog', 'kurator', 'psykoterapeut')
                                    THEN 1.0 ELSE 0 END)
            FROM contacts WHERE contact_id IN (SELECT contact_id FROM diagnoses WHERE {MENTAL})
            GROUP BY 1
            """
        ).fetchall()
    )
    for unit in registry.units:
        if unit.profile.psych_team == "none":
            assert shares[unit.hsa_id] == 0, unit.name
        else:
            assert shares[unit.hsa_id] > 0.3, unit.name
