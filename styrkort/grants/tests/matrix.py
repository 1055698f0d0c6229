"""The grants' part of the access matrix (styrkort/organisation/tests/test_access_matrix.py):
the objects whose ids fill the grants' path parameters, and valid request bodies.

`grant_world(world)` builds, once per matrix world and through the services: a grant with a
decided plan (version 1) and a draft (version 2), listings in October 2025, unit_a's account as
a draft with one attachment, a stored national distribution and a draft report (version 1)
with its texts written. Not a test module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile

from styrkort.grants import services
from styrkort.grants.models import AccountAttachment, AllocationPlan, Grant, NationalDistribution
from styrkort.grants.tests.conftest import POPULATION_TEXT, add_listings

__all__ = ["POPULATION_TEXT", "PATH_PARAMS", "grant_world"]


@dataclass
class GrantWorld:
    grant: Grant
    decided: AllocationPlan
    draft: AllocationPlan
    attachment: AccountAttachment
    distribution: NationalDistribution


def grant_world(world) -> GrantWorld:
    cached = getattr(world, "_grants", None)
    if cached is not None:
        return cached
    users = {u.username: u for u in get_user_model().objects.all()}
    analyst, manager = users["analyst"], users["manager"]
    add_listings(world.unit_a, "2025-10", 3_000, 3_000)
    add_listings(world.unit_b, "2025-10", 2_500, 1_500)
    grant = services.create_grant(
        analyst, name="Matrix grant", total=1_000_000, first_year=2025,
        accounts_deadline=date(2026, 1, 31), report_deadline=date(2026, 3, 15),
        repayment_deadline=date(2026, 3, 31),
    )  # fmt: skip
    spec = services.plan_input_from_values(
        {"reference_month": "2025-10", "central_items": [{"name": "Utbildning", "percent": "15"}]}
    )
    decided = services.create_plan(analyst, grant, spec)
    services.decide_plan(analyst, decided, dnr="RS 1")
    draft = services.create_plan(analyst, grant, spec)
    services.save_account(manager, grant, world.unit_a, lines={"psykolog": {"used": 100_000}})
    attachment = services.add_attachment(
        manager, grant, world.unit_a, SimpleUploadedFile("underlag.txt", b"Underlag")
    )
    distribution = services.save_national_distribution(
        analyst, name="Matrix", total=496_000_000, population_file=POPULATION_TEXT,
        reference_date="2024-12-31",
    )  # fmt: skip
    report = services.start_report(analyst, grant)
    services.update_report(
        analyst, report, gender_equality="a", childrens_rights="b", disability="c"
    )
    world._grants = GrantWorld(grant, decided, draft, attachment, distribution)
    return world._grants


PATH_PARAMS = {
    "grant_id": lambda w: grant_world(w).grant.pk,
    "plan_id": lambda w: grant_world(w).draft.pk,
    "distribution_id": lambda w: grant_world(w).distribution.pk,
    "attachment_id": lambda w: grant_world(w).attachment.pk,
    "version": lambda w: (grant_world(w), 1)[1],
}

GRANT_FORM = {
    "name": "Changed by the matrix", "dnr": "S1", "authority": "Socialstyrelsen",
    "total": "1 000 000", "first_year": "2025", "accounts_deadline": "2026-01-31",
    "report_deadline": "2026-03-15", "repayment_deadline": "2026-03-31",
}  # fmt: skip
PLAN_FORM = {
    "reference_month": "2025-10", "weighting": "none", "central-0-name": "Utbildning",
    "central-0-amount": "", "central-0-percent": "10", "central-0-category": "",
}  # fmt: skip
ACCOUNT_FORM = {
    "action": "save", "used_psykolog": "120 000", "persons_psykolog": "1",
    "fte_added_psykolog": "0,2", "measures_psykolog": "KBT", "comment": "",
}  # fmt: skip
DISTRIBUTION_FORM = {
    "name": "Matrix 2", "total": "496 000 000", "reference_date": "2024-12-31",
    "action": "save", "population_text": POPULATION_TEXT,
}  # fmt: skip
REPORT_FORM = {
    "action": "save", "measures_summary": "m", "gender_equality": "g",
    "childrens_rights": "c", "disability": "d", "other_comments": "",
}  # fmt: skip
CENTRAL_FORM = {
    "central-0-name": "Utbildning", "central-0-used": "100 000", "central-0-persons": "10",
    "central-0-fte_added": "", "central-0-measures": "Kurs",
}  # fmt: skip


def attachment_form(w) -> dict:
    return {"file": SimpleUploadedFile("intyg.txt", b"Intyg")}


GRANT_BODY = {
    "name": "Matrix API grant", "total": 500_000, "first_year": 2025,
    "accounts_deadline": "2026-01-31", "report_deadline": "2026-03-15",
    "repayment_deadline": "2026-03-31",
}  # fmt: skip
PLAN_BODY = {
    "reference_month": "2025-10",
    "central_items": [{"name": "Utbildning", "percent": "15"}],
}
