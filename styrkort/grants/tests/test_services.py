"""The grant cycle through the service functions: register, plan, decide, account, review,
repay, report; and every refusal leaves everything as it was."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import SimpleUploadedFile

from styrkort.grants import services
from styrkort.grants.allocation import AllocationError
from styrkort.grants.models import (
    AccountEvent,
    AccountLine,
    AccountStatus,
    AllocationPlan,
    FrozenError,
    GrantState,
    GrantTransition,
    NationalDistribution,
    PlanCentralItem,
    PlanStatus,
    PlanUnitAmount,
    StateReport,
    UnitAccount,
)
from styrkort.grants.population import PopulationFileError
from styrkort.grants.tests.conftest import POPULATION_TEXT, add_listings, plan_spec
from styrkort.history.models import ChangeRecord


def counts() -> dict:
    """Rows of every grants model and history, to show that a refusal changed nothing."""
    return {
        m.__name__: m.objects.count()
        for m in (
            AllocationPlan,
            PlanUnitAmount,
            PlanCentralItem,
            UnitAccount,
            AccountLine,
            AccountEvent,
            StateReport,
            GrantTransition,
            NationalDistribution,
            ChangeRecord,
        )
    }


def lines(psykolog: int | str = 300_000, **extra) -> dict:
    data = {
        "psykolog": {
            "used": psykolog,
            "persons": 1,
            "fte_added": "0.8",
            "measures": "Anställt en psykolog",
        }
    }
    data.update(extra)
    return data


# --------------------------------------------------------------------------------------------
# Register and transitions


def test_it_registers_a_grant_with_categories_and_state_decided(users, grant):
    assert grant.state == GrantState.DECIDED
    assert [c.code for c in grant.categories.all()] == [
        "psykolog",
        "ptp_psykolog",
        "vardsamordnare",
        "rehabkoordinator",
        "kurator",
        "utbildning",
        "ovrigt",
    ]
    assert ChangeRecord.objects.filter(object_type="grants.grant", action="create").count() == 1


@pytest.mark.parametrize("total", ["1000,50", "12.5", "-5", "en miljon", 10.0])
def test_it_refuses_a_total_that_is_not_whole_kronor(users, region, total):
    with pytest.raises(services.GrantError) as info:
        services.create_grant(
            users["analyst"],
            name="X",
            total=total,
            first_year=2025,
            accounts_deadline=date(2026, 1, 31),
            report_deadline=date(2026, 3, 1),
            repayment_deadline=date(2026, 3, 31),
        )
    assert "kronor" in info.value.message or "negative" in info.value.message
    assert not region.grants.exists()


@pytest.mark.parametrize("persona", ["manager", "viewer", "auditor", "admin", "nobody"])
def test_it_lets_only_the_analyst_register_grants(users, region, persona):
    with pytest.raises(PermissionDenied):
        services.create_grant(
            users[persona],
            name="X",
            total=1,
            first_year=2025,
            accounts_deadline=date(2026, 1, 31),
            report_deadline=date(2026, 3, 1),
            repayment_deadline=date(2026, 3, 31),
        )
    assert not region.grants.exists()


def test_it_moves_a_grant_only_one_step_forward_with_preconditions(users, grant):
    before = counts()
    with pytest.raises(services.GrantError) as info:
        services.transition(users["analyst"], grant, GrantState.PAID)
    assert info.value.code == "transition_not_allowed"
    with pytest.raises(services.GrantError) as info:
        services.transition(users["analyst"], grant, GrantState.ALLOCATED)
    assert info.value.code == "no_decided_plan"
    assert counts() == before


def test_it_keeps_the_state_history_as_rows(users, grant, decided_plan):
    grant.refresh_from_db()
    assert grant.state == GrantState.ALLOCATED  # deciding the plan allocated the grant
    services.transition(users["analyst"], grant, GrantState.PAID, note="Utbetalt 2025-06-30")
    services.transition(users["analyst"], grant, GrantState.ACCOUNTING)
    states = list(grant.transitions.values_list("state", flat=True))
    assert states == ["decided", "allocated", "paid", "accounting"]
    row = grant.transitions.first()
    with pytest.raises(FrozenError):
        row.save()


def test_it_edits_categories_without_deleting_used_ones(users, grant):
    rows = [
        {"code": c.code, "name": c.name, "allowed": c.code != "ovrigt"}
        for c in grant.categories.all()
    ]
    rows.append({"code": "digitalt_stod", "name": "Digitalt stöd", "allowed": True})
    services.set_categories(users["analyst"], grant, rows)
    assert grant.categories.get(code="ovrigt").allowed is False
    assert grant.categories.get(code="digitalt_stod").name == "Digitalt stöd"
    with pytest.raises(services.GrantError):
        services.set_categories(users["analyst"], grant, rows + [rows[0]])


# --------------------------------------------------------------------------------------------
# National distribution


def test_it_stores_a_national_distribution_with_orebro_share(users):
    dist = services.save_national_distribution(
        users["analyst"],
        name="2025",
        total="496 000 000",
        population_file=POPULATION_TEXT,
        reference_date="2024-12-31",
        source_name="population_lan_2024-12-31.csv",
    )
    assert sum(r["amount"] for r in dist.rows) == 496_000_000
    orebro = dist.row_for("18")
    assert orebro["amount"] == 14_446_372
    assert orebro["share_percent"] == "2.9126"
    assert dist.national_population == 10_587_710
    assert ChangeRecord.objects.filter(object_type="grants.nationaldistribution").count() == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (POPULATION_TEXT.replace("18,308375\n", ""), "missing"),
        (POPULATION_TEXT + "18,1\n", "more than once"),
        (POPULATION_TEXT.replace("18,308375", "18,-308375"), "negative"),
        (POPULATION_TEXT.replace("18,308375", "18,många"), "not a number"),
    ],
)
def test_it_refuses_a_bad_population_file_and_stores_nothing(users, text, message):
    before = counts()
    with pytest.raises(PopulationFileError) as info:
        services.save_national_distribution(
            users["analyst"],
            name="x",
            total=496_000_000,
            population_file=text,
            reference_date="2024-12-31",
        )
    assert message in " ".join(services.describe_error(info.value))
    assert counts() == before


def test_it_refuses_a_national_total_with_ore(users):
    before = counts()
    with pytest.raises(AllocationError) as info:
        services.save_national_distribution(
            users["analyst"],
            name="x",
            total="496000000,50",
            population_file=POPULATION_TEXT,
            reference_date="2024-12-31",
        )
    assert "not a whole number of kronor" in services.describe_error(info.value)[0]
    assert counts() == before


# --------------------------------------------------------------------------------------------
# Plans


def test_it_computes_a_draft_plan_by_listed_patients(users, grant, listings):
    plan = services.create_plan(users["analyst"], grant, plan_spec())
    assert plan.status == PlanStatus.DRAFT
    assert plan.version == 1
    central = plan.central_items.get()
    assert (central.name, central.amount, central.category.code) == (
        "Utbildning",
        150_000,
        "utbildning",
    )
    amounts = {a.unit.hsa_id: (a.listed, a.amount, a.per_listed) for a in plan.unit_amounts.all()}
    # unit_c closed at the end of 2024, so it is not in the plan
    assert amounts == {
        "SE2321000016-A001": (6_000, 510_000, Decimal("85.00")),
        "SE5566778899-B002": (4_000, 340_000, Decimal("85.00")),
    }
    preview = services.preview_plan(plan)
    assert preview.balanced
    assert preview.total == 1_000_000
    assert preview.previous is None


def test_it_weights_by_need_index_and_by_age_and_sex(users, grant, listings):
    spec = plan_spec(
        weighting="need_index", need_index="SE2321000016-A001;1.0\nSE5566778899-B002;1,5"
    )
    plan = services.create_plan(users["analyst"], grant, spec)
    amounts = {a.unit.hsa_id: a.amount for a in plan.unit_amounts.all()}
    assert amounts == {"SE2321000016-A001": 425_000, "SE5566778899-B002": 425_000}
    spec = plan_spec(weighting="age_sex", age_sex_weights="K;25-29;2\nM;25-29;1")
    services.update_plan(users["analyst"], plan, spec)
    # a: 3000*2 + 3000 = 9000; b: 2500*2 + 1500 = 6500 -> 850 000 * 9000/15500
    amounts = {a.unit.hsa_id: a.amount for a in plan.unit_amounts.all()}
    assert amounts == {"SE2321000016-A001": 493_548, "SE5566778899-B002": 356_452}


def test_it_refuses_a_need_index_missing_a_unit(users, grant, listings):
    before = counts()
    spec = plan_spec(weighting="need_index", need_index="SE2321000016-A001;1.0")
    with pytest.raises(services.GrantError) as info:
        services.create_plan(users["analyst"], grant, spec)
    assert "SE5566778899-B002" in info.value.message
    assert counts() == before


def test_it_refuses_a_reference_month_without_listings(users, grant, listings):
    before = counts()
    with pytest.raises(services.GrantError) as info:
        services.create_plan(users["analyst"], grant, plan_spec(reference_month="2025-03"))
    assert info.value.code == "no_listings"
    assert "2025-03" in info.value.message
    assert "2025-10" in info.value.message
    assert counts() == before


def test_it_refuses_floors_that_cannot_be_met_with_a_clear_message(users, grant, listings):
    before = counts()
    with pytest.raises(AllocationError) as info:
        services.create_plan(users["analyst"], grant, plan_spec(floor="500 000"))
    assert info.value.code == "floors_exceed_total"
    message = services.describe_error(info.value)[0]
    assert "1\xa0000\xa0000\xa0kr" in message
    assert "850\xa0000\xa0kr" in message
    with pytest.raises(AllocationError) as info:
        services.create_plan(users["analyst"], grant, plan_spec(cap="100 000"))
    assert info.value.code == "caps_below_total"
    assert counts() == before


def test_it_applies_floors_and_caps(users, grant, listings):
    plan = services.create_plan(users["analyst"], grant, plan_spec(cap="450000"))
    amounts = sorted(plan.unit_amounts.values_list("amount", flat=True))
    assert amounts == [400_000, 450_000]


def test_it_refuses_bad_plan_input_listing_every_problem(users, grant, listings):
    with pytest.raises(services.GrantError) as info:
        services.plan_input_from_values(
            {
                "reference_month": "oktober",
                "central_items": [
                    {"name": "Utbildning", "amount": "-5"},
                    {"name": "Samordning", "amount": "10", "percent": "5"},
                ],
                "floor": "12,50",
            }
        )
    assert len(info.value.errors) == 4


def test_a_decided_plan_cannot_be_edited(users, grant, decided_plan):
    before = counts()
    assert decided_plan.status == PlanStatus.DECIDED
    assert decided_plan.decision.dnr == "RS 2025-100"
    with pytest.raises(services.GrantError) as info:
        services.update_plan(users["analyst"], decided_plan, plan_spec(cap="450000"))
    assert info.value.code == "plan_frozen"
    with pytest.raises(services.GrantError):
        services.decide_plan(users["analyst"], decided_plan, dnr="RS 2")
    # The models refuse too, whoever calls them.
    decided_plan.floor = 1
    with pytest.raises(FrozenError):
        decided_plan.save()
    amount = decided_plan.unit_amounts.first()
    amount.amount = 1
    with pytest.raises(FrozenError):
        amount.save()
    with pytest.raises(FrozenError):
        decided_plan.central_items.first().delete()
    assert counts() == before
    assert sum(decided_plan.unit_amounts.values_list("amount", flat=True)) == 850_000


def test_a_new_version_supersedes_with_a_reason_and_shows_the_difference(
    users, grant, decided_plan, unit_a
):
    draft = services.create_plan(users["analyst"], grant, plan_spec(cap="450000"))
    assert draft.version == 2
    preview = services.preview_plan(draft)
    assert preview.previous == decided_plan
    diffs = {r.unit.hsa_id: (r.previous, r.amount, r.diff) for r in preview.rows}
    assert diffs["SE2321000016-A001"] == (510_000, 450_000, -60_000)
    assert diffs["SE5566778899-B002"] == (340_000, 400_000, 60_000)
    with pytest.raises(services.GrantError) as info:
        services.decide_plan(users["analyst"], draft, dnr="RS 2025-200")
    assert info.value.code == "reason_required"
    services.decide_plan(users["analyst"], draft, dnr="RS 2025-200", reason="Tak per enhet")
    decided_plan.refresh_from_db()
    assert decided_plan.status == PlanStatus.SUPERSEDED
    assert decided_plan.latest_decision.reason == "Tak per enhet"
    assert grant.decided_plan() == draft
    assert services.preview_plan(draft).previous == decided_plan


def test_plans_are_only_for_the_analyst(users, grant, listings):
    for persona in ("manager", "admin", "auditor", "viewer"):
        with pytest.raises(PermissionDenied):
            services.create_plan(users[persona], grant, plan_spec())
    assert not grant.plans.exists()


# --------------------------------------------------------------------------------------------
# Accounts


def test_a_unit_manager_accounts_for_own_unit(users, grant, decided_plan, unit_a):
    account = services.save_account(
        users["manager"], grant, unit_a, lines=lines(), comment="Bra år"
    )
    assert account.status == AccountStatus.DRAFT
    assert account.used_total == 300_000
    event = services.submit_account(
        users["manager"], account, at=datetime(2026, 1, 20, 12, tzinfo=UTC)
    )
    assert event.late is False
    assert event.snapshot["used_total"] == 300_000
    account.refresh_from_db()
    assert account.status == AccountStatus.SUBMITTED
    with pytest.raises(services.GrantError) as info:
        services.save_account(users["manager"], grant, unit_a, lines=lines(1))
    assert info.value.code == "account_locked"


def test_a_unit_manager_cannot_report_for_another_unit(users, grant, decided_plan, unit_b):
    before = counts()
    with pytest.raises(PermissionDenied):
        services.save_account(users["manager"], grant, unit_b, lines=lines())
    account = services.save_account(users["colleague"], grant, unit_b, lines=lines())
    before = counts()
    with pytest.raises(PermissionDenied):
        services.submit_account(users["manager"], account)
    with pytest.raises(PermissionDenied):
        services.add_attachment(
            users["manager"], grant, unit_b, SimpleUploadedFile("a.txt", b"hej", "text/plain")
        )
    with pytest.raises(PermissionDenied):
        services.approve_account(users["manager"], account)
    assert counts() == before


@pytest.mark.parametrize(
    ("bad_lines", "fragment"),
    [
        (lines(-1), "negative"),
        (lines("12,50"), "whole number of kronor"),
        (lines(psykolog="tusen"), "whole number of kronor"),
        ({"tandvard": {"used": 10}}, "not a category of this grant"),
        ({"psykolog": {"used": 1, "fte_added": "-0.5"}}, "negative"),
    ],
)
def test_it_refuses_a_bad_account_and_changes_nothing(
    users, grant, decided_plan, unit_a, bad_lines, fragment
):
    services.save_account(users["manager"], grant, unit_a, lines=lines(100))
    before = counts()
    with pytest.raises(services.GrantError) as info:
        services.save_account(users["manager"], grant, unit_a, lines=bad_lines)
    assert fragment in " ".join(info.value.errors)
    assert counts() == before
    assert AccountLine.objects.get().used == 100


def test_it_refuses_a_category_the_grant_does_not_allow(users, grant, decided_plan, unit_a):
    rows = [
        {"code": c.code, "name": c.name, "allowed": c.code != "ovrigt"}
        for c in grant.categories.all()
    ]
    services.set_categories(users["analyst"], grant, rows)
    before = counts()
    with pytest.raises(services.GrantError) as info:
        services.save_account(users["manager"], grant, unit_a, lines={"ovrigt": {"used": 5}})
    assert "does not allow the category “Övrigt”" in info.value.message
    assert counts() == before


def test_a_submission_after_the_deadline_is_accepted_and_marked_late(
    users, grant, decided_plan, unit_a
):
    account = services.save_account(users["manager"], grant, unit_a, lines=lines())
    event = services.submit_account(
        users["manager"], account, at=datetime(2026, 2, 3, 9, tzinfo=UTC)
    )
    assert event.late is True
    account.refresh_from_db()
    assert account.status == AccountStatus.SUBMITTED
    change = ChangeRecord.objects.filter(object_type="grants.unitaccount").first()
    assert "deadline" in change.note


def test_the_analyst_returns_and_approves(users, grant, decided_plan, unit_a):
    account = services.save_account(users["manager"], grant, unit_a, lines=lines())
    services.submit_account(users["manager"], account)
    with pytest.raises(services.GrantError):
        services.return_account(users["analyst"], account, "")
    services.return_account(users["analyst"], account, "Ange antal personer")
    account.refresh_from_db()
    assert account.status == AccountStatus.RETURNED
    assert account.editable
    services.save_account(users["manager"], grant, unit_a, lines=lines(310_000))
    services.submit_account(users["manager"], account)
    services.approve_account(users["analyst"], account)
    account.refresh_from_db()
    assert account.status == AccountStatus.APPROVED
    kinds = list(account.events.values_list("kind", flat=True))
    assert kinds == ["saved", "submitted", "returned", "saved", "submitted", "approved"]
    with pytest.raises(services.GrantError):
        services.approve_account(users["analyst"], account)


def test_a_unit_without_an_allocation_cannot_account(users, grant, listings, unit_a):
    with pytest.raises(services.GrantError) as info:
        services.save_account(users["manager"], grant, unit_a, lines=lines())
    assert info.value.code == "no_allocation"


def test_attachments_are_checked(users, grant, decided_plan, unit_a):
    ok = services.add_attachment(
        users["manager"], grant, unit_a, SimpleUploadedFile("underlag.pdf", b"%PDF-1.4 x")
    )
    assert ok.size == 10
    assert ok.content_type == "application/pdf"
    for upload in (
        SimpleUploadedFile("virus.exe", b"MZ"),
        SimpleUploadedFile("fake.pdf", b"not a pdf"),
        SimpleUploadedFile("empty.txt", b""),
    ):
        with pytest.raises(services.GrantError):
            services.add_attachment(users["manager"], grant, unit_a, upload)
    assert ok.account.attachments.count() == 1
    services.remove_attachment(users["manager"], ok)
    assert not ok.account.attachments.exists()


# --------------------------------------------------------------------------------------------
# Repayment and report


def _account(users, grant, unit, persona, used, approve=True):
    account = services.save_account(users[persona], grant, unit, lines=lines(used))
    services.submit_account(users[persona], account)
    if approve:
        services.approve_account(users["analyst"], account)
    return account


def test_repayment_flags_over_use_and_never_nets_it(users, grant, decided_plan, unit_a, unit_b):
    _account(users, grant, unit_a, "manager", 600_000)  # allocated 510 000: over by 90 000
    _account(users, grant, unit_b, "colleague", 300_000)  # allocated 340 000: 40 000 unused
    services.save_central_spending(
        users["analyst"], grant, [{"name": "Utbildning", "used": "120 000", "persons": 40}]
    )
    repayment, _facts = services.repayment_of(grant)
    assert repayment.units_repay == 40_000
    assert repayment.over_use_total == 90_000
    assert repayment.central_repay == 30_000
    assert repayment.total_repay == 70_000  # not 40 000 + 30 000 − 90 000
    assert [line.key for line in repayment.over_using_units] == [unit_a.pk]


def test_unapproved_accounts_count_as_nothing_used(users, grant, decided_plan, unit_a):
    _account(users, grant, unit_a, "manager", 100_000, approve=False)
    repayment, facts = services.repayment_of(grant)
    assert repayment.units_used == 0
    assert facts[unit_a.pk]["pending_used"] == 100_000
    assert repayment.total_repay == 1_000_000


def test_a_submitted_report_does_not_change_when_data_changes(
    users, grant, decided_plan, unit_a, unit_b
):
    account = _account(users, grant, unit_a, "manager", 400_000)
    report = services.start_report(users["analyst"], grant)
    with pytest.raises(services.GrantError) as info:
        services.submit_report(users["analyst"], report)
    assert info.value.code == "perspectives_required"
    services.update_report(
        users["analyst"],
        report,
        gender_equality="Analys per kön",
        childrens_rights="Barn",
        disability="Tillgänglighet",
        measures_summary="Psykologer anställda",
    )
    services.submit_report(users["analyst"], report)
    report.refresh_from_db()
    frozen = report.snapshot
    assert frozen["units_used"] == 400_000
    assert frozen["repayment"]["total"] == 1_000_000 - 400_000 - 0

    # Data change afterwards: the account is returned and corrected, another unit reports.
    services.return_account(users["analyst"], account, "Fel belopp")
    services.save_account(users["manager"], grant, unit_a, lines=lines(450_000))
    services.submit_account(users["manager"], account)
    services.approve_account(users["analyst"], account)
    _account(users, grant, unit_b, "colleague", 100_000)
    report.refresh_from_db()
    assert report.snapshot == frozen
    assert services.report_data(report)["units_used"] == 400_000
    with pytest.raises(services.GrantError):
        services.update_report(users["analyst"], report, disability="ändrat")
    report.disability = "ändrat"
    with pytest.raises(FrozenError):
        report.save()

    # A correction is a new version, showing what changed.
    correction = services.start_report(users["analyst"], grant, correction_reason="Rättelse")
    assert correction.version == 2
    assert correction.disability == "Tillgänglighet"
    changes = {
        c.key: (c.previous, c.current)
        for c in services.diff_reports(frozen, services.report_data(correction))
    }
    assert changes["units_used"] == (400_000, 550_000)
    assert changes["unit:SE2321000016-A001:used"] == (400_000, 450_000)
    assert "text:disability" not in changes


def test_the_report_adds_up_categories_and_perspectives(users, grant, decided_plan, unit_a):
    _account(users, grant, unit_a, "manager", 200_000)
    services.save_central_spending(
        users["analyst"],
        grant,
        [
            {
                "name": "Utbildning",
                "used": 150_000,
                "persons": 35,
                "fte_added": "0",
                "measures": "Utbildning i KBT för alla vårdcentraler",
            }
        ],
    )
    data = services.build_report_data(grant)
    cats = {c["code"]: c for c in data["categories"]}
    assert cats["psykolog"]["used"] == 200_000
    assert cats["psykolog"]["fte"] == "0.80"
    assert cats["utbildning"]["central_used"] == 150_000
    assert data["persons_total"] == 36
    assert data["received"] == 1_000_000
    assert data["central_used"] == 150_000
    assert data["repayment"]["total"] == 1_000_000 - 200_000 - 150_000
    assert data["repayment"]["deadline"] == "2026-03-31"
    assert {m["text"] for m in data["measures"]} >= {"Anställt en psykolog"}


def test_reporting_moves_a_grant_in_accounting_to_reported(users, grant, decided_plan):
    services.transition(users["analyst"], grant, GrantState.PAID)
    services.transition(users["analyst"], grant, GrantState.ACCOUNTING)
    report = services.start_report(users["analyst"], grant)
    services.update_report(
        users["analyst"], report, gender_equality="a", childrens_rights="b", disability="c"
    )
    services.submit_report(users["analyst"], report)
    grant.refresh_from_db()
    assert grant.state == GrantState.REPORTED
    services.transition(users["analyst"], grant, GrantState.CLOSED)


def test_a_plan_listing_units_without_listings_still_balances(users, grant, unit_a, unit_b):
    add_listings(unit_a, "2025-10", 10, 0)
    plan = services.create_plan(users["analyst"], grant, plan_spec(floor="1000"))
    amounts = {a.unit.hsa_id: a.amount for a in plan.unit_amounts.all()}
    assert amounts["SE5566778899-B002"] == 1000
    assert sum(amounts.values()) + 150_000 == 1_000_000
