"""Every write to the organisation registry goes through these functions.

Each takes the acting user, checks the user's rights through `styrkort.accounts.access`, runs in
one transaction and writes its history rows in that same transaction. Views, the API and the
command line all call these; none of them writes models directly.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import PermissionDenied
from django.db import transaction

from styrkort.accounts import access
from styrkort.history.services import record, snapshot
from styrkort.organisation.models import CareUnit, Provider, Staffing

UNIT_FIELDS = ("name", "municipality", "provider_id", "opened", "closed")


def _require_registry(actor) -> None:
    if not access.can(actor, "manage_registry"):
        raise PermissionDenied("manage_registry")


@transaction.atomic
def create_unit(actor, *, provider: Provider, hsa_id: str, name: str, municipality: str,
                opened=None, closed=None) -> CareUnit:  # fmt: skip
    _require_registry(actor)
    if provider.region_id != access.get_region_for_user(actor).pk:
        raise PermissionDenied("provider outside the region")
    unit = CareUnit(
        region_id=provider.region_id, provider=provider, hsa_id=hsa_id, name=name,
        municipality=municipality, opened=opened, closed=closed,
    )  # fmt: skip
    unit.full_clean()
    unit.save()
    record(actor, "create", unit, after=snapshot(unit))
    return unit


@transaction.atomic
def update_unit(actor, unit: CareUnit, **changes) -> CareUnit:
    """Change a unit's registry fields (name, municipality, provider, opened, closed)."""
    _require_registry(actor)
    unknown = set(changes) - set(UNIT_FIELDS) - {"provider"}
    if unknown:
        raise ValueError(f"not editable: {', '.join(sorted(unknown))}")
    locked = CareUnit.objects.select_for_update().get(pk=unit.pk)
    before = snapshot(locked)
    for key, value in changes.items():
        setattr(locked, key, value)
    locked.full_clean()
    locked.save()
    after = snapshot(locked)
    if after != before:
        record(actor, "update", locked, before=before, after=after)
    return locked


@transaction.atomic
def set_staffing(actor, unit: CareUnit, period: str, profession: str, fte: Decimal) -> Staffing:
    """Set one profession's full-time equivalents for a unit and period (unit managers: own
    units only)."""
    if not access.editable_units(actor).filter(pk=unit.pk).exists():
        raise PermissionDenied("not your unit")
    row = (
        Staffing.objects.select_for_update()
        .filter(unit=unit, period=period, profession=profession)
        .first()
    )
    before = snapshot(row) if row else None
    if row is None:
        row = Staffing(unit=unit, period=period, profession=profession, fte=fte)
    row.fte = Decimal(fte)
    row.full_clean()
    row.save()
    after = snapshot(row)
    if before != after:
        record(actor, "update" if before else "create", row, before=before, after=after)
    return row
