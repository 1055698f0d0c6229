"""The demo region's generator: deterministic, realistic and with the profiles others rely on."""

from __future__ import annotations

import csv
from collections import defaultdict
from decimal import Decimal

import pytest

from styrkort import breakdowns
from styrkort.identifiers import is_personal_number, normalise_org_nr, validate_hsa_id
from styrkort.organisation.demo import (
    DEMO_PROVIDERS,
    DEMO_REGION,
    DEMO_UNITS,
    LAST_MONTH,
    MANAGED_UNITS,
    MONTHS,
    STAFFING_QUARTERS,
    STAFFING_YEARS,
    UnitProfile,
    build_demo_registry,
)
from styrkort.organisation.models import PSYCHOSOCIAL_PROFESSIONS, Profession
from styrkort.periods import Period, validate_period

SEEDS = (2025, 1, 17)


@pytest.fixture(scope="module")
def registry():
    return build_demo_registry(2025)


def _fte(registry, period: str) -> dict[str, dict[str, Decimal]]:
    by_unit: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for row in registry.staffing:
        if row.period == period:
            by_unit[row.hsa_id][row.profession] = row.fte
    return by_unit


def test_it_generates_the_same_registry_for_the_same_seed():
    a, b = build_demo_registry(11), build_demo_registry(11)
    assert a.listings == b.listings
    assert a.staffing == b.staffing
    assert a.units == b.units
    assert a.digest() == b.digest()


def test_it_generates_different_data_for_another_seed():
    a, b = build_demo_registry(11), build_demo_registry(12)
    assert a.digest() != b.digest()
    assert [r.listed for r in a.listings] != [r.listed for r in b.listings]
    # Identity and profiles do not depend on the seed: extracts generated later rely on them.
    assert a.units == b.units
    assert a.providers == b.providers


def test_it_has_about_thirty_units_two_thirds_run_by_the_region(registry):
    kinds = {p.org_nr: p.kind for p in registry.providers}
    region_run = [u for u in registry.units if kinds[u.provider_org_nr] == "region"]
    assert 28 <= len(registry.units) <= 32
    assert 0.6 <= len(region_run) / len(registry.units) <= 0.72
    assert len({u.hsa_id for u in registry.units}) == len(registry.units)
    assert len({u.name for u in registry.units}) == len(registry.units)


def test_it_has_one_region_provider_and_five_private_ones(registry):
    kinds = [p.kind for p in registry.providers]
    assert kinds.count("region") == 1
    assert kinds.count("private") == 5
    private_orgs = {p.org_nr for p in registry.providers if p.kind == "private"}
    assert all(org.startswith("55") for org in private_orgs)
    used = {u.provider_org_nr for u in registry.units}
    assert used == {p.org_nr for p in registry.providers}


@pytest.mark.parametrize("seed", SEEDS)
def test_it_lists_about_300000_with_2000_to_20000_per_unit(seed):
    reg = build_demo_registry(seed)
    last = reg.listed_in(LAST_MONTH)
    assert 250_000 <= sum(last.values()) <= 350_000
    open_units = [u for u in reg.units if u.closed is None]
    assert set(last) == {u.hsa_id for u in open_units}
    for hsa_id, listed in last.items():
        assert 2_000 <= listed <= 20_000, hsa_id
    for month in MONTHS:
        for hsa_id, listed in reg.listed_in(month).items():
            assert listed <= 20_000, (hsa_id, month)


def test_it_lists_every_month_sex_and_age_band_of_each_open_unit(registry):
    cells = defaultdict(set)
    for row in registry.listings:
        assert row.listed >= 0
        cells[(row.hsa_id, row.month)].add((row.sex, row.age_band))
    every = {(s, b) for s in breakdowns.SEXES for b in breakdowns.AGE_BANDS}
    assert all(c == every for c in cells.values())
    for unit in registry.units:
        months = sorted(m for h, m in cells if h == unit.hsa_id)
        assert months == list(unit.months())
    assert MONTHS[0] == "2024-01"
    assert MONTHS[-1] == "2025-12"
    assert len(MONTHS) == 24


def test_it_has_one_unit_closing_and_one_opening_during_the_period(registry):
    first, last = Period.parse(MONTHS[0]).start, Period.parse(MONTHS[-1]).end
    closing = [u for u in registry.units if u.closed is not None]
    opening = [u for u in registry.units if u.opened > first]
    assert len(closing) == 1
    assert len(opening) == 1
    assert first < closing[0].closed <= last
    assert opening[0].opened <= last
    assert MONTHS[0] not in opening[0].months()
    assert MONTHS[-1] in opening[0].months()
    assert MONTHS[0] in closing[0].months()
    assert MONTHS[-1] not in closing[0].months()


def test_it_drifts_only_slightly_from_month_to_month(registry):
    totals = defaultdict(dict)
    for row in registry.listings:
        totals[row.hsa_id][row.month] = totals[row.hsa_id].get(row.month, 0) + row.listed
    steady = [
        u for u in registry.units if u.closed is None and u.opened <= Period.parse(MONTHS[0]).start
    ]
    for unit in steady:
        series = [totals[unit.hsa_id][m] for m in MONTHS]
        for a, b in zip(series, series[1:], strict=False):
            assert abs(b - a) / a < 0.02, unit.name


def test_it_gives_units_realistic_and_different_age_profiles(registry):
    def share(unit_key: str, bands: set[str]) -> float:
        hsa_id = registry.unit(unit_key).hsa_id
        rows = [r for r in registry.listings if r.hsa_id == hsa_id and r.month == LAST_MONTH]
        return sum(r.listed for r in rows if r.age_band in bands) / sum(r.listed for r in rows)

    old = {"65-69", "70-74", "75-79", "80-84", "85+"}
    young_adults = {"20-24", "25-29"}
    # Sweden: about a fifth are 65 or older.
    assert 0.15 < share("hamnen", old) < 0.25
    assert share("bjorka", old) > 0.3
    assert share("campus", young_adults) > 2 * share("hamnen", young_adults)
    women = sum(r.listed for r in registry.listings if r.sex == "K" and r.age_band == "85+")
    men = sum(r.listed for r in registry.listings if r.sex == "M" and r.age_band == "85+")
    assert women > 1.4 * men


def test_it_names_the_profiles_the_extract_generator_reads():
    profiles = {s.key: s.profile for s in DEMO_UNITS}
    assert all(isinstance(p, UnitProfile) for p in profiles.values())
    performance = [p.performance for p in profiles.values()]
    assert 2 <= performance.count("low") <= 3
    assert performance.count("high") == 1
    assert profiles["norrby"].performance == "high"
    teams = [p.psych_team for p in profiles.values()]
    assert teams.count("none") >= 3
    assert teams.count("team") >= 2
    assert "kurator_only" in teams
    assert sum(p.ptp for p in profiles.values()) == 2
    assert any(p.group_treatment for p in profiles.values())
    assert not all(p.group_treatment for p in profiles.values())
    assert all(0 <= p.digital_share <= 1 for p in profiles.values())
    # The low performers have no psychologist; the high performer has a whole team.
    assert all(not p.has_psychologist for p in profiles.values() if p.performance == "low")
    assert profiles["norrby"].psych_team == "team"


def test_it_refuses_a_profile_that_cannot_exist():
    with pytest.raises(ValueError, match="PTP"):
        UnitProfile("mixed", "kurator_only", ptp=True)
    with pytest.raises(ValueError, match="performance"):
        UnitProfile("mixed", "none", performance="excellent")


def test_it_staffs_units_as_their_profiles_say(registry):
    for period in (*STAFFING_YEARS, *STAFFING_QUARTERS):
        fte = _fte(registry, period)
        for unit in registry.units:
            if unit.hsa_id not in fte:
                continue
            staff, team = fte[unit.hsa_id], unit.profile.psych_team
            assert set(staff) == set(Profession.values)
            assert (staff[Profession.PSYKOLOG] > 0) == unit.profile.has_psychologist
            assert (staff[Profession.KURATOR] > 0) == (team != "none")
            assert (staff[Profession.PSYKOTERAPEUT] > 0) == (team == "team")
            assert (staff[Profession.PTP_PSYKOLOG] > 0) == unit.profile.ptp
            assert staff[Profession.LAKARE] > 0
            assert staff[Profession.SJUKSKOTERSKA] > 0
    without = [u for u in registry.units if not u.profile.has_psychologist]
    assert len(without) >= 5


def test_it_staffs_about_six_to_eight_physicians_per_10000_listed(registry):
    fte = _fte(registry, "2025")
    listed = registry.listed_in(LAST_MONTH)
    total_gp = sum(fte[h][Profession.LAKARE] for h in listed)
    per_10000 = float(total_gp) / sum(listed.values()) * 10_000
    assert 5.5 <= per_10000 <= 8.5
    psychosocial = sum(fte[h][p] for h in listed for p in PSYCHOSOCIAL_PROFESSIONS)
    assert 1.0 <= float(psychosocial) / sum(listed.values()) * 10_000 <= 4.0


def test_it_gives_each_year_the_mean_of_its_quarters(registry):
    quarters = defaultdict(list)
    years = {}
    for row in registry.staffing:
        p = Period.parse(row.period)
        if p.kind == "quarter":
            quarters[(row.hsa_id, str(p.as_year()), row.profession)].append(row.fte)
        else:
            years[(row.hsa_id, row.period, row.profession)] = row.fte
    assert set(quarters) == set(years)
    for key, values in quarters.items():
        assert abs(years[key] - sum(values) / len(values)) <= Decimal("0.005")


def test_it_uses_only_valid_identifiers_and_periods(registry, shared_data):
    real_regions = {
        r["org_nr"] for r in csv.DictReader((shared_data / "regions.csv").open(encoding="utf-8"))
    }
    assert DEMO_REGION.lan_code == "99"
    assert normalise_org_nr(DEMO_REGION.org_nr) == DEMO_REGION.org_nr
    assert DEMO_REGION.org_nr not in real_regions
    for provider in DEMO_PROVIDERS:
        assert normalise_org_nr(provider.org_nr) == provider.org_nr
        assert provider.org_nr not in real_regions
        assert not is_personal_number(provider.org_nr)
    for unit in registry.units:
        assert validate_hsa_id(unit.hsa_id) == unit.hsa_id
        assert unit.hsa_id.startswith(f"SE{unit.provider_org_nr}-")
    assert {r.month for r in registry.listings} == set(MONTHS)
    for period in {r.period for r in registry.staffing}:
        assert validate_period(period) == period


def test_it_names_managed_units_that_exist(registry):
    providers = {u.key: u.provider_org_nr for u in registry.units}
    kinds = {p.org_nr: p.kind for p in registry.providers}
    norrby = [providers[k] for k in MANAGED_UNITS["chef.norrby"]]
    private = [providers[k] for k in MANAGED_UNITS["chef.privat"]]
    assert len(norrby) == 1
    assert kinds[norrby[0]] == "region"
    assert len(private) == 2
    assert len(set(private)) == 1
    assert kinds[private[0]] == "private"
