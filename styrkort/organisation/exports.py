"""Exports of units, listings and staffing as CSV or XLSX, in the columns the imports read.

An export can be imported again unchanged (every row comes back "unchanged"). CSV is written
for Excel as Swedish offices use it: UTF-8 with a BOM, ``;`` between values and a decimal comma
for full-time equivalents; it is streamed row by row. XLSX is written with openpyxl's
write-only mode, which keeps only the current row in memory.

Who may export: every role of the region. The registry is not sensitive and listings are
aggregates (counts by unit, month, sex and age band), so no suppression applies here.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.utils.translation import gettext as _

from styrkort import breakdowns
from styrkort.accounts import access
from styrkort.identifiers import format_org_nr
from styrkort.organisation.imports import KINDS, column_names
from styrkort.organisation.models import CareUnit, Listing, Region, Staffing

FORMATS = ("csv", "xlsx")
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLSX_MAX_ROWS = 1_048_575  # Excel's sheet limit, less the header row
ITER_CHUNK = 5000


class ExportTooLarge(ValueError):
    """More rows than an Excel sheet holds."""


def export_region(actor) -> Region:
    """The region whose data the actor may export (PermissionDenied without a role)."""
    access.require(actor, "view")
    return access.get_region_for_user(actor)


def _band_order() -> Case:
    return Case(
        *[When(age_band=band, then=Value(i)) for i, band in enumerate(breakdowns.AGE_BANDS)],
        output_field=IntegerField(),
    )


def queryset(kind: str, region: Region) -> QuerySet:
    if kind == "units":
        return (
            CareUnit.objects.filter(region=region)
            .order_by("hsa_id")
            .values_list(
                "hsa_id", "name", "provider__org_nr", "provider__name", "provider__kind",
                "municipality", "opened", "closed",
            )
        )  # fmt: skip
    if kind == "listings":
        return (
            Listing.objects.filter(unit__region=region)
            .annotate(band_order=_band_order())
            .order_by("unit__hsa_id", "month", "sex", "band_order")
            .values_list("unit__hsa_id", "month", "sex", "age_band", "listed")
        )
    if kind == "staffing":
        return (
            Staffing.objects.filter(unit__region=region)
            .order_by("unit__hsa_id", "period", "profession")
            .values_list("unit__hsa_id", "period", "profession", "fte")
        )
    raise ValueError(f"unknown export kind {kind!r}")


def rows(kind: str, region: Region, *, for_csv: bool) -> Iterator[list]:
    """Data rows (no header), read from the database in chunks."""
    for values in queryset(kind, region).iterator(chunk_size=ITER_CHUNK):
        row = list(values)
        if kind == "units":
            row[2] = format_org_nr(row[2])
            row[6] = row[6].isoformat() if row[6] else ""
            row[7] = row[7].isoformat() if row[7] else ""
        elif kind == "staffing" and for_csv:
            row[3] = str(row[3]).replace(".", ",")
        yield row


def filename(kind: str, region: Region, fmt: str) -> str:
    return f"styrkort-{kind}-{region.lan_code}-{date.today().isoformat()}.{fmt}"


def iter_csv(kind: str, region: Region) -> Iterator[bytes]:
    """The CSV file in pieces of about 64 kB, for a streaming response or a file."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(column_names(kind))
    yield "\ufeff".encode() + buffer.getvalue().encode("utf-8")
    buffer.seek(0)
    buffer.truncate()
    for row in rows(kind, region, for_csv=True):
        writer.writerow(row)
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode("utf-8")


def write_csv(kind: str, region: Region, out) -> int:
    """Write the CSV to a binary file object; return the number of data rows."""
    count = 0
    for piece in iter_csv(kind, region):
        out.write(piece)
        count += piece.count(b"\n")
    return count - 1


def write_xlsx(kind: str, region: Region, path: str | os.PathLike) -> int:
    """Write an XLSX workbook with one sheet; return the number of data rows."""
    from openpyxl import Workbook  # heavy; only needed here

    if queryset(kind, region).count() > XLSX_MAX_ROWS:
        raise ExportTooLarge(
            _("There are more rows than an Excel sheet holds (1 048 575); export CSV instead.")
        )
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=kind)
    sheet.append(column_names(kind))
    count = 0
    for row in rows(kind, region, for_csv=False):
        sheet.append(row)
        count += 1
    workbook.save(Path(path))
    return count


def check(kind: str, fmt: str) -> None:
    if kind not in KINDS:
        raise ValueError(
            _("Unknown kind %(kind)s; use units, listings or staffing.") % {"kind": kind}
        )
    if fmt not in FORMATS:
        raise ValueError(_("Unknown format %(fmt)s; use csv or xlsx.") % {"fmt": fmt})
