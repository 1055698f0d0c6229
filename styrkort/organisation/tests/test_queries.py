"""The read functions behind the organisation pages and API, on small data."""

from datetime import date
from decimal import Decimal

import pytest

from styrkort.history.models import ChangeRecord
from styrkort.organisation import queries, services
from styrkort.organisation.models import CareUnit, Listing
from styrkort.organisation.tests.sample import add_listings, add_staffing


@pytest.fixture
def units(region, unit_a, unit_b, unit_c):
    return CareUnit.objects.filter(region=region)


def test_it_sums_listed_by_month_and_sex(units, unit_a, unit_b):
    add_listings(unit_a)
    add_listings(unit_b, months=("2025-01",), base=200)
    rows = queries.listed_by_month(units)
    assert [r["month"] for r in rows] == ["2024-11", "2024-12", "2025-01"]
    assert rows[0] == {"month": "2024-11", "K": 110, "M": 50, "T": 160}
    # 2025-01: unit_a K 102+10, M 50; unit_b K 200+10, M 100
    assert rows[-1] == {"month": "2025-01", "K": 322, "M": 150, "T": 472}


def test_it_filters_listed_by_month_range_sex_and_age_band(units, unit_a):
    add_listings(unit_a)
    rows = queries.listed_by_month(units, from_month="2024-12", to_month="2024-12", sex="K")
    assert rows == [{"month": "2024-12", "K": 111, "M": 0, "T": 111}]
    rows = queries.listed_by_month(units, age_band="85+")
    assert [r["T"] for r in rows] == [10, 10, 10]


def test_it_finds_the_latest_month_and_listed_per_unit(units, unit_a, unit_b):
    assert queries.latest_month(units) is None
    add_listings(unit_a)
    add_listings(unit_b, months=("2024-12",), base=300)
    assert queries.latest_month(units) == "2025-01"
    assert queries.listed_in_month(units, "2024-12") == {unit_a.pk: 161, unit_b.pk: 460}
    assert queries.listed_in_month(units, None) == {}


def test_it_builds_a_pyramid_with_every_age_band(unit_a):
    add_listings(unit_a)
    rows = queries.pyramid(unit_a, "2024-12")
    assert len(rows) == 19
    assert rows[0] == {"age_band": "0-4", "K": 0, "M": 0}
    by_band = {r["age_band"]: r for r in rows}
    assert by_band["20-24"] == {"age_band": "20-24", "K": 101, "M": 50}
    assert by_band["85+"] == {"age_band": "85+", "K": 10, "M": 0}
    assert all(r["K"] == r["M"] == 0 for r in queries.pyramid(unit_a, None))


def test_it_filters_units_by_search_and_filters(units, unit_a, unit_b, unit_c, provider_private):
    def names(**kw):
        return sorted(u.hsa_id[-4:] for u in queries.filter_units(units, on=date(2025, 6, 1), **kw))

    assert names(q="björkby") == ["B002"]
    assert names(q="A001") == ["A001"]
    assert names(q="Västervik") == ["A001", "C003"]
    # Å, Ä and Ö fold like other letters, on SQLite too (whose own LIKE folds ASCII only).
    assert names(q="VÄSTERVIK") == ["A001", "C003"]
    assert names(q="hälsocentralen BJÖRKBY") == ["B002"]
    assert names(q="se2321000016-a001") == ["A001"]
    assert names(provider=provider_private.pk) == ["B002"]
    assert names(provider="not-a-number") == []
    assert names(kind="region") == ["A001", "C003"]
    assert names(municipality="Bjurholm") == ["B002"]
    assert names(active="yes") == ["A001", "B002"]
    assert names(active="no") == ["C003"]
    assert names(active="all") == ["A001", "B002", "C003"]


def test_it_sorts_units_by_listed_and_falls_back_to_name(units, unit_a, unit_b, unit_c):
    add_listings(unit_a)
    add_listings(unit_b, months=("2025-01",), base=500)
    annotated = queries.annotate_listed(units, "2025-01")
    ordered, key = queries.sort_units(annotated, "-listed")
    assert key == "-listed"
    assert [u.pk for u in ordered] == [unit_b.pk, unit_a.pk, unit_c.pk]
    assert [u.listed_latest for u in ordered] == [760, 162, 0]
    ordered, key = queries.sort_units(annotated, "bogus")
    assert key == "name"
    assert [u.name for u in ordered] == sorted(u.name for u in units)
    ordered, key = queries.sort_units(annotated, "-municipality")
    assert ordered.first().municipality == "Västervik"


def test_it_counts_units_by_provider_and_kind(units, provider_region, provider_private):
    rows = queries.units_by_provider(units, on=date(2025, 6, 1))
    assert [(r["provider"], r["kind"], r["units"], r["active"]) for r in rows] == [
        ("Hälsa Nord AB", "private", 1, 1),
        ("Region Exempel Primärvård", "region", 2, 1),
    ]
    kinds = {k["kind"]: k for k in queries.units_by_kind(units, on=date(2025, 6, 1))}
    assert kinds["region"]["units"] == 2
    assert kinds["region"]["active"] == 1
    assert kinds["private"]["providers"] == 1


def test_it_computes_fte_per_10000_listed():
    assert queries.per_10000(Decimal("1.5"), 7500) == Decimal("2.00")
    assert queries.per_10000(Decimal("1"), 3000) == Decimal("3.33")
    assert queries.per_10000(Decimal("1"), 0) is None
    assert queries.per_10000(None, 100) is None


def test_it_orders_periods_of_different_kinds_chronologically(units, unit_a):
    add_staffing(unit_a, "2024", psykolog="1")
    add_staffing(unit_a, "2025Q1", psykolog="1")
    add_staffing(unit_a, "2024-06", psykolog="1")
    assert queries.staffing_periods(units) == ["2024-06", "2024", "2025Q1"]
    assert queries.latest_staffing_period(units) == "2025Q1"


def test_it_computes_psychosocial_staffing_per_10000_listed_by_unit(units, unit_a, unit_b):
    add_listings(unit_a, months=("2024-12", "2025-01", "2025-04"), base=9990)
    # unit_a listed in 2025-01 (the latest month within 2025Q1): K 9991+10, M 4995 -> 14996
    add_staffing(unit_a, "2025Q1", psykolog="1.50", kurator="0.75", lakare="3", ptp_psykolog="1")
    add_staffing(unit_b, "2025Q1", lakare="2")  # reported, but no psychosocial staff
    rows = queries.psychosocial_by_unit(units, "2025Q1")
    assert [r["hsa_id"] for r in rows] == [unit_b.hsa_id, unit_a.hsa_id]  # by name
    a = rows[1]
    assert a["fte"] == Decimal("3.25")
    assert a["listed"] == 14996
    assert a["per_10000"] == Decimal("2.17")
    b = rows[0]
    assert b["fte"] == Decimal("0")
    assert b["listed"] == 0
    assert b["per_10000"] is None
    assert queries.psychosocial_by_unit(units, None) == []


def test_it_tabulates_a_units_staffing_newest_first(unit_a):
    add_listings(unit_a)
    add_staffing(unit_a, "2024", psykolog="1", lakare="2")
    add_staffing(unit_a, "2025Q1", psykolog="2", kurator="0.5")
    matrix = queries.staffing_matrix(unit_a)
    assert [p["code"] for p in matrix["professions"]] == ["lakare", "psykolog", "kurator"]
    assert matrix["periods"] == ["2025Q1", "2024"]
    lakare = matrix["professions"][0]
    assert lakare["values"] == [None, Decimal("2.00")]
    assert lakare["psychosocial"] is False
    assert matrix["per_10000"] == [Decimal("154.32"), Decimal("62.11")]
    first, second = matrix["rows"]
    assert first["period"] == "2025Q1"
    assert first["fte"] == [None, Decimal("2.00"), Decimal("0.50")]
    assert first["psychosocial"] == Decimal("2.50")
    assert first["listed"] == 162
    assert first["per_10000"] == Decimal("154.32")
    assert second["period"] == "2024"
    assert second["listed"] == 161


def test_it_gives_key_figures(units, unit_a, unit_b):
    add_listings(unit_a, months=("2024-01", "2025-01"))
    add_staffing(unit_a, "2025", psykolog="1")
    add_staffing(unit_b, "2025", lakare="1")
    figures = queries.key_figures(units, on=date(2025, 6, 1))
    assert figures["units"] == 3
    assert figures["active_units"] == 2
    assert figures["providers"] == 2
    assert figures["latest_month"] == "2025-01"
    assert figures["listed"] == 161
    assert figures["listed_change"] == 1
    assert figures["staffing_period"] == "2025"
    assert figures["units_without_psychologist"] == 1
    assert figures["psychosocial_per_10000"] == Decimal("62.11")


def test_it_finds_a_units_changes_including_listings_and_staffing(users, unit_a, unit_b):
    analyst = users["analyst"]
    services.update_unit(analyst, unit_a, name="Vårdcentralen Ankarsrum Nya")
    services.set_staffing(analyst, unit_a, "2025", "psykolog", Decimal("1"))
    services.set_staffing(analyst, unit_b, "2025", "psykolog", Decimal("2"))
    listing = Listing.objects.create(
        unit=unit_a, month="2025-01", sex="K", age_band="0-4", listed=3
    )
    from django.db import transaction

    from styrkort.history.services import record, snapshot

    with transaction.atomic():
        record(analyst, "delete", listing, before=snapshot(listing))
    changes = list(queries.unit_changes(unit_a))
    types = sorted(c.object_type for c in changes)
    assert types == ["organisation.careunit", "organisation.listing", "organisation.staffing"]
    assert ChangeRecord.objects.count() == 4
    assert all(c.region_id == unit_a.region_id for c in changes)
