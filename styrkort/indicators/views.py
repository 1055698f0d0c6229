"""Pages of the indicators: the catalogue, one indicator across the region, one unit across
every indicator, downloads and the compute button.

Every figure comes from ``services.results_for`` (or ``services.export_results``), which applies
disclosure control for the viewer: analysts see everything, a unit manager sees own units
unsuppressed, everyone else gets small numbers suppressed. Views never decide what to hide;
they only arrange and format what they are given. Only results are shown, never visit-level
rows. Every role of the region may open the pages; computing needs the ``compute`` capability.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from styrkort.accounts import access
from styrkort.breakdowns import ALL_AGES, REPORT_AGE_BANDS, SEXES_WITH_TOTAL, TOTAL
from styrkort.indicators import charts, display, services
from styrkort.indicators.catalogue import catalogue_for_display, load_catalogue
from styrkort.indicators.models import ComputationRun, IndicatorDefinition
from styrkort.jobs.services import progress_of
from styrkort.jobs.views import get_job_for_user
from styrkort.periods import KINDS, Period, PeriodError

FORMATS = ("csv", "xlsx")


# ----------------------------------------------------------------------------------------------
# Helpers shared with the API
# ----------------------------------------------------------------------------------------------


def language() -> str:
    return (get_language() or "sv")[:2]


def catalogue_entry(code: str, lang: str | None = None) -> dict:
    """The catalogue's description of one indicator; Http404 for an unknown code."""
    for entry in catalogue_for_display(lang or language()):
        if entry["code"] == code:
            return entry
    raise Http404("no such indicator")


def stored_definition(code: str) -> IndicatorDefinition | None:
    """The stored current definition, or None before the catalogue was first synced (then
    there are no results either). Reading pages never sync: a GET changes nothing."""
    return IndicatorDefinition.objects.filter(code=code, is_current=True).first()


def results(user, stored: IndicatorDefinition | None, filters: Mapping) -> list[dict]:
    """``services.results_for`` (disclosure control for ``user``), or [] when nothing is
    stored yet."""
    if stored is None:
        access.require(user, "view")
        return []
    return services.results_for(user, stored, filters)


def parse_filters(query: Mapping) -> dict:
    """Result filters from a query string (period, period_type, sex, age_band, unit); raises
    ValueError with a message for values that cannot be right."""
    filters: dict = {}
    if query.get("period"):
        try:
            filters["period"] = str(Period.parse(query["period"]))
        except PeriodError as exc:
            raise ValueError(str(exc)) from None
    if query.get("period_type"):
        if query["period_type"] not in KINDS:
            raise ValueError(_("period_type must be month, quarter or year"))
        filters["period_kind"] = query["period_type"]
    if query.get("sex"):
        if query["sex"] not in SEXES_WITH_TOTAL:
            raise ValueError(_("sex must be K, M or T"))
        filters["sex"] = query["sex"]
    if query.get("age_band"):
        if query["age_band"] not in (*REPORT_AGE_BANDS, ALL_AGES):
            raise ValueError(
                _("age_band must be one of %(bands)s")
                % {"bands": ", ".join((*REPORT_AGE_BANDS, ALL_AGES))}
            )
        filters["age_band"] = query["age_band"]
    unit = query.get("unit")
    if unit:
        if unit == "region":
            filters["unit"] = "region"
        elif unit.isdigit():
            filters["unit"] = int(unit)
        else:
            filters["unit"] = unit  # an HSA-id; access resolves it within the region
    return filters


def _wants_fragment(request, target: str) -> bool:
    """An htmx request that swaps only ``target`` (a history restore needs the whole page)."""
    htmx = getattr(request, "htmx", None)
    if not htmx:  # absent, or django-htmx's details of a request that is not htmx's
        return False
    return not htmx.history_restore_request and htmx.target == target


def _by_period(rows: Sequence[Mapping]) -> list[Mapping]:
    return sorted(rows, key=lambda r: display.period_sort_key(r["period"]))


def _target(info: Mapping) -> tuple[float | None, str]:
    target = info.get("target")
    if not target:
        return None, ""
    return target["value"], target["text"]


def _pack_description(pack_code: str, lang: str) -> str:
    for pack in load_catalogue().packs:
        if pack.code == pack_code:
            return pack.description_sv if lang == "sv" else pack.description_en
    return ""


# ----------------------------------------------------------------------------------------------
# Catalogue and computing
# ----------------------------------------------------------------------------------------------


@login_required
@require_GET
def catalogue(request):
    """Every definition as a reader would read it, grouped by pack, each linking to its page."""
    access.require(request.user, "view")
    lang = language()
    packs: list[dict] = []
    stored = dict(
        IndicatorDefinition.objects.filter(is_current=True).values_list("code", "version")
    )
    for entry in catalogue_for_display(lang):
        if not packs or packs[-1]["code"] != entry["pack"]["code"]:
            packs.append(
                {
                    "code": entry["pack"]["code"],
                    "name": entry["pack"]["name"],
                    "description": _pack_description(entry["pack"]["code"], lang),
                    "entries": [],
                }
            )
        entry["stored_version"] = stored.get(entry["code"])
        packs[-1]["entries"].append(entry)
    region = access.get_region_for_user(request.user)
    job = None
    if request.GET.get("job"):
        try:
            job = get_job_for_user(request.user, request.GET["job"])
        except Http404:
            job = None
    return render(
        request,
        "indicators/catalogue.html",
        {
            "packs": packs,
            "count": sum(len(p["entries"]) for p in packs),
            "last_run": ComputationRun.objects.filter(region=region).first(),
            "can_compute": access.can(request.user, "compute"),
            "job": job,
            "progress": progress_of(job) if job else None,
            "done_url": reverse("indicators:catalogue"),
        },
    )


@login_required
@require_GET
def run_status(request):
    """The line saying that the region's results are on their way (being computed, or their
    extracts being loaded), polled by htmx while a page waits for results; once nothing is on
    its way, htmx is told to reload the page."""
    access.require(request.user, "view")
    if not getattr(request, "htmx", None):
        return redirect("indicators:catalogue")  # which says how the latest run went
    pending = services.pending_work(access.get_region_for_user(request.user))
    if pending is None:
        response = HttpResponse("")
        response["HX-Refresh"] = "true"
        return response
    return render(request, "indicators/_run_status.html", {"pending": pending})


@login_required
@require_POST
def compute(request):
    """Queue a computation of every indicator for the user's region (admin and analyst)."""
    access.require(request.user, "compute")
    job = services.enqueue_compute(request.user)
    done_url = reverse("indicators:catalogue")
    if getattr(request, "htmx", None):
        return render(
            request,
            "indicators/_compute_status.html",
            {"job": job, "progress": progress_of(job), "done_url": done_url},
        )
    return redirect(f"{done_url}?{urlencode({'job': job.pk})}")


# ----------------------------------------------------------------------------------------------
# One indicator
# ----------------------------------------------------------------------------------------------


def _series_context(info: Mapping, region_rows: Sequence[Mapping], kind: str) -> dict:
    decimals = display.value_decimals(info["kind"], info["multiplier"])
    rows = [
        display.decorate(r, info["kind"], info["multiplier"])
        for r in _by_period([r for r in region_rows if r["period_kind"] == kind])
    ]
    target, target_text = _target(info)
    chart = None
    description = ""
    if any(r["value"] is not None for r in rows):
        chart = charts.time_series_chart(
            rows,
            unit_label=info["unit_label"],
            decimals=decimals,
            target=target,
            target_text=target_text,
        )
        description = _(
            "Line chart of the region's value of %(name)s by %(kind)s from %(first)s to "
            "%(last)s, with the 95 %% confidence interval as a band%(target)s. The same "
            "figures are in the table below the chart."
        ) % {
            "name": info["name"],
            "kind": str(display.PERIOD_KIND_LABELS[kind]).lower(),
            "first": rows[0]["period"],
            "last": rows[-1]["period"],
            "target": (_(" and the target as a dashed line (%(t)s)") % {"t": target_text})
            if target is not None
            else "",
        }
    return {
        "series_kind": kind,
        "series_rows": rows,
        "series_chart": chart,
        "series_description": description,
        "period_kinds": [(k, display.PERIOD_KIND_LABELS[k]) for k in info["period_types"]],
    }


def _class_summary(units: Sequence[Mapping]) -> list[str]:
    """The funnel classes in words: units outside the limits by name, the others counted."""
    lines = []
    for comparison in ("better", "higher", "lower", "worse"):
        names = [u["unit_name"] for u in units if u["comparison"] == comparison]
        if names:
            lines.append(f"{display.class_label(comparison)}: {', '.join(names)}.")
    similar = sum(1 for u in units if u["comparison"] == "similar")
    if similar:
        lines.append(
            ngettext(
                "Similar to the region: %(n)d unit.",
                "Similar to the region: %(n)d units.",
                similar,
            )
            % {"n": similar}
        )
    suppressed = sum(1 for u in units if u["suppressed"])
    other = sum(1 for u in units if u["comparison"] == "not_compared" and not u["suppressed"])
    if other:
        lines.append(
            ngettext("Not compared: %(n)d unit.", "Not compared: %(n)d units.", other)
            % {"n": other}
        )
    if suppressed:
        lines.append(
            ngettext(
                "Suppressed (small numbers): %(n)d unit.",
                "Suppressed (small numbers): %(n)d units.",
                suppressed,
            )
            % {"n": suppressed}
        )
    return lines


def _period_context(user, info: Mapping, stored, period: str | None) -> dict:
    kind, multiplier = info["kind"], info["multiplier"]
    decimals = display.value_decimals(kind, multiplier)
    target, target_text = _target(info)
    context: dict = {
        "period": period,
        "notice": services.suppression_notice(language()),
        "threshold": services.threshold(),
    }
    if period is None:
        return context
    rows = results(user, stored, {"period": period, "sex": TOTAL, "age_band": ALL_AGES})
    region = next((r for r in rows if r["unit_id"] is None), None)
    units = sorted(
        (r for r in rows if r["unit_id"] is not None), key=lambda r: r["unit_name"] or ""
    )
    units = [
        dict(
            display.decorate(u, kind, multiplier),
            url=reverse("indicators:unit", args=[u["unit_id"]]),
        )
        for u in units
    ]
    region = display.decorate(region, kind, multiplier) if region else None
    region_value = region["value"] if region else None
    shown = [u for u in units if u["value"] is not None and u["denominator"]]
    funnel = None
    funnel_description = ""
    class_lines = _class_summary(units)
    if shown:
        funnel = charts.funnel_chart(
            [
                {
                    "unit": u["unit_name"],
                    "value": u["value"],
                    "lower": u["lower"],
                    "upper": u["upper"],
                    "numerator": u["numerator"],
                    "denominator": u["denominator"],
                    "comparison": u["comparison"],
                    "url": u["url"],
                }
                for u in shown
            ],
            kind=kind,
            multiplier=multiplier,
            region_value=region_value,
            unit_label=info["unit_label"],
            x_title=_("Listed patients (denominator)")
            if kind == "rate_per_1000"
            else _("Denominator"),
            decimals=decimals,
            compared=info["compared"],
            target=target,
            target_text=target_text,
        )
        figures = {
            "period": period,
            "n": len(shown),
            "region": display.value_text(region_value, kind, multiplier, info["unit_label"]),
            "classes": " ".join(class_lines),
        }
        if info["compared"] and kind in ("proportion", "rate_per_1000"):
            funnel_description = (
                _(
                    "Funnel plot for %(period)s: %(n)d care units by size of the denominator and "
                    "value, against the region's value %(region)s with 95 %% and 99.8 %% funnel "
                    "limits around it. %(classes)s"
                )
                % figures
            )
        else:
            funnel_description = (
                _(
                    "Plot for %(period)s: %(n)d care units by size of the denominator and value, "
                    "against the region's value %(region)s (the units are not compared). "
                    "%(classes)s"
                )
                % figures
            )
    breakdown = results(user, stored, {"unit": "region", "period": period})
    by_sex = [
        display.decorate(r, kind, multiplier)
        for s in SEXES_WITH_TOTAL
        for r in breakdown
        if r["sex"] == s and r["age_band"] == ALL_AGES
    ]
    by_age = [
        display.decorate(r, kind, multiplier)
        for b in REPORT_AGE_BANDS
        for r in breakdown
        if r["age_band"] == b and r["sex"] == TOTAL
    ]
    sex_chart = age_chart = None
    if "sex" in info["breakdowns"] and any(r["value"] is not None for r in by_sex):
        sex_chart = charts.breakdown_chart(
            by_sex, by="sex", unit_label=info["unit_label"], decimals=decimals
        )
    if "age_band" in info["breakdowns"] and any(r["value"] is not None for r in by_age):
        age_chart = charts.breakdown_chart(
            by_age, by="age_band", unit_label=info["unit_label"], decimals=decimals
        )
    download = reverse("indicators:download", args=[info["code"]])
    context.update(
        {
            "region": region,
            "units": units,
            "funnel_chart": funnel,
            "funnel_description": funnel_description,
            "class_lines": class_lines,
            "by_sex": by_sex if "sex" in info["breakdowns"] else [],
            "by_age": by_age if "age_band" in info["breakdowns"] else [],
            "sex_chart": sex_chart,
            "age_chart": age_chart,
            "complete": region["is_complete"] if region else True,
            "downloads": {
                "period_csv": f"{download}?{urlencode({'period': period, 'format': 'csv'})}",
                "period_xlsx": f"{download}?{urlencode({'period': period, 'format': 'xlsx'})}",
                "all_csv": f"{download}?format=csv",
                "all_xlsx": f"{download}?format=xlsx",
            },
        }
    )
    return context


@login_required
@require_GET
def detail(request, code: str):
    """One indicator: the region's time series, a funnel plot and table of the units for one
    period, breakdowns by sex and age band, the suppression method, downloads."""
    access.require(request.user, "view")
    info = catalogue_entry(code)
    stored = stored_definition(code)
    region_rows = results(
        request.user, stored, {"unit": "region", "sex": TOTAL, "age_band": ALL_AGES}
    )
    kind = request.GET.get("period_type")
    if kind not in info["period_types"]:
        kind = display.default_period_kind(info["period_types"])
    periods = {r["period"] for r in region_rows}
    period = request.GET.get("period")
    if period not in periods:
        period = display.default_period(region_rows)
    context = {
        "info": info,
        "stored": stored,
        "outdated": stored is not None and stored.version != info["version"],
        "periods_by_kind": [
            (display.PERIOD_KIND_PLURALS[k], ps)
            for k, ps in display.periods_by_kind(region_rows).items()
        ],
        "unit_label": info["unit_label"],
        "is_analyst": access.sees_unsuppressed(request.user, None),
        "pending": None
        if region_rows
        else services.pending_work(access.get_region_for_user(request.user)),
    }
    if _wants_fragment(request, "series"):
        context.update(_series_context(info, region_rows, kind), period=period)
        return render(request, "indicators/_series.html", context)
    context.update(_period_context(request.user, info, stored, period))
    if _wants_fragment(request, "period-results"):
        context["series_kind"] = kind
        return render(request, "indicators/_period.html", context)
    context.update(_series_context(info, region_rows, kind))
    return render(request, "indicators/detail.html", context)


@login_required
@require_GET
def download(request, code: str):
    """The results of one indicator as CSV or XLSX, suppressed as the user's role requires
    (``services.export_results``). Filters as the API: period, period_type, sex, age_band,
    unit."""
    access.require(request.user, "view")
    catalogue_entry(code)
    fmt = request.GET.get("format", "csv")
    if fmt not in FORMATS:
        return HttpResponseBadRequest(_("format must be csv or xlsx"))
    try:
        filters = parse_filters(request.GET)
    except ValueError as exc:
        return HttpResponseBadRequest(str(exc))
    stored = stored_definition(code)
    if stored is None:
        raise Http404("no results have been computed")
    export = services.export_results(request.user, stored, filters, fmt)
    response = HttpResponse(export.content, content_type=export.content_type)
    response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    return response


# ----------------------------------------------------------------------------------------------
# One unit
# ----------------------------------------------------------------------------------------------


@login_required
@require_GET
def unit(request, unit_id: int):
    """Every indicator for one unit against the region: the latest complete period's value,
    interval, region value, target and class, and the trend over time."""
    access.require(request.user, "view")
    care_unit = access.get_unit_for_user(request.user, unit_id)
    kind = request.GET.get("period_type")
    if kind not in KINDS:
        kind = display.default_period_kind(KINDS)
    stored_rows = {d.code: d for d in IndicatorDefinition.objects.filter(is_current=True)}
    items = []
    for info in catalogue_for_display(language()):
        if kind not in info["period_types"]:
            continue
        k, multiplier = info["kind"], info["multiplier"]
        decimals = display.value_decimals(k, multiplier)
        rows = results(
            request.user,
            stored_rows.get(info["code"]),
            {"sex": TOTAL, "age_band": ALL_AGES, "period_kind": kind},
        )
        own = {r["period"]: r for r in rows if r["unit_id"] == care_unit.pk}
        region = {r["period"]: r for r in rows if r["unit_id"] is None}
        periods = sorted(set(own) | set(region), key=display.period_sort_key)
        latest = display.default_period([r for r in rows if r["unit_id"] is None]) or (
            periods[-1] if periods else None
        )
        current = own.get(latest) if latest else None
        region_now = region.get(latest) if latest else None
        trend = [
            {
                "period": p,
                "unit": own[p]["value"] if p in own else None,
                "region": region[p]["value"] if p in region else None,
                "unit_text": display.number(own[p]["value"] if p in own else None, decimals),
                "unit_suppressed": bool(own.get(p, {}).get("suppressed")),
                "region_text": display.number(
                    region[p]["value"] if p in region else None, decimals
                ),
                "region_suppressed": bool(region.get(p, {}).get("suppressed")),
            }
            for p in periods
        ]
        target, target_text = _target(info)
        chart = None
        if any(t["unit"] is not None or t["region"] is not None for t in trend):
            chart = charts.trend_chart(
                trend,
                unit_name=care_unit.name,
                unit_label=info["unit_label"],
                decimals=decimals,
                target=target,
                target_text=target_text,
            )
        items.append(
            {
                "info": info,
                "period": latest,
                "current": display.decorate(current, k, multiplier) if current else None,
                "region": display.decorate(region_now, k, multiplier) if region_now else None,
                "trend": trend,
                "chart": chart,
                "chart_description": _(
                    "Line chart of %(name)s by %(kind)s for %(unit)s (solid line) and the "
                    "region (dashed line)%(target)s. The figures are in the table below."
                )
                % {
                    "name": info["name"],
                    "kind": str(display.PERIOD_KIND_LABELS[kind]).lower(),
                    "unit": care_unit.name,
                    "target": (_(", with the target (%(t)s)") % {"t": target_text})
                    if target is not None
                    else "",
                },
            }
        )
    return render(
        request,
        "indicators/unit.html",
        {
            "unit": care_unit,
            "items": items,
            "period_kind": kind,
            "period_kinds": [(k, display.PERIOD_KIND_LABELS[k]) for k in KINDS],
            "notice": services.suppression_notice(language()),
            "own_unit": care_unit.pk in access.own_unit_ids(request.user),
            "is_analyst": access.sees_unsuppressed(request.user, None),
        },
    )
