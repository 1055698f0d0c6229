import contextlib
from datetime import date

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_GET

from styrkort.accounts import access
from styrkort.history.models import ChangeRecord


def visible_changes(user):
    """Changes the user may read: the whole region for admin, analyst and auditor; a unit
    manager's own units (and their listings and staffing) only."""
    access.require(user, "view_history")
    region = access.get_region_for_user(user)
    qs = ChangeRecord.objects.filter(region=region).select_related("actor")
    if access.role_of(user) == "unit_manager":
        own = [str(i) for i in access.own_unit_ids(user)]
        qs = qs.filter(object_type="organisation.careunit", object_id__in=own)
    return qs


def filter_changes(qs, params):
    """Filters shared by the change-log page and the API: user, object type, date range."""
    if params.get("user"):
        qs = qs.filter(actor__username=params["user"])
    if params.get("object_type"):
        qs = qs.filter(object_type=params["object_type"])
    if params.get("object_id"):
        qs = qs.filter(object_id=str(params["object_id"]))
    if params.get("batch"):  # one import's changes (linked from its result page)
        qs = qs.filter(batch=str(params["batch"]))
    for key, lookup in (("since", "at__date__gte"), ("until", "at__date__lte")):
        if params.get(key):
            with contextlib.suppress(ValueError):
                qs = qs.filter(**{lookup: date.fromisoformat(params[key])})
    return qs


@require_GET
@login_required
def change_log(request):
    base = visible_changes(request.user)
    changes = filter_changes(base, request.GET)
    page = Paginator(changes, 50).get_page(request.GET.get("page"))
    users = (
        get_user_model()
        .objects.filter(pk__in=base.values("actor"))
        .order_by("username")
        .values_list("username", flat=True)
    )
    types = base.order_by().values_list("object_type", flat=True).distinct()
    return render(
        request,
        "history/change_log.html",
        {"page": page, "users": users, "types": sorted(set(types)), "params": request.GET},
    )
