from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from styrkort.accounts import access
from styrkort.accounts.models import ApiToken


@login_required
@require_http_methods(["GET", "POST"])
def profile(request):
    """The user's own account: role, units and API tokens."""
    new_token = None
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "create":
            name = request.POST.get("name", "").strip() or _("Script")
            with transaction.atomic():
                _token, new_token = ApiToken.issue(request.user, name[:100])
        elif action == "revoke":
            ApiToken.objects.filter(
                user=request.user, pk=request.POST.get("token"), revoked__isnull=True
            ).update(revoked=timezone.now())
            messages.success(request, _("The token was revoked."))
            return redirect("accounts:profile")
    return render(
        request,
        "accounts/profile.html",
        {
            "membership_obj": access.get_membership(request.user),
            "tokens": ApiToken.objects.filter(user=request.user, revoked__isnull=True),
            "new_token": new_token,
        },
    )


@login_required
def users(request):
    """Who has which role: for administrators (changes are made in the admin site)."""
    access.require(request.user, "manage_users")
    region = access.get_region_for_user(request.user)
    people = (
        get_user_model()
        .objects.filter(membership__region=region)
        .select_related("membership")
        .prefetch_related("membership__units")
        .order_by("username")
    )
    return render(request, "accounts/users.html", {"people": people})
