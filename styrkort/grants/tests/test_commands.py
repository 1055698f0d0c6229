"""The grants' commands: one-line summaries, non-zero exit and a clear message on bad input."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from openpyxl import load_workbook

from styrkort.cli import main
from styrkort.grants import services
from styrkort.grants.models import PlanStatus
from styrkort.grants.tests.conftest import POPULATION_TEXT
from styrkort.grants.tests.test_services import counts


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def population_file(tmp_path):
    path = tmp_path / "population.csv"
    path.write_text(POPULATION_TEXT, encoding="utf-8")
    return path


def test_national_distribution_prints_every_region_and_a_summary(population_file):
    out = run("grant_national_distribution", "--total", "496000000", "--population",
              str(population_file))  # fmt: skip
    lines = out.strip().splitlines()
    assert len(lines) == 22
    assert lines[-1] == (
        "21 regions, 496 000 000 kr over 10587710 inhabitants; Örebro län 14 446 372 kr (2.9126 %)"
    )


def test_national_distribution_real_file(shared_data):
    out = run("grant_national_distribution", "--total", "496000000", "--quiet", "--population",
              str(shared_data / "population_lan_2024-12-31.csv"))  # fmt: skip
    assert "Örebro län 14 446 372 kr (2.9126 %)" in out


def test_national_distribution_saves_for_an_analyst(users, population_file):
    out = run("grant_national_distribution", "--total", "496 000 000", "--population",
              str(population_file), "--quiet", "--save", "--user", "analyst",
              "--reference-date", "2024-12-31")  # fmt: skip
    assert out.strip().endswith("; saved")


@pytest.mark.parametrize(
    ("total", "text", "message"),
    [
        ("496000000,50", POPULATION_TEXT, "not a whole number of kronor"),
        ("496000000", POPULATION_TEXT.replace("18,308375\n", ""), "missing"),
        ("496000000", POPULATION_TEXT + "03,5\n", "more than once"),
        ("496000000", POPULATION_TEXT.replace("01,2473307", "01,-1"), "negative"),
        ("496000000", POPULATION_TEXT.replace("01,2473307", "01,x"), "not a number"),
    ],
)
def test_national_distribution_bad_input(tmp_path, total, text, message):
    path = tmp_path / "p.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CommandError) as info:
        run("grant_national_distribution", "--total", total, "--population", str(path))
    assert message in str(info.value)


def test_national_distribution_missing_file_exits_non_zero(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["styrkort", "grant-national-distribution", "--total", "1", "--population",
              str(tmp_path / "nope.csv")])  # fmt: skip
    assert info.value.code != 0
    assert "no such population file" in capsys.readouterr().err


def test_allocate_makes_a_draft_and_decides(users, grant, listings):
    out = run("grant_allocate", "--grant", str(grant.pk), "--reference-month", "2025-10",
              "--user", "analyst", "--central", "Utbildning=15%:utbildning")  # fmt: skip
    assert out.strip() == (
        "Plan v1 (draft) for Psykisk ohälsa i primärvården 2025: 1 000 000 kr = 150 000 kr "
        "central + 850 000 kr to 2 units (10000 listed in 2025-10)"
    )
    out = run("grant_allocate", "--grant", str(grant.pk), "--reference-month", "2025-10",
              "--user", "analyst", "--central", "Utbildning=150000", "--decide",
              "--dnr", "RS 9")  # fmt: skip
    assert "Plan v2 (decided)" in out
    assert grant.plans.get(version=2).status == PlanStatus.DECIDED
    # The next version takes the central efforts of the plan in force and needs a reason.
    with pytest.raises(CommandError) as info:
        run("grant_allocate", "--grant", str(grant.pk), "--reference-month", "2025-10",
            "--user", "analyst", "--decide", "--dnr", "RS 10")  # fmt: skip
    assert "give a reason" in str(info.value)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--reference-month", "2025-03"], "no listed patients in 2025-03"),
        (["--reference-month", "oktober"], "must be a month"),
        (["--reference-month", "2025-10", "--floor", "900000"], "floors sum to"),
        (["--reference-month", "2025-10", "--decide"], "--decide needs --dnr"),
        (["--reference-month", "2025-10", "--central", "Utbildning"], "NAME=AMOUNT"),
        (["--reference-month", "2025-10", "--central", "U=2000000"], "central efforts need"),
    ],
)
def test_allocate_bad_input(users, grant, listings, args, message):
    before = counts()
    with pytest.raises(CommandError) as info:
        run("grant_allocate", "--grant", str(grant.pk), "--user", "analyst", *args)
    assert message in str(info.value)
    assert counts() == before


def test_allocate_refuses_other_users(users, grant, listings):
    with pytest.raises(CommandError, match="may not allocate"):
        run("grant_allocate", "--grant", str(grant.pk), "--reference-month", "2025-10",
            "--user", "manager")  # fmt: skip
    with pytest.raises(CommandError, match="no grant"):
        run("grant_allocate", "--grant", str(grant.pk), "--reference-month", "2025-10",
            "--user", "outsider")  # fmt: skip
    with pytest.raises(CommandError, match="no active user"):
        run("grant_allocate", "--grant", str(grant.pk), "--reference-month", "2025-10",
            "--user", "ghost")  # fmt: skip


def test_report_writes_pdf_and_xlsx(users, grant, decided_plan, tmp_path):
    services.start_report(users["analyst"], grant)
    pdf = tmp_path / "r.pdf"
    out = run("grant_report", "--grant", str(grant.pk), "--format", "pdf", "--output", str(pdf),
              "--user", "viewer")  # fmt: skip
    assert pdf.read_bytes().startswith(b"%PDF")
    assert "report v1 (draft)" in out
    xlsx = tmp_path / "r.xlsx"
    run("grant_report", "--grant", str(grant.pk), "--format", "xlsx", "--output", str(xlsx),
        "--user", "analyst")  # fmt: skip
    assert len(load_workbook(xlsx).sheetnames) == 5


def test_report_bad_input(users, grant, tmp_path):
    with pytest.raises(CommandError, match="no grant .* with a report"):
        run("grant_report", "--grant", str(grant.pk), "--format", "pdf", "--output",
            str(tmp_path / "r.pdf"), "--user", "analyst")  # fmt: skip
    with pytest.raises(CommandError, match="may not read"):
        run("grant_report", "--grant", str(grant.pk), "--format", "pdf", "--output",
            str(tmp_path / "r.pdf"), "--user", "manager")  # fmt: skip
    with pytest.raises(CommandError, match="no such directory"):
        run("grant_report", "--grant", str(grant.pk), "--format", "pdf", "--output",
            str(tmp_path / "nope" / "r.pdf"), "--user", "analyst")  # fmt: skip
