"""Fixtures for the grants: a registered grant, listings at the reference month, a decided plan
and accounts, all made through the services as the personas would."""

from __future__ import annotations

from datetime import date

import pytest

from styrkort.grants import services
from styrkort.organisation.models import Listing

POPULATION_TEXT = "lan_code,population\n" + "".join(
    f"{code},{pop}\n"
    for code, pop in {
        "01": 2473307, "03": 407912, "04": 301542, "05": 472446, "06": 370009, "07": 203351,
        "08": 246352, "09": 60971, "10": 157223, "12": 1428626, "13": 345074, "14": 1772821,
        "17": 283384, "18": 308375, "19": 281158, "20": 286546, "21": 284558, "22": 241458,
        "23": 132839, "24": 281138, "25": 248620,
    }.items()
)  # fmt: skip


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    """Attachments are written under MEDIA_ROOT: a temporary directory in the tests."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _english(settings):
    """Messages are asserted in English (the msgids); the product's default is Swedish, which
    a translator fills in later, so the tests must not depend on the Swedish wording."""
    from django.utils import translation

    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


def add_listings(unit, month: str, women: int, men: int) -> None:
    Listing.objects.create(unit=unit, month=month, sex="K", age_band="25-29", listed=women)
    Listing.objects.create(unit=unit, month=month, sex="M", age_band="25-29", listed=men)


@pytest.fixture
def listings(unit_a, unit_b, unit_c):
    """October 2025: unit_a 6 000 listed, unit_b 4 000; unit_c closed (listed in 2024)."""
    add_listings(unit_a, "2025-10", 3_000, 3_000)
    add_listings(unit_b, "2025-10", 2_500, 1_500)
    add_listings(unit_c, "2024-10", 1_000, 1_000)


@pytest.fixture
def grant(users):
    return services.create_grant(
        users["analyst"],
        name="Psykisk ohälsa i primärvården 2025",
        dnr="S2025/01234",
        total=1_000_000,
        national_total=496_000_000,
        first_year=2025,
        accounts_deadline=date(2026, 1, 31),
        report_deadline=date(2026, 3, 15),
        repayment_deadline=date(2026, 3, 31),
        purpose="Stärka primärvårdens arbete med psykisk ohälsa",
        conditions="Jämställdhet, barnrätt och funktionshinder ska beaktas.",
    )


def plan_spec(**overrides):
    values = {
        "reference_month": "2025-10",
        "central_items": [{"name": "Utbildning", "percent": "15", "category": "utbildning"}],
    }
    values.update(overrides)
    return services.plan_input_from_values(values)


@pytest.fixture
def decided_plan(users, grant, listings):
    plan = services.create_plan(users["analyst"], grant, plan_spec())
    services.decide_plan(users["analyst"], plan, dnr="RS 2025-100")
    plan.refresh_from_db()
    return plan
