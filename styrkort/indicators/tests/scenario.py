"""Tiny hand-made extracts for the engine tests: typed Parquet files in a temporary directory,
registered as ExtractVersion rows the way an accepted upload would be."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from styrkort.extracts import schema
from styrkort.extracts.models import ExtractVersion

A = "SE2321000016-A001"  # conftest unit_a
B = "SE5566778899-B002"  # conftest unit_b

_ARROW = {
    "VARCHAR": pa.string(),
    "DATE": pa.date32(),
    "SMALLINT": pa.int16(),
    "INTEGER": pa.int32(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
}


def arrow_schema(table: str) -> pa.Schema:
    return pa.schema(
        [pa.field(c.name, _ARROW[c.parquet_type]) for c in schema.TABLES[table].columns]
    )


def write_extract(region, user, directory: Path, table: str, period: str, rows: list[dict]):
    """Write ``rows`` as the new active version of (region, period, table)."""
    previous = ExtractVersion.objects.filter(
        region=region, table=table, period=period, status=ExtractVersion.Status.ACTIVE
    ).first()
    version = (previous.version + 1) if previous else 1
    relative = Path(f"{region.lan_code}/{table}/{period}/v{version}.parquet")
    path = directory / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = schema.TABLES[table].column_names
    data = pa.Table.from_pylist([{c: r.get(c) for c in cols} for r in rows], arrow_schema(table))
    pq.write_table(data, path)
    if previous:
        previous.status = ExtractVersion.Status.SUPERSEDED
        previous.save()
    return ExtractVersion.objects.create(
        region=region,
        period=period,
        table=table,
        version=version,
        path=str(relative),
        checksum=hashlib.sha256(path.read_bytes()).hexdigest(),
        rows=len(rows),
        uploaded_by=user,
    )


def d(text: str) -> date:
    return date.fromisoformat(text)


@dataclass
class Extract:
    """Rows of every table, built with small helpers, written per declared period."""

    contacts: list[dict] = field(default_factory=list)
    diagnoses: list[dict] = field(default_factory=list)
    procedures: list[dict] = field(default_factory=list)
    measurements: list[dict] = field(default_factory=list)
    sick_leave: list[dict] = field(default_factory=list)
    _next: int = 0

    def contact(
        self,
        patient: str,
        when: str,
        unit: str = A,
        *,
        sex: str = "K",
        born: int = 1980,
        profession: str = "lakare",
        kind: str = "besok",
        new: bool = False,
        dx: tuple[str, ...] = (),
        kva: tuple[str, ...] = (),
    ) -> str:
        self._next += 1
        cid = f"C{self._next:05d}"
        self.contacts.append(
            {
                "contact_id": cid,
                "patient_key": patient,
                "unit_hsa_id": unit,
                "contact_date": d(when),
                "sex": sex,
                "birth_year": born,
                "profession": profession,
                "contact_type": kind,
                "is_new_visit": new,
            }
        )
        for rank, code in enumerate(dx, start=1):
            self.diagnoses.append({"contact_id": cid, "icd10_code": code, "rank": rank})
        for code in kva:
            self.procedures.append({"contact_id": cid, "kva_code": code})
        return cid

    def rating(self, patient: str, when: str, instrument: str, score: float, unit: str = A):
        self.measurements.append(
            {
                "patient_key": patient,
                "unit_hsa_id": unit,
                "date": d(when),
                "instrument": instrument,
                "score": float(score),
            }
        )

    def leave(self, patient: str, start: str, end: str, code: str, unit: str = A, extent=100):
        self.sick_leave.append(
            {
                "patient_key": patient,
                "unit_hsa_id": unit,
                "start_date": d(start),
                "end_date": d(end),
                "extent": extent,
                "icd10_code": code,
            }
        )

    def write(self, region, user, directory: Path, periods: list[str]) -> list[ExtractVersion]:
        """Write each table split into files by declared period (rows dated inside it; sick
        leave: overlapping it)."""
        from styrkort.periods import Period

        contact_period = {}
        out = []
        for period in periods:
            p = Period.parse(period)
            rows = [r for r in self.contacts if p.contains(r["contact_date"])]
            ids = {r["contact_id"] for r in rows}
            contact_period.update(dict.fromkeys(ids, period))
            out.append(write_extract(region, user, directory, "contacts", period, rows))
            for table in ("diagnoses", "procedures"):
                sub = [r for r in getattr(self, table) if r["contact_id"] in ids]
                out.append(write_extract(region, user, directory, table, period, sub))
            rows = [r for r in self.measurements if p.contains(r["date"])]
            out.append(write_extract(region, user, directory, "measurements", period, rows))
            rows = [
                r for r in self.sick_leave if r["start_date"] <= p.end and r["end_date"] >= p.start
            ]
            out.append(write_extract(region, user, directory, "sick_leave", period, rows))
        return out


def listing(unit, months: list[str], cells: dict[tuple[str, str], int]) -> None:
    """Listing rows for ``unit`` in each month: {(sex, fine band): listed}."""
    from styrkort.organisation.models import Listing

    Listing.objects.bulk_create(
        [
            Listing(unit=unit, month=m, sex=sex, age_band=band, listed=n)
            for m in months
            for (sex, band), n in cells.items()
        ]
    )
