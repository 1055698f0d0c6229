"""The import and export pages and API: upload → dry run → review → confirm → result, who may
do it, and that refused files and refused users change nothing."""

from __future__ import annotations

import io
import os
import time
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from openpyxl import Workbook, load_workbook

from styrkort.accounts.models import ApiToken
from styrkort.history.models import ChangeRecord
from styrkort.jobs.models import Job
from styrkort.jobs.services import run_job
from styrkort.organisation import imports
from styrkort.organisation.import_views import SAMPLES_DIR
from styrkort.organisation.models import CareUnit, Listing, Provider, Staffing

A, B = "SE2321000016-A001", "SE5566778899-B002"
LISTINGS = "unit_hsa_id;month;sex;age_band;listed\n"


@pytest.fixture(autouse=True)
def _uploads_in_tmp(settings, tmp_path):
    settings.UPLOAD_DIR = tmp_path / "uploads"
    settings.STYRKORT_JOBS = "inline"


def counts() -> dict[str, int]:
    return {
        "units": CareUnit.objects.count(),
        "providers": Provider.objects.count(),
        "listings": Listing.objects.count(),
        "staffing": Staffing.objects.count(),
        "history": ChangeRecord.objects.count(),
    }


def uploads(settings) -> list[str]:
    path = settings.UPLOAD_DIR
    return sorted(p.name for p in path.iterdir()) if path.exists() else []


def upload(client: Client, kind: str, text: str, name: str = "data.csv", content=None):
    data = content if content is not None else text.encode("utf-8")
    return client.post(
        reverse("organisation:import"),
        {"kind": kind, "file": SimpleUploadedFile(name, data, content_type="text/csv")},
    )


def listing_rows(*rows) -> str:
    return LISTINGS + "".join(";".join(map(str, r)) + "\n" for r in rows)


def test_it_shows_the_import_page_with_the_kinds_the_user_may_import(client_for, users):
    page = client_for("analyst").get(reverse("organisation:import"))
    assert page.status_code == 200
    text = page.content.decode()
    for kind in ("units", "listings", "staffing"):
        assert f'value="{kind}"' in text
    manager = client_for("manager").get(reverse("organisation:import")).content.decode()
    assert 'value="staffing"' in manager
    assert 'value="units"' not in manager
    assert 'value="listings"' not in manager


def test_it_goes_from_upload_through_review_and_confirm_to_the_change_log(
    client_for, users, unit_a, settings
):
    client = client_for("analyst")
    Listing.objects.create(unit=unit_a, month="2025-01", sex="K", age_band="25-29", listed=100)
    text = listing_rows(
        (A, "2025-01", "K", "25-29", 105), (A, "2025-01", "M", "25-29", 90),
        (A, "2025-01", "K", "0-4", 3),
    )  # fmt: skip
    before = counts()
    response = upload(client, "listings", text, name="listningar.csv")
    assert response.status_code == 302
    dry = Job.objects.get(created_by=users["analyst"])
    assert response.url == reverse("organisation:import_review", args=[dry.pk])
    assert dry.params["dry_run"] is True
    assert counts() == before  # the dry run wrote nothing
    assert len(uploads(settings)) == 1  # kept for the confirmation

    review = client.get(response.url)
    assert review.status_code == 200
    page = review.content.decode()
    assert "listningar.csv" in page
    assert "Confirm the import" in page
    assert f"{A} · 2025-01 · K · 25-29" in page  # the sampled change, before → after
    assert ">100<" not in page or "listed: 100" in page
    assert "listed: 105" in page
    assert dry.result["new"] == 2
    assert dry.result["changed"] == 1

    confirm = client.post(reverse("organisation:import_confirm", args=[dry.pk]))
    real = Job.objects.exclude(pk=dry.pk).get()
    assert confirm.url == reverse("organisation:import_result", args=[real.pk])
    assert real.status == "done"
    assert real.result["applied"] is True
    assert Listing.objects.get(unit=unit_a, sex="K", age_band="25-29").listed == 105
    assert Listing.objects.count() == 3
    assert uploads(settings) == []  # deleted once imported

    result = client.get(confirm.url)
    assert result.status_code == 200
    log_url = reverse("history:log") + f"?batch={real.result['batch']}"
    assert log_url in result.content.decode()
    log = client.get(log_url).content.decode()
    assert "2025-01 K 25-29" in log
    assert "2025-01 M 25-29" in log

    # Confirming twice does not import twice.
    again = client.post(reverse("organisation:import_confirm", args=[dry.pk]))
    assert again.url == confirm.url
    assert Job.objects.count() == 2


def test_it_shows_refused_rows_and_writes_nothing(client_for, users, unit_a, settings):
    client = client_for("analyst")
    before = counts()
    response = upload(
        client, "listings",
        listing_rows((A, "2025-01", "K", "25-29", 5), (A, "2025-1", "X", "25-29", -3)),
    )  # fmt: skip
    page = client.get(response.url).content.decode()
    assert "The file was refused" in page
    assert "Confirm the import" not in page
    assert "month_format" in page
    assert "negative" in page
    assert '<td class="num">3</td><td>month</td><td><code>2025-1</code></td>' in page
    assert counts() == before
    assert uploads(settings) == []  # nothing to confirm: the file is gone
    job = Job.objects.get()
    forced = client.post(reverse("organisation:import_confirm", args=[job.pk]))
    assert forced.status_code == 302
    assert Job.objects.count() == 1
    assert counts() == before


def test_it_shows_a_latin1_file_refused_with_its_line(client_for, users, unit_a):
    client = client_for("analyst")
    text = "hsa_id;name;provider_org_nr;municipality\n" + f"{A};Åby;2321000016;Västervik\n"
    before = counts()
    response = upload(client, "units", "", content=text.encode("latin-1"))
    page = client.get(response.url).content.decode()
    assert "Line 2 is not UTF-8" in page
    assert counts() == before


def test_it_deletes_the_upload_on_cancel_and_writes_nothing(client_for, users, unit_a, settings):
    client = client_for("analyst")
    before = counts()
    response = upload(client, "listings", listing_rows((A, "2025-01", "K", "25-29", 5)))
    assert len(uploads(settings)) == 1
    job = Job.objects.get()
    cancel = client.post(reverse("organisation:import_cancel", args=[job.pk]))
    assert cancel.url == reverse("organisation:import")
    assert uploads(settings) == []
    assert counts() == before
    review = client.get(response.url).content.decode()
    assert "Confirm the import" not in review
    client.post(reverse("organisation:import_confirm", args=[job.pk]))
    assert Job.objects.count() == 1
    assert counts() == before


def test_it_shows_progress_while_the_dry_run_is_queued(client_for, users, unit_a, settings):
    settings.STYRKORT_JOBS = "poller"  # queued, not run: as when a worker picks it up later
    client = client_for("analyst")
    response = upload(client, "listings", listing_rows((A, "2025-01", "K", "25-29", 5)))
    job = Job.objects.get()
    assert job.status == "queued"
    page = client.get(response.url).content.decode()
    progress_url = reverse("jobs:progress", args=[job.pk])
    assert progress_url in page
    assert "done_url=" in page
    assert "Confirm the import" not in page


def test_it_imports_staffing_for_a_managers_own_unit_through_the_page(
    client_for, users, unit_a, unit_b
):
    client = client_for("manager")
    response = upload(
        client, "staffing", f"unit_hsa_id;period;profession;fte\n{A};2025;psykolog;1,5\n"
    )
    job = Job.objects.get()
    client.post(reverse("organisation:import_confirm", args=[job.pk]))
    assert Staffing.objects.get(unit=unit_a).fte == 1.5
    assert response.status_code == 302


def test_it_refuses_staffing_of_another_unit_to_a_manager(client_for, users, unit_a, unit_b):
    client = client_for("manager")
    before = counts()
    response = upload(
        client, "staffing", f"unit_hsa_id;period;profession;fte\n{B};2025;psykolog;2\n"
    )
    page = client.get(response.url).content.decode()
    assert "Not your unit" in page
    assert counts() == before


@pytest.mark.parametrize(
    ("persona", "kind", "status"),
    [
        ("viewer", "listings", 403), ("auditor", "units", 403), ("nobody", "staffing", 403),
        ("manager", "units", 200), ("manager", "listings", 200), ("viewer", "staffing", 403),
    ],
)  # fmt: skip
def test_it_refuses_uploads_by_users_without_the_right(
    client_for, users, unit_a, settings, persona, kind, status
):
    client = client_for(persona)
    assert client.get(reverse("organisation:import")).status_code == status
    before = counts()
    response = upload(client, kind, listing_rows((A, "2025-01", "K", "25-29", 5)))
    # A manager sees the form again (the kind is not among its choices); others get 403.
    assert response.status_code == status
    assert Job.objects.count() == 0
    assert uploads(settings) == []
    assert counts() == before


def test_it_hides_another_users_import_and_refuses_its_confirmation(
    client_for, users, unit_a, settings
):
    upload(client_for("analyst"), "listings", listing_rows((A, "2025-01", "K", "25-29", 5)))
    job = Job.objects.get()
    before = counts()
    for persona in ("admin", "outsider", "viewer", "manager"):
        client = client_for(persona)
        assert client.get(reverse("organisation:import_review", args=[job.pk])).status_code == 404
        assert client.post(reverse("organisation:import_confirm", args=[job.pk])).status_code == 404
        assert client.post(reverse("organisation:import_cancel", args=[job.pk])).status_code == 404
    assert Job.objects.count() == 1
    assert len(uploads(settings)) == 1
    assert counts() == before


def test_it_refuses_a_confirmation_when_the_user_lost_the_right(client_for, users, unit_a):
    client = client_for("analyst")
    upload(client, "listings", listing_rows((A, "2025-01", "K", "25-29", 5)))
    job = Job.objects.get()
    membership = users["analyst"].membership
    membership.role = "viewer"
    membership.save()
    before = counts()
    assert client.post(reverse("organisation:import_confirm", args=[job.pk])).status_code == 403
    assert counts() == before


def test_it_offers_sample_files_that_import_cleanly(client_for, users, region, provider_region):
    CareUnit.objects.create(region=region, provider=provider_region, hsa_id="SE2321000990-1001",
                            name="Vårdcentralen Norrby", municipality="Exempelstad")  # fmt: skip
    client = client_for("analyst")
    for kind in ("units", "listings", "staffing"):
        sample = client.get(reverse("organisation:import_sample", args=[kind]))
        assert sample.status_code == 200
        result = imports.apply_import(users["analyst"], kind, SAMPLES_DIR / f"{kind}.csv", False)
        assert result.ok, result.plan.errors
        assert result.applied
    assert (
        client_for("viewer").get(reverse("organisation:import_sample", args=["units"])).status_code
        == 403
    )


# --- exports ---------------------------------------------------------------------------------


def _seed(unit_a, unit_b):
    Listing.objects.create(unit=unit_a, month="2025-01", sex="K", age_band="5-9", listed=30)
    Listing.objects.create(unit=unit_a, month="2025-01", sex="K", age_band="10-14", listed=40)
    Listing.objects.create(unit=unit_b, month="2025-01", sex="M", age_band="85+", listed=7)
    Staffing.objects.create(unit=unit_a, period="2025Q1", profession="psykolog", fte="1.50")


@pytest.mark.parametrize("persona", ["admin", "analyst", "auditor", "viewer", "manager"])
def test_it_exports_csv_for_excel_to_every_role(client_for, users, unit_a, unit_b, persona):
    _seed(unit_a, unit_b)
    client = client_for(persona)
    response = client.get(reverse("organisation:export") + "?kind=listings&format=csv")
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    assert body.startswith(b"\xef\xbb\xbf")
    lines = body.decode("utf-8-sig").splitlines()
    assert lines == [
        "unit_hsa_id;month;sex;age_band;listed",
        f"{A};2025-01;K;5-9;30",
        f"{A};2025-01;K;10-14;40",  # age bands in their natural order
        f"{B};2025-01;M;85+;7",
    ]
    assert 'filename="styrkort-listings-99-' in response["Content-Disposition"]


def test_it_exports_only_the_users_region(client_for, users, unit_a, other_unit):
    Listing.objects.create(unit=other_unit, month="2025-01", sex="K", age_band="5-9", listed=9)
    body = b"".join(
        client_for("analyst").get(reverse("organisation:export") + "?kind=units&format=csv")
        .streaming_content
    ).decode("utf-8-sig")  # fmt: skip
    assert other_unit.hsa_id not in body
    assert A in body
    outsider = b"".join(
        client_for("outsider").get(reverse("organisation:export") + "?kind=listings&format=csv")
        .streaming_content
    ).decode("utf-8-sig")  # fmt: skip
    assert A not in outsider
    assert other_unit.hsa_id in outsider


def test_it_exports_xlsx_and_the_export_imports_back_unchanged(
    client_for, users, unit_a, unit_b, unit_c, tmp_path
):
    _seed(unit_a, unit_b)
    client = client_for("analyst")
    for kind in ("units", "listings", "staffing"):
        for fmt in ("csv", "xlsx"):
            response = client.get(reverse("organisation:export") + f"?kind={kind}&format={fmt}")
            assert response.status_code == 200
            path = tmp_path / f"{kind}.{fmt}"
            path.write_bytes(b"".join(response.streaming_content))
            result = imports.apply_import(users["analyst"], kind, path, dry_run=True)
            assert result.ok, (kind, fmt, result.plan.errors)
            assert result.plan.new == result.plan.changed == 0, (kind, fmt)
            assert result.plan.unchanged > 0
    sheet = load_workbook(tmp_path / "staffing.xlsx").active
    assert [c.value for c in sheet[1]] == ["unit_hsa_id", "period", "profession", "fte"]
    assert sheet["D2"].value == 1.5


def test_it_shows_the_export_page_and_refuses_users_without_a_role(client_for, users):
    page = client_for("viewer").get(reverse("organisation:export"))
    assert page.status_code == 200
    assert "?kind=staffing&amp;format=xlsx" in page.content.decode()
    assert client_for("nobody").get(reverse("organisation:export")).status_code == 403
    missing = client_for("analyst").get(reverse("organisation:export") + "?kind=grants")
    assert missing.status_code == 404


# --- API -------------------------------------------------------------------------------------


def bearer(user) -> dict:
    _token, raw = ApiToken.issue(user, "test")
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def api_upload(user, kind: str, text: str, dry_run: str | None = None, content=None):
    upload = SimpleUploadedFile("x.csv", content or text.encode(), "text/csv")
    data: dict[str, Any] = {"file": upload}
    if dry_run is not None:
        data["dry_run"] = dry_run
    return Client().post(f"/api/organisation/imports/{kind}", data, **bearer(user))


def test_it_imports_through_the_api_dry_run_first(users, unit_a, settings):
    text = listing_rows((A, "2025-01", "K", "25-29", 5))
    before = counts()
    response = api_upload(users["analyst"], "listings", text)
    assert response.status_code == 202
    body = response.json()
    assert body["dry_run"] is True
    assert body["status_url"] == f"/api/jobs/{body['job_id']}"
    status = Client().get(body["status_url"], **bearer(users["analyst"])).json()
    assert status["status"] == "done"
    assert status["result"]["new"] == 1
    assert status["result"]["summary"].endswith("(dry run: nothing written)")
    assert counts() == before
    assert uploads(settings) == []

    real = api_upload(users["analyst"], "listings", text, dry_run="false").json()
    status = Client().get(real["status_url"], **bearer(users["analyst"])).json()
    assert status["result"]["applied"] is True
    assert Listing.objects.get(unit=unit_a).listed == 5
    assert uploads(settings) == []


def test_it_reports_refused_rows_through_the_api(users, unit_a):
    before = counts()
    response = api_upload(
        users["analyst"], "listings", listing_rows((A, "2025-01", "K", "25-99", 5)),
        dry_run="false",
    )  # fmt: skip
    status = Client().get(response.json()["status_url"], **bearer(users["analyst"])).json()
    assert status["result"]["ok"] is False
    assert status["result"]["errors"][0] == {
        "row": 2, "column": "age_band", "value": "25-99", "rule": "age_band",
        "message": status["result"]["errors"][0]["message"],
    }  # fmt: skip
    assert counts() == before


@pytest.mark.parametrize(
    ("persona", "kind"),
    [("viewer", "listings"), ("auditor", "units"), ("manager", "units"),
     ("manager", "listings"), ("viewer", "staffing")],
)  # fmt: skip
def test_it_refuses_api_imports_by_users_without_the_right(users, unit_a, settings, persona, kind):
    before = counts()
    response = api_upload(users[persona], kind, listing_rows((A, "2025-01", "K", "25-29", 5)),
                          dry_run="false")  # fmt: skip
    assert response.status_code == 403
    assert Job.objects.count() == 0
    assert uploads(settings) == []
    assert counts() == before


def test_it_refuses_api_imports_without_a_token(users, unit_a):
    before = counts()
    data = {"file": SimpleUploadedFile("x.csv", b"a;b\n1;2\n", "text/csv")}
    assert Client().post("/api/organisation/imports/listings", data).status_code == 401
    assert counts() == before


def test_it_hides_an_import_job_from_other_users_in_the_api(users, unit_a):
    response = api_upload(users["analyst"], "listings", listing_rows((A, "2025-01", "K", "0-4", 5)))
    url = response.json()["status_url"]
    assert Client().get(url, **bearer(users["outsider"])).status_code == 404
    assert Client().get(url, **bearer(users["admin"])).status_code == 404


def test_it_exports_through_the_api(users, unit_a, unit_b):
    _seed(unit_a, unit_b)
    csv_response = Client().get("/api/organisation/exports/staffing.csv", **bearer(users["viewer"]))
    assert csv_response.status_code == 200
    text = b"".join(csv_response.streaming_content).decode("utf-8-sig")
    assert text.splitlines()[1] == f"{A};2025Q1;psykolog;1,50"
    xlsx = Client().get("/api/organisation/exports/units.xlsx", **bearer(users["manager"]))
    assert xlsx.status_code == 200
    sheet = load_workbook(io.BytesIO(b"".join(xlsx.streaming_content))).active
    assert sheet["A2"].value == A
    nobody = Client().get("/api/organisation/exports/units.csv", **bearer(users["nobody"]))
    assert nobody.status_code in (401, 403)
    assert Client().get(
        "/api/organisation/exports/units.pdf", **bearer(users["viewer"])
    ).status_code in (404, 422)


def test_it_refuses_an_xlsx_with_several_sheets_through_the_page(client_for, users, unit_a):
    wb = Workbook()
    wb.active.append(["unit_hsa_id", "month", "sex", "age_band", "listed"])
    wb.active.append([A, "2025-01", "K", "0-4", 5])
    wb.create_sheet("Kopia")
    buffer = io.BytesIO()
    wb.save(buffer)
    before = counts()
    response = upload(
        client_for("analyst"), "listings", "", name="l.xlsx", content=buffer.getvalue()
    )
    page = client_for("analyst").get(response.url)
    assert page.status_code == 200
    assert "Kopia" in page.content.decode()
    assert counts() == before


# --- uploaded files ----------------------------------------------------------------------------


def test_it_accepts_only_upload_names_it_made(settings):
    name = imports.save_upload(SimpleUploadedFile("../../etc/passwd.xlsx", b"x"))
    assert name.endswith(".xlsx")
    assert imports.upload_path(name).parent == settings.UPLOAD_DIR
    for bad in ("../secret.csv", "x.csv", "/etc/passwd", ""):
        with pytest.raises(ValueError):
            imports.upload_path(bad)


def test_it_purges_uploads_nobody_confirmed(settings):
    old = imports.save_upload(SimpleUploadedFile("a.csv", b"a"))
    fresh = imports.save_upload(SimpleUploadedFile("b.csv", b"b"))
    past = time.time() - 3 * 24 * 3600
    os.utime(imports.upload_path(old), (past, past))
    assert imports.purge_stale_uploads() == 1
    assert uploads(settings) == [fresh]


def test_it_fails_the_job_when_the_upload_is_gone(client_for, users, unit_a, settings):
    settings.STYRKORT_JOBS = "poller"
    upload(client_for("analyst"), "listings", listing_rows((A, "2025-01", "K", "25-29", 5)))
    job = Job.objects.get()
    imports.delete_upload(job.params["upload"])
    run_job(job)
    job.refresh_from_db()
    assert job.status == "failed"
    assert "no longer there" in job.error
    page = client_for("analyst").get(reverse("organisation:import_review", args=[job.pk]))
    assert "no longer there" in page.content.decode()


def test_it_refuses_an_outsiders_rows_for_units_of_another_region(client_for, users, unit_a):
    client = client_for("outsider")
    before = counts()
    response = upload(client, "listings", listing_rows((A, "2025-01", "K", "25-29", 5)))
    page = client.get(response.url).content.decode()
    assert "unknown_unit" in page
    assert "Confirm the import" not in page
    job = Job.objects.get()
    client.post(reverse("organisation:import_confirm", args=[job.pk]))
    assert Job.objects.count() == 1
    assert counts() == before
