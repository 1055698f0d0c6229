"""The catalogue: the shipped pack loads and is complete; broken definitions are refused with
an error naming the pack, the indicator and the field; versions are content hashes."""

from __future__ import annotations

import copy
import tomllib

import pytest

from styrkort.indicators import catalogue as cat
from styrkort.indicators.apps import check_catalogue
from styrkort.indicators.catalogue import CatalogueError, load_catalogue, parse_pack

PACK = cat.PACKS_DIR / "psykisk_ohalsa.toml"


@pytest.fixture(scope="module")
def raw():
    with PACK.open("rb") as f:
        return tomllib.load(f)


def indicator(data, code):
    return next(i for i in data["indicator"] if i["code"] == code)


def problems_of(data) -> list[str]:
    with pytest.raises(CatalogueError) as info:
        parse_pack(data)
    return [str(p) for p in info.value.problems]


# ------------------------------------------------------------------------------------------
# The shipped pack
# ------------------------------------------------------------------------------------------


def test_it_loads_the_pack_with_the_twelve_indicators_of_the_design():
    catalogue = load_catalogue()
    codes = [d.code for d in catalogue]
    assert len(codes) >= 12
    assert len(set(codes)) == len(codes)
    assert sorted({d.family for d in catalogue}) == list(range(1, 13))
    assert catalogue.packs[0].name_sv == "Psykisk ohälsa i primärvården"
    for d in catalogue:
        assert d.name_sv
        assert d.name_en
        assert d.definition_sv
        assert d.definition_en
        assert d.citation
        assert d.kind in cat.KINDS
        assert d.polarity in cat.POLARITIES
        assert len(d.version) == 16
    po04 = catalogue.get("PO04")
    assert po04.target is not None
    assert po04.target.value == 60
    assert po04.target.direction == "at_least"
    assert (po04.lookback_days, po04.lookahead_days) == (365, 90)
    assert catalogue.get("PO08A").kind == "median"
    assert catalogue.get("PO11").source == "collected"
    assert catalogue.get("PO11").per == 10000
    assert catalogue.get("PO12").kind == "rate_per_1000"


def test_it_uses_the_confirmed_psychological_treatment_codes():
    pack = load_catalogue().packs[0]
    assert pack.code_lists["psychological_treatment"].codes == ("DU008", "DU011", "DU022")
    assert "psychological_treatment" in load_catalogue().get("PO04").code_lists


def test_it_gives_stable_versions(raw):
    first = {d.code: d.version for d in parse_pack(copy.deepcopy(raw)).definitions}
    again = {d.code: d.version for d in parse_pack(copy.deepcopy(raw)).definitions}
    assert first == again
    # Key order in the file does not matter.
    shuffled = copy.deepcopy(raw)
    shuffled["indicator"] = [dict(reversed(list(i.items()))) for i in shuffled["indicator"]]
    assert {d.code: d.version for d in parse_pack(shuffled).definitions} == first


def test_it_changes_the_version_of_an_edited_definition_only(raw):
    before = {d.code: d.version for d in parse_pack(copy.deepcopy(raw)).definitions}
    edited = copy.deepcopy(raw)
    indicator(edited, "PO09")["name_en"] = "Something else"
    after = {d.code: d.version for d in parse_pack(edited).definitions}
    assert after["PO09"] != before["PO09"]
    assert {c: v for c, v in after.items() if c != "PO09"} == {
        c: v for c, v in before.items() if c != "PO09"
    }


def test_it_changes_the_versions_of_definitions_using_an_edited_view_or_code_list(raw):
    before = {d.code: d.version for d in parse_pack(copy.deepcopy(raw)).definitions}
    edited = copy.deepcopy(raw)
    view = next(v for v in edited["view"] if v["name"] == "treatment_starts")
    view["sql"] = view["sql"].replace("> 180", "> 150")
    after = {d.code: d.version for d in parse_pack(edited).definitions}
    changed = {c for c in before if before[c] != after[c]}
    assert changed == {"PO06", "PO07A", "PO07B", "PO08A", "PO08B", "PO08C"}
    edited = copy.deepcopy(raw)
    edited["codes"]["anxiety"]["codes"] = ["F41*"]
    after = {d.code: d.version for d in parse_pack(edited).definitions}
    assert {c for c in before if before[c] != after[c]} == {"PO03B"}


def test_it_offers_everything_a_reader_needs_for_display():
    rows = cat.catalogue_for_display("en")
    assert [r["code"] for r in rows] == [d.code for d in load_catalogue()]
    po04 = next(r for r in rows if r["code"] == "PO04")
    assert po04["name"].startswith("Psychological treatment within 90 days")
    assert po04["unit_label"] == "%"
    assert po04["target"]["value"] == 60
    assert po04["window"] == {
        "lookback_days": 365,
        "lookahead_days": 90,
        "lookback": "365 days",
        "lookahead": "90 days",
    }
    assert {c["name"] for c in po04["code_lists"]} >= {"psychological_treatment"}
    assert "new_depression" in {v["name"] for v in po04["views"]}
    sv = next(r for r in cat.catalogue_for_display("sv") if r["code"] == "PO11")
    assert sv["unit_label"] == "per 10\u00a0000 listade"
    assert sv["polarity_label"] == "Högre värde är bättre"


def test_it_passes_the_system_check():
    assert check_catalogue() == []


# ------------------------------------------------------------------------------------------
# Broken definitions
# ------------------------------------------------------------------------------------------


def test_it_names_an_unknown_column(raw):
    data = copy.deepcopy(raw)
    indicator(data, "PO01")["denominator"]["where"] = [{"column": "is_new", "eq": True}]
    (problem,) = problems_of(data)
    assert problem.startswith("psykisk_ohalsa: PO01: denominator.where[0].column:")
    assert "unknown column 'is_new' in table contacts" in problem


def test_it_names_an_unknown_column_in_a_related_table(raw):
    data = copy.deepcopy(raw)
    has = indicator(data, "PO09")["denominator"]["has"][0]
    has["where"] = [{"column": "icd_code", "codes": "mental_health"}]
    (problem,) = problems_of(data)
    assert "PO09: denominator.has[0].where[0].column" in problem
    assert "unknown column 'icd_code' in table diagnoses" in problem


def test_it_refuses_sql_that_does_not_parse(raw):
    data = copy.deepcopy(raw)
    indicator(data, "PO04")["sql"]["query"] = "SELEC unit_hsa_id FROM contacts"
    (problem,) = problems_of(data)
    assert "PO04: sql.query:" in problem
    assert "Parser" in problem


def test_it_refuses_sql_naming_an_unknown_column(raw):
    data = copy.deepcopy(raw)
    q = indicator(data, "PO05")["sql"]["query"]
    indicator(data, "PO05")["sql"]["query"] = q.replace("n.birth_year,", "n.born,")
    (problem,) = problems_of(data)
    assert "PO05: sql.query:" in problem
    assert "born" in problem


def test_it_refuses_sql_that_treats_the_patient_key_as_text(raw):
    # Inside the engine a patient is the hash of its pseudonym (engine.PATIENT_KEY).
    data = copy.deepcopy(raw)
    q = indicator(data, "PO08A")["sql"]["query"]
    indicator(data, "PO08A")["sql"]["query"] = q.replace(
        "FROM treatment_waits w", "FROM treatment_waits w WHERE starts_with(w.patient_key, 'p-')"
    )
    (problem,) = problems_of(data)
    assert "PO08A: sql.query:" in problem
    assert "starts_with" in problem


def test_it_refuses_sql_that_reads_a_table_it_does_not_declare(raw):
    data = copy.deepcopy(raw)
    indicator(data, "PO04")["sql"]["tables"] = ["contacts", "diagnoses"]
    (problem,) = problems_of(data)
    assert "PO04: sql.query: reads procedures" in problem


def test_it_refuses_sql_without_the_columns_the_engine_needs(raw):
    data = copy.deepcopy(raw)
    q = indicator(data, "PO04")["sql"]["query"]
    indicator(data, "PO04")["sql"]["query"] = q.replace(") AS num", ") AS treated")
    (problem,) = problems_of(data)
    assert "PO04: sql.query: the query must return the column(s) num" in problem


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("kind", "ratio", "PO01: kind: 'ratio' is not a kind"),
        ("polarity", "up", "PO01: polarity: 'up' is not a polarity"),
        ("source", "register", "PO01: source: 'register' is not a source"),
        ("period_types", ["week"], "PO01: period_types:"),
        ("breakdowns", ["region"], "PO01: breakdowns:"),
        ("name_en", "", "PO01: name_en: required text is missing"),
        ("colour", "red", "PO01: colour: unknown field"),
    ],
)
def test_it_refuses_bad_fields(raw, field, value, expected):
    data = copy.deepcopy(raw)
    indicator(data, "PO01")[field] = value
    assert any(expected in p for p in problems_of(data))


def test_it_refuses_unknown_and_malformed_codes(raw):
    data = copy.deepcopy(raw)
    data["codes"]["depression"]["codes"] = ["F32*", "F32.7"]
    data["codes"]["psychological_treatment"]["codes"] = ["DU11"]
    problems = problems_of(data)
    assert any("codes.depression: codes: 'F32.7' is not an ICD-10-SE code" in p for p in problems)
    assert any("codes.psychological_treatment: codes: 'DU11'" in p for p in problems)


def test_it_refuses_an_unknown_code_list_and_a_list_of_the_wrong_system(raw):
    data = copy.deepcopy(raw)
    indicator(data, "PO09")["numerator"]["where"] = [{"column": "profession", "codes": "nope"}]
    indicator(data, "PO10B")["numerator"]["where"] = [
        {"column": "contact_type", "codes": "psychosocial_professions"}
    ]
    problems = problems_of(data)
    assert any("PO09: numerator.where[0].codes: unknown code list 'nope'" in p for p in problems)
    assert any(
        "PO10B: numerator.where[0].codes: code list 'psychosocial_professions' holds profession"
        in p
        for p in problems
    )


def test_it_refuses_values_that_do_not_fit_the_column(raw):
    data = copy.deepcopy(raw)
    indicator(data, "PO01")["denominator"]["where"] = [{"column": "is_new_visit", "eq": "yes"}]
    indicator(data, "PO10B")["numerator"]["where"] = [{"column": "contact_type", "eq": "grup"}]
    problems = problems_of(data)
    assert any("PO01: denominator.where[0].eq: 'yes' does not fit column is_new_visit" in p
               for p in problems)  # fmt: skip
    assert any("PO10B: numerator.where[0].eq: 'grup' is not one of" in p for p in problems)


def test_it_refuses_a_declarative_count_over_a_table_without_a_date(raw):
    data = copy.deepcopy(raw)
    indicator(data, "PO01")["denominator"]["table"] = "diagnoses"
    assert any("PO01: denominator.table: 'diagnoses' cannot be counted" in p
               for p in problems_of(data))  # fmt: skip


def test_it_refuses_duplicate_codes_and_a_broken_view(raw):
    data = copy.deepcopy(raw)
    data["indicator"].append(copy.deepcopy(indicator(data, "PO01")))
    view = next(v for v in data["view"] if v["name"] == "sick_leave_demographics")
    view["sql"] = "SELECT patient_key FROM contact"
    problems = problems_of(data)
    assert any("PO01: code: duplicate indicator code" in p for p in problems)
    assert any(p.startswith("psykisk_ohalsa: view sick_leave_demographics: sql:") for p in problems)


def test_it_reports_problems_through_the_system_check(tmp_path, monkeypatch):
    text = PACK.read_text(encoding="utf-8").replace('kind = "median"', 'kind = "middle"')
    (tmp_path / "broken.toml").write_text(text, encoding="utf-8")
    monkeypatch.setattr(cat, "PACKS_DIR", tmp_path)
    errors = check_catalogue()
    assert [e.id for e in errors] == ["indicators.E001"]
    assert "PO08A: kind: 'middle' is not a kind" in errors[0].msg


def test_it_reports_a_file_that_is_not_toml(tmp_path):
    (tmp_path / "bad.toml").write_text("[pack\n", encoding="utf-8")
    with pytest.raises(CatalogueError, match="bad.toml: not valid TOML"):
        load_catalogue(tmp_path)


def _view(data, name):
    return next(v for v in data["view"] if v["name"] == name)


def test_it_marks_the_month_local_views_as_per_period():
    views = {v.name: v for v in load_catalogue().packs[0].views}
    assert views["depression_days"].per_period
    assert views["sick_leave_demographics"].combine
    assert not views["new_depression"].per_period  # looks 365 days back, across months


def test_it_refuses_a_per_period_view_that_reads_across_periods(raw):
    data = copy.deepcopy(raw)
    _view(data, "new_depression")["per_period"] = True  # reads another view
    _view(data, "sick_leave_patients")["per_period"] = True  # sick leave spans months
    _view(data, "treatment_days")["per_period"] = "yes"
    problems = problems_of(data)
    assert any("view new_depression: per_period: a per_period view reads only the extract "
               "tables of one period; it reads depression_days" in p for p in problems)  # fmt: skip
    assert any("view sick_leave_patients: per_period:" in p and "sick_leave" in p
               for p in problems)  # fmt: skip
    assert any("view treatment_days: per_period: must be true or false" in p for p in problems)


def test_it_marks_the_views_and_case_queries_of_one_patient_as_per_patient():
    catalogue = load_catalogue()
    assert all(v.per_patient for v in catalogue.packs[0].views)
    assert {d.code for d in catalogue if d.per_patient} == {
        d.code for d in catalogue if d.form == "sql"
    }
    assert not catalogue.get("PO01").per_patient  # declarative: per-period shares instead


def test_it_refuses_a_per_patient_view_or_query_that_reads_across_patients(raw):
    data = copy.deepcopy(raw)
    _view(data, "depression_days")["per_patient"] = False
    _view(data, "treatment_days")["per_patient"] = "yes"
    _view(data, "treatment_waits")["per_patient"] = False  # read by PO08A-C
    # Has no patient column to restrict by.
    _view(data, "daily_ratings")["sql"] = (
        "SELECT date, instrument, avg(score) AS score FROM measurements GROUP BY ALL"
    )
    problems = problems_of(data)
    assert any("view new_depression: per_patient: reads depression_days, which is not per "
               "patient" in p for p in problems)  # fmt: skip
    assert any("view treatment_days: per_patient: must be true or false" in p for p in problems)
    assert any("view daily_ratings: per_patient: a per_patient view has a patient_key column"
               in p for p in problems)  # fmt: skip
    assert any("PO08A" in p and "sql.per_patient: reads treatment_waits, which is not per "
               "patient" in p for p in problems)  # fmt: skip
    data = copy.deepcopy(raw)
    indicator(data, "PO04")["sql"]["per_patient"] = 1
    problems = problems_of(data)
    assert any("PO04" in p and "sql.per_patient: must be true or false" in p for p in problems)


def test_it_refuses_a_combine_that_does_not_rebuild_the_view(raw):
    data = copy.deepcopy(raw)
    _view(data, "sick_leave_demographics")["combine"] = (
        "SELECT patient_key, min(sex) AS sex FROM parts GROUP BY 1"
    )
    _view(data, "depression_days")["combine"] = "SELECT * FROM elsewhere"
    _view(data, "new_depression")["combine"] = "SELECT * FROM parts"  # not per_period
    problems = problems_of(data)
    assert any(
        "view sick_leave_demographics: combine: must return the view's columns" in p
        for p in problems
    )
    assert any("view depression_days: combine: CatalogException" in p for p in problems)
    assert any("view new_depression: combine: only a per_period view has shares to combine" in p
               for p in problems)  # fmt: skip
