"""Charts of the organisation pages: Altair charts returned as Vega-Lite dicts.

Each builder takes the plain rows from `queries` and returns `chart.to_dict()` with the
number locale of the active language, so the browser shows 1 234,5 in Swedish. Pages render
them with the `{% chart %}` tag and always show the same figures in a table as well.
"""

from __future__ import annotations

from decimal import Decimal

import altair as alt
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from styrkort import breakdowns

# d3-format locales (Vega's `config.locale`); Swedish groups with a no-break space.
_NUMBER_LOCALES = {
    "sv": {"decimal": ",", "thousands": "\u00a0", "grouping": [3], "currency": ["", "\u00a0kr"]},
    "en": {"decimal": ".", "thousands": ",", "grouping": [3], "currency": ["", " kr"]},
}
# Colours with at least 3:1 contrast against white (WCAG 1.4.11 non-text contrast).
WOMEN_COLOUR, MEN_COLOUR, TOTAL_COLOUR = "#8a3b8f", "#0b6e4f", "#0b4f71"
KIND_COLOURS = {"region": "#0b4f71", "private": "#a04d00"}
WIDTH = "container"


def _finish(chart: alt.TopLevelMixin) -> dict:
    # Validating against the Vega-Lite schema costs about a second per page; the tests validate
    # every builder's output instead (test_views.test_it_builds_valid_vega_lite).
    spec = chart.to_dict(validate=False)
    language = (get_language() or "sv")[:2]
    config = spec.setdefault("config", {})
    config["locale"] = {"number": _NUMBER_LOCALES.get(language, _NUMBER_LOCALES["sv"])}
    config.setdefault("axis", {}).update({"labelFontSize": 12, "titleFontSize": 12})
    config.setdefault("legend", {}).update({"labelFontSize": 12, "titleFontSize": 12})
    return spec


def _plain(value):
    """Vega reads numbers, not Decimals; charts show FTE to two decimals anyway."""
    return float(value) if isinstance(value, Decimal) else value


def listed_by_month_chart(rows: list[dict], *, by_sex: bool = True) -> dict:
    """A line per series (women, men, all) of listed patients by month.

    `rows` as from `queries.listed_by_month`; with by_sex=False only the total is drawn.
    """
    labels = {
        "K": str(breakdowns.SEX_LABELS["K"]),
        "M": str(breakdowns.SEX_LABELS["M"]),
        "T": str(breakdowns.SEX_LABELS["T"]),
    }
    series = ("K", "M", "T") if by_sex else ("T",)
    values = [
        {"month": r["month"], "series": labels[s], "listed": r[s]} for r in rows for s in series
    ]
    colours = {"K": WOMEN_COLOUR, "M": MEN_COLOUR, "T": TOTAL_COLOUR}
    dashes = {"K": [6, 3], "M": [2, 2], "T": [1, 0]}
    chart = (
        alt.Chart(alt.Data(values=values))
        .mark_line(point=True, strokeWidth=2)
        .encode(
            x=alt.X("month:O", title=_("Month"), axis=alt.Axis(labelAngle=-45)),
            y=alt.Y("listed:Q", title=_("Listed patients"), axis=alt.Axis(format=",d")),
            color=alt.Color(
                "series:N",
                title=_("Sex"),
                scale=alt.Scale(
                    domain=[labels[s] for s in series], range=[colours[s] for s in series]
                ),
            ),
            # Dashes tell the lines apart without colour (WCAG 1.4.1); one merged legend.
            strokeDash=alt.StrokeDash(
                "series:N",
                title=_("Sex"),
                scale=alt.Scale(
                    domain=[labels[s] for s in series],
                    range=[dashes[s] for s in series],
                ),
            ),
            tooltip=[
                alt.Tooltip("month:O", title=_("Month")),
                alt.Tooltip("series:N", title=_("Sex")),
                alt.Tooltip("listed:Q", title=_("Listed patients"), format=",d"),
            ],
        )
        .properties(width=WIDTH, height=280)
    )
    return _finish(chart)


def pyramid_chart(rows: list[dict]) -> dict:
    """An age–sex pyramid: women to the left, men to the right, the oldest band on top.

    `rows` as from `queries.pyramid`.
    """
    women, men = str(breakdowns.SEX_LABELS["K"]), str(breakdowns.SEX_LABELS["M"])
    values = []
    for r in rows:
        values.append({"age_band": r["age_band"], "sex": women, "listed": r["K"], "x": -r["K"]})
        values.append({"age_band": r["age_band"], "sex": men, "listed": r["M"], "x": r["M"]})
    order = list(reversed(breakdowns.AGE_BANDS))
    chart = (
        alt.Chart(alt.Data(values=values))
        .mark_bar()
        .encode(
            y=alt.Y("age_band:O", title=_("Age"), sort=order),
            x=alt.X(
                "x:Q",
                title=_("Listed patients (women left, men right)"),
                axis=alt.Axis(labelExpr="format(abs(datum.value), ',d')"),
            ),
            color=alt.Color(
                "sex:N",
                title=_("Sex"),
                scale=alt.Scale(domain=[women, men], range=[WOMEN_COLOUR, MEN_COLOUR]),
            ),
            tooltip=[
                alt.Tooltip("age_band:O", title=_("Age")),
                alt.Tooltip("sex:N", title=_("Sex")),
                alt.Tooltip("listed:Q", title=_("Listed patients"), format=",d"),
            ],
        )
        .properties(width=WIDTH, height=380)
    )
    return _finish(chart)


def units_by_provider_chart(rows: list[dict]) -> dict:
    """Bars of active units per provider, coloured by kind (`queries.units_by_provider`)."""
    kinds = sorted({r["kind"] for r in rows})
    labels = {r["kind"]: r["kind_label"] for r in rows}
    values = [
        {"provider": r["provider"], "kind": r["kind_label"], "units": r["active"]} for r in rows
    ]
    chart = (
        alt.Chart(alt.Data(values=values))
        .mark_bar()
        .encode(
            y=alt.Y("provider:N", title=_("Provider"), sort="-x"),
            x=alt.X("units:Q", title=_("Active units"), axis=alt.Axis(format="d", tickMinStep=1)),
            color=alt.Color(
                "kind:N",
                title=_("Kind"),
                scale=alt.Scale(
                    domain=[labels[k] for k in kinds],
                    range=[KIND_COLOURS.get(k, "#333") for k in kinds],
                ),
            ),
            tooltip=[
                alt.Tooltip("provider:N", title=_("Provider")),
                alt.Tooltip("kind:N", title=_("Kind")),
                alt.Tooltip("units:Q", title=_("Active units")),
            ],
        )
        .properties(width=WIDTH, height=max(120, 28 * len(rows)))
    )
    return _finish(chart)


def psychosocial_chart(rows: list[dict]) -> dict:
    """Bars of psychosocial FTE per 10,000 listed per unit (`queries.psychosocial_by_unit`);
    clicking a bar opens the unit (rows may carry a `url`)."""
    values = [
        {
            "unit": r["name"],
            "per_10000": _plain(r["per_10000"]) if r["per_10000"] is not None else 0,
            "fte": _plain(r["fte"]),
            "listed": r["listed"],
            "url": r.get("url", ""),
        }
        for r in rows
    ]
    chart = (
        alt.Chart(alt.Data(values=values))
        .mark_bar(color=TOTAL_COLOUR)
        .encode(
            y=alt.Y("unit:N", title=_("Care unit"), sort="-x"),
            x=alt.X("per_10000:Q", title=_("Psychosocial FTE per 10,000 listed")),
            tooltip=[
                alt.Tooltip("unit:N", title=_("Care unit")),
                alt.Tooltip("per_10000:Q", title=_("Per 10,000 listed"), format=",.2f"),
                alt.Tooltip("fte:Q", title=_("FTE"), format=",.2f"),
                alt.Tooltip("listed:Q", title=_("Listed patients"), format=",d"),
            ],
        )
        .properties(width=WIDTH, height=max(120, 22 * len(rows)))
    )
    return _finish(chart)
