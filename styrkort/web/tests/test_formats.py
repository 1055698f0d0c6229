"""Numbers as Swedish readers expect them, rounded rather than cut."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import translation

from styrkort.web.templatetags.styrkort import kr, num, pct


@pytest.mark.parametrize(
    ("value", "decimals", "expected"),
    [
        (1234.5, 1, "1\xa0234,5"),
        (64.2857, 1, "64,3"),
        (64.25, 1, "64,3"),
        (0.04, 1, "0,0"),
        (0.05, 1, "0,1"),
        (299999.6, 0, "300\xa0000"),
        (Decimal("2.345"), 2, "2,35"),
        (None, 0, "–"),
        ("", 1, "–"),
    ],
)
def test_it_formats_and_rounds_numbers_the_swedish_way(value, decimals, expected):
    with translation.override("sv"):
        assert num(value, decimals) == expected


def test_it_shows_a_proportion_as_a_rounded_percentage():
    with translation.override("sv"):
        assert pct(0.642857) == "64,3\xa0%"
        assert pct(0.5, 0) == "50\xa0%"
        assert pct(None) == "–"


def test_it_formats_kronor_with_spaces():
    assert kr(14446372) == "14\xa0446\xa0372\xa0kr"
