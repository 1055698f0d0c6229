"""Reading SCB population per län, the basis of the national split of a state grant.

Why: the national distribution (e.g. 496 MSEK in 2025) is "utifrån befolkningsmängd" from
SCB's figures at a reference date. An analyst uploads that file; a wrong or incomplete file
must be refused as a whole, with every problem listed (row, column, value, rule) so it can be
fixed in one go rather than one error per upload.

Accepted format (as SCB's län table, e.g. ``population_lan_2024-12-31.csv``): UTF-8 with or
without BOM, ``,`` or ``;`` as separator (chosen from the header line), a header row with a
län code column (``lan_code``; also ``län``, ``lan``, ``region``, ``länskod``) and a population
column (``population``; also ``folkmängd``, ``befolkning``, ``antal``); other columns are
ignored. Codes are two digits (``"01"``); a one-digit code (``"1"``, leading zero lost in a
spreadsheet) and PxWeb's ``"18 Örebro län"`` are read as their two-digit code. Populations are
non-negative whole numbers, optionally grouped with spaces (``"2 473 307"``).
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LAN", "PopulationFileError", "RowError", "parse_population_csv"]

# The 21 län (counties, one region each): code -> name.
# Source: SCB's län codes, as in the project's reference data ../shared/data/regions.csv
# (columns lan_code, lan_name); copied here because ../shared is not shipped with the product.
LAN: dict[str, str] = {
    "01": "Stockholms län",
    "03": "Uppsala län",
    "04": "Södermanlands län",
    "05": "Östergötlands län",
    "06": "Jönköpings län",
    "07": "Kronobergs län",
    "08": "Kalmar län",
    "09": "Gotlands län",
    "10": "Blekinge län",
    "12": "Skåne län",
    "13": "Hallands län",
    "14": "Västra Götalands län",
    "17": "Värmlands län",
    "18": "Örebro län",
    "19": "Västmanlands län",
    "20": "Dalarnas län",
    "21": "Gävleborgs län",
    "22": "Västernorrlands län",
    "23": "Jämtlands län",
    "24": "Västerbottens län",
    "25": "Norrbottens län",
}

_CODE_COLUMNS = ("lan_code", "länskod", "lanskod", "län", "lan", "region")
_POPULATION_COLUMNS = ("population", "folkmängd", "folkmangd", "befolkning", "antal")
_CODE_RE = re.compile(r"^(\d{1,2})(?:\s+\D.*)?$")
_INT_RE = re.compile(r"^\d+$|^\d{1,3}(?: \d{3})+$")
_SIGNED_INT_RE = re.compile(r"^[-−]\s*(?:\d+|\d{1,3}(?: \d{3})+)$")
_DECIMAL_RE = re.compile(r"^[-−]?\d+[.,]\d+$")

# English wording of each rule; the code in RowError.rule is what the UI translates.
RULES: dict[str, str] = {
    "not_utf8": "the file is not UTF-8 text",
    "empty_file": "the file is empty",
    "missing_column": "a required column is missing from the header",
    "unknown_lan": "not one of the 21 län codes",
    "duplicate_lan": "this län appears more than once",
    "missing_lan": "this län is missing from the file",
    "empty_value": "the value is empty",
    "negative": "a population cannot be negative",
    "not_integer": "a population is a whole number",
    "not_a_number": "not a number",
}


@dataclass(frozen=True)
class RowError:
    """One problem in the file: where (row, column), what (value) and which rule it breaks.

    ``row`` is the line number in the file (the header is row 1), ``None`` for a problem with
    the file as a whole (e.g. a missing län). ``rule`` is a stable code (see ``RULES``) for the
    UI to translate; ``detail`` adds specifics such as the row of the first occurrence.
    """

    row: int | None
    column: str | None
    value: str
    rule: str
    detail: str = ""

    @property
    def message(self) -> str:
        where = f"row {self.row}" if self.row is not None else "file"
        if self.column:
            where += f", column {self.column}"
        text = f"{where}: {self.value!r}: {RULES.get(self.rule, self.rule)}"
        return f"{text} ({self.detail})" if self.detail else text


class PopulationFileError(ValueError):
    """The file is refused as a whole; ``errors`` lists every problem found, in file order."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = list(errors)
        shown = "; ".join(e.message for e in self.errors[:5])
        more = f"; and {len(self.errors) - 5} more" if len(self.errors) > 5 else ""
        super().__init__(f"{len(self.errors)} problem(s) in the population file: {shown}{more}")


def _read_text(path_or_text: str | bytes | os.PathLike[str]) -> str:
    """A Path (or os.PathLike) or bytes is read as a file; a str with a newline is the text
    itself, a str without one is a path (a real file always has a header line and data)."""
    if isinstance(path_or_text, str) and ("\n" in path_or_text or path_or_text == ""):
        return path_or_text.removeprefix("\ufeff")
    raw = path_or_text if isinstance(path_or_text, bytes) else Path(path_or_text).read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PopulationFileError(
            [RowError(None, None, raw[exc.start : exc.start + 4].hex(" "), "not_utf8")]
        )


def _find_column(header: list[str], names: tuple[str, ...]) -> int | None:
    normalised = [h.strip().strip('"').lower() for h in header]
    for name in names:
        if name in normalised:
            return normalised.index(name)
    return None


def _parse_code(value: str) -> str | None:
    match = _CODE_RE.match(value.strip())
    if not match:
        return None
    code = match.group(1).zfill(2)
    return code if code in LAN else None


def _parse_population(value: str) -> tuple[int | None, str | None]:
    """Return (population, None) or (None, rule)."""
    text = value.strip().replace("\xa0", " ").replace("\u202f", " ")
    if not text:
        return None, "empty_value"
    if _INT_RE.match(text):
        return int(text.replace(" ", "")), None
    if _SIGNED_INT_RE.match(text):
        return None, "negative"
    if _DECIMAL_RE.match(text):
        return None, "not_integer"
    return None, "not_a_number"


def parse_population_csv(path_or_text: str | bytes | os.PathLike[str]) -> dict[str, int]:
    """Read and validate a population-per-län file; return ``{lan_code: population}``.

    Every one of the 21 län must appear exactly once with a non-negative whole number; unknown
    codes, duplicates, missing län, empty, negative and non-numeric figures are all refused.
    All problems are collected and raised together in :class:`PopulationFileError`; nothing is
    returned for a file with any problem. The result is ordered by län code.
    """
    text = _read_text(path_or_text)
    if not text.strip():
        raise PopulationFileError([RowError(None, None, "", "empty_file")])

    header_line = next(line for line in text.splitlines() if line.strip())
    delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = next(fields for fields in reader if any(f.strip() for f in fields))
    header_row = reader.line_num  # leading blank lines keep the row numbers honest
    code_col = _find_column(header, _CODE_COLUMNS)
    pop_col = _find_column(header, _POPULATION_COLUMNS)
    errors: list[RowError] = []
    if code_col is None:
        errors.append(RowError(header_row, "lan_code", delimiter.join(header), "missing_column"))
    if pop_col is None:
        errors.append(RowError(header_row, "population", delimiter.join(header), "missing_column"))
    if code_col is None or pop_col is None:
        raise PopulationFileError(errors)
    code_name = header[code_col].strip()
    pop_name = header[pop_col].strip()

    populations: dict[str, int] = {}
    first_row: dict[str, int] = {}
    for fields in reader:
        if not any(f.strip() for f in fields):
            continue  # blank line
        row = reader.line_num
        raw_code = fields[code_col] if code_col < len(fields) else ""
        raw_pop = fields[pop_col] if pop_col < len(fields) else ""
        code = _parse_code(raw_code)
        if code is None:
            code_rule = "empty_value" if not raw_code.strip() else "unknown_lan"
            errors.append(RowError(row, code_name, raw_code, code_rule))
        elif code in first_row:
            errors.append(
                RowError(
                    row, code_name, raw_code, "duplicate_lan", f"first on row {first_row[code]}"
                )
            )
        else:
            first_row[code] = row
        population, rule = _parse_population(raw_pop)
        if rule is not None:
            errors.append(RowError(row, pop_name, raw_pop, rule))
        elif code is not None and code not in populations:
            assert population is not None
            populations[code] = population

    for code, name in LAN.items():
        if code not in first_row:
            errors.append(RowError(None, code_name, code, "missing_lan", name))
    if errors:
        raise PopulationFileError(errors)
    return {code: populations[code] for code in LAN}
