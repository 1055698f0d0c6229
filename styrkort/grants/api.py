"""The state grants' API: register, national distribution, plans, accounts, repayment, report.

Same access rules as the pages (objects through :mod:`styrkort.grants.queries`, writes through
:mod:`styrkort.grants.services`): a unit manager sees and reports only for own units. Amounts
are whole kronor as integers (or text such as "14 446 372"); a float is refused. A refusal
answers 400 with ``detail`` and ``errors`` (every problem found) and changes nothing.

No ``from __future__ import annotations`` here: django-ninja reads the annotations at import.
"""

import functools
from datetime import date, datetime
from typing import Any

from django.http import HttpResponse
from django.utils.translation import gettext as _
from ninja import File, Router, Schema, Status
from ninja.files import UploadedFile
from pydantic import StrictInt

from styrkort.accounts import access
from styrkort.accounts.models import Membership, Role
from styrkort.grants import exports, queries, services
from styrkort.grants.allocation import AllocationError
from styrkort.grants.models import (
    AccountStatus,
    Grant,
    NationalDistribution,
    PlanStatus,
    StateReport,
)
from styrkort.grants.population import PopulationFileError

router = Router()

REFUSALS = (services.GrantError, AllocationError, PopulationFileError)
Amount = StrictInt | str


class GrantErrorOut(Schema):
    detail: str
    errors: list[str]


def refusals(view):
    """Answer 400 with every message when a service refuses (nothing has changed)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        except REFUSALS as exc:
            errors = services.describe_error(exc)
            return Status(400, {"detail": errors[0] if errors else str(exc), "errors": errors})

    return wrapper


def _grant(request, grant_id: int) -> Grant:
    return queries.get_grant(request.auth, grant_id)


# --- national distribution -----------------------------------------------------------------


class DistributionRowOut(Schema):
    lan_code: str
    lan_name: str
    population: int
    amount: int
    share_percent: str


class DistributionOut(Schema):
    id: int | None
    name: str
    total: int
    reference_date: date | None
    source_name: str
    rows: list[DistributionRowOut]


class DistributionIn(Schema):
    name: str
    total: Amount
    reference_date: date
    population_csv: str
    source_name: str = ""


class DistributionPreviewIn(Schema):
    total: Amount
    population_csv: str


def _dist_out(dist: NationalDistribution) -> dict:
    return {
        "id": dist.pk,
        "name": dist.name,
        "total": dist.total,
        "reference_date": dist.reference_date,
        "source_name": dist.source_name,
        "rows": dist.rows,
    }


@router.get(
    "/national-distributions",
    response=list[DistributionOut],
    summary="Stored national distributions",
)
def list_distributions(request):
    access.require(request.auth, "view")
    return [_dist_out(d) for d in queries.visible_distributions(request.auth)]


@router.post(
    "/national-distributions/preview",
    response={200: DistributionOut, 400: GrantErrorOut},
    summary="Split a national total by a population file, without saving",
)
@refusals
def preview_distribution(request, payload: DistributionPreviewIn):
    access.require(request.auth, "manage_grants")
    text = payload.population_csv
    preview = services.preview_national_distribution(payload.total, text.encode("utf-8"))
    return Status(
        200,
        {
            "id": None,
            "name": "",
            "total": preview.total,
            "reference_date": None,
            "source_name": "",
            "rows": preview.rows,
        },
    )


@router.post(
    "/national-distributions",
    response={201: DistributionOut, 400: GrantErrorOut},
    summary="Split a national total by SCB's population per county and save it",
)
@refusals
def create_distribution(request, payload: DistributionIn):
    dist = services.save_national_distribution(
        request.auth,
        name=payload.name,
        total=payload.total,
        population_file=payload.population_csv.encode("utf-8"),
        reference_date=payload.reference_date,
        source_name=payload.source_name,
    )
    return Status(201, _dist_out(dist))


@router.get(
    "/national-distributions/{distribution_id}",
    response=DistributionOut,
    summary="A stored national distribution",
)
def get_distribution(request, distribution_id: int):
    access.require(request.auth, "view")
    return _dist_out(queries.get_distribution(request.auth, distribution_id))


# --- register ------------------------------------------------------------------------------


class GrantCategoryIO(Schema):
    code: str
    name: str
    allowed: bool = True


class GrantTransitionOut(Schema):
    state: str
    at: datetime
    by: str | None
    note: str


class GrantOut(Schema):
    id: int
    name: str
    dnr: str
    authority: str
    total: int
    national_total: int | None
    first_year: int
    last_year: int
    accounts_deadline: date
    report_deadline: date
    repayment_deadline: date
    state: str | None
    national_distribution_id: int | None


class GrantDetailOut(GrantOut):
    purpose: str
    conditions: str
    categories: list[GrantCategoryIO]
    transitions: list[GrantTransitionOut]
    plan_in_force: int | None


class GrantIn(Schema):
    name: str
    total: Amount
    first_year: int
    last_year: int | None = None
    accounts_deadline: date
    report_deadline: date
    repayment_deadline: date
    dnr: str = ""
    authority: str = "Socialstyrelsen"
    purpose: str = ""
    conditions: str = ""
    national_total: Amount | None = None
    national_distribution_id: int | None = None


class GrantPatch(Schema):
    name: str | None = None
    total: Amount | None = None
    first_year: int | None = None
    last_year: int | None = None
    accounts_deadline: date | None = None
    report_deadline: date | None = None
    repayment_deadline: date | None = None
    dnr: str | None = None
    authority: str | None = None
    purpose: str | None = None
    conditions: str | None = None
    national_total: Amount | None = None


class GrantTransitionIn(Schema):
    state: str
    note: str = ""


def _grant_out(grant: Grant) -> dict:
    return {
        "id": grant.pk,
        "name": grant.name,
        "dnr": grant.dnr,
        "authority": grant.authority,
        "total": grant.total,
        "national_total": grant.national_total,
        "first_year": grant.first_year,
        "last_year": grant.last_year,
        "accounts_deadline": grant.accounts_deadline,
        "report_deadline": grant.report_deadline,
        "repayment_deadline": grant.repayment_deadline,
        "state": grant.state,
        "national_distribution_id": grant.national_distribution_id,
    }


def _grant_detail(grant: Grant) -> dict:
    plan = grant.decided_plan()
    return {
        **_grant_out(grant),
        "purpose": grant.purpose,
        "conditions": grant.conditions,
        "categories": [
            {"code": c.code, "name": c.name, "allowed": c.allowed} for c in grant.categories.all()
        ],
        "transitions": [
            {"state": t.state, "at": t.at, "by": t.by.username if t.by else None, "note": t.note}
            for t in grant.transitions.select_related("by")
        ],
        "plan_in_force": plan.pk if plan else None,
    }


@router.get("", response=list[GrantOut], summary="The region's state grants")
def list_grants(request):
    access.require(request.auth, "view")
    return [_grant_out(g) for g in queries.visible_grants(request.auth)]


@router.post(
    "", response={201: GrantDetailOut, 400: GrantErrorOut}, summary="Register a grant (analyst)"
)
@refusals
def create_grant(request, payload: GrantIn):
    data = payload.dict()
    dist_id = data.pop("national_distribution_id")
    dist = queries.get_distribution(request.auth, dist_id) if dist_id else None
    grant = services.create_grant(request.auth, national_distribution=dist, **data)
    return Status(201, _grant_detail(grant))


@router.get("/{grant_id}", response=GrantDetailOut, summary="A grant with its state history")
def get_grant(request, grant_id: int):
    return _grant_detail(_grant(request, grant_id))


@router.patch(
    "/{grant_id}", response={200: GrantDetailOut, 400: GrantErrorOut}, summary="Change a grant"
)
@refusals
def update_grant(request, grant_id: int, payload: GrantPatch):
    access.require(request.auth, "manage_grants")
    grant = _grant(request, grant_id)
    changes = payload.dict(exclude_unset=True)
    grant = services.update_grant(request.auth, grant, **changes)
    return Status(200, _grant_detail(grant))


@router.put(
    "/{grant_id}/categories",
    response={200: list[GrantCategoryIO], 400: GrantErrorOut},
    summary="Set the cost categories (missing ones are disallowed, never deleted)",
)
@refusals
def set_categories(request, grant_id: int, payload: list[GrantCategoryIO]):
    access.require(request.auth, "manage_grants")
    grant = _grant(request, grant_id)
    rows = services.set_categories(request.auth, grant, [c.dict() for c in payload])
    return Status(200, [{"code": c.code, "name": c.name, "allowed": c.allowed} for c in rows])


@router.post(
    "/{grant_id}/transitions",
    response={200: GrantDetailOut, 400: GrantErrorOut},
    summary="Move the grant to its next state",
)
@refusals
def transition(request, grant_id: int, payload: GrantTransitionIn):
    access.require(request.auth, "manage_grants")
    grant = _grant(request, grant_id)
    services.transition(request.auth, grant, payload.state, payload.note)
    return Status(200, _grant_detail(grant))


# --- plans ---------------------------------------------------------------------------------


class PlanCentralItemIn(Schema):
    name: str
    amount: Amount | None = None
    percent: str | None = None
    share: str | None = None
    category: str | None = None


class PlanIn(Schema):
    reference_month: str
    weighting: str = "none"
    central_items: list[PlanCentralItemIn] = []
    need_index: dict[str, str] = {}
    age_sex_weights: dict[str, str] = {}
    floor: Amount | None = None
    cap: Amount | None = None
    note: str = ""


class PlanCentralOut(Schema):
    name: str
    category: str | None
    fixed_amount: int | None
    share: str | None
    amount: int


class UnitAmountOut(Schema):
    unit_id: int
    hsa_id: str
    name: str
    listed: int
    weight: str
    amount: int | None
    per_listed: str | None
    previous: int | None
    diff: int


class PlanSummaryOut(Schema):
    id: int
    version: int
    status: str
    reference_month: str
    region_total: int


class PlanOut(PlanSummaryOut):
    weighting: str
    floor: int | None
    cap: int | None
    note: str
    dnr: str | None
    decided_by: str | None
    decided_at: datetime | None
    superseded_reason: str | None
    previous_version: int | None
    balanced: bool
    central: list[PlanCentralOut]
    units: list[UnitAmountOut]


class PlanDecideIn(Schema):
    dnr: str
    reason: str = ""


def _plan_summary(plan) -> dict:
    return {
        "id": plan.pk,
        "version": plan.version,
        "status": plan.status,
        "reference_month": plan.reference_month,
        "region_total": plan.region_total,
    }


def _plan_out(plan) -> dict:
    preview = services.preview_plan(plan)
    decision = plan.decision
    latest = plan.latest_decision
    return {
        **_plan_summary(plan),
        "weighting": plan.weighting,
        "floor": plan.floor,
        "cap": plan.cap,
        "note": plan.note,
        "dnr": decision.dnr if decision else None,
        "decided_by": decision.by.username if decision and decision.by else None,
        "decided_at": decision.at if decision else None,
        "superseded_reason": latest.reason
        if latest and latest.kind == PlanStatus.SUPERSEDED
        else None,
        "previous_version": preview.previous.version if preview.previous else None,
        "balanced": preview.balanced,
        "central": [
            {
                "name": i.name,
                "category": i.category.code if i.category else None,
                "fixed_amount": i.fixed_amount,
                "share": str(i.share) if i.share is not None else None,
                "amount": i.amount,
            }
            for i in preview.central
        ],
        "units": [
            {
                "unit_id": r.unit.pk,
                "hsa_id": r.unit.hsa_id,
                "name": r.unit.name,
                "listed": r.listed,
                "weight": str(r.weight),
                "amount": r.amount,
                "per_listed": str(r.per_listed) if r.per_listed is not None else None,
                "previous": r.previous,
                "diff": r.diff,
            }
            for r in preview.rows
        ],
    }


def _plan_values(payload: PlanIn) -> dict[str, Any]:
    return payload.dict()


@router.get(
    "/{grant_id}/plans",
    response=list[PlanSummaryOut],
    summary="Plan versions (drafts only for analysts, admins and auditors)",
)
def list_plans(request, grant_id: int):
    grant = _grant(request, grant_id)
    return [_plan_summary(p) for p in queries.visible_plans(request.auth, grant)]


@router.post(
    "/{grant_id}/plans",
    response={201: PlanOut, 400: GrantErrorOut},
    summary="Compute and save a new draft plan version",
)
@refusals
def create_plan(request, grant_id: int, payload: PlanIn):
    access.require(request.auth, "manage_grants")
    grant = _grant(request, grant_id)
    spec = services.plan_input_from_values(_plan_values(payload))
    return Status(201, _plan_out(services.create_plan(request.auth, grant, spec)))


@router.get(
    "/{grant_id}/plans/{plan_id}",
    response=PlanOut,
    summary="A plan: each unit's amount, per listed patient, and the change from the previous "
    "version",
)
def get_plan(request, grant_id: int, plan_id: int):
    grant = _grant(request, grant_id)
    return _plan_out(queries.get_plan(request.auth, grant, plan_id))


@router.patch(
    "/{grant_id}/plans/{plan_id}",
    response={200: PlanOut, 400: GrantErrorOut},
    summary="Recompute a draft with new parameters (a decided plan is refused)",
)
@refusals
def update_plan(request, grant_id: int, plan_id: int, payload: PlanIn):
    access.require(request.auth, "manage_grants")
    grant = _grant(request, grant_id)
    plan = queries.get_plan(request.auth, grant, plan_id)
    spec = services.plan_input_from_values(_plan_values(payload))
    return Status(200, _plan_out(services.update_plan(request.auth, plan, spec)))


@router.post(
    "/{grant_id}/plans/{plan_id}/decide",
    response={200: PlanOut, 400: GrantErrorOut},
    summary="Decide a draft (Dnr; a reason when it supersedes the plan in force)",
)
@refusals
def decide_plan(request, grant_id: int, plan_id: int, payload: PlanDecideIn):
    access.require(request.auth, "manage_grants")
    grant = _grant(request, grant_id)
    plan = queries.get_plan(request.auth, grant, plan_id)
    services.decide_plan(request.auth, plan, dnr=payload.dnr, reason=payload.reason)
    plan.refresh_from_db()
    return Status(200, _plan_out(plan))


# --- accounts ------------------------------------------------------------------------------


class AccountLineIn(Schema):
    used: Amount | None = None
    persons: StrictInt | str | None = None
    fte_added: str | None = None
    measures: str = ""


class AccountIn(Schema):
    lines: dict[str, AccountLineIn]
    comment: str | None = None


class ReviewCommentIn(Schema):
    comment: str = ""


class AccountLineOut(Schema):
    category: str
    name: str
    used: int
    persons: int
    fte_added: str
    measures: str


class AccountEventOut(Schema):
    kind: str
    at: datetime
    by: str | None
    comment: str
    late: bool


class AccountAttachmentOut(Schema):
    id: int
    name: str
    size: int
    content_type: str


class AccountSummaryOut(Schema):
    unit_id: int
    hsa_id: str
    unit: str
    allocated: int | None
    status: str
    late: bool
    submitted_at: datetime | None
    used_total: int


class AccountOut(AccountSummaryOut):
    comment: str
    lines: list[AccountLineOut]
    events: list[AccountEventOut]
    attachments: list[AccountAttachmentOut]


class UnitManagerOut(Schema):
    username: str
    name: str
    email: str


class MissingAccountOut(Schema):
    unit_id: int
    hsa_id: str
    unit: str
    status: str
    managers: list[UnitManagerOut]


def _account_out(grant, unit, *, full: bool = True) -> dict:
    account = queries.account_of(grant, unit)
    submission = account.submission if account else None
    out = {
        "unit_id": unit.pk,
        "hsa_id": unit.hsa_id,
        "unit": unit.name,
        "allocated": services.allocated_to(grant, unit),
        "status": account.status if account else AccountStatus.NOT_STARTED.value,
        "late": bool(submission and submission.late),
        "submitted_at": submission.at if submission else None,
        "used_total": account.used_total if account else 0,
    }
    if full:
        out.update(
            {
                "comment": account.comment if account else "",
                "lines": [
                    {
                        "category": line.category.code,
                        "name": line.category.name,
                        "used": line.used,
                        "persons": line.persons,
                        "fte_added": str(line.fte_added),
                        "measures": line.measures,
                    }
                    for line in account.lines.select_related("category")
                ]
                if account
                else [],
                "events": [
                    {
                        "kind": e.kind,
                        "at": e.at,
                        "by": e.by.username if e.by else None,
                        "comment": e.comment,
                        "late": e.late,
                    }
                    for e in account.events.select_related("by")
                ]
                if account
                else [],
                "attachments": [
                    {"id": a.pk, "name": a.name, "size": a.size, "content_type": a.content_type}
                    for a in account.attachments.all()
                ]
                if account
                else [],
            }
        )
    return out


@router.get(
    "/{grant_id}/accounts",
    response=list[AccountSummaryOut],
    summary="Accounts of use: every unit for reviewers, own units for a unit manager",
)
def list_accounts(request, grant_id: int):
    grant = _grant(request, grant_id)
    visible = queries.account_units(request.auth, grant)
    if not visible.exists():
        access.require(request.auth, "review_grants")  # 403 for roles that see no accounts
    units = visible.filter(pk__in=queries.plan_units(grant)).order_by("name")
    return [_account_out(grant, u, full=False) for u in units]


@router.get(
    "/{grant_id}/accounts/missing",
    response=list[MissingAccountOut],
    summary="Units that have not submitted, with their managers (for a reminder)",
)
def missing_accounts(request, grant_id: int):
    access.require(request.auth, "review_grants")
    grant = _grant(request, grant_id)
    _repayment, facts = services.repayment_of(grant)
    out = []
    for unit_id, info in facts.items():
        if info["status"] in (AccountStatus.SUBMITTED, AccountStatus.APPROVED):
            continue
        managers = Membership.objects.filter(role=Role.UNIT_MANAGER, units=info["unit"])
        out.append(
            {
                "unit_id": unit_id,
                "hsa_id": info["unit"].hsa_id,
                "unit": info["unit"].name,
                "status": str(info["status"]),
                "managers": [
                    {
                        "username": m.user.username,
                        "name": m.user.get_full_name(),
                        "email": m.user.email,
                    }
                    for m in managers.select_related("user").order_by("user__username")
                ],
            }
        )
    return out


@router.get(
    "/{grant_id}/accounts/{unit_id}",
    response=AccountOut,
    summary="A unit's account (own units only for a unit manager)",
)
def get_account(request, grant_id: int, unit_id: int):
    grant = _grant(request, grant_id)
    unit = queries.get_account_unit(request.auth, grant, unit_id)
    return _account_out(grant, unit)


@router.put(
    "/{grant_id}/accounts/{unit_id}",
    response={200: AccountOut, 400: GrantErrorOut},
    summary="Save a unit's account as a draft (lines replace all lines)",
)
@refusals
def save_account(request, grant_id: int, unit_id: int, payload: AccountIn):
    grant = _grant(request, grant_id)
    unit = queries.get_account_unit(request.auth, grant, unit_id)
    lines = {code: line.dict() for code, line in payload.lines.items()}
    services.save_account(request.auth, grant, unit, lines=lines, comment=payload.comment)
    return Status(200, _account_out(grant, unit))


def _existing_account(request, grant_id: int, unit_id: int):
    grant = _grant(request, grant_id)
    unit = queries.get_account_unit(request.auth, grant, unit_id)
    account = queries.account_of(grant, unit)
    if account is None:
        raise services.GrantError(
            "no_account", _("%(unit)s has not started its account.") % {"unit": unit.name}
        )
    return grant, unit, account


@router.post(
    "/{grant_id}/accounts/{unit_id}/submit",
    response={200: AccountOut, 400: GrantErrorOut},
    summary="Submit the account (after the deadline: accepted, marked late)",
)
@refusals
def submit_account(request, grant_id: int, unit_id: int):
    access.require(request.auth, "report_grant_use")
    grant, unit, account = _existing_account(request, grant_id, unit_id)
    services.submit_account(request.auth, account)
    return Status(200, _account_out(grant, unit))


@router.post(
    "/{grant_id}/accounts/{unit_id}/return",
    response={200: AccountOut, 400: GrantErrorOut},
    summary="Return a submitted account to the unit with a comment (analyst)",
)
@refusals
def return_account(request, grant_id: int, unit_id: int, payload: ReviewCommentIn):
    access.require(request.auth, "manage_grants")
    grant, unit, account = _existing_account(request, grant_id, unit_id)
    services.return_account(request.auth, account, payload.comment)
    return Status(200, _account_out(grant, unit))


@router.post(
    "/{grant_id}/accounts/{unit_id}/approve",
    response={200: AccountOut, 400: GrantErrorOut},
    summary="Approve a submitted account (analyst)",
)
@refusals
def approve_account(request, grant_id: int, unit_id: int, payload: ReviewCommentIn):
    access.require(request.auth, "manage_grants")
    grant, unit, account = _existing_account(request, grant_id, unit_id)
    services.approve_account(request.auth, account, payload.comment)
    return Status(200, _account_out(grant, unit))


@router.post(
    "/{grant_id}/accounts/{unit_id}/attachments",
    response={201: AccountAttachmentOut, 400: GrantErrorOut},
    summary="Attach a file to the account (multipart field 'file')",
)
@refusals
def add_attachment(request, grant_id: int, unit_id: int, file: UploadedFile | None = File(None)):  # noqa: B008
    access.require(request.auth, "report_grant_use")
    grant = _grant(request, grant_id)
    unit = queries.get_account_unit(request.auth, grant, unit_id)
    if file is None:
        raise services.GrantError("no_file", _("Send the file in the field 'file'."))
    a = services.add_attachment(request.auth, grant, unit, file)
    return Status(201, {"id": a.pk, "name": a.name, "size": a.size, "content_type": a.content_type})


# --- repayment -----------------------------------------------------------------------------


class RepayUnitOut(Schema):
    unit_id: int
    hsa_id: str
    name: str
    allocated: int
    used: int
    unused: int
    repay: int
    over_use: int
    status: str
    late: bool


class RepayCentralOut(Schema):
    name: str
    planned: int
    used: int
    unspent: int
    over_use: int


class RepaymentOut(Schema):
    grant_total: int
    units_allocated: int
    units_used: int
    units_repay: int
    central_used: int
    central_repay: int
    unallocated: int
    over_use_total: int
    total_repay: int
    deadline: date
    units: list[RepayUnitOut]
    central: list[RepayCentralOut]


class CentralSpendingIn(Schema):
    name: str
    used: Amount | None = None
    persons: StrictInt | str | None = None
    fte_added: str | None = None
    measures: str = ""


def _repayment_out(grant) -> dict:
    result, facts = services.repayment_of(grant)
    return {
        "grant_total": result.grant_total,
        "units_allocated": result.units_allocated,
        "units_used": result.units_used,
        "units_repay": result.units_repay,
        "central_used": result.central_used,
        "central_repay": result.central_repay,
        "unallocated": result.unallocated,
        "over_use_total": result.over_use_total,
        "total_repay": result.total_repay,
        "deadline": grant.repayment_deadline,
        "units": [
            {
                "unit_id": line.key,
                "hsa_id": facts[line.key]["unit"].hsa_id,
                "name": facts[line.key]["unit"].name,
                "allocated": line.allocated,
                "used": line.used,
                "unused": line.unused,
                "repay": line.repay,
                "over_use": line.over_use,
                "status": str(facts[line.key]["status"]),
                "late": facts[line.key]["late"],
            }
            for line in result.units
        ],
        "central": [
            {
                "name": line.key,
                "planned": line.allocated,
                "used": line.used,
                "unspent": line.repay,
                "over_use": line.over_use,
            }
            for line in result.central
        ],
    }


@router.get(
    "/{grant_id}/repayment",
    response=RepaymentOut,
    summary="Unused money per unit and central effort (over-use never netted) and the total",
)
def repayment(request, grant_id: int):
    access.require(request.auth, "review_grants")
    return _repayment_out(_grant(request, grant_id))


@router.put(
    "/{grant_id}/central-spending",
    response={200: RepaymentOut, 400: GrantErrorOut},
    summary="What the region spent on the central efforts (analyst)",
)
@refusals
def central_spending(request, grant_id: int, payload: list[CentralSpendingIn]):
    access.require(request.auth, "manage_grants")
    grant = _grant(request, grant_id)
    services.save_central_spending(request.auth, grant, [i.dict() for i in payload])
    return Status(200, _repayment_out(grant))


# --- report --------------------------------------------------------------------------------


class ReportSummaryOut(Schema):
    version: int
    submitted: bool
    submitted_at: datetime | None
    correction_reason: str


class ReportChangeOut(Schema):
    key: str
    label: str
    previous: Any
    current: Any


class ReportOut(ReportSummaryOut):
    submitted_by: str | None
    texts: dict[str, str]
    data: dict
    changes_since: int | None
    changes: list[ReportChangeOut]


class ReportStartIn(Schema):
    correction_reason: str = ""


class ReportTextsIn(Schema):
    measures_summary: str | None = None
    gender_equality: str | None = None
    childrens_rights: str | None = None
    disability: str | None = None
    other_comments: str | None = None


def _report_summary(report: StateReport) -> dict:
    return {
        "version": report.version,
        "submitted": report.is_submitted,
        "submitted_at": report.submitted_at,
        "correction_reason": report.correction_reason,
    }


def _report_out(report: StateReport) -> dict:
    data = services.report_data(report)
    previous = (
        StateReport.objects.filter(
            grant=report.grant, version__lt=report.version, submitted_at__isnull=False
        )
        .order_by("-version")
        .first()
    )
    changes = services.diff_reports(services.report_data(previous), data) if previous else []
    return {
        **_report_summary(report),
        "submitted_by": report.submitted_by.username if report.submitted_by else None,
        "texts": {f: getattr(report, f) for f in services.REPORT_TEXT_FIELDS},
        "data": data,
        "changes_since": previous.version if previous else None,
        "changes": [
            {"key": c.key, "label": c.label, "previous": c.previous, "current": c.current}
            for c in changes
        ],
    }


@router.get(
    "/{grant_id}/reports", response=list[ReportSummaryOut], summary="Versions of the report"
)
def list_reports(request, grant_id: int):
    access.require(request.auth, "view_grant_report")
    grant = _grant(request, grant_id)
    return [_report_summary(r) for r in grant.reports.order_by("version")]


@router.post(
    "/{grant_id}/reports",
    response={201: ReportOut, 400: GrantErrorOut},
    summary="Start the draft report, or a correcting version after a submitted one",
)
@refusals
def start_report(request, grant_id: int, payload: ReportStartIn):
    access.require(request.auth, "manage_grants")
    grant = _grant(request, grant_id)
    report = services.start_report(request.auth, grant, correction_reason=payload.correction_reason)
    return Status(201, _report_out(report))


@router.get(
    "/{grant_id}/reports/{version}",
    response=ReportOut,
    summary="A report version: frozen figures once submitted, and what changed",
)
def get_report(request, grant_id: int, version: int):
    grant = _grant(request, grant_id)
    return _report_out(queries.get_report(request.auth, grant, version))


@router.patch(
    "/{grant_id}/reports/{version}",
    response={200: ReportOut, 400: GrantErrorOut},
    summary="Change a draft report's texts",
)
@refusals
def update_report(request, grant_id: int, version: int, payload: ReportTextsIn):
    access.require(request.auth, "manage_grants")
    grant = _grant(request, grant_id)
    report = queries.get_report(request.auth, grant, version)
    texts = {k: v for k, v in payload.dict(exclude_unset=True).items() if v is not None}
    return Status(200, _report_out(services.update_report(request.auth, report, **texts)))


@router.post(
    "/{grant_id}/reports/{version}/submit",
    response={200: ReportOut, 400: GrantErrorOut},
    summary="Submit and freeze the report version",
)
@refusals
def submit_report(request, grant_id: int, version: int):
    access.require(request.auth, "manage_grants")
    grant = _grant(request, grant_id)
    report = queries.get_report(request.auth, grant, version)
    return Status(200, _report_out(services.submit_report(request.auth, report)))


@router.get("/{grant_id}/reports/{version}/pdf", summary="The report version as PDF")
def report_pdf(request, grant_id: int, version: int):
    grant = _grant(request, grant_id)
    report = queries.get_report(request.auth, grant, version)
    response = HttpResponse(exports.render_report_pdf(report), content_type="application/pdf")
    response["Content-Disposition"] = (
        f'attachment; filename="{exports.report_filename(report, "pdf")}"'
    )
    return response


@router.get("/{grant_id}/reports/{version}/xlsx", summary="The report version as XLSX")
def report_xlsx(request, grant_id: int, version: int):
    grant = _grant(request, grant_id)
    report = queries.get_report(request.auth, grant, version)
    response = HttpResponse(
        exports.render_report_xlsx(report),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    response["Content-Disposition"] = (
        f'attachment; filename="{exports.report_filename(report, "xlsx")}"'
    )
    return response
