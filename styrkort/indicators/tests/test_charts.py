"""Chart specifications (layers, fields, funnel limits, unit links), number formats and the
server-side SVG rendering. Plain functions: no database."""

from typing import Any

import pytest
from django.utils import translation

from styrkort.indicators import charts, display, statistics, svg

POINTS: list[dict[str, Any]] = [
    {"unit": "Vårdcentralen Ankarsrum", "value": 30.0, "lower": 20.0, "upper": 41.0,
     "numerator": 30, "denominator": 100, "comparison": "similar", "url": "/indicators/units/1/"},
    {"unit": "Hälsocentralen Björkby", "value": 70.0, "lower": 63.0, "upper": 76.0,
     "numerator": 140, "denominator": 200, "comparison": "better", "url": "/indicators/units/2/"},
    {"unit": "Vårdcentralen Dalby", "value": 10.0, "lower": 7.0, "upper": 14.0,
     "numerator": 30, "denominator": 300, "comparison": "worse", "url": "/indicators/units/3/"},
    {"unit": "Vårdcentralen Dold", "value": None, "lower": None, "upper": None,
     "numerator": None, "denominator": None, "comparison": "not_compared", "url": "/x/"},
]  # fmt: skip


@pytest.fixture(autouse=True)
def swedish():
    with translation.override("sv"):
        yield


def _layer(spec: dict, name: str) -> dict:
    return next(layer for layer in spec["layer"] if layer.get("name") == name)


def _values(spec: dict, name: str) -> list[dict]:
    layer = _layer(spec, name)
    return (layer.get("data") or spec["data"])["values"]


def _funnel(**kw) -> dict:
    args: dict[str, Any] = {
        "kind": "proportion", "multiplier": 100, "region_value": 33.3, "unit_label": "%",
        "x_title": "Nämnare", "target": 60.0, "target_text": "Mål: minst 60 %",
    }  # fmt: skip
    return charts.funnel_chart(POINTS, **(args | kw))


# --- funnel -----------------------------------------------------------------------------------


def test_the_funnel_has_limits_region_target_units_and_labels():
    spec = _funnel()
    names = [layer["name"] for layer in spec["layer"]]
    assert names == ["limits", "region", "target", "target_label", "units", "labels"]
    units = _layer(spec, "units")
    assert units["encoding"]["x"]["field"] == "denominator"
    assert units["encoding"]["y"]["field"] == "value"
    # Class by colour AND shape, never colour alone.
    assert units["encoding"]["color"]["field"] == "class"
    assert units["encoding"]["shape"]["field"] == "class"
    tooltip = [t["field"] for t in units["encoding"]["tooltip"]]
    assert tooltip[:2] == ["unit", "value"]
    assert {"numerator", "denominator", "class", "lower", "upper"} <= set(tooltip)
    assert _values(spec, "region")[0]["region"] == 33.3
    assert _values(spec, "target")[0]["target"] == 60.0
    assert spec["config"]["locale"]["number"]["decimal"] == ","


def test_every_funnel_point_carries_its_unit_url_and_suppressed_units_are_left_out():
    points = _values(_funnel(), "units")
    assert {p["unit"]: p["url"] for p in points} == {
        "Vårdcentralen Ankarsrum": "/indicators/units/1/",
        "Hälsocentralen Björkby": "/indicators/units/2/",
        "Vårdcentralen Dalby": "/indicators/units/3/",
    }
    # Outliers are named in the plot; similar units only on hover unless label_all.
    labels = {p["unit"]: p["label"] for p in points}
    assert labels["Hälsocentralen Björkby"] == "Hälsocentralen Björkby"
    assert labels["Vårdcentralen Ankarsrum"] == ""
    all_labels = {p["label"] for p in _values(_funnel(label_all=True), "units")}
    assert "Vårdcentralen Ankarsrum" in all_labels


def test_the_funnel_limits_are_the_statistics_modules():
    rows = charts.funnel_limits("proportion", 33.3, 100, 100, 300)
    assert {r["level"] for r in rows} == {"95\xa0%", "99,8\xa0%"}
    first = [r for r in rows if r["n"] == rows[0]["n"]]
    expected = statistics.funnel_limits_proportion(0.333, rows[0]["n"], (0.95, 0.998), 100)
    by = {(r["level"], r["side"]): r["limit"] for r in first}
    assert by[("95\xa0%", "lower")] == pytest.approx(expected.band(0.95).lower)
    assert by[("99,8\xa0%", "upper")] == pytest.approx(expected.band(0.998).upper)
    # The 99.8 % funnel is wider and narrows as the denominator grows.
    lows = [r["limit"] for r in rows if r["level"] == "99,8\xa0%" and r["side"] == "lower"]
    assert lows == sorted(lows)
    assert min(r["n"] for r in rows) < 100 < 300 < max(r["n"] for r in rows)


def test_rates_get_exact_poisson_limits():
    rows = charts.funnel_limits("rate_per_1000", 20.0, 1000, 500, 5000)
    n = rows[0]["n"]
    expected = statistics.funnel_limits_rate(20.0, n, (0.95, 0.998), 1000)
    upper = next(r["limit"] for r in rows if r["n"] == n and r["side"] == "upper"
                 and r["level"] == "95\xa0%")  # fmt: skip
    assert upper == pytest.approx(expected.band(0.95).upper)


def test_indicators_that_are_not_compared_get_no_limits():
    assert "limits" not in [lr["name"] for lr in _funnel(compared=False)["layer"]]
    assert charts.funnel_limits("median", 30, 1, 10, 100) == []
    assert "limits" not in [lr["name"] for lr in _funnel(kind="median", multiplier=1)["layer"]]


def test_a_suppressed_region_draws_no_centre_line_or_limits():
    names = [lr["name"] for lr in _funnel(region_value=None)["layer"]]
    assert "limits" not in names
    assert "region" not in names


# --- time series, breakdowns, trend -----------------------------------------------------------


def test_the_time_series_has_an_interval_band_a_line_and_the_target():
    rows = [
        {"period": "2025Q1", "value": 30.0, "lower": 25.0, "upper": 35.0},
        {"period": "2025Q2", "value": None, "lower": None, "upper": None},
        {"period": "2025Q3", "value": 40.0, "lower": 35.0, "upper": 45.0},
    ]
    spec = charts.time_series_chart(rows, unit_label="%", target=60.0, target_text="Mål")
    assert [lr["name"] for lr in spec["layer"]] == ["interval", "value", "target", "target_label"]
    band = _layer(spec, "interval")
    assert band["mark"]["type"] == "area"
    assert band["encoding"]["y"]["field"] == "lower"
    assert band["encoding"]["y2"]["field"] == "upper"
    line = _layer(spec, "value")
    assert line["encoding"]["x"]["sort"] == ["2025Q1", "2025Q2", "2025Q3"]
    assert [v["value"] for v in _values(spec, "value")] == [30.0, None, 40.0]
    no_target = charts.time_series_chart(rows, unit_label="%")
    assert [lr["name"] for lr in no_target["layer"]] == ["interval", "value"]


def test_breakdowns_have_bars_and_error_bars():
    rows = [
        {"sex": "K", "value": 30.0, "lower": 25.0, "upper": 35.0},
        {"sex": "M", "value": None, "lower": None, "upper": None},
        {"sex": "T", "value": 25.0, "lower": 22.0, "upper": 28.0},
    ]
    spec = charts.breakdown_chart(rows, by="sex", unit_label="%")
    assert [lr["name"] for lr in spec["layer"]] == ["bars", "errors"]
    assert _layer(spec, "errors")["mark"]["type"] == "errorbar"
    assert _layer(spec, "errors")["encoding"]["y2"]["field"] == "upper"
    assert len(_values(spec, "bars")) == 3
    ages = [{"age_band": b, "age_label": b, "value": 10.0, "lower": 8.0, "upper": 12.0}
            for b in ("18-24", "25-44")]  # fmt: skip
    spec = charts.breakdown_chart(ages, by="age_band", unit_label="%")
    assert _layer(spec, "bars")["encoding"]["x"]["sort"] == ["18-24", "25-44"]
    with pytest.raises(ValueError, match="sex or age_band"):
        charts.breakdown_chart(rows, by="unit", unit_label="%")


def test_the_trend_shows_the_unit_and_the_region_told_apart_without_colour():
    rows = [{"period": "2025Q1", "unit": 30.0, "region": 25.0},
            {"period": "2025Q2", "unit": None, "region": 26.0}]  # fmt: skip
    spec = charts.trend_chart(rows, unit_name="VC A", unit_label="%", target=60.0)
    trend = _layer(spec, "trend")
    assert trend["encoding"]["strokeDash"]["field"] == "series"
    assert {v["series"] for v in _values(spec, "trend")} == {"VC A", "Region"}
    assert "target" in [lr["name"] for lr in spec["layer"]]


def test_every_builder_makes_valid_vega_lite():
    """The builders skip schema validation at run time (it is slow); it happens here."""
    import altair as alt

    rows = [{"period": "2025Q1", "value": 30.0, "lower": 25.0, "upper": 35.0}]
    specs = [
        _funnel(),
        _funnel(compared=False, target=None),
        charts.time_series_chart(rows, unit_label="%", target=60.0, target_text="Mål"),
        charts.breakdown_chart([{"sex": "K", **rows[0]}], by="sex", unit_label="%"),
        charts.trend_chart(
            [{"period": "2025Q1", "unit": 1.0, "region": 2.0}],
            unit_name="A",
            unit_label="%",
            target=60.0,
        ),  # fmt: skip
    ]
    for spec in specs:
        alt.LayerChart.from_dict(spec, validate=True)


# --- number formats ---------------------------------------------------------------------------


def test_numbers_are_written_the_swedish_way_and_rounded():
    assert display.number(1234.56, 1) == "1\xa0234,6"
    assert display.number(64.2857, 1) == "64,3"  # rounded, not cut off
    assert display.number(None) == "–"
    assert display.value_text(23.45, "proportion", 100, "%") == "23,5\xa0%"
    assert display.value_text(12.25, "rate_per_1000", 1000, "per 1 000 listade") == (
        "12,3 per 1 000 listade"
    )
    assert display.count(1234.0) == "1\xa0234"
    assert display.count(2.5) == "2,50"  # FTE
    assert display.interval_text(5.8, 12.45, 1) == "5,8–12,5"
    with translation.override("en"):
        assert display.number(1234.56, 1) == "1,234.6"


def test_the_default_period_is_the_latest_complete_quarter():
    rows = [
        {"period": "2025Q1", "period_kind": "quarter", "is_complete": True},
        {"period": "2025Q2", "period_kind": "quarter", "is_complete": False},
        {"period": "2025", "period_kind": "year", "is_complete": False},
        {"period": "2025-04", "period_kind": "month", "is_complete": True},
    ]
    assert display.default_period(rows) == "2025Q1"
    assert display.default_period(rows[1:3]) == "2025Q2"  # nothing complete: the latest
    assert display.default_period([]) is None


# --- SVG --------------------------------------------------------------------------------------


def test_it_renders_the_funnel_to_svg_with_the_unit_names():
    out = svg.render_svg(_funnel(label_all=True))
    assert out.lstrip().startswith("<svg")
    for name in ("Vårdcentralen Ankarsrum", "Hälsocentralen Björkby", "Vårdcentralen Dalby"):
        assert name in out
    assert "Vårdcentralen Dold" not in out  # suppressed: not drawn
    assert 'width="' in out


def test_it_renders_every_chart_offline():
    series = charts.time_series_chart(
        [{"period": "2025Q1", "value": 1234.5, "lower": 1200.0, "upper": 1300.0}],
        unit_label="per 1 000",
    )
    out = svg.render_svg(series, width=400)
    assert "<svg" in out
    assert "2025Q1" in out
    bars = charts.breakdown_chart(
        [{"sex": "K", "value": 30.0, "lower": 25.0, "upper": 35.0}], by="sex", unit_label="%"
    )
    assert "<svg" in svg.render_svg(bars)
    # A spec that would fetch data from the network is refused, not fetched.
    with pytest.raises(ValueError):  # noqa: PT011
        svg.render_svg({"data": {"url": "https://example.org/x.csv"}, "mark": "point"})
