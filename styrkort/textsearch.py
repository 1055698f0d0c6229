"""Case-insensitive search that knows Å, Ä and Ö on both databases.

SQLite's LIKE and lower() fold ASCII letters only, so ``name__icontains="örebro"`` misses
"Örebro" there. ``Casefold(field)`` is Python's ``str.casefold`` on SQLite (a function
registered on every new connection, see ``register_sqlite_functions``) and ``LOWER`` on
PostgreSQL, whose UTF-8 databases fold every letter; compare it with ``query.casefold()``.
"""

from __future__ import annotations

from django.db.models import CharField, Func, Q

SQLITE_FUNCTION = "styrkort_casefold"


class Casefold(Func):
    function = "LOWER"
    output_field = CharField()

    def as_sqlite(self, compiler, connection, **extra_context):
        return super().as_sql(compiler, connection, function=SQLITE_FUNCTION, **extra_context)


def _casefold_or_none(value):
    return value.casefold() if isinstance(value, str) else value


def register_sqlite_functions(sender, connection, **kwargs) -> None:
    """``connection_created`` receiver: gives SQLite connections the casefold function."""
    if connection.vendor == "sqlite":
        connection.connection.create_function(
            SQLITE_FUNCTION, 1, _casefold_or_none, deterministic=True
        )


def contains_any(queryset, fields: list[str], text: str):
    """Rows where any of ``fields`` contains ``text``, ignoring case (Swedish letters too)."""
    needle = text.casefold()
    annotated = queryset.annotate(**{f"_cf_{f}": Casefold(f) for f in fields})
    condition = Q()
    for f in fields:
        condition |= Q(**{f"_cf_{f}__contains": needle})
    return annotated.filter(condition)
