"""Test personas shared by every app's tests.

Region Exempel has two providers and three units. Personas, one per role: `admin`, `analyst`,
`auditor`, `viewer`, `manager` (owns unit_a), `colleague` (a unit manager who owns unit_b), and
`outsider` (an analyst in another region). `nobody` is logged in but has no role.
"""

from __future__ import annotations

from datetime import date

import pytest

PASSWORD = "correct-horse-battery-staple"


DB_FIXTURES = {"db", "transactional_db", "django_db_reset_sequences", "live_server"}


def pytest_addoption(parser):
    parser.addoption(
        "--database-tests-only",
        action="store_true",
        help="run only tests that use the database (the second, PostgreSQL pass of make test: "
        "tests of plain functions gain nothing from running twice)",
    )


def _uses_database(item) -> bool:
    names = set(getattr(item, "fixturenames", ()))
    return bool(names & DB_FIXTURES) or item.get_closest_marker("django_db") is not None


def pytest_collection_modifyitems(config, items):
    """`postgres_only` tests are skipped on SQLite; `--database-tests-only` deselects the rest."""
    from django.conf import settings

    if config.getoption("--database-tests-only"):
        kept = [i for i in items if _uses_database(i)]
        config.hook.pytest_deselected(items=[i for i in items if not _uses_database(i)])
        items[:] = kept
    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (make test runs it again on PostgreSQL)")
    for item in items:
        if item.get_closest_marker("postgres_only"):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    # PBKDF2 at Django's default work factor costs ~0.4 s per user; personas are made per test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session", autouse=True)
def _static_files_looked_up_per_request():
    """Every test client builds its own middleware chain, and WhiteNoise outside autorefresh
    indexes every static file the finders know when it is built: tens of milliseconds per
    client, and the access matrix alone makes some 1,500 clients. Tests serve few static
    files, so they look each one up when it is asked for (WhiteNoise's development mode)."""
    from django.test import override_settings

    with override_settings(WHITENOISE_AUTOREFRESH=True):
        yield


@pytest.fixture(autouse=True)
def _english_in_tests(settings):
    """Assertions read the source strings (English); Styrkort's default is Swedish, which
    styrkort/web/tests/test_translations.py, test_shell.py and the browser tests check."""
    from django.utils import translation

    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


@pytest.fixture
def swedish(settings):
    """Swedish words and number formats, as users get them by default."""
    from django.utils import translation

    settings.LANGUAGE_CODE = "sv"
    with translation.override("sv"):
        yield


@pytest.fixture
def region(db):
    from styrkort.organisation.models import Region

    return Region.objects.create(name="Region Exempel", lan_code="99", org_nr="")


@pytest.fixture
def other_region(db):
    from styrkort.organisation.models import Region

    return Region.objects.create(name="Region Annan", lan_code="18", org_nr="2321000164")


@pytest.fixture
def provider_region(region):
    from styrkort.organisation.models import Provider

    return Provider.objects.create(
        region=region, name="Region Exempel Primärvård", org_nr="2321000016", kind="region"
    )


@pytest.fixture
def provider_private(region):
    from styrkort.organisation.models import Provider

    return Provider.objects.create(
        region=region, name="Hälsa Nord AB", org_nr="5566778899", kind="private"
    )


@pytest.fixture
def unit_a(region, provider_region):
    from styrkort.organisation.models import CareUnit

    return CareUnit.objects.create(
        region=region, provider=provider_region, hsa_id="SE2321000016-A001",
        name="Vårdcentralen Ankarsrum", municipality="Västervik", opened=date(2010, 1, 1),
    )  # fmt: skip


@pytest.fixture
def unit_b(region, provider_private):
    from styrkort.organisation.models import CareUnit

    return CareUnit.objects.create(
        region=region, provider=provider_private, hsa_id="SE5566778899-B002",
        name="Hälsocentralen Björkby", municipality="Bjurholm", opened=date(2015, 6, 1),
    )  # fmt: skip


@pytest.fixture
def unit_c(region, provider_region):
    from styrkort.organisation.models import CareUnit

    return CareUnit.objects.create(
        region=region, provider=provider_region, hsa_id="SE2321000016-C003",
        name="Vårdcentralen Centrum", municipality="Västervik", opened=date(2001, 1, 1),
        closed=date(2024, 12, 31),
    )  # fmt: skip


@pytest.fixture
def other_unit(other_region):
    from styrkort.organisation.models import CareUnit, Provider

    provider = Provider.objects.create(
        region=other_region, name="Region Annan", org_nr="2321000164", kind="region"
    )
    return CareUnit.objects.create(
        region=other_region, provider=provider, hsa_id="SE2321000164-X999",
        name="Vårdcentralen Utanför", municipality="Örebro",
    )  # fmt: skip


def _make_user(username, role, region, units=()):
    from django.contrib.auth import get_user_model

    from styrkort.accounts.models import Membership

    user = get_user_model().objects.create_user(username, password=PASSWORD)
    if role == "admin":
        user.is_staff = user.is_superuser = True
        user.save()
    if role:
        m = Membership.objects.create(user=user, region=region, role=role)
        m.units.set(units)
    return user


@pytest.fixture
def users(region, other_region, unit_a, unit_b, unit_c):
    """Every persona, keyed by name."""
    return {
        "admin": _make_user("admin", "admin", region),
        "analyst": _make_user("analyst", "analyst", region),
        "auditor": _make_user("auditor", "auditor", region),
        "viewer": _make_user("viewer", "viewer", region),
        "manager": _make_user("manager", "unit_manager", region, [unit_a]),
        "colleague": _make_user("colleague", "unit_manager", region, [unit_b]),
        "outsider": _make_user("outsider", "analyst", other_region),
        "nobody": _make_user("nobody", None, region),
    }


@pytest.fixture
def client_for(client, users):
    """client_for("analyst") gives a test client logged in as that persona."""
    from django.test import Client

    def make(name: str) -> Client:
        c = Client()
        c.force_login(users[name])
        return c

    return make


@pytest.fixture
def shared_data():
    """../shared/data beside the repository (reference data and statistical vectors)."""
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip("../shared/data is not beside the repository")
    return path


@pytest.fixture(scope="session")
def _demo_synth_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("demo") / "synth"


@pytest.fixture(autouse=True)
def _demo_synth_small_and_in_tmp(settings, _demo_synth_dir):
    """The demo build's synth step (styrkort.extracts.synth.synth_step) writes extracts under
    DATA_DIR at a realistic volume: in tests, a temporary directory and a small scale, so that
    building the demo stays quick and never touches a developer's var/."""
    settings.STYRKORT_SYNTH_DIR = _demo_synth_dir
    settings.STYRKORT_DEMO_SCALE = 0.02


@pytest.fixture(autouse=True)
def _extract_files_in_tmp(settings, tmp_path_factory):
    """Uploaded and stored extracts (styrkort.extracts, e.g. the demo build's ingest step) go to
    a temporary directory in tests, never to a developer's var/."""
    base = tmp_path_factory.getbasetemp() / "extract-files"
    settings.UPLOAD_DIR = base / "uploads"
    settings.EXTRACT_DIR = base / "extracts"
