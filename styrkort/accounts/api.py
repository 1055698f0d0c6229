from __future__ import annotations

from django.utils import timezone
from ninja import Router, Schema
from ninja.security import APIKeyCookie, HttpBearer

from styrkort.accounts import access
from styrkort.accounts.models import ApiToken


class SessionOrToken(APIKeyCookie):
    """Session cookie for the browser (with CSRF on writes) or a Bearer token for scripts."""

    param_name = "sessionid"

    def __call__(self, request):
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            return _BearerToken()(request)
        return super().__call__(request)

    def authenticate(self, request, key):
        if request.user.is_authenticated and access.get_membership(request.user):
            return request.user
        return None


class _BearerToken(HttpBearer):
    def authenticate(self, request, token):
        found = ApiToken.find(token)
        if found is None or access.get_membership(found.user) is None:
            return None
        ApiToken.objects.filter(pk=found.pk).update(last_used=timezone.now())
        request.user = found.user
        return found.user


router = Router()


class MeOut(Schema):
    username: str
    role: str
    region: str
    units: list[str]


@router.get("/me", response=MeOut, summary="Who am I: role, region and own units")
def me(request):
    m = access.get_membership(request.auth)
    return {
        "username": request.auth.username,
        "role": m.role,
        "region": m.region.name,
        "units": list(m.units.values_list("hsa_id", flat=True)),
    }
