"""Number formats as Swedish readers expect them: 1 234,5 · 12,3 % · 14 446 372 kr."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django import template
from django.utils.formats import number_format

from styrkort.money import format_kronor

register = template.Library()


@register.filter
def num(value, decimals: int = 0):
    """A number with the active language's grouping and decimal mark; '–' for missing."""
    if value is None or value == "":
        return "–"
    return number_format(
        _rounded(value, int(decimals)), decimal_pos=int(decimals), use_l10n=True,
        force_grouping=True,
    )  # fmt: skip


@register.filter
def pct(value, decimals: int = 1):
    """A proportion 0–1 shown as a percentage."""
    if value is None or value == "":
        return "–"
    percent = _rounded(Decimal(str(value)) * 100, int(decimals))
    return number_format(percent, decimal_pos=int(decimals), force_grouping=True) + "\xa0%"


def _rounded(value, decimals: int):
    """Round half up first: Django's number_format cuts extra decimals off (64.29 -> "64,2")."""
    try:
        exact = Decimal(str(value))
    except InvalidOperation:
        return value
    if not exact.is_finite():
        return value
    return exact.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


@register.filter
def kr(value):
    if value is None or value == "":
        return "–"
    return format_kronor(Decimal(str(value)))


@register.simple_tag(takes_context=True)
def query_with(context, **kwargs):
    """The current query string with some parameters replaced (for sorting and paging links)."""
    query = context["request"].GET.copy()
    for key, value in kwargs.items():
        if value in (None, ""):
            query.pop(key, None)
        else:
            query[key] = value
    return "?" + query.urlencode()


@register.inclusion_tag("web/_chart.html")
def chart(spec: dict, chart_id: str, description: str, caption: str = ""):
    """A Vega-Lite chart rendered in the browser by static/styrkort/charts.js.

    `description` is the text alternative read by screen readers; pages also show the figures
    in a table next to the chart.
    """
    return {
        "spec": spec,
        "chart_id": chart_id,
        "spec_id": f"{chart_id}-spec",
        "description": description,
        "caption": caption,
    }
