"""The admin site for the registry: regions and providers are set up here; units, listings and
staffing are read-only, because their changes go through the pages, imports and the API, whose
service functions check rights and record history."""

from __future__ import annotations

from django.contrib import admin
from django.db import transaction

from styrkort.history.services import record, snapshot
from styrkort.organisation.models import CareUnit, Listing, Provider, Region, Staffing


class _HistoryAdmin(admin.ModelAdmin):
    """Saves and deletes record history in the same transaction, like the service functions."""

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            before = snapshot(type(obj).objects.get(pk=obj.pk)) if change else None
            super().save_model(request, obj, form, change)
            after = snapshot(obj)
            if before != after:
                record(
                    request.user, "update" if change else "create", obj,
                    before=before, after=after, note="admin site",
                )  # fmt: skip

    def delete_model(self, request, obj):
        with transaction.atomic():
            before = snapshot(obj)
            record(request.user, "delete", obj, before=before, note="admin site")
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for obj in queryset:
                self.delete_model(request, obj)


class _ReadOnlyAdmin(admin.ModelAdmin):
    """Shown for reference; changed only through services (pages, imports, API)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Region)
class RegionAdmin(_HistoryAdmin):
    list_display = ["name", "lan_code", "org_nr"]
    search_fields = ["name", "lan_code"]


@admin.register(Provider)
class ProviderAdmin(_HistoryAdmin):
    list_display = ["name", "kind", "org_nr", "region"]
    list_filter = ["kind", "region"]
    search_fields = ["name", "org_nr"]


@admin.register(CareUnit)
class CareUnitAdmin(_ReadOnlyAdmin):
    list_display = ["name", "hsa_id", "municipality", "provider", "opened", "closed"]
    list_filter = ["region", "provider__kind", "provider"]
    search_fields = ["name", "hsa_id", "municipality"]


@admin.register(Listing)
class ListingAdmin(_ReadOnlyAdmin):
    list_display = ["unit", "month", "sex", "age_band", "listed"]
    list_filter = ["month", "sex"]
    search_fields = ["unit__name", "unit__hsa_id"]
    list_select_related = ["unit"]


@admin.register(Staffing)
class StaffingAdmin(_ReadOnlyAdmin):
    list_display = ["unit", "period", "profession", "fte"]
    list_filter = ["period", "profession"]
    search_fields = ["unit__name", "unit__hsa_id"]
    list_select_related = ["unit"]
