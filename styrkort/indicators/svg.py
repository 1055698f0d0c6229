"""Server-side rendering of the indicator charts to SVG (for PDF reports and e-mail).

The same Vega-Lite specifications the pages render in the browser are rendered here by
vl-convert (a bundled Vega/Vega-Lite in Rust: no browser, no network). Data are inline in
every spec; external data URLs are refused. A width of "container" (the pages' responsive
width) is replaced by a fixed width, as there is no container outside a page.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import vl_convert
from django.utils.translation import get_language

DEFAULT_WIDTH = 640

# d3-format locale for vl-convert, as in charts.py (the spec's config.locale is not read by
# every renderer, so it is passed explicitly as well).
_FORMAT_LOCALES = {
    "sv": {"decimal": ",", "thousands": "\u00a0", "grouping": [3], "currency": ["", "\u00a0kr"]},
    "en": {"decimal": ".", "thousands": ",", "grouping": [3], "currency": ["", " kr"]},
}


def _fixed_width(spec: dict, width: int) -> None:
    if spec.get("width") == "container":
        spec["width"] = width
    for key in ("layer", "hconcat", "vconcat", "concat"):
        for sub in spec.get(key, ()):
            if isinstance(sub, dict):
                _fixed_width(sub, width)


def render_svg(spec: Mapping, *, width: int = DEFAULT_WIDTH, language: str | None = None) -> str:
    """The chart as an SVG document (text). ``language`` ("sv"/"en", default the active one)
    picks the number format."""
    fixed = copy.deepcopy(dict(spec))
    _fixed_width(fixed, width)
    language = (language or get_language() or "sv")[:2]
    return vl_convert.vegalite_to_svg(
        fixed,
        allowed_base_urls=[],
        format_locale=_FORMAT_LOCALES.get(language, _FORMAT_LOCALES["sv"]),
    )
