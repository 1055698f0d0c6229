"""Tests of reading SCB population per län: the real file, its variants, and every refusal.

A refused file must list all its problems at once (row, column, value, rule), so an analyst
can fix the file in one go.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from styrkort.grants.population import (
    LAN,
    RULES,
    PopulationFileError,
    RowError,
    parse_population_csv,
)

SHARED_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
POPULATION_FILE = SHARED_DATA / "population_lan_2024-12-31.csv"
needs_shared = pytest.mark.skipif(
    not POPULATION_FILE.exists(), reason="reference data ../shared/data not present"
)

# A minimal valid file (the 2024-12-31 figures) so most tests do not depend on ../shared.
POPULATION_2024 = {
    "01": 2473307, "03": 407912, "04": 301542, "05": 472446, "06": 370009, "07": 203351,
    "08": 246352, "09": 60971, "10": 157223, "12": 1428626, "13": 345074, "14": 1772821,
    "17": 283384, "18": 308375, "19": 281158, "20": 286546, "21": 284558, "22": 241458,
    "23": 132839, "24": 281138, "25": 248620,
}  # fmt: skip


def make_text(rows: list[tuple[str, str]], sep: str = ",") -> str:
    lines = [f"lan_code{sep}population"] + [f"{code}{sep}{pop}" for code, pop in rows]
    return "\n".join(lines) + "\n"


def valid_rows() -> list[tuple[str, str]]:
    return [(code, str(pop)) for code, pop in POPULATION_2024.items()]


def errors_of(source: object) -> list[RowError]:
    with pytest.raises(PopulationFileError) as info:
        parse_population_csv(source)  # type: ignore[arg-type]
    return info.value.errors


# --------------------------------------------------------------------------------------------
# Accepted input


@needs_shared
def test_reads_the_scb_reference_file() -> None:
    populations = parse_population_csv(POPULATION_FILE)
    assert list(populations) == list(LAN)
    assert populations["18"] == 308_375
    assert sum(populations.values()) == 10_587_710  # SCB's national total
    assert populations == POPULATION_2024


@needs_shared
def test_lan_constant_matches_the_reference_regions() -> None:
    with (SHARED_DATA / "regions.csv").open(encoding="utf-8") as fh:
        reference = {row["lan_code"]: row["lan_name"] for row in csv.DictReader(fh)}
    assert reference == LAN
    assert len(LAN) == 21


def test_accepts_text_with_bom_and_semicolons(tmp_path: Path) -> None:
    text = make_text(valid_rows(), sep=";")
    assert parse_population_csv(text) == POPULATION_2024
    assert parse_population_csv("\ufeff" + text) == POPULATION_2024
    path = tmp_path / "pop.csv"
    path.write_bytes(("\ufeff" + text).encode("utf-8"))
    assert parse_population_csv(path) == POPULATION_2024
    assert parse_population_csv(str(path)) == POPULATION_2024
    assert parse_population_csv(path.read_bytes()) == POPULATION_2024


def test_accepts_crlf_extra_columns_any_row_order_and_pxweb_variants() -> None:
    rows = list(reversed(valid_rows()))
    lines = ["Region;År;Folkmängd"]
    for code, pop in rows:
        label = f"{code} {LAN[code]}" if code != "01" else "1"  # leading zero lost in Excel
        grouped = f"{int(pop):,}".replace(",", " ") if code == "18" else pop
        lines.append(f"{label};2024;{grouped}")
    result = parse_population_csv("\r\n".join(lines) + "\r\n")
    assert result == POPULATION_2024
    assert list(result) == list(LAN)  # ordered by code whatever the file's order


def test_blank_lines_are_ignored_and_rows_still_numbered_as_in_the_file() -> None:
    text = "\n" + make_text(valid_rows()).replace("03,", "\n03,")
    assert parse_population_csv(text) == POPULATION_2024
    bad = "\n" + make_text([(c, "x" if c == "03" else p) for c, p in valid_rows()])
    # blank line 1, header line 2, "01" line 3, "03" line 4
    assert errors_of(bad) == [RowError(4, "population", "x", "not_a_number")]


# --------------------------------------------------------------------------------------------
# Refused input: every problem reported, together


def test_missing_region() -> None:
    rows = [r for r in valid_rows() if r[0] != "18"]
    assert errors_of(make_text(rows)) == [
        RowError(None, "lan_code", "18", "missing_lan", "Örebro län")
    ]


def test_duplicate_region() -> None:
    rows = valid_rows() + [("18", "1")]
    errors = errors_of(make_text(rows))
    assert errors == [RowError(23, "lan_code", "18", "duplicate_lan", "first on row 15")]
    assert "appears more than once" in errors[0].message


def test_unknown_code() -> None:
    rows = valid_rows() + [("02", "5"), ("99", "5"), ("AB", "5")]
    errors = errors_of(make_text(rows))
    assert [(e.row, e.value, e.rule) for e in errors] == [
        (23, "02", "unknown_lan"),
        (24, "99", "unknown_lan"),
        (25, "AB", "unknown_lan"),
    ]


def test_negative_population() -> None:
    rows = [(c, "-308375" if c == "18" else p) for c, p in valid_rows()]
    assert errors_of(make_text(rows)) == [RowError(15, "population", "-308375", "negative")]


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("abc", "not_a_number"),
        ("12x", "not_a_number"),
        ("3e5", "not_a_number"),
        ("308375.5", "not_integer"),
        ("", "empty_value"),
        ("  ", "empty_value"),
    ],
)
def test_non_numeric_population(value: str, rule: str) -> None:
    rows = [(c, value if c == "18" else p) for c, p in valid_rows()]
    assert errors_of(make_text(rows)) == [RowError(15, "population", value, rule)]


def test_decimal_comma_in_semicolon_file() -> None:
    rows = [(c, "308375,5" if c == "18" else p) for c, p in valid_rows()]
    assert errors_of(make_text(rows, sep=";")) == [
        RowError(15, "population", "308375,5", "not_integer")
    ]


def test_empty_file(tmp_path: Path) -> None:
    expected = [RowError(None, None, "", "empty_file")]
    assert errors_of("") == expected
    assert errors_of("\ufeff \n\n") == expected
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert errors_of(empty) == expected
    empty.write_bytes(b"\xef\xbb\xbf")  # a BOM and nothing else
    assert errors_of(empty) == expected


def test_header_only_reports_every_missing_lan() -> None:
    errors = errors_of("lan_code,population\n")
    assert [e.value for e in errors] == list(LAN)
    assert {e.rule for e in errors} == {"missing_lan"}


def test_missing_columns() -> None:
    errors = errors_of("kod,antal_invanare\n18,5\n")
    assert errors == [
        RowError(1, "lan_code", "kod,antal_invanare", "missing_column"),
        RowError(1, "population", "kod,antal_invanare", "missing_column"),
    ]


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(make_text(valid_rows()).replace("01", "Ö1").encode("latin-1"))
    errors = errors_of(path)
    assert [e.rule for e in errors] == ["not_utf8"]


def test_all_errors_are_reported_at_once_in_file_order() -> None:
    rows = valid_rows()
    rows = [r for r in rows if r[0] not in {"24", "25"}]  # two missing
    rows[0] = ("01", "-1")  # negative, row 2
    rows[1] = ("03", "many")  # non-numeric, row 3
    rows.append(("03", "407912"))  # duplicate, row 21
    rows.append(("26", "1"))  # unknown, row 22
    with pytest.raises(PopulationFileError) as info:
        parse_population_csv(make_text(rows))
    errors = info.value.errors
    assert [(e.row, e.column, e.value, e.rule) for e in errors] == [
        (2, "population", "-1", "negative"),
        (3, "population", "many", "not_a_number"),
        (21, "lan_code", "03", "duplicate_lan"),
        (22, "lan_code", "26", "unknown_lan"),
        (None, "lan_code", "24", "missing_lan"),
        (None, "lan_code", "25", "missing_lan"),
    ]
    message = str(info.value)
    assert message.startswith("6 problem(s) in the population file: row 2, column population")
    assert "and 1 more" in message
    assert isinstance(info.value, ValueError)


def test_every_rule_has_an_english_wording() -> None:
    error = RowError(7, "population", "-1", "negative")
    assert error.message == "row 7, column population: '-1': a population cannot be negative"
    assert {"negative", "not_a_number", "missing_lan", "duplicate_lan"} <= set(RULES)
