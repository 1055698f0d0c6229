"""Streamed reading of CSV and XLSX files (styrkort.tabular), without a database."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
from openpyxl import Workbook

from styrkort.tabular import CsvReader, FileError, RowError, XlsxReader, cell_text, open_table


def write(path, text: str, encoding: str = "utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def xlsx(path, rows, extra_sheets=()):
    wb = Workbook()
    ws = wb.active
    ws.title = "Data"
    for row in rows:
        ws.append(row)
    for name in extra_sheets:
        wb.create_sheet(name)
    wb.save(path)
    return path


def test_it_reads_semicolon_csv_with_bom_and_normalises_the_header(tmp_path):
    path = write(tmp_path / "a.csv", "\ufeff Unit_HSA_id ;Month\nSE1;2025-03\nSE2; 2025-04 \n")
    reader = open_table(path)
    assert isinstance(reader, CsvReader)
    rows = list(reader)
    assert reader.columns == ["unit_hsa_id", "month"]
    assert rows == [
        (2, {"unit_hsa_id": "SE1", "month": "2025-03"}),
        (3, {"unit_hsa_id": "SE2", "month": "2025-04"}),
    ]


def test_it_detects_a_comma_delimiter_and_keeps_quoted_commas(tmp_path):
    path = write(tmp_path / "a.csv", 'name,municipality\n"Vårdcentralen, Norr",Umeå\n')
    assert list(open_table(path)) == [(2, {"name": "Vårdcentralen, Norr", "municipality": "Umeå"})]


def test_it_counts_rows_as_a_spreadsheet_does_even_with_blank_lines(tmp_path):
    path = write(tmp_path / "a.csv", "a;b\r\n1;2\r\n\r\n3;4\r\n")
    assert [row for row, _ in open_table(path)] == [2, 4]


def test_it_refuses_latin1_naming_the_line_and_column(tmp_path):
    path = write(tmp_path / "a.csv", "hsa_id;name\nSE1;Ok\nSE2;Vårdcentral\n", "latin-1")
    with pytest.raises(FileError) as exc:
        list(open_table(path))
    error = exc.value.error
    assert (error.row, error.column, error.rule) == (3, "name", "encoding")
    assert "Line 3" in error.message
    assert "UTF-8" in error.message


@pytest.mark.parametrize("content", [b"", b"\n\n", b"\xef\xbb\xbf"])
def test_it_refuses_an_empty_file(tmp_path, content):
    path = tmp_path / "a.csv"
    path.write_bytes(content)
    with pytest.raises(FileError) as exc:
        list(open_table(path))
    assert exc.value.error.rule == "empty_file"
    assert "empty" in exc.value.message


def test_it_refuses_a_header_without_rows(tmp_path):
    path = write(tmp_path / "a.csv", "unit_hsa_id;month\n")
    with pytest.raises(FileError) as exc:
        list(open_table(path))
    assert exc.value.error.rule == "empty_file"
    assert "no data rows" in exc.value.message


def test_it_reports_ragged_rows_as_row_errors_and_goes_on(tmp_path):
    path = write(tmp_path / "a.csv", "a;b;c\n1;2;3\n1;2\n1;2;3;4\n1;2;3;;\n5;6;7\n")
    errors: list[RowError] = []
    rows = list(open_table(path, on_error=errors.append))
    assert [r for r, _ in rows] == [2, 5, 6]  # trailing empty cells are tolerated
    assert [(e.row, e.column, e.rule) for e in errors] == [(3, "c", "ragged"), (4, "", "ragged")]
    assert errors[1].value == "4"


def test_it_raises_on_a_ragged_row_without_an_error_callback(tmp_path):
    path = write(tmp_path / "a.csv", "a;b\n1\n")
    with pytest.raises(FileError) as exc:
        list(open_table(path))
    assert exc.value.error.row == 2


def test_it_refuses_duplicate_column_names(tmp_path):
    path = write(tmp_path / "a.csv", "a;A\n1;2\n")
    with pytest.raises(FileError) as exc:
        list(open_table(path))
    assert exc.value.error.rule == "header"


def test_it_reports_csv_progress_in_bytes(tmp_path, monkeypatch):
    monkeypatch.setattr("styrkort.tabular.PROGRESS_EVERY", 10)
    path = write(tmp_path / "a.csv", "a;b\n" + "".join(f"{i};x\n" for i in range(100)))
    calls = []
    list(open_table(path, progress=lambda done, total: calls.append((done, total))))
    size = path.stat().st_size
    assert calls[-1] == (size, size)
    assert len(calls) > 5
    assert all(0 < d <= t == size for d, t in calls)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_it_refuses_a_file_without_line_breaks(tmp_path, monkeypatch):
    monkeypatch.setattr("styrkort.tabular.MAX_LINE_BYTES", 64)
    path = write(tmp_path / "a.csv", "a;b" + ";1;2" * 40)
    with pytest.raises(FileError) as exc:
        list(open_table(path))
    assert exc.value.error.rule == "line_too_long"


def test_it_reads_old_mac_line_endings(tmp_path):
    path = write(tmp_path / "a.csv", "a;b\r1;2\r3;4\r")
    assert [r for r, _ in open_table(path)] == [2, 3]


def test_it_reads_xlsx_and_converts_numbers_and_dates(tmp_path):
    path = xlsx(
        tmp_path / "a.xlsx",
        [
            ["HSA_id", "Listed", "FTE", "Opened", "At"],
            ["SE1", 12, 1.5, date(2025, 3, 1), datetime(2025, 3, 1, 8, 30)],
            [None, None, None, None, None],
            ["SE2", 12.0, 0.75, datetime(2024, 1, 31), None],
        ],
    )
    reader = open_table(path)
    assert isinstance(reader, XlsxReader)
    assert list(reader) == [
        (2, {"hsa_id": "SE1", "listed": "12", "fte": "1.5", "opened": "2025-03-01",
             "at": "2025-03-01 08:30:00"}),
        (4, {"hsa_id": "SE2", "listed": "12", "fte": "0.75", "opened": "2024-01-31", "at": ""}),
    ]  # fmt: skip


def test_it_refuses_a_workbook_with_several_sheets_naming_them(tmp_path):
    path = xlsx(tmp_path / "a.xlsx", [["a"], [1]], extra_sheets=["Anteckningar", "Blad3"])
    with pytest.raises(FileError) as exc:
        list(open_table(path))
    assert exc.value.error.rule == "several_sheets"
    assert "Data, Anteckningar, Blad3" in exc.value.message


def test_it_reports_each_formula_cell_by_its_name(tmp_path):
    path = xlsx(
        tmp_path / "a.xlsx",
        [["unit", "month", "listed"], ["SE1", "2025-03", 5], ["SE1", "2025-04", "=C2+1"]],
    )
    errors: list[RowError] = []
    rows = list(open_table(path, on_error=errors.append))
    assert [r for r, _ in rows] == [2]
    assert [(e.row, e.column, e.rule, e.value) for e in errors] == [
        (3, "listed", "formula", "=C2+1")
    ]
    assert "C3" in errors[0].message


def test_it_refuses_an_empty_workbook_and_a_header_only_workbook(tmp_path):
    with pytest.raises(FileError) as exc:
        list(open_table(xlsx(tmp_path / "a.xlsx", [])))
    assert exc.value.error.rule == "empty_file"
    with pytest.raises(FileError) as exc:
        list(open_table(xlsx(tmp_path / "b.xlsx", [["a", "b"]])))
    assert exc.value.error.rule == "empty_file"


def test_it_reports_xlsx_progress_in_rows(tmp_path, monkeypatch):
    monkeypatch.setattr("styrkort.tabular.PROGRESS_EVERY", 10)
    path = xlsx(tmp_path / "a.xlsx", [["a"]] + [[i] for i in range(50)])
    calls = []
    list(open_table(path, progress=lambda done, total: calls.append((done, total))))
    assert calls[0] == (10, 51)
    assert calls[-1] == (51, 51)


def test_it_refuses_old_xls_and_broken_workbooks(tmp_path):
    old = tmp_path / "a.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0" + b"\0" * 100)
    with pytest.raises(FileError) as exc:
        open_table(old)
    assert ".xlsx" in exc.value.message
    broken = tmp_path / "b.xlsx"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(FileError) as exc:
        list(open_table(broken))
    assert exc.value.error.rule == "format"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""), (3, "3"), (3.0, "3"), (0.1, "0.1"), (1e-05, "0.00001"),
        (Decimal("2.50"), "2.50"), (Decimal("4.00"), "4"), (date(2025, 1, 2), "2025-01-02"),
        (" x ", "x"), (True, "TRUE"),
    ],
)  # fmt: skip
def test_it_turns_cell_values_into_the_text_a_person_would_type(value, text):
    assert cell_text(value) == text


def test_it_masks_personal_numbers_in_refused_values(tmp_path):
    path = write(tmp_path / "a.csv", "a;b\n1;2;19121212-1212\n")
    errors: list[RowError] = []
    list(open_table(path, on_error=errors.append))
    assert "1212-1212" not in errors[0].value
    assert errors[0].value.startswith("19")
