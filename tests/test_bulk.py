"""styrkort.bulk on the database the suite runs on (COPY on PostgreSQL, executemany on
SQLite): the rows written are the rows given, and nothing else changes."""

from decimal import Decimal

import pytest
from django.core.exceptions import FieldDoesNotExist
from django.db import IntegrityError, transaction

from styrkort.bulk import insert_rows, update_rows
from styrkort.organisation.models import Listing, Staffing


def _listings(unit):
    return sorted(
        Listing.objects.filter(unit=unit).values_list("month", "sex", "age_band", "listed")
    )


def test_it_inserts_rows_with_foreign_keys_and_decimals(unit_a):
    insert_rows(
        Listing,
        ("unit_id", "month", "sex", "age_band", "listed"),
        [(unit_a.pk, "2025-01", "K", "0-4", 10), (unit_a.pk, "2025-01", "M", "0-4", 12)],
    )
    insert_rows(Staffing, ("unit_id", "period", "profession", "fte"), [
        (unit_a.pk, "2025", "psykolog", Decimal("1.25")),
    ])  # fmt: skip
    assert _listings(unit_a) == [("2025-01", "K", "0-4", 10), ("2025-01", "M", "0-4", 12)]
    assert Staffing.objects.get(unit=unit_a).fte == Decimal("1.25")


def test_it_updates_the_named_columns_of_the_given_rows_only(unit_a, unit_b):
    rows = [(unit.pk, "2025-01", sex, "0-4", 10) for unit in (unit_a, unit_b) for sex in "KM"]
    insert_rows(Listing, ("unit_id", "month", "sex", "age_band", "listed"), rows)
    k, m = (Listing.objects.get(unit=unit_a, sex=s) for s in "KM")
    with transaction.atomic():
        update_rows(Listing, ("listed",), [(20, k.pk)])
        # A second call in the same transaction, with other columns (PostgreSQL's scratch
        # table is made anew).
        update_rows(Listing, ("listed", "month"), [(30, "2025-02", m.pk)])
    assert _listings(unit_a) == [("2025-01", "K", "0-4", 20), ("2025-02", "M", "0-4", 30)]
    assert _listings(unit_b) == [("2025-01", "K", "0-4", 10), ("2025-01", "M", "0-4", 10)]


def test_it_updates_decimals(unit_a):
    insert_rows(Staffing, ("unit_id", "period", "profession", "fte"), [
        (unit_a.pk, "2025", "psykolog", Decimal("1.25")),
    ])  # fmt: skip
    row = Staffing.objects.get(unit=unit_a)
    update_rows(Staffing, ("fte",), [(Decimal("2.5"), row.pk)])
    row.refresh_from_db()
    assert row.fte == Decimal("2.5")


def test_it_refuses_an_unknown_column_and_changes_nothing(unit_a):
    insert_rows(Listing, ("unit_id", "month", "sex", "age_band", "listed"), [
        (unit_a.pk, "2025-01", "K", "0-4", 10),
    ])  # fmt: skip
    pk = Listing.objects.get().pk
    with pytest.raises(FieldDoesNotExist, match="no column listd"):
        update_rows(Listing, ("listd",), [(99, pk)])
    with pytest.raises(FieldDoesNotExist, match="no column unit"):
        insert_rows(Listing, ("unit", "month", "sex", "age_band", "listed"), [
            (unit_a.pk, "2025-02", "K", "0-4", 10),
        ])  # fmt: skip
    assert _listings(unit_a) == [("2025-01", "K", "0-4", 10)]


def test_it_writes_nothing_for_no_rows(unit_a):
    update_rows(Listing, ("listed",), [])
    insert_rows(Listing, ("unit_id", "month", "sex", "age_band", "listed"), [])
    assert not Listing.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_update_that_fails_part_way_changes_nothing(unit_a, monkeypatch):
    monkeypatch.setattr("styrkort.bulk.BATCH", 1)  # SQLite: the bad row is in a later batch
    insert_rows(Listing, ("unit_id", "month", "sex", "age_band", "listed"), [
        (unit_a.pk, "2025-01", sex, "0-4", 10) for sex in "KM"
    ])  # fmt: skip
    k, m = (Listing.objects.get(unit=unit_a, sex=s) for s in "KM")
    with pytest.raises(IntegrityError):
        update_rows(Listing, ("listed",), [(20, k.pk), (None, m.pk)])  # listed is NOT NULL
    assert _listings(unit_a) == [("2025-01", "K", "0-4", 10), ("2025-01", "M", "0-4", 10)]


@pytest.mark.django_db(transaction=True)
def test_a_failure_of_the_callers_transaction_undoes_the_update(unit_a):
    insert_rows(Listing, ("unit_id", "month", "sex", "age_band", "listed"), [
        (unit_a.pk, "2025-01", "K", "0-4", 10),
    ])  # fmt: skip
    row = Listing.objects.get(unit=unit_a)

    def fail_after_the_update():
        with transaction.atomic():
            update_rows(Listing, ("listed",), [(20, row.pk)])
            raise RuntimeError("the caller fails after the update")

    with pytest.raises(RuntimeError):
        fail_after_the_update()
    assert _listings(unit_a) == [("2025-01", "K", "0-4", 10)]
