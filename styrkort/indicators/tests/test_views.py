"""The indicator pages: catalogue (with the compute button), one indicator, one unit,
downloads. Figures come from stored results (``pages.po09`` / ``po03a``); one test runs the
engine end to end."""

import csv
import io
import json
import re

import pytest
from django.conf import settings as django_settings
from django.urls import reverse

from styrkort.indicators import services
from styrkort.indicators.catalogue import load_catalogue
from styrkort.indicators.models import ComputationRun, IndicatorResult
from styrkort.jobs.models import Job

pytestmark = pytest.mark.usefixtures("swedish")  # as users see pages

ROLES = ["admin", "analyst", "auditor", "viewer", "manager", "colleague"]
HTMX = {"HTTP_HX_REQUEST": "true"}


def _chart_spec(html: str, chart_id: str) -> dict:
    m = re.search(
        rf'<script id="{chart_id}-spec" type="application/json">(.*?)</script>', html, re.S
    )
    assert m, f"no chart {chart_id}"
    return json.loads(m.group(1))


def _values(spec: dict, layer: str) -> list[dict]:
    """The data of one named layer (Altair lifts data shared by all layers to the top)."""
    found = next(lr for lr in spec["layer"] if lr.get("name") == layer)
    return (found.get("data") or spec["data"])["values"]


def _row(html: str, name: str) -> str:
    """The table row of the units table whose header names ``name``."""
    pattern = rf"<tr>\s*<th scope=\"row\"><a [^>]*>{re.escape(name)}</a></th>(.*?)</tr>"
    m = re.search(pattern, html, re.S)
    assert m, f"no row for {name}"
    return m.group(1)


def _english(client):
    client.cookies[django_settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


def _detail(code="PO09", **query):
    url = reverse("indicators:detail", args=[code])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


# --- catalogue --------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ROLES)
def test_it_shows_the_catalogue_to_every_role(client_for, users, persona):
    r = client_for(persona).get(reverse("indicators:catalogue"))
    assert r.status_code == 200
    html = r.content.decode()
    catalogue = load_catalogue()
    for d in catalogue:
        assert reverse("indicators:detail", args=[d.code]) in html
        assert d.version in html
        assert d.name_sv in html  # Swedish by default
    assert "Psykisk ohälsa i primärvården" in html
    can_compute = persona in ("admin", "analyst")
    assert (reverse("indicators:compute") in html) is can_compute


def test_it_describes_each_definition_in_words(client_for, users):
    html = _english(client_for("viewer")).get(reverse("indicators:catalogue")).content.decode()
    po04 = load_catalogue().get("PO04")
    for text in (po04.name_en, po04.numerator_en, po04.denominator_en, "Higher is better",
                 "Target: at least 60 %", po04.citation.split(";")[0]):  # fmt: skip
        assert text.replace("'", "&#x27;") in html, text
    assert 'id="PO04"' in html
    assert "<script>" not in html


def test_it_refuses_the_catalogue_without_a_role(client_for, client, users):
    assert client_for("nobody").get(reverse("indicators:catalogue")).status_code == 403
    r = client.get(reverse("indicators:catalogue"))
    assert r.status_code == 302
    assert r["Location"].startswith(reverse("login"))


def test_it_computes_from_the_catalogue_for_an_analyst(client_for, users, monkeypatch, settings):
    settings.STYRKORT_JOBS = "inline"
    calls = []
    monkeypatch.setattr(
        services, "compute", lambda region, *a, **kw: calls.append(kw) or _run(region)
    )
    c = client_for("analyst")
    r = c.post(reverse("indicators:compute"))
    job = Job.objects.get()
    assert job.kind == services.JOB_KIND
    assert job.status == Job.Status.DONE, job.error
    assert r.status_code == 302
    assert r["Location"] == f"{reverse('indicators:catalogue')}?job={job.pk}"
    html = c.get(r["Location"]).content.decode()
    assert f'id="job-{job.pk}"' in html
    assert calls
    assert calls[0]["actor"] == users["analyst"]
    # With htmx the answer is the progress fragment.
    r = c.post(reverse("indicators:compute"), **HTMX)
    assert r.status_code == 200
    assert "<html" not in r.content.decode()
    assert 'class="job-progress"' in r.content.decode()


def _run(region):
    return ComputationRun.objects.create(region=region, status=ComputationRun.Status.DONE)


@pytest.mark.parametrize("persona", ["viewer", "auditor", "manager", "nobody"])
def test_it_refuses_the_compute_button_and_queues_nothing(client_for, users, persona):
    r = client_for(persona).post(reverse("indicators:compute"))
    assert r.status_code == 403
    assert not Job.objects.exists()
    assert not ComputationRun.objects.exists()
    assert client_for(persona).get(reverse("indicators:compute")).status_code == 405


# --- one indicator ----------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ROLES)
def test_it_shows_an_indicator_to_every_role(client_for, po09, persona):
    r = client_for(persona).get(_detail())
    assert r.status_code == 200
    html = r.content.decode()
    for chart_id in ("chart-series", "chart-funnel", "chart-sex", "chart-age"):
        assert f'id="{chart_id}"' in html
    assert "vega-embed.min.js" in html
    assert "<script>" not in html  # no inline script (CSP)
    assert services.suppression_notice("sv") in html
    assert "Vårdcentralen Fjällby" in html


def test_it_opens_on_the_latest_complete_quarter(client_for, po09):
    html = client_for("viewer").get(_detail()).content.decode()
    assert '<option value="2025Q2" selected>' in html
    assert "Funnel plot, 2025Q2" in _english_html(client_for, _detail())


def _english_html(client_for, url, persona="viewer"):
    return _english(client_for(persona)).get(url).content.decode()


def test_it_shows_the_funnel_with_classes_in_words_and_unit_links(client_for, po09):
    html = _english_html(client_for, _detail(period="2025Q2"))
    spec = _chart_spec(html, "chart-funnel")
    names = [layer["name"] for layer in spec["layer"]]
    assert names[:2] == ["limits", "region"]
    assert "units" in names
    points = _values(spec, "units")
    urls = {p["unit"]: p["url"] for p in points}
    assert urls["Vårdcentralen Ekby"] == reverse("indicators:unit", args=[po09["E"].pk])
    assert len(points) == 5
    # Classes in text as well as colour: the list under the plot and the table.
    assert "Better than the region: Vårdcentralen Fjällby." in html
    assert "Worse than the region: Vårdcentralen Ekby." in html
    assert "Similar to the region: 3 units." in html
    assert "Worse than the region</span>" in _row(html, "Vårdcentralen Ekby")
    assert 'class="badge class-worse"' in _row(html, "Vårdcentralen Ekby")
    # The text alternative names the outliers too.
    label = re.search(r'id="chart-funnel"[^>]*aria-label="([^"]+)"', html).group(1)
    assert "Vårdcentralen Fjällby" in label
    assert "2025Q2" in label


def test_it_formats_figures_the_swedish_way(client_for, po09):
    html = client_for("viewer").get(_detail(period="2025Q2")).content.decode()
    row = _row(html, "Vårdcentralen Ekby")
    assert ">8,6<" in row
    assert "5,8–12,5" in row  # rounded, not cut off
    spec = _chart_spec(html, "chart-funnel")
    assert spec["config"]["locale"]["number"]["decimal"] == ","
    english = _english_html(client_for, _detail(period="2025Q2"))
    assert ">8.6<" in _row(english, "Vårdcentralen Ekby")


def test_it_formats_rates_per_1000_listed(client_for, po03a):
    html = client_for("viewer").get(_detail("PO03A", period="2025Q2")).content.decode()
    assert "per 1\xa0000 listade" in html or "per 1 000 listade" in html
    spec = _chart_spec(html, "chart-funnel")
    assert any(lr["name"] == "limits" for lr in spec["layer"])
    ekby = _row(html, "Vårdcentralen Ekby")
    # 45 cases a month in a mean of 2,100 listed over the quarter: 135 / 2,100 * 1,000.
    assert ">64,3<" in ekby
    assert ">2\xa0100<" in ekby


def test_it_draws_no_limits_for_an_indicator_that_is_not_compared(client_for, region, units):
    from styrkort.indicators.tests.builders import monthly_counts, store_results

    monthly = {name: {("K", "25-44"): (i + 1, 1000 + 100 * i)} for i, name in enumerate(units)}
    store_results(region, "PO11", monthly_counts(units, monthly))
    html = _english_html(client_for, _detail("PO11", period="2025Q2"))
    spec = _chart_spec(html, "chart-funnel")
    assert "limits" not in [lr["name"] for lr in spec["layer"]]
    assert "(the units are not compared)" in html
    assert "no funnel limits are drawn" in html
    assert 'id="chart-sex"' not in html  # PO11 has no breakdowns


def test_it_suppresses_small_numbers_for_a_viewer_but_not_for_an_analyst(client_for, po09):
    viewer = _english_html(client_for, _detail(period="2025-03"))
    row = _row(viewer, "Vårdcentralen Ankarsrum")
    assert "Suppressed" in row
    assert "33.3" not in row
    assert "Suppressed (small numbers):" in viewer
    assert "Small numbers are suppressed" in viewer  # the method, in the active language
    analyst = _english_html(client_for, _detail(period="2025-03"), "analyst")
    row = _row(analyst, "Vårdcentralen Ankarsrum")
    assert "Suppressed<" not in row
    assert ">33.3<" in row  # 3 of 9
    assert "(suppressed for other roles)" in row


def test_a_manager_sees_the_own_unit_and_not_the_others(client_for, po09):
    manager = _english_html(client_for, _detail(period="2025-03"), "manager")
    assert ">33.3<" in _row(manager, "Vårdcentralen Ankarsrum")
    colleague = _english_html(client_for, _detail(period="2025-03"), "colleague")
    assert "Suppressed" in _row(colleague, "Vårdcentralen Ankarsrum")
    assert "Suppressed" not in _row(colleague, "Hälsocentralen Björkby")


def test_it_swaps_the_period_results_and_the_series_with_htmx(client_for, po09):
    c = _english(client_for("viewer"))
    r = c.get(_detail(period="2025Q1"), HTTP_HX_TARGET="period-results", **HTMX)
    html = r.content.decode()
    assert r.status_code == 200
    assert "<html" not in html
    assert "<h1" not in html
    assert "Funnel plot, 2025Q1" in html
    assert 'id="chart-funnel"' in html
    assert 'id="chart-series"' not in html
    r = c.get(_detail(period_type="month"), HTTP_HX_TARGET="series", **HTMX)
    html = r.content.decode()
    assert "<html" not in html
    spec = _chart_spec(html, "chart-series")
    periods = [v["period"] for v in _values(spec, "value")]
    assert periods == [f"2025-{m:02d}" for m in range(1, 7)]


def test_it_shows_the_time_series_with_its_band_and_the_target(client_for, region, units):
    from styrkort.indicators.tests.builders import PO09_MONTHLY, monthly_counts, store_results

    store_results(region, "PO04", monthly_counts(units, PO09_MONTHLY))
    html = _english_html(client_for, _detail("PO04"))
    spec = _chart_spec(html, "chart-series")
    assert [lr["name"] for lr in spec["layer"]] == ["interval", "value", "target", "target_label"]
    assert _values(spec, "target")[0]["target"] == 60.0
    assert "Target: at least 60 %" in html
    assert "the target as a dashed line" in html
    # Every chart has a text alternative and a table with the same figures.
    for chart_id in ("chart-series", "chart-funnel", "chart-sex", "chart-age"):
        label = re.search(rf'id="{chart_id}"[^>]*aria-label="([^"]+)"', html)
        assert label, chart_id
        assert len(label.group(1)) > 40, chart_id
    assert "The region over time as a table" in html
    assert "<caption>By sex" in html
    assert "<caption>By age band" in html


def test_it_says_when_nothing_is_computed_and_changes_nothing(client_for, users):
    before = IndicatorResult.objects.count(), ComputationRun.objects.count()
    html = _english_html(client_for, _detail("PO04"))
    assert "No results have been computed for this indicator yet." in html
    assert (IndicatorResult.objects.count(), ComputationRun.objects.count()) == before
    from styrkort.indicators.models import IndicatorDefinition

    assert not IndicatorDefinition.objects.exists()  # a GET never syncs the catalogue


def test_it_says_that_the_region_is_being_computed_and_reloads_when_done(
    client_for, users, region, other_region
):
    # Another region's computation is none of this page's business.
    ComputationRun.objects.create(region=other_region, status=ComputationRun.Status.RUNNING)
    html = _english_html(client_for, _detail("PO04"))
    assert "No results have been computed for this indicator yet." in html
    assert "being computed" not in html
    run = ComputationRun.objects.create(region=region, status=ComputationRun.Status.RUNNING)
    html = _english_html(client_for, _detail("PO04"))
    assert "The region's indicators are being computed" in html
    status = reverse("indicators:run_status")
    assert f'hx-get="{status}"' in html
    viewer = _english(client_for("viewer"))
    r = viewer.get(status, **HTMX)
    assert r.status_code == 200
    assert "being computed" in r.content.decode()
    assert "HX-Refresh" not in r
    run.status = ComputationRun.Status.DONE
    run.save()
    before = list(ComputationRun.objects.values_list("pk", "status").order_by("pk"))
    r = viewer.get(status, **HTMX)
    assert (r.status_code, r["HX-Refresh"], r.content) == (200, "true", b"")
    # Without htmx: the catalogue, which says how the latest run went.
    assert viewer.get(status)["Location"] == reverse("indicators:catalogue")
    assert before == list(ComputationRun.objects.values_list("pk", "status").order_by("pk"))


def test_it_says_that_the_region_is_loading_extracts_and_reloads_when_done(
    client_for, users, region, other_region
):
    from styrkort.extracts.services import JOB_KIND as INGEST
    from styrkort.web.demo import JOB_KIND as DEMO

    # Another region's upload and this region's registry import bring no results here.
    Job.objects.create(kind=INGEST, created_by=users["outsider"])
    Job.objects.create(kind="organisation.import", created_by=users["analyst"])
    html = _english_html(client_for, _detail("PO04"))
    assert "No results have been computed for this indicator yet." in html
    assert "being loaded" not in html
    status = reverse("indicators:run_status")
    viewer = _english(client_for("viewer"))
    for kind in (DEMO, INGEST):
        job = Job.objects.create(kind=kind, created_by=users["analyst"])
        html = _english_html(client_for, _detail("PO04"))
        assert "The region's extracts are being loaded" in html
        assert f'hx-get="{status}"' in html
        assert "being loaded" in viewer.get(status, **HTMX).content.decode()
        job.status = Job.Status.DONE
        job.save()
        assert viewer.get(status, **HTMX)["HX-Refresh"] == "true"
    Job.objects.create(kind=services.JOB_KIND, created_by=users["analyst"])
    assert "being computed" in viewer.get(status, **HTMX).content.decode()


def test_it_answers_404_for_an_unknown_indicator(client_for, users):
    assert client_for("viewer").get(_detail("XX99")).status_code == 404


# --- downloads ----------------------------------------------------------------------------


def _csv_rows(response) -> list[dict]:
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


def _cell(rows, hsa, period="2025-03", sex="T", band="alla"):
    return next(
        r
        for r in rows
        if r["HSA-id"] == hsa and r["Period"] == period and r["Sex"] == sex
        and r["Age band"] == band
    )  # fmt: skip


def test_it_downloads_csv_suppressed_as_the_role_requires(client_for, po09):
    url = reverse("indicators:download", args=["PO09"]) + "?period=2025-03&format=csv"
    a = po09["A"].hsa_id
    rows = _csv_rows(_english(client_for("viewer")).get(url))
    assert {r["Period"] for r in rows} == {"2025-03"}
    cell = _cell(rows, a)
    assert cell["Value"] == ""
    assert cell["Numerator"] == ""
    assert cell["Suppressed"] == "yes"
    rows = _csv_rows(_english(client_for("analyst")).get(url))
    assert float(_cell(rows, a)["Numerator"]) == 3
    rows = _csv_rows(_english(client_for("manager")).get(url))
    assert float(_cell(rows, a)["Numerator"]) == 3
    rows = _csv_rows(_english(client_for("colleague")).get(url))
    assert _cell(rows, a)["Value"] == ""


def test_it_downloads_xlsx_with_the_method(client_for, po09):
    from openpyxl import load_workbook

    r = _english(client_for("viewer")).get(
        reverse("indicators:download", args=["PO09"]) + "?format=xlsx"
    )
    assert r.status_code == 200
    assert r["Content-Type"].startswith("application/vnd.openxmlformats")
    book = load_workbook(io.BytesIO(r.content))
    results, about = book.worksheets
    header = [c.value for c in results[1]]
    value_col = header.index("Value")
    suppressed_col = header.index("Suppressed")
    hidden = [row for row in results.iter_rows(min_row=2, values_only=True)
              if row[suppressed_col] == "yes"]  # fmt: skip
    assert hidden
    assert all(row[value_col] is None for row in hidden)
    assert any("Small numbers" in str(row[1]) for row in about.iter_rows(values_only=True))


def test_it_refuses_bad_download_requests(client_for, po09, other_unit):
    c = client_for("viewer")
    url = reverse("indicators:download", args=["PO09"])
    assert c.get(url + "?format=pdf").status_code == 400
    assert c.get(url + "?period=2025Q5").status_code == 400
    assert c.get(url + "?sex=X").status_code == 400
    assert c.get(url + f"?unit={other_unit.pk}").status_code == 404
    assert c.get(reverse("indicators:download", args=["XX99"])).status_code == 404
    assert client_for("nobody").get(url).status_code == 403


def test_the_page_links_to_the_downloads(client_for, po09):
    html = client_for("viewer").get(_detail(period="2025Q2")).content.decode()
    base = reverse("indicators:download", args=["PO09"])
    assert f"{base}?period=2025Q2&amp;format=csv" in html
    assert f"{base}?format=xlsx" in html


# --- one unit -----------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ROLES)
def test_it_shows_a_unit_to_every_role(client_for, po09, po03a, persona):
    r = client_for(persona).get(reverse("indicators:unit", args=[po09["F"].pk]))
    assert r.status_code == 200
    html = r.content.decode()
    for d in load_catalogue():
        assert reverse("indicators:detail", args=[d.code]) in html
    assert 'id="chart-trend-PO09"' in html
    assert 'id="chart-trend-PO03A"' in html
    assert "<script>" not in html


def test_it_shows_every_indicator_against_the_region(client_for, po09, po03a):
    html = _english_html(client_for, reverse("indicators:unit", args=[po09["F"].pk]))
    row = re.search(r'<a href="/indicators/PO09/">PO09.*?</tr>', html, re.S).group(0)
    assert "2025Q2" in row
    assert ">82.1<" in row  # the unit
    region = IndicatorResult.objects.get(
        definition__code="PO09", unit=None, period="2025Q2", sex="T", age_band="alla"
    )
    assert f">{region.value:.1f}<" in row  # the region
    assert "Better than the region" in row
    spec = _chart_spec(html, "chart-trend-PO09")
    series = {v["series"] for v in _values(spec, "trend")}
    assert series == {"Vårdcentralen Fjällby", "Region"}
    assert "Vårdcentralen Fjällby (solid line) and the region (dashed line)" in html


def test_the_unit_page_is_suppressed_per_role(client_for, po09):
    url = reverse("indicators:unit", args=[po09["A"].pk]) + "?period_type=month"

    def trend_table(html: str) -> str:
        section = html[html.index('id="trend-PO09"') :]
        return section[: section.index("</table>")]

    viewer = trend_table(_english_html(client_for, url))
    assert "Suppressed" in viewer
    assert ">33.3<" not in viewer
    manager_html = _english_html(client_for, url, "manager")
    own = trend_table(manager_html)
    assert "Suppressed" not in own
    assert ">33.3<" in own  # 3 of 9 every month
    assert "This is your unit" in manager_html


def test_it_hides_units_of_other_regions(client_for, po09, other_unit):
    assert (
        client_for("viewer").get(reverse("indicators:unit", args=[other_unit.pk])).status_code
        == 404
    )
    assert (
        client_for("outsider").get(reverse("indicators:unit", args=[po09["A"].pk])).status_code
        == 404
    )
    assert (
        client_for("nobody").get(reverse("indicators:unit", args=[po09["A"].pk])).status_code == 403
    )


def test_the_organisation_unit_page_links_to_the_indicators(client_for, unit_a, users):
    html = (
        client_for("viewer")
        .get(reverse("organisation:unit_detail", args=[unit_a.pk]))
        .content.decode()
    )
    assert reverse("indicators:unit", args=[unit_a.pk]) in html


# --- end to end ---------------------------------------------------------------------------


def test_it_shows_what_the_engine_computed(client_for, region, users, unit_a, unit_b, settings,
                                           tmp_path):  # fmt: skip
    from styrkort.indicators.tests.scenario import A, B, Extract

    settings.EXTRACT_DIR = tmp_path
    e = Extract()
    for unit, hits, total in ((A, 3, 12), (B, 9, 12)):
        for i in range(total):
            e.contact(f"{unit}{i}", "2025-02-10", unit, dx=("F41.1",),
                      profession="psykolog" if i < hits else "lakare")  # fmt: skip
    e.write(region, users["analyst"], tmp_path, ["2025-02"])
    services.compute(region, codes=["PO09"])
    html = _english_html(client_for, _detail(period="2025-02"), "analyst")
    assert ">25.0<" in _row(html, unit_a.name)  # 3 of 12
    assert ">75.0<" in _row(html, unit_b.name)
    spec = _chart_spec(html, "chart-funnel")
    assert {p["unit"] for p in _values(spec, "units")} == {unit_a.name, unit_b.name}
