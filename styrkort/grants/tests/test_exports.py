"""The report as PDF and XLSX: it renders offline, carries the grant's name and its figures."""

from __future__ import annotations

import io
import re

from openpyxl import load_workbook

from styrkort.grants import exports, services
from styrkort.grants.tests.test_services import lines


def _pdf_title(pdf: bytes) -> str:
    match = re.search(rb"/Title <feff([0-9a-f]+)>", pdf)
    assert match, "no /Title in the PDF"
    return bytes.fromhex(match.group(1).decode()).decode("utf-16-be")


def _submitted_report(users, grant, unit_a):
    account = services.save_account(users["manager"], grant, unit_a, lines=lines(250_000))
    services.submit_account(users["manager"], account)
    services.approve_account(users["analyst"], account)
    report = services.start_report(users["analyst"], grant)
    services.update_report(
        users["analyst"], report, gender_equality="Jämställd hälsa följs upp per kön",
        childrens_rights="Barn och unga", disability="Tillgänglighet",
    )  # fmt: skip
    return services.submit_report(users["analyst"], report)


def test_the_pdf_renders_offline_with_the_grants_name(users, grant, decided_plan, unit_a):
    report = _submitted_report(users, grant, unit_a)
    pdf = exports.render_report_pdf(report, uncompressed=True)
    assert pdf.startswith(b"%PDF")
    assert _pdf_title(pdf) == "Psykisk ohälsa i primärvården 2025"
    assert exports.render_report_pdf(report).startswith(b"%PDF")


def test_a_draft_pdf_renders_too(users, grant, decided_plan):
    report = services.start_report(users["analyst"], grant)
    assert exports.render_report_pdf(report).startswith(b"%PDF")


def test_the_workbook_has_the_figures(users, grant, decided_plan, unit_a):
    report = _submitted_report(users, grant, unit_a)
    book = load_workbook(io.BytesIO(exports.render_report_xlsx(report)))
    assert book.sheetnames == ["Summary", "Categories", "Central", "Units", "Measures"]
    summary = {row[0]: row[1] for row in book["Summary"].iter_rows(min_row=2, values_only=True)}
    assert summary["Received"] == 1_000_000
    assert summary["Used by units"] == 250_000
    assert summary["To repay"] == 1_000_000 - 250_000
    assert summary["Gender-equality perspective"] == "Jämställd hälsa följs upp per kön"
    units = list(book["Units"].iter_rows(min_row=2, values_only=True))
    assert {u[0] for u in units} == {"SE2321000016-A001", "SE5566778899-B002"}
    assert book["Summary"]["B6"].number_format.endswith('" kr"')
    categories = {r[0]: r for r in book["Categories"].iter_rows(min_row=2, values_only=True)}
    assert categories["Psykolog"][1] == 250_000
