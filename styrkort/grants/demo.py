"""The demo region's state grant: the 2025 grant for primary care's work with mental ill-health
(seed 003), walked through its whole cycle so that every grant page has something to show.

`demo_grant(ctx)` is a step of the demo build (`styrkort.web.demo.STEPS`). It is deterministic
and idempotent: it does nothing (and writes no history) when the demo grant already exists in
the region, and otherwise builds it in one go through the grants' services, as the demo
analyst and the demo unit managers, so that the change history reads like real use.

What it builds:

* the national distribution of 496 000 000 kr over the 21 regions by SCB's population on
  31 December 2024 (real figures, below; Region Örebro län gets 2.9126 % = 14 446 372 kr);
* the demo region's share: the demo region (county code 99) is fictitious and not among the 21,
  so its population is taken to be its listed patients in October 2025 (about 300 000), and its
  share is that population over the national 10 587 710, in whole kronor (largest remainder);
* a plan: 15 % for training offered to every care centre, the rest to every active unit by its
  listed patients in October 2025, decided;
* accounts from most units: three submitted after the deadline, one over-using (returned once
  with a question, then approved), two not submitted (one of them a demo unit manager's, so the
  account form can be tried), the others submitted in time and approved;
* the central training spending and the report to the state, submitted (version 1).
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from styrkort.accounts.models import Membership, Role
from styrkort.grants import services
from styrkort.grants.allocation import largest_remainder
from styrkort.grants.models import Grant, GrantState, NationalDistribution
from styrkort.organisation.models import CareUnit, Listing

NATIONAL_TOTAL = 496_000_000
NATIONAL_POPULATION = 10_587_710  # SCB, 31 December 2024
REFERENCE_MONTH = "2025-10"
DEMO_DNR = "S2025/01234 (fiktivt)"
DEMO_NAME = "Stärka och utveckla primärvårdens arbete med psykisk ohälsa 2025"

# SCB: population per county on 31 December 2024 (public statistics).
POPULATION_2024 = {
    "01": 2473307, "03": 407912, "04": 301542, "05": 472446, "06": 370009, "07": 203351,
    "08": 246352, "09": 60971, "10": 157223, "12": 1428626, "13": 345074, "14": 1772821,
    "17": 283384, "18": 308375, "19": 281158, "20": 286546, "21": 284558, "22": 241458,
    "23": 132839, "24": 281138, "25": 248620,
}  # fmt: skip
assert sum(POPULATION_2024.values()) == NATIONAL_POPULATION

# Unit keys of the demo registry (stable whatever the seed) with a part in the story.
NOT_SUBMITTED = ("dh_soder", "skogsby")
LATE = ("hamnen", "lovsta", "fl_granberga")
OVER_USING = "campus"

STAFF_CATEGORIES = ("psykolog", "ptp_psykolog", "kurator", "vardsamordnare", "rehabkoordinator")
# About what a year of one full-time post costs, salary and overheads (kr).
COST_PER_FTE = {
    "psykolog": 820_000, "ptp_psykolog": 640_000, "kurator": 700_000,
    "vardsamordnare": 690_000, "rehabkoordinator": 700_000,
}  # fmt: skip
MEASURES = {
    "psykolog": "Utökad psykologtid för KBT vid ångest och depression, även internetförmedlad KBT.",
    "ptp_psykolog": "PTP-psykolog anställd med handledning; gruppbehandling vid stress och sömn.",
    "kurator": "Kurator för tidig bedömning och samtalsstöd, fler barn och unga har fått stöd.",
    "vardsamordnare": "Vårdsamordnare för patienter med psykisk ohälsa enligt stegvis vårdmodell.",
    "rehabkoordinator": "Rehabkoordinator för sjukskrivna i psykiatriska diagnoser, samverkan "
    "med arbetsgivare och Försäkringskassan.",
}  # fmt: skip
REPORT_TEXTS = {
    "measures_summary": (
        "Hälsovalsenheten har samordnat insatserna. En utbildningssatsning om psykisk ohälsa har "
        "erbjudits medarbetare på samtliga vårdcentraler. Vårdcentralerna har förstärkt med "
        "psykologer, PTP-psykologer, kuratorer, vårdsamordnare och rehabkoordinatorer."
    ),
    "gender_equality": (
        "Uppföljningen redovisas per kön. Kvinnor söker oftare för ångest och depression; "
        "vårdcentralerna har särskilt uppmärksammat män med psykisk ohälsa som söker sent."
    ),
    "childrens_rights": (
        "Barn och unga har prioriterats i samtalsstöd hos kurator och psykolog, med samverkan "
        "med elevhälsa och barn- och ungdomspsykiatri."
    ),
    "disability": (
        "Information och behandling har anpassats för personer med funktionsnedsättning, bland "
        "annat med bildstöd och längre besökstider."
    ),
}


def _user(region, role: str, fallback=None):
    membership = (
        Membership.objects.filter(region=region, role=role)
        .select_related("user")
        .order_by("user__username")
        .first()
    )
    return membership.user if membership else fallback


def _managers(region) -> dict[int, object]:
    """unit id -> the demo unit manager who reports for it."""
    managers: dict[int, object] = {}
    memberships = Membership.objects.filter(region=region, role=Role.UNIT_MANAGER)
    for m in memberships.select_related("user").order_by("user__username"):
        for unit in m.units.all():
            managers.setdefault(unit.pk, m.user)
    return managers


def region_population_proxy(region) -> int:
    """The demo region's listed patients in the reference month: its population proxy."""
    listed = Listing.objects.filter(unit__region=region, month=REFERENCE_MONTH).values_list(
        "listed", flat=True
    )
    return sum(listed)


def region_share(population: int) -> int:
    """The region's whole-kronor share of the 496 MSEK, by population (largest remainder)."""
    rest = NATIONAL_POPULATION - population
    return largest_remainder(NATIONAL_TOTAL, {"region": population, "rest": rest})["region"]


def _lines(rng: random.Random, allocated: int, share_used: Decimal) -> dict:
    """A unit's account lines: 1–3 staff categories sharing ``share_used`` of its money."""
    used = int((allocated * share_used).to_integral_value()) // 100 * 100
    chosen = sorted(rng.sample(STAFF_CATEGORIES, rng.randint(1, 3)), key=STAFF_CATEGORIES.index)
    weights = [rng.randint(2, 6) for _ in chosen]
    amounts = largest_remainder(used // 100, dict(zip(chosen, weights, strict=True)))
    lines = {}
    for code in chosen:
        amount = amounts[code] * 100
        fte = (Decimal(amount) / COST_PER_FTE[code]).quantize(Decimal("0.01"))
        lines[code] = {
            "used": amount,
            "persons": max(1, int((fte * 2).to_integral_value())) if amount else 0,
            "fte_added": str(fte),
            "measures": MEASURES[code],
        }
    return lines


def _at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def demo_grant(ctx) -> str:
    """Build the demo grant's cycle (see the module docstring); a one-line summary."""
    region = ctx.region
    assert region is not None, "the demo region step runs first"
    existing = Grant.objects.filter(region=region, dnr=DEMO_DNR).first()
    if existing is not None:
        return f"{existing.name}: exists ({existing.get_state_display()}), unchanged"
    analyst = _user(region, Role.ANALYST)
    if analyst is None:
        return "no analyst in the demo region: grant skipped"
    seed = getattr(ctx, "seed", 0)

    dist = NationalDistribution.objects.filter(region=region, total=NATIONAL_TOTAL).first()
    if dist is None:
        text = "lan_code,population\n" + "".join(
            f"{code},{pop}\n" for code, pop in POPULATION_2024.items()
        )
        dist = services.save_national_distribution(
            analyst,
            name="Statsbidrag psykisk ohälsa 2025",
            total=NATIONAL_TOTAL,
            population_file=text.encode("utf-8"),
            reference_date=date(2024, 12, 31),
            source_name="population_lan_2024-12-31.csv",
        )

    population = region_population_proxy(region)
    total = region_share(population)
    grant = services.create_grant(
        analyst,
        name=DEMO_NAME,
        dnr=DEMO_DNR,
        authority="Socialstyrelsen",
        total=total,
        national_total=NATIONAL_TOTAL,
        national_distribution=dist,
        first_year=2025,
        purpose=(
            "Stärka och utveckla primärvårdens arbete med psykisk ohälsa, i linje med "
            "Socialstyrelsens målbild: utbildning för samtliga vårdcentraler och förstärkning "
            "av psykolog, PTP-psykolog, vårdsamordnare, rehabkoordinator och kurator."
        ),
        conditions=(
            "Jämställdhetsperspektivet, särskilt det jämställdhetspolitiska delmålet om jämställd "
            "hälsa, barnrättsperspektivet och funktionshindersperspektivet ska beaktas. Medel som "
            "inte använts för avsett ändamål återbetalas senast 2026-03-31."
        ),
        accounts_deadline=date(2026, 1, 31),
        report_deadline=date(2026, 3, 31),
        repayment_deadline=date(2026, 3, 31),
        note=(
            f"Regionens andel av 496 000 000 kr efter befolkning; demoregionens befolkning "
            f"räknas som dess {population} listade i {REFERENCE_MONTH}."
        ),
    )

    spec = services.plan_input_from_values(
        {
            "reference_month": REFERENCE_MONTH,
            "central_items": [
                {
                    "name": "Utbildningsinsatser psykisk ohälsa",
                    "percent": "15",
                    "category": "utbildning",
                }
            ],
            "note": "Utbildning för alla vårdcentraler; resten efter antal listade.",
        }
    )
    plan = services.create_plan(analyst, grant, spec)
    services.decide_plan(analyst, plan, dnr="RS 2025/0412 (fiktivt)")
    services.transition(analyst, grant, GrantState.PAID, "Utbetalt från Socialstyrelsen.")
    services.transition(analyst, grant, GrantState.ACCOUNTING, "Vårdcentralerna redovisar.")

    keys = {u.hsa_id: u.key for u in ctx.registry.units} if getattr(ctx, "registry", None) else {}
    managers = _managers(region)
    amounts = plan.unit_amounts.select_related("unit").order_by("unit__hsa_id")
    submitted = late = 0
    on_time_day = date(2026, 1, 8)
    late_day = date(2026, 2, 3)
    for index, row in enumerate(amounts):
        unit: CareUnit = row.unit
        key = keys.get(unit.hsa_id, "")
        if key in NOT_SUBMITTED or row.amount == 0:
            continue
        rng = random.Random(f"styrkort-demo-grant:{seed}:{unit.hsa_id}")
        actor = managers.get(unit.pk, analyst)
        share_used = (
            Decimal("1.12") if key == OVER_USING else Decimal(rng.randint(78, 99)) / Decimal(100)
        )
        lines = _lines(rng, row.amount, share_used)
        account = services.save_account(actor, grant, unit, lines=lines, comment="")
        if key in LATE:
            at = _at(late_day + timedelta(days=3 * LATE.index(key)), 10)
            late += 1
        else:
            at = _at(on_time_day + timedelta(days=index % 20), 9 + index % 7)
        services.submit_account(actor, account, at=at)
        if key == OVER_USING:
            services.return_account(
                analyst,
                account,
                "Kontot visar mer använt än tilldelat. Stämmer beloppen? Överförbrukning "
                "täcks inte av statsbidraget.",
            )
            account = services.save_account(
                actor,
                grant,
                unit,
                lines=lines,
                comment="Beloppen stämmer; mellanskillnaden finansieras av vårdcentralen.",
            )
            services.submit_account(actor, account, at=at + timedelta(days=5))
        services.approve_account(analyst, account)
        submitted += 1

    central = plan.central_items.get()
    services.save_central_spending(
        analyst,
        grant,
        [
            {
                "name": central.name,
                "used": central.amount * 92 // 100 // 100 * 100,
                "persons": 180,
                "fte_added": "0",
                "measures": "Utbildningsdagar i KBT-metodik, suicidprevention och stegvis vård "
                "för medarbetare på samtliga vårdcentraler.",
            }
        ],
    )
    report = services.start_report(analyst, grant)
    services.update_report(analyst, report, **REPORT_TEXTS)
    report = services.submit_report(analyst, report)
    assert report.snapshot is not None  # submitting freezes the figures
    repay = report.snapshot["repayment"]["total"]
    units = amounts.count()
    return (
        f"{grant.name}: {total} kr ({population} listed as population), plan v{plan.version} to "
        f"{units} units, {submitted} accounts approved ({late} late), "
        f"{units - submitted} not submitted, report v{report.version} submitted, "
        f"{repay} kr to repay"
    )
