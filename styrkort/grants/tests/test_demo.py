"""The demo grant: a realistic, complete cycle for the demo region, built once."""

from __future__ import annotations

import pytest

from styrkort.grants.demo import (
    DEMO_DNR,
    NATIONAL_POPULATION,
    NATIONAL_TOTAL,
    region_share,
)
from styrkort.grants.models import (
    AccountStatus,
    Grant,
    GrantState,
    NationalDistribution,
    PlanStatus,
)
from styrkort.grants.services import repayment_of
from styrkort.history.models import ChangeRecord
from styrkort.web import demo

STEPS = ("region", "registry", "users", "grant")  # the extract steps are tested elsewhere


@pytest.fixture
def built(db):
    lines: list[str] = []
    ctx = demo.build_demo(7, write=lines.append, steps=_steps())
    return ctx, lines


def _steps():
    return [s for s in demo.STEPS if s.name in STEPS]


def test_the_demo_grant_walks_the_whole_cycle(built):
    ctx, lines = built
    grant = Grant.objects.get(region=ctx.region, dnr=DEMO_DNR)
    assert grant.national_total == NATIONAL_TOTAL
    assert 13_000_000 < grant.total < 15_500_000  # about 300 000 listed of 10.6 million
    assert grant.state == GrantState.REPORTED
    dist = NationalDistribution.objects.get(region=ctx.region)
    assert dist.row_for("18")["amount"] == 14_446_372

    plan = grant.decided_plan()
    assert plan.status == PlanStatus.DECIDED
    assert plan.reference_month == "2025-10"
    training = plan.central_items.get()
    assert training.amount == round(grant.total * 15 / 100)  # 15 % reserved for training
    units = plan.unit_amounts.count()
    assert units == 29  # every unit active in October 2025 (Slottsparken closed in 2024)
    assert sum(a.amount for a in plan.unit_amounts.all()) + training.amount == grant.total

    statuses = [a.status for a in grant.accounts.all()]
    assert statuses.count(AccountStatus.APPROVED) == units - 2  # two not submitted
    late = [a for a in grant.accounts.all() if a.submission.late]
    assert len(late) == 3
    repayment, facts = repayment_of(grant)
    assert len(repayment.over_using_units) == 1
    assert facts[repayment.over_using_units[0].key]["unit"].name == "Vårdcentralen Campus"
    report = grant.reports.get()
    assert report.is_submitted
    assert report.snapshot["repayment"]["total"] == repayment.total_repay
    assert report.snapshot["texts"]["childrens_rights"]
    assert any(line.startswith("  grant") for line in lines)


def test_the_demo_grant_is_idempotent_and_deterministic(built):
    ctx, _lines = built
    grant = Grant.objects.get(region=ctx.region, dnr=DEMO_DNR)
    history = ChangeRecord.objects.count()
    amounts = sorted(grant.decided_plan().unit_amounts.values_list("unit__hsa_id", "amount"))
    used = sorted(grant.accounts.values_list("unit__hsa_id", "lines__category__code",
                                             "lines__used"))  # fmt: skip
    lines: list[str] = []
    demo.build_demo(7, write=lines.append, steps=_steps())
    assert ChangeRecord.objects.count() == history
    assert Grant.objects.filter(region=ctx.region).count() == 1
    assert "unchanged" in lines[-1]
    assert sorted(grant.decided_plan().unit_amounts.values_list("unit__hsa_id", "amount")) == (
        amounts
    )
    assert sorted(grant.accounts.values_list("unit__hsa_id", "lines__category__code",
                                             "lines__used")) == used  # fmt: skip


def test_the_region_share_is_exact():
    assert region_share(308_375) == 14_446_372  # Örebro's population gives Örebro's share
    assert region_share(NATIONAL_POPULATION) == NATIONAL_TOTAL
