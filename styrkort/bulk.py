"""Bulk inserts of plain value rows, for the two places that write hundreds of thousands of
rows at once: a listings import and an indicator run's results.

Both skip model instances (building one per row took most of the time) and Django's
``bulk_create`` (many small statements). On PostgreSQL the rows go through ``COPY``: psycopg's
``executemany`` spends more time per row in Python than the database spends storing it, and
``COPY`` writes rows from C. Elsewhere (SQLite) one prepared statement is executed in batches.
Values must be ready to store (validated, the model has no ``save()`` logic or signals to skip);
only ``DecimalField`` values are prepared here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from django.db import connections, router
from django.db.models import DecimalField, Field, Model

BATCH = 10_000


def insert_rows(model: type[Model], columns: Sequence[str], rows: Sequence[tuple]) -> None:
    """Insert ``rows`` (tuples in the order of ``columns``, which are column names: ``unit_id``
    for a foreign key ``unit``) into ``model``'s table."""
    if not rows:
        return
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    fields = [cast(Field, model._meta.get_field(c.removesuffix("_id"))) for c in columns]
    table = quote(model._meta.db_table)
    names = ", ".join(quote(f.column) for f in fields)
    prepare = [
        (lambda v, f=f: f.get_db_prep_save(v, connection)) if isinstance(f, DecimalField) else None
        for f in fields
    ]
    if any(prepare):
        rows = [tuple(p(v) if p else v for p, v in zip(prepare, row, strict=True)) for row in rows]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(fields))})"
        for start in range(0, len(rows), BATCH):
            cursor.executemany(sql, rows[start : start + BATCH])
