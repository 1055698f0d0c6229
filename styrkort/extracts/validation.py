"""Validate a pseudonymised visit-level extract and convert it to typed Parquet.

Why it is built this way:

* **Speed.** An extract holds millions of contacts. Rows are never looped over in Python: each
  file is read once by DuckDB into an in-memory table of VARCHAR columns (so a bad value can be
  reported as written, instead of failing a typed read), and each *rule family* (required
  values, formats, ranges, codes, keys, references, identifiers) is one set-wise query that
  counts every violation per rule; only when a rule is violated is a second query run to fetch
  the first examples in file order. The accepted data is then written once with
  ``COPY … (FORMAT parquet)`` with the proper types.
* **All or nothing.** Parquet is written into a temporary directory inside ``out_dir`` and
  renamed into place only when every table passed; on any failure (a refused extract or an
  exception) nothing this function created is left behind (``try``/``finally``). DuckDB's spill
  files go to the same temporary directory.
* **Direct identifiers never leave the process.** Any cell in any column that holds a Swedish
  personal identity number or co-ordination number refuses the upload. Candidates are found in
  SQL with a cheap regular expression and confirmed in Python with :mod:`styrkort.identifiers`
  (see :func:`holds_personal_number`). Every value put into a report passes through
  :func:`_shown`, which masks anything ``find_personal_number`` finds, and DuckDB's own error
  texts (which quote file lines) are never passed on: errors are classified and re-raised as
  :class:`ExtractProcessingError` without the original exception attached.

Row numbers follow the spreadsheet convention for every format: the header is row 1, so the
first data row is row 2 (for Parquet, which has no header row, the first record is also row 2,
so a file gets the same row numbers whichever format it was sent in). File-level errors that do
not concern one row have ``row = None``.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import io
import logging
import os
import re
import shutil
import tempfile
import time
import traceback
from bisect import bisect_right
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from styrkort.extracts.schema import (
    BOOLEAN_FALSE,
    BOOLEAN_TRUE,
    INSTRUMENTS,
    SCHEMA_VERSION,
    TABLE_NAMES,
    TABLES,
    Column,
    Kind,
    Table,
    icd10se_chapter_f_codes,
)
from styrkort.identifiers import (
    PERSONAL_NUMBER_RE,
    find_personal_number,
    is_personal_number,
    mask,
    validate_hsa_id,
)
from styrkort.periods import Period

__all__ = [
    "FAMILIES",
    "PERSONAL_NUMBER_CANDIDATE_SQL_RE",
    "ExtractError",
    "ExtractOutput",
    "ExtractProcessingError",
    "ExtractReport",
    "holds_personal_number",
    "validate_extract",
    "write_error_report_csv",
]

log = logging.getLogger(__name__)

# The steps reported through ``progress``: reading each file, then one query family each.
FAMILIES = ("read", "required", "formats", "ranges", "codes", "keys", "references", "identifiers")

# Candidates for holds_personal_number, a superset of what it accepts: 10 or 12 digits (century
# 18/19/20), a real month, a day 01–31 or 61–91 (samordningsnummer), an optional - or + before
# the last four, standing as a token (not glued to letters or digits). RE2 has no look-around,
# hence the (^|…) and (…|$) guards.
PERSONAL_NUMBER_CANDIDATE_SQL_RE = (
    r"(^|[^0-9A-Za-z])((18|19|20)[0-9]{2}|[0-9]{2})(0[1-9]|1[0-2])"
    r"(0[1-9]|[12][0-9]|3[01]|6[1-9]|[78][0-9]|9[01])[-+]?[0-9]{4}([^0-9A-Za-z]|$)"
)

MAX_VALUE_CHARS = 60
# Beyond this many rejected lines in one file the row-number mapping is not worth keeping;
# only the identifier scan then runs on that file's readable rows.
_MAX_TRACKED_REJECTS = 100_000
_HEADER_PROBE_BYTES = 1 << 20
_READ_ERROR_RULES = {
    "TOO MANY COLUMNS": "row_field_count",
    "MISSING COLUMNS": "row_field_count",
    "UNQUOTED VALUE": "row_quoting",
    "INVALID ENCODING": "encoding_not_utf8",
    "LINE SIZE OVER MAXIMUM": "row_too_long",
}
# Rejects after which DuckDB still reads the following rows one line per row, so row numbers
# can be reconstructed exactly. After a broken quote it may resynchronise anywhere.
_ALIGNED_REJECTS = {"TOO MANY COLUMNS", "MISSING COLUMNS", "INVALID ENCODING"}

_FORMAT_RE: dict[Kind, str] = {
    Kind.DATE: r"[0-9]{4}-[0-9]{2}-[0-9]{2}",
    Kind.MONTH: r"[0-9]{4}-(0[1-9]|1[0-2])",
    Kind.INTEGER: r"-?[0-9]{1,9}",
    Kind.DECIMAL: r"-?[0-9]{1,6}([.,][0-9]{1,6})?",
    Kind.ICD10: r"[A-Za-z][0-9]{2}(\.?[0-9][0-9A-Za-z]?)?",
    Kind.KVA: r"[A-Za-z]{2}[0-9]{3}|[A-Za-z]{3}[0-9]{2}",
}
# Kinds whose accepted values cannot hold ten digits in a row: a value that passed their format
# check cannot be a personal number, so the identifier scan skips them unless a value failed.
_STRICT_KINDS = {
    Kind.DATE,
    Kind.MONTH,
    Kind.INTEGER,
    Kind.DECIMAL,
    Kind.BOOLEAN,
    Kind.ENUM,
    Kind.ICD10,
    Kind.KVA,
    Kind.HSA_ID,  # values must be known units; unknown values are scanned
}
_FORMAT_MESSAGES: dict[Kind, str] = {
    Kind.ID: "{col} must be 1–100 characters with no spaces, tabs or line breaks.",
    Kind.DATE: "{col} must be a date written YYYY-MM-DD, e.g. 2025-01-15.",
    Kind.MONTH: "{col} must be a month written YYYY-MM, e.g. 2025-03.",
    Kind.INTEGER: "{col} must be a whole number written with digits only.",
    Kind.DECIMAL: "{col} must be a number such as 14 or 0.812 (a decimal comma is also accepted).",
    Kind.BOOLEAN: "{col} must be 1 or 0 (true/false or ja/nej are also accepted).",
    Kind.ICD10: (
        "{col} must be an ICD-10-SE code: a letter and two digits, optionally a dot and one or "
        "two more characters, e.g. F32.1 or F43.8A."
    ),
    Kind.KVA: (
        "{col} must be a KVÅ code of five characters: two letters and three digits (e.g. DU011) "
        "or three letters and two digits."
    ),
}
_FORMAT_RULES: dict[Kind, str] = {
    Kind.ID: "id_format",
    Kind.DATE: "date_format",
    Kind.MONTH: "month_format",
    Kind.INTEGER: "integer_format",
    Kind.DECIMAL: "decimal_format",
    Kind.BOOLEAN: "boolean_format",
    Kind.ENUM: "value_not_allowed",
    Kind.ICD10: "icd10_format",
    Kind.KVA: "kva_format",
}
_PN_MESSAGE = (
    "This value is a Swedish personal identity number or co-ordination number "
    "(samordningsnummer). Direct identifiers are not allowed anywhere in an extract: replace it "
    "with the pseudonymous key and upload again. The value is masked here and was not stored."
)

# Parquet input: which stored types each kind accepts (DuckDB type families).
_STRING, _INT, _FLOAT, _DEC, _DATE, _TS, _BOOL = (
    "string",
    "integer",
    "float",
    "decimal",
    "date",
    "timestamp",
    "boolean",
)
_PARQUET_ACCEPTS: dict[Kind, set[str]] = {
    Kind.ID: {_STRING, _INT},
    Kind.HSA_ID: {_STRING},
    Kind.DATE: {_STRING, _DATE, _TS},
    Kind.MONTH: {_STRING, _DATE},
    Kind.INTEGER: {_STRING, _INT},
    Kind.DECIMAL: {_STRING, _INT, _FLOAT, _DEC},
    Kind.BOOLEAN: {_STRING, _INT, _BOOL},
    Kind.ENUM: {_STRING, _INT},
    Kind.ICD10: {_STRING},
    Kind.KVA: {_STRING},
}
_PARQUET_ADVICE: dict[Kind, str] = {
    Kind.ID: "text (or an integer)",
    Kind.HSA_ID: "text",
    Kind.DATE: "DATE (or text YYYY-MM-DD)",
    Kind.MONTH: "text YYYY-MM",
    Kind.INTEGER: "an integer type (or text)",
    Kind.DECIMAL: "a number type (or text)",
    Kind.BOOLEAN: "BOOLEAN (or 0/1)",
    Kind.ENUM: "text",
    Kind.ICD10: "text",
    Kind.KVA: "text",
}


class ExtractProcessingError(RuntimeError):
    """Validation could not run (an I/O failure or a bug), as opposed to a refused extract.

    Its message names the step, never a data value: it is raised without the original
    exception attached, because DuckDB's error texts quote lines of the file.
    """


@dataclass(frozen=True)
class ExtractError:
    """One reported problem. ``value`` is masked when it is an identifier, else ≤ 60 chars."""

    table: str
    row: int | None  # header = row 1, first data row = row 2; None for file-level errors
    column: str | None
    value: str | None
    rule: str  # stable code, e.g. "icd10_unknown"
    message: str  # an English sentence saying what to do


@dataclass(frozen=True)
class ExtractOutput:
    table: str
    path: Path
    sha256: str
    rows: int


@dataclass
class ExtractReport:
    """The outcome of :func:`validate_extract`; ``ok`` means the Parquet files are in place."""

    period: str
    ok: bool
    error_count: int  # every violation, also those not listed
    error_counts: dict[str, dict[str, int]]  # table -> rule -> count
    errors: list[ExtractError]  # the first ``max_listed_errors``
    row_counts: dict[str, int]  # data rows read per table
    outputs: dict[str, ExtractOutput]  # per table, only when ok
    max_listed_errors: int = 1000

    @property
    def errors_truncated(self) -> bool:
        return self.error_count > len(self.errors)

    def counts_by_rule(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for rules in self.error_counts.values():
            for rule, n in rules.items():
                totals[rule] = totals.get(rule, 0) + n
        return totals

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, e.g. for a background job's result."""
        data = asdict(self)
        data["outputs"] = {t: {**asdict(o), "path": str(o.path)} for t, o in self.outputs.items()}
        data["errors_truncated"] = self.errors_truncated
        return data


def write_error_report_csv(report: ExtractReport, path: Path) -> None:
    """Write the listed errors as a spreadsheet-friendly CSV (UTF-8 with BOM, ``;``).

    Values that a spreadsheet would run as a formula (starting with = + - @) get a leading
    apostrophe. A last line says how many errors there were in all when not every one is listed.
    """
    with Path(path).open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f, delimiter=";")
        writer.writerow(["table", "row", "column", "rule", "value", "message"])
        for e in report.errors:
            writer.writerow(
                [
                    e.table,
                    "" if e.row is None else e.row,
                    e.column or "",
                    e.rule,
                    _spreadsheet_safe(e.value),
                    e.message,
                ]
            )
        if report.errors_truncated:
            writer.writerow(
                [
                    "",
                    "",
                    "",
                    "errors_truncated",
                    "",
                    f"{len(report.errors)} of {report.error_count} errors are listed; fix "
                    "these and upload again to see the rest.",
                ]
            )


def validate_extract(
    files: Mapping[str, Path],
    period: Period | str,
    known_units: set[str],
    out_dir: Path,
    *,
    progress: Callable[[int, int, str], None] | None = None,
    max_listed_errors: int = 1000,
    reference_tables: Mapping[str, Path] | None = None,
) -> ExtractReport:
    """Validate ``files`` (table name → CSV or Parquet path) for ``period``; convert if valid.

    On success each table is written as ``out_dir/<table>.parquet`` and listed in
    ``report.outputs`` with its SHA-256 and row count. On refusal (``report.ok`` is False) or on
    an exception nothing created by this call remains in ``out_dir``. ``out_dir`` should be a
    new directory per upload: an existing ``<table>.parquet`` there is replaced on success.

    ``reference_tables`` maps a table name to an already validated Parquet file (the version in
    force), used only to check references when that table is not part of this upload, e.g.
    the contacts when only diagnoses are re-sent.
    """
    started = time.monotonic()
    period = Period.parse(period)
    out_dir = Path(out_dir)
    created_out_dir = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".extract-", dir=out_dir))
    placed: list[Path] = []
    succeeded = False
    failure: str | None = None
    db: _Db | None = None
    try:
        try:
            db = _Db(work / "spill")
            validator = _Validator(
                db,
                files,
                period,
                known_units,
                work,
                out_dir,
                progress,
                max_listed_errors,
                reference_tables or {},
            )
            report = validator.run(placed)
            succeeded = report.ok
        except ExtractProcessingError:
            raise
        except Exception as exc:  # noqa: BLE001 - re-raised below without its text
            failure = _describe_exception(exc)
        if failure is not None:
            raise ExtractProcessingError(failure)
        log.info(
            "extract %s for %s: %d rows in %d tables, %d errors, %.1f s",
            "accepted" if report.ok else "refused",
            period,
            sum(report.row_counts.values()),
            len(report.row_counts),
            report.error_count,
            time.monotonic() - started,
        )
        return report
    finally:
        if db is not None:
            db.close()
        shutil.rmtree(work, ignore_errors=True)
        if not succeeded:
            for p in placed:
                p.unlink(missing_ok=True)
            if created_out_dir:
                shutil.rmtree(out_dir, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# helpers that keep values and DuckDB texts out of reports, logs and exceptions


def _shown(value: object) -> str | None:
    """The form of a cell value that may appear in a report: masked if it is an identifier."""
    if value is None:
        return None
    text = str(value)
    if find_personal_number(text) is not None:
        text = mask(text)
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 1] + "…"
    return text


def holds_personal_number(value: str) -> bool:
    """True if a personal identity or co-ordination number stands as a token in ``value``.

    "As a token" means not glued to a letter or digit: ``198211059954``, ``821105-9954``,
    ``pnr:821105-9954`` and ``8211059954 x`` hold one; ``p-8211059954ab`` does not. Why: random
    hexadecimal pseudonyms contain ten-digit runs that happen to pass the date and Luhn checks
    (about 3 in 10,000 twelve-character keys), and refusing those would refuse every large
    extract, while a real personal number is written as a value or word of its own.
    """
    return _token_personal_number(value) is not None


def _token_personal_number(value: str) -> str | None:
    for m in PERSONAL_NUMBER_RE.finditer(value):
        start, end = m.span()
        if start > 0 and value[start - 1].isalnum():
            continue
        if end < len(value) and value[end].isalnum():
            continue
        if is_personal_number(m.group(0)):
            return m.group(0)
    return None


def _spreadsheet_safe(value: str | None) -> str:
    if not value:
        return ""
    return "'" + value if value[0] in "=+-@\t\r" else value


def _describe_exception(exc: BaseException) -> str:
    """Where an unexpected exception happened, without its message (which may hold data)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = ""
    if frames:
        last = frames[-1]
        where = f" at {Path(last.filename).name}:{last.lineno} in {last.name}"
    text = f"extract validation failed with {type(exc).__name__}{where}"
    log.error(text)
    return text


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


class _Db:
    """A private in-memory DuckDB whose errors are classified, never passed on as text."""

    def __init__(self, spill_dir: Path) -> None:
        spill_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(
                ":memory:",
                config={
                    "temp_directory": str(spill_dir),
                    "preserve_insertion_order": True,
                    "autoinstall_known_extensions": False,
                    "autoload_known_extensions": False,
                },
            )
        except duckdb.Error as exc:
            kind = type(exc).__name__
        else:
            return
        raise ExtractProcessingError(f"could not start DuckDB ({kind})")

    def run(self, sql: str, params: list[Any] | None = None, *, what: str) -> list[tuple]:
        try:
            return self.con.execute(sql, params).fetchall()
        except duckdb.Error as exc:
            kind = type(exc).__name__
        raise ExtractProcessingError(f"DuckDB failed ({kind}) while {what}")

    def try_run(self, sql: str, *, what: str) -> tuple[list[tuple] | None, str | None]:
        """Run; on a DuckDB error return (None, error class name) instead of raising."""
        try:
            return self.con.execute(sql).fetchall(), None
        except duckdb.Error as exc:
            return None, type(exc).__name__

    def register(self, name: str, table: pa.Table) -> None:
        self.con.register(name, table)

    def unregister(self, name: str) -> None:
        self.con.unregister(name)

    def close(self) -> None:
        with contextlib.suppress(duckdb.Error):
            self.con.close()


# --------------------------------------------------------------------------------------------
# error bookkeeping


class _Errors:
    """Counts every violation per table and rule; lists the first ``cap`` of them."""

    def __init__(self, cap: int) -> None:
        self.cap = max(0, cap)
        self.listed: list[ExtractError] = []
        self.counts: dict[str, dict[str, int]] = {}

    @property
    def total(self) -> int:
        return sum(n for rules in self.counts.values() for n in rules.values())

    def room(self) -> int:
        return max(0, self.cap - len(self.listed))

    def count(self, table: str, rule: str, n: int) -> None:
        if n:
            rules = self.counts.setdefault(table, {})
            rules[rule] = rules.get(rule, 0) + n

    def add(
        self,
        table: str,
        row: int | None,
        column: str | None,
        value: object,
        rule: str,
        message: str,
    ) -> None:
        self.count(table, rule, 1)
        self.example(table, row, column, value, rule, message)

    def example(
        self,
        table: str,
        row: int | None,
        column: str | None,
        value: object,
        rule: str,
        message: str,
    ) -> None:
        """List an error already counted (if there is room)."""
        if self.room():
            self.listed.append(ExtractError(table, row, column, _shown(value), rule, message))

    def table_errors(self, table: str) -> int:
        return sum(self.counts.get(table, {}).values())


# --------------------------------------------------------------------------------------------
# a loaded table


@dataclass
class _Loaded:
    spec: Table
    sql: str  # the DuckDB table name
    columns: dict[str, str]  # schema column -> its name in the DuckDB table (checked columns)
    extras: dict[str, str]  # DuckDB name -> shown header name, for columns only scanned
    data_rows: int
    rejected_lines: list[int] = field(default_factory=list)
    rows_aligned: bool = True  # False: row numbers cannot be reconstructed after a bad quote
    format_failures: dict[str, int] = field(default_factory=dict)
    distinct: dict[tuple[str, ...], str] = field(default_factory=dict)  # columns -> table
    covered: set[str] = field(default_factory=set)  # columns proven to hold scanned values

    @property
    def row_checks(self) -> bool:
        return self.rows_aligned

    def has(self, *names: str) -> bool:
        return all(n in self.columns for n in names)

    def row_of(self, rowid: int) -> int | None:
        """File row (header = 1) of a loaded row, skipping the rows DuckDB rejected."""
        if not self.rows_aligned:
            return None
        skipped = 0
        while True:
            n = bisect_right(self.rejected_lines, rowid + 2 + skipped)
            if n == skipped:
                return rowid + 2 + skipped
            skipped = n


@dataclass(frozen=True)
class _Check:
    rule: str
    column: str | None
    violation: str  # SQL boolean, true for a violating row
    message: str | Callable[[str | None], str]
    value: str | None = None  # SQL for the value shown; default: the column
    source: tuple[str, ...] | None = None  # count over these columns' distinct values


# --------------------------------------------------------------------------------------------
# the validator


class _Validator:
    def __init__(
        self,
        db: _Db,
        files: Mapping[str, Path],
        period: Period,
        known_units: set[str],
        work: Path,
        out_dir: Path,
        progress: Callable[[int, int, str], None] | None,
        max_listed_errors: int,
        reference_tables: Mapping[str, Path],
    ) -> None:
        self.db = db
        self.files = {str(k): Path(v) for k, v in files.items()}
        self.period = period
        self.known_units = {str(u) for u in known_units}
        self.work = work
        self.out_dir = out_dir
        self.progress_cb = progress
        self.errors = _Errors(max_listed_errors)
        self.max_listed_errors = max_listed_errors
        self.reference_tables = {str(k): Path(v) for k, v in reference_tables.items()}
        self.tables = [t for t in TABLE_NAMES if t in self.files]
        self.loaded: dict[str, _Loaded] = {}
        self.row_counts: dict[str, int] = {}
        self.done = 0
        self.total = max(1, len(self.tables) * (len(FAMILIES) + 1))

    # ---- orchestration

    def step(self, message: str) -> None:
        self.done = min(self.done + 1, self.total)
        if self.progress_cb is not None:
            self.progress_cb(self.done, self.total, message)

    def run(self, placed: list[Path]) -> ExtractReport:
        if self.progress_cb is not None:
            self.progress_cb(0, self.total, "starting")
        self._check_table_set()
        self._setup_reference_data()
        for name in self.tables:
            loaded = self._read(TABLES[name], self.files[name])
            if loaded is not None:
                self.loaded[name] = loaded
                self.row_counts[name] = loaded.data_rows
            else:
                self.row_counts[name] = 0
            self.step(f"{name}: read")
        for name in self.tables:
            loaded = self.loaded.get(name)
            for family in FAMILIES[1:]:
                if loaded is not None:
                    self._run_family(family, loaded)
                self.step(f"{name}: {family}")
        outputs: dict[str, ExtractOutput] = {}
        ok = self.errors.total == 0 and len(self.loaded) == len(self.tables) > 0
        if ok:
            outputs = self._convert(placed)
        if self.progress_cb is not None:
            self.progress_cb(self.total, self.total, "accepted" if ok else "refused")
        return ExtractReport(
            period=str(self.period),
            ok=ok,
            error_count=self.errors.total,
            error_counts=self.errors.counts,
            errors=self.errors.listed,
            row_counts=self.row_counts,
            outputs=outputs,
            max_listed_errors=self.max_listed_errors,
        )

    def _check_table_set(self) -> None:
        if not self.files:
            self.errors.add(
                "",
                None,
                None,
                None,
                "no_tables",
                "The upload holds no files; send at least one of: " + ", ".join(TABLE_NAMES),
            )
        for name in self.files:
            if name not in TABLES:
                self.errors.add(
                    name,
                    None,
                    None,
                    name,
                    "table_unknown",
                    "This is not a table of the extract; the tables are: "
                    + ", ".join(TABLE_NAMES)
                    + ".",
                )
        for name in self.tables:
            for ref in TABLES[name].references:
                target = ref.target_table
                if target not in self.files and target not in self.reference_tables:
                    self.errors.add(
                        name,
                        None,
                        ref.column,
                        None,
                        "table_requires_" + target,
                        f"{name} can only be checked together with {target}: upload the "
                        f"{target} file of the same period with it.",
                    )

    def _setup_reference_data(self) -> None:
        units = pa.table({"hsa_id": pa.array(sorted(self.known_units), type=pa.string())})
        codes = pa.table({"code": pa.array(sorted(icd10se_chapter_f_codes()), type=pa.string())})
        self.db.register("_known_units_in", units)
        self.db.register("_icd_f_in", codes)
        self.db.run(
            "CREATE TEMP TABLE _known_units AS SELECT hsa_id FROM _known_units_in",
            what="loading the unit registry",
        )
        self.db.run(
            "CREATE TEMP TABLE _icd_f AS SELECT code FROM _icd_f_in",
            what="loading the ICD-10-SE chapter F list",
        )
        self.db.unregister("_known_units_in")
        self.db.unregister("_icd_f_in")
        self.db.run(
            "CREATE TEMP MACRO _icd_norm(x) AS CASE WHEN length(replace(upper(x), '.', '')) > 3 "
            "THEN substr(replace(upper(x), '.', ''), 1, 3) || '.' || "
            "substr(replace(upper(x), '.', ''), 4) ELSE replace(upper(x), '.', '') END",
            what="defining the ICD-10 normalisation",
        )
        for name, path in self.reference_tables.items():
            if name in TABLES and name not in self.files:
                self.db.run(
                    f"CREATE TEMP VIEW {_q('ref_' + name)} AS "
                    f"SELECT * FROM read_parquet({_lit(str(path))})",
                    what=f"opening the {name} version in force",
                )

    # ---- reading

    def _read(self, spec: Table, path: Path) -> _Loaded | None:
        try:
            size = path.stat().st_size if path.is_file() else -1
        except OSError:
            size = -1
        if size < 0:
            self.errors.add(
                spec.name,
                None,
                None,
                None,
                "file_missing",
                "The file could not be opened (it does not exist or is not a file).",
            )
            return None
        if size == 0:
            self.errors.add(
                spec.name,
                None,
                None,
                None,
                "file_empty",
                "The file is empty (0 bytes); it must hold at least the header row.",
            )
            return None
        with path.open("rb") as f:
            head = f.read(_HEADER_PROBE_BYTES)
        if head.startswith(b"PAR1"):
            return self._read_parquet(spec, path)
        return self._read_csv(spec, path, head, size)

    def _header_columns(
        self, spec: Table, names: list[str], header_row: int | None = 1
    ) -> tuple[dict[str, int], dict[int, str]]:
        """Check header names; return (schema column -> position, position -> extra name).

        ``header_row`` is 1 for CSV and None for Parquet, which has no header row.
        """
        known: dict[str, int] = {}
        extras: dict[int, str] = {}
        for i, raw in enumerate(names):
            name = raw.strip().lower()
            if not name:
                extras[i] = f"(column {i + 1})"
                self.errors.add(
                    spec.name,
                    header_row,
                    None,
                    None,
                    "header_empty_column",
                    f"Column {i + 1} of the header has no name; remove the empty column "
                    "(or a delimiter at the end of the header).",
                )
            elif name in known:
                extras[i] = raw
                self.errors.add(
                    spec.name,
                    header_row,
                    name,
                    None,
                    "header_duplicate_column",
                    f"The column {name} appears more than once in the header (columns "
                    f"{known[name] + 1} and {i + 1}); keep one.",
                )
            elif name not in spec.column_names:
                extras[i] = raw
                self.errors.add(
                    spec.name,
                    header_row,
                    None,
                    raw,
                    "header_unknown_column",
                    f"Column {i + 1} of the header is not a column of {spec.name}; its "
                    f"columns are: {', '.join(spec.column_names)}.",
                )
            else:
                known[name] = i
        for name in spec.column_names:
            if name not in known:
                self.errors.add(
                    spec.name,
                    header_row,
                    name,
                    None,
                    "header_missing_column",
                    f"The header has no column {name}; every column of {spec.name} must be "
                    "present (cells of optional columns may be empty).",
                )
        return known, extras

    def _read_csv(self, spec: Table, path: Path, head: bytes, size: int) -> _Loaded | None:
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            self.errors.add(
                spec.name,
                None,
                None,
                None,
                "encoding_not_utf8",
                "The file is UTF-16 encoded; save it as UTF-8 (with or without BOM).",
            )
            return None
        end = head.find(b"\n")
        if end < 0:
            if size > len(head):
                self.errors.add(
                    spec.name,
                    1,
                    None,
                    None,
                    "header_unreadable",
                    "The first line is longer than 1 MiB; this is not a CSV header row.",
                )
                return None
            end = len(head)
        line = head[:end].rstrip(b"\r")
        if line.startswith(codecs.BOM_UTF8):
            line = line[len(codecs.BOM_UTF8) :]
        try:
            header_text = line.decode("utf-8")
        except UnicodeDecodeError:
            self._encoding_error(spec, path)
            return None
        delimiter, names = self._detect_delimiter(spec, header_text)
        if delimiter is None:
            return None
        known, extras = self._header_columns(spec, names)
        sql_names: list[str] = []
        columns: dict[str, str] = {}
        extra_names: dict[str, str] = {}
        for i in range(len(names)):
            if i in extras:
                sql_name = f"_extra{i + 1}"
                extra_names[sql_name] = _shown(extras[i]) or sql_name
            else:
                sql_name = names[i].strip().lower()
                columns[sql_name] = sql_name
            sql_names.append(sql_name)
        table = f"t_{spec.name}"
        rejects = f"_rejects_{spec.name}"
        struct = "{" + ", ".join(f"{_lit(n)}: 'VARCHAR'" for n in sql_names) + "}"
        sql = (
            f"CREATE TABLE {_q(table)} AS SELECT * FROM read_csv({_lit(str(path))}, "
            f"columns = {struct}, header = true, delim = {_lit(delimiter)}, quote = '\"', "
            "escape = '\"', auto_detect = false, strict_mode = true, null_padding = false, "
            f"encoding = 'utf-8', store_rejects = true, rejects_table = {_lit(rejects)}, "
            f"rejects_scan = {_lit('_scan_' + spec.name)})"
        )
        _, failed = self.db.try_run(sql, what=f"reading {spec.name}")
        if failed is not None:
            self._diagnose_unreadable_csv(spec, path, delimiter, len(names))
            return None
        loaded_rows = self.db.run(f"SELECT count(*) FROM {_q(table)}", what="counting rows")[0][0]
        loaded = _Loaded(spec, table, columns, extra_names, loaded_rows)
        self._collect_rejects(loaded, path, rejects, sql_names)
        return loaded

    def _detect_delimiter(self, spec: Table, header: str) -> tuple[str | None, list[str]]:
        best: tuple[int, int, str, list[str]] | None = None
        for delim in (";", ","):
            names = next(csv.reader([header], delimiter=delim))
            matches = sum(1 for n in names if n.strip().lower() in spec.column_names)
            candidate = (matches, len(names), delim, names)
            if best is None or candidate[:2] > best[:2]:
                best = candidate
        assert best is not None
        matches, width, delim, names = best
        if width == 1 and len(spec.columns) > 1:
            hint = ""
            if "\t" in header:
                hint = " It looks tab-separated."
            elif "|" in header:
                hint = " It looks separated by |."
            self.errors.add(
                spec.name,
                1,
                None,
                None,
                "delimiter_not_detected",
                "The header row has a single column: separate the columns with ; or , "
                f"(the same in every row).{hint}",
            )
            return None, names
        return delim, names

    def _collect_rejects(
        self, loaded: _Loaded, path: Path, rejects: str, sql_names: list[str]
    ) -> None:
        """Report the rows DuckDB could not split into fields (bounded work on huge counts)."""
        name = loaded.spec.name
        r = _q(rejects)
        per_type = self.db.run(
            f"SELECT error_type, count(DISTINCT line) FROM {r} GROUP BY 1",
            what=f"counting the unreadable rows of {name}",
        )
        if not per_type:
            return
        total = self.db.run(f"SELECT count(DISTINCT line) FROM {r}", what="counting rows")[0][0]
        loaded.data_rows += int(total)
        types = {t for t, _ in per_type}
        loaded.rows_aligned = types <= _ALIGNED_REJECTS and total <= _MAX_TRACKED_REJECTS
        if loaded.rows_aligned:
            lines = self.db.run(
                f"SELECT DISTINCT line FROM {r} ORDER BY line", what="listing rejected rows"
            )
            loaded.rejected_lines = [int(line) for (line,) in lines]
        for error_type, n in per_type:
            rule = _READ_ERROR_RULES.get(error_type, "row_unreadable")
            if rule == "encoding_not_utf8":
                # One error naming the first bad byte says it all; the rest are counted.
                self._encoding_error(loaded.spec, path)
                self.errors.count(name, rule, int(n) - 1)
            else:
                self.errors.count(name, rule, int(n))
        width = len(sql_names)
        listed = self.db.run(
            f"SELECT line, error_type, any_value(column_idx), any_value(error_message) "
            f"FROM {r} WHERE error_type <> 'INVALID ENCODING' GROUP BY line, error_type "
            f"ORDER BY line LIMIT {int(self.errors.room())}",
            what=f"listing the unreadable rows of {name}",
        )
        for line, error_type, column_idx, error_message in listed:
            rule = _READ_ERROR_RULES.get(error_type, "row_unreadable")
            column = None
            if isinstance(column_idx, int) and 1 <= column_idx <= width:
                column = sql_names[column_idx - 1]
                if column.startswith("_extra"):
                    column = None
            self.errors.example(
                name, int(line), column, None, rule, _reject_message(rule, error_message, width)
            )
        if not loaded.rows_aligned:
            self.errors.add(
                name,
                None,
                None,
                None,
                "rows_unaligned",
                "After the broken row(s) above the file could not be split into rows reliably, "
                "so the other checks of this file were not run; fix the file and upload again.",
            )
        # An identifier in a row that could not be read still refuses the file, and must be
        # reported (masked) as such.
        candidates = self.db.run(
            f"SELECT DISTINCT line, csv_line FROM {r} "
            f"WHERE regexp_matches(csv_line, {_lit(PERSONAL_NUMBER_CANDIDATE_SQL_RE)}) "
            "ORDER BY line",
            what=f"scanning the unreadable rows of {name}",
        )
        for line, text in candidates:
            found = _token_personal_number(text or "")
            if found is not None:
                self.errors.add(name, int(line), None, found, "personal_number", _PN_MESSAGE)

    def _encoding_error(self, spec: Table, path: Path) -> None:
        where = _first_invalid_utf8(path)
        if where is None:
            message = "The file is not valid UTF-8; save it as UTF-8 (with or without BOM)."
            self.errors.add(spec.name, None, None, None, "encoding_not_utf8", message)
            return
        line, byte = where
        latin = bytes([byte]).decode("latin-1")
        message = (
            f"The file is not UTF-8: line {line} holds the byte 0x{byte:02X}, which is not "
            f"valid UTF-8 (in Latin-1/Windows-1252 it is {latin!r}, so the file was probably "
            "saved as Latin-1). Save it as UTF-8 (with or without BOM) and upload it again."
        )
        self.errors.add(spec.name, line, None, None, "encoding_not_utf8", message)

    def _diagnose_unreadable_csv(self, spec: Table, path: Path, delimiter: str, width: int) -> None:
        """DuckDB refused the file outright; find the first bad row with Python's csv module."""
        rule, line, message = (
            "file_unreadable",
            None,
            (
                "The file could not be read as CSV (with the delimiter "
                f"{delimiter!r} and double quotes); check that every line ends the same way and "
                "that quotes are balanced."
            ),
        )
        with path.open("rb") as raw:
            head = raw.read(_HEADER_PROBE_BYTES)
        crlf, lf = head.count(b"\r\n"), head.count(b"\n")
        if 0 < crlf < lf:
            message = (
                "The file mixes line ends (some lines end with CR LF, others with LF only); "
                "save it again so that every line ends the same way."
            )
            self.errors.add(spec.name, None, None, None, rule, message)
            return
        try:
            with path.open("rb") as raw:
                text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
                reader = csv.reader(text, delimiter=delimiter, strict=True)
                try:
                    for fields in reader:
                        if len(fields) != width and fields:
                            rule, line = "row_field_count", reader.line_num
                            message = (
                                f"This row has {len(fields)} fields, the header has {width}: a "
                                "value holding the delimiter must be quoted, and no field may "
                                "be missing or extra."
                            )
                            break
                except csv.Error:
                    rule, line = "row_quoting", reader.line_num
                    message = (
                        "A quoted value on or before this line is not closed properly; write a "
                        'quote inside a quoted value as "".'
                    )
        except UnicodeDecodeError:
            self._encoding_error(spec, path)
            return
        self.errors.add(spec.name, line, None, None, rule, message)

    def _read_parquet(self, spec: Table, path: Path) -> _Loaded | None:
        try:
            schema = pq.read_schema(path)
            names = list(schema.names)
        except (pa.ArrowException, OSError):
            names = None
        described = None
        if names is not None:
            described, _ = self.db.try_run(
                f"DESCRIBE SELECT * FROM read_parquet({_lit(str(path))})",
                what=f"reading the schema of {spec.name}",
            )
        if names is None or described is None or len(described) != len(names):
            self.errors.add(
                spec.name,
                None,
                None,
                None,
                "parquet_invalid",
                "The file starts like Parquet but could not be read as a Parquet file.",
            )
            return None
        known, extras = self._header_columns(spec, names, None)
        select: list[str] = []
        columns: dict[str, str] = {}
        extra_names: dict[str, str] = {}
        for i, (duck_name, duck_type, *_rest) in enumerate(described):
            source = _q(duck_name)
            family = _type_family(str(duck_type))
            if i in extras:
                sql_name = f"_extra{i + 1}"
                extra_names[sql_name] = _shown(extras[i]) or sql_name
                select.append(f"TRY_CAST({source} AS VARCHAR) AS {_q(sql_name)}")
                continue
            column = spec.column(names[i].strip().lower())
            if family not in _PARQUET_ACCEPTS[column.kind]:
                self.errors.add(
                    spec.name,
                    None,
                    column.name,
                    None,
                    "parquet_column_type",
                    f"The column {column.name} is stored as {duck_type} in the Parquet file; "
                    f"store it as {_PARQUET_ADVICE[column.kind]}.",
                )
                sql_name = f"_extra{i + 1}"
                extra_names[sql_name] = column.name
                select.append(f"TRY_CAST({source} AS VARCHAR) AS {_q(sql_name)}")
                continue
            columns[column.name] = column.name
            select.append(f"{_parquet_to_text(source, family, column.kind)} AS {_q(column.name)}")
        table = f"t_{spec.name}"
        _, failed = self.db.try_run(
            f"CREATE TABLE {_q(table)} AS SELECT {', '.join(select)} "
            f"FROM read_parquet({_lit(str(path))})",
            what=f"reading {spec.name}",
        )
        if failed is not None:
            self.errors.add(
                spec.name,
                None,
                None,
                None,
                "parquet_invalid",
                "The Parquet file could not be read to the end (it may be truncated or "
                "corrupt); write it again and upload it.",
            )
            return None
        rows = self.db.run(f"SELECT count(*) FROM {_q(table)}", what="counting rows")[0][0]
        return _Loaded(spec, table, columns, extra_names, rows)

    # ---- rule families

    def _run_family(self, family: str, loaded: _Loaded) -> None:
        if family == "identifiers":
            self._identifiers(loaded)
            return
        if not loaded.row_checks:
            return
        if family == "required":
            self._run_checks(loaded, self._required_checks(loaded), family)
        elif family == "formats":
            self._run_checks(loaded, self._format_checks(loaded), family)
        elif family == "ranges":
            self._run_checks(loaded, self._range_checks(loaded), family)
        elif family == "codes":
            self._run_checks(loaded, self._code_checks(loaded), family)
        elif family == "keys":
            self._keys(loaded)
        elif family == "references":
            self._references(loaded)

    def _distinct(self, loaded: _Loaded, columns: tuple[str, ...]) -> str:
        """A table of the distinct values (with their row counts) of ``columns``.

        Most columns hold few distinct values (dates, codes, units, enumerations), so their
        rules are evaluated once per distinct value instead of once per row: one GROUP BY per
        column replaces a regular expression per row, and every later rule on the column is
        free.
        """
        name = loaded.distinct.get(columns)
        if name is None:
            name = f"_d_{loaded.spec.name}_{len(loaded.distinct)}"
            cols = ", ".join(_q(c) for c in columns)
            self.db.run(
                f"CREATE TEMP TABLE {_q(name)} AS SELECT {cols}, count(*) AS _n "
                f"FROM {_q(loaded.sql)} GROUP BY {cols}",
                what=f"profiling {', '.join(columns)} of {loaded.spec.name}",
            )
            loaded.distinct[columns] = name
        return name

    def _run_checks(self, loaded: _Loaded, checks: list[_Check], family: str) -> None:
        """Count every check with one query per source; fetch examples only for violations."""
        by_source: dict[tuple[str, ...] | None, list[_Check]] = {}
        for check in checks:
            by_source.setdefault(check.source, []).append(check)
        name = loaded.spec.name
        t = _q(loaded.sql)
        for source, group in by_source.items():
            if source is None:
                sql = ", ".join(f"count(*) FILTER (WHERE {c.violation})" for c in group)
                sql = f"SELECT {sql} FROM {t}"
            else:
                sql = ", ".join(f"coalesce(sum(_n) FILTER (WHERE {c.violation}), 0)" for c in group)
                sql = f"SELECT {sql} FROM {_q(self._distinct(loaded, source))}"
            counts = self.db.run(sql, what=f"checking {family} of {name}")[0]
            for check, n in zip(group, counts, strict=True):
                if n:
                    self._report_check(loaded, check, int(n), family)

    def _report_check(self, loaded: _Loaded, check: _Check, n: int, family: str) -> None:
        name = loaded.spec.name
        self.errors.count(name, check.rule, n)
        if family in ("formats", "codes") and check.column is not None:
            loaded.format_failures[check.column] = loaded.format_failures.get(check.column, 0) + n
        room = self.errors.room()
        if not room:
            return
        value_sql = check.value or (_q(check.column) if check.column else "NULL")
        examples = self.db.run(
            f"SELECT rowid, CAST({value_sql} AS VARCHAR) FROM {_q(loaded.sql)} "
            f"WHERE {check.violation} ORDER BY rowid LIMIT {int(room)}",
            what=f"listing {check.rule} in {name}",
        )
        for rowid, value in examples:
            message = check.message(value) if callable(check.message) else check.message
            row = loaded.row_of(rowid)
            self.errors.example(name, row, check.column, value, check.rule, message)

    def _required_checks(self, loaded: _Loaded) -> list[_Check]:
        checks = []
        for c in loaded.spec.columns:
            if c.required and loaded.has(c.name):
                checks.append(
                    _Check(
                        "value_missing",
                        c.name,
                        f"{_q(c.name)} IS NULL",
                        f"{c.name} is required; this cell is empty.",
                        source=_source(c),
                    )
                )
        return checks

    def _format_checks(self, loaded: _Loaded) -> list[_Check]:
        checks = []
        for c in loaded.spec.columns:
            if not loaded.has(c.name) or c.kind is Kind.HSA_ID:
                continue
            if c.kind is Kind.ENUM:
                message = f"{c.name} must be one of {', '.join(c.allowed)} (exact spelling)."
            else:
                message = _FORMAT_MESSAGES[c.kind].format(col=c.name)
            checks.append(
                _Check(
                    _FORMAT_RULES[c.kind],
                    c.name,
                    f"{_q(c.name)} IS NOT NULL AND NOT ({_format_ok_sql(c)})",
                    message,
                    source=_source(c),
                )
            )
        return checks

    def _range_checks(self, loaded: _Loaded) -> list[_Check]:
        spec, p = loaded.spec, self.period
        start, end = _lit(p.start.isoformat()), _lit(p.end.isoformat())
        span = f"{p} ({p.start.isoformat()} to {p.end.isoformat()})"
        checks: list[_Check] = []
        for name in spec.dates_inside_period:
            if loaded.has(name):
                checks.append(
                    _Check(
                        "date_outside_period",
                        name,
                        f"{_ok(spec.column(name))} AND TRY_CAST({_q(name)} AS DATE) "
                        f"NOT BETWEEN {start} AND {end}",
                        f"{name} lies outside the declared period {span}; send only rows of "
                        "the period, or declare the right period.",
                        source=(name,),
                    )
                )
        if spec.overlap_period and loaded.has(*spec.overlap_period):
            s_name, e_name = spec.overlap_period
            s_ok, e_ok = _ok(spec.column(s_name)), _ok(spec.column(e_name))
            s, e = f"TRY_CAST({_q(s_name)} AS DATE)", f"TRY_CAST({_q(e_name)} AS DATE)"
            both = f"{_q(s_name)} || ' to ' || {_q(e_name)}"
            checks.append(
                _Check(
                    "dates_reversed",
                    s_name,
                    f"{s_ok} AND {e_ok} AND {s} > {e}",
                    f"{s_name} is after {e_name}; the period must start on or before its end.",
                    value=both,
                    source=spec.overlap_period,
                )
            )
            checks.append(
                _Check(
                    "date_outside_period",
                    s_name,
                    f"{s_ok} AND {e_ok} AND {s} <= {e} AND ({s} > {end} OR {e} < {start})",
                    f"The period {s_name}–{e_name} does not overlap the declared period {span}; "
                    "send only periods that are (partly) in force during it.",
                    value=both,
                    source=spec.overlap_period,
                )
            )
        month = spec.month_inside_period
        if month and loaded.has(month):
            months = ", ".join(_lit(str(m)) for m in p.months())
            checks.append(
                _Check(
                    "date_outside_period",
                    month,
                    f"{_ok(spec.column(month))} AND {_q(month)} NOT IN ({months})",
                    f"{month} lies outside the declared period {span}.",
                    source=(month,),
                )
            )
        for c in spec.columns:
            if c.kind is Kind.INTEGER and loaded.has(c.name):
                check = self._integer_range(c)
                if check is not None:
                    checks.append(check)
        if spec.score and loaded.has(*spec.score):
            checks.extend(self._score_checks(spec))
        return checks

    def _integer_range(self, c: Column) -> _Check | None:
        low = c.minimum
        high = self.period.end.year if c.max_is_period_year else c.maximum
        if low is None and high is None:
            return None
        value = f"TRY_CAST({_q(c.name)} AS BIGINT)"
        bounds = []
        if low is not None:
            bounds.append(f"{value} < {int(low)}")
        if high is not None:
            bounds.append(f"{value} > {int(high)}")
        if c.max_is_period_year:
            rule = "birth_year_implausible"
            message = (
                f"{c.name} must lie between {low} and the period's year {high}; check that it "
                "is a year of birth, not an age or a date."
            )
        else:
            rule = "value_out_of_range"
            message = f"{c.name} must lie between {low} and {high}."
        return _Check(
            rule, c.name, f"{_ok(c)} AND ({' OR '.join(bounds)})", message, source=(c.name,)
        )

    def _score_checks(self, spec: Table) -> list[_Check]:
        assert spec.score is not None
        inst_name, score_name = spec.score
        score_ok = _ok(spec.column(score_name))
        value = f"TRY_CAST(replace({_q(score_name)}, ',', '.') AS DOUBLE)"
        checks = []
        for inst in INSTRUMENTS.values():
            is_inst = f"{_q(inst_name)} = {_lit(inst.code)} AND {score_ok}"
            checks.append(
                _Check(
                    "score_out_of_range",
                    score_name,
                    f"{is_inst} AND ({value} < {inst.minimum} OR {value} > {inst.maximum})",
                    f"A {inst.code} score must lie between {_num(inst.minimum)} and "
                    f"{_num(inst.maximum)}.",
                    source=spec.score,
                )
            )
            if inst.whole:
                checks.append(
                    _Check(
                        "score_not_whole",
                        score_name,
                        f"{is_inst} AND {value} <> floor({value})",
                        f"A {inst.code} score is a whole number.",
                        source=spec.score,
                    )
                )
        return checks

    def _code_checks(self, loaded: _Loaded) -> list[_Check]:
        checks: list[_Check] = []
        for c in loaded.spec.columns:
            if not loaded.has(c.name):
                continue
            col = _q(c.name)
            if c.kind is Kind.HSA_ID:
                checks.append(
                    _Check(
                        "unit_unknown",
                        c.name,
                        f"{col} IS NOT NULL AND {col} NOT IN (SELECT hsa_id FROM _known_units)",
                        _unit_message,
                        source=(c.name,),
                    )
                )
            elif c.kind is Kind.ICD10:
                checks.append(
                    _Check(
                        "icd10_unknown",
                        c.name,
                        f"{_ok(c)} AND upper({col}) LIKE 'F%' AND "
                        f"_icd_norm({col}) NOT IN (SELECT code FROM _icd_f)",
                        f"{c.name} is in chapter F but is not an ICD-10-SE code; check the "
                        "code against the current ICD-10-SE (e.g. F32.1, F43.8A).",
                        source=(c.name,),
                    )
                )
        return checks

    def _key_sql(self, loaded: _Loaded, c: Column) -> str:
        """The key expression of a column: normalised codes, but only when it matters.

        Grouping on the raw text is much cheaper than on a normalising expression, and gives
        the same groups unless two spellings of one code occur (``F32.1`` and ``F321``).
        """
        norm = _key_norm_sql(c)
        if norm == _q(c.name):
            return norm
        distinct = _q(self._distinct(loaded, (c.name,)))
        spellings, codes = self.db.run(
            f"SELECT count(*), count(DISTINCT {norm}) FROM {distinct} WHERE {_q(c.name)} "
            "IS NOT NULL",
            what=f"comparing spellings of {c.name}",
        )[0]
        return norm if spellings != codes else _q(c.name)

    def _keys(self, loaded: _Loaded) -> None:
        spec = loaded.spec
        if not loaded.has(*spec.key):
            return
        t = _q(loaded.sql)
        exprs = [self._key_sql(loaded, spec.column(k)) for k in spec.key]
        not_null = " AND ".join(f"{_q(k)} IS NOT NULL" for k in spec.key)
        group = ", ".join(exprs)
        # Fast path: distinct 64-bit hashes are cheaper to count than distinct strings, and as
        # many distinct hashes as rows proves the keys distinct. Only when hashes coincide
        # (duplicates, or a collision) is the exact count run.
        n = self.db.run(
            f"SELECT count(*) - count(DISTINCT hash({group})) FROM {t} WHERE {not_null}",
            what=f"checking the key of {spec.name}",
        )[0][0]
        if n:
            n = self.db.run(
                f"SELECT (SELECT count(*) FROM {t} WHERE {not_null}) - "
                f"(SELECT count(*) FROM (SELECT DISTINCT {group} FROM {t} WHERE {not_null}))",
                what=f"counting duplicate keys of {spec.name}",
            )[0][0]
        if not n:
            return
        rule, column = "duplicate_key", ", ".join(spec.key)
        self.errors.count(spec.name, rule, int(n))
        room = self.errors.room()
        if not room:
            return
        shown = " || ' / ' || ".join(exprs)
        examples = self.db.run(
            f"SELECT rowid, first_rowid, value FROM (SELECT rowid, "
            f"min(rowid) OVER (PARTITION BY {group}) AS first_rowid, {shown} AS value "
            f"FROM {t} WHERE {not_null}) WHERE rowid <> first_rowid ORDER BY rowid "
            f"LIMIT {int(room)}",
            what=f"listing duplicate keys of {spec.name}",
        )
        for rowid, first_rowid, value in examples:
            first = loaded.row_of(first_rowid)
            where = f" as row {first}" if first is not None else " as an earlier row"
            message = (
                f"The key ({column}) must be unique, and this row has the same{where}; remove "
                "the duplicate or correct the key."
            )
            self.errors.example(spec.name, loaded.row_of(rowid), column, value, rule, message)

    def _references(self, loaded: _Loaded) -> None:
        spec = loaded.spec
        for ref in spec.references:
            if not loaded.has(ref.column):
                continue
            target = self.loaded.get(ref.target_table)
            if target is not None:
                if not (target.row_checks and target.has(ref.target_column)):
                    continue  # the target's own errors are reported; orphans would mislead
                target_sql = _q(target.sql)
            elif ref.target_table in self.reference_tables:
                target_sql = _q("ref_" + ref.target_table)
            else:
                continue
            col = _q(ref.column)
            check = _Check(
                "orphan_row",
                ref.column,
                f"{col} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {target_sql} AS x "
                f"WHERE x.{_q(ref.target_column)} = {_q(loaded.sql)}.{col})",
                f"{ref.column} matches no {ref.target_column} in {ref.target_table}; every "
                f"row of {spec.name} must belong to a row of {ref.target_table} in the same "
                "extract.",
            )
            before = self.errors.table_errors(spec.name)
            self._run_checks(loaded, [check], "references")
            if target is not None and self.errors.table_errors(spec.name) == before:
                # Every value is one of the target's, which the identifier scan covers.
                loaded.covered.add(ref.column)

    def _identifiers(self, loaded: _Loaded) -> None:
        """Refuse personal identity numbers in any column: find in SQL, confirm in Python."""
        name = loaded.spec.name
        rows_scan: dict[str, str] = {}  # DuckDB column -> shown column name; scanned per row
        distinct_scan: list[str] = []  # strict columns with failures: scan distinct values
        for c in loaded.spec.columns:
            if not loaded.has(c.name) or c.name in loaded.covered:
                continue
            if c.kind not in _STRICT_KINDS or not loaded.row_checks:
                rows_scan[c.name] = c.name
            elif loaded.format_failures.get(c.name):
                distinct_scan.append(c.name)
        rows_scan.update(loaded.extras)
        pattern = _lit(PERSONAL_NUMBER_CANDIDATE_SQL_RE)
        selects = [
            f"SELECT DISTINCT {_lit(col)} AS col, {_q(col)} AS value FROM {_q(loaded.sql)} "
            f"WHERE length({_q(col)}) >= 10 AND regexp_matches({_q(col)}, {pattern})"
            for col in rows_scan
        ] + [
            f"SELECT {_lit(col)} AS col, {_q(col)} AS value "
            f"FROM {_q(self._distinct(loaded, (col,)))} "
            f"WHERE length({_q(col)}) >= 10 AND regexp_matches({_q(col)}, {pattern})"
            for col in distinct_scan
        ]
        if not selects:
            return
        candidates = self.db.run(
            " UNION ALL ".join(selects), what=f"scanning {name} for identifiers"
        )
        hits: dict[str, list[str]] = {}
        for col, value in candidates:
            if value is not None and holds_personal_number(value):
                hits.setdefault(col, []).append(value)
        del candidates
        shown = {**{c: c for c in distinct_scan}, **rows_scan}
        for col, values in hits.items():
            self.db.register("_pn_values", pa.table({"value": pa.array(values, pa.string())}))
            try:
                where = f"{_q(col)} IN (SELECT value FROM _pn_values)"
                n = self.db.run(
                    f"SELECT count(*) FROM {_q(loaded.sql)} WHERE {where}",
                    what="counting identifiers",
                )[0][0]
                self.errors.count(name, "personal_number", int(n))
                room = self.errors.room()
                if room:
                    rows = self.db.run(
                        f"SELECT rowid, {_q(col)} FROM {_q(loaded.sql)} WHERE {where} "
                        f"ORDER BY rowid LIMIT {int(room)}",
                        what="listing identifiers",
                    )
                    for rowid, value in rows:
                        self.errors.example(
                            name,
                            loaded.row_of(rowid),
                            shown[col],
                            mask(value),
                            "personal_number",
                            _PN_MESSAGE,
                        )
            finally:
                self.db.unregister("_pn_values")

    # ---- conversion

    def _convert(self, placed: list[Path]) -> dict[str, ExtractOutput]:
        staged: list[tuple[str, Path, str, int]] = []
        for name in self.tables:
            loaded = self.loaded[name]
            select = ", ".join(f"{_typed_sql(c)} AS {_q(c.name)}" for c in loaded.spec.columns)
            target = self.work / f"{name}.parquet"
            metadata = (
                f"{{styrkort_schema_version: {_lit(SCHEMA_VERSION)}, "
                f"styrkort_table: {_lit(name)}, styrkort_period: {_lit(str(self.period))}}}"
            )
            self.db.run(
                f"COPY (SELECT {select} FROM {_q(loaded.sql)}) TO {_lit(str(target))} "
                f"(FORMAT parquet, KV_METADATA {metadata})",
                what=f"writing {name} as Parquet",
            )
            staged.append((name, target, _sha256(target), loaded.data_rows))
            self.step(f"{name}: converted")
        outputs: dict[str, ExtractOutput] = {}
        for name, staged_path, digest, rows in staged:
            final = self.out_dir / f"{name}.parquet"
            os.replace(staged_path, final)
            placed.append(final)
            outputs[name] = ExtractOutput(name, final, digest, rows)
        return outputs


# --------------------------------------------------------------------------------------------
# SQL building blocks per column kind


def _format_ok_sql(c: Column) -> str:
    col = _q(c.name)
    if c.kind is Kind.ENUM:
        return f"{col} IN ({', '.join(_lit(v) for v in c.allowed)})"
    if c.kind is Kind.BOOLEAN:
        values = ", ".join(_lit(v) for v in BOOLEAN_TRUE + BOOLEAN_FALSE)
        return f"lower({col}) IN ({values})"
    if c.kind is Kind.HSA_ID:
        return "true"
    if c.kind is Kind.ID:
        # strpos is several times cheaper than a regular expression on millions of keys
        return f"length({col}) <= 100 AND " + " AND ".join(
            f"strpos({col}, chr({code})) = 0" for code in (32, 9, 10, 13)
        )
    ok = f"regexp_full_match({col}, {_lit(_FORMAT_RE[c.kind])})"
    if c.kind is Kind.DATE:
        ok += f" AND TRY_CAST({col} AS DATE) IS NOT NULL"
    return ok


def _ok(c: Column) -> str:
    """SQL: the cell is present and well-formed (guards range checks against bad values)."""
    return f"({_q(c.name)} IS NOT NULL AND {_format_ok_sql(c)})"


def _source(c: Column) -> tuple[str, ...] | None:
    """Columns with few distinct values are checked per distinct value, IDs per row."""
    return None if c.kind is Kind.ID else (c.name,)


def _key_norm_sql(c: Column) -> str:
    col = _q(c.name)
    if c.kind is Kind.ICD10:
        return f"_icd_norm({col})"
    if c.kind is Kind.KVA:
        return f"upper({col})"
    return col


def _typed_sql(c: Column) -> str:
    col = _q(c.name)
    kind = c.kind
    if kind is Kind.DATE:
        return f"CAST({col} AS DATE)"
    if kind is Kind.INTEGER or (kind is Kind.ENUM and c.parquet_type_override):
        return f"CAST({col} AS {c.parquet_type})"
    if kind is Kind.DECIMAL:
        return f"CAST(replace({col}, ',', '.') AS DOUBLE)"
    if kind is Kind.BOOLEAN:
        true = ", ".join(_lit(v) for v in BOOLEAN_TRUE)
        false = ", ".join(_lit(v) for v in BOOLEAN_FALSE)
        return (
            f"CASE WHEN lower({col}) IN ({true}) THEN true "
            f"WHEN lower({col}) IN ({false}) THEN false END"
        )
    if kind is Kind.ICD10:
        return f"_icd_norm({col})"
    if kind is Kind.KVA:
        return f"upper({col})"
    return f"CAST({col} AS VARCHAR)"


def _type_family(duck_type: str) -> str:
    t = duck_type.upper()
    if t in ("VARCHAR", "STRING", "TEXT") or t.startswith("VARCHAR"):
        return _STRING
    if t in (
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
        "UHUGEINT",
    ):
        return _INT
    if t in ("FLOAT", "DOUBLE", "REAL"):
        return _FLOAT
    if t.startswith("DECIMAL"):
        return _DEC
    if t == "DATE":
        return _DATE
    if t.startswith("TIMESTAMP") and "TIME ZONE" not in t:
        return _TS
    if t == "BOOLEAN":
        return _BOOL
    return t.lower()


def _parquet_to_text(source: str, family: str, kind: Kind) -> str:
    """A Parquet column as the text the CSV path would have seen, so one set of rules applies."""
    if family == _TS:
        # Midnight timestamps are dates; others keep their time and fail the date format.
        return (
            f"CASE WHEN CAST({source} AS TIME) = TIME '00:00:00' "
            f"THEN CAST(CAST({source} AS DATE) AS VARCHAR) ELSE CAST({source} AS VARCHAR) END"
        )
    if family == _DATE and kind is Kind.MONTH:
        return (
            f"CASE WHEN day({source}) = 1 THEN strftime({source}, '%Y-%m') "
            f"ELSE CAST({source} AS VARCHAR) END"
        )
    if family == _BOOL:
        return f"CASE WHEN {source} THEN '1' WHEN NOT {source} THEN '0' END"
    return f"NULLIF(CAST({source} AS VARCHAR), '')"  # an empty cell is missing, as in CSV


def _reject_message(rule: str, error_message: str | None, width: int) -> str:
    """Our own sentence for a DuckDB reject; only the field count is taken from its text."""
    if rule == "row_field_count":
        found = re.search(r"Found: (\d+)", error_message or "")
        count = f"{found.group(1)} fields" if found else "a different number of fields"
        return (
            f"This row has {count}, the header has {width}: a value holding the delimiter must "
            "be quoted, and no field may be missing or extra."
        )
    if rule == "row_quoting":
        return (
            "A quoted value on this row is not closed properly (a quote opened but not closed, "
            'or text after the closing quote); write a quote inside a quoted value as "".'
        )
    if rule == "row_too_long":
        return "This row is longer than DuckDB's line limit (2 MiB)."
    return "This row could not be read as CSV."


def _unit_message(value: str | None) -> str:
    try:
        validate_hsa_id(value or "")
    except ValueError:
        return (
            "unit_hsa_id is not a well-formed HSA-id (SE, a ten-digit organisation number, a "
            "hyphen and a suffix, e.g. SE2321000016-12ZX) and not a registered unit."
        )
    return (
        "unit_hsa_id is not a care unit registered in Styrkort; register the unit first or "
        "correct the HSA-id."
    )


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _first_invalid_utf8(path: Path) -> tuple[int, int] | None:
    """(line, byte) of the first byte that is not valid UTF-8, or None if the file is valid."""
    line = 1
    pending = b""
    with path.open("rb") as f:
        while True:
            chunk = f.read(1 << 20)
            buf = pending + chunk
            if not buf:
                return None
            try:
                buf.decode("utf-8")
            except UnicodeDecodeError as exc:
                if chunk and exc.reason == "unexpected end of data" and exc.start >= len(buf) - 3:
                    line += buf.count(b"\n", 0, exc.start)
                    pending = buf[exc.start :]
                    continue
                return line + buf.count(b"\n", 0, exc.start), buf[exc.start]
            if not chunk:
                return None
            line += buf.count(b"\n")
            pending = b""
