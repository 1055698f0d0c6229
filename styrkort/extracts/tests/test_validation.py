"""Tests of the extract validator: plain Python and DuckDB, no Django database.

Every refused upload is checked twice: the report says what is wrong (rule, row, column) and
nothing is left in the output directory. Bad files are built from the shipped sample.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from styrkort.extracts import validation
from styrkort.extracts.schema import TABLES, icd10se_chapter_f_codes, normalise_icd10
from styrkort.extracts.validation import (
    FAMILIES,
    PERSONAL_NUMBER_CANDIDATE_SQL_RE,
    ExtractProcessingError,
    ExtractReport,
    holds_personal_number,
    validate_extract,
    write_error_report_csv,
)
from styrkort.identifiers import luhn_ok, mask, validate_hsa_id
from styrkort.periods import Period

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
SHARED_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
UNITS = {"SE2321000099-1001", "SE2321000099-1002", "SE2321000099-1003"}
PERIOD = "2025Q1"
PNR = "19821105-9954"  # valid personnummer from the personnummer/meta test data
SAMORDNING = "701063-2391"  # valid samordningsnummer (day 63 = 3 + 60)


def shared(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"reference data {name} not found beside the repository")
    return path


# ---------------------------------------------------------------------------------------------
# helpers


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A private copy of the sample, one CSV per table."""
    src = tmp_path / "in"
    src.mkdir()
    result = {}
    for name in TABLES:
        target = src / f"{name}.csv"
        shutil.copyfile(SAMPLES / f"{name}.csv", target)
        result[name] = target
    return result


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "out"


def run(files: dict[str, Path], out: Path, **kwargs) -> ExtractReport:
    units = kwargs.pop("units", UNITS)
    return validate_extract(files, Period.parse(PERIOD), units, out, **kwargs)


def read_rows(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter=delimiter))


def write_rows(path: Path, rows: list[dict[str, str]], delimiter: str = ",") -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)


def edit(path: Path, index: int, **values: str) -> None:
    """Change cells of data row ``index`` (0-based; file row index + 2)."""
    rows = read_rows(path)
    rows[index].update(values)
    write_rows(path, rows)


def all_bytes_under(directory: Path) -> bytes:
    if not directory.exists():
        return b""
    return b"".join(p.read_bytes() for p in directory.rglob("*") if p.is_file())


def assert_refused(report: ExtractReport, out: Path) -> None:
    assert not report.ok
    assert report.error_count > 0
    assert report.outputs == {}
    assert not out.exists() or list(out.iterdir()) == []


def errors_of(report: ExtractReport, rule: str, table: str | None = None) -> list:
    return [e for e in report.errors if e.rule == rule and (table is None or e.table == table)]


# ---------------------------------------------------------------------------------------------
# the sample passes


def test_sample_passes_and_writes_typed_parquet(files, out):
    report = run(files, out)
    assert report.ok, report.errors
    assert report.error_count == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{t}.parquet" for t in TABLES)
    for name, output in report.outputs.items():
        assert output.path == out / f"{name}.parquet"
        assert output.sha256 == hashlib.sha256(output.path.read_bytes()).hexdigest()
        data_rows = len(read_rows(files[name]))
        assert output.rows == report.row_counts[name] == data_rows
        table = pq.read_table(output.path)
        assert table.num_rows == data_rows
        assert table.column_names == list(TABLES[name].column_names)
        meta = pq.read_schema(output.path).metadata
        assert meta[b"styrkort_table"] == name.encode()
        assert meta[b"styrkort_period"] == b"2025Q1"

    contacts = pq.read_schema(out / "contacts.parquet")
    assert contacts.field("contact_date").type == pa.date32()
    assert contacts.field("birth_year").type == pa.int16()
    assert contacts.field("is_new_visit").type == pa.bool_()
    assert contacts.field("patient_key").type == pa.string()
    measurements = pq.read_schema(out / "measurements.parquet")
    assert measurements.field("score").type == pa.float64()
    sick = pq.read_schema(out / "sick_leave.parquet")
    assert sick.field("extent").type == pa.int16()
    assert sick.field("end_date").type == pa.date32()
    assert pq.read_schema(out / "listings.parquet").field("listed").type == pa.int32()

    # ICD-10 codes are stored dotted and upper-case; the sample has one in register form.
    raw = {r["icd10_code"] for r in read_rows(files["diagnoses"])}
    assert "F438A" in raw
    stored = set(pq.read_table(out / "diagnoses.parquet").column("icd10_code").to_pylist())
    assert "F43.8A" in stored
    assert "F438A" not in stored
    assert stored == {normalise_icd10(c) for c in raw}
    new_visit = pq.read_table(out / "contacts.parquet").column("is_new_visit").to_pylist()
    assert set(new_visit) == {True, False}


def test_sample_units_are_valid_fictitious_hsa_ids():
    for unit in UNITS:
        assert validate_hsa_id(unit) == unit
    assert luhn_ok("2321000099")
    units = {r["unit_hsa_id"] for r in read_rows(SAMPLES / "contacts.csv")}
    assert units == UNITS


def test_progress_is_reported_per_table_and_family(files, out):
    calls: list[tuple[int, int, str]] = []
    report = run(files, out, progress=lambda d, t, m: calls.append((d, t, m)))
    assert report.ok
    total = len(TABLES) * (len(FAMILIES) + 1)
    assert calls[0] == (0, total, "starting")
    assert calls[-1] == (total, total, "accepted")
    done = [d for d, _, _ in calls]
    assert done == sorted(done)
    messages = {m for _, _, m in calls}
    assert {"contacts: read", "diagnoses: keys", "listings: identifiers"} <= messages


def test_bom_crlf_csv_passes(files, out):
    path = files["contacts"]
    text = path.read_text(encoding="utf-8").replace("\n", "\r\n")
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    report = run(files, out)
    assert report.ok, report.errors


def test_semicolon_csv_with_decimal_comma_passes(files, out):
    for name in ("contacts", "measurements"):
        rows = read_rows(files[name])
        if name == "measurements":
            for row in rows:
                row["score"] = row["score"].replace(".", ",")
            assert any("," in r["score"] for r in rows)
        write_rows(files[name], rows, delimiter=";")
    report = run(files, out)
    assert report.ok, report.errors
    scores = pq.read_table(out / "measurements.parquet").column("score").to_pylist()
    assert any(0 < s < 1 for s in scores)  # EQ-5D index values kept their decimals


def test_parquet_input_with_proper_types_passes(files, out, tmp_path):
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT contact_id, patient_key, unit_hsa_id, "
        f"CAST(contact_date AS DATE) AS contact_date, sex, CAST(birth_year AS INTEGER) "
        f"AS birth_year, profession, contact_type, is_new_visit = '1' AS is_new_visit "
        f"FROM read_csv('{files['contacts']}', all_varchar = true)) "
        f"TO '{tmp_path / 'contacts.parquet'}' (FORMAT parquet)"
    )
    con.execute(
        f"COPY (SELECT patient_key, unit_hsa_id, CAST(date AS TIMESTAMP) AS date, instrument, "
        f"CAST(score AS DOUBLE) AS score FROM read_csv('{files['measurements']}', "
        f"all_varchar = true)) TO '{tmp_path / 'measurements.parquet'}' (FORMAT parquet)"
    )
    con.close()
    csv_report = run(dict(files), tmp_path / "from_csv")
    files["contacts"] = tmp_path / "contacts.parquet"
    files["measurements"] = tmp_path / "measurements.parquet"
    report = run(files, out)
    assert report.ok, report.errors
    for name in ("contacts", "measurements"):
        assert pq.read_table(out / f"{name}.parquet").equals(
            pq.read_table(csv_report.outputs[name].path)
        )


# ---------------------------------------------------------------------------------------------
# file-level errors


def test_ragged_rows(files, out):
    lines = files["contacts"].read_text(encoding="utf-8").splitlines()
    lines[4] += ",extra"  # file row 5
    lines[7] = lines[7].rsplit(",", 1)[0]  # file row 8, one field short
    files["contacts"].write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = run(files, out)
    assert_refused(report, out)
    ragged = errors_of(report, "row_field_count", "contacts")
    assert [e.row for e in ragged] == [5, 8]
    assert "10 fields, the header has 9" in ragged[0].message
    assert "8 fields, the header has 9" in ragged[1].message
    # The rows around them are still checked, with the right row numbers.
    edit_line = lines[10].split(",")
    edit_line[4] = "X"
    lines[10] = ",".join(edit_line)
    files["contacts"].write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = run(files, out)
    sex = errors_of(report, "value_not_allowed", "contacts")
    assert [(e.row, e.column, e.value) for e in sex] == [(11, "sex", "X")]
    assert report.row_counts["contacts"] == 40


def test_wrong_delimiter(files, out):
    rows = read_rows(files["contacts"])
    write_rows(files["contacts"], rows, delimiter="\t")
    report = run(files, out)
    assert_refused(report, out)
    (error,) = errors_of(report, "delimiter_not_detected")
    assert error.table == "contacts"
    assert error.row == 1
    assert "single column" in error.message
    assert "tab" in error.message


def test_broken_quoting(files, out):
    lines = files["diagnoses"].read_text(encoding="utf-8").splitlines()
    lines[5] = lines[5].replace(",", ',"', 1)  # file row 6: a quote opened, never closed
    files["diagnoses"].write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = run(files, out)
    assert_refused(report, out)
    (error,) = errors_of(report, "row_quoting", "diagnoses")
    assert error.row == 6
    assert error.column == "icd10_code"
    assert "quote" in error.message


def test_text_after_closing_quote(files, out):
    lines = files["procedures"].read_text(encoding="utf-8").splitlines()
    cid, code = lines[2].split(",")
    lines[2] = f'"{cid}"x,{code}'
    files["procedures"].write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = run(files, out)
    assert_refused(report, out)
    assert [e.row for e in errors_of(report, "row_quoting", "procedures")] == [3]


def test_zero_byte_file(files, out):
    files["sick_leave"].write_bytes(b"")
    report = run(files, out)
    assert_refused(report, out)
    (error,) = errors_of(report, "file_empty")
    assert error.table == "sick_leave"
    assert "0 bytes" in error.message


def test_header_only_file_is_an_empty_table(files, out):
    header = files["sick_leave"].read_text(encoding="utf-8").splitlines()[0]
    files["sick_leave"].write_text(header + "\n", encoding="utf-8")
    report = run(files, out)
    assert report.ok, report.errors
    assert report.outputs["sick_leave"].rows == 0


def test_header_missing_unknown_and_duplicate_columns(files, out):
    rows = read_rows(files["contacts"])
    for row in rows:
        del row["sex"]
        row["kommentar"] = "ok"
    write_rows(files["contacts"], rows)
    lines = files["procedures"].read_text(encoding="utf-8").splitlines()
    lines = [line + "," + line.split(",")[1] for line in lines]  # kva_code twice
    files["procedures"].write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = run(files, out)
    assert_refused(report, out)
    (missing,) = errors_of(report, "header_missing_column")
    assert (missing.table, missing.column, missing.row) == ("contacts", "sex", 1)
    (unknown,) = errors_of(report, "header_unknown_column")
    assert unknown.value == "kommentar"
    assert "contact_id" in unknown.message
    (dup,) = errors_of(report, "header_duplicate_column")
    assert dup.table == "procedures"
    assert dup.column == "kva_code"


def test_latin1_csv_names_the_first_bad_byte(files, out):
    rows = read_rows(files["contacts"])
    rows[2]["patient_key"] = "p-Åsa"  # file row 4
    with files["contacts"].open("w", encoding="latin-1", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    report = run(files, out)
    assert_refused(report, out)
    (error,) = errors_of(report, "encoding_not_utf8")
    assert error.table == "contacts"
    assert error.row == 4
    assert "line 4" in error.message
    assert "0xC5" in error.message
    assert "UTF-8" in error.message


def test_parquet_with_wrong_column_types(files, out, tmp_path):
    target = tmp_path / "contacts.parquet"
    con = duckdb.connect()
    con.execute(
        "COPY (SELECT contact_id, patient_key, unit_hsa_id, "
        "CAST(replace(contact_date, '-', '') AS BIGINT) AS contact_date, sex, birth_year, "
        "profession, contact_type, is_new_visit "
        f"FROM read_csv('{files['contacts']}', all_varchar = true)) TO '{target}' "
        "(FORMAT parquet)"
    )
    con.close()
    files["contacts"] = target
    report = run(files, out)
    assert_refused(report, out)
    (error,) = errors_of(report, "parquet_column_type")
    assert error.column == "contact_date"
    assert "BIGINT" in error.message
    assert "DATE" in error.message
    assert not errors_of(report, "date_format")  # the column is refused as a whole


def test_not_a_parquet_file(files, out):
    files["listings"].write_bytes(b"PAR1 this is not parquet")
    report = run(files, out)
    assert_refused(report, out)
    assert errors_of(report, "parquet_invalid", "listings")


def test_unknown_table_and_missing_dependency(files, out):
    report = run({"diagnoses": files["diagnoses"], "visits": files["contacts"]}, out)
    assert_refused(report, out)
    assert errors_of(report, "table_unknown")[0].table == "visits"
    assert errors_of(report, "table_requires_contacts", "diagnoses")


def test_reference_table_in_force_checks_references(files, out, tmp_path):
    first = run(files, tmp_path / "v1")
    assert first.ok
    ref = {"contacts": first.outputs["contacts"].path}
    report = run({"diagnoses": files["diagnoses"]}, out, reference_tables=ref)
    assert report.ok, report.errors
    assert set(report.outputs) == {"diagnoses"}
    edit(files["diagnoses"], 0, contact_id="K9999")
    report = run({"diagnoses": files["diagnoses"]}, tmp_path / "v3", reference_tables=ref)
    assert [e.row for e in errors_of(report, "orphan_row")] == [2]


# ---------------------------------------------------------------------------------------------
# row-level rules


def test_unknown_and_malformed_icd10_codes(files, out):
    edit(files["diagnoses"], 0, icd10_code="F32.7")  # chapter F, does not exist
    edit(files["diagnoses"], 1, icd10_code="f438b")  # ditto, lower case without the dot
    edit(files["diagnoses"], 2, icd10_code="F3")  # malformed
    edit(files["diagnoses"], 4, icd10_code="J99.9")  # outside chapter F: format only
    edit(files["sick_leave"], 0, icd10_code="F99.9X")
    report = run(files, out)
    assert_refused(report, out)
    unknown = errors_of(report, "icd10_unknown")
    assert [(e.table, e.row, e.value) for e in unknown] == [
        ("diagnoses", 2, "F32.7"),
        ("diagnoses", 3, "f438b"),
        ("sick_leave", 2, "F99.9X"),
    ]
    assert "ICD-10-SE" in unknown[0].message
    (bad,) = errors_of(report, "icd10_format")
    assert (bad.row, bad.column, bad.value) == (4, "icd10_code", "F3")
    assert report.error_count == 4


def test_chapter_f_list_is_shipped():
    codes = icd10se_chapter_f_codes()
    assert len(codes) == 534
    assert {"F32", "F32.1", "F43.8A", "F99.9"} <= codes
    assert normalise_icd10("f438a") == "F43.8A"
    assert normalise_icd10("F32") == "F32"


def test_bad_kva_codes(files, out):
    edit(files["procedures"], 0, kva_code="DU0011")
    edit(files["procedures"], 1, kva_code="D011")
    edit(files["procedures"], 2, kva_code="du118")  # lower case is accepted and stored upper
    edit(files["procedures"], 3, kva_code="ABC12")  # surgical form: three letters, two digits
    report = run(files, out)
    assert_refused(report, out)
    errors = errors_of(report, "kva_format")
    assert [(e.row, e.value) for e in errors] == [(2, "DU0011"), (3, "D011")]
    assert "DU011" in errors[0].message
    assert report.error_count == 2


def test_dates_outside_the_period(files, out):
    edit(files["contacts"], 0, contact_date="2025-04-01")
    edit(files["measurements"], 0, date="2024-12-31")
    edit(files["sick_leave"], 0, start_date="2024-10-01", end_date="2024-12-31")
    edit(files["sick_leave"], 1, start_date="2025-02-01", end_date="2025-01-31")
    edit(files["listings"], 0, month="2025-04")
    edit(files["contacts"], 1, contact_date="2025-02-30")  # not a date
    edit(files["contacts"], 2, contact_date="2025-2-03")  # not ISO
    report = run(files, out)
    assert_refused(report, out)
    outside = errors_of(report, "date_outside_period")
    assert [(e.table, e.row, e.column) for e in outside] == [
        ("contacts", 2, "contact_date"),
        ("measurements", 2, "date"),
        ("sick_leave", 2, "start_date"),
        ("listings", 2, "month"),
    ]
    assert "2025Q1 (2025-01-01 to 2025-03-31)" in outside[0].message
    assert outside[2].value == "2024-10-01 to 2024-12-31"
    assert [e.row for e in errors_of(report, "dates_reversed")] == [3]
    assert [(e.row, e.value) for e in errors_of(report, "date_format")] == [
        (3, "2025-02-30"),
        (4, "2025-2-03"),
    ]


def test_sick_leave_overlapping_the_period_is_accepted(files, out):
    edit(files["sick_leave"], 0, start_date="2024-06-01", end_date="2025-01-01")
    edit(files["sick_leave"], 1, start_date="2025-03-31", end_date="2025-12-31")
    assert run(files, out).ok


def test_duplicate_contact_ids(files, out):
    rows = read_rows(files["contacts"])
    edit(files["contacts"], 5, contact_id=rows[1]["contact_id"])
    report = run(files, out)
    assert_refused(report, out)
    (error,) = errors_of(report, "duplicate_key", "contacts")
    assert (error.row, error.column, error.value) == (7, "contact_id", rows[1]["contact_id"])
    assert "row 3" in error.message


def test_duplicate_diagnosis_in_two_spellings(files, out):
    rows = read_rows(files["diagnoses"])
    rows.append({"contact_id": rows[0]["contact_id"], "icd10_code": "j069", "rank": "3"})
    assert rows[0]["icd10_code"] == "J06.9"
    write_rows(files["diagnoses"], rows)
    report = run(files, out)
    assert_refused(report, out)
    (error,) = errors_of(report, "duplicate_key", "diagnoses")
    assert error.row == len(rows) + 1
    assert error.value == f"{rows[0]['contact_id']} / J06.9"


def test_orphan_diagnosis_and_procedure_rows(files, out):
    edit(files["diagnoses"], 3, contact_id="K9999")
    edit(files["procedures"], 0, contact_id="K9998")
    report = run(files, out)
    assert_refused(report, out)
    orphans = errors_of(report, "orphan_row")
    assert [(e.table, e.row, e.value) for e in orphans] == [
        ("diagnoses", 5, "K9999"),
        ("procedures", 2, "K9998"),
    ]
    assert "contacts" in orphans[0].message


def test_unit_not_in_registry(files, out):
    edit(files["contacts"], 0, unit_hsa_id="SE2321000099-9999")
    edit(files["listings"], 3, unit_hsa_id="SE123-X")
    report = run(files, out)
    assert_refused(report, out)
    errors = errors_of(report, "unit_unknown")
    assert [(e.table, e.row) for e in errors] == [("contacts", 2), ("listings", 5)]
    assert "registered" in errors[0].message
    assert "well-formed" not in errors[0].message
    assert "not a well-formed HSA-id" in errors[1].message
    # the same files pass when the unit is registered
    report = run(files, out, units=UNITS | {"SE2321000099-9999", "SE123-X"})
    assert report.ok


def test_other_value_rules(files, out):
    edit(files["contacts"], 0, birth_year="1850")
    edit(files["contacts"], 1, birth_year="2026")
    edit(files["contacts"], 2, is_new_visit="kanske", profession="Psykolog")
    edit(files["contacts"], 3, sex="")
    rows = read_rows(files["measurements"])
    phq = next(i for i, r in enumerate(rows) if r["instrument"] == "PHQ-9")
    eq5d = next(i for i, r in enumerate(rows) if r["instrument"] == "EQ-5D")
    edit(files["measurements"], phq, score="28")
    edit(files["measurements"], eq5d, score="1.2")
    edit(files["measurements"], 0, instrument="PHQ9")
    edit(files["measurements"], 1, patient_key="p x")
    edit(files["sick_leave"], 0, extent="30")
    edit(files["diagnoses"], 0, rank="0")
    edit(files["listings"], 0, listed="-4", age_band="15-19")
    report = run(files, out)
    assert_refused(report, out)
    got = {(e.table, e.rule, e.row, e.column) for e in report.errors}
    assert got == {
        ("contacts", "birth_year_implausible", 2, "birth_year"),
        ("contacts", "birth_year_implausible", 3, "birth_year"),
        ("contacts", "boolean_format", 4, "is_new_visit"),
        ("contacts", "value_not_allowed", 4, "profession"),
        ("contacts", "value_missing", 5, "sex"),
        ("measurements", "score_out_of_range", phq + 2, "score"),
        ("measurements", "score_out_of_range", eq5d + 2, "score"),
        ("measurements", "value_not_allowed", 2, "instrument"),
        ("measurements", "id_format", 3, "patient_key"),
        ("sick_leave", "value_not_allowed", 2, "extent"),
        ("diagnoses", "value_out_of_range", 2, "rank"),
        ("listings", "value_out_of_range", 2, "listed"),
        ("listings", "value_not_allowed", 2, "age_band"),
    }
    assert report.error_count == len(got)


def test_whole_number_scores(files, out):
    rows = read_rows(files["measurements"])
    phq = next(i for i, r in enumerate(rows) if r["instrument"] == "PHQ-9")
    edit(files["measurements"], phq, score="12.5")
    report = run(files, out)
    assert [e.rule for e in report.errors] == ["score_not_whole"]


def test_errors_are_capped_but_all_counted(files, out):
    rows = read_rows(files["contacts"])
    for row in rows:
        row["sex"] = "X"
    write_rows(files["contacts"], rows)
    report = run(files, out, max_listed_errors=10)
    assert_refused(report, out)
    assert len(report.errors) == 10
    assert report.error_count == 40 == report.error_counts["contacts"]["value_not_allowed"]
    assert report.errors_truncated
    assert [e.row for e in report.errors] == list(range(2, 12))


def test_error_report_csv(files, out, tmp_path):
    edit(files["contacts"], 0, sex="X")
    edit(files["contacts"], 1, sex="=HYPERLINK(1)")
    report = run(files, out, max_listed_errors=1)
    path = tmp_path / "errors.csv"
    write_error_report_csv(report, path)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines(), delimiter=";"))
    assert rows[0] == ["table", "row", "column", "rule", "value", "message"]
    assert rows[1][:5] == ["contacts", "2", "sex", "value_not_allowed", "X"]
    assert rows[-1][3] == "errors_truncated"
    report = run(files, out)
    write_error_report_csv(report, path)
    text = path.read_text(encoding="utf-8-sig")
    assert "'=HYPERLINK(1)" in text  # a formula is not run by a spreadsheet


# ---------------------------------------------------------------------------------------------
# direct identifiers


def assert_no_trace(value: str, report: ExtractReport, out: Path, caplog, tmp_path) -> None:
    """The raw value is nowhere: not in the report, the error CSV, out_dir, nor the logs."""
    variants = {value, value.replace("-", ""), value.replace("-", "")[-10:]}
    text = repr(report) + repr(report.to_dict())
    csv_path = tmp_path / "report.csv"
    write_error_report_csv(report, csv_path)
    text += csv_path.read_text(encoding="utf-8-sig")
    stored = all_bytes_under(out)
    for v in variants:
        assert v not in text
        assert v.encode() not in stored
        assert v not in caplog.text
        for record in caplog.records:
            assert v not in record.getMessage()


@pytest.mark.parametrize("form", ["19821105-9954", "198211059954", "821105-9954", "8211059954"])
def test_personnummer_in_patient_key_is_refused_and_never_stored(
    files, out, caplog, tmp_path, form
):
    caplog.set_level(logging.DEBUG)
    edit(files["contacts"], 4, patient_key=form)
    edit(files["measurements"], 2, patient_key=form)
    report = run(files, out)
    assert_refused(report, out)
    errors = errors_of(report, "personal_number")
    assert [(e.table, e.row, e.column) for e in errors] == [
        ("contacts", 6, "patient_key"),
        ("measurements", 4, "patient_key"),
    ]
    assert errors[0].value == mask(form)
    assert "personal identity number" in errors[0].message
    assert report.error_counts["contacts"]["personal_number"] == 1
    assert_no_trace(form, report, out, caplog, tmp_path)


def test_samordningsnummer_in_text_like_columns(files, out, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    edit(files["procedures"], 1, kva_code=SAMORDNING)  # fails the KVÅ format as well
    rows = read_rows(files["contacts"])
    for i, row in enumerate(rows):
        row["anteckning"] = f"ring {SAMORDNING} imorgon" if i == 7 else "ingen"
    write_rows(files["contacts"], rows)
    edit(files["sick_leave"], 3, patient_key=f"pnr:{SAMORDNING}")
    report = run(files, out)
    assert_refused(report, out)
    found = {(e.table, e.row, e.column) for e in errors_of(report, "personal_number")}
    assert found == {
        ("procedures", 3, "kva_code"),
        ("contacts", 9, "anteckning"),
        ("sick_leave", 5, "patient_key"),
    }
    (kva,) = errors_of(report, "kva_format")
    assert kva.value == mask(SAMORDNING)  # the format error shows it masked too
    assert_no_trace(SAMORDNING, report, out, caplog, tmp_path)


def test_personnummer_in_a_row_that_could_not_be_read(files, out, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    lines = files["contacts"].read_text(encoding="utf-8").splitlines()
    lines[3] += f",{PNR}"
    files["contacts"].write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = run(files, out)
    assert_refused(report, out)
    assert [e.row for e in errors_of(report, "row_field_count")] == [4]
    (pn,) = errors_of(report, "personal_number")
    assert pn.row == 4
    assert pn.value == mask(PNR)
    assert_no_trace(PNR, report, out, caplog, tmp_path)


def test_hsa_ids_and_org_numbers_are_not_personal_numbers(files, out):
    with shared("hsa_id_examples.csv").open(encoding="utf-8", newline="") as f:
        hsa_ids = [r["hsa_id"] for r in csv.DictReader(f)]
    with shared("personnummer_testcases.csv").open(encoding="utf-8", newline="") as f:
        org = [r for r in csv.DictReader(f) if r["type"] == "orgnr_not_personnummer"]
    org_forms = [r[k] for r in org for k in ("long_format", "separated_format")]
    assert len(hsa_ids) == 31
    assert org_forms
    rows = read_rows(files["contacts"])
    keys = hsa_ids + org_forms + [f"SE{o['long_format']}-x" for o in org]
    for i, row in enumerate(rows):
        row["unit_hsa_id"] = hsa_ids[i % len(hsa_ids)]
        row["patient_key"] = keys[i % len(keys)]
    rows[0]["contact_id"] = org_forms[0]
    rows[1]["contact_id"] = org_forms[1]
    write_rows(files["contacts"], rows)
    for name in ("measurements", "sick_leave", "listings"):
        rows = read_rows(files[name])
        for i, row in enumerate(rows):
            row["unit_hsa_id"] = hsa_ids[(i * 7) % len(hsa_ids)]
        write_rows(files[name], rows)
    diagnoses = read_rows(files["diagnoses"])
    ids = {r["contact_id"] for r in read_rows(files["contacts"])}
    write_rows(files["diagnoses"], [d for d in diagnoses if d["contact_id"] in ids])
    procedures = read_rows(files["procedures"])
    write_rows(files["procedures"], [p for p in procedures if p["contact_id"] in ids])
    report = run(files, out, units=set(hsa_ids))
    assert report.ok, report.errors
    assert report.error_count == 0


def test_holds_personal_number_against_the_reference_cases():
    with shared("personnummer_testcases.csv").open(encoding="utf-8", newline="") as f:
        cases = list(csv.DictReader(f))
    forms = ("long_format", "short_format", "separated_format", "separated_long")
    con = duckdb.connect()
    checked = 0
    for case in cases:
        expected = case["expected_valid"] == "true" and case["type"] in ("ssn", "con")
        for form in forms:
            value = case[form]
            if not value:
                continue
            assert holds_personal_number(value) is expected, (case["type"], value)
            assert holds_personal_number(f"pnr: {value}.") is expected
            assert holds_personal_number(f"x{value}") is False  # glued to a letter
            if expected:  # the SQL prefilter must never miss what Python accepts
                hit = con.execute(
                    "SELECT regexp_matches(?, ?), regexp_matches(?, ?)",
                    [value, PERSONAL_NUMBER_CANDIDATE_SQL_RE] * 2,
                ).fetchone()
                assert hit == (True, True)
            checked += 1
    assert checked > 80
    assert not holds_personal_number("p-8211059954ab")  # hex pseudonym, digits by chance
    assert not holds_personal_number("SE2321000164-7381037591383")


def test_processing_errors_carry_no_data(tmp_path):
    db = validation._Db(tmp_path / "spill")
    with pytest.raises(ExtractProcessingError) as info:
        db.run(f"SELECT CAST('{PNR}' AS INTEGER)", what="testing")
    db.close()
    assert PNR not in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__context__ is None


def test_unexpected_exception_is_wrapped_and_cleaned_up(files, out, monkeypatch, caplog):
    def boom(path: Path) -> str:
        raise RuntimeError(f"value {PNR} leaked")

    monkeypatch.setattr(validation, "_sha256", boom)
    with pytest.raises(ExtractProcessingError) as info:
        run(files, out)
    assert PNR not in str(info.value)
    assert "RuntimeError" in str(info.value)
    assert info.value.__context__ is None
    assert not out.exists()
    assert PNR not in caplog.text


def test_existing_out_dir_is_left_as_it_was_on_refusal(files, out):
    out.mkdir()
    (out / "keep.txt").write_text("mine", encoding="utf-8")
    edit(files["contacts"], 0, sex="X")
    report = run(files, out)
    assert not report.ok
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_parquet_extra_and_duplicate_columns_are_refused_and_scanned(files, out, tmp_path):
    procedures = pa.Table.from_arrays(
        [pa.array(["K0001", "K0002"]), pa.array(["DU011", "DU007"]), pa.array(["x", PNR])],
        names=["contact_id", "kva_code", "kva_code"],
    )
    pq.write_table(procedures, tmp_path / "procedures.parquet")
    files["procedures"] = tmp_path / "procedures.parquet"
    report = run(files, out)
    assert_refused(report, out)
    (dup,) = errors_of(report, "header_duplicate_column")
    assert (dup.table, dup.row, dup.column) == ("procedures", None, "kva_code")
    (pn,) = errors_of(report, "personal_number")
    assert (pn.table, pn.row, pn.value) == ("procedures", 3, mask(PNR))
    assert PNR not in repr(report)
