"""Imports of units, listings and staffing: the plain validation functions and apply_import.

Every refused input is checked twice: the message points to the row and column, and nothing at
all was written (units, providers, listings, staffing and history are counted before and
after).
"""

from __future__ import annotations

import gc
import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied
from openpyxl import Workbook

from styrkort import breakdowns
from styrkort.history.models import ChangeRecord
from styrkort.organisation import imports
from styrkort.organisation.imports import (
    apply_import,
    validate_listings,
    validate_staffing,
    validate_units,
)
from styrkort.organisation.models import CareUnit, Listing, Provider, Staffing

UNITS_HEADER = (
    "hsa_id;name;provider_org_nr;provider_name;provider_kind;municipality;opened;closed\n"
)
LISTINGS_HEADER = "unit_hsa_id;month;sex;age_band;listed\n"
STAFFING_HEADER = "unit_hsa_id;period;profession;fte\n"
A, B = "SE2321000016-A001", "SE5566778899-B002"


def counts() -> dict[str, int]:
    return {
        "units": CareUnit.objects.count(),
        "providers": Provider.objects.count(),
        "listings": Listing.objects.count(),
        "staffing": Staffing.objects.count(),
        "history": ChangeRecord.objects.count(),
    }


@pytest.fixture
def csv_file(tmp_path):
    def make(text: str, name: str = "import.csv", encoding: str = "utf-8"):
        path = tmp_path / name
        path.write_bytes(text.encode(encoding))
        return path

    return make


def refused(result, rule: str):
    """The refused rows of a result with this rule; the result must write nothing."""
    assert not result.ok
    assert not result.applied
    return [e for e in result.plan.errors if e.rule == rule]


# --- units -----------------------------------------------------------------------------------


def test_it_imports_new_units_and_providers_with_history(users, csv_file):
    path = csv_file(
        UNITS_HEADER
        + "SE2321000016-N100;Vårdcentralen Norr;232100-0016;;;Västervik;2020-01-01;\n"
        + "SE5560000001-P1;Hälsan Privat;5560000001;Hälsan AB;private;Vimmerby;;\n"
    )
    result = apply_import(users["analyst"], "units", path, dry_run=False)
    assert result.ok, result.plan.errors
    assert result.applied
    assert result.summary() == "2 new, 0 changed, 0 unchanged units; 1 new, 0 changed providers"
    unit = CareUnit.objects.get(hsa_id="SE5560000001-P1")
    assert unit.provider.name == "Hälsan AB"
    assert unit.provider.kind == "private"
    assert unit.region.name == "Region Exempel"
    records = ChangeRecord.objects.filter(batch=result.batch)
    assert records.count() == 3  # two units, one provider
    record = records.get(object_type="organisation.careunit", object_id=str(unit.pk))
    assert record.actor == users["analyst"]
    assert record.action == "create"
    assert record.before is None
    assert record.after["name"] == "Hälsan Privat"


def test_it_reimports_the_same_units_as_unchanged(users, csv_file, unit_a, unit_b):
    path = csv_file(
        UNITS_HEADER
        + f"{A};Vårdcentralen Ankarsrum;2321000016;;;Västervik;2010-01-01;\n"
        + f"{B};Hälsocentralen Björkby;556677-8899;Hälsa Nord AB;private;Bjurholm;2015-06-01;\n"
    )
    before = counts()
    result = apply_import(users["admin"], "units", path, dry_run=False)
    assert result.ok
    assert (result.plan.new, result.plan.changed, result.plan.unchanged) == (0, 0, 2)
    assert not result.applied
    assert counts() == before


def test_it_records_before_and_after_of_changed_units(users, csv_file, unit_a):
    path = csv_file(
        UNITS_HEADER
        + f"{A};Vårdcentralen Ankarsrum Nya;2321000016;;;Västervik;2010-01-01;2026-06-30\n"
    )
    dry = apply_import(users["analyst"], "units", path, dry_run=True)
    assert dry.plan.changed == 1
    change = dry.plan.changed_items[0]
    assert change.row == 2
    assert change.before == {"name": "Vårdcentralen Ankarsrum", "closed": None}
    assert change.after == {"name": "Vårdcentralen Ankarsrum Nya", "closed": "2026-06-30"}
    assert ChangeRecord.objects.count() == 0

    result = apply_import(users["analyst"], "units", path, dry_run=False)
    unit_a.refresh_from_db()
    assert unit_a.name == "Vårdcentralen Ankarsrum Nya"
    record = ChangeRecord.objects.get(batch=result.batch)
    assert record.action == "update"
    assert record.before["name"] == "Vårdcentralen Ankarsrum"
    assert record.after["name"] == "Vårdcentralen Ankarsrum Nya"
    assert record.after["closed"] == "2026-06-30"


def test_it_moves_a_unit_to_another_provider_and_renames_a_provider(users, csv_file, unit_a):
    path = csv_file(UNITS_HEADER + f"{A};Vårdcentralen Ankarsrum;5566778899;Hälsa Nord Ny AB;;"
                    "Västervik;2010-01-01;\n")  # fmt: skip
    result = apply_import(users["analyst"], "units", path, dry_run=False)
    assert result.ok, result.plan.errors
    assert result.plan.providers_changed == 1
    unit_a.refresh_from_db()
    assert unit_a.provider.org_nr == "5566778899"
    assert unit_a.provider.name == "Hälsa Nord Ny AB"
    assert ChangeRecord.objects.filter(batch=result.batch).count() == 2


@pytest.mark.parametrize(
    ("hsa_id", "fragment"),
    [
        ("SE2321000017-X1", "Luhn"),
        ("2321000016-X1", "an HSA-id is SE"),
        ("SE2321000016-", "an HSA-id is SE"),
    ],
)
def test_it_refuses_an_invalid_hsa_id(users, csv_file, hsa_id, fragment):
    path = csv_file(
        UNITS_HEADER
        + "SE2321000016-OK1;Ok;2321000016;;;Västervik;;\n"
        + f"{hsa_id};Vårdcentralen Fel;2321000016;;;Västervik;;\n"
    )
    before = counts()
    result = apply_import(users["analyst"], "units", path, dry_run=False)
    (error,) = refused(result, "invalid_hsa_id")
    assert (error.row, error.column, error.value) == (3, "hsa_id", hsa_id)
    assert fragment in error.message
    assert counts() == before


@pytest.mark.parametrize(
    ("org_nr", "fragment"), [("2321000017", "Luhn"), ("23210000", "ten digits")]
)
def test_it_refuses_an_invalid_organisation_number(users, csv_file, org_nr, fragment):
    path = csv_file(UNITS_HEADER + f"SE2321000016-N1;Ny;{org_nr};Ny AB;private;Umeå;;\n")
    before = counts()
    result = apply_import(users["analyst"], "units", path, dry_run=False)
    (error,) = refused(result, "invalid_org_nr")
    assert (error.row, error.column, error.value) == (2, "provider_org_nr", org_nr)
    assert fragment in error.message
    assert counts() == before


def test_it_refuses_a_duplicate_unit_naming_the_first_row(users, csv_file):
    path = csv_file(
        UNITS_HEADER
        + "SE2321000016-D1;Första;2321000016;;;Umeå;;\n"
        + "SE2321000016-D2;Annan;2321000016;;;Umeå;;\n"
        + "SE2321000016-D1;Andra;2321000016;;;Umeå;;\n"
    )
    before = counts()
    result = apply_import(users["analyst"], "units", path, dry_run=False)
    (error,) = refused(result, "duplicate")
    assert (error.row, error.column, error.value) == (4, "hsa_id", "SE2321000016-D1")
    assert "row 2" in error.message
    assert counts() == before


def test_it_refuses_a_unit_of_another_region(users, csv_file, other_unit):
    path = csv_file(UNITS_HEADER + f"{other_unit.hsa_id};Kapad;2321000016;;;Umeå;;\n")
    before = counts()
    result = apply_import(users["analyst"], "units", path, dry_run=False)
    (error,) = refused(result, "other_region")
    assert (error.row, error.column) == (2, "hsa_id")
    assert counts() == before
    assert CareUnit.objects.get(pk=other_unit.pk).name == "Vårdcentralen Utanför"


def test_it_needs_name_and_kind_of_a_new_provider_and_one_name_per_provider(users, csv_file):
    path = csv_file(
        UNITS_HEADER
        + "SE5560000001-P1;Ett;5560000001;;;Umeå;;\n"
        + "SE5560000019-P1;Två;5560000019;Två AB;private;Umeå;;\n"
        + "SE5560000019-P2;Tre;5560000019;Tre AB;privat;Umeå;;\n"
        + "SE5560000019-P3;Fyra;5560000019;Fyra AB;;Umeå;2020-01-01;2019-01-01\n"
    )
    before = counts()
    result = apply_import(users["analyst"], "units", path, dry_run=False)
    found = {(e.row, e.column, e.rule) for e in result.plan.errors}
    assert found == {
        (2, "provider_name", "required"),
        (2, "provider_kind", "required"),
        (4, "provider_kind", "provider_kind"),
        (5, "provider_name", "provider_conflict"),
        (5, "closed", "closed_before_opened"),
    }
    conflict = next(e for e in result.plan.errors if e.rule == "provider_conflict")
    assert "Row 3" in conflict.message
    assert counts() == before


def test_it_validates_unit_rows_as_a_plain_function(region, provider_region):
    rows = [
        (2, {"hsa_id": "SE2321000016-X1", "name": "X", "provider_org_nr": "2321000016",
             "municipality": "Umeå", "opened": "2025-02-30"}),
    ]  # fmt: skip
    plan = validate_units(rows, region)
    assert [(e.row, e.column, e.rule) for e in plan.errors] == [(2, "opened", "date_format")]


def test_it_refuses_a_file_missing_a_required_column(users, csv_file):
    path = csv_file("hsa_id;name\nSE2321000016-X1;X\n")
    before = counts()
    result = apply_import(users["analyst"], "units", path, dry_run=False)
    errors = refused(result, "missing_column")
    assert {(e.row, e.column) for e in errors} == {(1, "provider_org_nr"), (1, "municipality")}
    assert result.plan.fatal
    assert counts() == before


# --- listings --------------------------------------------------------------------------------


def listings_text(rows) -> str:
    return LISTINGS_HEADER + "".join(";".join(map(str, r)) + "\n" for r in rows)


def test_it_imports_listings_and_records_one_history_row_per_unit_and_month(
    users, csv_file, unit_a, unit_b
):
    path = csv_file(
        listings_text(
            [(A, "2025-01", "K", "25-29", 120), (A, "2025-01", "M", "25-29", 110),
             (A, "2025-02", "K", "25-29", 121), (B, "2025-01", "K", "85+", "1 203")]
        )
    )  # fmt: skip
    result = apply_import(users["analyst"], "listings", path, dry_run=False)
    assert result.ok, result.plan.errors
    assert result.summary() == "4 new, 0 changed, 0 unchanged listing rows"
    assert Listing.objects.get(unit=unit_b, month="2025-01", sex="K", age_band="85+").listed == 1203
    records = ChangeRecord.objects.filter(batch=result.batch)
    assert records.count() == 3
    jan = records.get(object_id=str(unit_a.pk), note__contains="2025-01")
    assert jan.object_type == "organisation.careunit"
    assert jan.actor == users["analyst"]
    assert jan.after == {"2025-01 K 25-29": 120, "2025-01 M 25-29": 110}
    assert jan.before is None


def test_it_reimports_the_same_listings_as_unchanged_and_records_changes(users, csv_file, unit_a):
    rows = [(A, "2025-01", sex, band, 10 + i) for i, (sex, band) in enumerate(
        (s, b) for s in breakdowns.SEXES for b in breakdowns.AGE_BANDS)]  # fmt: skip
    path = csv_file(listings_text(rows))
    first = apply_import(users["analyst"], "listings", path, dry_run=False)
    assert first.plan.new == 38
    history = ChangeRecord.objects.count()

    again = apply_import(users["analyst"], "listings", path, dry_run=False)
    assert (again.plan.new, again.plan.changed, again.plan.unchanged) == (0, 0, 38)
    assert again.summary() == "0 new, 0 changed, 38 unchanged listing rows"
    assert ChangeRecord.objects.count() == history

    rows[3] = (A, "2025-01", rows[3][2], rows[3][3], 999)
    changed = apply_import(users["analyst"], "listings", csv_file(listings_text(rows), "b.csv"),
                           dry_run=False)  # fmt: skip
    assert (changed.plan.new, changed.plan.changed, changed.plan.unchanged) == (0, 1, 37)
    assert changed.plan.changed_items[0].before == {"listed": 13}
    assert changed.plan.changed_items[0].after == {"listed": 999}
    record = ChangeRecord.objects.get(batch=changed.batch)
    cell = f"2025-01 K {breakdowns.AGE_BANDS[3]}"
    assert record.before == {cell: 13}
    assert record.after == {cell: 999}
    assert record.changed_fields() == [(cell, 13, 999)]


def test_it_writes_nothing_on_a_dry_run(users, csv_file, unit_a):
    path = csv_file(listings_text([(A, "2025-01", "K", "25-29", 120)]))
    before = counts()
    result = apply_import(users["analyst"], "listings", path, dry_run=True)
    assert result.ok
    assert result.plan.new == 1
    assert result.plan.new_items[0].label == f"{A} · 2025-01 · K · 25-29"
    assert (
        result.summary() == "1 new, 0 changed, 0 unchanged listing rows (dry run: nothing written)"
    )
    assert counts() == before


@pytest.mark.parametrize(
    ("row", "column", "rule", "value"),
    [
        ((A, "2025-01", "K", "25-29", -5), "listed", "negative", "-5"),
        ((A, "2025-01", "K", "25-29", "12.5"), "listed", "not_integer", "12.5"),
        ((A, "2025-01", "K", "25-29", "tolv"), "listed", "not_integer", "tolv"),
        ((A, "2025-01", "K", "25-29", ""), "listed", "required", ""),
        ((A, "2025-1", "K", "25-29", 5), "month", "month_format", "2025-1"),
        ((A, "2025-13", "K", "25-29", 5), "month", "month_format", "2025-13"),
        ((A, "jan 2025", "K", "25-29", 5), "month", "month_format", "jan 2025"),
        ((A, "2025-01-01", "K", "25-29", 5), "month", "month_format", "2025-01-01"),
        ((A, "2025-01", "T", "25-29", 5), "sex", "sex", "T"),
        ((A, "2025-01", "X", "25-29", 5), "sex", "sex", "X"),
        ((A, "2025-01", "K", "25-30", 5), "age_band", "age_band", "25-30"),
        ((A, "2025-01", "K", "90+", 5), "age_band", "age_band", "90+"),
        (("SE2321000016-ZZZ9", "2025-01", "K", "25-29", 5), "unit_hsa_id", "unknown_unit",
         "SE2321000016-ZZZ9"),
        (("SE2321000016-", "2025-01", "K", "25-29", 5), "unit_hsa_id", "invalid_hsa_id",
         "SE2321000016-"),
    ],
)  # fmt: skip
def test_it_refuses_a_bad_listing_row_pointing_to_row_and_column(
    users, csv_file, unit_a, row, column, rule, value
):
    path = csv_file(listings_text([(A, "2024-12", "K", "25-29", 100), row]))
    before = counts()
    result = apply_import(users["analyst"], "listings", path, dry_run=False)
    (error,) = result.plan.errors
    assert (error.row, error.column, error.rule, error.value) == (3, column, rule, value)
    assert error.message
    assert not result.applied
    assert counts() == before


def test_it_refuses_listings_for_a_unit_of_another_region(users, csv_file, other_unit):
    path = csv_file(listings_text([(other_unit.hsa_id, "2025-01", "K", "25-29", 5)]))
    before = counts()
    result = apply_import(users["analyst"], "listings", path, dry_run=False)
    (error,) = refused(result, "unknown_unit")
    assert (error.row, error.column) == (2, "unit_hsa_id")
    assert "Region Exempel" in error.message
    assert counts() == before


def test_it_refuses_duplicate_listing_keys_naming_the_first_row(users, csv_file, unit_a):
    path = csv_file(
        listings_text([(A, "2025-01", "K", "25-29", 5), (A, "2025-01", "M", "25-29", 5),
                       (A, "2025-01", "k", "25-29", 6)])
    )  # fmt: skip
    before = counts()
    result = apply_import(users["analyst"], "listings", path, dry_run=False)
    (error,) = refused(result, "duplicate")
    assert (error.row, error.column) == (4, "unit_hsa_id")
    assert "row 2" in error.message
    assert counts() == before


def test_it_reports_every_error_of_a_row_and_counts_beyond_the_kept_thousand(
    users, csv_file, unit_a
):
    rows = [(A, "2025-01", "X", "25-29", -1)] + [(A, "bad", "K", "25-29", 1)] * 1200
    result = apply_import(users["analyst"], "listings", csv_file(listings_text(rows)), False)
    assert [(e.row, e.column) for e in result.plan.errors[:2]] == [(2, "sex"), (2, "listed")]
    assert result.plan.error_count == 1202
    assert len(result.plan.errors) == imports.MAX_ERRORS
    assert result.summary().startswith("Refused: 1202 errors; nothing was written")


def test_it_rolls_back_chunks_already_written_when_a_late_row_is_refused(
    users, csv_file, unit_a, monkeypatch
):
    monkeypatch.setattr(imports, "CHUNK_ROWS", 5)
    rows = [(A, f"2020-{m:02d}", "K", "25-29", m) for m in range(1, 13)]
    rows.append((A, "2021-01", "K", "25-29", -1))
    before = counts()
    result = apply_import(users["analyst"], "listings", csv_file(listings_text(rows)), False)
    (error,) = refused(result, "negative")
    assert error.row == 14
    assert result.plan.new == 12  # the plan still tells what the file would have done
    assert counts() == before


def test_it_refuses_a_latin1_csv_naming_line_and_column(users, csv_file, unit_a):
    text = UNITS_HEADER + f"{A};Vårdcentralen Åby;2321000016;;;Västervik;;\n"
    path = csv_file(text, encoding="latin-1")
    before = counts()
    result = apply_import(users["analyst"], "units", path, dry_run=False)
    (error,) = refused(result, "encoding")
    assert (error.row, error.column) == (2, "name")
    assert "Line 2" in error.message
    assert "UTF-8" in error.message
    assert result.plan.fatal
    assert counts() == before


@pytest.mark.parametrize("content", ["", LISTINGS_HEADER])
def test_it_refuses_an_empty_file(users, csv_file, unit_a, content):
    before = counts()
    result = apply_import(users["analyst"], "listings", csv_file(content), dry_run=False)
    (error,) = refused(result, "empty_file")
    assert "empty" in error.message or "no data rows" in error.message
    assert counts() == before


def _workbook(path, rows, sheets=("Listningar",)):
    wb = Workbook()
    ws = wb.active
    ws.title = sheets[0]
    for row in rows:
        ws.append(row)
    for name in sheets[1:]:
        wb.create_sheet(name)
    wb.save(path)
    return path


def test_it_imports_listings_from_xlsx(users, tmp_path, unit_a):
    path = _workbook(
        tmp_path / "l.xlsx",
        [["Unit_HSA_id", "Month", "Sex", "Age_band", "Listed"], [A, "2025-01", "K", "0-4", 17.0]],
    )
    result = apply_import(users["analyst"], "listings", path, dry_run=False)
    assert result.ok, result.plan.errors
    assert Listing.objects.get(unit=unit_a, age_band="0-4").listed == 17


def test_it_refuses_an_xlsx_with_formulas_naming_the_cell(users, tmp_path, unit_a):
    path = _workbook(
        tmp_path / "l.xlsx",
        [["unit_hsa_id", "month", "sex", "age_band", "listed"],
         [A, "2025-01", "K", "0-4", 17], [A, "2025-01", "M", "0-4", "=E2*2"]],
    )  # fmt: skip
    before = counts()
    result = apply_import(users["analyst"], "listings", path, dry_run=False)
    (error,) = refused(result, "formula")
    assert (error.row, error.column, error.value) == (3, "listed", "=E2*2")
    assert "E3" in error.message
    assert counts() == before


def test_it_refuses_an_xlsx_with_several_sheets_naming_them(users, tmp_path, unit_a):
    path = _workbook(
        tmp_path / "l.xlsx",
        [["unit_hsa_id", "month", "sex", "age_band", "listed"], [A, "2025-01", "K", "0-4", 17]],
        sheets=("Listningar", "Pivot"),
    )
    before = counts()
    result = apply_import(users["analyst"], "listings", path, dry_run=False)
    (error,) = refused(result, "several_sheets")
    assert "Listningar, Pivot" in error.message
    assert counts() == before


# --- staffing ----------------------------------------------------------------------------------


def test_it_imports_staffing_with_comma_or_dot_decimals_and_any_period(users, csv_file, unit_a):
    path = csv_file(
        STAFFING_HEADER + f"{A};2025;psykolog;1,5\n{A};2025q1;kurator;0.75\n{A};2025-03;LAKARE;3\n"
    )
    result = apply_import(users["analyst"], "staffing", path, dry_run=False)
    assert result.ok, result.plan.errors
    assert Staffing.objects.get(unit=unit_a, period="2025", profession="psykolog").fte == Decimal(
        "1.50"
    )
    assert Staffing.objects.filter(unit=unit_a, period="2025Q1", profession="kurator").exists()
    assert Staffing.objects.filter(unit=unit_a, period="2025-03", profession="lakare").exists()
    again = apply_import(users["analyst"], "staffing", path, dry_run=False)
    assert again.plan.unchanged == 3


def test_it_records_staffing_changes_before_and_after(users, csv_file, unit_a):
    Staffing.objects.create(unit=unit_a, period="2025", profession="psykolog", fte=Decimal("1"))
    path = csv_file(STAFFING_HEADER + f"{A};2025;psykolog;1,25\n")
    result = apply_import(users["analyst"], "staffing", path, dry_run=False)
    record = ChangeRecord.objects.get(batch=result.batch)
    assert record.before == {"2025 psykolog": "1.00"}
    assert record.after == {"2025 psykolog": "1.25"}


@pytest.mark.parametrize(
    ("line", "column", "rule"),
    [
        (f"{A};2025;psykolog;-1", "fte", "negative"),
        (f"{A};2025;psykolog;1,255", "fte", "decimals"),
        (f"{A};2025;psykolog;en", "fte", "not_number"),
        (f"{A};2025;trollkarl;1", "profession", "profession"),
        (f"{A};2025H1;psykolog;1", "period", "period_format"),
        (f"{A};2025;psykolog;1\n{A};2025;Psykolog;2", "unit_hsa_id", "duplicate"),
    ],
)
def test_it_refuses_bad_staffing_rows(users, csv_file, unit_a, line, column, rule):
    path = csv_file(STAFFING_HEADER + line + "\n")
    before = counts()
    result = apply_import(users["analyst"], "staffing", path, dry_run=False)
    (error,) = refused(result, rule)
    assert error.column == column
    assert error.row == line.count("\n") + 2
    assert counts() == before
    if rule == "duplicate":
        assert "row 2 has the same unit, period and profession" in error.message


def test_it_lets_a_unit_manager_import_staffing_for_own_units_only(users, csv_file, unit_a, unit_b):
    ok = csv_file(STAFFING_HEADER + f"{A};2025;psykolog;1\n", "ok.csv")
    result = apply_import(users["manager"], "staffing", ok, dry_run=False)
    assert result.ok
    assert Staffing.objects.filter(unit=unit_a).count() == 1

    mixed = csv_file(STAFFING_HEADER + f"{A};2025;kurator;1\n{B};2025;psykolog;2\n", "mixed.csv")
    before = counts()
    result = apply_import(users["manager"], "staffing", mixed, dry_run=False)
    (error,) = refused(result, "not_your_unit")
    assert (error.row, error.column, error.value) == (3, "unit_hsa_id", B)
    assert "Not your unit" in error.message
    assert counts() == before


def test_it_validates_staffing_for_a_managers_units_as_a_plain_function(region, unit_a, unit_b):
    rows = [(2, {"unit_hsa_id": B, "period": "2025", "profession": "psykolog", "fte": "1"})]
    plan = validate_staffing(rows, region, allowed_unit_ids={unit_a.pk})
    assert [(e.row, e.rule) for e in plan.errors] == [(2, "not_your_unit")]
    plan = validate_staffing(rows, region)
    assert plan.ok
    assert plan.new == 1


@pytest.mark.parametrize(
    ("persona", "kind"),
    [
        ("viewer", "units"), ("auditor", "listings"), ("nobody", "staffing"),
        ("manager", "units"), ("manager", "listings"), ("viewer", "staffing"),
    ],
)  # fmt: skip
def test_it_refuses_imports_by_roles_without_the_right(users, csv_file, unit_a, persona, kind):
    path = csv_file(listings_text([(A, "2025-01", "K", "25-29", 5)]))
    before = counts()
    with pytest.raises(PermissionDenied):
        apply_import(users[persona], kind, path, dry_run=False)
    assert counts() == before


def test_it_keeps_an_outsider_to_its_own_region(users, csv_file, unit_a):
    path = csv_file(listings_text([(A, "2025-01", "K", "25-29", 5)]))
    before = counts()
    result = apply_import(users["outsider"], "listings", path, dry_run=False)
    (error,) = refused(result, "unknown_unit")
    assert "Region Annan" in error.message
    assert counts() == before


def test_it_validates_listing_rows_as_a_plain_function(region, unit_a):
    rows = [
        (2, {"unit_hsa_id": A, "month": "2025-01", "sex": "K", "age_band": "0-4", "listed": "5"}),
        (3, {"unit_hsa_id": A, "month": "2025-01", "sex": "M", "age_band": "0-4", "listed": "6"}),
    ]
    plan = validate_listings(rows, region)
    assert plan.ok
    assert (plan.new, plan.changed, plan.unchanged) == (2, 0, 0)
    assert [c.row for c in plan.new_items] == [2, 3]
    assert Listing.objects.count() == 0


# --- a 100 MB file ---------------------------------------------------------------------------

BIG_UNITS = 340
BIG_MONTHS = 200


def _write_big_listings(path, units: list[str], n_months: int = BIG_MONTHS) -> int:
    """About 100 MB of listings (at 200 months), written with a generator (never held in
    memory)."""
    cells = [(s, b) for s in breakdowns.SEXES for b in breakdowns.AGE_BANDS]
    months = [f"{2000 + m // 12}-{m % 12 + 1:02d}" for m in range(n_months)]

    def lines():
        yield LISTINGS_HEADER
        for i, hsa in enumerate(units):
            for month in months:
                yield "".join(
                    f"{hsa};{month};{sex};{band};{(i * 7 + n) % 900 + 100}\n"
                    for n, (sex, band) in enumerate(cells)
                )

    with path.open("w", encoding="utf-8", newline="") as f:
        f.writelines(lines())
    return path.stat().st_size


def _peak_rss_growth(run):
    """Run ``run()`` and return (its result, how far the process's peak resident memory rose
    above where it stood before). The kernel's high-water mark is reset first (clear_refs 5),
    so the figure is this call's own; tracemalloc would make the import five times slower."""
    gc.collect()
    before = _rss_kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    result = run()
    return result, (_rss_kb("VmHWM") - before) * 1024


def _rss_kb(field: str) -> int:
    found = re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text())
    assert found is not None, f"no {field} in /proc/self/status"
    return int(found.group(1))


def _big_units(provider_region) -> list[str]:
    units = [f"SE2321000016-L{i:05d}" for i in range(BIG_UNITS)]
    CareUnit.objects.bulk_create(
        CareUnit(region=provider_region.region, provider=provider_region, hsa_id=hsa,
                 name=f"Vårdcentral {i}", municipality="Umeå")
        for i, hsa in enumerate(units)
    )  # fmt: skip
    return units


@pytest.fixture
def big_file(tmp_path, provider_region):
    path = tmp_path / "listings.csv"
    size = _write_big_listings(path, _big_units(provider_region))
    assert size >= 100_000_000
    return path, size, BIG_UNITS * BIG_MONTHS * 38


@pytest.mark.slow
def test_it_streams_a_100_mb_listings_file_through_the_dry_run(users, big_file):
    path, size, rows = big_file
    progress: list[tuple[int, int]] = []
    result, growth = _peak_rss_growth(
        lambda: apply_import(
            users["analyst"], "listings", path, dry_run=True,
            progress=lambda done, total: progress.append((done, total)),
        )
    )  # fmt: skip
    assert result.ok, result.plan.errors[:5]
    assert result.plan.new == rows
    assert not Listing.objects.exists()
    assert not ChangeRecord.objects.filter(object_type="organisation.careunit").exists()
    # Streamed: the process grew by a small fraction of the file while reading all of it.
    assert growth < size / 4, f"grew {growth / 2**20:.1f} MB for a {size / 2**20:.0f} MB file"
    assert len(progress) > 100
    assert progress[-1] == (size, size)


def test_it_refuses_a_large_file_with_one_bad_last_row_and_writes_nothing(
    users, tmp_path, provider_region
):
    # 10 MB: every row before the last is valid and already read when the last one fails.
    path = tmp_path / "listings.csv"
    _write_big_listings(path, _big_units(provider_region), n_months=20)
    rows = BIG_UNITS * 20 * 38
    with path.open("a", encoding="utf-8") as f:
        f.write("SE2321000016-L00000;2016-09;X;0-4;12\n")
    result = apply_import(users["analyst"], "listings", path, dry_run=False)
    assert not result.ok
    [error] = result.plan.errors
    assert (error.row, error.column, error.value) == (rows + 2, "sex", "X")
    assert not Listing.objects.exists()
    assert not ChangeRecord.objects.filter(object_type="organisation.careunit").exists()


# On PostgreSQL only: there the written rows live in the server, so the process's own memory
# is what the import holds; an in-memory SQLite test database would count them too. 40 MB
# (80 months) rather than 100: the write path costs a minute per 100 MB, and the reading of a
# 100 MB file is what the dry-run test above measures.
@pytest.mark.slow
@pytest.mark.postgres_only
def test_it_imports_a_40_mb_listings_file_with_bounded_memory(users, tmp_path, provider_region):
    path = tmp_path / "listings.csv"
    size = _write_big_listings(path, _big_units(provider_region), n_months=80)
    rows = BIG_UNITS * 80 * 38
    result, growth = _peak_rss_growth(
        lambda: apply_import(users["analyst"], "listings", path, dry_run=False)
    )
    assert result.ok, result.plan.errors[:5]
    assert Listing.objects.count() == rows
    # One history row per unit and month, each with every cell's value.
    assert result.history_records == BIG_UNITS * 80
    assert ChangeRecord.objects.filter(batch=result.batch).count() == BIG_UNITS * 80
    assert growth < size / 2, f"grew {growth / 2**20:.1f} MB for a {size / 2**20:.0f} MB file"
