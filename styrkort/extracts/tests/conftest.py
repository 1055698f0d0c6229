"""Fixtures for the upload, storage and purge tests (services, pages, API, command line).

Nothing here is autouse: the validator's own tests (test_validation.py) do not need a database.
"""

from __future__ import annotations

import csv
import io
import shutil
from datetime import date
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
SAMPLE_UNITS = ("SE2321000099-1001", "SE2321000099-1002", "SE2321000099-1003")
SAMPLE_PERIOD = "2025Q1"
PNR = "19821105-9954"  # a valid personnummer (test data)
PNR_DIGITS = ("198211059954", "8211059954", "821105-9954", "19821105-9954")
SAMORDNING = "701063-2391"  # a valid samordningsnummer (day 63 = 3 + 60)
SAMORDNING_DIGITS = ("7010632391", "701063-2391")


@pytest.fixture
def extract_dirs(settings, tmp_path) -> Path:
    """DATA_DIR, UPLOAD_DIR and EXTRACT_DIR in a private temporary directory; returns DATA_DIR."""
    data = tmp_path / "data"
    data.mkdir()
    settings.DATA_DIR = data
    settings.UPLOAD_DIR = data / "uploads"
    settings.EXTRACT_DIR = data / "extracts"
    return data


@pytest.fixture
def sample_units(region, provider_region):
    """The three units the shipped sample extract refers to, registered in Region Exempel."""
    from styrkort.organisation.models import CareUnit

    return [
        CareUnit.objects.create(
            region=region,
            provider=provider_region,
            hsa_id=hsa_id,
            name=f"Sample {i}",
            municipality="Exempelby",
            opened=date(2000, 1, 1),
        )  # fmt: skip
        for i, hsa_id in enumerate(SAMPLE_UNITS, start=1)
    ]


@pytest.fixture
def no_recompute(monkeypatch):
    """Record instead of running the indicator recomputation queued after an upload."""
    from styrkort.extracts import services

    calls: list[tuple] = []

    def fake(actor, period, tables):
        calls.append((actor.username, period, tuple(tables)))
        return None

    monkeypatch.setattr(services, "_enqueue_recompute", fake)
    return calls


@pytest.fixture
def sample_dir(tmp_path) -> Path:
    """A private copy of the sample, one CSV per table."""
    out = tmp_path / "sample"
    out.mkdir()
    for src in SAMPLES.glob("*.csv"):
        shutil.copyfile(src, out / src.name)
    return out


def sample_files(folder: Path, *tables: str) -> dict[str, Path]:
    names = tables or ("contacts", "diagnoses", "procedures", "measurements", "sick_leave",
                       "listings")  # fmt: skip
    return {t: folder / f"{t}.csv" for t in names}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def write_csv(path: Path, rows: list[dict[str, str]], fieldnames=None) -> Path:
    fieldnames = fieldnames or list(rows[0])
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fieldnames, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


def changed_contacts(folder: Path) -> Path:
    """The sample's contacts with one birth year changed, so the Parquet differs."""
    rows = read_csv(folder / "contacts.csv")
    rows[0]["birth_year"] = "1990" if rows[0]["birth_year"] != "1990" else "1991"
    return write_csv(folder / "contacts_v2.csv", rows)


def files_on_disk(root: Path) -> list[str]:
    """Every file under root, relative, sorted (hidden ones included)."""
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
