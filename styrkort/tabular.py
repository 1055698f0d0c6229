"""Streamed reading of tabular files (CSV and XLSX) for imports.

`open_table(path)` returns a `TableReader` that yields ``(row_number, record)`` pairs one at a
time, so that a file of any size is read with bounded memory. Row numbers are those a person
sees in a spreadsheet: the header is row 1 and the first data row is row 2. Column names are
normalised (BOM removed, stripped, lower-case); values are stripped strings.

CSV files must be UTF-8 (with or without BOM); the delimiter (``;`` or ``,``) is taken from the
header line. XLSX workbooks must have exactly one sheet and no formulas; numbers and dates are
turned into the strings a person would type (``12``, ``1.5``, ``2025-03-01``).

Problems with the file as a whole raise `FileError`. Problems with one row (a row with more
values than the header has columns, a formula in a cell) go to the reader's ``on_error``
callback as a `RowError` and the row is skipped; without a callback they raise `FileError`.
Both carry the same fields, so that callers report them alike.
"""

from __future__ import annotations

import csv
import io
import os
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import IO

from django.utils.translation import gettext as _

from styrkort.identifiers import find_personal_number, mask

# Longest physical CSV line accepted; a longer one means the file is not line-oriented text
# (or uses bare CR line endings) and would otherwise be read into memory whole.
MAX_LINE_BYTES = 1024 * 1024
# How often (in rows) the progress callback is called.
PROGRESS_EVERY = 5000
MAX_VALUE_CHARS = 100

ProgressCallback = Callable[[int, int], None]
ErrorCallback = Callable[["RowError"], None]


@dataclass(frozen=True)
class RowError:
    """One refused row (or the refused file when ``row`` is None), as reported to the user.

    ``row`` is the spreadsheet row number (header = 1), ``column`` the normalised column name
    (empty when the problem is not in one column), ``value`` the refused value (masked if it
    contains a personal identity number), ``rule`` a short stable code for the rule broken
    and ``message`` a sentence for a person saying what to do.
    """

    row: int | None
    column: str
    value: str
    rule: str
    message: str

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        where = _("row %(row)s") % {"row": self.row} if self.row is not None else _("file")
        if self.column:
            where += ", " + _("column %(column)s") % {"column": self.column}
        value = f" ({self.value!r})" if self.value else ""
        return f"{where}{value}: {self.message} [{self.rule}]"


def safe_value(value: object) -> str:
    """A refused value as it may be shown back: shortened, and masked if it holds a personal
    identity number (error reports are read by people who must not see one)."""
    text = "" if value is None else str(value)
    if find_personal_number(text):
        return mask(text)
    if len(text) > MAX_VALUE_CHARS:
        return text[: MAX_VALUE_CHARS - 1] + "…"
    return text


def row_error(row: int | None, column: str, value: object, rule: str, message: str) -> RowError:
    return RowError(row=row, column=column, value=safe_value(value), rule=rule, message=message)


class FileError(Exception):
    """The file cannot be read as a table at all (encoding, format, empty, several sheets)."""

    def __init__(
        self,
        message: str,
        *,
        row: int | None = None,
        column: str = "",
        value: object = "",
        rule: str = "file",
    ) -> None:
        super().__init__(message)
        self.error = row_error(row, column, value, rule, message)

    @property
    def message(self) -> str:
        return self.error.message


def normalise_header(name: object) -> str:
    return ("" if name is None else str(name)).replace("\ufeff", "").strip().lower()


class TableReader:
    """A lazily read table. Iterate it for ``(row_number, record)``; read ``columns`` for the
    normalised header. ``progress(done, total)`` is called every few thousand rows and at the
    end: bytes for CSV, rows for XLSX."""

    format = ""

    def __init__(
        self,
        path: Path,
        *,
        progress: ProgressCallback | None = None,
        on_error: ErrorCallback | None = None,
    ) -> None:
        self.path = Path(path)
        self.size = self.path.stat().st_size
        self.progress = progress
        self.on_error = on_error
        self.columns: list[str] = []
        self.data_rows = 0
        self.refused_rows = 0

    def __iter__(self) -> Iterator[tuple[int, dict[str, str]]]:
        raise NotImplementedError

    def _refuse_row(self, error: RowError) -> None:
        self.refused_rows += 1
        if self.on_error is None:
            raise FileError(
                error.message, row=error.row, column=error.column, value=error.value,
                rule=error.rule,
            )  # fmt: skip
        self.on_error(error)

    def _set_header(self, cells: list[str], row: int = 1) -> None:
        names = [normalise_header(c) for c in cells]
        # Trailing empty header cells come from a trailing delimiter or a formatted column.
        while names and not names[-1]:
            names.pop()
        if not names:
            raise FileError(_("The file is empty: the first row must name the columns."),
                            rule="empty_file")  # fmt: skip
        seen: set[str] = set()
        for index, name in enumerate(names):
            if not name:
                raise FileError(
                    _("Column %(n)d of the header row has no name.") % {"n": index + 1},
                    row=row, rule="header",
                )  # fmt: skip
            if name in seen:
                raise FileError(
                    _("The column %(name)s appears twice in the header row.") % {"name": name},
                    row=row, column=name, rule="header",
                )  # fmt: skip
            seen.add(name)
        self.columns = names

    def _record(self, row: int, values: list[str]) -> dict[str, str] | None:
        """The record of one data row, or None when it is blank or refused."""
        n = len(self.columns)
        if len(values) > n:
            extra = [v for v in values[n:] if v]
            if extra:
                self._refuse_row(
                    row_error(
                        row, "", extra[0], "ragged",
                        _("This row has %(got)d values but the header has %(n)d columns; check "
                          "for an extra delimiter or an unquoted value containing one.")
                        % {"got": len(values), "n": n},
                    )
                )  # fmt: skip
                return None
            values = values[:n]
        if not any(values):
            return None
        if len(values) < n:
            if self.format == "xlsx":
                values = values + [""] * (n - len(values))
            else:
                self._refuse_row(
                    row_error(
                        row, self.columns[len(values)], "", "ragged",
                        _("This row has %(got)d values but the header has %(n)d columns.")
                        % {"got": len(values), "n": n},
                    )
                )  # fmt: skip
                return None
        self.data_rows += 1
        return dict(zip(self.columns, values, strict=True))

    def _empty_check(self) -> None:
        if self.data_rows == 0 and self.refused_rows == 0:
            raise FileError(
                _("The file has a header row but no data rows."), row=2, rule="empty_file"
            )


class CsvReader(TableReader):
    format = "csv"

    def _sniff(self, raw: IO[bytes]) -> None:
        """Choose the delimiter from the header line, and refuse files without line breaks
        early (they would otherwise be read into memory as one line)."""
        head = raw.read(MAX_LINE_BYTES)
        raw.seek(0)
        ends = [i for i in (head.find(b"\n"), head.find(b"\r")) if i >= 0]
        if not ends and len(head) >= MAX_LINE_BYTES:
            raise FileError(
                _("Line 1 is longer than 1 MB. Is this really a CSV file?"),
                row=1, rule="line_too_long",
            )  # fmt: skip
        first = head[: min(ends)] if ends else head
        text = first.decode("utf-8", errors="replace")
        self.delimiter = ";" if text.count(";") >= text.count(",") else ","

    def __iter__(self) -> Iterator[tuple[int, dict[str, str]]]:
        if self.size == 0:
            raise FileError(_("The file is empty."), rule="empty_file")
        with self.path.open("rb") as raw:
            self._sniff(raw)
            # The C csv reader reading a text wrapper directly: the per-row cost is what a
            # 100 MB import is made of.
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
            reader = csv.reader(text, delimiter=self.delimiter)
            try:
                yield from self._records(reader, raw)
            except UnicodeDecodeError:
                raise self._encoding_error()
            except csv.Error as exc:
                raise FileError(
                    _("Row %(row)d cannot be read as CSV: %(error)s")
                    % {"row": reader.line_num, "error": exc},
                    row=reader.line_num, rule="csv",
                )  # fmt: skip

    def _records(self, reader, raw: IO[bytes]) -> Iterator[tuple[int, dict[str, str]]]:
        row = 0
        for values in reader:
            row += 1
            if any(values):
                self._set_header(values, row)
                break
        else:
            raise FileError(_("The file is empty."), rule="empty_file")
        columns = self.columns
        n = len(columns)
        progress = self.progress
        strip = str.strip
        for values in reader:
            row += 1
            if len(values) == n:
                if any(values):
                    self.data_rows += 1
                    yield row, dict(zip(columns, map(strip, values), strict=True))
            else:
                record = self._record(row, [v.strip() for v in values])
                if record is not None:
                    yield row, record
            if progress is not None and row % PROGRESS_EVERY == 0:
                progress(raw.tell(), self.size)
        self._empty_check()
        if progress is not None:
            progress(self.size, self.size)

    def _encoding_error(self) -> FileError:
        """Find the first line that is not UTF-8 (read again, line by line: this happens once)."""
        with self.path.open("rb") as raw:
            for line_no, line in enumerate(raw, start=1):
                if line_no == 1 and line.startswith(b"\xef\xbb\xbf"):
                    line = line[3:]
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as exc:
                    return self._line_encoding_error(line_no, line, exc)
        return FileError(_("The file is not UTF-8 text. Save it as UTF-8 and import it again."),
                         rule="encoding")  # fmt: skip

    def _header_of_first_line(self) -> list[str]:
        """The column names, read apart (the text decoder fails before any row is handed out
        when the bad byte is near the start)."""
        with self.path.open("rb") as raw:
            first = raw.readline(MAX_LINE_BYTES).removeprefix(b"\xef\xbb\xbf")
        try:
            cells = next(csv.reader([first.decode("utf-8")], delimiter=self.delimiter))
        except (UnicodeDecodeError, csv.Error, StopIteration):
            return []
        return [normalise_header(c) for c in cells]

    def _line_encoding_error(self, line_no: int, line: bytes, exc: UnicodeDecodeError) -> FileError:
        bad = line[exc.start : exc.start + 1]
        # Point at the column too: count the delimiters before the bad byte. Quoted delimiters
        # would mislead this count, so it is a hint only.
        column = ""
        columns = self.columns or self._header_of_first_line()
        if columns and line_no > 1:
            index = line[: exc.start].count(self.delimiter.encode())
            if index < len(columns):
                column = columns[index]
        text = line.decode("latin-1").strip()
        return FileError(
            _("Line %(line)d is not UTF-8 text (byte 0x%(byte)s at position %(pos)d; the file "
              "looks like Latin-1 or Windows-1252). Save the file as UTF-8 (in Excel: Save as "
              "→ CSV UTF-8) and import it again.")
            % {"line": line_no, "byte": bad.hex().upper(), "pos": exc.start + 1},
            row=line_no, column=column, value=text, rule="encoding",
        )  # fmt: skip


def _cell_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def cell_text(value: object) -> str:
    """A cell value as the string a person would type: integers without .0, dates ISO."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return format(Decimal(repr(value)), "f")
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral() else str(value)
    if isinstance(value, datetime):
        if value.time() == time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value).strip()


class XlsxReader(TableReader):
    format = "xlsx"

    def __iter__(self) -> Iterator[tuple[int, dict[str, str]]]:
        from openpyxl import load_workbook  # heavy; only needed for workbooks

        if self.size == 0:
            raise FileError(_("The file is empty."), rule="empty_file")
        try:
            workbook = load_workbook(self.path, read_only=True, data_only=False)
        except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
            raise FileError(
                _("The file cannot be read as an Excel workbook (.xlsx): %(error)s")
                % {"error": exc},
                rule="format",
            )  # fmt: skip
        try:
            yield from self._rows(workbook)
        finally:
            workbook.close()

    def _rows(self, workbook) -> Iterator[tuple[int, dict[str, str]]]:
        if len(workbook.sheetnames) != 1:
            raise FileError(
                _("The workbook has %(n)d sheets (%(names)s). An import reads one sheet: keep "
                  "the sheet with the data and delete the others.")
                % {"n": len(workbook.sheetnames), "names": ", ".join(workbook.sheetnames)},
                value=", ".join(workbook.sheetnames), rule="several_sheets",
            )  # fmt: skip
        sheet = workbook[workbook.sheetnames[0]]
        total = sheet.max_row or 0
        header_seen = False
        row = 0
        for cells in sheet.iter_rows():
            row = cells[0].row if cells and getattr(cells[0], "row", None) else row + 1
            values: list[str] = []
            formula_cells = []
            for index, cell in enumerate(cells):
                if cell.data_type == "f":
                    formula_cells.append((index, cell))
                    values.append("")
                else:
                    values.append(cell_text(cell.value))
            if not header_seen:
                if formula_cells:
                    index, cell = formula_cells[0]
                    raise FileError(
                        _("Cell %(cell)s of the header row contains a formula.")
                        % {"cell": f"{_cell_letter(index)}{row}"},
                        row=row, value=cell.value, rule="formula",
                    )  # fmt: skip
                if not any(values):
                    continue
                if row != 1:
                    raise FileError(
                        _("Row 1 must name the columns; the first filled row is row %(row)d.")
                        % {"row": row},
                        row=row, rule="header",
                    )  # fmt: skip
                self._set_header(values, row)
                header_seen = True
                continue
            if formula_cells:
                for index, cell in formula_cells:
                    column = self.columns[index] if index < len(self.columns) else ""
                    self._refuse_row(
                        row_error(
                            row, column, cell.value, "formula",
                            _("Cell %(cell)s contains a formula. Imports take values only: copy "
                              "the column and paste it as values.")
                            % {"cell": f"{_cell_letter(index)}{row}"},
                        )
                    )  # fmt: skip
                continue
            record = self._record(row, values)
            if record is not None:
                yield row, record
            if self.progress is not None and row % PROGRESS_EVERY == 0:
                self.progress(row, max(total, row))
        if not header_seen:
            raise FileError(_("The file is empty."), rule="empty_file")
        self._empty_check()
        if self.progress is not None:
            self.progress(max(total, row), max(total, row))


XLSX_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # the old binary .xls format


def open_table(
    path: str | os.PathLike,
    *,
    progress: ProgressCallback | None = None,
    on_error: ErrorCallback | None = None,
) -> TableReader:
    """A reader for a CSV or XLSX file, chosen by the file's first bytes (not its name)."""
    path = Path(path)
    with path.open("rb") as f:
        head = f.read(4)
    if head.startswith(XLSX_MAGIC):
        return XlsxReader(path, progress=progress, on_error=on_error)
    if head.startswith(OLE_MAGIC):
        raise FileError(
            _("This is an old Excel file (.xls). Save it as an Excel workbook (.xlsx) or as "
              "CSV UTF-8 and import it again."),
            rule="format",
        )  # fmt: skip
    return CsvReader(path, progress=progress, on_error=on_error)
