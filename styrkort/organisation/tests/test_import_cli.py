"""The import-… and export-… commands: summary line, progress, exit status, refused input."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from openpyxl import load_workbook

from styrkort.cli import main
from styrkort.history.models import ChangeRecord
from styrkort.organisation.models import CareUnit, Listing, Provider, Staffing

A = "SE2321000016-A001"
UNITS_HEADER = (
    "hsa_id;name;provider_org_nr;provider_name;provider_kind;municipality;opened;closed\n"
)


def counts() -> dict[str, int]:
    return {
        "units": CareUnit.objects.count(),
        "providers": Provider.objects.count(),
        "listings": Listing.objects.count(),
        "staffing": Staffing.objects.count(),
        "history": ChangeRecord.objects.count(),
    }


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def units_file(tmp_path):
    path = tmp_path / "units.csv"
    path.write_text(
        UNITS_HEADER
        + f"{A};Vårdcentralen Ankarsrum;2321000016;;;Västervik;2010-01-01;\n"
        + "SE2321000016-N1;Vårdcentralen Ny;2321000016;;;Västervik;;\n"
        + "SE5566778899-B002;Hälsocentralen Björkby Nya;5566778899;;;Bjurholm;2015-06-01;\n",
        encoding="utf-8",
    )
    return path


def test_it_imports_units_and_prints_a_one_line_summary(users, units_file):
    out, err = run("import_units", str(units_file), "--user", "analyst")
    assert out == "1 new, 1 changed, 1 unchanged units\n"
    assert "History batch" in err
    assert "Reading units: 100 %" in err
    assert CareUnit.objects.filter(hsa_id="SE2321000016-N1").exists()
    record = ChangeRecord.objects.get(action="update")
    assert record.actor == users["analyst"]
    assert record.before["name"] == "Hälsocentralen Björkby"


def test_it_writes_nothing_on_a_dry_run(users, units_file):
    before = counts()
    out, _err = run("import_units", str(units_file), "--dry-run", "--user", "analyst", "--quiet")
    assert out == "1 new, 1 changed, 1 unchanged units (dry run: nothing written)\n"
    assert counts() == before


def test_it_lists_refused_rows_and_fails(users, unit_a, tmp_path):
    path = tmp_path / "listings.csv"
    path.write_text(
        "unit_hsa_id;month;sex;age_band;listed\n"
        f"{A};2025-01;K;0-4;5\n{A};2025/01;K;0-4;-5\n{A};2025-01;K;0-4;6\n",
        encoding="utf-8",
    )
    before = counts()
    err = io.StringIO()
    with pytest.raises(CommandError) as exc:
        call_command(
            "import_listings", str(path), "--user", "analyst", stderr=err, stdout=io.StringIO()
        )
    assert str(exc.value).startswith("Refused: 3 errors; nothing was written")
    lines = err.getvalue()
    assert "row 3, column month ('2025/01'): Write the month as YYYY-MM" in lines
    assert "row 3, column listed ('-5'): A count cannot be negative. [negative]" in lines
    assert "row 4, column unit_hsa_id" in lines
    assert "row 2 has the same unit, month, sex and age band" in lines
    assert counts() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "nosuchuser"], "there is no user 'nosuchuser'"),
        (["--user", "viewer"], "viewer may not import staffing"),
    ],
)
def test_it_refuses_unknown_and_unentitled_users(users, tmp_path, args, message):
    path = tmp_path / "s.csv"
    path.write_text(f"unit_hsa_id;period;profession;fte\n{A};2025;psykolog;1\n", encoding="utf-8")
    before = counts()
    with pytest.raises(CommandError, match=message):
        run("import_staffing", str(path), *args)
    assert counts() == before


def test_it_needs_the_acting_user(users, tmp_path):
    with pytest.raises(CommandError, match="--user"):
        run("import_units", str(tmp_path / "x.csv"))


def test_it_lets_a_manager_import_own_staffing_only(users, unit_a, unit_b, tmp_path):
    own = tmp_path / "own.csv"
    own.write_text(f"unit_hsa_id;period;profession;fte\n{A};2025Q2;kurator;0,8\n", encoding="utf-8")
    out, _ = run("import_staffing", str(own), "--user", "manager", "--quiet")
    assert out == "1 new, 0 changed, 0 unchanged staffing rows\n"
    with pytest.raises(CommandError, match="may not import listings"):
        run("import_listings", str(own), "--user", "manager")


def test_it_exports_csv_and_xlsx(users, unit_a, unit_b, tmp_path):
    Listing.objects.create(unit=unit_a, month="2025-01", sex="M", age_band="0-4", listed=12)
    out, _ = run("export_listings", "--user", "viewer", "--output", str(tmp_path / "l.csv"))
    assert out == f"Wrote 1 listing rows of Region Exempel to {tmp_path / 'l.csv'}\n"
    assert (tmp_path / "l.csv").read_bytes().startswith(b"\xef\xbb\xbfunit_hsa_id;month")
    out, _ = run("export_units", "--format", "xlsx", "--output", str(tmp_path / "u.xlsx"),
                 "--region", "99")  # fmt: skip
    assert out.startswith("Wrote 3 units of Region Exempel")
    sheet = load_workbook(tmp_path / "u.xlsx").active
    assert sheet["A1"].value == "hsa_id"
    assert sheet["C2"].value == "232100-0016"


def test_it_exports_what_it_imports(users, unit_a, unit_b, unit_c, tmp_path):
    path = tmp_path / "units.csv"
    run("export_units", "--user", "analyst", "--output", str(path))
    out, _ = run("import_units", str(path), "--user", "analyst", "--quiet")
    assert out == "0 new, 0 changed, 3 unchanged units\n"


def test_it_needs_a_region_for_an_export_without_user(users, other_region, tmp_path):
    with pytest.raises(CommandError, match="--user or --region"):
        run("export_units", "--output", str(tmp_path / "u.csv"))
    with pytest.raises(CommandError, match="only CSV"):
        run("export_units", "--region", "99", "--format", "xlsx", "--output", "-")


@pytest.mark.django_db(transaction=True)
def test_it_exits_with_status_1_on_bad_input_and_0_on_success(users, unit_a, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_bytes("unit_hsa_id;month;sex;age_band;listed\nSE2321000016-A001;2025-01;K;0-4;åtta\n"
                    .encode("latin-1"))  # fmt: skip
    with pytest.raises(SystemExit) as exc:
        main(["styrkort", "import-listings", str(bad), "--user", "analyst", "--quiet"])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert "Line 2 is not UTF-8" in err
    assert "column listed" in err
    assert Listing.objects.count() == 0

    good = tmp_path / "good.csv"
    good.write_text("unit_hsa_id;month;sex;age_band;listed\nSE2321000016-A001;2025-01;K;0-4;8\n",
                    encoding="utf-8")  # fmt: skip
    assert main(["styrkort", "import-listings", str(good), "--user", "analyst", "--quiet"]) == 0
    assert capsys.readouterr().out == "1 new, 0 changed, 0 unchanged listing rows\n"
    assert Listing.objects.get().listed == 8


@pytest.mark.django_db(transaction=True)
def test_it_exits_with_status_2_without_a_file(users, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["styrkort", "import-units", "--user", "analyst"])
    assert exc.value.code == 2
    assert "file" in capsys.readouterr().err
