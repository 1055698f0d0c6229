"""The canonical extract (DESIGN §4): six tables of pseudonymised visit-level data, as data.

Why a declarative schema: the validator (``validation.py``), the documentation
(``docs/extracts.md``), the synthetic generator and the indicator engine all need the same
facts: column names, what each column holds, whether it may be empty, the Parquet type it is
stored as, the keys and the references between tables. Keeping them here, as plain values,
means a new column or code list is changed in one place.

Decisions recorded here (and in ``docs/extracts.md``):

* every column is present in every file; ``required`` says whether a cell may be empty
  (all columns are required in this version);
* ``is_new_visit`` (nybesök) is a boolean written ``1``/``0``, ``true``/``false`` or
  ``ja``/``nej`` (any letter case) and stored as Parquet BOOLEAN;
* EQ-5D is reported as the **index value** (−0.6 … 1.0, decimals allowed), not the VAS; the other
  instruments are whole-number sum scores within their published ranges;
* ICD-10-SE codes are accepted with or without the dot and in any letter case and stored in the
  dotted upper-case form (``F438a`` → ``F43.8A``); chapter F codes must exist in the shipped
  list, other chapters are checked for format only;
* KVÅ codes are five characters, two letters and three digits (``DU011``, the non-surgical
  part) or three letters and two digits (the surgical part); they are checked for format only,
  because no complete code list ships with the product;
* ``listings.month`` is stored as the canonical period string ``YYYY-MM`` (as
  :mod:`styrkort.periods` writes a month).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from styrkort.breakdowns import AGE_BANDS, SEXES

SCHEMA_VERSION = "1"

DATA_DIR = Path(__file__).resolve().parent / "data"
ICD10SE_CHAPTER_F_CSV = DATA_DIR / "icd10se_chapter_f.csv"

PROFESSIONS = (
    "lakare",
    "sjukskoterska",
    "psykolog",
    "kurator",
    "psykoterapeut",
    "fysioterapeut",
    "arbetsterapeut",
    "annan",
)
PSYCHOSOCIAL_PROFESSIONS = ("psykolog", "kurator", "psykoterapeut")
CONTACT_TYPES = ("besok", "video", "telefon", "digital", "hembesok", "grupp")
SICK_LEAVE_EXTENTS = ("25", "50", "75", "100")
BOOLEAN_TRUE = ("1", "true", "ja")
BOOLEAN_FALSE = ("0", "false", "nej")

# Birth years before this are refused as implausible; the upper bound is the period's year.
EARLIEST_BIRTH_YEAR = 1900


@dataclass(frozen=True)
class Instrument:
    """A symptom or quality-of-life rating and the range its score must lie in."""

    code: str
    minimum: float
    maximum: float
    whole: bool
    description: str


INSTRUMENTS: dict[str, Instrument] = {
    i.code: i
    for i in (
        Instrument("PHQ-9", 0, 27, True, "Patient Health Questionnaire-9, depression, sum score"),
        Instrument("GAD-7", 0, 21, True, "Generalised Anxiety Disorder-7, anxiety, sum score"),
        Instrument("MADRS-S", 0, 54, True, "MADRS self-rating, depression, sum score"),
        Instrument("KEDS", 0, 54, True, "Karolinska Exhaustion Disorder Scale, sum score"),
        Instrument("EQ-5D", -0.6, 1.0, False, "EQ-5D index value (not the VAS)"),
    )
}


class Kind(StrEnum):
    """What a column holds; decides its format rule, its Parquet type and its input types."""

    ID = "id"  # a pseudonymous key or record id: 1–100 characters, no whitespace
    HSA_ID = "hsa_id"  # a care unit's HSA-id, which must be a known unit
    DATE = "date"  # YYYY-MM-DD
    MONTH = "month"  # YYYY-MM
    INTEGER = "integer"
    DECIMAL = "decimal"  # decimal point or decimal comma
    BOOLEAN = "boolean"
    ENUM = "enum"  # one of a fixed list, exact spelling
    ICD10 = "icd10"
    KVA = "kva"


PARQUET_TYPES: dict[Kind, str] = {
    Kind.ID: "VARCHAR",
    Kind.HSA_ID: "VARCHAR",
    Kind.DATE: "DATE",
    Kind.MONTH: "VARCHAR",
    Kind.INTEGER: "INTEGER",
    Kind.DECIMAL: "DOUBLE",
    Kind.BOOLEAN: "BOOLEAN",
    Kind.ENUM: "VARCHAR",
    Kind.ICD10: "VARCHAR",
    Kind.KVA: "VARCHAR",
}


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    description: str
    example: str
    required: bool = True
    allowed: tuple[str, ...] = ()  # ENUM values
    minimum: int | None = None  # INTEGER bounds (inclusive)
    maximum: int | None = None
    max_is_period_year: bool = False  # INTEGER upper bound is the declared period's year
    parquet_type_override: str | None = None

    @property
    def parquet_type(self) -> str:
        """The DuckDB/Parquet type the column is stored as after validation."""
        return self.parquet_type_override or PARQUET_TYPES[self.kind]


@dataclass(frozen=True)
class Reference:
    """``column`` of this table must match ``target_column`` of some row in ``target_table``."""

    column: str
    target_table: str
    target_column: str


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]  # unique together (after normalisation of codes)
    references: tuple[Reference, ...] = ()
    dates_inside_period: tuple[str, ...] = ()  # each must lie inside the declared period
    overlap_period: tuple[str, str] | None = None  # (start, end) must overlap the period
    month_inside_period: str | None = None  # a YYYY-MM column inside the period
    score: tuple[str, str] | None = None  # (instrument column, score column)
    column_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "column_names", tuple(c.name for c in self.columns))

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


def _id(name: str, description: str, example: str) -> Column:
    return Column(name, Kind.ID, description, example)


_UNIT = Column(
    "unit_hsa_id",
    Kind.HSA_ID,
    "HSA-id of the care unit (vårdcentral); must be a unit registered in Styrkort",
    "SE2321000099-1001",
)
_PATIENT = _id(
    "patient_key",
    "pseudonymous patient key, stable within the region's extracts; never a personal "
    "identity number",
    "p-4f1c2a9e07b3",
)
_ICD = Column(
    "icd10_code",
    Kind.ICD10,
    "ICD-10-SE code with or without the dot; stored dotted and upper-case",
    "F43.8A",
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "contacts",
            "one row per care contact (visit, call, video or digital contact)",
            (
                _id("contact_id", "the contact's id, unique in the file", "K0001"),
                _PATIENT,
                _UNIT,
                Column("contact_date", Kind.DATE, "date of the contact", "2025-01-15"),
                Column("sex", Kind.ENUM, "sex: K (woman) or M (man)", "K", allowed=SEXES),
                Column(
                    "birth_year",
                    Kind.INTEGER,
                    "the patient's year of birth",
                    "1984",
                    minimum=EARLIEST_BIRTH_YEAR,
                    max_is_period_year=True,
                    parquet_type_override="SMALLINT",
                ),
                Column(
                    "profession",
                    Kind.ENUM,
                    "the professional who held the contact",
                    "psykolog",
                    allowed=PROFESSIONS,
                ),
                Column(
                    "contact_type",
                    Kind.ENUM,
                    "form of the contact",
                    "besok",
                    allowed=CONTACT_TYPES,
                ),
                Column(
                    "is_new_visit",
                    Kind.BOOLEAN,
                    "nybesök: first visit for a new problem (1/0, true/false, ja/nej)",
                    "1",
                ),
            ),
            key=("contact_id",),
            dates_inside_period=("contact_date",),
        ),
        Table(
            "diagnoses",
            "diagnoses set at a contact",
            (
                _id("contact_id", "a contact_id of the contacts table", "K0001"),
                _ICD,
                Column(
                    "rank",
                    Kind.INTEGER,
                    "1 = main diagnosis, 2, 3 … = secondary diagnoses",
                    "1",
                    minimum=1,
                    maximum=99,
                    parquet_type_override="SMALLINT",
                ),
            ),
            key=("contact_id", "icd10_code"),
            references=(Reference("contact_id", "contacts", "contact_id"),),
        ),
        Table(
            "procedures",
            "KVÅ procedures (e.g. psychological treatment) registered at a contact",
            (
                _id("contact_id", "a contact_id of the contacts table", "K0001"),
                Column("kva_code", Kind.KVA, "KVÅ code; stored upper-case", "DU011"),
            ),
            key=("contact_id", "kva_code"),
            references=(Reference("contact_id", "contacts", "contact_id"),),
        ),
        Table(
            "measurements",
            "symptom and quality-of-life ratings",
            (
                _PATIENT,
                _UNIT,
                Column("date", Kind.DATE, "date of the rating", "2025-02-03"),
                Column(
                    "instrument",
                    Kind.ENUM,
                    "the rating scale",
                    "PHQ-9",
                    allowed=tuple(INSTRUMENTS),
                ),
                Column(
                    "score",
                    Kind.DECIMAL,
                    "the score, within the instrument's range (see the instrument table)",
                    "14",
                ),
            ),
            key=("patient_key", "unit_hsa_id", "date", "instrument"),
            dates_inside_period=("date",),
            score=("instrument", "score"),
        ),
        Table(
            "sick_leave",
            "sick-leave periods (sjukskrivning) certified by the unit",
            (
                _PATIENT,
                _UNIT,
                Column("start_date", Kind.DATE, "first day of the period", "2025-01-13"),
                Column("end_date", Kind.DATE, "last day of the period (inclusive)", "2025-03-09"),
                Column(
                    "extent",
                    Kind.ENUM,
                    "extent in percent: 25, 50, 75 or 100",
                    "50",
                    allowed=SICK_LEAVE_EXTENTS,
                    parquet_type_override="SMALLINT",
                ),
                _ICD,
            ),
            key=("patient_key", "unit_hsa_id", "start_date"),
            overlap_period=("start_date", "end_date"),
        ),
        Table(
            "listings",
            "listed patients (antal listade) per unit, month, sex and age band",
            (
                _UNIT,
                Column("month", Kind.MONTH, "the month, YYYY-MM", "2025-03"),
                Column("sex", Kind.ENUM, "sex: K or M", "M", allowed=SEXES),
                Column(
                    "age_band",
                    Kind.ENUM,
                    "age band (0-4, 5-9, 10-14, 15-17, 18-19, 20-24, … 80-84, 85+)",
                    "25-29",
                    allowed=AGE_BANDS,
                ),
                Column(
                    "listed",
                    Kind.INTEGER,
                    "number of listed patients",
                    "412",
                    minimum=0,
                    maximum=999_999_999,
                ),
            ),
            key=("unit_hsa_id", "month", "sex", "age_band"),
            month_inside_period="month",
        ),
    )
}

TABLE_NAMES = tuple(TABLES)


@lru_cache(maxsize=1)
def icd10se_chapter_f_codes() -> frozenset[str]:
    """All chapter F codes of ICD-10-SE in dotted form (categories and subcodes)."""
    with ICD10SE_CHAPTER_F_CSV.open(encoding="utf-8", newline="") as f:
        return frozenset(row["code"] for row in csv.DictReader(f))


def normalise_icd10(code: str) -> str:
    """``f438a`` / ``F43.8A`` → ``F43.8A``; assumes the format was already checked."""
    plain = code.strip().upper().replace(".", "")
    return plain if len(plain) <= 3 else f"{plain[:3]}.{plain[3:]}"
