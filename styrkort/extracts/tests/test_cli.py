"""`styrkort ingest` and `styrkort extracts-cleanup`."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from styrkort.extracts.models import ExtractUpload, ExtractVersion
from styrkort.extracts.tests.conftest import (
    PNR,
    PNR_DIGITS,
    changed_contacts,
    files_on_disk,
    read_csv,
    write_csv,
)
from styrkort.history.models import ChangeRecord

PERIOD = "2025Q1"


def ingest(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("ingest", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def ready(users, region, sample_units, extract_dirs):
    return users


def test_it_ingests_a_directory_with_progress_and_a_summary(ready, sample_dir, extract_dirs):
    out, err = ingest("--period", PERIOD, "--user", "analyst", "--dir", str(sample_dir),
                      "--no-compute")  # fmt: skip
    assert out.startswith("accepted 2025Q1: contacts v1 (40 rows), diagnoses v1 (56 rows)")
    assert len(out.strip().splitlines()) == 1
    assert "contacts: read" in err
    assert "storing" in err
    assert ExtractVersion.objects.filter(status="active").count() == 6
    assert (sample_dir / "contacts.csv").is_file()  # the user's own files are left alone
    assert ChangeRecord.objects.filter(action="import").count() == 6


def test_it_ingests_table_file_pairs_as_new_versions(ready, sample_dir):
    first = (f"contacts={sample_dir / 'contacts.csv'}", f"diagnoses={sample_dir / 'diagnoses.csv'}")
    ingest("--period", PERIOD, "--user", "analyst", "--no-compute", *first)
    out, _err = ingest("--period", PERIOD, "--user", "analyst", "--no-compute",
                       f"contacts={changed_contacts(sample_dir)}")  # fmt: skip
    assert out.startswith("accepted 2025Q1: contacts v2 (40 rows)")
    assert ExtractVersion.objects.get(table="contacts", version=1).status == "superseded"
    assert ExtractVersion.objects.get(table="contacts", version=2).source_name == "contacts_v2.csv"


def test_a_refusal_exits_non_zero_with_the_first_errors_masked(ready, sample_dir, extract_dirs):
    rows = read_csv(sample_dir / "contacts.csv")
    rows[4]["patient_key"] = PNR
    bad = write_csv(sample_dir / "bad.csv", rows)
    err = StringIO()
    with pytest.raises(CommandError, match="refused 2025Q1: 1 error"):
        call_command(
            "ingest", "--period", PERIOD, "--user", "analyst", "--no-compute",
            f"contacts={bad}", stdout=StringIO(), stderr=err,
        )  # fmt: skip
    text = err.getvalue()
    assert "contacts, row 6, patient_key" in text
    assert "[personal_number]" in text
    assert "Error report:" in text
    for raw in PNR_DIGITS:
        assert raw not in text
    assert not ExtractVersion.objects.exists()
    assert ExtractUpload.objects.get().status == "refused"
    assert files_on_disk(extract_dirs / "extracts") == []


def test_it_recomputes_the_indicators_after_an_accepted_ingest(ready, sample_dir, monkeypatch):
    from styrkort.indicators import services as indicator_services

    calls = []

    class Run:
        pass

    def compute(region, periods, *, tables, actor):
        calls.append((region.lan_code, periods, sorted(tables), actor.username))
        return Run()

    monkeypatch.setattr(indicator_services, "compute", compute)
    monkeypatch.setattr(indicator_services, "summarise", lambda run: "computed")
    out, _err = ingest("--period", PERIOD, "--user", "analyst", "--dir", str(sample_dir))
    assert out.splitlines()[-1] == "computed"
    assert calls == [("99", ["2025Q1"], sorted(
        ["contacts", "diagnoses", "procedures", "measurements", "sick_leave", "listings"]
    ), "analyst")]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "viewer", "contacts=x.csv"], "may not upload"),
        (["--user", "admin", "contacts=x.csv"], "may not upload"),
        (["--user", "ghost", "contacts=x.csv"], "no user"),
        (["--user", "analyst", "patients=x.csv"], "unknown table"),
        (["--user", "analyst", "contacts"], "TABLE=FILE"),
        (["--user", "analyst"], "no files"),
        (["--user", "analyst", "contacts=/no/such/file.csv"], "not a file"),
        (["--user", "analyst", "--dir", "/no/such/dir"], "not a directory"),
    ],
)
def test_it_refuses_bad_arguments_without_writing(ready, args, message, extract_dirs):
    with pytest.raises(CommandError, match=message):
        ingest("--period", PERIOD, *args)
    assert not ExtractUpload.objects.exists()
    assert files_on_disk(extract_dirs) == []


def test_a_bad_period_is_refused(ready, sample_dir):
    with pytest.raises(CommandError, match="period"):
        ingest("--period", "2025-13", "--user", "analyst", "--dir", str(sample_dir))
    assert not ExtractUpload.objects.exists()


def test_a_directory_with_both_formats_of_a_table_is_ambiguous(ready, sample_dir):
    (sample_dir / "contacts.parquet").write_bytes(b"PAR1")
    with pytest.raises(CommandError, match="both"):
        ingest("--period", PERIOD, "--user", "analyst", "--dir", str(sample_dir))


def test_cleanup_command_reports_what_it_removed(ready, extract_dirs):
    stray = extract_dirs / "extracts" / "99" / "2025Q1" / "contacts" / "v3.parquet"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"x")
    out = StringIO()
    call_command("extracts_cleanup", stdout=out)
    assert out.getvalue().startswith("1 orphan file(s)")
    assert not stray.exists()
