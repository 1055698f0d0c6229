"""Importing listed patients in a real browser: upload, the dry run's counts while the page
polls the background job, confirm, and the import's entries in the unit's history and the change
log; a broken file shows every refused row (row, column, value, rule) and writes nothing. axe
checks every page visited."""

from __future__ import annotations

import pytest

MONTH = "2025-10"


@pytest.fixture
def importing(users, unit_a, settings, tmp_path):
    """Poller mode: the test runs the queued job itself while the page polls for it. Two of
    unit_a's cells exist before the import: one the file leaves as is, one it changes."""
    from styrkort.organisation.models import Listing

    settings.STYRKORT_JOBS = "poller"
    settings.DATA_DIR = tmp_path / "data"
    settings.UPLOAD_DIR = tmp_path / "data" / "uploads"
    Listing.objects.create(unit=unit_a, month=MONTH, sex="K", age_band="25-29", listed=300)
    Listing.objects.create(unit=unit_a, month=MONTH, sex="M", age_band="25-29", listed=200)
    return unit_a


def _csv(tmp_path, name: str, rows: list[str]):
    path = tmp_path / name
    path.write_text("unit_hsa_id;month;sex;age_band;listed\n" + "\n".join(rows) + "\n", "utf-8")
    return path


def _run_the_job() -> None:
    from styrkort.jobs.services import run_pending

    assert run_pending(limit=1) == 1


def _upload(page, live_server, path) -> None:
    page.goto(live_server.url + "/organisation/import/")
    page.check("input[name=kind][value=listings]")
    page.set_input_files("#id_file", str(path))
    page.click("main form.import-form button[type=submit]")
    page.wait_for_url("**/organisation/import/*/")


def _figures(page) -> list[str]:
    """The plan's cards in order: new, changed, unchanged (then refused, if any)."""
    return [t.strip() for t in page.locator("main .cards .card .figure").all_inner_texts()]


def test_it_imports_listings_after_showing_the_dry_run(
    page, live_server, login, axe, importing, tmp_path
):
    from styrkort.history.models import ChangeRecord
    from styrkort.organisation.models import Listing

    unit = importing
    hsa = unit.hsa_id
    path = _csv(
        tmp_path,
        "listade.csv",
        [
            f"{hsa};{MONTH};K;25-29;300",  # unchanged
            f"{hsa};{MONTH};M;25-29;250",  # changed from 200
            f"{hsa};{MONTH};K;30-34;410",  # new
            f"{hsa};{MONTH};M;30-34;390",  # new
            f"{hsa};{MONTH};K;85+;12",  # new
        ],
    )
    login(page, "analyst")
    page.goto(live_server.url + "/organisation/import/")
    axe(page, context="import form")
    _upload(page, live_server, path)
    # The dry run waits in the queue; the page shows its progress and polls.
    assert page.locator(".job-progress").count() == 1
    axe(page, context="dry run, waiting")
    _run_the_job()
    page.wait_for_selector("main .cards .card .figure", timeout=20000)
    assert _figures(page)[:3] == ["3", "1", "1"]
    assert page.locator("table.import-changes tbody tr").count() == 1
    assert page.locator("table.import-new tbody tr").count() == 3
    axe(page, context="dry run, result")
    # Nothing is written before the confirmation.
    assert Listing.objects.filter(unit=unit).count() == 2
    assert not ChangeRecord.objects.filter(action="import").exists()

    page.locator("form[action$='/confirm/'] button[type=submit]").click()
    page.wait_for_url("**/organisation/import/*/result/")
    axe(page, context="import, waiting")
    _run_the_job()
    page.wait_for_selector(".message-success", timeout=20000)
    axe(page, context="import, done")
    stored = {
        (sex, band): n
        for sex, band, n in Listing.objects.filter(unit=unit, month=MONTH).values_list(
            "sex", "age_band", "listed"
        )
    }
    assert stored == {
        ("K", "25-29"): 300, ("M", "25-29"): 250, ("K", "30-34"): 410, ("M", "30-34"): 390,
        ("K", "85+"): 12,
    }  # fmt: skip
    record = ChangeRecord.objects.get(action="import")
    assert record.object_id == str(unit.pk)
    assert record.after == {
        f"{MONTH} M 25-29": 250, f"{MONTH} K 30-34": 410, f"{MONTH} M 30-34": 390,
        f"{MONTH} K 85+": 12,
    }  # fmt: skip
    assert record.before == {f"{MONTH} M 25-29": 200}

    # The result links to the import's batch in the change log.
    page.locator(f"main a[href*='batch={record.batch}']").click()
    page.wait_for_url("**/history/?batch=*")
    rows = page.locator("table.changes tbody tr")
    assert rows.count() == 1
    assert unit.name in rows.first.inner_text()
    assert f"{MONTH} M 30-34" in rows.first.inner_text()
    axe(page, context="change log of the import")

    # The unit's own history shows the same entry, before and after.
    page.goto(live_server.url + f"/organisation/units/{unit.pk}/history/")
    text = page.locator("table.changes tbody").inner_text()
    assert f"{MONTH} M 25-29" in text
    assert "200 → 250" in text
    assert "analyst" in text
    axe(page, context="unit history")


def test_it_shows_every_refused_row_and_writes_nothing(
    page, live_server, login, axe, importing, tmp_path
):
    from styrkort.history.models import ChangeRecord
    from styrkort.organisation.models import Listing

    hsa = importing.hsa_id
    path = _csv(
        tmp_path,
        "trasig.csv",
        [
            f"{hsa};{MONTH};K;30-34;410",  # row 2: fine
            f"SE12345;{MONTH};K;35-39;100",  # row 3: not an HSA-id
            f"{hsa};{MONTH};M;35-39;-5",  # row 4: negative
            f"{hsa};{MONTH};X;40-44;77",  # row 5: unknown sex
        ],
    )
    login(page, "analyst")
    listings_before = Listing.objects.count()
    changes_before = ChangeRecord.objects.count()
    _upload(page, live_server, path)
    _run_the_job()
    page.wait_for_selector("table.refused-rows", timeout=20000)
    assert page.locator("main .message-error[role=alert]").count() == 1
    cells = [
        [c.strip() for c in row.locator("td").all_inner_texts()]
        for row in page.locator("table.refused-rows tbody tr").all()
    ]
    refused = {(r[0], r[1], r[2], r[3]) for r in cells}
    assert refused == {
        ("3", "unit_hsa_id", "SE12345", "invalid_hsa_id"),
        ("4", "listed", "-5", "negative"),
        ("5", "sex", "X", "sex"),
    }
    assert all(r[4] for r in cells)  # each with what to do about it
    # A refused file cannot be confirmed.
    assert page.locator("form[action$='/confirm/']").count() == 0
    axe(page, context="refused import")
    assert Listing.objects.count() == listings_before
    assert ChangeRecord.objects.count() == changes_before
