"""From an uploaded extract to an indicator page in one walk, in a real browser: the analyst
uploads the sample extract, the job stores it, the catalogue's compute button queues the
computation, and the indicator page shows the region and its care units. The test runs the
queued jobs itself while the pages poll; axe checks every page visited."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[2] / "styrkort" / "extracts" / "samples"
TABLES = ("contacts", "diagnoses", "procedures", "measurements", "sick_leave", "listings")
PERIOD = "2025Q1"
CODE = "PO09"  # the indicator the sample gives a result for every unit


@pytest.fixture
def sample_units(users, region, provider_region, settings, tmp_path):
    """The sample extract's three units, and its files in a folder of the test's own."""
    from styrkort.organisation.models import CareUnit

    settings.STYRKORT_JOBS = "poller"
    settings.DATA_DIR = tmp_path / "data"
    settings.UPLOAD_DIR = tmp_path / "data" / "uploads"
    settings.EXTRACT_DIR = tmp_path / "data" / "extracts"
    units = [
        CareUnit.objects.create(
            region=region,
            provider=provider_region,
            hsa_id=f"SE2321000099-100{i}",
            name=f"Vårdcentralen Prov {i}",
            municipality="Exempelby",
            opened=date(2000, 1, 1),
        )  # fmt: skip
        for i in (1, 2, 3)
    ]
    folder = tmp_path / "files"
    folder.mkdir()
    for table in TABLES:
        shutil.copyfile(SAMPLES / f"{table}.csv", folder / f"{table}.csv")
    return units, folder


def _run_pending(limit: int | None = None) -> int:
    from styrkort.jobs.services import run_pending

    return run_pending(limit)


def test_it_computes_an_uploaded_extract_and_shows_it_on_the_indicator_page(
    page, live_server, login, axe, sample_units
):
    from styrkort.indicators.models import IndicatorResult
    from styrkort.jobs.models import Job

    units, folder = sample_units
    login(page, "analyst")

    # Upload the extract and let the job store it.
    page.goto(live_server.url + "/extracts/upload/")
    axe(page, context="upload form")
    page.fill("#id_period", PERIOD)
    for table in TABLES:
        page.set_input_files(f"#id_{table}", str(folder / f"{table}.csv"))
    page.click("main form button[type=submit]")
    page.wait_for_url("**/extracts/uploads/**")
    assert _run_pending(limit=1) == 1  # the ingest (which queues a recomputation of its own)
    page.wait_for_selector(".message-success", timeout=20000)
    axe(page, context="upload accepted")

    # Compute from the catalogue; the progress replaces itself until the catalogue reloads.
    page.goto(live_server.url + "/indicators/")
    axe(page, context="catalogue before computing")
    page.locator("form[action$='/indicators/compute/'] button").click()
    page.wait_for_selector("#compute-status .job-progress")
    axe(page, context="catalogue, computing")
    clicked = Job.objects.filter(kind="indicators.compute").latest("created")
    assert _run_pending() >= 1
    clicked.refresh_from_db()
    assert clicked.status == Job.Status.DONE
    page.wait_for_selector("#compute-status .job-progress", state="detached", timeout=20000)
    axe(page, context="catalogue after computing")

    assert IndicatorResult.objects.filter(definition__code=CODE, period=PERIOD).exists()

    # The indicator page: the period's results, a row per unit (the sample's small numbers are
    # suppressed, but every unit is listed) and the region's row.
    page.goto(live_server.url + f"/indicators/{CODE}/?period={PERIOD}")
    assert page.locator("#result-period").input_value() == PERIOD
    table = page.locator("#period-results table").first
    rows = table.locator("tbody tr")
    assert [t.strip() for t in rows.locator("th").all_inner_texts()] == [u.name for u in units]
    for i in range(rows.count()):
        assert rows.nth(i).locator("td").count() >= 2
    assert table.locator("tfoot tr").count() == 1
    axe(page, context="indicator page")
