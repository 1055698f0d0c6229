"""Two people editing the same unit at once (PostgreSQL only: SQLite has one writer at a time,
so the race cannot happen there).

update_unit locks the unit's row (SELECT … FOR UPDATE) before reading its "before" state, so a
second edit waits for the first to commit, keeps the first edit's change and records a history
entry whose "before" is the state the first edit left. Without the lock, the second save would
write back the old name it read and the first edit would be lost without a trace.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from styrkort.history.models import ChangeRecord
from styrkort.organisation import services
from styrkort.organisation.models import CareUnit

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]


def test_it_serialises_two_concurrent_edits_of_the_same_unit(users, unit_a):
    analyst, admin = users["analyst"], users["admin"]
    first_holds_lock, second_has_read = threading.Event(), threading.Event()
    finished: dict[str, float] = {}
    errors: list[BaseException] = []

    def first():
        try:
            with transaction.atomic():
                services.update_unit(analyst, unit_a, name="Vårdcentralen Ankarsrum Norra")
                first_holds_lock.set()
                # Uncommitted until the second edit has read the unit (on a loaded machine it
                # may take a while to get there), then a little longer while it waits.
                second_has_read.wait(10)
                time.sleep(0.5)
            finished["first"] = time.monotonic()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
            first_holds_lock.set()
        finally:
            connection.close()

    def second():
        try:
            first_holds_lock.wait(10)
            stale = CareUnit.objects.get(pk=unit_a.pk)  # read before the first commits
            second_has_read.set()
            assert stale.name == "Vårdcentralen Ankarsrum"
            services.update_unit(admin, stale, municipality="Gamleby")
            finished["second"] = time.monotonic()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
            second_has_read.set()
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert finished["second"] >= finished["first"]

    unit = CareUnit.objects.get(pk=unit_a.pk)
    assert (unit.name, unit.municipality) == ("Vårdcentralen Ankarsrum Norra", "Gamleby")
    records = list(ChangeRecord.objects.filter(object_id=str(unit_a.pk)).order_by("id"))
    assert [r.actor_id for r in records][-2:] == [analyst.pk, admin.pk]
    # The second entry starts from what the first left, so the history chains without a gap.
    assert records[-1].before["name"] == "Vårdcentralen Ankarsrum Norra"
    assert records[-1].before["municipality"] == "Västervik"
    assert records[-1].after["municipality"] == "Gamleby"
