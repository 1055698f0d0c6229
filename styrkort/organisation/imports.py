"""Imports of units, listings and staffing from CSV or XLSX: validate, show, then write.

Plain functions `validate_units`, `validate_listings` and `validate_staffing` take rows
(``(row_number, record)`` pairs, as `styrkort.tabular` yields them) and return a `Plan`: how
many rows are new, changed and unchanged, samples of each (before and after), and every
refused row (the first `MAX_ERRORS` are kept, all are counted).

`apply_import(actor, kind, path, dry_run)` is the service function that views, the API, the
command line and the background job call. It checks the actor's rights, reads the file in one
streaming pass and, unless it is a dry run, writes in batches inside one transaction, with the
history rows in the same transaction. A single refused row rolls the whole import back: all or
nothing. Memory stays bounded whatever the file size: rows are handled in chunks and only the
keys needed to find duplicates are kept (as bits, not as rows).

History: one ChangeRecord per new or changed unit (and provider). For listings and staffing,
one ChangeRecord per unit and month (listings) or unit and period (staffing), on the unit, with
before and after of every new or changed cell. So "who, when, what (before and after)" holds
for every cell, while a 100 MB file (2.5 million cells) writes 68,000 history rows instead of
2.5 million: measured on 304,000 cells, writing a record per cell took 24 s against 3.4 s
for the whole import as done here, and the history table would outgrow the data.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import re
import shutil
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from styrkort import breakdowns
from styrkort.accounts import access
from styrkort.bulk import insert_rows, update_rows
from styrkort.history.services import new_batch, record_many, snapshot
from styrkort.identifiers import format_org_nr, normalise_org_nr, validate_hsa_id
from styrkort.jobs.services import JobFailed, enqueue
from styrkort.organisation.models import (
    CareUnit,
    Listing,
    Profession,
    Provider,
    Region,
    Staffing,
)
from styrkort.periods import Period, PeriodError
from styrkort.tabular import FileError, RowError, open_table, row_error

log = logging.getLogger(__name__)

KINDS = ("units", "listings", "staffing")
KIND_LABELS = {
    "units": gettext_lazy("Care units"),
    "listings": gettext_lazy("Listed patients"),
    "staffing": gettext_lazy("Staffing"),
}
JOB_KIND = "organisation.import"
MAX_ERRORS = 1000
SAMPLE_SIZE = 20
CHUNK_ROWS = 5000
WRITE_BATCH = 2000
MAX_LISTED = 2_147_483_647
MAX_FTE = Decimal("99999.99")

# (column, required) per kind, in the order files are exported.
COLUMNS: dict[str, tuple[tuple[str, bool], ...]] = {
    "units": (
        ("hsa_id", True), ("name", True), ("provider_org_nr", True), ("provider_name", False),
        ("provider_kind", False), ("municipality", True), ("opened", False), ("closed", False),
    ),
    "listings": (
        ("unit_hsa_id", True), ("month", True), ("sex", True), ("age_band", True),
        ("listed", True),
    ),
    "staffing": (("unit_hsa_id", True), ("period", True), ("profession", True), ("fte", True)),
}  # fmt: skip


def column_names(kind: str) -> list[str]:
    return [name for name, _required in COLUMNS[kind]]


# ---------------------------------------------------------------------------------------------
# Plans and results


@dataclass
class Change:
    """One new or changed row of a plan: which, and the values before and after."""

    row: int
    label: str
    before: dict | None
    after: dict

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Plan:
    """What an import would do (or did): counts, samples, refused rows."""

    kind: str
    sample_size: int | None = None
    rows: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    new_items: list[Change] = field(default_factory=list)
    changed_items: list[Change] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    fatal: bool = False
    ignored_columns: list[str] = field(default_factory=list)
    providers_new: int = 0
    providers_changed: int = 0

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    @property
    def has_changes(self) -> bool:
        return bool(self.new or self.changed or self.providers_new or self.providers_changed)

    def add_error(self, error: RowError) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(error)

    def wants(self, items: list[Change]) -> bool:
        """Whether a sample list has room (callers skip building labels when it has not)."""
        return self.sample_size is None or len(items) < self.sample_size

    def add_new(self, row: int, label: str, after: dict) -> None:
        self.new += 1
        if self.wants(self.new_items):
            self.new_items.append(Change(row, label, None, after))

    def add_changed(self, row: int, label: str, before: dict, after: dict) -> None:
        self.changed += 1
        if self.wants(self.changed_items):
            self.changed_items.append(Change(row, label, before, after))

    def count(self, total: int, new: list, changed: list, describe_new, describe_changed) -> None:
        """Count a chunk's rows; describe (row, label, before, after) only those sampled."""
        self.new += len(new)
        self.changed += len(changed)
        self.unchanged += total - len(new) - len(changed)
        for items, samples, describe in (
            (new, self.new_items, describe_new),
            (changed, self.changed_items, describe_changed),
        ):
            room = len(items) if self.sample_size is None else self.sample_size - len(samples)
            samples.extend(Change(*describe(item)) for item in items[: max(room, 0)])

    def summary(self) -> str:
        noun = {
            "units": _("units"), "listings": _("listing rows"), "staffing": _("staffing rows"),
        }[self.kind]  # fmt: skip
        text = _("%(new)d new, %(changed)d changed, %(unchanged)d unchanged %(noun)s") % {
            "new": self.new, "changed": self.changed, "unchanged": self.unchanged, "noun": noun,
        }  # fmt: skip
        if self.providers_new or self.providers_changed:
            text += "; " + _("%(new)d new, %(changed)d changed providers") % {
                "new": self.providers_new, "changed": self.providers_changed,
            }  # fmt: skip
        return text

    def as_dict(self) -> dict:
        return {
            "kind": self.kind, "rows": self.rows, "new": self.new, "changed": self.changed,
            "unchanged": self.unchanged,
            "new_items": [c.as_dict() for c in self.new_items],
            "changed_items": [c.as_dict() for c in self.changed_items],
            "errors": [e.as_dict() for e in self.errors], "error_count": self.error_count,
            "fatal": self.fatal, "ignored_columns": self.ignored_columns,
            "providers_new": self.providers_new, "providers_changed": self.providers_changed,
            "ok": self.ok, "summary": self.summary(),
        }  # fmt: skip


@dataclass
class ImportResult:
    """The outcome of `apply_import`: the plan, and whether (and as which batch) it was
    written."""

    plan: Plan
    dry_run: bool
    applied: bool = False
    batch: str = ""
    history_records: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.plan.ok

    def summary(self) -> str:
        text = self.plan.summary()
        if not self.plan.ok:
            return _("Refused: %(n)d errors; nothing was written (%(plan)s)") % {
                "n": self.plan.error_count, "plan": text,
            }  # fmt: skip
        if self.dry_run:
            return _("%(plan)s (dry run: nothing written)") % {"plan": text}
        return text

    def as_dict(self) -> dict:
        data = self.plan.as_dict()
        data.update(
            dry_run=self.dry_run, applied=self.applied, batch=self.batch,
            history_records=self.history_records, seconds=round(self.seconds, 2),
            summary=self.summary(),
        )  # fmt: skip
        return data


# ---------------------------------------------------------------------------------------------
# Duplicate detection with bounded memory


_BITS = tuple(1 << i for i in range(64))


class SeenKeys:
    """Remembers which keys a file has had, in a few bytes per unit and month.

    Keys are (unit, group, cell): a group is a month (listings) or a period (staffing), a cell
    one of at most 64 positions in it (sex × age band, profession), kept as one bit of an
    integer per unit and group. Row numbers are not kept (they would cost more than the rest of
    an import together); the row a duplicate repeats is looked up afterwards, for the reported
    duplicates only (see _Importer.resolve_duplicates).
    """

    def __init__(self) -> None:
        self.units: dict[int, dict[object, int]] = {}

    def seen_before(self, unit_id: int, group: object, cell: int) -> bool:
        """Whether this key was seen before (and remember it if not)."""
        groups = self.units.get(unit_id)
        if groups is None:
            groups = self.units[unit_id] = {}
        mask = groups.get(group, 0)
        bit = _BITS[cell]
        if mask & bit:
            return True
        groups[group] = mask | bit
        return False


# ---------------------------------------------------------------------------------------------
# Importers: one per kind. parse() checks one row; flush() compares a chunk with the database
# and, when asked to, writes it.


class _Importer:
    kind = ""

    def __init__(
        self,
        region: Region,
        plan: Plan,
        *,
        allowed_unit_ids: set[int] | None = None,
        actor=None,
        batch: str = "",
    ) -> None:
        self.region = region
        self.plan = plan
        self.allowed_unit_ids = allowed_unit_ids
        self.actor = actor
        self.batch = batch
        self.history_records = 0
        self.pending_duplicates: dict[tuple, list[int]] = {}

    def error(self, row: int, column: str, value: object, rule: str, message: str) -> None:
        self.plan.add_error(row_error(row, column, value, rule, message))

    def check_columns(self, columns: Iterable[str]) -> bool:
        present = set(columns)
        wanted = column_names(self.kind)
        missing = [
            name for name, required in COLUMNS[self.kind] if required and name not in present
        ]
        for name in missing:
            self.error(
                1, name, "", "missing_column",
                _("The column %(name)s is missing. A %(kind)s file has the columns: %(all)s.")
                % {"name": name, "kind": self.kind, "all": ", ".join(wanted)},
            )  # fmt: skip
        self.plan.ignored_columns = [c for c in columns if c not in wanted]
        return not missing

    def parse(self, row: int, record: dict[str, str]):
        raise NotImplementedError

    def group_of(self, item) -> object:
        """What one history record covers (a unit's month of listings, say); chunks are not
        cut inside one."""
        return None

    # Duplicates: found with SeenKeys (no row numbers kept); the rows they repeat are looked up
    # in a second reading of the file, for the reported duplicates only.

    def duplicate_message(self, first: int | None) -> str:
        raise NotImplementedError

    def key_of(self, record: dict[str, str]) -> tuple | None:
        """The duplicate key of a record, without checking it (for resolve_duplicates)."""
        return None

    def duplicate(self, row: int, value: str, key: tuple) -> None:
        index = len(self.plan.errors)
        self.error(row, "unit_hsa_id", value, "duplicate", self.duplicate_message(None))
        if len(self.plan.errors) > index:
            self.pending_duplicates.setdefault(key, []).append(index)

    def resolve_duplicates(self, rows: Iterable[tuple[int, dict[str, str]]]) -> None:
        """Name, in each reported duplicate, the row it repeats."""
        pending = self.pending_duplicates
        first_rows: dict[tuple, int] = {}
        iterator = iter(rows)
        try:
            for row, record in iterator:
                key = self.key_of(record)
                if key in pending and key not in first_rows:
                    first_rows[key] = row
                    if len(first_rows) == len(pending):
                        break
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
        for key, indexes in pending.items():
            if key in first_rows:
                message = self.duplicate_message(first_rows[key])
                for i in indexes:
                    self.plan.errors[i] = dataclasses.replace(self.plan.errors[i], message=message)

    def flush(self, items: list, write: bool) -> None:
        raise NotImplementedError


class _UnitRowsMixin(_Importer):
    """Shared by listings and staffing: resolving unit_hsa_id to one of the region's units."""

    def _load_units(self) -> None:
        self.units_by_hsa = {u.hsa_id: u for u in CareUnit.objects.filter(region=self.region)}
        self.units_by_id = {u.pk: u for u in self.units_by_hsa.values()}

    def unit_id(self, row: int, hsa_id: str) -> int | None:
        unit = self.units_by_hsa.get(hsa_id)
        if unit is not None:
            if self.allowed_unit_ids is None or unit.pk in self.allowed_unit_ids:
                return unit.pk
            self.error(
                row, "unit_hsa_id", hsa_id, "not_your_unit",
                _("Not your unit: you may import data only for the units you manage."),
            )  # fmt: skip
            return None
        if not hsa_id:
            self.error(row, "unit_hsa_id", "", "required", _("The unit's HSA-id is missing."))
            return None
        try:
            validate_hsa_id(hsa_id)
        except ValueError as exc:
            self.error(row, "unit_hsa_id", hsa_id, "invalid_hsa_id", _("Invalid HSA-id: %s.") % exc)
            return None
        self.error(
            row, "unit_hsa_id", hsa_id, "unknown_unit",
            _("No care unit in %(region)s has this HSA-id. Import the unit first.")
            % {"region": self.region.name},
        )  # fmt: skip
        return None


def _group_by_unit(pairs: Iterable[tuple[int, str]]) -> dict[int, set[str]]:
    by_unit: dict[int, set[str]] = defaultdict(set)
    for unit_id, group in pairs:
        by_unit[unit_id].add(group)
    return by_unit


def _unit_group_query(by_unit: dict[int, set[str]], group_field: str) -> Iterator[Q]:
    """OR-ed (unit, month/period) filters, a few units per query to stay within SQL limits."""
    unit_ids = sorted(by_unit)
    for start in range(0, len(unit_ids), 50):
        q = Q()
        for unit_id in unit_ids[start : start + 50]:
            q |= Q(unit_id=unit_id, **{f"{group_field}__in": sorted(by_unit[unit_id])})
        yield q


@dataclass(slots=True)
class _ListingRow:
    row: int
    unit_id: int
    month: str
    sex: str
    age_band: str
    listed: int
    cell: int  # sex × age band, 0–37


_MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_BAND_INDEX = {band: i for i, band in enumerate(breakdowns.AGE_BANDS)}
_SEX_INDEX = {sex: i for i, sex in enumerate(breakdowns.SEXES)}
_INT_RE = re.compile(r"^-?\d+$")


def _parse_count(text: str) -> tuple[int | None, str]:
    """(value, rule broken or '') for a count: a non-negative integer, spaces allowed as
    thousands separators."""
    # The common case is checked without a regex (no match object: this runs once per row).
    if (text.isdigit() and text.isascii()) or _INT_RE.match(text):
        value = int(text)
    else:
        cleaned = text.replace(" ", "").replace("\u00a0", "").replace(",", ".")
        if not cleaned:
            return None, "required"
        try:
            number = Decimal(cleaned)
        except InvalidOperation:
            return None, "not_integer"
        if not number.is_finite() or number != number.to_integral_value():
            return None, "not_integer"
        value = int(number)
    if value < 0:
        return None, "negative"
    if value > MAX_LISTED:
        return None, "too_large"
    return value, ""


class ListingImporter(_UnitRowsMixin):
    kind = "listings"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._load_units()
        self.seen = SeenKeys()
        self.months: dict[str, int] = {}
        self.labels: dict[str, list[str]] = {}

    def _month(self, row: int, text: str) -> int | None:
        ordinal = self.months.get(text)
        if ordinal is not None:
            return ordinal
        m = _MONTH_RE.match(text)
        if not m or not 1900 <= int(m.group(1)) <= 2999:
            self.error(
                row, "month", text, "month_format",
                _("Write the month as YYYY-MM, e.g. 2025-03 (in Excel, format the column as "
                  "text so it is not turned into a date)."),
            )  # fmt: skip
            return None
        ordinal = int(m.group(1)) * 12 + int(m.group(2)) - 1
        if len(self.months) < 100_000:
            self.months[text] = ordinal
        return ordinal

    def parse(self, row: int, record: dict[str, str]) -> _ListingRow | None:
        unit_id = self.unit_id(row, record["unit_hsa_id"])
        month_text = record["month"]
        month = self._month(row, month_text)
        sex = record["sex"].upper()
        sex_index = _SEX_INDEX.get(sex)
        if sex_index is None:
            self.error(
                row, "sex", record["sex"], "sex",
                _("Sex must be K (women) or M (men); totals are computed, not imported."),
            )  # fmt: skip
        band = record["age_band"].replace("\u2013", "-").replace(" ", "")
        band_index = _BAND_INDEX.get(band)
        if band_index is None:
            self.error(
                row, "age_band", record["age_band"], "age_band",
                _("Unknown age band; use one of %(bands)s.")
                % {"bands": ", ".join(breakdowns.AGE_BANDS)},
            )  # fmt: skip
        listed, rule = _parse_count(record["listed"])
        if rule:
            self.error(row, "listed", record["listed"], rule, _COUNT_MESSAGES[rule]())
        if unit_id is None or month is None or sex_index is None or band_index is None:
            return None
        if listed is None:
            return None
        cell = sex_index * len(breakdowns.AGE_BANDS) + band_index
        if self.seen.seen_before(unit_id, month, cell):
            self.duplicate(row, record["unit_hsa_id"], (unit_id, month, cell))
            return None
        return _ListingRow(row, unit_id, month_text, sex, band, listed, cell)

    def group_of(self, item: _ListingRow) -> object:
        return (item.unit_id, item.month)

    def duplicate_message(self, first: int | None) -> str:
        if first is None:
            return _("Duplicate: an earlier row has the same unit, month, sex and age band.")
        return _("Duplicate: row %(first)d has the same unit, month, sex and age band.") % {
            "first": first
        }

    def key_of(self, record: dict[str, str]) -> tuple | None:
        unit = self.units_by_hsa.get(record["unit_hsa_id"])
        month = self.months.get(record["month"])
        sex = _SEX_INDEX.get(record["sex"].upper())
        band = _BAND_INDEX.get(record["age_band"].replace("\u2013", "-").replace(" ", ""))
        if unit is None or month is None or sex is None or band is None:
            return None
        return (unit.pk, month, sex * len(breakdowns.AGE_BANDS) + band)

    def label(self, item: _ListingRow) -> str:
        hsa = self.units_by_id[item.unit_id].hsa_id
        return f"{hsa} · {item.month} · {item.sex} · {item.age_band}"

    def flush(self, items: list[_ListingRow], write: bool) -> None:
        existing: dict[tuple, tuple[int, int]] = {}
        by_unit = _group_by_unit((i.unit_id, i.month) for i in items)
        for q in _unit_group_query(by_unit, "month"):
            for pk, unit_id, month, sex, band, listed in Listing.objects.filter(q).values_list(
                "pk", "unit_id", "month", "sex", "age_band", "listed"
            ):
                existing[(unit_id, month, sex, band)] = (pk, listed)
        new: list[_ListingRow] = []
        changed: list[tuple[_ListingRow, int, int]] = []
        for item in items:
            found = existing.get((item.unit_id, item.month, item.sex, item.age_band))
            if found is None:
                new.append(item)
            elif found[1] != item.listed:
                changed.append((item, found[0], found[1]))
        self.plan.count(
            len(items), new, changed,
            lambda i: (i.row, self.label(i), None, {"listed": i.listed}),
            lambda c: (c[0].row, self.label(c[0]), {"listed": c[2]}, {"listed": c[0].listed}),
        )  # fmt: skip
        if not write or not (new or changed):
            return
        insert_rows(
            Listing, ("unit_id", "month", "sex", "age_band", "listed"),
            [(i.unit_id, i.month, i.sex, i.age_band, i.listed) for i in new],
        )  # fmt: skip
        update_rows(Listing, ("listed",), [(item.listed, pk) for item, pk, _old in changed])
        # History: one record per unit and month, every changed cell before and after. (Labels
        # are cached and groups looked up only when they change: this runs once per row.)
        groups: dict[tuple[int, str], tuple[dict, dict]] = {}
        last: tuple[int, str] | None = None
        before: dict[str, int] = {}
        after: dict[str, int] = {}
        for item in new:
            if last is None or item.unit_id != last[0] or item.month != last[1]:
                last = (item.unit_id, item.month)
                before, after = groups.setdefault(last, ({}, {}))
            after[self._cell_labels(item.month)[item.cell]] = item.listed
        for item, _pk, old in changed:
            before, after = groups.setdefault((item.unit_id, item.month), ({}, {}))
            label = self._cell_labels(item.month)[item.cell]
            before[label] = old
            after[label] = item.listed
        self.history_records += record_many(
            self.actor,
            [
                {
                    "action": "import", "obj": self.units_by_id[unit_id], "before": before or None,
                    "after": after, "note": _("Listed patients %(month)s: %(n)d cells")
                    % {"month": month, "n": len(after)},
                }
                for (unit_id, month), (before, after) in groups.items()
            ],
            batch=self.batch,
        )  # fmt: skip

    def _cell_labels(self, month: str) -> list[str]:
        """History keys of a month's cells, e.g. "2025-03 K 25-29", by cell index."""
        labels = self.labels.get(month)
        if labels is None:
            labels = self.labels[month] = [
                f"{month} {sex} {band}" for sex in breakdowns.SEXES for band in breakdowns.AGE_BANDS
            ]
        return labels


_COUNT_MESSAGES: dict[str, Callable[[], str]] = {
    "required": lambda: _("A count is required."),
    "not_integer": lambda: _("A count must be a whole number, e.g. 1234."),
    "negative": lambda: _("A count cannot be negative."),
    "too_large": lambda: _("The number is too large."),
}


@dataclass(slots=True)
class _StaffingRow:
    row: int
    unit_id: int
    period: str
    profession: str
    fte: Decimal


_PROFESSIONS = {value: i for i, value in enumerate(Profession.values)}
_PERIOD_KIND_OFFSET = {"year": 0, "quarter": 0, "month": 4}


def _period_code(period: Period) -> int:
    """A small integer per period: year × 20 + 0 (year), 1–4 (quarter) or 5–16 (month)."""
    offset = 0 if period.kind == "year" else period.index + _PERIOD_KIND_OFFSET[period.kind]
    return period.year * 20 + offset


class StaffingImporter(_UnitRowsMixin):
    kind = "staffing"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._load_units()
        self.seen = SeenKeys()
        self.periods: dict[str, tuple[str, int]] = {}

    def _period(self, row: int, text: str) -> tuple[str, int] | None:
        found = self.periods.get(text)
        if found is not None:
            return found
        try:
            period = Period.parse(text.upper())
        except PeriodError:
            self.error(
                row, "period", text, "period_format",
                _("Write the period as a year (2025), a quarter (2025Q1) or a month (2025-03)."),
            )  # fmt: skip
            return None
        found = (str(period), _period_code(period))
        if len(self.periods) < 100_000:
            self.periods[text] = found
        return found

    def _fte(self, row: int, text: str) -> Decimal | None:
        cleaned = text.replace(" ", "").replace("\u00a0", "").replace(",", ".")
        if not cleaned:
            self.error(row, "fte", text, "required", _("Full-time equivalents are required."))
            return None
        try:
            value = Decimal(cleaned)
        except InvalidOperation:
            value = None
        if value is None or not value.is_finite():
            self.error(
                row, "fte", text, "not_number",
                _("Full-time equivalents must be a number, e.g. 1,5 or 0.75."),
            )  # fmt: skip
            return None
        if value < 0:
            self.error(row, "fte", text, "negative", _("Full-time equivalents cannot be negative."))
            return None
        if value > MAX_FTE:
            self.error(row, "fte", text, "too_large", _("The number is too large."))
            return None
        if value != value.quantize(Decimal("0.01")):
            self.error(
                row, "fte", text, "decimals", _("Full-time equivalents have at most two decimals.")
            )
            return None
        return value.quantize(Decimal("0.01"))

    def parse(self, row: int, record: dict[str, str]) -> _StaffingRow | None:
        unit_id = self.unit_id(row, record["unit_hsa_id"])
        period = self._period(row, record["period"])
        profession = record["profession"].lower()
        profession_index = _PROFESSIONS.get(profession)
        if profession_index is None:
            self.error(
                row, "profession", record["profession"], "profession",
                _("Unknown profession; use one of %(codes)s.")
                % {"codes": ", ".join(Profession.values)},
            )  # fmt: skip
        fte = self._fte(row, record["fte"])
        if unit_id is None or period is None or profession_index is None or fte is None:
            return None
        if self.seen.seen_before(unit_id, period[1], profession_index):
            self.duplicate(row, record["unit_hsa_id"], (unit_id, period[1], profession_index))
            return None
        return _StaffingRow(row, unit_id, period[0], profession, fte)

    def group_of(self, item: _StaffingRow) -> object:
        return (item.unit_id, item.period)

    def duplicate_message(self, first: int | None) -> str:
        if first is None:
            return _("Duplicate: an earlier row has the same unit, period and profession.")
        return _("Duplicate: row %(first)d has the same unit, period and profession.") % {
            "first": first
        }

    def key_of(self, record: dict[str, str]) -> tuple | None:
        unit = self.units_by_hsa.get(record["unit_hsa_id"])
        period = self.periods.get(record["period"])
        profession = _PROFESSIONS.get(record["profession"].lower())
        if unit is None or period is None or profession is None:
            return None
        return (unit.pk, period[1], profession)

    def label(self, item: _StaffingRow) -> str:
        hsa = self.units_by_id[item.unit_id].hsa_id
        return f"{hsa} · {item.period} · {item.profession}"

    def flush(self, items: list[_StaffingRow], write: bool) -> None:
        existing: dict[tuple, tuple[int, Decimal]] = {}
        by_unit = _group_by_unit((i.unit_id, i.period) for i in items)
        for q in _unit_group_query(by_unit, "period"):
            for pk, unit_id, period, profession, fte in Staffing.objects.filter(q).values_list(
                "pk", "unit_id", "period", "profession", "fte"
            ):
                existing[(unit_id, period, profession)] = (pk, fte)
        new: list[_StaffingRow] = []
        changed: list[tuple[_StaffingRow, int, Decimal]] = []
        for item in items:
            found = existing.get((item.unit_id, item.period, item.profession))
            if found is None:
                new.append(item)
            elif found[1] != item.fte:
                changed.append((item, found[0], found[1]))
        self.plan.count(
            len(items), new, changed,
            lambda i: (i.row, self.label(i), None, {"fte": str(i.fte)}),
            lambda c: (c[0].row, self.label(c[0]), {"fte": str(c[2])}, {"fte": str(c[0].fte)}),
        )  # fmt: skip
        if not write or not (new or changed):
            return
        insert_rows(
            Staffing, ("unit_id", "period", "profession", "fte"),
            [(i.unit_id, i.period, i.profession, i.fte) for i in new],
        )  # fmt: skip
        update_rows(Staffing, ("fte",), [(item.fte, pk) for item, pk, _old in changed])
        groups: dict[tuple[int, str], tuple[dict, dict]] = defaultdict(lambda: ({}, {}))
        for item in new:
            groups[(item.unit_id, item.period)][1][f"{item.period} {item.profession}"] = str(
                item.fte
            )
        for item, _pk, old in changed:
            before, after = groups[(item.unit_id, item.period)]
            before[f"{item.period} {item.profession}"] = str(old)
            after[f"{item.period} {item.profession}"] = str(item.fte)
        self.history_records += record_many(
            self.actor,
            [
                {
                    "action": "import", "obj": self.units_by_id[unit_id], "before": before or None,
                    "after": after, "note": _("Staffing %(period)s: %(n)d professions")
                    % {"period": period, "n": len(after)},
                }
                for (unit_id, period), (before, after) in groups.items()
            ],
            batch=self.batch,
        )  # fmt: skip


@dataclass
class _ProviderState:
    """A provider as the file describes it, compared with the registry."""

    org_nr: str
    existing: Provider | None
    name: str
    kind: str
    first_row: int | None
    saved: Provider | None = None  # the registry's provider once it exists (or is planned)
    counted: bool = False

    @property
    def changed(self) -> bool:
        return self.existing is not None and (
            self.existing.name != self.name or self.existing.kind != self.kind
        )


@dataclass(slots=True)
class _UnitRow:
    row: int
    hsa_id: str
    name: str
    provider: _ProviderState
    municipality: str
    opened: date | None
    closed: date | None


UNIT_COMPARED = ("name", "municipality", "provider", "opened", "closed")


def _parse_date(text: str) -> date | None:
    return date.fromisoformat(text) if re.match(r"^\d{4}-\d{2}-\d{2}$", text) else None


class UnitImporter(_Importer):
    kind = "units"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.providers: dict[str, _ProviderState] = {
            p.org_nr: _ProviderState(p.org_nr, p, p.name, p.kind, None, saved=p)
            for p in Provider.objects.filter(region=self.region)
        }
        self.seen_hsa: dict[str, int] = {}

    def _provider(self, row: int, record: dict[str, str]) -> _ProviderState | None:
        raw = record["provider_org_nr"]
        name = record.get("provider_name", "")
        kind = record.get("provider_kind", "").lower()
        ok = True
        if kind and kind not in Provider.Kind.values:
            self.error(
                row, "provider_kind", record.get("provider_kind", ""), "provider_kind",
                _("The provider kind is region (run by the region) or private."),
            )  # fmt: skip
            ok = False
        if len(name) > 200:
            self.error(row, "provider_name", name, "too_long", _("At most 200 characters."))
            ok = False
        if not raw:
            self.error(row, "provider_org_nr", "", "required",
                       _("The provider's organisation number is required."))  # fmt: skip
            return None
        try:
            org_nr = normalise_org_nr(raw)
        except ValueError as exc:
            self.error(
                row, "provider_org_nr", raw, "invalid_org_nr",
                _("Invalid organisation number: %s.") % exc,
            )  # fmt: skip
            return None
        if not ok:
            return None
        state = self.providers.get(org_nr)
        if state is None:
            missing = [c for c, v in (("provider_name", name), ("provider_kind", kind)) if not v]
            for column in missing:
                self.error(
                    row, column, "", "required",
                    _("%(org)s is a new provider: give its name and kind (region or private).")
                    % {"org": format_org_nr(org_nr)},
                )  # fmt: skip
            if missing:
                return None
            state = _ProviderState(org_nr, None, name, kind, row)
            self.providers[org_nr] = state
            return state
        if state.first_row is None:
            state.first_row = row
            state.name = name or state.name
            state.kind = kind or state.kind
            return state
        for column, value, current in (("provider_name", name, state.name),
                                       ("provider_kind", kind, state.kind)):  # fmt: skip
            if value and value != current:
                self.error(
                    row, column, value, "provider_conflict",
                    _("Row %(first)d gives this provider as %(current)s; one provider has one "
                      "name and kind.") % {"first": state.first_row, "current": current},
                )  # fmt: skip
                ok = False
        return state if ok else None

    def parse(self, row: int, record: dict[str, str]) -> _UnitRow | None:
        ok = True
        hsa_id = record["hsa_id"]
        if not hsa_id:
            self.error(row, "hsa_id", "", "required", _("The HSA-id is required."))
            ok = False
        else:
            try:
                validate_hsa_id(hsa_id)
            except ValueError as exc:
                self.error(row, "hsa_id", hsa_id, "invalid_hsa_id", _("Invalid HSA-id: %s.") % exc)
                ok = False
            else:
                first = self.seen_hsa.get(hsa_id)
                if first is not None:
                    self.error(
                        row, "hsa_id", hsa_id, "duplicate",
                        _("Duplicate unit: row %(first)d has the same HSA-id.") % {"first": first},
                    )  # fmt: skip
                    ok = False
                else:
                    self.seen_hsa[hsa_id] = row
        for column, limit in (("name", 200), ("municipality", 100)):
            value = record[column]
            if not value:
                self.error(row, column, "", "required", _("This value is required."))
                ok = False
            elif len(value) > limit:
                self.error(row, column, value, "too_long",
                           _("At most %(n)d characters.") % {"n": limit})  # fmt: skip
                ok = False
        dates: dict[str, date | None] = {}
        for column in ("opened", "closed"):
            text = record.get(column, "")
            try:
                dates[column] = _parse_date(text) if text else None
            except ValueError:
                dates[column] = None
            if text and dates[column] is None:
                self.error(row, column, text, "date_format",
                           _("Write the date as YYYY-MM-DD, e.g. 2025-03-01."))  # fmt: skip
                ok = False
        if dates["opened"] and dates["closed"] and dates["closed"] <= dates["opened"]:
            self.error(row, "closed", record["closed"], "closed_before_opened",
                       _("A unit must close after it opened."))  # fmt: skip
            ok = False
        provider = self._provider(row, record)
        if not ok or provider is None:
            return None
        return _UnitRow(row, hsa_id, record["name"], provider, record["municipality"],
                        dates["opened"], dates["closed"])  # fmt: skip

    @staticmethod
    def _view(unit_or_row) -> dict:
        """The compared fields in the form people read them (provider by org nr)."""
        provider = unit_or_row.provider
        org_nr = provider.org_nr
        return {
            "name": unit_or_row.name, "municipality": unit_or_row.municipality,
            "provider": format_org_nr(org_nr),
            "opened": unit_or_row.opened.isoformat() if unit_or_row.opened else None,
            "closed": unit_or_row.closed.isoformat() if unit_or_row.closed else None,
        }  # fmt: skip

    def _count_providers(self, items: list[_UnitRow]) -> list[_ProviderState]:
        """Providers first referenced in this chunk that are new or change, counted once."""
        pending: list[_ProviderState] = []
        for item in items:
            state = item.provider
            if not state.counted and (state.existing is None or state.changed):
                state.counted = True
                pending.append(state)
        for state in pending:
            label = _("Provider %(org)s") % {"org": format_org_nr(state.org_nr)}
            after = {"name": state.name, "kind": state.kind}
            if state.existing is None:
                self.plan.providers_new += 1
                self.plan.new_items.append(Change(state.first_row or 0, label, None, after))
            else:
                self.plan.providers_changed += 1
                before = {"name": state.existing.name, "kind": state.existing.kind}
                self.plan.changed_items.append(Change(state.first_row or 0, label, before, after))
        return pending

    def flush(self, items: list[_UnitRow], write: bool) -> None:
        existing = {
            u.hsa_id: u
            for u in CareUnit.objects.select_related("provider").filter(
                hsa_id__in=[i.hsa_id for i in items]
            )
        }
        pending_providers = self._count_providers(items)
        new, changed = [], []
        for item in items:
            unit = existing.get(item.hsa_id)
            if unit is not None and unit.region_id != self.region.pk:
                self.error(
                    item.row, "hsa_id", item.hsa_id, "other_region",
                    _("This HSA-id belongs to a unit outside %(region)s.")
                    % {"region": self.region.name},
                )  # fmt: skip
                continue
            after = self._view(item)
            if unit is None:
                new.append(item)
                self.plan.add_new(item.row, item.hsa_id, after)
                continue
            before = self._view(unit)
            if before != after:
                changed.append((item, unit))
                diff = [k for k in UNIT_COMPARED if before[k] != after[k]]
                self.plan.add_changed(
                    item.row, item.hsa_id, {k: before[k] for k in diff}, {k: after[k] for k in diff}
                )
            else:
                self.plan.unchanged += 1
        if not write or not self.plan.ok:
            return
        entries = []
        for state in pending_providers:
            if state.existing is None:
                provider = Provider(
                    region=self.region, org_nr=state.org_nr, name=state.name, kind=state.kind
                )
                provider.save()
                entries.append({"action": "create", "obj": provider, "after": snapshot(provider)})
            else:
                provider = state.existing
                before = snapshot(provider)
                provider.name, provider.kind = state.name, state.kind
                provider.save(update_fields=["name", "kind"])
                entries.append({"action": "update", "obj": provider, "before": before,
                                    "after": snapshot(provider)})  # fmt: skip
            state.saved = provider
        created = CareUnit.objects.bulk_create(
            [
                CareUnit(
                    region=self.region, provider=item.provider.saved, hsa_id=item.hsa_id,
                    name=item.name, municipality=item.municipality, opened=item.opened,
                    closed=item.closed,
                )
                for item in new
            ],
            batch_size=WRITE_BATCH,
        )  # fmt: skip
        entries += [{"action": "create", "obj": u, "after": snapshot(u)} for u in created]
        updated = []
        for item, unit in changed:
            before = snapshot(unit)
            unit.name, unit.municipality = item.name, item.municipality
            unit.provider = item.provider.saved  # type: ignore[assignment]  # saved above
            unit.opened, unit.closed = item.opened, item.closed
            updated.append(unit)
            entries.append(
                {"action": "update", "obj": unit, "before": before, "after": snapshot(unit)}
            )
        CareUnit.objects.bulk_update(
            updated, ["name", "municipality", "provider", "opened", "closed"],
            batch_size=WRITE_BATCH,
        )  # fmt: skip
        self.history_records += record_many(self.actor, entries, batch=self.batch)


IMPORTERS: dict[str, type[_Importer]] = {
    "units": UnitImporter, "listings": ListingImporter, "staffing": StaffingImporter,
}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Running an import


def _run(importer: _Importer, rows: Iterable[tuple[int, dict[str, str]]], *, write: bool) -> None:
    """One streaming pass: check every row, compare and (if write and all is well so far) write
    chunk by chunk. Errors stop the writing but not the checking, so every refused row is
    reported; the caller rolls back when any was found."""
    plan = importer.plan
    chunk: list = []
    count = 0
    parse, flush, group_of = importer.parse, importer.flush, importer.group_of
    source = rows
    rows = iter(rows)
    try:
        first = next(rows, None)
        if first is None:
            return
        if not importer.check_columns(first[1].keys()):
            plan.fatal = True
            return
        count = 0
        for row, record in itertools.chain((first,), rows):
            count += 1
            item = parse(row, record)
            if item is None:
                continue
            # A chunk ends where a unit's month (or period) ends, so that a sorted file gives
            # one history record per unit and month; an unsorted one is cut at twice the size.
            if len(chunk) >= CHUNK_ROWS and (
                len(chunk) >= 2 * CHUNK_ROWS or group_of(item) != group_of(chunk[-1])
            ):
                flush(chunk, write and plan.ok)
                chunk = []
            chunk.append(item)
        if chunk:
            flush(chunk, write and plan.ok)
    except FileError as exc:
        plan.add_error(exc.error)
        plan.fatal = True
    finally:
        plan.rows = count
    if importer.pending_duplicates and iter(source) is not source:
        _resolve_duplicates(importer, source)


def _resolve_duplicates(importer: _Importer, source) -> None:
    """Read the file again (without progress reports) to name the rows duplicates repeat."""
    progress = getattr(source, "progress", None)
    if progress is not None:
        source.progress = None
    try:
        importer.resolve_duplicates(source)
    except FileError:
        pass  # the first reading reported it
    finally:
        if progress is not None:
            source.progress = progress


def _validate(kind: str, rows, region: Region, allowed_unit_ids, sample_size) -> Plan:
    plan = Plan(kind, sample_size=sample_size)
    importer = IMPORTERS[kind](region, plan, allowed_unit_ids=allowed_unit_ids)
    _run(importer, rows, write=False)
    return plan


def validate_units(rows, region: Region, *, sample_size: int | None = None) -> Plan:
    """What importing these unit rows into the region would do; writes nothing."""
    return _validate("units", rows, region, None, sample_size)


def validate_listings(
    rows, region: Region, *, allowed_unit_ids: set[int] | None = None,
    sample_size: int | None = None,
) -> Plan:  # fmt: skip
    """What importing these listing rows into the region would do; writes nothing."""
    return _validate("listings", rows, region, allowed_unit_ids, sample_size)


def validate_staffing(
    rows, region: Region, *, allowed_unit_ids: set[int] | None = None,
    sample_size: int | None = None,
) -> Plan:  # fmt: skip
    """What importing these staffing rows would do; unit managers pass their own units as
    allowed_unit_ids. Writes nothing."""
    return _validate("staffing", rows, region, allowed_unit_ids, sample_size)


def allowed_units_for_import(actor, kind: str) -> set[int] | None:
    """Raise PermissionDenied unless the actor may import this kind; return the unit ids the
    actor may import rows for (None: every unit of the region)."""
    if kind not in KINDS:
        raise ValueError(f"unknown import kind {kind!r}")
    if access.can(actor, "import_data"):
        return None
    if kind == "staffing" and access.can(actor, "edit_unit_data"):
        return set(access.editable_units(actor).values_list("pk", flat=True))
    raise PermissionDenied("import_data")


def may_import(actor, kind: str) -> bool:
    try:
        allowed_units_for_import(actor, kind)
    except PermissionDenied:
        return False
    return True


def importable_kinds(actor) -> list[str]:
    return [kind for kind in KINDS if may_import(actor, kind)]


def apply_import(
    actor,
    kind: str,
    path: str | Path,
    dry_run: bool,
    *,
    progress: Callable[[int, int], None] | None = None,
    sample_size: int | None = SAMPLE_SIZE,
) -> ImportResult:
    """Check a file and, unless dry_run, write it in one transaction with its history.

    Raises PermissionDenied when the actor may not import this kind; everything wrong with
    the file itself is reported in the result's plan (and then nothing is written).
    """
    allowed = allowed_units_for_import(actor, kind)
    region = access.get_region_for_user(actor)
    started = time.monotonic()
    plan = Plan(kind, sample_size=sample_size)
    result = ImportResult(plan=plan, dry_run=dry_run)
    try:
        reader = open_table(path, progress=progress, on_error=plan.add_error)
    except FileError as exc:
        plan.add_error(exc.error)
        plan.fatal = True
        return result
    if dry_run:
        importer = IMPORTERS[kind](region, plan, allowed_unit_ids=allowed, actor=actor)
        _run(importer, reader, write=False)
    else:
        batch = new_batch()
        with transaction.atomic():
            # Imports into one region run one at a time (PostgreSQL; SQLite has one writer).
            Region.objects.select_for_update().filter(pk=region.pk).first()
            importer = IMPORTERS[kind](
                region, plan, allowed_unit_ids=allowed, actor=actor, batch=batch
            )
            _run(importer, reader, write=True)
            if plan.ok and plan.has_changes:
                result.applied = True
                result.batch = batch
                result.history_records = importer.history_records
            else:
                transaction.set_rollback(True)
    result.seconds = time.monotonic() - started
    log.info("import %s by %s: %s", kind, getattr(actor, "username", actor), result.summary())
    return result


# ---------------------------------------------------------------------------------------------
# Uploaded files and the background job

_UPLOAD_NAME_RE = re.compile(r"^[0-9a-f]{32}\.(csv|xlsx)$")


def upload_dir() -> Path:
    path = Path(settings.UPLOAD_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_upload(uploaded) -> str:
    """Keep an uploaded file under UPLOAD_DIR with a random name; return that name."""
    suffix = ".xlsx" if str(getattr(uploaded, "name", "")).lower().endswith(".xlsx") else ".csv"
    name = uuid.uuid4().hex + suffix
    with (upload_dir() / name).open("wb") as out:
        for piece in uploaded.chunks():
            out.write(piece)
    return name


def save_upload_from_path(source: Path) -> str:
    suffix = ".xlsx" if source.suffix.lower() == ".xlsx" else ".csv"
    name = uuid.uuid4().hex + suffix
    shutil.copyfile(source, upload_dir() / name)
    return name


def upload_path(name: str) -> Path:
    """The path of an upload by its name; only names made by save_upload are accepted."""
    if not _UPLOAD_NAME_RE.match(name or ""):
        raise ValueError("not an upload name")
    return upload_dir() / name


def delete_upload(name: str) -> None:
    with contextlib.suppress(ValueError):
        upload_path(name).unlink(missing_ok=True)


def purge_stale_uploads(max_age_seconds: int = 2 * 24 * 3600) -> int:
    """Uploads never confirmed nor cancelled are removed after two days."""
    limit = time.time() - max_age_seconds
    removed = 0
    for path in upload_dir().iterdir():
        if _UPLOAD_NAME_RE.match(path.name) and path.stat().st_mtime < limit:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def enqueue_import(actor, kind: str, upload: str, *, dry_run: bool, keep: bool = False,
                   source_job: str = "", original_name: str = ""):  # fmt: skip
    """Queue the import job of an uploaded file (access checked first, so a refusal is
    immediate). keep=True keeps the file after a clean dry run for the later confirmation."""
    allowed_units_for_import(actor, kind)
    return enqueue(
        actor, JOB_KIND,
        {
            "kind": kind, "upload": upload, "dry_run": dry_run, "keep": keep,
            "source_job": source_job, "original_name": original_name[:200],
            "language": translation.get_language() or settings.LANGUAGE_CODE,
        },
    )  # fmt: skip


def run_import_job(job, progress) -> dict:
    """The job handler of "organisation.import"."""
    params = job.params
    name = params.get("upload", "")
    try:
        path = upload_path(name)
    except ValueError:
        raise JobFailed("bad upload name")
    if not path.exists():
        raise JobFailed(_("The uploaded file is no longer there; upload it again."))
    dry_run = bool(params.get("dry_run", True))
    message = _("Checking rows") if dry_run else _("Checking and writing rows")
    with translation.override(params.get("language") or settings.LANGUAGE_CODE):
        try:
            result = apply_import(
                job.created_by, params["kind"], path, dry_run,
                progress=lambda done, total: progress(done, total, message),
            )  # fmt: skip
        except PermissionDenied:
            delete_upload(name)
            raise JobFailed(_("You may not import this kind of data."))
        data = result.as_dict()
    data["original_name"] = params.get("original_name", "")
    if not dry_run or not result.ok or not result.plan.has_changes or not params.get("keep"):
        delete_upload(name)
    return data
