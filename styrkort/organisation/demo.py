"""The demo region, "Region Exempel": its providers, care units, listings and staffing.

A plain, deterministic generator: `build_demo_registry(seed)` returns dataclasses and touches no
database (`styrkort.web.demo` writes them). The same seed always gives the same registry; a
different seed changes list sizes, age mixes, drift and staffing, but never the units, their
identifiers or their profiles, so that data generated later (synthetic visit-level extracts)
can rely on `DEMO_UNITS` and its `UnitProfile`s whatever the seed.

Everything here is fictitious:
- län code "99" does not exist (the real ones are 01–25), so the demo cannot be mistaken for a
  real region; the test personas in conftest.py use the same code;
- the region's organisation number 232100-0990 passes the Luhn check but is not one of the
  regions' numbers (those run from 232100-0016 to 232100-0255, see ../shared/data/regions.csv);
- the private providers' numbers (559012-3450 …) are made up and only Luhn-valid; any likeness
  to a real company is chance;
- municipalities and unit names are invented, Swedish-sounding place names.

The unit profiles follow what seed 004 (Region Västmanland) describes: care centres differ in
psychosocial staffing, treatment offering (group treatment, e-services) and routines. Three
units are clearly below the region on psychological treatment and follow-up
(`performance="low"`: Hälsocentralen Ekdalen, Hälsocentralen Björkå and Hälsa Nord
Hälsocentral Björkå) and one clearly above (`performance="high"`: Vårdcentralen Norrby).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from styrkort import breakdowns
from styrkort.organisation.models import PSYCHOSOCIAL_PROFESSIONS, Profession
from styrkort.periods import Period, period_range

# Bump when the generator's output for a given seed changes; recorded in the build's history.
GENERATOR_VERSION = 1
DEFAULT_SEED = 2025

# The last 24 complete months up to December 2025.
FIRST_MONTH, LAST_MONTH = "2024-01", "2025-12"
MONTHS: tuple[str, ...] = tuple(str(p) for p in period_range(FIRST_MONTH, LAST_MONTH))
STAFFING_YEARS: tuple[str, ...] = ("2024", "2025")
STAFFING_QUARTERS: tuple[str, ...] = tuple(
    str(q) for q in period_range("2024Q1", "2025Q4")
)  # fmt: skip

# Allowed values of the profile fields (documented for the extract generator that reads them).
POPULATIONS = ("mixed", "family", "elderly", "student", "city")
PSYCH_TEAMS = ("none", "kurator_only", "psychologist", "team")
PERFORMANCES = ("low", "typical", "high")


@dataclass(frozen=True)
class DemoRegion:
    """The demo region (län code 99, fictitious)."""

    name: str
    lan_code: str
    org_nr: str


@dataclass(frozen=True)
class DemoProvider:
    """A provider (utförare) of the demo region: the region itself or a private company."""

    key: str
    name: str
    org_nr: str
    kind: str  # "region" | "private", as Provider.Kind


@dataclass(frozen=True)
class UnitProfile:
    """What kind of care centre a unit is; read by the data generators, never random.

    population: the age mix of its listed patients (POPULATIONS): "mixed" like Sweden,
        "family" (children and parents), "elderly" (rural, many 65+), "student" (many 18–29),
        "city" (young adults in the centre).
    psych_team: psychosocial staffing (PSYCH_TEAMS): "none"; "kurator_only" (a counsellor, no
        psychologist); "psychologist" (psychologist and counsellor); "team" (psychologist,
        counsellor and psychotherapist working as a psychosocial team).
    ptp: has a psychologist in supervised practice (PTP); only units with a psychologist.
    group_treatment: offers group treatment (e.g. group CBT for anxiety or stress).
    digital_share: share of contacts by video, telephone or digital channel (0–1).
    performance: how the unit does on psychological treatment and follow-up compared with the
        region (PERFORMANCES): "low" clearly below, "typical", "high" clearly above.
    care_need: relative care need of the listed population, like SCB's Care Need Index
        (1.0 = the region's average; above 1 means more socioeconomic burden).
    """

    population: str
    psych_team: str
    ptp: bool = False
    group_treatment: bool = False
    digital_share: float = 0.2
    performance: str = "typical"
    care_need: float = 1.0

    def __post_init__(self) -> None:
        if self.population not in POPULATIONS:
            raise ValueError(f"unknown population {self.population!r}")
        if self.psych_team not in PSYCH_TEAMS:
            raise ValueError(f"unknown psych_team {self.psych_team!r}")
        if self.performance not in PERFORMANCES:
            raise ValueError(f"unknown performance {self.performance!r}")
        if self.ptp and self.psych_team not in ("psychologist", "team"):
            raise ValueError("a PTP psychologist needs a psychologist to supervise")

    @property
    def has_psychologist(self) -> bool:
        return self.psych_team in ("psychologist", "team")


@dataclass(frozen=True)
class DemoUnitSpec:
    """A demo care unit as designed: identity, place, approximate size and profile."""

    key: str
    hsa_suffix: str
    name: str
    provider: str  # DemoProvider.key
    municipality: str
    size: int  # approximate listed patients in the last month (or before closing)
    opened: date
    profile: UnitProfile
    closed: date | None = None


DEMO_REGION = DemoRegion(name="Region Exempel", lan_code="99", org_nr="2321000990")

DEMO_PROVIDERS: tuple[DemoProvider, ...] = (
    DemoProvider("region", "Region Exempel Primärvård", "2321000990", "region"),
    DemoProvider("halsa_nord", "Hälsa Nord AB", "5590123450", "private"),
    DemoProvider("din_halsa", "Vårdcentralen Din Hälsa AB", "5590234562", "private"),
    DemoProvider("familjelakarna", "Familjeläkarna i Exempel AB", "5590345673", "private"),
    DemoProvider("kustlakarna", "Kustläkarna AB", "5590456785", "private"),
    DemoProvider("linden", "Läkarhuset Linden AB", "5590567896", "private"),
)

MUNICIPALITIES = (
    "Exempelstad", "Norrvik", "Ekdala", "Sjöhamn", "Björkå", "Granberga", "Stenmark",
)  # fmt: skip

_P = UnitProfile
_d = date

# fmt: off
DEMO_UNITS: tuple[DemoUnitSpec, ...] = (
    # Run by the region (20 units).
    DemoUnitSpec("norrby", "1001", "Vårdcentralen Norrby", "region", "Exempelstad", 16500,
                 _d(1998, 3, 1), _P("mixed", "team", group_treatment=True, digital_share=0.3,
                                    performance="high", care_need=1.05)),
    DemoUnitSpec("centrum", "1002", "Vårdcentralen Centrum", "region", "Exempelstad", 18500,
                 _d(1985, 1, 1), _P("city", "psychologist", group_treatment=True,
                                    digital_share=0.35, care_need=0.95)),
    DemoUnitSpec("campus", "1003", "Vårdcentralen Campus", "region", "Exempelstad", 18500,
                 _d(2004, 8, 15), _P("student", "psychologist", digital_share=0.4,
                                     care_need=0.9)),
    DemoUnitSpec("soderby", "1004", "Vårdcentralen Söderby", "region", "Exempelstad", 15000,
                 _d(1991, 9, 1), _P("family", "psychologist", ptp=True, digital_share=0.25,
                                    care_need=1.15)),
    DemoUnitSpec("osterhojden", "1005", "Vårdcentralen Österhöjden", "region", "Exempelstad",
                 13500, _d(1979, 5, 1), _P("mixed", "kurator_only", digital_share=0.2,
                                           care_need=1.3)),
    DemoUnitSpec("vasterslatt", "1006", "Vårdcentralen Västerslätt", "region", "Exempelstad",
                 12000, _d(2001, 2, 1), _P("family", "psychologist", digital_share=0.25,
                                          care_need=0.85)),
    DemoUnitSpec("ekdalen", "1007", "Hälsocentralen Ekdalen", "region", "Ekdala", 9000,
                 _d(1983, 10, 1), _P("elderly", "kurator_only", digital_share=0.1,
                                     performance="low", care_need=1.2)),
    DemoUnitSpec("ekdala", "1008", "Vårdcentralen Ekdala", "region", "Ekdala", 13000,
                 _d(1988, 4, 1), _P("mixed", "psychologist", group_treatment=True,
                                    digital_share=0.2)),
    DemoUnitSpec("norrvik", "1009", "Vårdcentralen Norrvik", "region", "Norrvik", 16500,
                 _d(1976, 1, 1), _P("mixed", "team", group_treatment=True, digital_share=0.25,
                                    care_need=1.1)),
    DemoUnitSpec("hamnen", "1010", "Vårdcentralen Hamnen", "region", "Sjöhamn", 11500,
                 _d(1995, 6, 1), _P("mixed", "psychologist", digital_share=0.2)),
    DemoUnitSpec("strand", "1011", "Vårdcentralen Sjöhamn Strand", "region", "Sjöhamn", 7500,
                 _d(2008, 3, 1), _P("elderly", "psychologist", digital_share=0.15,
                                    care_need=0.9)),
    DemoUnitSpec("bjorka", "1012", "Hälsocentralen Björkå", "region", "Björkå", 6000,
                 _d(1981, 9, 1), _P("elderly", "none", digital_share=0.1, performance="low",
                                    care_need=1.25)),
    DemoUnitSpec("granberga", "1013", "Hälsocentralen Granberga", "region", "Granberga", 4600,
                 _d(1980, 1, 1), _P("elderly", "none", digital_share=0.3, care_need=1.1)),
    DemoUnitSpec("stenmark", "1014", "Hälsocentralen Stenmark", "region", "Stenmark", 3600,
                 _d(1982, 5, 1), _P("elderly", "none", digital_share=0.35, care_need=1.05)),
    DemoUnitSpec("lovsta", "1015", "Vårdcentralen Lövsta", "region", "Exempelstad", 9500,
                 _d(2012, 1, 1), _P("family", "psychologist", group_treatment=True,
                                    digital_share=0.3, care_need=0.8)),
    DemoUnitSpec("backalund", "1016", "Vårdcentralen Bäckalund", "region", "Exempelstad", 11000,
                 _d(1993, 11, 1), _P("mixed", "kurator_only", digital_share=0.15,
                                     care_need=1.4)),
    DemoUnitSpec("angsbacka", "1017", "Vårdcentralen Ängsbacka", "region", "Norrvik", 7200,
                 _d(2003, 9, 1), _P("family", "psychologist", digital_share=0.2)),
    DemoUnitSpec("skogsby", "1018", "Hälsocentralen Skogsby", "region", "Granberga", 2900,
                 _d(1986, 2, 1), _P("elderly", "none", digital_share=0.25, care_need=1.15)),
    # Closed during the period: its last listed month is 2024-09.
    DemoUnitSpec("slottsparken", "1019", "Vårdcentralen Slottsparken", "region", "Exempelstad",
                 6000, _d(1972, 1, 1), _P("mixed", "kurator_only", digital_share=0.15),
                 closed=_d(2024, 10, 1)),
    # Opened during the period: its first listed month is 2025-02.
    DemoUnitSpec("hagaberg", "1020", "Vårdcentralen Hagaberg", "region", "Exempelstad", 6500,
                 _d(2025, 2, 1), _P("family", "psychologist", group_treatment=True,
                                    digital_share=0.35, care_need=0.9)),
    # Private providers (10 units).
    DemoUnitSpec("hn_norrvik", "NV01", "Hälsa Nord Vårdcentral Norrvik", "halsa_nord",
                 "Norrvik", 12000, _d(2009, 1, 1), _P("mixed", "psychologist", digital_share=0.3)),
    DemoUnitSpec("hn_bjorka", "BK02", "Hälsa Nord Hälsocentral Björkå", "halsa_nord", "Björkå",
                 5200, _d(2010, 3, 1), _P("elderly", "none", digital_share=0.2,
                                          performance="low", care_need=1.2)),
    DemoUnitSpec("hn_sjohamn", "SH03", "Hälsa Nord Vårdcentral Sjöhamn", "halsa_nord",
                 "Sjöhamn", 6200, _d(2011, 9, 1), _P("mixed", "kurator_only",
                                                     digital_share=0.3)),
    DemoUnitSpec("dh_centrum", "C1", "Vårdcentralen Din Hälsa Centrum", "din_halsa",
                 "Exempelstad", 17000, _d(2010, 4, 1), _P("city", "team", group_treatment=True,
                                                          digital_share=0.5, care_need=0.85)),
    DemoUnitSpec("dh_soder", "S2", "Vårdcentralen Din Hälsa Söder", "din_halsa", "Exempelstad",
                 13000, _d(2014, 2, 1), _P("family", "psychologist", digital_share=0.4,
                                           care_need=0.95)),
    DemoUnitSpec("fl_ekdala", "EK1", "Familjeläkarna Ekdala", "familjelakarna", "Ekdala", 9000,
                 _d(2009, 6, 1), _P("family", "psychologist", digital_share=0.2)),
    DemoUnitSpec("fl_granberga", "GB2", "Familjeläkarna Granberga", "familjelakarna",
                 "Granberga", 3500, _d(2013, 8, 1), _P("elderly", "kurator_only",
                                                       digital_share=0.25, care_need=1.05)),
    DemoUnitSpec("kust_sjohamn", "0001", "Kustläkarna Sjöhamn", "kustlakarna", "Sjöhamn", 7200,
                 _d(2010, 1, 1), _P("mixed", "psychologist", ptp=True, digital_share=0.2)),
    DemoUnitSpec("linden", "L100", "Läkarhuset Linden", "linden", "Exempelstad", 14000,
                 _d(2008, 10, 1), _P("mixed", "psychologist", group_treatment=True,
                                     digital_share=0.3, care_need=0.9)),
    DemoUnitSpec("linden_campus", "L200", "Läkarhuset Linden Campus", "linden", "Exempelstad",
                 9500, _d(2016, 8, 15), _P("student", "kurator_only", digital_share=0.6,
                                           care_need=0.85)),
)
# fmt: on

# Units the demo's unit managers run: chef.norrby one region-run unit, chef.privat both units of
# one private provider.
MANAGED_UNITS: dict[str, tuple[str, ...]] = {
    "chef.norrby": ("norrby",),
    "chef.privat": ("dh_centrum", "dh_soder"),
}

# Swedish population 2024 by fine age band, thousands (SCB, rounded), and men's share per band.
# The national shape that the unit populations below are variations of.
_NATIONAL_AGE = (
    545, 600, 635, 370, 240, 610, 690, 740, 700, 660,
    640, 680, 665, 600, 565, 525, 500, 335, 275,
)  # fmt: skip
_MALE_SHARE = (
    0.513, 0.513, 0.514, 0.515, 0.516, 0.52, 0.52, 0.518, 0.515, 0.512,
    0.51, 0.507, 0.504, 0.5, 0.495, 0.48, 0.47, 0.44, 0.36,
)  # fmt: skip
# Multipliers on the national shape for each population type, per fine age band.
_POPULATION_SHAPE: dict[str, tuple[float, ...]] = {
    "mixed": (1.0,) * 19,
    "family": (1.35, 1.4, 1.35, 1.2, 1.0, 0.75, 0.85, 1.2, 1.35, 1.35,
               1.2, 1.0, 0.9, 0.85, 0.75, 0.7, 0.65, 0.6, 0.55),
    "elderly": (0.8, 0.8, 0.85, 0.85, 0.7, 0.55, 0.6, 0.65, 0.7, 0.75,
                0.85, 1.0, 1.15, 1.3, 1.6, 1.75, 1.85, 2.0, 2.1),
    "student": (0.4, 0.35, 0.4, 0.45, 2.2, 3.4, 2.5, 1.3, 0.8, 0.7,
                0.65, 0.65, 0.6, 0.55, 0.5, 0.45, 0.4, 0.35, 0.3),
    "city": (0.8, 0.65, 0.6, 0.6, 0.9, 1.5, 1.8, 1.7, 1.3, 1.1,
             1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.7, 0.65),
}  # fmt: skip

# Full-time equivalents per 10,000 listed, (low, high) of the unit's draw; psychosocial ones
# depend on the profile (_PSYCH_NORMS). The minimum FTE applies when a unit has the profession.
_STAFF_NORMS: dict[str, tuple[float, float]] = {
    Profession.LAKARE: (6.0, 8.0),
    Profession.SJUKSKOTERSKA: (9.0, 13.0),
    Profession.FYSIOTERAPEUT: (1.8, 3.0),
    Profession.ARBETSTERAPEUT: (0.5, 1.0),
    Profession.VARDSAMORDNARE: (0.6, 1.0),
    Profession.REHABKOORDINATOR: (0.4, 0.7),
    Profession.ANNAN: (4.0, 6.0),
}
_PSYCH_NORMS: dict[str, dict[str, tuple[float, float]]] = {
    "none": {},
    "kurator_only": {Profession.KURATOR: (1.0, 1.5)},
    "psychologist": {Profession.PSYKOLOG: (1.0, 1.6), Profession.KURATOR: (0.5, 1.0)},
    "team": {
        Profession.PSYKOLOG: (1.8, 2.4),
        Profession.KURATOR: (1.2, 1.6),
        Profession.PSYKOTERAPEUT: (0.5, 0.8),
    },
}
_MIN_FTE = 0.5
_PTP_FTE = 1.0
PROFESSIONS: tuple[str, ...] = tuple(Profession.values)


@dataclass(frozen=True)
class DemoUnit:
    """A generated demo unit: the spec with its HSA-id and provider organisation number."""

    key: str
    hsa_id: str
    name: str
    provider_org_nr: str
    municipality: str
    opened: date
    closed: date | None
    profile: UnitProfile

    def months(self) -> tuple[str, ...]:
        """The demo months in which the unit was open for the whole month."""
        return tuple(m for m in MONTHS if _open_in(self, Period.parse(m)))


@dataclass(frozen=True)
class ListingRow:
    """Listed patients at a unit in one month, by sex and fine age band."""

    hsa_id: str
    month: str
    sex: str
    age_band: str
    listed: int


@dataclass(frozen=True)
class StaffingRow:
    """Full-time equivalents of one profession at a unit in a year or quarter."""

    hsa_id: str
    period: str
    profession: str
    fte: Decimal


@dataclass
class DemoRegistry:
    """Everything the organisation registry holds for the demo region, for one seed."""

    seed: int
    version: int
    region: DemoRegion
    providers: list[DemoProvider]
    units: list[DemoUnit]
    listings: list[ListingRow] = field(default_factory=list)
    staffing: list[StaffingRow] = field(default_factory=list)

    def unit(self, key: str) -> DemoUnit:
        for unit in self.units:
            if unit.key == key:
                return unit
        raise KeyError(key)

    def listed_in(self, month: str) -> dict[str, int]:
        """Listed total per HSA-id in a month."""
        totals: dict[str, int] = {}
        for row in self.listings:
            if row.month == month:
                totals[row.hsa_id] = totals.get(row.hsa_id, 0) + row.listed
        return totals

    def lines(self) -> Iterator[str]:
        """Canonical text lines of every registry row, in a fixed order; the database side
        (`styrkort.web.demo.database_lines`) writes the same lines for what it stored."""
        yield from registry_lines(
            region=(self.region.name, self.region.lan_code, self.region.org_nr),
            providers=[(p.org_nr, p.name, p.kind) for p in self.providers],
            units=[
                (u.hsa_id, u.name, u.provider_org_nr, u.municipality, u.opened, u.closed)
                for u in self.units
            ],
            listings=[(r.hsa_id, r.month, r.sex, r.age_band, r.listed) for r in self.listings],
            staffing=[(r.hsa_id, r.period, r.profession, r.fte) for r in self.staffing],
        )

    def digest(self) -> str:
        return lines_digest(self.lines())


def registry_lines(*, region, providers, units, listings, staffing) -> Iterator[str]:
    """Canonical lines for registry rows given as plain tuples (see DemoRegistry.lines)."""
    yield "region|" + "|".join(region)
    for org_nr, name, kind in sorted(providers):
        yield f"provider|{org_nr}|{name}|{kind}"
    for hsa_id, name, org_nr, municipality, opened, closed in sorted(units):
        yield f"unit|{hsa_id}|{name}|{org_nr}|{municipality}|{opened or ''}|{closed or ''}"
    for hsa_id, month, sex, band, listed in sorted(listings):
        yield f"listing|{hsa_id}|{month}|{sex}|{band}|{listed}"
    for hsa_id, period, profession, fte in sorted(staffing):
        yield f"staffing|{hsa_id}|{period}|{profession}|{Decimal(fte):.2f}"


def lines_digest(lines) -> str:
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode())
        h.update(b"\n")
    return h.hexdigest()


def hsa_id_of(spec: DemoUnitSpec) -> str:
    return f"SE{provider_of(spec).org_nr}-{spec.hsa_suffix}"


def provider_of(spec: DemoUnitSpec) -> DemoProvider:
    for provider in DEMO_PROVIDERS:
        if provider.key == spec.provider:
            return provider
    raise KeyError(spec.provider)


def _open_in(unit: DemoUnit | DemoUnitSpec, period: Period) -> bool:
    """Open for the whole of the period (opened on or before its first day, not closed)."""
    return unit.opened <= period.start and (unit.closed is None or unit.closed > period.end)


def demo_rng(seed: int, *parts: str) -> random.Random:
    """An independent stream per seed and purpose, so adding a unit does not shift the others."""
    text = "|".join((str(seed), *parts))
    return random.Random(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big"))


def build_demo_registry(seed: int = DEFAULT_SEED) -> DemoRegistry:
    """Generate the whole demo registry for a seed (deterministic; no database)."""
    units = [
        DemoUnit(
            key=s.key,
            hsa_id=hsa_id_of(s),
            name=s.name,
            provider_org_nr=provider_of(s).org_nr,
            municipality=s.municipality,
            opened=s.opened,
            closed=s.closed,
            profile=s.profile,
        )
        for s in DEMO_UNITS
    ]
    registry = DemoRegistry(
        seed=seed, version=GENERATOR_VERSION, region=DEMO_REGION,
        providers=list(DEMO_PROVIDERS), units=units,
    )  # fmt: skip
    for spec, unit in zip(DEMO_UNITS, units, strict=True):
        monthly = _unit_listings(seed, spec, unit)
        registry.listings.extend(monthly)
        registry.staffing.extend(_unit_staffing(seed, spec, unit, monthly))
    return registry


def _cell_weights(seed: int, spec: DemoUnitSpec) -> list[tuple[str, str, float]]:
    """(sex, band, share) for the unit's listed population; shares sum to 1."""
    rng = demo_rng(seed, "age", spec.key)
    shape = _POPULATION_SHAPE[spec.profile.population]
    cells = []
    for i, band in enumerate(breakdowns.AGE_BANDS):
        weight = _NATIONAL_AGE[i] * shape[i] * rng.lognormvariate(0.0, 0.06)
        male = min(0.7, max(0.3, _MALE_SHARE[i] + rng.gauss(0.0, 0.01)))
        cells.append((breakdowns.WOMEN, band, weight * (1 - male)))
        cells.append((breakdowns.MEN, band, weight * male))
    total = sum(w for _, _, w in cells)
    return [(sex, band, w / total) for sex, band, w in cells]


def _unit_listings(seed: int, spec: DemoUnitSpec, unit: DemoUnit) -> list[ListingRow]:
    rng = demo_rng(seed, "listing", spec.key)
    size = spec.size * rng.uniform(0.94, 1.06)
    growth = rng.uniform(-0.003, 0.005)  # per month
    weights = _cell_weights(seed, spec)
    months = unit.months()
    rows: list[ListingRow] = []
    for k, month in enumerate(months):
        if spec.opened > Period.parse(FIRST_MONTH).start:
            # A new unit fills up: a quarter of its final size in its first month.
            factor = 0.25 + 0.75 * math.sqrt(k / max(1, len(months) - 1))
        elif spec.closed is not None:
            # Patients move elsewhere during the last half year before closing.
            left = len(months) - 1 - k
            factor = 1.0 if left >= 6 else 0.6 + 0.4 * left / 6
        else:
            factor = (1 + growth) ** (MONTHS.index(month) - (len(MONTHS) - 1))
        for sex, band, share in weights:
            expected = size * factor * share * (1 + rng.gauss(0.0, 0.004))
            rows.append(ListingRow(unit.hsa_id, month, sex, band, max(0, round(expected))))
    return rows


def _unit_staffing(
    seed: int, spec: DemoUnitSpec, unit: DemoUnit, listings: list[ListingRow]
) -> list[StaffingRow]:
    """Quarterly FTE per profession from the listed patients and the unit's profile; a year's
    value is the mean of its quarters in which the unit was open."""
    rng = demo_rng(seed, "staffing", spec.key)
    listed_by_month: dict[str, int] = {}
    for row in listings:
        listed_by_month[row.month] = listed_by_month.get(row.month, 0) + row.listed
    # The unit's own rate per 10,000 listed for each profession, drawn once.
    level = rng.gauss(1.0, 0.06)
    rates: dict[str, float] = {}
    for profession, (low, high) in _STAFF_NORMS.items():
        rates[profession] = rng.uniform(low, high) * level
    for profession, (low, high) in _PSYCH_NORMS[spec.profile.psych_team].items():
        rates[profession] = rng.uniform(low, high)
    rows: list[StaffingRow] = []
    quarter_values: dict[str, dict[str, list[float]]] = {}
    for quarter in STAFFING_QUARTERS:
        period = Period.parse(quarter)
        months = [str(m) for m in period.months() if str(m) in listed_by_month]
        if not months:
            continue
        listed = sum(listed_by_month[m] for m in months) / len(months)
        for profession in PROFESSIONS:
            if profession == Profession.PTP_PSYKOLOG:
                fte = _PTP_FTE if spec.profile.ptp else 0.0
            elif profession in rates:
                fte = rates[profession] * listed / 10_000 * rng.gauss(1.0, 0.04)
                if profession in PSYCHOSOCIAL_PROFESSIONS or profession in (
                    Profession.VARDSAMORDNARE, Profession.REHABKOORDINATOR,
                ):  # fmt: skip
                    fte = max(_MIN_FTE, fte)
            else:
                fte = 0.0
            value = round(fte, 1)
            rows.append(StaffingRow(unit.hsa_id, quarter, profession, _fte(value)))
            year_values = quarter_values.setdefault(str(period.as_year()), {})
            year_values.setdefault(profession, []).append(value)
    for year in STAFFING_YEARS:
        for profession, values in quarter_values.get(year, {}).items():
            rows.append(StaffingRow(unit.hsa_id, year, profession, _fte(sum(values) / len(values))))
    return rows


def _fte(value: float) -> Decimal:
    return Decimal(f"{value:.2f}")
