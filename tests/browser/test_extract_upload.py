"""Uploading an extract in a real browser: the form, the status page polling the background job
with htmx until the result replaces it, the version list, a refusal with its error table; axe on
every page."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[2] / "styrkort" / "extracts" / "samples"
PNR = "19821105-9954"


@pytest.fixture
def ready(users, region, provider_region, settings, tmp_path):
    from datetime import date

    from styrkort.organisation.models import CareUnit

    settings.STYRKORT_JOBS = "poller"  # the test runs the queued job itself, while the page polls
    settings.DATA_DIR = tmp_path / "data"
    settings.UPLOAD_DIR = tmp_path / "data" / "uploads"
    settings.EXTRACT_DIR = tmp_path / "data" / "extracts"
    for i in (1, 2, 3):
        CareUnit.objects.create(
            region=region, provider=provider_region, hsa_id=f"SE2321000099-100{i}",
            name=f"Sample {i}", municipality="Exempelby", opened=date(2000, 1, 1),
        )  # fmt: skip
    folder = tmp_path / "files"
    folder.mkdir()
    for src in SAMPLES.glob("*.csv"):
        shutil.copyfile(src, folder / src.name)
    return folder


def _axe(page, context: str) -> None:
    from tests.browser.conftest import check_axe

    check_axe(page, context=context)


def _send(page, live_server, files: dict[str, Path], period: str = "2025Q1") -> None:
    page.goto(live_server.url + "/extracts/upload/")
    page.fill("#id_period", period)
    for table, path in files.items():
        page.set_input_files(f"#id_{table}", str(path))
    page.click("main form button[type=submit]")
    page.wait_for_url("**/extracts/uploads/**")


def _run_the_job() -> None:
    from styrkort.jobs.services import run_pending

    assert run_pending(limit=1) == 1


def test_an_analyst_uploads_an_extract_and_watches_it_being_stored(page, live_server, login, ready):
    from styrkort.extracts.models import ExtractVersion

    login(page, "analyst")
    page.goto(live_server.url + "/extracts/upload/")
    _axe(page, "upload form")
    tables = ("contacts", "diagnoses", "procedures", "measurements", "sick_leave", "listings")
    _send(page, live_server, {t: ready / f"{t}.csv" for t in tables})
    # While the job waits, the page shows its progress and polls.
    assert page.locator(".job-progress").count() == 1
    _axe(page, "upload status while waiting")
    _run_the_job()
    page.wait_for_selector(".message-success", timeout=20000)
    for v in ExtractVersion.objects.all():
        assert v.checksum in page.content()
    _axe(page, "upload status, accepted")
    page.goto(live_server.url + "/extracts/")
    assert page.locator("tbody tr").count() >= 6
    _axe(page, "extract list")


def test_a_refused_upload_lists_its_errors_with_masked_values(page, live_server, login, ready):
    text = (ready / "contacts.csv").read_text(encoding="utf-8").splitlines()
    cells = text[5].split(",")
    cells[1] = PNR
    text[5] = ",".join(cells)
    bad = ready / "bad.csv"
    bad.write_text("\n".join(text) + "\n", encoding="utf-8")
    login(page, "analyst")
    _send(page, live_server, {"contacts": bad})
    _run_the_job()
    page.wait_for_selector(".message-error", timeout=20000)
    html = page.content()
    assert "personal_number" in html
    assert PNR not in html
    assert PNR.replace("-", "") not in html
    assert page.locator("a[href$='errors.csv']").count() == 1
    _axe(page, "upload status, refused")
