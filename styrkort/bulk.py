"""Bulk inserts and updates of plain value rows, for the two places that write hundreds of
thousands of rows at once: a listings import and an indicator run's results.

Both skip model instances (building one per row took most of the time) and Django's
``bulk_create`` (many small statements). On PostgreSQL the rows go through ``COPY``: psycopg's
``executemany`` spends more time per row in Python than the database spends storing it, and
``COPY`` writes rows from C; updates are copied into a scratch table and applied by one
``UPDATE … FROM``. Elsewhere (SQLite) one prepared statement is executed in batches.
Values must be ready to store (validated, the model has no ``save()`` logic or signals to skip);
only ``DecimalField`` values are prepared here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from django.core.exceptions import FieldDoesNotExist
from django.db import connections, router, transaction
from django.db.models import DecimalField, Field, Model

BATCH = 10_000


def _fields(model: type[Model], columns: Sequence[str]) -> list[Field]:
    """The fields stored in ``columns`` (``unit_id`` is the foreign key ``unit``)."""
    by_column = {f.column: f for f in model._meta.concrete_fields}
    unknown = [c for c in columns if c not in by_column]
    if unknown:
        raise FieldDoesNotExist(f"{model.__name__} has no column {', '.join(unknown)}")
    return [by_column[c] for c in columns]


def _prepared(fields: Sequence[Field], rows: Sequence[tuple], connection) -> Sequence[tuple]:
    """``rows`` with their Decimal values as the database takes them (the other values are
    stored as they are); values past the fields (an update's primary key) pass unchanged."""
    prepare = [
        (lambda v, f=f: f.get_db_prep_save(v, connection)) if isinstance(f, DecimalField) else None
        for f in fields
    ]
    if not any(prepare):
        return rows
    return [
        tuple(p(v) if p else v for p, v in zip(prepare, row[: len(fields)], strict=True))
        + tuple(row[len(fields) :])
        for row in rows
    ]


def insert_rows(model: type[Model], columns: Sequence[str], rows: Sequence[tuple]) -> None:
    """Insert ``rows`` (tuples in the order of ``columns``, which are column names: ``unit_id``
    for a foreign key ``unit``) into ``model``'s table."""
    if not rows:
        return
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    fields = _fields(model, columns)
    table = quote(model._meta.db_table)
    names = ", ".join(quote(f.column) for f in fields)
    rows = _prepared(fields, rows, connection)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(fields))})"
        for start in range(0, len(rows), BATCH):
            cursor.executemany(sql, rows[start : start + BATCH])


def update_rows(model: type[Model], columns: Sequence[str], rows: Sequence[tuple]) -> None:
    """Set ``columns`` of many rows of ``model`` by primary key: each row holds the values in
    the order of ``columns`` (as for :func:`insert_rows`), then the primary key.

    All or nothing; called inside a transaction, a failure fails that transaction (there is
    no savepoint to go back to)."""
    if not rows:
        return
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    fields = _fields(model, columns)
    table, pk = quote(model._meta.db_table), quote(cast(Field, model._meta.pk).column)
    rows = _prepared(fields, rows, connection)
    # All or nothing, but no savepoint inside the caller's transaction: a recompute's 23,000
    # cells took 0.6 s under one on SQLite, 0.1 s without.
    with transaction.atomic(using=connection.alias, savepoint=False), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Dropped at commit; made anew per call, since the columns differ between calls.
            # Named in pg_temp, so that no table of the schema can be meant.
            scratch = "pg_temp." + quote(f"bulk_update_{model._meta.db_table}")
            typed = ", ".join(f"{quote(f.column)} {f.db_type(connection)}" for f in fields)
            cursor.execute(f"DROP TABLE IF EXISTS {scratch}")
            cursor.execute(
                f"CREATE TEMPORARY TABLE {scratch} ({typed}, bulk_pk bigint) ON COMMIT DROP"
            )
            names = ", ".join(quote(f.column) for f in fields)
            with cursor.cursor.copy(f"COPY {scratch} ({names}, bulk_pk) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            assignments = ", ".join(f"{quote(f.column)} = s.{quote(f.column)}" for f in fields)
            cursor.execute(
                f"UPDATE {table} SET {assignments} FROM {scratch} s WHERE {table}.{pk} = s.bulk_pk"
            )
            cursor.execute(f"DROP TABLE {scratch}")
            return
        sql = f"UPDATE {table} SET {', '.join(f'{quote(f.column)} = %s' for f in fields)} "
        sql += f"WHERE {pk} = %s"
        for start in range(0, len(rows), BATCH):
            cursor.executemany(sql, rows[start : start + BATCH])
