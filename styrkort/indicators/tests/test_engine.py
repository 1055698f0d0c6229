"""The engine on tiny hand-made extracts, one scenario per indicator, with every expected
numerator and denominator worked out by hand in the comments.

Each test writes typed Parquet files under a temporary EXTRACT_DIR, registers them as active
ExtractVersion rows, runs ``services.compute`` for the indicator(s) concerned and reads the
stored IndicatorResult rows.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from styrkort.indicators import engine, services
from styrkort.indicators.catalogue import load_catalogue
from styrkort.indicators.models import IndicatorResult
from styrkort.indicators.tests.scenario import A, B, Extract, listing
from styrkort.organisation.models import Staffing
from styrkort.periods import Period, period_range


@pytest.fixture
def uploader(db):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create(username="uploader")


@pytest.fixture
def env(settings, tmp_path, region, uploader, unit_a, unit_b):
    settings.EXTRACT_DIR = tmp_path

    class Env:
        def write(self, extract: Extract, periods: list[str]):
            return extract.write(region, uploader, tmp_path, periods)

        def compute(self, *codes, **kw):
            return services.compute(region, codes=list(codes) or None, **kw)

        def result(self, code, unit=A, period="2025-03", sex="T", band="alla"):
            qs = IndicatorResult.objects.filter(
                definition__code=code, period=period, sex=sex, age_band=band
            )
            qs = qs.filter(unit__hsa_id=unit) if unit else qs.filter(unit__isnull=True)
            return qs.first()

        def counts(self, code, unit=A, period="2025-03", sex="T", band="alla"):
            r = self.result(code, unit, period, sex, band)
            return None if r is None else (r.numerator, r.denominator)

    return Env()


# ------------------------------------------------------------------------------------------
# 1. New visits concerning mental ill-health
# ------------------------------------------------------------------------------------------


def test_it_counts_new_visits_with_a_mental_health_diagnosis(env):
    e = Extract()
    e.contact("p1", "2025-01-05", new=True, dx=("F32.1",))  # num
    e.contact("p2", "2025-01-06", new=True, dx=("J06.9", "Z73.0"))  # num: Z73.0, rank 2
    e.contact("p3", "2025-01-07", new=True, dx=("J06.9",))  # den only
    e.contact("p4", "2025-01-08", new=True)  # no diagnosis: den only
    e.contact("p5", "2025-01-09", new=False, dx=("F41.1",))  # not a new visit
    e.contact("p6", "2025-01-10", B, new=True, sex="M", dx=("F43.8A",))  # unit B
    e.contact("p7", "2025-02-03", new=True, sex="M", dx=("F41.0",))  # February
    env.write(e, ["2025"])
    env.compute("PO01")
    assert env.counts("PO01", A, "2025-01") == (2, 4)
    assert env.result("PO01", A, "2025-01").value == pytest.approx(50.0)
    assert env.counts("PO01", B, "2025-01") == (1, 1)
    assert env.counts("PO01", None, "2025-01") == (3, 5)
    assert env.counts("PO01", A, "2025Q1") == (3, 5)
    assert env.counts("PO01", A, "2025") == (3, 5)
    assert env.counts("PO01", A, "2025-01", sex="K") == (2, 4)
    assert env.counts("PO01", A, "2025Q1", sex="M") == (1, 1)
    # Born 1980: 45 in 2025.
    assert env.counts("PO01", A, "2025-01", band="45-64") == (2, 4)
    assert env.counts("PO01", A, "2025-01", sex="K", band="45-64") == (2, 4)
    assert env.result("PO01", A, "2025-01", band="25-44") is None
    # Wilson interval on the per-cent scale.
    r = env.result("PO01", A, "2025-01")
    assert r.lower == pytest.approx(15.0, abs=0.1)
    assert r.upper == pytest.approx(85.0, abs=0.1)


# ------------------------------------------------------------------------------------------
# 2. Long sick-leave cases with a psychiatric diagnosis
# ------------------------------------------------------------------------------------------


def test_it_counts_sick_leave_ongoing_more_than_90_days_at_the_period_end(env):
    e = Extract()
    for p in ("sA", "sB", "sC", "sD", "sE"):
        e.contact(p, "2025-03-02")  # demographics (K, born 1980)
    e.leave("sA", "2024-12-01", "2025-06-30", "F32.1")  # 121 days on 31 March, psychiatric
    e.leave("sB", "2025-01-01", "2025-04-30", "M54.5")  # exactly 90 days: not > 90
    e.leave("sC", "2024-12-31", "2025-04-30", "M54.5")  # 91 days
    e.leave("sD", "2024-10-01", "2025-03-30", "F41.1")  # ended the day before: not ongoing
    e.leave("sE", "2024-10-01", "2025-03-31", "F43.8A")  # ends on the last day: ongoing
    env.write(e, ["2025-03"])
    env.compute("PO02")
    assert env.counts("PO02", A, "2025-03") == (2, 3)  # sA, sE of sA, sC, sE
    assert env.counts("PO02", A, "2025Q1") == (2, 3)  # same last day
    assert env.result("PO02", A, "2025") is None  # nothing ongoing on 31 December
    assert env.counts("PO02", A, "2025-03", sex="K", band="45-64") == (2, 3)


def test_it_takes_a_sick_leave_case_from_the_latest_file(env):
    e = Extract()
    e.contact("sA", "2025-02-02")
    e.leave("sA", "2024-11-01", "2025-02-28", "F32.1")  # as in February's file
    env.write(e, ["2025-02"])
    later = Extract()
    later.contact("sX", "2025-03-02")
    later.leave("sA", "2024-11-01", "2025-05-31", "F32.1")  # extended in March's file
    env.write(later, ["2025-03"])
    env.compute("PO02")
    assert env.counts("PO02", A, "2025-03") == (1, 1)
    assert env.counts("PO02", A, "2025-02") == (1, 1)
    # Counted once per period even though two files hold the case.
    assert env.counts("PO02", None, "2025Q1") == (1, 1)


# ------------------------------------------------------------------------------------------
# 3. Recorded depression and anxiety per 1,000 listed
# ------------------------------------------------------------------------------------------


def _listed(unit_a, unit_b):
    months = ["2025-01", "2025-02", "2025-03"]
    listing(unit_a, months, {("K", "40-44"): 600, ("M", "40-44"): 400})
    listing(unit_b, months, {("K", "40-44"): 300, ("M", "40-44"): 200})


def test_it_counts_patients_with_depression_per_1000_listed(env, unit_a, unit_b):
    _listed(unit_a, unit_b)
    e = Extract()
    e.contact("p1", "2025-01-10", born=1985, dx=("F32.1",))
    e.contact("p1", "2025-01-20", born=1985, dx=("F32.9",))  # same patient: once
    e.contact("p1", "2025-02-20", born=1985, dx=("F32.1",))  # February
    e.contact("p2", "2025-01-12", sex="M", born=1985, dx=("J06.9", "F33.1"))
    e.contact("p2", "2025-01-13", B, sex="M", born=1985, dx=("F33.1",))  # also at B
    e.contact("p3", "2025-01-14", born=1985, dx=("F41.1",))  # anxiety, not depression
    env.write(e, ["2025"])
    env.compute("PO03A", "PO03B")
    assert env.counts("PO03A", A, "2025-01") == (2, 1000)
    assert env.result("PO03A", A, "2025-01").value == pytest.approx(2.0)
    assert env.counts("PO03A", B, "2025-01") == (1, 500)
    assert env.counts("PO03A", None, "2025-01") == (2, 1500)  # p2 once in the region
    assert env.counts("PO03A", A, "2025Q1") == (2, 1000)  # mean listed over the quarter
    assert env.counts("PO03A", A, "2025-02") == (1, 1000)
    assert env.counts("PO03A", A, "2025-01", sex="M", band="25-44") == (1, 400)
    # A listed cell with no cases is a rate of 0, not a missing figure.
    assert env.counts("PO03A", A, "2025-03") == (0, 1000)
    assert env.counts("PO03B", A, "2025-01") == (1, 1000)
    # Listings cover only January-March: the year's figure is incomplete.
    assert env.result("PO03A", A, "2025Q1").is_complete
    assert not env.result("PO03A", A, "2025").is_complete


# ------------------------------------------------------------------------------------------
# 4 and 5. New depression: psychological treatment within 90 days, follow-up 10-56 days
# ------------------------------------------------------------------------------------------


def _depression_scenario() -> Extract:
    e = Extract()
    # pA: new F32.1, CBT 89 days later -> treated in time; follow-up with F32 on day 10.
    e.contact("pA", "2025-03-01", dx=("F32.1",))
    e.contact("pA", "2025-03-11", dx=("F32.1",))
    e.contact("pA", "2025-05-29", profession="psykolog", kva=("DU011",))
    # pB: new F32.0, CBT 91 days later -> too late; contact on day 9 is no follow-up.
    e.contact("pB", "2025-03-01", dx=("F32.0",))
    e.contact("pB", "2025-03-10", dx=("F32.0",))
    e.contact("pB", "2025-05-31", profession="psykolog", kva=("DU011",))
    # pC: F32.9 273 days before -> not new.
    e.contact("pC", "2024-06-01", dx=("F32.9",))
    e.contact("pC", "2025-03-01", dx=("F33.1",))
    # pD: F32.2 exactly 366 days before (2024 is a leap year) -> new; follow-up on day 56.
    e.contact("pD", "2024-02-29", dx=("F32.2",))
    e.contact("pD", "2025-03-01", dx=("F32.1",))
    e.contact("pD", "2025-04-26", dx=("F32.1",))
    # pE: 17 during 2025 -> not an adult.
    e.contact("pE", "2025-03-01", born=2008, dx=("F32.1",))
    # pF: severe (F32.2): not in indicator 4, in 5; follow-up on day 57 is too late.
    e.contact("pF", "2025-03-01", dx=("F32.2",))
    e.contact("pF", "2025-04-27", dx=("F32.2",))
    # pG: IPT the same day at another unit -> treated in time.
    e.contact("pG", "2025-03-01", dx=("F33.0",))
    e.contact("pG", "2025-03-01", B, profession="psykolog", kva=("DU022",))
    # pH: only supportive talks (DU007) -> not psychological treatment.
    e.contact("pH", "2025-03-01", dx=("F32.1",))
    e.contact("pH", "2025-03-11", profession="kurator", kva=("DU007",))
    # pI: F32.2 exactly 365 days before -> not new.
    e.contact("pI", "2024-03-01", dx=("F32.2",))
    e.contact("pI", "2025-03-01", dx=("F32.1",))
    return e


def test_it_counts_psychological_treatment_within_90_days_of_a_new_depression(env):
    env.write(_depression_scenario(), ["2024", "2025"])
    env.compute("PO04")
    # Denominator: pA, pB, pD, pG, pH (pC and pI not new, pE a child, pF severe).
    # Numerator: pA (day 89), pG (day 0, other unit).
    assert env.counts("PO04", A, "2025-03") == (2, 5)
    assert env.result("PO04", A, "2025-03").value == pytest.approx(40.0)
    assert env.counts("PO04", None, "2025-03") == (2, 5)
    assert env.result("PO04", B, "2025-03") is None
    assert env.counts("PO04", A, "2025", band="45-64") == (2, 5)
    # The first extract month cannot tell new from old; a year's look-back is there for 2025.
    assert env.result("PO04", A, "2025-03").is_complete
    # The 90-day follow-up of December 2025 runs past the extracts.
    assert not env.result("PO04", A, "2025").is_complete


def test_it_counts_follow_up_10_to_56_days_after_a_new_depression(env):
    env.write(_depression_scenario(), ["2024", "2025"])
    env.compute("PO05")
    # Denominator: pA, pB, pD, pF, pG, pH. Numerator: pA (day 10), pD (day 56).
    assert env.counts("PO05", A, "2025-03") == (2, 6)


def test_it_treats_a_diagnosis_365_days_later_as_old_and_366_days_later_as_new(env):
    e = Extract()
    e.contact("old", "2024-03-01", dx=("F32.1",))
    e.contact("old", "2025-03-01", dx=("F32.1",))  # 365 days: not new
    e.contact("new", "2024-02-29", dx=("F32.1",))
    e.contact("new", "2025-03-01", dx=("F32.1",))  # 366 days: new
    env.write(e, ["2024", "2025"])
    env.compute("PO05")
    assert env.counts("PO05", A, "2025-03") == (0, 1)  # only 'new'
    # Each patient's first diagnosis is new too.
    assert env.counts("PO05", A, "2024-02") == (0, 1)
    assert env.counts("PO05", A, "2024-03") == (0, 1)


# ------------------------------------------------------------------------------------------
# 6 and 7. Ratings at start and follow-up; recovery and reliable improvement
# ------------------------------------------------------------------------------------------


def _treatment_scenario() -> Extract:
    e = Extract()

    def treat(patient, *days):
        for day in days:
            e.contact(patient, day, profession="psykolog", kva=("DU011",), dx=("F41.1",))

    # q1: 3 sessions; PHQ-9 16 -> 8: paired, caseness, recovered, reliably improved.
    treat("q1", "2025-03-03", "2025-03-17", "2025-04-01")
    e.rating("q1", "2025-02-20", "PHQ-9", 16)
    e.rating("q1", "2025-04-15", "PHQ-9", 8)
    # q2: GAD-7 6 -> 10: paired, below caseness at start, reliable deterioration.
    treat("q2", "2025-03-05", "2025-03-20")
    e.rating("q2", "2025-03-10", "GAD-7", 6)
    e.rating("q2", "2025-05-01", "GAD-7", 10)
    # q3: a single session: not a treated course.
    treat("q3", "2025-03-07")
    e.rating("q3", "2025-03-07", "PHQ-9", 20)
    e.rating("q3", "2025-05-07", "PHQ-9", 5)
    # q4: baseline only.
    treat("q4", "2025-03-10", "2025-03-24")
    e.rating("q4", "2025-03-10", "PHQ-9", 14)
    # q5: MADRS-S paired: counts for indicator 6, not 7.
    treat("q5", "2025-03-12", "2025-04-12")
    e.rating("q5", "2025-03-12", "MADRS-S", 20)
    e.rating("q5", "2025-05-12", "MADRS-S", 10)
    # q6: treated in December: the March session continues that course.
    treat("q6", "2024-12-01", "2025-03-14")
    # q7: PHQ-9 12 -> 5 (improved 7), GAD-7 9 -> 9 (still at caseness): not recovered.
    treat("q7", "2025-03-18", "2025-04-01")
    e.rating("q7", "2025-03-18", "PHQ-9", 12)
    e.rating("q7", "2025-06-01", "PHQ-9", 5)
    e.rating("q7", "2025-03-18", "GAD-7", 9)
    e.rating("q7", "2025-06-01", "GAD-7", 9)
    # q8: ratings 31 days before and 8 days after the start: no baseline.
    treat("q8", "2025-03-20", "2025-04-03")
    e.rating("q8", "2025-02-17", "PHQ-9", 15)
    e.rating("q8", "2025-03-28", "PHQ-9", 14)
    e.rating("q8", "2025-05-01", "PHQ-9", 10)
    return e


def test_it_counts_treated_courses_with_ratings_at_start_and_follow_up(env):
    env.write(_treatment_scenario(), ["2024", "2025"])
    env.compute("PO06")
    # Denominator: q1, q2, q4, q5, q7, q8. Numerator: q1, q2, q5, q7.
    assert env.counts("PO06", A, "2025-03") == (4, 6)
    assert env.counts("PO06", A, "2024-12") == (0, 1)  # q6's course began in December


def test_it_counts_recovery_among_courses_at_caseness(env):
    env.write(_treatment_scenario(), ["2024", "2025"])
    env.compute("PO07A")
    # Denominator: q1 (PHQ-9 16), q7 (PHQ-9 12); q2 below caseness. Numerator: q1.
    assert env.counts("PO07A", A, "2025-03") == (1, 2)


def test_it_counts_reliable_improvement_without_deterioration(env):
    env.write(_treatment_scenario(), ["2024", "2025"])
    env.compute("PO07B")
    # Denominator: q1, q2, q7. Numerator: q1 (-8), q7 (-7 on PHQ-9, GAD-7 unchanged).
    assert env.counts("PO07B", A, "2025-03") == (2, 3)


# ------------------------------------------------------------------------------------------
# 8. Waiting time to psychological treatment
# ------------------------------------------------------------------------------------------


def _waiting_scenario() -> Extract:
    e = Extract()

    def start(patient, day):
        e.contact(patient, day, profession="psykolog", kva=("DU011",))

    e.contact("w1", "2025-01-10", dx=("F41.1",))
    start("w1", "2025-03-01")  # 50 days
    e.contact("w2", "2025-02-20", dx=("F32.1",))
    start("w2", "2025-03-02")  # 10 days
    e.contact("w3", "2024-02-01", dx=("F41.1",))  # more than 365 days before: ignored
    e.contact("w3", "2024-12-03", dx=("F41.1",))
    start("w3", "2025-03-03")  # 90 days
    start("w4", "2025-03-04")  # no earlier mental-health contact: 0 days
    e.contact("w5", "2024-11-30", dx=("Z73.0",))
    start("w5", "2025-03-04")  # 94 days
    e.contact("w6", "2025-01-01", dx=("F41.1",))
    start("w6", "2025-01-15")  # 14 days, in January
    start("w6", "2025-03-05")  # same course: no new start in March
    return e


def test_it_takes_the_median_wait_to_psychological_treatment(env):
    env.write(_waiting_scenario(), ["2024", "2025"])
    env.compute("PO08A", "PO08B", "PO08C")
    # Starts in March: 50, 10, 90, 0, 94 days -> median 50.
    r = env.result("PO08A", A, "2025-03")
    assert (r.denominator, r.value) == (5, 50)
    assert r.numerator is None
    assert r.lower is None
    assert r.upper is None
    assert env.result("PO08A", A, "2025-01").value == 14
    assert env.result("PO08A", A, "2025Q1").value == pytest.approx(32.0)  # 0 10 14 50 90 94
    assert env.counts("PO08B", A, "2025-03") == (2, 5)  # 10, 0
    assert env.counts("PO08C", A, "2025-03") == (4, 5)  # 50, 10, 90, 0
    assert env.result("PO08A", A, "2025-03").comparison == "not_compared"


def test_it_gives_an_order_statistic_interval_for_a_median(env):
    e = Extract()
    for i in range(10):  # waits 0, 10, 20, ... 90 days
        e.contact(f"m{i}", "2025-01-01", dx=("F41.1",))
        start = date(2025, 1, 1) + timedelta(days=10 * i)
        e.contact(f"m{i}", start.isoformat(), profession="psykolog", kva=("DU011",))
    env.write(e, ["2025"])
    env.compute("PO08A")
    r = env.result("PO08A", A, "2025")
    # n = 10: ranks round(5 - 1.96 * sqrt(10) / 2) = 2 and round(6 + 3.099) = 9.
    assert (r.value, r.lower, r.upper) == (45, 10, 80)


# ------------------------------------------------------------------------------------------
# 9 and 10. Professions and contact forms of mental-health contacts
# ------------------------------------------------------------------------------------------


def _contacts_scenario() -> Extract:
    e = Extract()
    e.contact("c1", "2025-01-10", profession="psykolog", dx=("F41.1",))
    e.contact("c2", "2025-01-10", profession="kurator", kind="video", dx=("F32.1",))
    e.contact("c3", "2025-01-10", kind="digital", dx=("Z73.0",))
    e.contact("c4", "2025-01-10", sex="M", kind="grupp", dx=("F43.8A",))
    e.contact("c5", "2025-01-10", sex="M", profession="psykoterapeut", kind="grupp",
              dx=("F41.0",))  # fmt: skip
    e.contact("c6", "2025-01-10", sex="M", profession="sjukskoterska", kind="telefon",
              dx=("J06.9", "F51.0"))  # fmt: skip
    e.contact("c7", "2025-01-10", profession="psykolog", dx=("J06.9",))  # not mental health
    e.contact("c8", "2025-01-10", profession="psykolog")  # no diagnosis
    return e


def test_it_counts_mental_health_contacts_with_psychosocial_professions(env):
    env.write(_contacts_scenario(), ["2025-01"])
    env.compute("PO09")
    assert env.counts("PO09", A, "2025-01") == (3, 6)  # c1, c2, c5 of c1-c6
    assert env.counts("PO09", A, "2025-01", sex="K") == (2, 3)
    assert env.counts("PO09", A, "2025-01", sex="M") == (1, 3)


def test_it_counts_digital_video_and_group_contacts(env):
    env.write(_contacts_scenario(), ["2025-01"])
    env.compute("PO10A", "PO10B")
    assert env.counts("PO10A", A, "2025-01") == (2, 6)  # c2 video, c3 digital
    assert env.counts("PO10B", A, "2025-01") == (2, 6)  # c4, c5
    assert env.counts("PO10B", A, "2025-01", sex="M", band="45-64") == (2, 3)


# ------------------------------------------------------------------------------------------
# 11. Psychosocial staffing per 10,000 listed
# ------------------------------------------------------------------------------------------


def test_it_computes_psychosocial_staffing_per_10000_listed(env, unit_a, unit_b):
    months = [f"2025-{m:02d}" for m in range(1, 7)]
    listing(unit_a, months, {("K", "40-44"): 6000, ("M", "40-44"): 4000})
    listing(unit_b, months, {("K", "40-44"): 3000, ("M", "40-44"): 2000})
    Staffing.objects.bulk_create(
        [
            Staffing(unit=unit_a, period="2025", profession="psykolog", fte=2),
            Staffing(unit=unit_a, period="2025", profession="kurator", fte=1),
            Staffing(unit=unit_a, period="2025", profession="lakare", fte=3),  # not counted
            Staffing(unit=unit_b, period="2025Q1", profession="psykolog", fte="1.5"),
            Staffing(unit=unit_b, period="2025Q2", profession="ptp_psykolog", fte="0.5"),
        ]
    )
    e = Extract()
    e.contact("x", "2025-01-01")
    env.write(e, ["2025"])
    env.compute("PO11")
    # January: A 3.0 FTE (its year), B 1.5 (its quarter) per 10,000 and 5,000 listed.
    assert env.counts("PO11", A, "2025-01") == (3.0, 10000)
    assert env.result("PO11", A, "2025-01").value == pytest.approx(3.0)
    assert env.result("PO11", B, "2025-01").value == pytest.approx(3.0)
    assert env.counts("PO11", None, "2025-01") == (4.5, 15000)
    # The year: B is the mean of its quarters, (1.5 + 0.5) / 2 = 1.0 FTE -> 2.0 per 10,000.
    assert env.result("PO11", B, "2025").value == pytest.approx(2.0)
    assert env.result("PO11", None, "2025").value == pytest.approx(4.0 / 15000 * 10000)
    r = env.result("PO11", A, "2025")
    assert r.lower is None
    assert r.comparison == "not_compared"
    assert not r.suppressed
    assert env.result("PO11", A, "2025-01", sex="K") is None  # no breakdowns
    assert env.result("PO11", A, "2025-07") is None  # no listing in July


# ------------------------------------------------------------------------------------------
# 12. Exhaustion-disorder sick leave longer than 180 days per 1,000 listed
# ------------------------------------------------------------------------------------------


def test_it_counts_exhaustion_disorder_sick_leave_over_180_days_per_1000(env, unit_a):
    listing(unit_a, ["2025-06"], {("K", "40-44"): 1200, ("M", "40-44"): 800})
    e = Extract()
    for p in ("s1", "s2", "s3", "s4", "s5"):
        e.contact(p, "2025-06-02", born=1985)
    e.leave("s1", "2024-12-31", "2025-08-31", "F43.8A")  # 182 days on 30 June
    e.leave("s2", "2025-01-01", "2025-08-31", "F43.8A")  # 181 days
    e.leave("s3", "2025-01-02", "2025-08-31", "F43.8A")  # 180 days: not more than 180
    e.leave("s4", "2024-06-01", "2025-08-31", "F32.1")  # another diagnosis
    e.leave("s5", "2024-01-01", "2025-06-29", "F43.8A")  # ended before 30 June
    env.write(e, ["2025-06"])
    env.compute("PO12")
    assert env.counts("PO12", A, "2025-06") == (2, 2000)
    assert env.result("PO12", A, "2025-06").value == pytest.approx(1.0)
    assert env.counts("PO12", A, "2025-06", sex="K", band="25-44") == (2, 1200)
    assert env.counts("PO12", A, "2025-06", sex="M", band="25-44") == (0, 800)


# ------------------------------------------------------------------------------------------
# Comparison with the region, and the plain functions of the dependency rule
# ------------------------------------------------------------------------------------------


def test_it_classes_units_against_the_region_with_polarity(env):
    e = Extract()
    # Unit A: 40 of 50 new mild-moderate depressions treated in time; unit B: 5 of 50.
    for i in range(100):
        unit = A if i < 50 else B
        e.contact(f"d{i}", "2025-06-02", unit, dx=("F32.1",))
        if i < 40 or 50 <= i < 55:
            e.contact(f"d{i}", "2025-06-20", unit, profession="psykolog", kva=("DU011",))
    env.write(e, ["2025"])
    env.compute("PO04")
    assert env.result("PO04", A, "2025-06").comparison == "better"
    assert env.result("PO04", B, "2025-06").comparison == "worse"
    assert env.result("PO04", None, "2025-06").comparison == "not_compared"


def _months(first, last):
    return [str(p) for p in period_range(first, last)]


def test_it_recomputes_a_window_free_indicator_for_the_month_its_quarter_and_year():
    po01 = load_catalogue().get("PO01")
    periods = engine.result_periods(period_range("2024-01", "2025-12"))
    got = engine.dependent_periods(po01, [engine.Change.of("contacts", "2025-03")], periods)
    assert [str(p) for p in got] == ["2025", "2025Q1", "2025-03"]


def test_it_recomputes_the_neighbouring_months_of_an_episode_indicator():
    po04 = load_catalogue().get("PO04")  # 365 days back, 90 days forward
    months = period_range("2024-01", "2026-12")
    got = engine.dependent_periods(po04, [engine.Change.of("procedures", "2025-03")], months)
    # December-February: their 90-day follow-up reaches March; April 2025-March 2026: their
    # 365-day look-back reaches March.
    assert [str(p) for p in got] == _months("2024-12", "2026-03")
    assert (
        engine.dependent_periods(po04, [engine.Change.of("measurements", "2025-03")], months) == []
    )


def test_it_recomputes_every_period_of_an_unbounded_indicator():
    po02 = load_catalogue().get("PO02")
    months = period_range("2024-01", "2025-12")
    got = engine.dependent_periods(po02, [engine.Change.of("sick_leave", "2025-03")], months)
    assert got == months


def test_it_applies_staffing_of_the_enclosing_or_enclosed_periods():
    rows = [
        engine.StaffingRow(A, "2025", "psykolog", 2.0),
        engine.StaffingRow(B, "2025Q1", "kurator", 1.0),
        engine.StaffingRow(B, "2025Q2", "kurator", 3.0),
        engine.StaffingRow(B, "2025-05", "kurator", 9.0),
    ]
    profs = ("psykolog", "kurator")
    assert engine.staffing_fte(rows, profs, Period.parse("2025-02")) == {A: 2.0, B: 1.0}
    assert engine.staffing_fte(rows, profs, Period.parse("2025-05")) == {A: 2.0, B: 9.0}
    assert engine.staffing_fte(rows, profs, Period.parse("2025")) == {A: 2.0, B: 2.0}
    assert engine.staffing_fte(rows, ("lakare",), Period.parse("2025")) == {}


def test_it_maps_ages_to_report_bands_in_sql():
    import duckdb

    sql = engine.age_band_sql("a")
    got = duckdb.sql(
        f"SELECT a, {sql} FROM (VALUES (0), (17), (18), (24), (25), (64), (79), (80), (104),"
        " (-1), (NULL)) v(a) ORDER BY a NULLS LAST"
    ).fetchall()
    assert got == [
        (-1, None), (0, "0-17"), (17, "0-17"), (18, "18-24"), (24, "18-24"), (25, "25-44"),
        (64, "45-64"), (79, "65-79"), (80, "80+"), (104, "80+"), (None, None),
    ]  # fmt: skip
