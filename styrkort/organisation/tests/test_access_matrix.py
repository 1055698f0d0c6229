"""Every page and every API operation, for every persona, against an explicit table.

EVERY ENGINEER WHO ADDS A PAGE (a URL pattern) OR AN API OPERATION MUST ADD IT TO `PAGES` OR
`API` BELOW, with the expected answer for each persona and, for forms and write operations, a
valid request body. The test fails for any URL pattern or operation that is not in the table
(and for table entries that no longer exist). Path parameters are filled from `PATH_PARAMS`
(add yours there: e.g. an extract id from an object the fixture `world` creates); an entry's
own "params" (a function of the world) take precedence, for a parameter name that means
different objects on different pages (job_id). API entries with "multipart" post a form with
files instead of a JSON body.

Reads: the answer must match and nothing may change. Writes (POST, PUT, PATCH, DELETE) by a
persona the table refuses (login redirect, 401, 403, 404, 405) must change nothing: every row
of every Styrkort model is compared before and after.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from django.apps import apps
from django.db import connection
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from styrkort.extracts.tests import matrix as extracts_matrix
from styrkort.grants.tests import matrix as grants_matrix
from styrkort.indicators.tests import matrix as indicators_matrix
from styrkort.jobs.models import Job
from styrkort.organisation import imports
from styrkort.organisation.models import CareUnit
from styrkort.organisation.tests.sample import add_listings, add_staffing

PERSONAS = (
    "anonymous", "nobody", "viewer", "auditor", "manager", "colleague", "analyst", "admin",
    "outsider",
)  # fmt: skip

LOGIN = "login"  # a 302 to the login page
REFUSED_ANY = "refused"  # any refusal (login redirect, 401, 403, 404, 405) and nothing changes
REFUSALS = {LOGIN, 401, 403, 404, 405}


def row(*answers) -> dict[str, int | str]:
    """Expected answers in the order of PERSONAS (the column heads in the tables below)."""
    assert len(answers) == len(PERSONAS), answers
    return dict(zip(PERSONAS, answers, strict=True))


NO_WRITE = row(*[REFUSED_ANY] * len(PERSONAS))

# URL patterns deliberately not checked here, each with the reason.
SKIPPED_PREFIXES = {
    "admin/": "Django's admin site (staff only, its own permission system)",
    "static/": "static files",
    "media/": "uploaded files are never served by URL",
}
SKIPPED_NAMES = {
    "set_language": "i18n: Django's language switch (no data)",
    "api:openapi-json": "API docs internals: the OpenAPI document",
    "api:openapi-view": "API docs internals: the interactive docs page",
    "api:api-root": "API docs internals: the API root",
}


@dataclass
class World:
    """The objects whose ids fill path parameters."""

    unit_a: CareUnit
    unit_b: CareUnit
    other_unit: CareUnit
    job: Job
    import_dry_run: Job | None = None  # the analyst's dry run of a kept staffing file
    import_real: Job | None = None  # the analyst's real import of a staffing file


# Path parameter name -> its value in the world. Add your own parameters here.
PATH_PARAMS: dict[str, Callable[[World], object]] = {
    "unit_id": lambda w: w.unit_a.pk,
    "unit_ref": lambda w: w.unit_a.pk,
    "job_id": lambda w: w.job.pk,
    "kind": lambda w: "staffing",  # import samples, imports and exports
    "fmt": lambda w: "csv",
    # grant_id, plan_id (a draft), distribution_id, attachment_id, version
    **grants_matrix.PATH_PARAMS,
    # code: an indicator with stored results
    **indicators_matrix.PATH_PARAMS,
    # upload_id (a refused upload with its report), version_id (a superseded version)
    **extracts_matrix.PATH_PARAMS,
}


def _unit_form(w: World) -> dict:
    u = w.unit_a
    return {
        "name": "Changed by the matrix",
        "municipality": u.municipality,
        "provider": u.provider_id,
        "opened": u.opened.isoformat() if u.opened else "",
        "closed": "",
    }


# Pages by URL name: the expected answer to GET and to POST, and the POST body (a function of
# the world). NO_WRITE: the page takes no POST; every persona is refused and nothing changes.
#
#                 anonymous nobody viewer auditor manager colleague analyst admin outsider
PAGES: dict[str, dict] = {
    "web:home": {
        "GET": row(LOGIN, 302, 302, 302, 302, 302, 302, 302, 302),
        "POST": NO_WRITE,
    },
    "login": {
        "GET": row(200, 302, 302, 302, 302, 302, 302, 302, 302),
        "POST": row(200, 302, 302, 302, 302, 302, 302, 302, 302),
        "data": lambda w: {"username": "", "password": ""},
    },
    "logout": {
        "GET": row(405, 405, 405, 405, 405, 405, 405, 405, 405),
        "POST": row(LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, LOGIN),
    },
    "accounts:profile": {
        "GET": row(LOGIN, 200, 200, 200, 200, 200, 200, 200, 200),
        "POST": row(LOGIN, 200, 200, 200, 200, 200, 200, 200, 200),
        "data": lambda w: {"action": "create", "name": "matrix"},
    },
    "accounts:users": {
        "GET": row(LOGIN, 403, 403, 403, 403, 403, 403, 200, 403),
        "POST": NO_WRITE | {"admin": 200},  # the page has no form; POST shows the list
    },
    "history:log": {
        "GET": row(LOGIN, 403, 403, 200, 200, 200, 200, 200, 200),
        "POST": NO_WRITE,
    },
    "jobs:progress": {
        "GET": row(LOGIN, 404, 404, 404, 404, 404, 200, 404, 404),  # the analyst's own job
        "POST": NO_WRITE,
    },
    "organisation:overview": {
        "GET": row(LOGIN, 403, 200, 200, 200, 200, 200, 200, 200),
        "POST": NO_WRITE,
    },
    "organisation:unit_list": {
        "GET": row(LOGIN, 403, 200, 200, 200, 200, 200, 200, 200),
        "POST": NO_WRITE,
    },
    "organisation:unit_detail": {
        "GET": row(LOGIN, 403, 200, 200, 200, 200, 200, 200, 404),
        "POST": NO_WRITE,
    },
    "organisation:unit_history": {
        "GET": row(LOGIN, 403, 403, 200, 200, 403, 200, 200, 404),
        "POST": NO_WRITE,
    },
    "organisation:unit_edit": {
        "GET": row(LOGIN, 403, 403, 403, 403, 403, 200, 200, 404),
        "POST": row(LOGIN, 403, 403, 403, 403, 403, 302, 302, 404),
        "data": _unit_form,
    },
    "organisation:staffing_edit": {
        "GET": row(LOGIN, 403, 403, 403, 200, 403, 200, 200, 404),
        "POST": row(LOGIN, 403, 403, 403, 302, 403, 302, 302, 404),
        "data": lambda w: {"period": "2025", "fte_psykolog": "2"},
    },
    "organisation:provider_list": {
        "GET": row(LOGIN, 403, 200, 200, 200, 200, 200, 200, 200),
        "POST": NO_WRITE,
    },
    # --- organisation imports and exports (unit managers import staffing of own units) ---
    "organisation:import": {
        "GET": row(LOGIN, 403, 403, 403, 200, 200, 200, 200, 200),
        "POST": row(LOGIN, 403, 403, 403, 302, 302, 302, 302, 302),  # starts a dry run
        "data": lambda w: {"kind": "staffing", "file": _staffing_file()},
    },
    "organisation:import_sample": {
        "GET": row(LOGIN, 403, 403, 403, 200, 200, 200, 200, 200),
        "POST": NO_WRITE,
    },
    "organisation:import_review": {  # the analyst's own dry run
        "GET": row(LOGIN, 404, 404, 404, 404, 404, 200, 404, 404),
        "POST": NO_WRITE,
        "params": lambda w: {"job_id": w.import_dry_run.pk},
    },
    "organisation:import_confirm": {
        "GET": row(LOGIN, 405, 405, 405, 405, 405, 405, 405, 405),
        "POST": row(LOGIN, 404, 404, 404, 404, 404, 302, 404, 404),
        "params": lambda w: {"job_id": w.import_dry_run.pk},
    },
    "organisation:import_cancel": {
        "GET": row(LOGIN, 405, 405, 405, 405, 405, 405, 405, 405),
        "POST": row(LOGIN, 404, 404, 404, 404, 404, 302, 404, 404),
        "params": lambda w: {"job_id": w.import_dry_run.pk},
    },
    "organisation:import_result": {  # the analyst's own import
        "GET": row(LOGIN, 404, 404, 404, 404, 404, 200, 404, 404),
        "POST": NO_WRITE,
        "params": lambda w: {"job_id": w.import_real.pk},
    },
    "organisation:export": {
        "GET": row(LOGIN, 403, 200, 200, 200, 200, 200, 200, 200),
        "POST": NO_WRITE,
    },
    # --- grants (styrkort/grants/tests/matrix.py builds the objects and the form bodies) ---
    "grants:list": {
        "GET": row(LOGIN, 403, 200, 200, 200, 200, 200, 200, 200),
        "POST": NO_WRITE,
    },
    "grants:create": {
        "GET": row(LOGIN, 403, 403, 403, 403, 403, 200, 403, 200),
        "POST": row(LOGIN, 403, 403, 403, 403, 403, 302, 403, 302),
        "data": lambda w: grants_matrix.GRANT_FORM,
    },
    "grants:national": {
        "GET": row(LOGIN, 403, 200, 200, 200, 200, 200, 200, 200),
        "POST": row(LOGIN, 403, 403, 403, 403, 403, 302, 403, 302),
        "data": lambda w: grants_matrix.DISTRIBUTION_FORM,
    },
    "grants:national_detail": {
        "GET": row(LOGIN, 403, 200, 200, 200, 200, 200, 200, 404),
        "POST": NO_WRITE,
    },
    "grants:detail": {
        "GET": row(LOGIN, 403, 200, 200, 200, 200, 200, 200, 404),
        "POST": NO_WRITE,
    },
    "grants:edit": {
        "GET": row(LOGIN, 403, 403, 403, 403, 403, 200, 403, 404),
        "POST": row(LOGIN, 403, 403, 403, 403, 403, 302, 403, 404),
        "data": lambda w: grants_matrix.GRANT_FORM,
    },
    "grants:transition": {
        "GET": row(LOGIN, 405, 405, 405, 405, 405, 405, 405, 405),
        "POST": row(LOGIN, 403, 403, 403, 403, 403, 302, 403, 404),
        "data": lambda w: {"state": "paid", "note": "matrix"},
    },
    "grants:plan_new": {
        "GET": row(LOGIN, 403, 403, 403, 403, 403, 200, 403, 404),
        "POST": row(LOGIN, 403, 403, 403, 403, 403, 302, 403, 404),
        "data": lambda w: grants_matrix.PLAN_FORM,
    },
    "grants:plan_detail": {  # a draft: reviewers only
        "GET": row(LOGIN, 403, 404, 200, 404, 404, 200, 200, 404),
        "POST": NO_WRITE,
    },
    "grants:plan_edit": {
        "GET": row(LOGIN, 403, 403, 403, 403, 403, 200, 403, 404),
        "POST": row(LOGIN, 403, 403, 403, 403, 403, 302, 403, 404),
        "data": lambda w: grants_matrix.PLAN_FORM,
    },
    "grants:plan_decide": {
        "GET": row(LOGIN, 405, 405, 405, 405, 405, 405, 405, 405),
        "POST": row(LOGIN, 403, 403, 403, 403, 403, 302, 403, 404),
        "data": lambda w: {"dnr": "RS 2", "reason": "matrix"},
    },
    "grants:accounts": {
        "GET": row(LOGIN, 403, 403, 200, 200, 200, 200, 200, 404),
        "POST": NO_WRITE,
    },
    "grants:accounts_reminder": {
        "GET": row(LOGIN, 403, 403, 200, 403, 403, 200, 200, 404),
        "POST": NO_WRITE,
    },
    "grants:account": {  # unit_a's account (the manager's unit; the colleague's is unit_b)
        "GET": row(LOGIN, 403, 403, 200, 200, 403, 200, 200, 404),
        "POST": row(LOGIN, 403, 403, 403, 302, 403, 302, 403, 404),
        "data": lambda w: grants_matrix.ACCOUNT_FORM,
    },
    "grants:account_review": {
        "GET": row(LOGIN, 405, 405, 405, 405, 405, 405, 405, 405),
        "POST": row(LOGIN, 403, 403, 403, 403, 403, 302, 403, 404),
        "data": lambda w: {"action": "approve", "comment": ""},
    },
    "grants:attachment_add": {
        "GET": row(LOGIN, 405, 405, 405, 405, 405, 405, 405, 405),
        "POST": row(LOGIN, 403, 403, 403, 302, 403, 302, 403, 404),
        "data": grants_matrix.attachment_form,
    },
    "grants:attachment": {
        "GET": row(LOGIN, 403, 403, 200, 200, 403, 200, 200, 404),
        "POST": NO_WRITE,
    },
    "grants:attachment_delete": {  # the manager removes it first, so the analyst finds none
        "GET": row(LOGIN, 405, 405, 405, 405, 405, 405, 405, 405),
        "POST": row(LOGIN, 403, 403, 403, 302, 403, 404, 403, 404),
    },
    "grants:repayment": {
        "GET": row(LOGIN, 403, 403, 200, 403, 403, 200, 200, 404),
        "POST": row(LOGIN, 403, 403, 403, 403, 403, 302, 403, 404),
        "data": lambda w: grants_matrix.CENTRAL_FORM,
    },
    "grants:report": {  # redirects to the latest version
        "GET": row(LOGIN, 403, 302, 302, 403, 403, 302, 302, 404),
        "POST": row(LOGIN, 403, 403, 403, 403, 403, 302, 403, 404),
    },
    "grants:report_version": {
        "GET": row(LOGIN, 403, 200, 200, 403, 403, 200, 200, 404),
        "POST": row(LOGIN, 403, 403, 403, 403, 403, 302, 403, 404),
        "data": lambda w: grants_matrix.REPORT_FORM,
    },
    "grants:report_pdf": {
        "GET": row(LOGIN, 403, 200, 200, 403, 403, 200, 200, 404),
        "POST": NO_WRITE,
    },
    "grants:report_xlsx": {
        "GET": row(LOGIN, 403, 200, 200, 403, 403, 200, 200, 404),
        "POST": NO_WRITE,
    },
    # --- indicators (styrkort/indicators/tests/matrix.py stores results for the code) ---
    "indicators:catalogue": {
        "GET": row(LOGIN, 403, 200, 200, 200, 200, 200, 200, 200),
        "POST": NO_WRITE,
    },
    "indicators:compute": {  # queues a job (not run: jobs are polled here)
        "GET": row(LOGIN, 405, 405, 405, 405, 405, 405, 405, 405),
        "POST": row(LOGIN, 403, 403, 403, 403, 403, 302, 302, 302),
    },
    "indicators:run_status": {  # htmx only: a plain request is sent to the catalogue
        "GET": row(LOGIN, 403, 302, 302, 302, 302, 302, 302, 302),
        "POST": NO_WRITE,
    },
    "indicators:detail": {  # definitions are shared; results are the user's region's
        "GET": row(LOGIN, 403, 200, 200, 200, 200, 200, 200, 200),
        "POST": NO_WRITE,
    },
    "indicators:download": {
        "GET": row(LOGIN, 403, 200, 200, 200, 200, 200, 200, 200),
        "POST": NO_WRITE,
    },
    "indicators:unit": {
        "GET": row(LOGIN, 403, 200, 200, 200, 200, 200, 200, 404),
        "POST": NO_WRITE,
    },
    # --- extracts: analysts only; the status page and report are the uploader's own ---
    "extracts:list": {
        "GET": row(LOGIN, 403, 403, 403, 403, 403, 200, 403, 200),
        "POST": NO_WRITE,
    },
    "extracts:upload": {
        "GET": row(LOGIN, 403, 403, 403, 403, 403, 200, 403, 200),
        "POST": row(LOGIN, 403, 403, 403, 403, 403, 302, 403, 302),
        "data": extracts_matrix.upload_form,
    },
    "extracts:upload_status": {
        "GET": row(LOGIN, 403, 403, 403, 403, 403, 200, 403, 404),
        "POST": NO_WRITE,
    },
    "extracts:error_report": {
        "GET": row(LOGIN, 403, 403, 403, 403, 403, 200, 403, 404),
        "POST": NO_WRITE,
    },
    "extracts:purge": {  # a superseded version: confirm (GET), purge (POST)
        "GET": row(LOGIN, 403, 403, 403, 403, 403, 200, 403, 404),
        "POST": row(LOGIN, 403, 403, 403, 403, 403, 302, 403, 404),
    },
}

# API operations by "METHOD /path" as in the OpenAPI document, with a JSON body for writes.
# Without a role (anonymous, nobody) the API answers 401.
#
#                 anonymous nobody viewer auditor manager colleague analyst admin outsider
ALL_MEMBERS = row(401, 401, 200, 200, 200, 200, 200, 200, 200)
UNIT_A_READ = row(401, 401, 200, 200, 200, 200, 200, 200, 404)
API: dict[str, dict] = {
    "GET /api/accounts/me": {"expect": ALL_MEMBERS},
    "GET /api/history/changes": {"expect": row(401, 401, 403, 200, 200, 200, 200, 200, 200)},
    "GET /api/jobs/{job_id}": {"expect": row(401, 401, 404, 404, 404, 404, 200, 404, 404)},
    "GET /api/organisation/regions": {"expect": ALL_MEMBERS},
    "GET /api/organisation/providers": {"expect": ALL_MEMBERS},
    "GET /api/organisation/units": {"expect": ALL_MEMBERS},
    "GET /api/organisation/units/{unit_ref}": {"expect": UNIT_A_READ},
    "GET /api/organisation/units/{unit_ref}/listings": {"expect": UNIT_A_READ},
    "GET /api/organisation/units/{unit_ref}/staffing": {"expect": UNIT_A_READ},
    "GET /api/organisation/units/{unit_ref}/history": {
        "expect": row(401, 401, 403, 200, 200, 403, 200, 200, 404)
    },
    "GET /api/organisation/listings": {"expect": ALL_MEMBERS},
    "GET /api/organisation/staffing": {"expect": ALL_MEMBERS},
    "GET /api/organisation/psychosocial": {"expect": ALL_MEMBERS},
    "PATCH /api/organisation/units/{unit_ref}": {
        "expect": row(401, 401, 403, 403, 403, 403, 200, 200, 404),
        "body": lambda w: {"name": "Changed through the API"},
    },
    "PUT /api/organisation/units/{unit_ref}/staffing": {
        "expect": row(401, 401, 403, 403, 200, 403, 200, 200, 404),
        "body": lambda w: {"period": "2025", "fte": {"psykolog": "2.5"}},
    },
    "POST /api/organisation/imports/{kind}": {  # a dry run of staffing; 202: queued
        "expect": row(401, 401, 403, 403, 202, 202, 202, 202, 202),
        "multipart": lambda w: {"file": _staffing_file()},
    },
    "GET /api/organisation/exports/{kind}.{fmt}": {"expect": ALL_MEMBERS},
    # --- grants ---
    "GET /api/grants": {"expect": ALL_MEMBERS},
    "POST /api/grants": {
        "expect": row(401, 401, 403, 403, 403, 403, 201, 403, 201),
        "body": lambda w: grants_matrix.GRANT_BODY,
    },
    "GET /api/grants/{grant_id}": {"expect": UNIT_A_READ},
    "PATCH /api/grants/{grant_id}": {
        "expect": row(401, 401, 403, 403, 403, 403, 200, 403, 404),
        "body": lambda w: {"name": "Changed through the API"},
    },
    "PUT /api/grants/{grant_id}/categories": {
        "expect": row(401, 401, 403, 403, 403, 403, 200, 403, 404),
        "body": lambda w: [{"code": "psykolog", "name": "Psykolog", "allowed": True}],
    },
    "POST /api/grants/{grant_id}/transitions": {
        "expect": row(401, 401, 403, 403, 403, 403, 200, 403, 404),
        "body": lambda w: {"state": "paid"},
    },
    "GET /api/grants/national-distributions": {"expect": ALL_MEMBERS},
    "POST /api/grants/national-distributions": {
        "expect": row(401, 401, 403, 403, 403, 403, 201, 403, 201),
        "body": lambda w: {
            "name": "API",
            "total": 496_000_000,
            "reference_date": "2024-12-31",
            "population_csv": grants_matrix.POPULATION_TEXT,
        },  # fmt: skip
    },
    "POST /api/grants/national-distributions/preview": {
        "expect": row(401, 401, 403, 403, 403, 403, 200, 403, 200),
        "body": lambda w: {"total": 496_000_000, "population_csv": grants_matrix.POPULATION_TEXT},
    },
    "GET /api/grants/national-distributions/{distribution_id}": {"expect": UNIT_A_READ},
    "GET /api/grants/{grant_id}/plans": {"expect": UNIT_A_READ},
    "POST /api/grants/{grant_id}/plans": {
        "expect": row(401, 401, 403, 403, 403, 403, 201, 403, 404),
        "body": lambda w: grants_matrix.PLAN_BODY,
    },
    "GET /api/grants/{grant_id}/plans/{plan_id}": {  # a draft: reviewers only
        "expect": row(401, 401, 404, 200, 404, 404, 200, 200, 404)
    },
    "PATCH /api/grants/{grant_id}/plans/{plan_id}": {
        "expect": row(401, 401, 403, 403, 403, 403, 200, 403, 404),
        "body": lambda w: grants_matrix.PLAN_BODY,
    },
    "POST /api/grants/{grant_id}/plans/{plan_id}/decide": {
        "expect": row(401, 401, 403, 403, 403, 403, 200, 403, 404),
        "body": lambda w: {"dnr": "RS 2", "reason": "matrix"},
    },
    "GET /api/grants/{grant_id}/accounts": {
        "expect": row(401, 401, 403, 200, 200, 200, 200, 200, 404)
    },
    "GET /api/grants/{grant_id}/accounts/missing": {
        "expect": row(401, 401, 403, 200, 403, 403, 200, 200, 404)
    },
    "GET /api/grants/{grant_id}/accounts/{unit_id}": {
        "expect": row(401, 401, 403, 200, 200, 403, 200, 200, 404)
    },
    "PUT /api/grants/{grant_id}/accounts/{unit_id}": {
        "expect": row(401, 401, 403, 403, 200, 403, 200, 403, 404),
        "body": lambda w: {"lines": {"psykolog": {"used": 150_000, "persons": 1}}},
    },
    "POST /api/grants/{grant_id}/accounts/{unit_id}/submit": {  # then locked: the analyst's 400
        "expect": row(401, 401, 403, 403, 200, 403, 400, 403, 404),
    },
    "POST /api/grants/{grant_id}/accounts/{unit_id}/return": {  # a draft cannot be returned
        "expect": row(401, 401, 403, 403, 403, 403, 400, 403, 404),
        "body": lambda w: {"comment": "matrix"},
    },
    "POST /api/grants/{grant_id}/accounts/{unit_id}/approve": {  # nor approved
        "expect": row(401, 401, 403, 403, 403, 403, 400, 403, 404),
    },
    "POST /api/grants/{grant_id}/accounts/{unit_id}/attachments": {  # JSON carries no file
        "expect": row(401, 401, 403, 403, 400, 403, 400, 403, 404),
    },
    "GET /api/grants/{grant_id}/repayment": {
        "expect": row(401, 401, 403, 200, 403, 403, 200, 200, 404)
    },
    "PUT /api/grants/{grant_id}/central-spending": {
        "expect": row(401, 401, 403, 403, 403, 403, 200, 403, 404),
        "body": lambda w: [{"name": "Utbildning", "used": 100_000}],
    },
    "GET /api/grants/{grant_id}/reports": {
        "expect": row(401, 401, 200, 200, 403, 403, 200, 200, 404)
    },
    "POST /api/grants/{grant_id}/reports": {
        "expect": row(401, 401, 403, 403, 403, 403, 201, 403, 404),
    },
    "GET /api/grants/{grant_id}/reports/{version}": {
        "expect": row(401, 401, 200, 200, 403, 403, 200, 200, 404)
    },
    "PATCH /api/grants/{grant_id}/reports/{version}": {
        "expect": row(401, 401, 403, 403, 403, 403, 200, 403, 404),
        "body": lambda w: {"other_comments": "matrix"},
    },
    "POST /api/grants/{grant_id}/reports/{version}/submit": {
        "expect": row(401, 401, 403, 403, 403, 403, 200, 403, 404),
    },
    "GET /api/grants/{grant_id}/reports/{version}/pdf": {
        "expect": row(401, 401, 200, 200, 403, 403, 200, 200, 404)
    },
    "GET /api/grants/{grant_id}/reports/{version}/xlsx": {
        "expect": row(401, 401, 200, 200, 403, 403, 200, 200, 404)
    },
    # --- indicators ---
    "GET /api/indicators/definitions": {"expect": ALL_MEMBERS},
    "GET /api/indicators/definitions/{code}": {"expect": ALL_MEMBERS},
    "GET /api/indicators/results": {  # without ?indicator= (required): 422 after the auth
        "expect": row(401, 401, 422, 422, 422, 422, 422, 422, 422)
    },
    "GET /api/indicators/results.csv": {"expect": row(401, 401, 422, 422, 422, 422, 422, 422, 422)},
    "POST /api/indicators/compute": {  # queues a job in the user's own region
        "expect": row(401, 401, 403, 403, 403, 403, 202, 202, 202),
    },
    # --- extracts ---
    "POST /api/extracts/uploads": {  # a JSON body carries no period and no file: 400
        "expect": row(401, 401, 403, 403, 403, 403, 400, 403, 400),
    },
    "GET /api/extracts/uploads/{upload_id}": {
        "expect": row(401, 401, 403, 403, 403, 403, 200, 403, 404)
    },
    "GET /api/extracts/versions": {"expect": row(401, 401, 403, 403, 403, 403, 200, 403, 200)},
    "POST /api/extracts/versions/{version_id}/purge": {
        "expect": row(401, 401, 403, 403, 403, 403, 200, 403, 404),
    },
}


def _staffing_file():
    """A valid staffing file for unit_a (a fresh one per request: uploads are consumed)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    text = "unit_hsa_id;period;profession;fte\nSE2321000016-A001;2025Q2;psykolog;1,5\n"
    return SimpleUploadedFile("matrix.csv", text.encode(), content_type="text/csv")


# --- discovery -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    name: str | None
    route: str
    params: tuple[str, ...]


def _walk(patterns, prefix: str = "", namespace: str | None = None) -> Iterator[Route]:
    for p in patterns:
        if isinstance(p, URLResolver):
            ns = namespace
            if p.namespace:
                ns = f"{namespace}:{p.namespace}" if namespace else p.namespace
            yield from _walk(p.url_patterns, prefix + str(p.pattern), ns)
        elif isinstance(p, URLPattern):
            name = f"{namespace}:{p.name}" if (namespace and p.name) else p.name
            params = tuple(getattr(p.pattern, "converters", {}) or ())
            yield Route(name, prefix + str(p.pattern), params)


def _routes() -> list[Route]:
    return [
        r
        for r in _walk(get_resolver().url_patterns)
        if not any(r.route.startswith(prefix) for prefix in SKIPPED_PREFIXES)
        and r.name not in SKIPPED_NAMES
    ]


def _page_routes() -> dict[str | None, Route]:
    """Routes outside the API, by name (the API's own are checked through its schema)."""
    return {r.name: r for r in _routes() if not r.route.startswith("api/")}


@functools.cache
def _api_operations() -> dict[str, tuple[str, str]]:
    """ "METHOD /path" -> (method, path template) for every operation in the OpenAPI schema
    (built once per process: a quarter of a second each time, and the API does not change)."""
    from styrkort.api import api

    schema = api.get_openapi_schema(path_prefix="/api/")
    return {
        f"{method.upper()} {path}": (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
    }


# --- state ---------------------------------------------------------------------------------


def _everything() -> dict[str, list[tuple]]:
    """Every row of every Styrkort table (organisation, history, jobs, accounts, …), their
    many-to-many tables included, as the database holds them: read with plain SQL, which is
    several times quicker than model values (it is read four times per persona and page)."""
    quote = connection.ops.quote_name
    state = {}
    with connection.cursor() as cursor:
        for config in apps.get_app_configs():
            if not config.name.startswith("styrkort."):
                continue
            for model in config.get_models(include_auto_created=True):
                table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
                cursor.execute(f"SELECT * FROM {table} ORDER BY {pk}")
                state[model._meta.label] = cursor.fetchall()
    return state


def _diff(before: dict, after: dict) -> list[str]:
    return [label for label in before if before[label] != after.get(label)]


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def world(users, unit_a, unit_b, unit_c, other_unit, settings, tmp_path) -> World:
    settings.MEDIA_ROOT = tmp_path / "media"  # grants' attachments are files
    extracts_matrix.use_tmp_dirs(settings, tmp_path)  # uploads and Parquet files
    add_listings(unit_a)
    add_staffing(unit_a, "2025", psykolog="1", lakare="2")
    job = Job.objects.create(kind="matrix.noop", params={}, created_by=users["analyst"])
    staffing = tmp_path / "matrix-staffing.csv"
    staffing.write_bytes(_staffing_file().read())

    def start(dry_run: bool) -> Job:
        name = imports.save_upload_from_path(staffing)
        return imports.enqueue_import(
            users["analyst"], "staffing", name, dry_run=dry_run, keep=dry_run,
            original_name="matrix-staffing.csv",
        )  # fmt: skip

    return World(
        unit_a=unit_a, unit_b=unit_b, other_unit=other_unit, job=job,
        import_dry_run=start(True), import_real=start(False),
    )  # fmt: skip


@pytest.fixture
def as_persona(users) -> Callable[[str], Client]:
    """A logged-in client per persona, made once per test: its GET and its POST are one
    visitor's, as in a browser, and logging in is much of what a request here costs."""

    @functools.cache
    def make(persona: str) -> Client:
        c = Client()
        if persona != "anonymous":
            c.force_login(users[persona])
        return c

    return make


def _check(response, expected) -> str | None:
    """None if the response is the expected answer, else a description of the mismatch."""
    status = response.status_code
    if expected == REFUSED_ANY:
        if status in REFUSALS or _is_login_redirect(response):
            return None
        return f"expected a refusal, got {status}"
    if expected == LOGIN:
        return None if _is_login_redirect(response) else f"expected a login redirect, got {status}"
    if status != expected:
        return f"expected {expected}, got {status}"
    return None


def _is_login_redirect(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith(reverse("login"))


def _refused(expected) -> bool:
    return expected in (REFUSED_ANY, LOGIN) or expected in REFUSALS


# --- the tests -----------------------------------------------------------------------------


def test_every_page_is_in_the_table():
    routes = _page_routes()
    unnamed = sorted(r.route for name, r in routes.items() if name is None)
    assert not unnamed, f"URL patterns without a name cannot be checked: {unnamed}"
    unknown = sorted(set(routes) - set(PAGES))
    assert not unknown, (
        f"pages missing from the access table in {__file__}: {unknown}; add the expected "
        "answer for every persona"
    )
    gone = sorted(set(PAGES) - set(routes))
    assert not gone, f"the access table lists pages that no longer exist: {gone}"


def test_every_api_operation_is_in_the_table():
    operations = _api_operations()
    unknown = sorted(set(operations) - set(API))
    assert not unknown, (
        f"API operations missing from the access table in {__file__}: {unknown}; add the "
        "expected answer for every persona"
    )
    gone = sorted(set(API) - set(operations))
    assert not gone, f"the access table lists API operations that no longer exist: {gone}"


def test_every_api_url_is_an_operation_or_listed_as_skipped():
    """The API's URL patterns are checked through its schema; none may hide outside it."""
    paths = {path for _method, path in _api_operations().values()}
    for r in _routes():
        if not r.route.startswith("api/"):
            continue
        path = "/" + r.route
        for param in r.params:
            path = path.replace(f"<{param}>", f"{{{param}}}")
        assert path in paths, f"API URL {r.route} ({r.name}) is neither an operation nor skipped"


def test_the_skipped_patterns_are_the_listed_ones():
    """Skips are explicit: every skipped name still exists (no stale or silent skips)."""
    names = {r.name for r in _walk(get_resolver().url_patterns)}
    assert set(SKIPPED_NAMES) <= names


@pytest.mark.parametrize("url_name", sorted(PAGES))
def test_each_page_answers_each_persona_as_the_table_says(url_name, world, as_persona):
    entry = PAGES[url_name]
    route = _page_routes().get(url_name)
    assert route is not None, f"{url_name} is not a URL pattern"
    own = entry["params"](world) if "params" in entry else {}
    kwargs = {}
    for param in route.params:
        assert param in own or param in PATH_PARAMS, (
            f"add a value for path parameter {param!r} to PATH_PARAMS"
        )
        kwargs[param] = own[param] if param in own else PATH_PARAMS[param](world)
    url = reverse(url_name, kwargs=kwargs)
    problems = []
    for persona in PERSONAS:
        before = _everything()
        response = as_persona(persona).get(url)
        if problem := _check(response, entry["GET"][persona]):
            problems.append(f"GET {url} as {persona}: {problem}")
        if changed := _diff(before, _everything()):
            problems.append(f"GET {url} as {persona} changed {changed}")

        expected = entry["POST"][persona]
        data = entry["data"](world) if "data" in entry else {}
        before = _everything()
        response = as_persona(persona).post(url, data)
        if problem := _check(response, expected):
            problems.append(f"POST {url} as {persona}: {problem}")
        if _refused(expected) and (changed := _diff(before, _everything())):
            problems.append(f"refused POST {url} as {persona} changed {changed}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("operation", sorted(API))
def test_each_api_operation_answers_each_persona_as_the_table_says(operation, world, as_persona):
    operations = _api_operations()
    assert operation in operations, f"{operation} is not an API operation"
    method, template = operations[operation]
    entry = API[operation]
    own = entry["params"](world) if "params" in entry else {}
    path = template
    for param in re.findall(r"\{(\w+)\}", template):
        assert param in own or param in PATH_PARAMS, (
            f"add a value for path parameter {param!r} to PATH_PARAMS"
        )
        value = own[param] if param in own else PATH_PARAMS[param](world)
        path = path.replace(f"{{{param}}}", str(value))
    problems = []
    for persona in PERSONAS:
        expected = entry["expect"][persona]
        before = _everything()
        if method == "GET":
            response = as_persona(persona).get(path)
        elif "multipart" in entry:
            assert method == "POST", "multipart bodies are posted"
            response = as_persona(persona).post(path, entry["multipart"](world))
        else:
            body = entry["body"](world) if "body" in entry else {}
            response = as_persona(persona).generic(
                method, path, json.dumps(body), content_type="application/json"
            )
        if problem := _check(response, expected):
            problems.append(f"{method} {path} as {persona}: {problem} {response.content[:200]!r}")
        changed = _diff(before, _everything())
        if changed and (method == "GET" or _refused(expected)):
            problems.append(f"{method} {path} as {persona} (refused or read) changed {changed}")
    assert not problems, "\n".join(problems)
