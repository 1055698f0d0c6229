"""Charts of the indicator pages: Altair charts returned as Vega-Lite dicts.

Builders take plain rows (as ``services.results_for`` gives them, suppressed figures already
None) and return ``chart.to_dict()`` with the number locale of the active language. Every
layer has a ``name`` so tests and the PDF renderer (``svg.py``) can find it. Pages render the
specs with the ``{% chart %}`` tag and always show the same figures in a table as well.

Funnel limits are drawn around the region's value with the statistics module's formulas:
Spiegelhalter's normal limits for proportions and exact Poisson limits for rates, at 95 % and
99.8 %; the units' classes come from the engine (99.8 % limits), the same test as the lines.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import altair as alt
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from styrkort.breakdowns import SEX_LABELS
from styrkort.indicators import statistics
from styrkort.indicators.display import class_label

# d3-format locales (Vega's ``config.locale``); Swedish groups with a no-break space.
_NUMBER_LOCALES = {
    "sv": {"decimal": ",", "thousands": "\u00a0", "grouping": [3], "currency": ["", "\u00a0kr"]},
    "en": {"decimal": ".", "thousands": ",", "grouping": [3], "currency": ["", " kr"]},
}
# Colours with at least 3:1 contrast against white (WCAG 1.4.11), as on the organisation pages.
WOMEN_COLOUR, MEN_COLOUR, TOTAL_COLOUR = "#8a3b8f", "#0b6e4f", "#0b4f71"
UNIT_COLOUR, REGION_COLOUR = "#0b4f71", "#4a4a4a"
LIMIT_COLOUR, TARGET_COLOUR = "#595959", "#a04d00"
#: Class -> (colour, shape): the shape tells the classes apart without colour (WCAG 1.4.1).
CLASS_STYLES = {
    "better": ("#1d6b36", "triangle-up"),
    "worse": ("#a4161a", "triangle-down"),
    "higher": ("#0b4f71", "triangle-up"),
    "lower": ("#8a5300", "triangle-down"),
    "similar": ("#4a4a4a", "circle"),
    "not_compared": ("#6b6b6b", "square"),
}
CLASS_ORDER = ("better", "higher", "similar", "lower", "worse", "not_compared")
LEVELS = (0.95, 0.998)
WIDTH = "container"


def _finish(chart: alt.TopLevelMixin) -> dict:
    # Schema validation costs a tenth of a second per chart (the unit page draws seventeen);
    # the tests validate every builder's output instead (test_charts).
    spec = chart.to_dict(validate=False)
    language = (get_language() or "sv")[:2]
    config = spec.setdefault("config", {})
    config["locale"] = {"number": _NUMBER_LOCALES.get(language, _NUMBER_LOCALES["sv"])}
    config.setdefault("axis", {}).update({"labelFontSize": 12, "titleFontSize": 12})
    config.setdefault("legend", {}).update({"labelFontSize": 12, "titleFontSize": 12})
    return spec


def _format(decimals: int) -> str:
    return f",.{decimals}f"


def _level_label(level: float) -> str:
    text = f"{level * 100:.1f}".rstrip("0").rstrip(".")
    if (get_language() or "sv")[:2] == "sv":
        text = text.replace(".", ",")
    return f"{text}\u00a0%"


def _target_layer(target: float, text: str) -> tuple[alt.Chart, alt.Chart]:
    """A dashed rule at the target and its label (two layers)."""
    data = alt.Data(values=[{"target": target, "label": text}])
    rule = (
        alt.Chart(data)
        .mark_rule(color=TARGET_COLOUR, strokeDash=[8, 4], strokeWidth=2)
        .encode(y="target:Q", tooltip=[alt.Tooltip("label:N", title=_("Target"))])
        .properties(name="target")
    )
    label = (
        alt.Chart(data)
        .mark_text(align="left", baseline="bottom", dx=4, dy=-2, color=TARGET_COLOUR)
        .encode(y="target:Q", x=alt.value(0), text="label:N")
        .properties(name="target_label")
    )
    return rule, label


# ----------------------------------------------------------------------------------------------
# Time series
# ----------------------------------------------------------------------------------------------


def time_series_chart(
    rows: Sequence[Mapping],
    *,
    unit_label: str,
    decimals: int = 1,
    target: float | None = None,
    target_text: str = "",
) -> dict:
    """The region's value by period with its 95 % interval as a band and the target as a
    dashed line. ``rows``: period, value, lower, upper (suppressed periods have None values
    and leave a gap in the band)."""
    periods = [r["period"] for r in rows]
    values = [
        {
            "period": r["period"],
            "value": r.get("value"),
            "lower": r.get("lower"),
            "upper": r.get("upper"),
        }
        for r in rows
    ]
    fmt = _format(decimals)
    x = alt.X("period:O", title=_("Period"), sort=periods, axis=alt.Axis(labelAngle=-45))
    base = alt.Chart(alt.Data(values=values))
    band = (
        base.mark_area(color=TOTAL_COLOUR, opacity=0.2)
        .encode(x=x, y=alt.Y("lower:Q", title=unit_label), y2="upper:Q")
        .properties(name="interval")
    )
    line = (
        base.mark_line(color=TOTAL_COLOUR, strokeWidth=2, point=alt.OverlayMarkDef(size=50))
        .encode(
            x=x,
            y=alt.Y("value:Q", title=unit_label),
            tooltip=[
                alt.Tooltip("period:O", title=_("Period")),
                alt.Tooltip("value:Q", title=_("Value"), format=fmt),
                alt.Tooltip("lower:Q", title=_("Lower limit (95 %)"), format=fmt),
                alt.Tooltip("upper:Q", title=_("Upper limit (95 %)"), format=fmt),
            ],
        )
        .properties(name="value")
    )
    layers = [band, line]
    if target is not None:
        layers.extend(_target_layer(target, target_text or _("Target")))
    chart = alt.layer(*layers).properties(width=WIDTH, height=260)
    return _finish(chart)


# ----------------------------------------------------------------------------------------------
# Funnel plot
# ----------------------------------------------------------------------------------------------


def funnel_limits(
    kind: str, region_value: float, multiplier: float, n_min: float, n_max: float, steps: int = 60
) -> list[dict]:
    """Points of the 95 % and 99.8 % funnel limits around the region's value, on a
    logarithmic grid of denominators from about ``n_min`` to ``n_max``.

    Proportions: normal limits (``statistics.funnel_limits_proportion``); rates: exact Poisson
    limits (``statistics.funnel_limits_rate``). Other kinds have no funnel: []. Each row:
    n, level (label), side (lower/upper), limit.
    """
    if kind not in ("proportion", "rate_per_1000") or region_value is None or n_max <= 0:
        return []
    low = max(1.0, n_min * 0.8)
    high = max(low * 1.5, n_max * 1.15)
    grid = [low * (high / low) ** (i / (steps - 1)) for i in range(steps)]
    rows = []
    for n in grid:
        if kind == "proportion":
            p = min(1.0, max(0.0, region_value / multiplier))
            limits = statistics.funnel_limits_proportion(p, n, LEVELS, multiplier)
        else:
            limits = statistics.funnel_limits_rate(region_value, n, LEVELS, multiplier)
        for band in limits.bands:
            for side, limit in (("lower", band.lower), ("upper", band.upper)):
                if limit is not None and math.isfinite(limit):
                    rows.append(
                        {
                            "n": round(n, 3),
                            "level": _level_label(band.level),
                            "side": side,
                            "limit": limit,
                        }
                    )
    return rows


def funnel_chart(
    points: Sequence[Mapping],
    *,
    kind: str,
    multiplier: float,
    region_value: float | None,
    unit_label: str,
    x_title: str,
    decimals: int = 1,
    compared: bool = True,
    target: float | None = None,
    target_text: str = "",
    label_all: bool = False,
) -> dict:
    """Units by denominator (x) and value (y) with the region's value, its 95 % and 99.8 %
    funnel limits, and the target.

    ``points``: unit (name), value, lower, upper, numerator, denominator, comparison, url.
    Units without a value (suppressed, no data) are left out. Points are coloured and shaped
    by class; each carries ``url`` so that a click opens the unit (static/styrkort/charts.js).
    Units outside the limits are labelled with their names; ``label_all`` labels every unit
    (for static renderings such as PDF reports, where there are no tooltips).
    """
    fmt = _format(decimals)
    shown = [p for p in points if p.get("value") is not None and p.get("denominator")]
    present = [c for c in CLASS_ORDER if any(p.get("comparison") == c for p in shown)]
    domain = [class_label(c) for c in present]
    values = []
    for p in shown:
        comparison = p.get("comparison") or "not_compared"
        outlier = comparison in ("better", "worse", "higher", "lower")
        values.append(
            {
                "unit": p["unit"],
                "value": p["value"],
                "lower": p.get("lower"),
                "upper": p.get("upper"),
                "numerator": p.get("numerator"),
                "denominator": p["denominator"],
                "class": class_label(comparison),
                "url": p.get("url", ""),
                "label": p["unit"] if (label_all or outlier) else "",
            }
        )
    layers = []
    if compared and region_value is not None and shown:
        limits = funnel_limits(
            kind,
            region_value,
            multiplier,
            min(p["denominator"] for p in shown),
            max(p["denominator"] for p in shown),
        )
        if limits:
            levels = [_level_label(level) for level in LEVELS]
            layers.append(
                alt.Chart(alt.Data(values=limits))
                .mark_line(color=LIMIT_COLOUR, strokeWidth=1.5)
                .encode(
                    x=alt.X("n:Q", title=x_title, scale=alt.Scale(zero=False)),
                    y=alt.Y("limit:Q", title=unit_label),
                    detail="side:N",
                    strokeDash=alt.StrokeDash(
                        "level:N",
                        title=_("Funnel limits"),
                        scale=alt.Scale(domain=levels, range=[[6, 3], [2, 2]]),
                    ),
                    tooltip=[alt.Tooltip("level:N", title=_("Funnel limits"))],
                )
                .properties(name="limits")
            )
    if region_value is not None:
        layers.append(
            alt.Chart(alt.Data(values=[{"region": region_value, "label": _("Region")}]))
            .mark_rule(color=REGION_COLOUR, strokeWidth=1.5)
            .encode(
                y="region:Q",
                tooltip=[
                    alt.Tooltip("label:N", title=_("Region")),
                    alt.Tooltip("region:Q", title=_("Value"), format=fmt),
                ],
            )
            .properties(name="region")
        )
    if target is not None:
        layers.extend(_target_layer(target, target_text or _("Target")))
    base = alt.Chart(alt.Data(values=values))
    layers.append(
        base.mark_point(filled=True, size=90, opacity=0.9, cursor="pointer")
        .encode(
            x=alt.X("denominator:Q", title=x_title, scale=alt.Scale(zero=False)),
            y=alt.Y("value:Q", title=unit_label),
            color=alt.Color(
                "class:N",
                title=_("Compared with the region"),
                scale=alt.Scale(domain=domain, range=[CLASS_STYLES[c][0] for c in present]),
            ),
            shape=alt.Shape(
                "class:N",
                title=_("Compared with the region"),
                scale=alt.Scale(domain=domain, range=[CLASS_STYLES[c][1] for c in present]),
            ),
            tooltip=[
                alt.Tooltip("unit:N", title=_("Care unit")),
                alt.Tooltip("value:Q", title=_("Value"), format=fmt),
                alt.Tooltip("lower:Q", title=_("Lower limit (95 %)"), format=fmt),
                alt.Tooltip("upper:Q", title=_("Upper limit (95 %)"), format=fmt),
                alt.Tooltip("numerator:Q", title=_("Numerator"), format=",.4~f"),
                alt.Tooltip("denominator:Q", title=_("Denominator"), format=",.4~f"),
                alt.Tooltip("class:N", title=_("Compared with the region")),
            ],
        )
        .properties(name="units")
    )
    layers.append(
        base.transform_filter("datum.label != ''")
        .mark_text(align="left", dx=8, fontSize=11, color="#1a1a1a")
        .encode(x="denominator:Q", y="value:Q", text="label:N")
        .properties(name="labels")
    )
    chart = alt.layer(*layers).properties(width=WIDTH, height=360)
    return _finish(chart)


# ----------------------------------------------------------------------------------------------
# Breakdowns
# ----------------------------------------------------------------------------------------------

_SEX_COLOURS = {"K": WOMEN_COLOUR, "M": MEN_COLOUR, "T": TOTAL_COLOUR}


def breakdown_chart(
    rows: Sequence[Mapping],
    *,
    by: str,
    unit_label: str,
    decimals: int = 1,
) -> dict:
    """Bars of the region's value by sex (``by="sex"``) or age band (``by="age_band"``) with
    95 % error bars. ``rows``: sex or age_band, value, lower, upper (suppressed: None)."""
    if by not in ("sex", "age_band"):
        raise ValueError("by must be sex or age_band")
    fmt = _format(decimals)
    title = _("Sex") if by == "sex" else _("Age band")
    values: list[dict[str, Any]] = []
    for r in rows:
        key = r[by]
        label = str(SEX_LABELS.get(key, key)) if by == "sex" else r.get("age_label", key)
        values.append(
            {
                "group": label,
                "value": r.get("value"),
                "lower": r.get("lower"),
                "upper": r.get("upper"),
                "colour": _SEX_COLOURS.get(key, TOTAL_COLOUR) if by == "sex" else TOTAL_COLOUR,
            }
        )
    order = [v["group"] for v in values]
    x = alt.X("group:N", title=title, sort=order, axis=alt.Axis(labelAngle=0))
    base = alt.Chart(alt.Data(values=values))
    bars = (
        base.mark_bar(opacity=0.85)
        .encode(
            x=x,
            y=alt.Y("value:Q", title=unit_label),
            color=alt.Color("colour:N", scale=None, legend=None),
            tooltip=[
                alt.Tooltip("group:N", title=title),
                alt.Tooltip("value:Q", title=_("Value"), format=fmt),
                alt.Tooltip("lower:Q", title=_("Lower limit (95 %)"), format=fmt),
                alt.Tooltip("upper:Q", title=_("Upper limit (95 %)"), format=fmt),
            ],
        )
        .properties(name="bars")
    )
    errors = (
        base.mark_errorbar(ticks=True, color="#1a1a1a")
        .encode(x=x, y=alt.Y("lower:Q", title=unit_label), y2="upper:Q")
        .properties(name="errors")
    )
    chart = alt.layer(bars, errors).properties(width=WIDTH, height=240)
    return _finish(chart)


# ----------------------------------------------------------------------------------------------
# Trend of one unit against the region
# ----------------------------------------------------------------------------------------------


def trend_chart(
    rows: Sequence[Mapping],
    *,
    unit_name: str,
    unit_label: str,
    decimals: int = 1,
    target: float | None = None,
    target_text: str = "",
) -> dict:
    """A small chart of a unit's value and the region's by period (solid and dashed lines).

    ``rows``: period, unit (value or None), region (value or None)."""
    fmt = _format(decimals)
    region = _("Region")
    periods = [r["period"] for r in rows]
    values = []
    for r in rows:
        values.append({"period": r["period"], "series": unit_name, "value": r.get("unit")})
        values.append({"period": r["period"], "series": region, "value": r.get("region")})
    domain = [unit_name, region]
    chart_layers = [
        alt.Chart(alt.Data(values=values))
        .mark_line(strokeWidth=2, point=alt.OverlayMarkDef(size=30))
        .encode(
            x=alt.X("period:O", title=None, sort=periods, axis=alt.Axis(labelAngle=-45)),
            y=alt.Y("value:Q", title=unit_label, scale=alt.Scale(zero=False)),
            color=alt.Color(
                "series:N",
                title=None,
                scale=alt.Scale(domain=domain, range=[UNIT_COLOUR, REGION_COLOUR]),
                legend=alt.Legend(orient="bottom", symbolType="stroke"),
            ),
            strokeDash=alt.StrokeDash(
                "series:N",
                title=None,
                scale=alt.Scale(domain=domain, range=[[1, 0], [5, 3]]),
                legend=alt.Legend(orient="bottom", symbolType="stroke"),
            ),
            tooltip=[
                alt.Tooltip("period:O", title=_("Period")),
                alt.Tooltip("series:N", title=_("Series")),
                alt.Tooltip("value:Q", title=_("Value"), format=fmt),
            ],
        )
        .properties(name="trend")
    ]
    if target is not None:
        chart_layers.append(_target_layer(target, target_text or _("Target"))[0])
    chart = alt.layer(*chart_layers).properties(width=WIDTH, height=150)
    return _finish(chart)
