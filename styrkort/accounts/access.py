"""The one place that decides what a user may see and change.

Views, API endpoints and commands obtain objects only through these functions. A user has at
most one Membership (role in one region); a user without one sees nothing. Refusals raise
Http404 for objects outside the user's region (their existence is not revealed) and
PermissionDenied for objects the user may see but not change.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404

from styrkort.accounts.models import Membership, Role
from styrkort.extracts.models import ExtractUpload, ExtractVersion
from styrkort.organisation.models import CareUnit, Region

ALL_ROLES = frozenset(Role.values)

# Capabilities by role. Unit managers' unit-scoped writes are checked per unit below.
CAPABILITIES: dict[str, frozenset[str]] = {
    "view": ALL_ROLES,
    "manage_registry": frozenset({Role.ADMIN, Role.ANALYST}),
    "import_data": frozenset({Role.ADMIN, Role.ANALYST}),
    "edit_unit_data": frozenset({Role.ADMIN, Role.ANALYST, Role.UNIT_MANAGER}),
    "view_history": frozenset({Role.ADMIN, Role.ANALYST, Role.AUDITOR, Role.UNIT_MANAGER}),
    "view_unsuppressed": frozenset({Role.ANALYST}),
    "handle_extracts": frozenset({Role.ANALYST}),
    "compute": frozenset({Role.ADMIN, Role.ANALYST}),
    "manage_grants": frozenset({Role.ANALYST}),
    "report_grant_use": frozenset({Role.UNIT_MANAGER, Role.ANALYST}),
    # See every unit's grant accounts, draft plans and the repayment (grants' reviewers).
    "review_grants": frozenset({Role.ADMIN, Role.ANALYST, Role.AUDITOR}),
    # Read the region's report to the state (it names every unit's figures: no unit managers).
    "view_grant_report": frozenset({Role.ADMIN, Role.ANALYST, Role.AUDITOR, Role.VIEWER}),
    "manage_users": frozenset({Role.ADMIN}),
}


def get_membership(user) -> Membership | None:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    cached = getattr(user, "_styrkort_membership", None)
    if cached is not None:
        return cached
    membership = Membership.objects.select_related("region").filter(user=user).first()
    user._styrkort_membership = membership
    return membership


def role_of(user) -> str | None:
    m = get_membership(user)
    return m.role if m else None


def region_of(user) -> Region | None:
    m = get_membership(user)
    return m.region if m else None


def can(user, capability: str) -> bool:
    m = get_membership(user)
    return m is not None and m.role in CAPABILITIES[capability]


def require(user, capability: str) -> Membership:
    """Return the membership or raise PermissionDenied when the role lacks the capability."""
    m = get_membership(user)
    if m is None or m.role not in CAPABILITIES[capability]:
        raise PermissionDenied(capability)
    return m


def get_region_for_user(user) -> Region:
    region = region_of(user)
    if region is None:
        raise PermissionDenied("no membership")
    return region


def visible_units(user) -> QuerySet[CareUnit]:
    """Units the user may see (every role sees all units of its region, suppressed as needed)."""
    region = region_of(user)
    if region is None:
        return CareUnit.objects.none()
    return CareUnit.objects.filter(region=region)


def own_unit_ids(user) -> set[int]:
    """Units that are the user's own: a unit manager's units; none for other roles."""
    m = get_membership(user)
    if m is None or m.role != Role.UNIT_MANAGER:
        return set()
    return set(m.units.values_list("id", flat=True))


def editable_units(user) -> QuerySet[CareUnit]:
    """Units whose data the user may change: all of the region for admin and analyst, own units
    for unit managers, none otherwise."""
    m = get_membership(user)
    if m is None or m.role not in CAPABILITIES["edit_unit_data"]:
        return CareUnit.objects.none()
    units = CareUnit.objects.filter(region=m.region)
    if m.role == Role.UNIT_MANAGER:
        units = units.filter(id__in=own_unit_ids(user))
    return units


def get_unit_for_user(user, unit_id: int | str, *, write: bool = False) -> CareUnit:
    """A unit by id (or HSA-id) if visible; with write=True it must also be editable."""
    lookup: dict[str, int | str] = (
        {"hsa_id": unit_id}
        if isinstance(unit_id, str) and unit_id.startswith("SE")
        else {"pk": unit_id}
    )
    try:
        unit = visible_units(user).select_related("provider", "region").get(**lookup)
    except (CareUnit.DoesNotExist, ValueError):
        raise Http404("no such unit")
    if write and not editable_units(user).filter(pk=unit.pk).exists():
        raise PermissionDenied("not your unit")
    return unit


def sees_unsuppressed(user, unit_id: int | None = None) -> bool:
    """Whether figures may be shown without small-number suppression to this user.

    Analysts see everything; a unit manager sees own units' figures unsuppressed (they are the
    unit's own data); everyone else gets suppressed figures.
    """
    if can(user, "view_unsuppressed"):
        return True
    return unit_id is not None and unit_id in own_unit_ids(user)


def can_view_unit_history(user, unit: CareUnit) -> bool:
    """Whether the user may read a unit's history (its own changes and its listings' and
    staffing's): admin, analyst and auditor for every unit of the region, a unit manager for
    own units only (as in the change log)."""
    m = get_membership(user)
    if m is None or m.role not in CAPABILITIES["view_history"] or unit.region_id != m.region_id:
        return False
    if m.role == Role.UNIT_MANAGER:
        return unit.pk in own_unit_ids(user)
    return True


def grant_account_units(user) -> QuerySet[CareUnit]:
    """Units whose grant accounts the user may see: the whole region for grants' reviewers
    (admin, analyst, auditor), own units for a unit manager, none otherwise."""
    m = get_membership(user)
    if m is None:
        return CareUnit.objects.none()
    if m.role in CAPABILITIES["review_grants"]:
        return CareUnit.objects.filter(region=m.region)
    if m.role == Role.UNIT_MANAGER:
        return CareUnit.objects.filter(region=m.region, id__in=own_unit_ids(user))
    return CareUnit.objects.none()


def grant_reporting_units(user) -> QuerySet[CareUnit]:
    """Units the user may account grant use for: own units for a unit manager, every unit of
    the region for an analyst (on a unit's behalf), none for other roles."""
    m = get_membership(user)
    if m is None or m.role not in CAPABILITIES["report_grant_use"]:
        return CareUnit.objects.none()
    units = CareUnit.objects.filter(region=m.region)
    if m.role == Role.UNIT_MANAGER:
        units = units.filter(id__in=own_unit_ids(user))
    return units


def get_extract_version_for_user(user, version_id: int):
    """An extract version of the user's region, for an analyst (handle_extracts); 403 for other
    roles, 404 outside the region."""
    m = require(user, "handle_extracts")
    try:
        return ExtractVersion.objects.select_related("uploaded_by").get(
            pk=version_id, region=m.region
        )
    except (ExtractVersion.DoesNotExist, ValueError):
        raise Http404("no such extract version")


def get_extract_upload_for_user(user, upload_id):
    """An upload attempt, only for the analyst who made it (its error report may name rows of
    visit-level data); 403 for other roles, 404 for anyone else."""
    m = require(user, "handle_extracts")
    try:
        return ExtractUpload.objects.get(pk=upload_id, region=m.region, uploaded_by=user)
    except (ExtractUpload.DoesNotExist, ValidationError, ValueError):
        raise Http404("no such upload")
