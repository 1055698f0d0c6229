from django.contrib import admin
from django.db import transaction

from styrkort.accounts.models import ApiToken, Membership
from styrkort.history.services import record, snapshot


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "role", "region"]
    list_filter = ["role", "region"]
    filter_horizontal = ["units"]
    search_fields = ["user__username"]

    def save_model(self, request, obj, form, change):
        # Role changes are governed data: record them with the change, in one transaction.
        with transaction.atomic():
            before = snapshot(Membership.objects.get(pk=obj.pk)) if change else None
            super().save_model(request, obj, form, change)
            record(
                request.user,
                "update" if change else "create",
                obj,
                before=before,
                after=snapshot(obj),
                note="admin site",
            )

    def save_related(self, request, form, formsets, change):
        with transaction.atomic():
            before = sorted(form.instance.units.values_list("hsa_id", flat=True)) if change else []
            super().save_related(request, form, formsets, change)
            after = sorted(form.instance.units.values_list("hsa_id", flat=True))
            if before != after:
                record(
                    request.user,
                    "update",
                    form.instance,
                    before={"units": before},
                    after={"units": after},
                    note="admin site",
                )


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "created", "last_used", "revoked"]
    readonly_fields = ["prefix", "created", "last_used"]
