"""The extracts' part of the access matrix (styrkort/organisation/tests/test_access_matrix.py).

`extract_world(world)` stores, through the services and once per matrix world, the sample's
contacts as version 1, a changed copy as version 2 (so version 1 is superseded and can be
purged), and one refused upload with its error report, all by the analyst. `use_tmp_dirs`
points the data directories at the test's temporary directory. Not a test module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile

from styrkort.extracts import services
from styrkort.extracts.models import ExtractUpload, ExtractVersion
from styrkort.organisation.models import CareUnit, Provider

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
SAMPLE_UNITS = ("SE2321000099-1001", "SE2321000099-1002", "SE2321000099-1003")
PERIOD = "2025Q1"


@dataclass
class ExtractWorld:
    superseded: ExtractVersion
    refused: ExtractUpload


def use_tmp_dirs(settings, tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings.DATA_DIR = data
    settings.UPLOAD_DIR = data / "uploads"
    settings.EXTRACT_DIR = data / "extracts"


def extract_world(world) -> ExtractWorld:
    cached = getattr(world, "_extracts", None)
    if cached is not None:
        return cached
    region = world.unit_a.region
    provider = Provider.objects.filter(region=region).first()
    for hsa_id in SAMPLE_UNITS:
        CareUnit.objects.get_or_create(
            hsa_id=hsa_id,
            defaults={"region": region, "provider": provider, "name": hsa_id,
                      "municipality": "Exempelby", "opened": date(2000, 1, 1)},
        )  # fmt: skip
    analyst = get_user_model().objects.get(username="analyst")
    folder = Path(services.upload_dir()).parent / "matrix-input"
    folder.mkdir(parents=True, exist_ok=True)
    text = (SAMPLES / "contacts.csv").read_text(encoding="utf-8")
    (folder / "contacts.csv").write_text(text, encoding="utf-8")
    (folder / "contacts_v2.csv").write_text(text.replace(",1957,", ",1958,"), encoding="utf-8")
    (folder / "bad.csv").write_text(text.replace("SE2321000099-1003", "SE2321000099-9999"))
    for name in ("contacts.csv", "contacts_v2.csv"):
        result = services.ingest(
            analyst, region, PERIOD, {"contacts": folder / name}, recompute=False
        )
        assert result.ok, result.upload.errors[:3]
    refused = services.ingest(
        analyst, region, PERIOD, {"contacts": folder / "bad.csv"}, recompute=False
    ).upload
    assert refused.status == ExtractUpload.Status.REFUSED
    superseded = ExtractVersion.objects.get(region=region, table="contacts", version=1)
    world._extracts = ExtractWorld(superseded, refused)
    return world._extracts


def upload_form(world) -> dict:
    extract_world(world)
    return {
        "period": PERIOD,
        "contacts": SimpleUploadedFile(
            "contacts.csv", (SAMPLES / "contacts.csv").read_bytes(), "text/csv"
        ),
    }


PATH_PARAMS = {
    "upload_id": lambda w: extract_world(w).refused.pk,
    "version_id": lambda w: extract_world(w).superseded.pk,
}
