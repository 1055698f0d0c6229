"""The menu, built from the user's role so that each role sees only what it may open."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

from styrkort.accounts import access
from styrkort.accounts.models import Role

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

A, AN, UM, AU, V = Role.ADMIN, Role.ANALYST, Role.UNIT_MANAGER, Role.AUDITOR, Role.VIEWER


@dataclass(frozen=True)
class NavItem:
    url_name: str
    label: StrOrPromise
    roles: frozenset[str]
    section: str  # the first path segment that marks the item as current


ALL = frozenset({A, AN, UM, AU, V})
NAV_ITEMS = (
    NavItem("organisation:overview", _("Overview"), ALL, "overview"),
    NavItem("organisation:unit_list", _("Care units"), ALL, "organisation"),
    NavItem("indicators:catalogue", _("Indicators"), ALL, "indicators"),
    NavItem("extracts:list", _("Extracts"), frozenset({AN}), "extracts"),
    NavItem("grants:list", _("State grants"), ALL, "grants"),
    NavItem("organisation:import", _("Import"), frozenset({A, AN}), "import"),
    NavItem("history:log", _("Change log"), frozenset({A, AN, AU}), "history"),
    NavItem("accounts:users", _("Users"), frozenset({A}), "accounts"),
)  # fmt: skip


def menu_for(user, path: str = "") -> list[dict]:
    role = access.role_of(user)
    if role is None:
        return []
    items = []
    for item in NAV_ITEMS:
        if role not in item.roles:
            continue
        try:
            url = reverse(item.url_name)
        except NoReverseMatch:
            continue
        current = path == url or (url != "/" and path.startswith(url))
        items.append({"url": url, "label": item.label, "current": current})
    return items


def navigation(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"menu": [], "membership": None}
    return {
        "menu": menu_for(user, request.path),
        "membership": access.get_membership(user),
    }
