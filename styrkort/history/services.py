"""Recording history. Every service function that changes governed data calls these inside its
own transaction, so a change and its history row commit or roll back together."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal

from django.db import models, transaction

from styrkort.history.models import ChangeRecord


def _plain(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def snapshot(obj: models.Model, fields: Iterable[str] | None = None) -> dict:
    """The concrete field values of a model instance as JSON-ready plain values."""
    data = {}
    for field in obj._meta.concrete_fields:
        if fields is not None and field.name not in fields:
            continue
        data[field.attname] = _plain(getattr(obj, field.attname))
    return data


def object_type_of(obj_or_model) -> str:
    return obj_or_model._meta.label_lower


def _region_id_of(obj) -> int | None:
    for attr in ("region_id",):
        if hasattr(obj, attr):
            return getattr(obj, attr)
    unit = getattr(obj, "unit", None)
    return getattr(unit, "region_id", None) if unit is not None else None


def new_batch() -> str:
    return str(uuid.uuid4())


def _assert_in_transaction() -> None:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("history must be written inside the transaction that makes the change")


def record(
    actor,
    action: str,
    obj: models.Model,
    *,
    before: dict | None = None,
    after: dict | None = None,
    note: str = "",
    batch: str = "",
) -> ChangeRecord:
    _assert_in_transaction()
    return ChangeRecord.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        region_id=_region_id_of(obj),
        action=action,
        object_type=object_type_of(obj),
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        before=before,
        after=after,
        note=note,
        batch=batch,
    )


def record_many(actor, entries: Iterable[dict], *, batch: str = "") -> int:
    """Bulk history for imports: entries are dicts with action, obj, before, after, note."""
    _assert_in_transaction()
    actor_id = actor.pk if getattr(actor, "pk", None) else None
    rows = [
        ChangeRecord(
            actor_id=actor_id,
            region_id=_region_id_of(e["obj"]),
            action=e["action"],
            object_type=object_type_of(e["obj"]),
            object_id=str(e["obj"].pk),
            object_repr=str(e["obj"])[:200],
            before=e.get("before"),
            after=e.get("after"),
            note=e.get("note", ""),
            batch=batch,
        )
        for e in entries
    ]
    ChangeRecord.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def history_of(obj: models.Model):
    return ChangeRecord.objects.filter(
        object_type=object_type_of(obj), object_id=str(obj.pk)
    ).select_related("actor")
