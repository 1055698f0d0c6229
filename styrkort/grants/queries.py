"""Reading grants through the access rules: every page, endpoint and command gets its grants,
plans, accounts and reports here, scoped to the user's region (Http404 outside it) and, for a
unit manager, to own units.

Rights themselves are decided in :mod:`styrkort.accounts.access`; this module only applies them
to the grants' models.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from styrkort.accounts import access
from styrkort.grants.models import (
    AccountAttachment,
    AllocationPlan,
    Grant,
    NationalDistribution,
    PlanStatus,
    StateReport,
    UnitAccount,
)
from styrkort.organisation.models import CareUnit


def visible_grants(user) -> QuerySet[Grant]:
    """Grants of the user's region (every role may read the register)."""
    region = access.region_of(user)
    if region is None or not access.can(user, "view"):
        return Grant.objects.none()
    return Grant.objects.filter(region=region)


def get_grant(user, grant_id: int | str) -> Grant:
    """A grant of the user's region: PermissionDenied without a role, Http404 elsewhere."""
    access.require(user, "view")
    try:
        return visible_grants(user).select_related("region").get(pk=int(grant_id))
    except (Grant.DoesNotExist, ValueError, TypeError):
        raise Http404("no such grant")


def visible_distributions(user) -> QuerySet[NationalDistribution]:
    region = access.region_of(user)
    if region is None:
        return NationalDistribution.objects.none()
    return NationalDistribution.objects.filter(region=region)


def get_distribution(user, distribution_id: int | str) -> NationalDistribution:
    try:
        return visible_distributions(user).get(pk=int(distribution_id))
    except (NationalDistribution.DoesNotExist, ValueError, TypeError):
        raise Http404("no such distribution")


def visible_plans(user, grant: Grant) -> QuerySet[AllocationPlan]:
    """All versions for reviewers (analyst, admin, auditor); decided and superseded versions
    only for the others (a draft is the analyst's work in progress)."""
    plans = grant.plans.all()
    if access.can(user, "review_grants"):
        return plans
    return plans.filter(decisions__isnull=False).distinct()


def get_plan(user, grant: Grant, plan_id: int | str) -> AllocationPlan:
    try:
        return visible_plans(user, grant).get(pk=int(plan_id))
    except (AllocationPlan.DoesNotExist, ValueError, TypeError):
        raise Http404("no such plan")


def account_units(user, grant: Grant) -> QuerySet[CareUnit]:
    """Units whose accounts under this grant the user may see."""
    return access.grant_account_units(user).filter(region_id=grant.region_id)


def plan_units(grant: Grant) -> QuerySet[CareUnit]:
    """Units with an amount in the plan in force (the units that must account)."""
    plan = grant.decided_plan()
    if plan is None:
        return CareUnit.objects.none()
    return CareUnit.objects.filter(pk__in=plan.unit_amounts.values("unit_id"))


def get_account_unit(user, grant: Grant, unit_id: int | str) -> CareUnit:
    """A unit whose account the user may see: Http404 outside the region, PermissionDenied for
    another unit of the region (a unit manager's colleague's unit)."""
    unit = access.get_unit_for_user(user, unit_id)
    if unit.region_id != grant.region_id:
        raise Http404("no such unit")
    if not account_units(user, grant).filter(pk=unit.pk).exists():
        raise PermissionDenied("not your unit")
    return unit


def account_of(grant: Grant, unit: CareUnit) -> UnitAccount | None:
    return UnitAccount.objects.filter(grant=grant, unit=unit).first()


def get_attachment(user, grant: Grant, unit: CareUnit, attachment_id: int | str):
    get_account_unit(user, grant, unit.pk)
    try:
        return AccountAttachment.objects.select_related("account").get(
            pk=int(attachment_id), account__grant=grant, account__unit=unit
        )
    except (AccountAttachment.DoesNotExist, ValueError, TypeError):
        raise Http404("no such attachment")


def get_report(user, grant: Grant, version: int | str | None = None) -> StateReport:
    access.require(user, "view_grant_report")
    reports = grant.reports.all()
    try:
        if version is None:
            report = reports.order_by("-version").first()
            if report is None:
                raise Http404("no report yet")
            return report
        return reports.get(version=int(version))
    except (StateReport.DoesNotExist, ValueError, TypeError):
        raise Http404("no such report version")


def previous_plan(plan: AllocationPlan) -> AllocationPlan | None:
    """The version a plan is compared with: for a draft, the plan in force (or else the latest
    earlier version); for a decided or superseded plan, the decided plan it superseded."""
    grant = plan.grant
    if plan.status == PlanStatus.DRAFT:
        in_force = grant.decided_plan()
        if in_force is not None and in_force.pk != plan.pk:
            return in_force
        return grant.plans.filter(version__lt=plan.version).order_by("-version").first()
    replaced = (
        AllocationPlan.objects.filter(
            decisions__kind=PlanStatus.SUPERSEDED, decisions__superseded_by=plan
        )
        .order_by("-version")
        .first()
    )
    return replaced
