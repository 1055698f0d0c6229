"""The indicator catalogue: definitions as data, loaded and validated when loaded.

A *pack* is one TOML file in ``packs/`` holding named code lists, shared SQL views and the
indicator definitions of one area (the first: "Psykisk ohälsa i primärvården"). Loading a pack
checks everything a definition refers to before any figure is computed: kinds, polarities,
sources, breakdowns and period types are from fixed lists; every table and column exists in
the canonical extract schema (:mod:`styrkort.extracts.schema`); every code list exists and its
codes have the right format; every SQL statement parses and binds against empty tables of the
canonical types in DuckDB and returns the columns the engine needs. Problems are collected and
raised together as :class:`CatalogueError`, each naming the pack, indicator and field.

Definitions come in three forms (see ``docs/indicators.md`` for the full reference):

* **declarative**: ``denominator`` and ``numerator`` as filters over one canonical table
  (``where`` conditions on its columns, ``has`` conditions on related rows, e.g. "a contact
  with a diagnosis in code list X"), counted as rows or as distinct patients; rates take the
  listed population as denominator (``listed = true``);
* **sql**: one query over the canonical tables and the pack's views, returning one row per
  case; used for episode logic ("new depression diagnosis, then treatment within 90 days");
* **collected**: computed from data collected in Styrkort itself (staffing).

Every definition has a *version*: the SHA-256 of its content, including the code lists and
views it uses and the engine's semantics version, so that a result can always say exactly
which definition produced it.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from styrkort.extracts import schema
from styrkort.organisation.models import Profession

PACKS_DIR = Path(__file__).resolve().parent / "packs"

#: Bump when the engine's interpretation of a definition changes (age rule, period
#: attribution, interval methods): every definition then gets a new version.
ENGINE_SEMANTICS = "1"

KINDS = ("proportion", "rate_per_1000", "mean", "median", "count")
POLARITIES = ("higher_better", "lower_better", "none")
SOURCES = ("extract", "collected", "survey")
BREAKDOWNS = ("sex", "age_band")
PERIOD_TYPES = ("month", "quarter", "year")
COUNTS = ("rows", "patients")
TARGET_DIRECTIONS = ("at_least", "at_most")
CODE_SYSTEMS = ("icd10", "kva", "profession", "contact_type", "instrument")
COLLECTED_DATASETS = ("staffing",)

#: Tables a declarative definition may count, with the column that places a row in a period.
ANCHORS = {"contacts": "contact_date", "measurements": "date"}
#: Related tables a declarative ``has`` condition may look into, and the joining column.
RELATIONS = {("contacts", "diagnoses"): "contact_id", ("contacts", "procedures"): "contact_id"}
#: Extra columns a declarative filter may use: the age in whole years at the row's date,
#: computed as the calendar year minus the birth year (the extract has no date of birth).
VIRTUAL_COLUMNS = {"contacts": {"age": ("INTEGER", "(year(c.contact_date) - c.birth_year)")}}

#: Columns the engine adds around every definition (see engine.py): the result periods of
#: the run and, per period, its months.
ENGINE_TABLES = {
    "periods": {
        "period": "VARCHAR",
        "kind": "VARCHAR",
        "p_start": "DATE",
        "p_end": "DATE",
        "p_year": "INTEGER",
    },
    "period_months": {
        "month": "VARCHAR",
        "period": "VARCHAR",
        "kind": "VARCHAR",
        "p_start": "DATE",
        "p_end": "DATE",
        "p_year": "INTEGER",
    },
}

_CODE_RE = re.compile(r"^[A-Z][A-Z0-9]{1,11}$")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_ICD_RE = re.compile(r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,2})?$")
_KVA_RE = re.compile(r"^([A-Z]{2}[0-9]{3}|[A-Z]{3}[0-9]{2})$")
_MACRO_RE = re.compile(r"\{\{\s*in_codes\(\s*([A-Za-z_][\w.]*)\s*,\s*([A-Za-z_]\w*)\s*\)\s*\}\}")
_OPS = {"eq": "=", "ne": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
_LIST_OPS = {"in": "IN", "not_in": "NOT IN"}
_ALL_OPS = (*_OPS, *_LIST_OPS, "codes", "is_null")
_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "DOUBLE", "FLOAT", "DECIMAL")
#: Columns every case query returns (see :func:`required_case_columns`).
_BASE_CASE_COLUMNS = ("unit_hsa_id", "patient_key", "sex", "birth_year")


class CatalogueError(ValueError):
    """One or more problems in indicator definitions; ``problems`` lists them all."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{len(problems)} problem(s) in the indicator catalogue:\n{lines}")


@dataclass(frozen=True)
class Problem:
    """One validation problem: where (pack, indicator code or view, field) and what."""

    pack: str
    where: str
    field: str
    message: str

    def __str__(self) -> str:
        place = ": ".join(p for p in (self.pack, self.where, self.field) if p)
        return f"{place}: {self.message}"


@dataclass(frozen=True)
class CodeList:
    """A named list of codes; a code ending in ``*`` matches every code starting with it."""

    name: str
    system: str
    codes: tuple[str, ...]
    label_sv: str
    label_en: str
    source: str

    def predicate(self, column_sql: str) -> str:
        exact = [c for c in self.codes if not c.endswith("*")]
        prefixes = [c[:-1] for c in self.codes if c.endswith("*")]
        parts = []
        if exact:
            parts.append(f"{column_sql} IN ({', '.join(_quote(c) for c in exact)})")
        parts.extend(f"starts_with({column_sql}, {_quote(p)})" for p in prefixes)
        return "(" + " OR ".join(parts) + ")"


@dataclass(frozen=True)
class View:
    """A named SQL view shared by the definitions of a pack (e.g. treatment courses)."""

    name: str
    description: str
    tables: tuple[str, ...]
    sql: str  # with code-list macros expanded
    raw_sql: str
    #: Its rows for one extract period depend only on that period's files (the engine keeps
    #: them per period and rebuilds only a replaced period's share).
    per_period: bool = False
    #: For a per-period view whose shares overlap (a patient in several months): the SQL
    #: that combines the shares, read from the table ``parts``, into the whole.
    combine: str | None = None
    #: A patient's rows come from that patient's rows of the tables alone (every window and
    #: join is within one patient_key): the engine can then update the view's users for the
    #: patients whose data changed instead of computing them again for everyone.
    per_patient: bool = False


@dataclass(frozen=True)
class Target:
    """A target level, e.g. at least 60 %, on the indicator's display scale."""

    value: float
    direction: str
    text_sv: str
    text_en: str
    source: str


@dataclass(frozen=True)
class Definition:
    """One validated indicator definition, ready for the engine and for display."""

    pack: str
    code: str
    family: int
    name_sv: str
    name_en: str
    definition_sv: str
    definition_en: str
    numerator_sv: str
    numerator_en: str
    denominator_sv: str
    denominator_en: str
    kind: str
    polarity: str
    source: str
    citation: str
    breakdowns: tuple[str, ...]
    period_types: tuple[str, ...]
    target: Target | None
    compare: bool
    per: int
    form: str  # declarative | sql | collected
    count: str  # rows | patients
    tables: tuple[str, ...]
    lookback_days: int | None  # None: depends on all earlier data
    lookahead_days: int | None  # None: depends on all later data
    case_sql: str | None
    uses_periods: bool  # the case query returns a ``period`` column instead of anchor_date
    views: tuple[str, ...]
    code_lists: tuple[str, ...]
    collected: Mapping[str, Any] | None
    notes_sv: str
    notes_en: str
    spec: Mapping[str, Any] = field(repr=False)
    version: str = ""
    #: The case rows of a patient come from that patient's data alone (an SQL definition
    #: reading only per-patient views); see :class:`View`.
    per_patient: bool = False

    @property
    def multiplier(self) -> float:
        """Scale of stored values: per cent for proportions, per ``per`` listed for rates."""
        if self.kind == "proportion":
            return 100.0
        if self.kind == "rate_per_1000":
            return float(self.per)
        return 1.0

    @property
    def is_rate(self) -> bool:
        return self.kind == "rate_per_1000"

    def unit_label(self, language: str = "sv") -> str:
        per = f"{self.per:,}".replace(",", "\u00a0")
        labels = {
            "proportion": ("%", "%"),
            "rate_per_1000": (f"per {per} listade", f"per {per} listed"),
            "mean": (self.spec.get("unit_sv", ""), self.spec.get("unit_en", "")),
            "median": (self.spec.get("unit_sv", "dagar"), self.spec.get("unit_en", "days")),
            "count": ("antal", "number"),
        }
        sv, en = labels[self.kind]
        return sv if language == "sv" else en


@dataclass(frozen=True)
class Pack:
    """A validated pack: its metadata, code lists, views and definitions in file order."""

    code: str
    name_sv: str
    name_en: str
    description_sv: str
    description_en: str
    path: Path
    code_lists: Mapping[str, CodeList]
    views: tuple[View, ...]
    definitions: tuple[Definition, ...]


@dataclass(frozen=True)
class Catalogue:
    """Every pack, and every definition by code (codes are unique across packs)."""

    packs: tuple[Pack, ...]
    definitions: Mapping[str, Definition]

    def __iter__(self):
        return iter(self.definitions.values())

    def __len__(self) -> int:
        return len(self.definitions)

    def get(self, code: str) -> Definition:
        try:
            return self.definitions[code]
        except KeyError:
            raise KeyError(f"no indicator {code!r} in the catalogue")

    def pack_of(self, definition: Definition) -> Pack:
        return next(p for p in self.packs if p.code == definition.pack)

    def views_for(self, definition: Definition) -> list[View]:
        pack = self.pack_of(definition)
        return [v for v in pack.views if v.name in definition.views]


# ----------------------------------------------------------------------------------------------
# Schema
# ----------------------------------------------------------------------------------------------


#: The type of ``patient_key`` inside the engine: the hash of the pseudonym
#: (``engine.PATIENT_KEY``), as definitions are validated against it.
PATIENT_KEY_TYPE = "UBIGINT"


def canonical_columns() -> dict[str, dict[str, str]]:
    """``{table: {column: DuckDB type}}`` of the canonical extract, from extracts.schema."""
    return {
        name: {c.name: c.parquet_type for c in table.columns}
        for name, table in schema.TABLES.items()
    }


#: Tables definitions may read. ``listings`` is not among them: rate denominators come from
#: the organisation registry's Listing rows, which the engine supplies itself.
def readable_tables() -> tuple[str, ...]:
    return tuple(t for t in schema.TABLE_NAMES if t != "listings")


def _enum_values(table: str, column: str) -> tuple[str, ...]:
    col = schema.TABLES[table].column(column)
    if col.kind is schema.Kind.ENUM and not col.parquet_type_override:
        return col.allowed
    return ()


def _system_of(table: str, column: str) -> str | None:
    """The code system a column holds, for matching it with a code list."""
    col = schema.TABLES[table].column(column)
    if col.kind is schema.Kind.ICD10:
        return "icd10"
    if col.kind is schema.Kind.KVA:
        return "kva"
    if column in ("profession", "contact_type", "instrument"):
        return column
    return None


# ----------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------

_CACHE: dict[tuple, Catalogue] = {}


def load_catalogue(directory: Path | str | None = None) -> Catalogue:
    """Load and validate every ``*.toml`` pack in ``directory`` (default: the shipped packs).

    Cached per process while the files are unchanged (by path, size and modification time);
    raises :class:`CatalogueError` listing every problem found.
    """
    root = Path(directory) if directory is not None else PACKS_DIR
    paths = sorted(root.glob("*.toml"))
    key = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths)
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    packs: list[Pack] = []
    problems: list[Problem] = []
    for path in paths:
        try:
            packs.append(load_pack(path))
        except CatalogueError as exc:
            problems.extend(exc.problems)
    seen: dict[str, str] = {}
    for pack in packs:
        for d in pack.definitions:
            if d.code in seen:
                problems.append(
                    Problem(pack.code, d.code, "code", f"also defined in pack {seen[d.code]!r}")
                )
            seen.setdefault(d.code, pack.code)
    if problems:
        raise CatalogueError(problems)
    catalogue = Catalogue(tuple(packs), {d.code: d for pack in packs for d in pack.definitions})
    _CACHE.clear()
    _CACHE[key] = catalogue
    return catalogue


def load_pack(path: Path | str) -> Pack:
    """Parse and validate one pack file; raises :class:`CatalogueError`."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError([Problem(path.name, "", "", f"not valid TOML: {exc}")])
    return parse_pack(data, path)


def parse_pack(data: Mapping[str, Any], path: Path | None = None) -> Pack:
    """Validate a pack given as parsed TOML (tests build broken packs this way)."""
    path = path or Path("<memory>")
    checker = _PackChecker(data, path)
    return checker.run()


# ----------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------


def _quote(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _literal(value: Any, duck_type: str) -> str:
    if duck_type == "BOOLEAN":
        return "TRUE" if value else "FALSE"
    if duck_type == "DATE":
        return f"DATE {_quote(value)}"
    if duck_type in _NUMERIC:
        return repr(value)
    return _quote(value)


def _value_fits(value: Any, duck_type: str) -> bool:
    if duck_type == "BOOLEAN":
        return isinstance(value, bool)
    if duck_type in _NUMERIC:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if duck_type == "DATE":
        if not isinstance(value, str):
            return False
        try:
            date.fromisoformat(value)
        except ValueError:
            return False
        return True
    return isinstance(value, str)


def required_case_columns(kind: str) -> tuple[str, ...]:
    """Columns the case query of a definition must return (besides anchor_date/period)."""
    cols = list(_BASE_CASE_COLUMNS)
    if kind == "proportion":
        cols.append("num")
    if kind in ("mean", "median"):
        cols.append("value")
    return tuple(cols)


class _PackChecker:
    """Collects every problem of one pack; builds the validated :class:`Pack`."""

    def __init__(self, data: Mapping[str, Any], path: Path):
        self.data = data
        self.path = path
        self.problems: list[Problem] = []
        raw_meta = data.get("pack")
        meta: Mapping[str, Any] = raw_meta if isinstance(raw_meta, Mapping) else {}
        self.pack_code = str(meta.get("code") or path.stem)
        self.meta = meta
        self.columns = canonical_columns()
        self.code_lists: dict[str, CodeList] = {}
        self.views: list[View] = []
        self.con = empty_database()

    def problem(self, where: str, fld: str, message: str) -> None:
        self.problems.append(Problem(self.pack_code, where, fld, message))

    # -- pack level ------------------------------------------------------------------------

    def run(self) -> Pack:
        try:
            return self._run()
        finally:
            self.con.close()

    def _run(self) -> Pack:
        for key in ("code", "name_sv", "name_en"):
            if not isinstance(self.meta.get(key), str) or not self.meta.get(key):
                self.problem("pack", key, "required text is missing")
        unknown = set(self.data) - {"pack", "codes", "view", "indicator"}
        for key in sorted(unknown):
            self.problem("", key, "unknown section (expected pack, codes, view, indicator)")
        self._code_lists(self.data.get("codes", {}))
        self._views(self.data.get("view", []))
        definitions = []
        raw = self.data.get("indicator", [])
        if not isinstance(raw, list) or not raw:
            self.problem("", "indicator", "a pack needs at least one [[indicator]]")
            raw = []
        seen: set[str] = set()
        for index, item in enumerate(raw):
            code = item.get("code") if isinstance(item, Mapping) else None
            where = code if isinstance(code, str) and code else f"indicator[{index}]"
            if where in seen:
                self.problem(where, "code", "duplicate indicator code in this pack")
            seen.add(where)
            d = _DefinitionChecker(self, item if isinstance(item, Mapping) else {}, where).run()
            if d is not None:
                definitions.append(d)
        if self.problems:
            raise CatalogueError(self.problems)
        return Pack(
            code=self.pack_code,
            name_sv=self.meta["name_sv"],
            name_en=self.meta["name_en"],
            description_sv=self.meta.get("description_sv", ""),
            description_en=self.meta.get("description_en", ""),
            path=self.path,
            code_lists=dict(self.code_lists),
            views=tuple(self.views),
            definitions=tuple(definitions),
        )

    def _code_lists(self, raw: Any) -> None:
        if not isinstance(raw, Mapping):
            self.problem("codes", "", "must be a table of named code lists")
            return
        allowed = {
            "profession": schema.PROFESSIONS,
            "contact_type": schema.CONTACT_TYPES,
            "instrument": tuple(schema.INSTRUMENTS),
        }
        chapter_f = schema.icd10se_chapter_f_codes()
        for name, spec in raw.items():
            where = f"codes.{name}"
            if not _NAME_RE.match(name):
                self.problem(where, "", "code-list names are lower_case_with_underscores")
                continue
            if not isinstance(spec, Mapping):
                self.problem(where, "", "must be a table with system and codes")
                continue
            system = spec.get("system")
            codes = spec.get("codes")
            if system not in CODE_SYSTEMS:
                self.problem(where, "system", f"must be one of {', '.join(CODE_SYSTEMS)}")
                continue
            if (
                not isinstance(codes, list)
                or not codes
                or not all(isinstance(c, str) for c in codes)
            ):
                self.problem(where, "codes", "must be a non-empty list of strings")
                continue
            for code in codes:
                stem = code[:-1] if code.endswith("*") else code
                if system == "icd10":
                    if code.endswith("*"):
                        ok = bool(re.match(r"^[A-Z]([0-9]{1,2}(\.[0-9A-Z]?)?)?$", stem))
                        ok = ok and (
                            not stem.startswith("F")
                            or len(stem) == 1
                            or any(c.startswith(stem) for c in chapter_f)
                        )
                    else:
                        ok = bool(_ICD_RE.match(code)) and (
                            not code.startswith("F") or code in chapter_f
                        )
                    if not ok:
                        self.problem(
                            where, "codes", f"{code!r} is not an ICD-10-SE code (dotted form)"
                        )
                elif system == "kva":
                    if code.endswith("*") or not _KVA_RE.match(code):
                        self.problem(where, "codes", f"{code!r} is not a KVÅ code")
                elif code not in allowed[system]:
                    self.problem(
                        where,
                        "codes",
                        f"{code!r} is not a {system}; allowed: {', '.join(allowed[system])}",
                    )
            self.code_lists[name] = CodeList(
                name,
                system,
                tuple(codes),
                str(spec.get("label_sv", "")),
                str(spec.get("label_en", "")),
                str(spec.get("source", "")),
            )

    def expand(self, sql: str, where: str, fld: str) -> tuple[str, set[str]]:
        """Replace ``{{ in_codes(column, list) }}`` macros; report unknown lists/macros."""
        used: set[str] = set()

        def repl(m: re.Match) -> str:
            name = m.group(2)
            if name not in self.code_lists:
                self.problem(where, fld, f"unknown code list {name!r} in in_codes()")
                return "TRUE"
            used.add(name)
            return self.code_lists[name].predicate(m.group(1))

        expanded = _MACRO_RE.sub(repl, sql)
        if "{{" in expanded or "}}" in expanded:
            self.problem(
                where, fld, "unknown macro; the only macro is {{ in_codes(column, list) }}"
            )
        return expanded, used

    def _views(self, raw: Any) -> None:
        if not isinstance(raw, list):
            self.problem("view", "", "views are [[view]] entries")
            return
        for index, spec in enumerate(raw):
            name = spec.get("name") if isinstance(spec, Mapping) else None
            where = f"view {name}" if isinstance(name, str) else f"view[{index}]"
            if not isinstance(name, str) or not _NAME_RE.match(name):
                self.problem(where, "name", "a view needs a lower_case name")
                continue
            if name in self.columns or name in ENGINE_TABLES or name == "units":
                self.problem(where, "name", "a view may not shadow a table")
                continue
            if any(v.name == name for v in self.views):
                self.problem(where, "name", "duplicate view name")
                continue
            tables = spec.get("tables")
            if not self._check_tables(where, tables):
                continue
            sql = spec.get("sql")
            if not isinstance(sql, str) or not sql.strip():
                self.problem(where, "sql", "required SQL is missing")
                continue
            expanded, _ = self.expand(sql, where, "sql")
            per_period, combine = self._partitioning(where, spec, tuple(tables), expanded)
            per_patient = spec.get("per_patient", False)
            if not isinstance(per_patient, bool):
                self.problem(where, "per_patient", "must be true or false")
                per_patient = False
            view = View(
                name,
                str(spec.get("description", "")),
                tuple(tables),
                expanded,
                sql,
                per_period=per_period,
                combine=combine,
                per_patient=per_patient,
            )
            error = self._bind(tuple(tables), expanded, create_view=name)
            if error:
                self.problem(where, "sql", error)
                continue
            if per_patient:
                error = self.per_patient_problem(expanded) or (
                    None
                    if "patient_key" in self.con.sql(f"SELECT * FROM {name} LIMIT 0").columns
                    else "a per_patient view has a patient_key column"
                )
                if error:
                    self.problem(where, "per_patient", error)
                    continue
            error = self._bind_combine(name, combine) if combine else None
            if error:
                self.problem(where, "combine", error)
                continue
            self.views.append(view)

    def _partitioning(
        self, where: str, spec: Mapping, tables: tuple[str, ...], sql: str
    ) -> tuple[bool, str | None]:
        """``per_period`` and ``combine`` of a view, checked.

        A per-period view may read only canonical extract tables whose rows belong to one
        extract period (not ``sick_leave``: a case is sent again in every month it overlaps,
        and the latest file wins), and no other view: its share for a period is then computed
        from that period's files alone.
        """
        per_period = spec.get("per_period", False)
        combine = spec.get("combine")
        if not isinstance(per_period, bool):
            self.problem(where, "per_period", "must be true or false")
            return False, None
        if combine is not None and (not isinstance(combine, str) or not combine.strip()):
            self.problem(where, "combine", "must be SQL reading the table parts")
            return False, None
        if combine is not None and not per_period:
            self.problem(where, "combine", "only a per_period view has shares to combine")
            return False, None
        if not per_period:
            return False, None
        try:
            names = duckdb.get_table_names(sql)
        except duckdb.Error:
            return False, None  # the SQL's own error is reported when it is bound
        others = sorted(n for n in names if n not in self.columns or n == "sick_leave")
        if others:
            self.problem(
                where,
                "per_period",
                f"a per_period view reads only the extract tables of one period; it reads "
                f"{', '.join(others)}",
            )
            return False, None
        return True, combine

    def per_patient_problem(self, sql: str) -> str | None:
        """Why ``sql`` cannot be per patient (None: it can): it may read only the extract
        tables, whose rows all belong to one patient (a diagnosis or procedure to its
        contact's), the engine's period tables and per-patient views."""
        try:
            names = duckdb.get_table_names(sql)
        except duckdb.Error:
            return None  # the SQL's own error is reported when it is bound
        views = {v.name: v for v in self.views}
        others = sorted(
            n
            for n in names
            if n not in ENGINE_TABLES
            and n not in readable_tables()
            and not (n in views and views[n].per_patient)
        )
        if others:
            return f"reads {', '.join(others)}, which is not per patient"
        return None

    def _bind_combine(self, name: str, combine: str) -> str | None:
        """Bind ``combine`` against ``parts`` shaped like the view; it must give the view's
        columns."""
        try:
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE parts AS SELECT * FROM {name} LIMIT 0")
            rel = self.con.sql(combine)
            expected = self.con.sql(f"SELECT * FROM {name}")
            got = dict(zip(rel.columns, map(str, rel.types), strict=True))
            want = dict(zip(expected.columns, map(str, expected.types), strict=True))
        except duckdb.Error as exc:
            return _duck_message(exc)
        finally:
            self.con.execute("DROP TABLE IF EXISTS parts")
        if got != want:
            return f"must return the view's columns {want}, not {got}"
        return None

    def _check_tables(self, where: str, tables: Any, fld: str = "tables") -> bool:
        if not isinstance(tables, list) or not tables:
            self.problem(where, fld, "must list the canonical tables used")
            return False
        ok = True
        for t in tables:
            if t not in readable_tables():
                self.problem(
                    where,
                    fld,
                    f"unknown table {t!r}; canonical tables: {', '.join(readable_tables())}",
                )
                ok = False
        return ok

    def _undeclared(self, tables: tuple[str, ...], sql: str) -> str | None:
        """Check that ``sql`` reads (directly or through views) only ``tables``."""
        try:
            names = duckdb.get_table_names(sql)
        except duckdb.Error as exc:
            return _duck_message(exc)
        views = {v.name: v for v in self.views}
        used: set[str] = set()
        for name in names:
            if name in views:
                used |= set(views[name].tables)
            elif name in self.columns:
                used.add(name)
        extra = sorted(used - set(tables))
        if extra:
            return (
                f"reads {', '.join(extra)} (directly or through a view), which is not among "
                f"its tables ({', '.join(tables)})"
            )
        return None

    def _bind(self, tables: tuple[str, ...], sql: str, *, create_view: str) -> str | None:
        """Create ``sql`` as a view against the empty typed tables; an error message or None."""
        error = self._undeclared(tables, sql)
        if error:
            return error
        try:
            self.con.execute(f"CREATE VIEW {create_view} AS {sql}")
        except duckdb.Error as exc:
            return _duck_message(exc)
        return None

    def describe(self, tables: tuple[str, ...], sql: str) -> tuple[dict[str, str] | None, str]:
        """Column names and types of ``sql`` bound against the empty typed tables."""
        error = self._undeclared(tables, sql)
        if error:
            return None, error
        try:
            rel = self.con.sql(sql)
            return dict(zip(rel.columns, (str(t) for t in rel.types), strict=True)), ""
        except duckdb.Error as exc:
            return None, _duck_message(exc)


def _duck_message(exc: duckdb.Error) -> str:
    text = str(exc).strip().splitlines()[0]
    return f"{type(exc).__name__}: {text}"


def empty_database() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with every canonical table (empty, typed) and the engine's tables,
    for validating SQL."""
    con = duckdb.connect(
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    )
    con.execute("SET enable_progress_bar = false")
    columns = canonical_columns()
    for name in readable_tables():
        # As the engine gives it (the hash of the pseudonym, engine.PATIENT_KEY): a definition
        # may compare, join and count patient_key, and one that treats it as text is refused.
        cols = ", ".join(
            f'"{c}" {PATIENT_KEY_TYPE if c == "patient_key" else t}'
            for c, t in columns[name].items()
        )
        con.execute(f"CREATE TABLE {name} ({cols})")
    for name, cols_types in ENGINE_TABLES.items():
        cols = ", ".join(f'"{c}" {t}' for c, t in cols_types.items())
        con.execute(f"CREATE TABLE {name} ({cols})")
    con.execute("CREATE TABLE units (hsa_id VARCHAR, unit_id BIGINT)")
    return con


class _DefinitionChecker:
    """Validates one ``[[indicator]]`` and compiles it to a :class:`Definition`."""

    TEXTS = (
        "name_sv",
        "name_en",
        "definition_sv",
        "definition_en",
        "numerator_sv",
        "numerator_en",
        "denominator_sv",
        "denominator_en",
        "citation",
    )
    KEYS = {
        *TEXTS,
        "code",
        "family",
        "kind",
        "polarity",
        "source",
        "breakdowns",
        "period_types",
        "target",
        "compare",
        "per",
        "numerator",
        "denominator",
        "sql",
        "collected",
        "notes_sv",
        "notes_en",
        "unit_sv",
        "unit_en",
    }

    def __init__(self, pack: _PackChecker, data: Mapping[str, Any], where: str):
        self.pack = pack
        self.data = data
        self.where = where
        self.start = len(pack.problems)
        self.used_codes: set[str] = set()

    def problem(self, fld: str, message: str) -> None:
        self.pack.problem(self.where, fld, message)

    @property
    def failed(self) -> bool:
        return len(self.pack.problems) > self.start

    def run(self) -> Definition | None:
        d = self.data
        for key in sorted(set(d) - self.KEYS):
            self.problem(key, "unknown field")
        code = d.get("code")
        if not isinstance(code, str) or not _CODE_RE.match(code):
            self.problem("code", "required; upper-case letters and digits, e.g. PO04")
        for key in self.TEXTS:
            if not isinstance(d.get(key), str) or not d.get(key, "").strip():
                self.problem(key, "required text is missing")
        family = d.get("family")
        if not isinstance(family, int) or isinstance(family, bool) or family < 1:
            self.problem("family", "required: the number of the indicator in the pack (1, 2 …)")
        kind = d.get("kind")
        if kind not in KINDS:
            self.problem("kind", f"{kind!r} is not a kind; use one of {', '.join(KINDS)}")
        polarity = d.get("polarity")
        if polarity not in POLARITIES:
            self.problem(
                "polarity", f"{polarity!r} is not a polarity; use one of {', '.join(POLARITIES)}"
            )
        source = d.get("source")
        if source not in SOURCES:
            self.problem("source", f"{source!r} is not a source; use one of {', '.join(SOURCES)}")
        breakdowns = d.get("breakdowns", [])
        if not isinstance(breakdowns, list) or any(b not in BREAKDOWNS for b in breakdowns):
            self.problem("breakdowns", f"a list drawn from {', '.join(BREAKDOWNS)}")
            breakdowns = []
        period_types = d.get("period_types")
        if (
            not isinstance(period_types, list)
            or not period_types
            or any(p not in PERIOD_TYPES for p in period_types)
        ):
            self.problem("period_types", f"a non-empty list drawn from {', '.join(PERIOD_TYPES)}")
            period_types = []
        per = d.get("per", 1000)
        if per not in (100, 1000, 10000, 100000):
            self.problem("per", "must be 100, 1000, 10000 or 100000")
        if "per" in d and kind != "rate_per_1000":
            self.problem("per", "only rates have a 'per'")
        compare = d.get("compare", True)
        if not isinstance(compare, bool):
            self.problem("compare", "must be true or false")
        target = self._target(d.get("target"))

        forms = [f for f in ("sql", "collected") if f in d]
        if "numerator" in d or "denominator" in d:
            forms.append("declarative")
        if len(forms) != 1:
            self.problem(
                "numerator",
                "give exactly one of: numerator/denominator filters, [indicator.sql] or "
                "[indicator.collected]",
            )
            return None
        form = forms[0]
        if source == "collected" and form != "collected":
            self.problem("source", "collected indicators use [indicator.collected]")
        if source == "extract" and form == "collected":
            self.problem("source", "an [indicator.collected] definition has source 'collected'")
        if source == "survey":
            self.problem("source", "no survey data set is available to the engine yet")
        if self.failed:
            return None

        # Validated above: the vocabularies hold plain strings and numbers from here on.
        kind, polarity, source = str(kind), str(polarity), str(source)
        compiled: dict[str, Any] | None
        if form == "declarative":
            compiled = self._declarative(kind)
        elif form == "sql":
            compiled = self._sql(kind)
        else:
            compiled = self._collected(kind, breakdowns)
        if compiled is None or self.failed:
            return None

        case_sql = compiled.get("case_sql")
        uses_periods = False
        if case_sql is not None:
            uses_periods = self._check_case_columns(
                case_sql, kind, compiled["tables"], compiled.get("count", "rows"), form
            )
            if self.failed:
                return None
        views = self._views_used(case_sql or "")
        code_lists = set(self.used_codes)
        for view in self.pack.views:
            if view.name in views:
                code_lists |= {m[1] for m in _MACRO_RE.findall(view.raw_sql)}
        spec = {
            "engine": ENGINE_SEMANTICS,
            "definition": _plain(d),
            "code_lists": {
                n: {"system": c.system, "codes": list(c.codes)}
                for n, c in sorted(self.pack.code_lists.items())
                if n in code_lists
            },
            "views": {v.name: v.raw_sql for v in self.pack.views if v.name in views},
        }
        version = hashlib.sha256(
            json.dumps(spec, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
        ).hexdigest()[:16]
        return Definition(
            pack=self.pack.pack_code,
            code=str(code),
            family=int(family or 0),
            name_sv=d["name_sv"].strip(),
            name_en=d["name_en"].strip(),
            definition_sv=_text(d["definition_sv"]),
            definition_en=_text(d["definition_en"]),
            numerator_sv=_text(d["numerator_sv"]),
            numerator_en=_text(d["numerator_en"]),
            denominator_sv=_text(d["denominator_sv"]),
            denominator_en=_text(d["denominator_en"]),
            kind=kind,
            polarity=polarity,
            source=source,
            citation=_text(d["citation"]),
            breakdowns=tuple(b for b in BREAKDOWNS if b in breakdowns),
            period_types=tuple(p for p in PERIOD_TYPES if p in period_types),
            target=target,
            compare=bool(compare) and kind in ("proportion", "rate_per_1000", "mean"),
            per=int(per),
            form=form,
            count=compiled.get("count", "rows"),
            tables=tuple(compiled.get("tables", ())),
            lookback_days=compiled.get("lookback_days"),
            lookahead_days=compiled.get("lookahead_days"),
            case_sql=case_sql,
            uses_periods=uses_periods,
            views=tuple(v.name for v in self.pack.views if v.name in views),
            code_lists=tuple(sorted(code_lists)),
            collected=compiled.get("collected"),
            notes_sv=_text(d.get("notes_sv", "")),
            notes_en=_text(d.get("notes_en", "")),
            spec=spec,
            version=version,
            per_patient=compiled.get("per_patient", False),
        )

    # -- parts -----------------------------------------------------------------------------

    def _target(self, raw: Any) -> Target | None:
        if raw is None:
            return None
        if not isinstance(raw, Mapping):
            self.problem("target", "must be a table with value and direction")
            return None
        value = raw.get("value")
        if not isinstance(value, int | float) or isinstance(value, bool):
            self.problem("target.value", "must be a number on the indicator's scale")
            return None
        if raw.get("direction") not in TARGET_DIRECTIONS:
            self.problem("target.direction", f"one of {', '.join(TARGET_DIRECTIONS)}")
            return None
        return Target(
            float(value),
            raw["direction"],
            _text(raw.get("text_sv", "")),
            _text(raw.get("text_en", "")),
            str(raw.get("source", "")),
        )

    def _views_used(self, sql: str) -> set[str]:
        """Names of pack views the SQL uses, transitively."""
        used: set[str] = set()
        frontier = [sql]
        while frontier:
            text = frontier.pop()
            for view in self.pack.views:
                if view.name not in used and re.search(rf"\b{view.name}\b", text):
                    used.add(view.name)
                    frontier.append(view.sql)
        return used

    def _condition(self, table: str, cond: Any, fld: str, alias: str) -> str | None:
        if not isinstance(cond, Mapping):
            self.problem(fld, "a condition is a table like { column = 'x', eq = 1 }")
            return None
        column = cond.get("column")
        ops = [k for k in cond if k != "column"]
        columns = self.pack.columns[table]
        virtual = VIRTUAL_COLUMNS.get(table, {}) if alias == "c" else {}
        if column in columns:
            duck_type = columns[column]
            column_sql = f'{alias}."{column}"'
        elif column in virtual:
            duck_type, column_sql = virtual[column]
        else:
            known = ", ".join([*columns, *virtual])
            self.problem(f"{fld}.column", f"unknown column {column!r} in table {table} ({known})")
            return None
        if len(ops) != 1 or ops[0] not in _ALL_OPS:
            self.problem(fld, f"give exactly one operator of {', '.join(_ALL_OPS)}")
            return None
        op = ops[0]
        value = cond[op]
        allowed = _enum_values(table, column) if column in columns else ()
        if op in _OPS:
            if not _value_fits(value, duck_type):
                self.problem(f"{fld}.{op}", f"{value!r} does not fit column {column} ({duck_type})")
                return None
            if allowed and value not in allowed:
                self.problem(f"{fld}.{op}", f"{value!r} is not one of {', '.join(allowed)}")
                return None
            return f"{column_sql} {_OPS[op]} {_literal(value, duck_type)}"
        if op in _LIST_OPS:
            if not isinstance(value, list) or not value:
                self.problem(f"{fld}.{op}", "must be a non-empty list")
                return None
            for v in value:
                if not _value_fits(v, duck_type) or (allowed and v not in allowed):
                    self.problem(f"{fld}.{op}", f"{v!r} does not fit column {column}")
                    return None
            items = ", ".join(_literal(v, duck_type) for v in value)
            return f"{column_sql} {_LIST_OPS[op]} ({items})"
        if op == "is_null":
            if not isinstance(value, bool):
                self.problem(f"{fld}.is_null", "must be true or false")
                return None
            return f"{column_sql} IS {'' if value else 'NOT '}NULL"
        # codes
        code_list = self.pack.code_lists.get(value) if isinstance(value, str) else None
        if code_list is None:
            self.problem(f"{fld}.codes", f"unknown code list {value!r}")
            return None
        system = _system_of(table, column) if column in columns else None
        if system != code_list.system:
            self.problem(
                f"{fld}.codes",
                f"code list {value!r} holds {code_list.system} codes, column {column} holds "
                f"{system or 'no codes'}",
            )
            return None
        self.used_codes.add(value)
        return code_list.predicate(column_sql)

    def _filters(self, table: str, block: Mapping[str, Any], fld: str) -> list[str] | None:
        preds: list[str] = []
        where = block.get("where", [])
        if not isinstance(where, list):
            self.problem(f"{fld}.where", "must be a list of conditions")
            return None
        for i, cond in enumerate(where):
            pred = self._condition(table, cond, f"{fld}.where[{i}]", "c")
            if pred is not None:
                preds.append(pred)
        has = block.get("has", [])
        if not isinstance(has, list):
            self.problem(f"{fld}.has", "must be a list of related-table conditions")
            return None
        for i, rel in enumerate(has):
            rfld = f"{fld}.has[{i}]"
            if not isinstance(rel, Mapping):
                self.problem(rfld, "must be a table with table and where")
                continue
            other = rel.get("table")
            key = RELATIONS.get((table, str(other)))
            if key is None:
                options = ", ".join(o for (t, o) in RELATIONS if t == table) or "none"
                self.problem(
                    f"{rfld}.table",
                    f"{other!r} is not related to {table} (related tables: {options})",
                )
                continue
            sub = []
            for j, cond in enumerate(rel.get("where", [])):
                pred = self._condition(str(other), cond, f"{rfld}.where[{j}]", "x")
                if pred is not None:
                    sub.append(pred)
            if not rel.get("where"):
                self.problem(f"{rfld}.where", "needs at least one condition")
                continue
            if len(sub) != len(rel["where"]):
                continue
            preds.append(
                f'c."{key}" IN (SELECT x."{key}" FROM {other} x WHERE {" AND ".join(sub)})'
            )
        return preds

    def _declarative(self, kind: str) -> dict[str, Any] | None:
        num = self.data.get("numerator")
        den = self.data.get("denominator")
        if kind == "proportion":
            if not isinstance(num, Mapping) or not isinstance(den, Mapping):
                self.problem("numerator", "a proportion needs [numerator] and [denominator]")
                return None
            base, base_fld = den, "denominator"
            if "table" in num or "count" in num:
                self.problem(
                    "numerator",
                    "a proportion's numerator filters the denominator's rows: give only where/has",
                )
        elif kind in ("rate_per_1000", "count"):
            if not isinstance(num, Mapping):
                self.problem("numerator", "required")
                return None
            base, base_fld = num, "numerator"
            if kind == "rate_per_1000":
                if not isinstance(den, Mapping) or den.get("listed") is not True or len(den) != 1:
                    self.problem("denominator", "a rate's denominator is { listed = true }")
            elif den is not None:
                self.problem("denominator", "a count has no denominator")
        else:
            if not isinstance(den, Mapping) or num is not None:
                self.problem("denominator", "a mean or median is [denominator] with value = col")
                return None
            base, base_fld = den, "denominator"
        table = base.get("table")
        if table not in ANCHORS:
            self.problem(
                f"{base_fld}.table",
                f"{table!r} cannot be counted declaratively; use one of {', '.join(ANCHORS)} "
                "(or the sql form)",
            )
            return None
        extra = set(base) - {"table", "where", "has", "count", "value"}
        for key in sorted(extra):
            self.problem(f"{base_fld}.{key}", "unknown field")
        count = base.get("count", "rows")
        if count not in COUNTS:
            self.problem(f"{base_fld}.count", f"one of {', '.join(COUNTS)}")
        preds = self._filters(table, base, base_fld)
        if preds is None:
            return None
        select = ['c."unit_hsa_id"', f'c."{ANCHORS[table]}" AS anchor_date', 'c."patient_key"']
        joins = ""
        tables = [table]
        if table == "contacts":
            select += ['c."sex"', 'c."birth_year"']
        else:
            # Sex and birth year of a rating come from the patient's contacts.
            select += ["pt.sex", "pt.birth_year"]
            joins = " LEFT JOIN patients pt ON pt.patient_key = c.patient_key"
            tables.append("contacts")
        if kind == "proportion":
            num_preds = self._filters(table, num if isinstance(num, Mapping) else {}, "numerator")
            if num_preds is None:
                return None
            if not num_preds:
                self.problem("numerator", "needs at least one where/has condition")
            select.append(f"({' AND '.join(num_preds) or 'TRUE'}) AS num")
        if kind in ("mean", "median"):
            value = base.get("value")
            columns = self.pack.columns[table]
            if value not in columns or columns[value] not in _NUMERIC:
                self.problem(f"{base_fld}.value", f"{value!r} is not a numeric column of {table}")
                return None
            select.append(f'CAST(c."{value}" AS DOUBLE) AS value')
        elif "value" in base:
            self.problem(f"{base_fld}.value", "only means and medians have a value column")
        for block in (num, den):
            if isinstance(block, Mapping):
                for rel in block.get("has", []) or []:
                    if isinstance(rel, Mapping) and rel.get("table") in readable_tables():
                        tables.append(rel["table"])
        sql = f"SELECT {', '.join(select)} FROM {table} c{joins}"
        if preds:
            sql += " WHERE " + " AND ".join(preds)
        demographics_elsewhere = table != "contacts"
        return {
            "case_sql": sql,
            "tables": sorted(set(tables)),
            "count": count,
            # A row counts in the period of its own date; ratings take sex and birth year
            # from the patient's contacts, which can lie anywhere in the data.
            "lookback_days": None if demographics_elsewhere else 0,
            "lookahead_days": None if demographics_elsewhere else 0,
        }

    def _window(self, raw: Mapping[str, Any], key: str) -> int | None | bool:
        value = raw.get(key)
        if value == "all":
            return None
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 3660:
            return value
        self.problem(f"sql.{key}", 'days (0–3660) or "all"')
        return False

    def _sql(self, kind: str) -> dict[str, Any] | None:
        raw = self.data.get("sql")
        if not isinstance(raw, Mapping):
            self.problem("sql", "must be a table with tables, query and the window")
            return None
        for key in sorted(
            set(raw)
            - {"tables", "query", "count", "lookback_days", "lookahead_days", "per_patient"}
        ):
            self.problem(f"sql.{key}", "unknown field")
        tables = raw.get("tables")
        if not self.pack._check_tables(self.where, tables, "sql.tables"):
            return None
        query = raw.get("query")
        if not isinstance(query, str) or not query.strip():
            self.problem("sql.query", "required SQL is missing")
            return None
        count = raw.get("count", "rows")
        if count not in COUNTS:
            self.problem("sql.count", f"one of {', '.join(COUNTS)}")
        lookback = self._window(raw, "lookback_days")
        lookahead = self._window(raw, "lookahead_days")
        if lookback is False or lookahead is False:
            return None
        expanded, used = self.pack.expand(query, self.where, "sql.query")
        self.used_codes |= used
        per_patient = raw.get("per_patient", False)
        if not isinstance(per_patient, bool):
            self.problem("sql.per_patient", "must be true or false")
        elif per_patient and (error := self.pack.per_patient_problem(expanded)):
            self.problem("sql.per_patient", error)
        return {
            "per_patient": per_patient is True,
            "case_sql": expanded,
            "tables": sorted(set(tables or ())),
            "count": count,
            "lookback_days": lookback,
            "lookahead_days": lookahead,
        }

    def _collected(self, kind: str, breakdowns: list[str]) -> dict[str, Any] | None:
        raw = self.data.get("collected")
        if not isinstance(raw, Mapping) or raw.get("dataset") not in COLLECTED_DATASETS:
            self.problem("collected.dataset", f"one of {', '.join(COLLECTED_DATASETS)}")
            return None
        if kind != "rate_per_1000":
            self.problem("kind", "staffing is reported per listed population (rate_per_1000)")
        if breakdowns:
            self.problem("breakdowns", "staffing has no sex or age breakdown")
        professions = raw.get("professions")
        valid = set(Profession.values)
        if (
            not isinstance(professions, list)
            or not professions
            or any(p not in valid for p in professions)
        ):
            self.problem("collected.professions", f"a list drawn from {', '.join(sorted(valid))}")
            return None
        return {
            "collected": {"dataset": raw["dataset"], "professions": tuple(professions)},
            "tables": [],
            "lookback_days": 0,
            "lookahead_days": 0,
        }

    def _check_case_columns(
        self, sql: str, kind: str, tables: list[str], count: str, form: str
    ) -> bool:
        """Bind the case query and check its columns; True if it returns ``period``."""
        fld = "sql.query" if form == "sql" else "numerator"
        columns, error = self.pack.describe(tuple(tables), sql)
        if columns is None:
            self.problem(fld, error)
            return False
        missing = [c for c in required_case_columns(kind) if c not in columns]
        uses_periods = False
        if "anchor_date" in columns:
            if columns["anchor_date"] != "DATE":
                self.problem(fld, "anchor_date must be a DATE")
        elif "period" in columns:
            uses_periods = True
        else:
            missing.append("anchor_date (or period)")
        if missing:
            self.problem(fld, f"the query must return the column(s) {', '.join(missing)}")
            return uses_periods
        expected = {"num": "BOOLEAN", "value": "DOUBLE", "sex": "VARCHAR", "period": "VARCHAR"}
        for col, typ in expected.items():
            if col in columns and columns[col] != typ:
                self.problem(fld, f"column {col} must be {typ}, not {columns[col]}")
        if columns["birth_year"] not in _NUMERIC:
            self.problem(fld, f"column birth_year must be a number, not {columns['birth_year']}")
        return uses_periods


def _text(value: Any) -> str:
    """Definition texts as written, with the TOML line breaks inside paragraphs removed."""
    paragraphs = re.split(r"\n\s*\n", str(value).strip())
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


# ----------------------------------------------------------------------------------------------
# Display
# ----------------------------------------------------------------------------------------------

_KIND_LABELS = {
    "proportion": ("Andel", "Proportion"),
    "rate_per_1000": ("Antal per listade", "Rate per listed population"),
    "mean": ("Medelvärde", "Mean"),
    "median": ("Median", "Median"),
    "count": ("Antal", "Count"),
}
_POLARITY_LABELS = {
    "higher_better": ("Högre värde är bättre", "Higher is better"),
    "lower_better": ("Lägre värde är bättre", "Lower is better"),
    "none": ("Ingen bedömning av högt eller lågt", "No judgement of high or low"),
}
_SOURCE_LABELS = {
    "extract": ("Uttag ur journalsystemet (pseudonymiserat)", "Pseudonymised EHR extract"),
    "collected": ("Uppgifter insamlade i Styrkort", "Data collected in Styrkort"),
    "survey": ("Enkät", "Survey"),
}
_PERIOD_LABELS = {"month": ("månad", "month"), "quarter": ("kvartal", "quarter"),
                  "year": ("år", "year")}  # fmt: skip
_BREAKDOWN_LABELS = {"sex": ("kön", "sex"), "age_band": ("åldersgrupp", "age band")}


def _window_text(days: int | None, language: str) -> str:
    if days is None:
        return "alla" if language == "sv" else "all"
    return f"{days} {'dagar' if language == 'sv' else 'days'}"


def catalogue_for_display(language: str = "sv", catalogue: Catalogue | None = None) -> list[dict]:
    """Everything a reader needs about every definition, as plain dicts in catalogue order.

    ``language`` ("sv" or "en") picks the texts in ``name``, ``definition``, ``numerator``,
    ``denominator``, ``notes`` and the labels; both languages stay available under the
    ``_sv``/``_en`` keys. Each dict also holds the code lists used (with their codes), the
    SQL (for readers who want to check the logic), the time window, the target and version.
    """
    catalogue = catalogue or load_catalogue()
    i = 0 if language == "sv" else 1
    out = []
    for pack in catalogue.packs:
        for d in pack.definitions:
            views = [v for v in pack.views if v.name in d.views]
            out.append(
                {
                    "code": d.code,
                    "family": d.family,
                    "version": d.version,
                    "pack": {"code": pack.code, "name": (pack.name_sv, pack.name_en)[i]},
                    "name": (d.name_sv, d.name_en)[i],
                    "name_sv": d.name_sv,
                    "name_en": d.name_en,
                    "definition": (d.definition_sv, d.definition_en)[i],
                    "definition_sv": d.definition_sv,
                    "definition_en": d.definition_en,
                    "numerator": (d.numerator_sv, d.numerator_en)[i],
                    "denominator": (d.denominator_sv, d.denominator_en)[i],
                    "notes": (d.notes_sv, d.notes_en)[i],
                    "kind": d.kind,
                    "kind_label": _KIND_LABELS[d.kind][i],
                    "unit_label": d.unit_label(language),
                    "multiplier": d.multiplier,
                    "polarity": d.polarity,
                    "polarity_label": _POLARITY_LABELS[d.polarity][i],
                    "source": d.source,
                    "source_label": _SOURCE_LABELS[d.source][i],
                    "citation": d.citation,
                    "breakdowns": list(d.breakdowns),
                    "breakdown_labels": [_BREAKDOWN_LABELS[b][i] for b in d.breakdowns],
                    "period_types": list(d.period_types),
                    "period_type_labels": [_PERIOD_LABELS[p][i] for p in d.period_types],
                    "target": None
                    if d.target is None
                    else {
                        "value": d.target.value,
                        "direction": d.target.direction,
                        "text": (d.target.text_sv, d.target.text_en)[i],
                        "source": d.target.source,
                    },
                    "compared": d.compare,
                    "form": d.form,
                    "tables": list(d.tables),
                    "window": {
                        "lookback_days": d.lookback_days,
                        "lookahead_days": d.lookahead_days,
                        "lookback": _window_text(d.lookback_days, language),
                        "lookahead": _window_text(d.lookahead_days, language),
                    },
                    "code_lists": [
                        {
                            "name": c.name,
                            "system": c.system,
                            "codes": list(c.codes),
                            "label": (c.label_sv, c.label_en)[i],
                            "source": c.source,
                        }
                        for c in (pack.code_lists[n] for n in d.code_lists)
                    ],
                    "sql": d.case_sql,
                    "views": [
                        {"name": v.name, "description": v.description, "sql": v.raw_sql}
                        for v in views
                    ],
                    "collected": dict(d.collected) if d.collected else None,
                }
            )
    return out
