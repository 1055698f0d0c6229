"""The report to the state as PDF (WeasyPrint) and XLSX (openpyxl), from the same figures the
page shows: a submitted version's frozen snapshot, or a draft's live figures (marked draft).

The PDF is rendered without any network access: fonts come from the system (DejaVu/Liberation
through fontconfig) and the URL fetcher refuses every URL.
"""

from __future__ import annotations

import io
import logging
from decimal import Decimal

from django.template.loader import render_to_string
from django.utils.translation import gettext as _

from styrkort.grants.models import AccountStatus, StateReport
from styrkort.grants.services import report_data

# WeasyPrint reports every rendering step at INFO; the commands' output should stay one line.
logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)

KR_FORMAT = '#,##0" kr"'
FTE_FORMAT = "0.00"


def report_context(report: StateReport) -> dict:
    """What the page, the PDF and the workbook show of a report version."""
    data = report_data(report)
    return {
        "report": report,
        "grant": report.grant,
        "data": data,
        "statuses": {s.value: s.label for s in AccountStatus},
        "draft": not report.is_submitted,
    }


def render_report_pdf(report: StateReport, *, uncompressed: bool = False) -> bytes:
    """The report as PDF (A4, system fonts). ``uncompressed`` keeps the PDF's objects readable
    (tests read its metadata)."""
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    html = render_to_string("grants/report_print.html", report_context(report))
    # allowed_protocols=() refuses every URL: nothing is fetched, not even a local file.
    fetcher = URLFetcher(allowed_protocols=())
    return HTML(string=html, url_fetcher=fetcher).write_pdf(uncompressed_pdf=uncompressed)


def _autosize(sheet) -> None:
    for column in sheet.columns:
        width = max((len(str(c.value)) for c in column if c.value is not None), default=8)
        sheet.column_dimensions[column[0].column_letter].width = min(max(width + 2, 10), 70)


def render_report_xlsx(report: StateReport) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    data = report_data(report)
    bold = Font(bold=True)
    book = Workbook()

    summary = book.active
    summary.title = _("Summary")[:31]
    g = data["grant"]
    title = f"{g['name']} – {_('report')} v{report.version}"
    if not report.is_submitted:
        title += f" ({_('draft')})"
    summary.append([title])
    summary["A1"].font = Font(bold=True, size=14)
    rows = [
        (_("Region"), g["region"]),
        (_("Decision reference (Dnr)"), g["dnr"]),
        (_("Granting authority"), g["authority"]),
        (_("Years"), g["years"]),
        (_("Received"), data["received"]),
        (_("Central spending"), data["central_used"]),
        (_("Allocated to units"), data["units_allocated"]),
        (_("Used by units"), data["units_used"]),
        (_("Persons, total"), data["persons_total"]),
        (_("FTE, total"), Decimal(data["fte_total"])),
        (_("Over-use (not netted)"), data["over_use_total"]),
        (_("To repay"), data["repayment"]["total"]),
        (_("Repayment deadline"), data["repayment"]["deadline"]),
    ]
    money_rows = {4, 5, 6, 7, 10, 11}
    for index, (label, value) in enumerate(rows):
        summary.append([label, value])
        cell = summary.cell(row=summary.max_row, column=2)
        if index in money_rows:
            cell.number_format = KR_FORMAT
        if index == 9:
            cell.number_format = FTE_FORMAT
        summary.cell(row=summary.max_row, column=1).font = bold
    summary.append([])
    texts = [
        (_("Measures taken"), data["texts"].get("measures_summary", "")),
        (_("Gender-equality perspective"), data["texts"].get("gender_equality", "")),
        (_("Children's-rights perspective"), data["texts"].get("childrens_rights", "")),
        (_("Disability perspective"), data["texts"].get("disability", "")),
        (_("Other comments"), data["texts"].get("other_comments", "")),
    ]
    for label, value in texts:
        summary.append([label, value])
        summary.cell(row=summary.max_row, column=1).font = bold
        summary.cell(row=summary.max_row, column=2).alignment = Alignment(wrap_text=True)
    _autosize(summary)

    cats = book.create_sheet(_("Categories")[:31])
    cats.append(
        [_("Category"), _("Used by units"), _("Central"), _("Used"), _("Persons"), _("FTE")]
    )
    for c in data["categories"]:
        cats.append(
            [
                c["name"],
                c["units_used"],
                c["central_used"],
                c["used"],
                c["persons"],
                Decimal(c["fte"]),
            ]
        )
        for col in (2, 3, 4):
            cats.cell(row=cats.max_row, column=col).number_format = KR_FORMAT
        cats.cell(row=cats.max_row, column=6).number_format = FTE_FORMAT

    central = book.create_sheet(_("Central")[:31])
    central.append([_("Central effort"), _("Planned"), _("Used"), _("Unspent"), _("Over-use")])
    for c in data["central"]:
        central.append([c["name"], c["planned"], c["used"], c["unspent"], c["over_use"]])
        for col in (2, 3, 4, 5):
            central.cell(row=central.max_row, column=col).number_format = KR_FORMAT

    units = book.create_sheet(_("Units")[:31])
    units.append(
        [
            _("HSA-id"),
            _("Unit"),
            _("Listed"),
            _("Allocated"),
            _("Used"),
            _("Unused"),
            _("To repay"),
            _("Over-use"),
            _("Status"),
            _("Late"),
        ]
    )
    statuses = {s.value: str(s.label) for s in AccountStatus}
    for u in data["units"]:
        units.append(
            [
                u["hsa_id"],
                u["name"],
                u["listed"],
                u["allocated"],
                u["used"],
                u["unused"],
                u["repay"],
                u["over_use"],
                statuses.get(u["status"], u["status"]),
                _("yes") if u["late"] else "",
            ]
        )
        for col in (4, 5, 6, 7, 8):
            units.cell(row=units.max_row, column=col).number_format = KR_FORMAT

    measures = book.create_sheet(_("Measures")[:31])
    measures.append([_("By"), _("Category"), _("Measures taken")])
    for m in data["measures"]:
        measures.append([m["by"], m["category"], m["text"]])
    for sheet in (cats, central, units, measures):
        for cell in sheet[1]:
            cell.font = bold
        _autosize(sheet)

    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def report_filename(report: StateReport, extension: str) -> str:
    state = "" if report.is_submitted else "-utkast"
    return f"statsbidrag-{report.grant_id}-rapport-v{report.version}{state}.{extension}"
