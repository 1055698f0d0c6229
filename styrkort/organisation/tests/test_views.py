"""The organisation pages: overview, unit list, unit page, history, edits, providers."""

import json
import re
from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from styrkort.history.models import ChangeRecord
from styrkort.organisation import views
from styrkort.organisation.models import CareUnit, Staffing
from styrkort.organisation.tests.sample import add_listings, add_staffing

pytestmark = pytest.mark.usefixtures("swedish")  # pages as users see them by default


def _state():
    """Everything an edit could touch, to show that a refused edit changed nothing."""
    return (
        list(CareUnit.objects.order_by("pk").values()),
        list(Staffing.objects.order_by("pk").values()),
        ChangeRecord.objects.count(),
    )


def _chart_spec(html: str, chart_id: str) -> dict:
    m = re.search(
        rf'<script id="{chart_id}-spec" type="application/json">(.*?)</script>', html, re.S
    )
    assert m, f"no chart {chart_id}"
    return json.loads(m.group(1))


@pytest.fixture
def data(users, unit_a, unit_b, unit_c):
    add_listings(unit_a)
    add_listings(unit_b, months=("2025-01",), base=300)
    add_staffing(unit_a, "2025Q1", psykolog="1.50", kurator="0.50", lakare="2")
    add_staffing(unit_b, "2025Q1", lakare="3")
    return users


# --- overview ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "persona", ["admin", "analyst", "auditor", "viewer", "manager", "colleague"]
)
def test_it_shows_the_overview_to_every_role(client_for, data, persona):
    r = client_for(persona).get(reverse("organisation:overview"))
    assert r.status_code == 200
    html = r.content.decode()
    for chart_id in ("chart-listed", "chart-providers", "chart-psychosocial"):
        assert f'id="{chart_id}"' in html
    assert "vega-embed.min.js" in html
    assert "<script>" not in html  # no inline script (CSP)


def test_it_shows_the_overview_figures_in_tables_and_charts(client_for, data, unit_a):
    html = client_for("viewer").get(reverse("organisation:overview")).content.decode()
    # 2025-01: unit_a 162 + unit_b 460
    assert '<p class="figure">622</p>' in html
    spec = _chart_spec(html, "chart-listed")
    totals = {
        v["month"]: v["listed"] for v in spec["data"]["values"] if v["series"] in ("All", "Alla")
    }
    assert totals == {"2024-11": 160, "2024-12": 161, "2025-01": 622}
    assert spec["config"]["locale"]["number"]["decimal"] == ","
    psych = _chart_spec(html, "chart-psychosocial")
    a = next(v for v in psych["data"]["values"] if v["unit"] == unit_a.name)
    # 2 FTE per 162 listed
    assert a["per_10000"] == pytest.approx(123.46)
    assert a["url"] == reverse("organisation:unit_detail", args=[unit_a.pk])
    # The table shows the same figure, Swedish decimal comma.
    assert "123,46" in html


def test_it_refuses_the_overview_without_a_role(client_for, data, client):
    assert client_for("nobody").get(reverse("organisation:overview")).status_code == 403
    r = client.get(reverse("organisation:overview"))
    assert r.status_code == 302
    assert reverse("login") in r["Location"]


def test_it_shows_an_empty_region_without_errors(client_for, users):
    r = client_for("analyst").get(reverse("organisation:overview"))
    assert r.status_code == 200
    assert "chart-listed" not in r.content.decode()


# --- unit list -----------------------------------------------------------------------------


def _listed_names(response) -> list[str]:
    return re.findall(
        r'<th scope="row"><a href="/organisation/units/\d+/">([^<]+)</a>', response.content.decode()
    )


def test_it_searches_units_by_name_hsa_id_and_municipality(client_for, data, unit_a, unit_b):
    c = client_for("viewer")
    url = reverse("organisation:unit_list")
    assert _listed_names(c.get(url, {"q": "Björkby"})) == [unit_b.name]
    assert _listed_names(c.get(url, {"q": "A001"})) == [unit_a.name]
    assert len(_listed_names(c.get(url, {"q": "Västervik"}))) == 2
    assert _listed_names(c.get(url, {"q": "nothing like this"})) == []


def test_it_filters_units(client_for, data, unit_a, unit_b, unit_c, provider_private):
    c = client_for("manager")
    url = reverse("organisation:unit_list")
    assert _listed_names(c.get(url, {"provider": provider_private.pk})) == [unit_b.name]
    assert _listed_names(c.get(url, {"kind": "region"})) == [unit_a.name, unit_c.name]
    assert _listed_names(c.get(url, {"municipality": "Bjurholm"})) == [unit_b.name]
    assert _listed_names(c.get(url, {"active": "no"})) == [unit_c.name]
    assert unit_c.name not in _listed_names(c.get(url, {"active": "yes"}))
    # A stale provider id is ignored rather than failing.
    assert len(_listed_names(c.get(url, {"provider": "999999"}))) == 3


def test_it_lists_only_the_users_region(client_for, data, other_unit):
    names = _listed_names(client_for("analyst").get(reverse("organisation:unit_list")))
    assert other_unit.name not in names
    assert len(names) == 3
    outsider = _listed_names(client_for("outsider").get(reverse("organisation:unit_list")))
    assert outsider == [other_unit.name]


def test_it_sorts_units_with_aria_sort(client_for, data, unit_a, unit_b, unit_c):
    c = client_for("viewer")
    url = reverse("organisation:unit_list")
    r = c.get(url, {"sort": "-listed"})
    assert _listed_names(r) == [unit_b.name, unit_a.name, unit_c.name]
    html = r.content.decode()
    assert re.search(r'aria-sort="descending"><a href="\?sort=listed"', html)
    assert 'aria-sort="none"><a href="?sort=name"' in html
    r = c.get(url, {"sort": "name"})
    assert _listed_names(r) == sorted([unit_a.name, unit_b.name, unit_c.name])
    assert 'aria-sort="ascending"><a href="?sort=-name"' in r.content.decode()
    r = c.get(url, {"sort": "municipality"})
    assert _listed_names(r)[0] == unit_b.name  # Bjurholm before Västervik


def test_it_answers_htmx_with_only_the_results(client_for, data, unit_b):
    r = client_for("viewer").get(
        reverse("organisation:unit_list"),
        {"q": "Björkby"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="unit-results",
    )
    html = r.content.decode()
    assert "<html" not in html
    assert 'hx-swap-oob="true"' in html  # the result count, announced by its live region
    assert _listed_names(r) == [unit_b.name]
    # A plain GET (no JavaScript) gives the whole page with the same results.
    r = client_for("viewer").get(reverse("organisation:unit_list"), {"q": "Björkby"})
    assert "<html" in r.content.decode()
    assert _listed_names(r) == [unit_b.name]


def test_it_pages_the_unit_list(client_for, data, monkeypatch, unit_a, unit_b, unit_c):
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    c = client_for("viewer")
    first = c.get(reverse("organisation:unit_list"))
    assert len(_listed_names(first)) == 2
    assert "page=2" in first.content.decode()
    second = c.get(reverse("organisation:unit_list"), {"page": 2})
    assert _listed_names(second) == [unit_c.name]


# --- unit page -----------------------------------------------------------------------------


def test_it_shows_a_unit_with_listing_history_pyramid_and_staffing(client_for, data, unit_a):
    r = client_for("viewer").get(reverse("organisation:unit_detail", args=[unit_a.pk]))
    assert r.status_code == 200
    html = r.content.decode()
    assert unit_a.hsa_id in html
    assert "Västervik" in html
    spec = _chart_spec(html, "chart-unit-listed")
    assert {v["month"] for v in spec["data"]["values"]} == {"2024-11", "2024-12", "2025-01"}
    assert '<option value="2025-01" selected>' in html  # the pyramid defaults to the latest month
    pyramid = _chart_spec(html, "chart-pyramid")
    women_20 = next(v for v in pyramid["data"]["values"] if v["age_band"] == "20-24" and v["x"] < 0)
    assert women_20["listed"] == 102
    # Staffing: psychosocial 2,00 FTE per 162 listed = 123,46 per 10 000.
    assert "123,46" in html
    assert "2025Q1" in html
    # A viewer may not edit nor read history: no links to those pages.
    assert reverse("organisation:unit_edit", args=[unit_a.pk]) not in html
    assert reverse("organisation:unit_history", args=[unit_a.pk]) not in html


def test_it_switches_the_pyramid_month_with_htmx(client_for, data, unit_a):
    url = reverse("organisation:unit_detail", args=[unit_a.pk])
    r = client_for("viewer").get(
        url, {"month": "2024-11"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="pyramid"
    )
    html = r.content.decode()
    assert "<html" not in html
    assert "<h1>" not in html
    pyramid = _chart_spec(html, "chart-pyramid")
    women_20 = next(v for v in pyramid["data"]["values"] if v["age_band"] == "20-24" and v["x"] < 0)
    assert women_20["listed"] == 100
    assert "2024-11" in html
    # The same choice without JavaScript renders the whole page for that month.
    full = client_for("viewer").get(url, {"month": "2024-11"}).content.decode()
    assert '<option value="2024-11" selected>' in full
    # An unknown month falls back to the latest.
    other = client_for("viewer").get(url, {"month": "1999-01"}).content.decode()
    assert '<option value="2025-01" selected>' in other


def test_it_shows_edit_links_to_those_who_may_edit(client_for, data, unit_a):
    url = reverse("organisation:unit_detail", args=[unit_a.pk])
    analyst = client_for("analyst").get(url).content.decode()
    assert reverse("organisation:unit_edit", args=[unit_a.pk]) in analyst
    assert reverse("organisation:unit_history", args=[unit_a.pk]) in analyst
    manager = client_for("manager").get(url).content.decode()
    assert reverse("organisation:unit_edit", args=[unit_a.pk]) not in manager
    assert reverse("organisation:staffing_edit", args=[unit_a.pk]) in manager
    colleague = client_for("colleague").get(url).content.decode()
    assert reverse("organisation:staffing_edit", args=[unit_a.pk]) not in colleague


def test_it_hides_units_of_other_regions(client_for, data, other_unit, unit_a):
    assert (
        client_for("analyst")
        .get(reverse("organisation:unit_detail", args=[other_unit.pk]))
        .status_code
        == 404
    )
    assert (
        client_for("outsider")
        .get(reverse("organisation:unit_detail", args=[unit_a.pk]))
        .status_code
        == 404
    )


# --- unit edit -----------------------------------------------------------------------------


def _unit_form(unit, **changes):
    data = {
        "name": unit.name,
        "municipality": unit.municipality,
        "provider": unit.provider_id,
        "opened": unit.opened.isoformat() if unit.opened else "",
        "closed": unit.closed.isoformat() if unit.closed else "",
    }
    data.update(changes)
    return data


@pytest.mark.parametrize("persona", ["analyst", "admin"])
def test_it_edits_a_unit_and_records_before_and_after(client_for, data, unit_a, persona):
    url = reverse("organisation:unit_edit", args=[unit_a.pk])
    assert client_for(persona).get(url).status_code == 200
    r = client_for(persona).post(
        url, _unit_form(unit_a, name="Vårdcentralen Ankarsrum Syd", closed="2030-01-01")
    )
    assert r.status_code == 302
    assert r["Location"] == reverse("organisation:unit_detail", args=[unit_a.pk])
    unit_a.refresh_from_db()
    assert unit_a.name == "Vårdcentralen Ankarsrum Syd"
    assert unit_a.closed == date(2030, 1, 1)
    change = ChangeRecord.objects.get(object_type="organisation.careunit", object_id=str(unit_a.pk))
    assert change.actor.username == persona
    assert change.before["name"] == "Vårdcentralen Ankarsrum"
    assert change.after["name"] == "Vårdcentralen Ankarsrum Syd"
    assert change.before["closed"] is None
    assert change.after["closed"] == "2030-01-01"
    assert change.region_id == unit_a.region_id


def test_it_moves_a_unit_to_another_provider(client_for, data, unit_a, provider_private):
    r = client_for("analyst").post(
        reverse("organisation:unit_edit", args=[unit_a.pk]),
        _unit_form(unit_a, provider=provider_private.pk),
    )
    assert r.status_code == 302
    unit_a.refresh_from_db()
    assert unit_a.provider_id == provider_private.pk


def test_it_refuses_a_provider_of_another_region(client_for, data, unit_a, other_unit):
    before = _state()
    r = client_for("analyst").post(
        reverse("organisation:unit_edit", args=[unit_a.pk]),
        _unit_form(unit_a, provider=other_unit.provider_id),
    )
    assert r.status_code == 200
    assert "field-error" in r.content.decode()
    assert _state() == before


def test_it_shows_errors_for_an_invalid_unit_edit_and_changes_nothing(client_for, data, unit_a):
    before = _state()
    r = client_for("analyst").post(
        reverse("organisation:unit_edit", args=[unit_a.pk]),
        _unit_form(unit_a, name="", closed="2000-01-01"),
    )
    assert r.status_code == 200
    html = r.content.decode()
    assert "A unit must close after it opened." in html or "måste" in html
    assert 'aria-invalid="true"' in html
    assert _state() == before


@pytest.mark.parametrize(
    ("persona", "status"),
    [("manager", 403), ("colleague", 403), ("viewer", 403), ("auditor", 403), ("nobody", 403),
     ("outsider", 404)],
)  # fmt: skip
def test_it_refuses_unit_edits_and_changes_nothing(client_for, data, unit_a, persona, status):
    url = reverse("organisation:unit_edit", args=[unit_a.pk])
    before = _state()
    assert client_for(persona).get(url).status_code == status
    assert client_for(persona).post(url, _unit_form(unit_a, name="Hacked")).status_code == status
    assert _state() == before


# --- staffing edit -------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["manager", "analyst", "admin"])
def test_it_sets_staffing_and_records_history(client_for, data, unit_a, persona):
    url = reverse("organisation:staffing_edit", args=[unit_a.pk])
    page = client_for(persona).get(url, {"period": "2025Q1"})
    assert page.status_code == 200
    assert 'value="1,50"' in page.content.decode()  # the current figure, Swedish format
    r = client_for(persona).post(
        url, {"period": "2025Q1", "fte_psykolog": "2,25", "fte_psykoterapeut": "0,5"}
    )
    assert r.status_code == 302
    fte = dict(
        Staffing.objects.filter(unit=unit_a, period="2025Q1").values_list("profession", "fte")
    )
    assert fte["psykolog"] == Decimal("2.25")
    assert fte["psykoterapeut"] == Decimal("0.50")
    assert fte["kurator"] == Decimal("0.50")  # left empty: unchanged
    changes = ChangeRecord.objects.filter(object_type="organisation.staffing")
    assert changes.count() == 2
    updated = changes.get(action="update")
    assert updated.before["fte"] == "1.50"
    assert updated.after["fte"] == "2.25"
    assert updated.actor.username == persona
    created = changes.get(action="create")
    assert created.before is None
    assert created.after["profession"] == "psykoterapeut"
    assert created.after["fte"] == "0.50"  # as stored, not as typed


@pytest.mark.parametrize(
    ("persona", "status"),
    [("colleague", 403), ("viewer", 403), ("auditor", 403), ("nobody", 403), ("outsider", 404)],
)
def test_it_refuses_staffing_edits_of_other_units_and_changes_nothing(
    client_for, data, unit_a, persona, status
):
    url = reverse("organisation:staffing_edit", args=[unit_a.pk])
    before = _state()
    assert client_for(persona).get(url).status_code == status
    r = client_for(persona).post(url, {"period": "2025Q1", "fte_psykolog": "9"})
    assert r.status_code == status
    assert _state() == before


def test_it_refuses_invalid_staffing_and_writes_nothing(client_for, data, unit_a):
    url = reverse("organisation:staffing_edit", args=[unit_a.pk])
    before = _state()
    r = client_for("manager").post(url, {"period": "2025-13", "fte_psykolog": "1"})
    assert r.status_code == 200
    assert 'aria-invalid="true"' in r.content.decode()
    r = client_for("manager").post(
        url, {"period": "2025", "fte_psykolog": "1", "fte_kurator": "-1"}
    )
    assert r.status_code == 200
    r = client_for("manager").post(url, {"period": "2025", "fte_psykolog": "abc"})
    assert r.status_code == 200
    assert _state() == before


# --- history -------------------------------------------------------------------------------


def test_it_shows_a_units_history_with_its_staffing(client_for, data, users, unit_a, unit_b):
    from styrkort.organisation import services

    services.update_unit(users["analyst"], unit_a, municipality="Västervik kommun")
    services.set_staffing(users["manager"], unit_a, "2025", "psykolog", Decimal("1.25"))
    services.set_staffing(users["colleague"], unit_b, "2025", "psykolog", Decimal("7.75"))
    for persona in ("analyst", "admin", "auditor", "manager"):
        r = client_for(persona).get(reverse("organisation:unit_history", args=[unit_a.pk]))
        assert r.status_code == 200, persona
        html = r.content.decode()
        assert "Västervik kommun" in html
        assert "1.25" in html
        assert "7.75" not in html  # another unit's staffing


@pytest.mark.parametrize(
    ("persona", "status"), [("viewer", 403), ("colleague", 403), ("nobody", 403), ("outsider", 404)]
)
def test_it_refuses_a_units_history(client_for, data, unit_a, persona, status):
    r = client_for(persona).get(reverse("organisation:unit_history", args=[unit_a.pk]))
    assert r.status_code == status


# --- providers -----------------------------------------------------------------------------


def test_it_lists_providers_with_unit_counts(client_for, data, provider_region, provider_private):
    r = client_for("viewer").get(reverse("organisation:provider_list"))
    assert r.status_code == 200
    html = r.content.decode()
    assert provider_region.name in html
    assert provider_private.name in html
    assert "232100-0016" in html  # organisation number as written
    row = re.search(rf"{provider_region.name}</a></th>(.*?)</tr>", html, re.S).group(1)
    cells = re.findall(r'<td class="num">([^<]*)</td>', row)
    assert cells == ["1", "2", "162"]  # active units, all units, listed in 2025-01


# --- charts --------------------------------------------------------------------------------


def test_it_builds_valid_vega_lite(unit_a):
    """The builders skip schema validation at run time (it is slow); it happens here."""
    import altair as alt

    from styrkort.organisation import charts, queries

    add_listings(unit_a)
    add_staffing(unit_a, "2025", psykolog="1")
    units = CareUnit.objects.filter(pk=unit_a.pk)
    psych = queries.psychosocial_by_unit(units, "2025")
    specs = [
        charts.listed_by_month_chart(queries.listed_by_month(units)),
        charts.listed_by_month_chart(queries.listed_by_month(units), by_sex=False),
        charts.pyramid_chart(queries.pyramid(unit_a, "2025-01")),
        charts.units_by_provider_chart(queries.units_by_provider(units)),
        charts.psychosocial_chart(psych),
    ]
    for spec in specs:
        alt.Chart.from_dict(spec, validate=True)
        assert spec["config"]["locale"]["number"]["decimal"] in (",", ".")


# --- admin site ----------------------------------------------------------------------------


def test_it_keeps_units_read_only_in_the_admin_and_records_provider_changes(
    client_for, data, unit_a, provider_private
):
    c = client_for("admin")
    assert c.get(reverse("admin:organisation_careunit_changelist")).status_code == 200
    before = _state()
    r = c.post(
        reverse("admin:organisation_careunit_change", args=[unit_a.pk]),
        _unit_form(unit_a, name="X"),
    )
    assert r.status_code == 403
    assert _state() == before
    r = c.post(
        reverse("admin:organisation_provider_change", args=[provider_private.pk]),
        {
            "region": provider_private.region_id,
            "name": "Hälsa Nord Holding AB",
            "org_nr": provider_private.org_nr,
            "kind": "private",
        },
    )
    assert r.status_code == 302
    change = ChangeRecord.objects.get(object_type="organisation.provider")
    assert change.before["name"] == "Hälsa Nord AB"
    assert change.after["name"] == "Hälsa Nord Holding AB"
    assert change.note == "admin site"
