"""Pages of the organisation registry: region overview, units, providers, edits, history.

Every object arrives through `styrkort.accounts.access`; every write through
`styrkort.organisation.services`. Read pages are open to every role of the region (the registry
and listings are not sensitive); users without a membership get 403.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from styrkort.accounts import access
from styrkort.organisation import charts, queries, services
from styrkort.organisation.forms import StaffingForm, UnitEditForm, UnitFilterForm
from styrkort.organisation.models import Provider

PAGE_SIZE = 25


def _region_providers(user):
    return Provider.objects.filter(region=access.get_region_for_user(user))


def _wants_fragment(request, target: str) -> bool:
    """An htmx request that swaps only `target` (a history restore needs the whole page)."""
    htmx = getattr(request, "htmx", None)
    if not htmx:
        return False
    return not htmx.history_restore_request and htmx.target == target


@login_required
@require_GET
def overview(request):
    """The region at a glance: listed by month, units by provider, psychosocial staffing."""
    access.require(request.user, "view")
    units = access.visible_units(request.user)
    listed = queries.listed_by_month(units)
    figures = queries.key_figures(units, series=listed)
    by_provider = queries.units_by_provider(units)
    psych = queries.psychosocial_by_unit(units, figures["staffing_period"])
    for row in psych:
        row["url"] = reverse("organisation:unit_detail", args=[row["unit_id"]])
    return render(
        request,
        "organisation/overview.html",
        {
            "figures": figures,
            "listed": listed,
            "listed_chart": charts.listed_by_month_chart(listed, by_sex=True) if listed else None,
            "by_provider": by_provider,
            "by_kind": queries.units_by_kind(units),
            "provider_chart": charts.units_by_provider_chart(by_provider) if by_provider else None,
            "psych": psych,
            "psych_chart": charts.psychosocial_chart(psych) if psych else None,
        },
    )


@login_required
@require_GET
def unit_list(request):
    """Units with search, filters, sorting and paging; htmx swaps only the results."""
    access.require(request.user, "view")
    units = access.visible_units(request.user).select_related("provider")
    form = UnitFilterForm(
        request.GET,
        providers=_region_providers(request.user).order_by("name"),
        municipalities=queries.municipalities(units),
    )
    filters = form.filters()
    month = queries.latest_month(units)
    found = queries.annotate_listed(queries.filter_units(units, **filters), month)
    found, sort = queries.sort_units(found, request.GET.get("sort", "name"))
    page = Paginator(found, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page": page,
        "sort": sort,
        "columns": _sort_columns(sort),
        "month": month,
        "total": units.count(),
        "can_edit": access.can(request.user, "manage_registry"),
    }
    if _wants_fragment(request, "unit-results"):
        return render(request, "organisation/_unit_results_htmx.html", context)
    return render(request, "organisation/unit_list.html", context)


def _sort_columns(sort: str) -> dict[str, dict]:
    """Per sortable column: the link's sort value and the header's aria-sort."""
    current, descending = sort.lstrip("-"), sort.startswith("-")
    columns = {}
    for key in queries.UNIT_SORTS:
        if key == current:
            columns[key] = {
                "aria": "descending" if descending else "ascending",
                "next": key if descending else f"-{key}",
            }
        else:
            columns[key] = {"aria": "none", "next": key}
    return columns


@login_required
@require_GET
def unit_detail(request, unit_id: int):
    """A unit: facts, listing history, an age–sex pyramid for a chosen month, staffing."""
    access.require(request.user, "view")
    unit = access.get_unit_for_user(request.user, unit_id)
    one = access.visible_units(request.user).filter(pk=unit.pk)
    months = queries.listing_months(one)
    month = request.GET.get("month")
    if month not in months:
        month = months[-1] if months else None
    pyramid = _pyramid_context(unit, months, month)
    if _wants_fragment(request, "pyramid"):
        return render(request, "organisation/_pyramid.html", pyramid)
    listed = queries.listed_by_month(one)
    return render(
        request,
        "organisation/unit_detail.html",
        {
            "unit": unit,
            "active": unit.is_active(),
            "listed": listed,
            "listed_chart": charts.listed_by_month_chart(listed) if listed else None,
            "staffing": queries.staffing_matrix(unit),
            "can_edit_unit": access.can(request.user, "manage_registry"),
            "can_edit_staffing": access.editable_units(request.user).filter(pk=unit.pk).exists(),
            "can_view_history": access.can_view_unit_history(request.user, unit),
            **pyramid,
        },
    )


def _pyramid_context(unit, months: list[str], month: str | None) -> dict:
    rows = queries.pyramid(unit, month)
    return {
        "unit": unit,
        "months": list(reversed(months)),
        "month": month,
        "pyramid": rows,
        "pyramid_total": {
            "K": sum(r["K"] for r in rows),
            "M": sum(r["M"] for r in rows),
        },
        "pyramid_chart": charts.pyramid_chart(rows) if month else None,
    }


@login_required
@require_GET
def unit_history(request, unit_id: int):
    """Every recorded change of the unit and of its listings and staffing."""
    access.require(request.user, "view")
    unit = access.get_unit_for_user(request.user, unit_id)
    if not access.can_view_unit_history(request.user, unit):
        raise PermissionDenied("view_history")
    page = Paginator(queries.unit_changes(unit), 50).get_page(request.GET.get("page"))
    return render(request, "organisation/unit_history.html", {"unit": unit, "page": page})


@login_required
@require_http_methods(["GET", "POST"])
def unit_edit(request, unit_id: int):
    """Change a unit's registry fields (admin and analyst)."""
    access.require(request.user, "manage_registry")
    unit = access.get_unit_for_user(request.user, unit_id, write=True)
    providers = _region_providers(request.user).order_by("name")
    form = UnitEditForm(request.POST or None, unit=unit, providers=providers)
    if request.method == "POST" and form.is_valid():
        try:
            services.update_unit(request.user, unit, **form.cleaned_data)
        except ValidationError as exc:
            _add_model_errors(form, exc)
        else:
            messages.success(request, _("The unit was saved."))
            return redirect("organisation:unit_detail", unit_id=unit.pk)
    return render(request, "organisation/unit_edit.html", {"unit": unit, "form": form})


def _add_model_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


@login_required
@require_http_methods(["GET", "POST"])
def staffing_edit(request, unit_id: int):
    """Set full-time equivalents per profession for one period (admin, analyst, the unit's own
    manager)."""
    access.require(request.user, "edit_unit_data")
    unit = access.get_unit_for_user(request.user, unit_id, write=True)
    if request.method == "POST":
        form = StaffingForm(request.POST)
        if form.is_valid():
            period = form.cleaned_data["period"]
            values = form.values()
            try:
                # All professions of the period or none.
                with transaction.atomic():
                    for profession, fte in values.items():
                        services.set_staffing(request.user, unit, period, profession, fte)
            except ValidationError as exc:
                _add_model_errors(form, exc)
            else:
                messages.success(
                    request,
                    _("Staffing for %(period)s was saved.") % {"period": period},
                )
                return redirect("organisation:unit_detail", unit_id=unit.pk)
    else:
        units = access.visible_units(request.user).filter(pk=unit.pk)
        period = request.GET.get("period") or queries.latest_staffing_period(units) or ""
        initial = {"period": period}
        if period:
            for profession, fte in queries.staffing_for(unit, period).items():
                initial[f"fte_{profession}"] = fte
        form = StaffingForm(initial=initial)
    return render(request, "organisation/staffing_edit.html", {"unit": unit, "form": form})


@login_required
@require_GET
def provider_list(request):
    """Providers of the region with kind, organisation number and unit counts."""
    access.require(request.user, "view")
    units = access.visible_units(request.user)
    month = queries.latest_month(units)
    rows = queries.provider_rows(_region_providers(request.user), month)
    return render(
        request,
        "organisation/provider_list.html",
        {"rows": rows, "month": month, "by_kind": queries.units_by_kind(units)},
    )
