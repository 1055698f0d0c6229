"""Pages of the state-grant cycle: register, national distribution, plans, accounts, repayment
and the report to the state.

Objects arrive through :mod:`styrkort.grants.queries` (scoped by the access rules) and every
write goes through :mod:`styrkort.grants.services`; a refusal from a service is shown on the
page and nothing has changed. GET never writes.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from styrkort.accounts import access
from styrkort.accounts.models import Membership, Role
from styrkort.grants import exports, queries, services
from styrkort.grants.allocation import AllocationError
from styrkort.grants.forms import (
    DecideForm,
    DistributionForm,
    GrantForm,
    PlanForm,
    ReportTextsForm,
    ReviewForm,
    TransitionForm,
)
from styrkort.grants.models import (
    AccountStatus,
    GrantState,
    PlanStatus,
    StateReport,
    Weighting,
    deadline_passed,
)
from styrkort.grants.population import PopulationFileError
from styrkort.history.services import history_of

REFUSALS = (services.GrantError, AllocationError, PopulationFileError)
CENTRAL_ROWS_EXTRA = 2  # empty rows offered for new central efforts


def _show_errors(request, exc: Exception) -> list[str]:
    errors = services.describe_error(exc)
    for line in errors:
        messages.error(request, line)
    return errors


def _can_manage(user, grant=None) -> bool:
    return access.can(user, "manage_grants")


# ------------------------------------------------------------------------------------------
# Register


@login_required
@require_GET
def grant_list(request):
    """The region's grants with their state and amounts."""
    access.require(request.user, "view")
    grants = queries.visible_grants(request.user).prefetch_related("transitions")
    return render(
        request,
        "grants/grant_list.html",
        {"grants": grants, "can_manage": _can_manage(request.user)},
    )


def _distributions(user):
    return list(queries.visible_distributions(user)) if access.can(user, "manage_grants") else []


@login_required
@require_http_methods(["GET", "POST"])
def grant_create(request):
    """Register a grant (analyst)."""
    access.require(request.user, "manage_grants")
    distributions = _distributions(request.user)
    form = GrantForm(
        request.POST or None,
        distributions=distributions,
        initial={"authority": "Socialstyrelsen"},
    )
    if request.method == "POST" and form.is_valid():
        try:
            grant = services.create_grant(request.user, **form.values())
        except REFUSALS as exc:
            for line in services.describe_error(exc):
                form.add_error(None, line)
        else:
            messages.success(request, _("The grant was registered."))
            return redirect("grants:detail", grant_id=grant.pk)
    return render(request, "grants/grant_form.html", {"form": form, "grant": None})


@login_required
@require_http_methods(["GET", "POST"])
def grant_edit(request, grant_id: int):
    """Change a grant's register fields and its cost categories (analyst)."""
    access.require(request.user, "manage_grants")
    grant = queries.get_grant(request.user, grant_id)
    distributions = _distributions(request.user)
    initial = {
        "name": grant.name,
        "dnr": grant.dnr,
        "authority": grant.authority,
        "purpose": grant.purpose,
        "conditions": grant.conditions,
        "total": grant.total,
        "national_total": grant.national_total or "",
        "national_distribution": str(grant.national_distribution_id or ""),
        "first_year": grant.first_year,
        "last_year": grant.last_year,
        "accounts_deadline": grant.accounts_deadline,
        "report_deadline": grant.report_deadline,
        "repayment_deadline": grant.repayment_deadline,
    }
    form = GrantForm(request.POST or None, distributions=distributions, initial=initial)
    categories = list(grant.categories.all())
    category_rows = _category_rows(request.POST if request.method == "POST" else None, categories)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                services.update_grant(request.user, grant, **form.values())
                if "cat-0-code" in request.POST:  # the categories were part of the form
                    services.set_categories(request.user, grant, category_rows)
        except REFUSALS as exc:
            for line in services.describe_error(exc):
                form.add_error(None, line)
        else:
            messages.success(request, _("The grant was saved."))
            return redirect("grants:detail", grant_id=grant.pk)
    return render(
        request,
        "grants/grant_form.html",
        {"form": form, "grant": grant, "category_rows": category_rows},
    )


def _category_rows(post, categories) -> list[dict]:
    """Category rows from the form (cat-N-code/name/allowed) or from the grant."""
    if post is None:
        rows = [
            {"code": c.code, "name": c.name, "allowed": c.allowed, "existing": True}
            for c in categories
        ]
        return rows + [{"code": "", "name": "", "allowed": True, "existing": False}] * 2
    rows = []
    existing = {c.code for c in categories}
    index = 0
    while f"cat-{index}-code" in post:
        code = post.get(f"cat-{index}-code", "").strip()
        name = post.get(f"cat-{index}-name", "").strip()
        if code or name:
            rows.append(
                {
                    "code": code,
                    "name": name,
                    "existing": code in existing,
                    "allowed": post.get(f"cat-{index}-allowed") == "on",
                }
            )
        index += 1
    return rows


@login_required
@require_GET
def grant_detail(request, grant_id: int):
    """A grant: its facts, state timeline, plans, and the way to each step of the cycle."""
    grant = queries.get_grant(request.user, grant_id)
    plans = queries.visible_plans(request.user, grant).order_by("-version")
    in_force = grant.decided_plan()
    own_units = []
    if access.role_of(request.user) == Role.UNIT_MANAGER:
        for unit in queries.account_units(request.user, grant).order_by("name"):
            account = queries.account_of(grant, unit)
            own_units.append(
                {
                    "unit": unit,
                    "allocated": services.allocated_to(grant, unit),
                    "status": account.get_status_display()
                    if account
                    else AccountStatus.NOT_STARTED.label,
                }
            )
    return render(
        request,
        "grants/grant_detail.html",
        {
            "grant": grant,
            "transitions": grant.transitions.select_related("by"),
            "plans": plans,
            "in_force": in_force,
            "plan_mismatch": in_force is not None and in_force.region_total != grant.total,
            "categories": grant.categories.all(),
            "can_manage": _can_manage(request.user),
            "can_review": access.can(request.user, "review_grants"),
            "can_report": access.can(request.user, "view_grant_report"),
            "transition_form": TransitionForm(
                initial={"state": (services.next_states(grant) or [""])[0]}
            ),
            "next_states": [(s, GrantState(s).label) for s in services.next_states(grant)],
            "own_units": own_units,
            "changes": history_of(grant)[:20] if access.can(request.user, "review_grants") else [],
        },
    )


@login_required
@require_POST
def grant_transition(request, grant_id: int):
    access.require(request.user, "manage_grants")
    grant = queries.get_grant(request.user, grant_id)
    form = TransitionForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose the next state."))
    else:
        try:
            services.transition(
                request.user, grant, form.cleaned_data["state"], form.cleaned_data["note"]
            )
        except REFUSALS as exc:
            _show_errors(request, exc)
        else:
            messages.success(request, _("The grant's state was changed."))
    return redirect("grants:detail", grant_id=grant.pk)


# ------------------------------------------------------------------------------------------
# National distribution


@login_required
@require_http_methods(["GET", "POST"])
def national(request):
    """Stored national distributions, and the upload of SCB's population file with a preview
    (shares in percent, the region's own row and the check against Örebro's 2.9 %)."""
    access.require(request.user, "view")
    can_manage = _can_manage(request.user)
    form = DistributionForm(request.POST or None, request.FILES or None)
    preview = None
    errors: list[str] = []
    if request.method == "POST":
        access.require(request.user, "manage_grants")
        if form.is_valid():
            data = form.cleaned_data
            try:
                if request.POST.get("action") == "save":
                    upload = data.get("population_file")
                    dist = services.save_national_distribution(
                        request.user,
                        name=data["name"],
                        total=data["total"],
                        population_file=data["population"],
                        reference_date=data["reference_date"],
                        source_name=upload.name if upload else request.POST.get("source_name", ""),
                    )
                    messages.success(request, _("The national distribution was saved."))
                    return redirect("grants:national_detail", distribution_id=dist.pk)
                preview = services.preview_national_distribution(data["total"], data["population"])
                form = DistributionForm(
                    initial={
                        "name": data["name"],
                        "total": data["total"],
                        "reference_date": data["reference_date"],
                        "population_text": data["population"].decode("utf-8"),
                    }
                )
            except REFUSALS as exc:
                errors = services.describe_error(exc)
    region = access.region_of(request.user)
    return render(
        request,
        "grants/national.html",
        {
            "form": form,
            "preview": preview,
            "rows": _distribution_rows(preview.rows, region) if preview else None,
            "checks": _distribution_checks(preview, region) if preview else None,
            "errors": errors,
            "distributions": queries.visible_distributions(request.user),
            "can_manage": can_manage,
            "source_name": (
                request.FILES["population_file"].name
                if "population_file" in request.FILES
                else request.POST.get("source_name", "")
            ),
        },
    )


def _distribution_rows(rows: list[dict], region) -> list[dict]:
    return [
        {
            **r,
            "share": Decimal(r["share_percent"]),
            "own": region is not None and r["lan_code"] == region.lan_code,
        }
        for r in rows
    ]


def _distribution_checks(dist, region) -> list[dict]:
    """The seed's check (Region Örebro län: 2.9 %, about 14.5 MSEK) and the user's region."""
    checks = []
    for code, label in (("18", "Örebro län"),) + (
        ((region.lan_code, region.name),) if region and region.lan_code != "18" else ()
    ):
        row = dist.row_for(code)
        if row:
            checks.append({"label": label, "row": row, "share": Decimal(row["share_percent"])})
    return checks


@login_required
@require_GET
def national_detail(request, distribution_id: int):
    access.require(request.user, "view")
    dist = queries.get_distribution(request.user, distribution_id)
    region = access.region_of(request.user)
    return render(
        request,
        "grants/national_detail.html",
        {
            "dist": dist,
            "rows": _distribution_rows(dist.rows, region),
            "checks": _distribution_checks(dist, region),
            "total": sum(r["amount"] for r in dist.rows),
        },
    )


# ------------------------------------------------------------------------------------------
# Plans


def _central_rows(post, spec: services.PlanInput | None) -> list[dict]:
    if post is not None:
        rows = []
        index = 0
        while f"central-{index}-name" in post:
            rows.append(
                {
                    key: post.get(f"central-{index}-{key}", "").strip()
                    for key in ("name", "amount", "percent", "category")
                }
            )
            index += 1
        return rows
    rows = []
    for item in spec.central_items if spec else []:
        rows.append(
            {
                "name": item.name,
                "amount": str(item.fixed_amount) if item.fixed_amount is not None else "",
                "percent": _percent_text(item.share),
                "category": item.category or "",
            }
        )
    return rows + [{"name": "", "amount": "", "percent": "", "category": ""}] * CENTRAL_ROWS_EXTRA


def _percent_text(share: Decimal | None) -> str:
    if share is None:
        return ""
    text = f"{(share * 100).normalize():f}"
    return text.replace(".", ",")


def _plan_initial(spec: services.PlanInput | None) -> dict:
    if spec is None:
        return {"weighting": Weighting.NONE}
    return {
        "reference_month": spec.reference_month,
        "weighting": spec.weighting,
        "need_index": "\n".join(f"{k};{v}" for k, v in spec.need_index.items()),
        "age_sex_weights": "\n".join(
            f"{k.replace(':', ';')};{v}" for k, v in spec.age_sex_weights.items()
        ),
        "floor": spec.floor if spec.floor is not None else "",
        "cap": spec.cap if spec.cap is not None else "",
        "note": spec.note,
    }


def _plan_form_page(request, grant, plan, spec):
    post = request.POST if request.method == "POST" else None
    form = PlanForm(post, initial=_plan_initial(spec))
    central = _central_rows(post, spec)
    errors: list[str] = []
    if post is not None and form.is_valid():
        values = dict(form.cleaned_data, central_items=central)
        try:
            parsed = services.plan_input_from_values(values)
            if plan is None:
                plan = services.create_plan(request.user, grant, parsed)
                messages.success(request, _("Draft version %(v)s was saved.") % {"v": plan.version})
            else:
                services.update_plan(request.user, plan, parsed)
                messages.success(request, _("The draft was saved."))
        except REFUSALS as exc:
            errors = services.describe_error(exc)
        else:
            return redirect("grants:plan_detail", grant_id=grant.pk, plan_id=plan.pk)
    return render(
        request,
        "grants/plan_form.html",
        {
            "grant": grant,
            "plan": plan,
            "form": form,
            "central": central,
            "categories": grant.categories.all(),
            "errors": errors,
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def plan_new(request, grant_id: int):
    """A new draft version, prefilled from the plan in force (or the latest version)."""
    access.require(request.user, "manage_grants")
    grant = queries.get_grant(request.user, grant_id)
    base = grant.decided_plan() or grant.plans.order_by("-version").first()
    spec = services.plan_input_of(base) if base else None
    if spec is None:
        spec = services.PlanInput(
            reference_month="",
            central_items=[
                services.CentralInput(
                    "Utbildningsinsatser", share=Decimal("0.15"), category="utbildning"
                )
            ],
        )
    return _plan_form_page(request, grant, None, spec)


@login_required
@require_http_methods(["GET", "POST"])
def plan_edit(request, grant_id: int, plan_id: int):
    access.require(request.user, "manage_grants")
    grant = queries.get_grant(request.user, grant_id)
    plan = queries.get_plan(request.user, grant, plan_id)
    if plan.status != PlanStatus.DRAFT:
        messages.error(request, _("A decided plan cannot be changed; make a new version."))
        return redirect("grants:plan_detail", grant_id=grant.pk, plan_id=plan.pk)
    return _plan_form_page(request, grant, plan, services.plan_input_of(plan))


@login_required
@require_GET
def plan_detail(request, grant_id: int, plan_id: int):
    """The preview: central efforts, each unit's amount and amount per listed patient, and the
    difference against the previous version; the decision form for a draft."""
    grant = queries.get_grant(request.user, grant_id)
    plan = queries.get_plan(request.user, grant, plan_id)
    preview = services.preview_plan(plan)
    in_force = grant.decided_plan()
    replaced_by = None
    if plan.status == PlanStatus.SUPERSEDED:
        decision = plan.latest_decision
        assert decision is not None  # only a decided plan can be superseded
        replaced_by = decision.superseded_by
    return render(
        request,
        "grants/plan_detail.html",
        {
            "grant": grant,
            "plan": plan,
            "preview": preview,
            "decision": plan.decision,
            "latest_decision": plan.latest_decision,
            "replaced_by": replaced_by,
            "in_force": in_force,
            "needs_reason": in_force is not None and in_force.pk != plan.pk,
            "can_manage": _can_manage(request.user),
            "decide_form": DecideForm(),
            "weighted": plan.weighting != Weighting.NONE,
            "changes": history_of(plan)[:20] if access.can(request.user, "review_grants") else [],
        },
    )


@login_required
@require_POST
def plan_decide(request, grant_id: int, plan_id: int):
    access.require(request.user, "manage_grants")
    grant = queries.get_grant(request.user, grant_id)
    plan = queries.get_plan(request.user, grant, plan_id)
    form = DecideForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("A decision needs its reference number (Dnr)."))
    else:
        try:
            services.decide_plan(request.user, plan, **form.cleaned_data)
        except REFUSALS as exc:
            _show_errors(request, exc)
        else:
            messages.success(request, _("Version %(v)s was decided.") % {"v": plan.version})
    return redirect("grants:plan_detail", grant_id=grant.pk, plan_id=plan.pk)


# ------------------------------------------------------------------------------------------
# Accounts


def _account_rows(user, grant) -> list[dict]:
    """One row per unit the user may see that has an amount in the plan in force."""
    repayment, facts = services.repayment_of(grant)
    visible = set(queries.account_units(user, grant).values_list("pk", flat=True))
    lines = {line.key: line for line in repayment.units}
    rows = []
    for unit_id, info in facts.items():
        if unit_id not in visible:
            continue
        account = info["account"]
        submission = account.submission if account else None
        used = account.used_total if account else 0
        line = lines.get(unit_id)
        rows.append(
            {
                "unit": info["unit"],
                "allocated": line.allocated if line else 0,
                "status": info["status"],
                "status_label": AccountStatus(info["status"]).label,
                "submitted_at": submission.at if submission else None,
                "late": bool(submission and submission.late),
                "used": used,
                "over_use": line is not None and used > line.allocated,
            }
        )
    return rows


@login_required
@require_GET
def accounts(request, grant_id: int):
    """Accounts of use: every unit for reviewers, own units for a unit manager."""
    grant = queries.get_grant(request.user, grant_id)
    if not queries.account_units(request.user, grant).exists():
        raise PermissionDenied("no accounts to see")
    rows = _account_rows(request.user, grant)
    waiting = [
        r for r in rows if r["status"] not in (AccountStatus.SUBMITTED, AccountStatus.APPROVED)
    ]
    status = request.GET.get("status", "")
    shown = [r for r in rows if r["status"] == status] if status in AccountStatus.values else rows
    return render(
        request,
        "grants/accounts.html",
        {
            "grant": grant,
            "rows": shown,
            "all_rows": rows,
            "waiting": waiting,
            "status": status,
            "statuses": AccountStatus.choices,
            "counts": {s: sum(1 for r in rows if r["status"] == s) for s in AccountStatus.values},
            "can_review": access.can(request.user, "review_grants"),
            "deadline_passed": deadline_passed(grant.accounts_deadline, timezone.now()),
        },
    )


def _reminder_rows(grant) -> list[dict]:
    _repayment, facts = services.repayment_of(grant)
    rows = []
    for info in facts.values():
        if info["status"] in (AccountStatus.SUBMITTED, AccountStatus.APPROVED):
            continue
        managers = (
            Membership.objects.filter(role=Role.UNIT_MANAGER, units=info["unit"])
            .select_related("user")
            .order_by("user__username")
        )
        rows.append(
            {
                "unit": info["unit"],
                "status": AccountStatus(info["status"]).label,
                "managers": [m.user for m in managers],
            }
        )
    return rows


@login_required
@require_GET
def accounts_reminder(request, grant_id: int):
    """Units that have not submitted, with their managers: a list to send a reminder to
    (as a page or, with ?format=csv, a file)."""
    access.require(request.user, "review_grants")
    grant = queries.get_grant(request.user, grant_id)
    rows = _reminder_rows(grant)
    if request.GET.get("format") == "csv":
        out = io.StringIO()
        writer = csv.writer(out, delimiter=";")
        writer.writerow(["hsa_id", "unit", "status", "manager", "name", "email"])
        for r in rows:
            for user in r["managers"] or [None]:
                writer.writerow(
                    [
                        r["unit"].hsa_id,
                        r["unit"].name,
                        r["status"],
                        user.username if user else "",
                        user.get_full_name() if user else "",
                        user.email if user else "",
                    ]
                )
        response = HttpResponse("\ufeff" + out.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="paminnelse-statsbidrag-{grant.pk}.csv"'
        )
        return response
    emails = sorted({u.email for r in rows for u in r["managers"] if u.email})
    return render(
        request,
        "grants/accounts_reminder.html",
        {"grant": grant, "rows": rows, "emails": emails},
    )


CATEGORY_FIELDS = ("used", "persons", "fte_added", "measures")


def _account_form_rows(grant, account, post) -> list[dict]:
    lines = {}
    if account is not None:
        lines = {line.category_id: line for line in account.lines.all()}
    rows = []
    for category in grant.categories.all():
        line = lines.get(category.pk)
        if not category.allowed and line is None:
            continue
        if post is not None:
            values = {f: post.get(f"{f}_{category.code}", "") for f in CATEGORY_FIELDS}
        elif line is not None:
            values = {
                "used": line.used,
                "persons": line.persons or "",
                "fte_added": str(line.fte_added).replace(".", ",") if line.fte_added else "",
                "measures": line.measures,
            }
        else:
            values = dict.fromkeys(CATEGORY_FIELDS, "")
        rows.append({"category": category, "values": values})
    return rows


@login_required
@require_http_methods(["GET", "POST"])
def account(request, grant_id: int, unit_id: int):
    """A unit's account: the form for its manager (drafts, submit), the review for the
    analyst, read-only for the auditor and admin."""
    grant = queries.get_grant(request.user, grant_id)
    unit = queries.get_account_unit(request.user, grant, unit_id)
    account_obj = queries.account_of(grant, unit)
    can_edit = access.grant_reporting_units(request.user).filter(pk=unit.pk).exists()
    errors: list[str] = []
    post = None
    if request.method == "POST":
        if not can_edit:
            raise PermissionDenied("not your unit")
        post = request.POST
        lines = {
            category.code: {f: post.get(f"{f}_{category.code}", "") for f in CATEGORY_FIELDS}
            for category in grant.categories.all()
            if any(f"{f}_{category.code}" in post for f in CATEGORY_FIELDS)
        }
        try:
            with transaction.atomic():
                saved = services.save_account(
                    request.user, grant, unit, lines=lines, comment=post.get("comment", "")
                )
                if post.get("action") == "submit":
                    event = services.submit_account(request.user, saved)
        except REFUSALS as exc:
            errors = services.describe_error(exc)
        else:
            if post.get("action") == "submit":
                if event.late:
                    messages.warning(
                        request,
                        _("The account was submitted after the deadline %(d)s and is marked late.")
                        % {"d": grant.accounts_deadline.isoformat()},
                    )
                else:
                    messages.success(request, _("The account was submitted."))
            else:
                messages.success(request, _("The draft was saved."))
            return redirect("grants:account", grant_id=grant.pk, unit_id=unit.pk)
    allocated = services.allocated_to(grant, unit)
    used = account_obj.used_total if account_obj else 0
    editable = can_edit and (account_obj is None or account_obj.editable) and allocated is not None
    return render(
        request,
        "grants/account.html",
        {
            "grant": grant,
            "unit": unit,
            "account": account_obj,
            "status": account_obj.get_status_display()
            if account_obj
            else AccountStatus.NOT_STARTED.label,
            "status_code": account_obj.status if account_obj else AccountStatus.NOT_STARTED,
            "events": account_obj.events.select_related("by") if account_obj else [],
            "attachments": account_obj.attachments.all() if account_obj else [],
            "rows": _account_form_rows(grant, account_obj, post),
            "comment": post.get("comment", "")
            if post
            else (account_obj.comment if account_obj else ""),
            "allocated": allocated,
            "used": used,
            "unused": (allocated - used) if allocated is not None else None,
            "over_use": allocated is not None and used > allocated,
            "over_use_amount": used - allocated if allocated is not None else 0,
            "editable": editable,
            "errors": errors,
            "deadline_passed": deadline_passed(grant.accounts_deadline, timezone.now()),
            "can_review": _can_manage(request.user)
            and account_obj is not None
            and account_obj.status in (AccountStatus.SUBMITTED, AccountStatus.APPROVED),
            "can_approve": account_obj is not None
            and account_obj.status == AccountStatus.SUBMITTED,
            "review_form": ReviewForm(),
            "max_mb": services.MAX_ATTACHMENT_BYTES // (1024 * 1024),
            "file_types": ", ".join(sorted(services.ATTACHMENT_TYPES)),
        },
    )


@login_required
@require_POST
def account_review(request, grant_id: int, unit_id: int):
    """Approve or return a submitted account (analyst)."""
    access.require(request.user, "manage_grants")
    grant = queries.get_grant(request.user, grant_id)
    unit = queries.get_account_unit(request.user, grant, unit_id)
    account_obj = queries.account_of(grant, unit)
    if account_obj is None:
        raise Http404("no account")
    comment = request.POST.get("comment", "")
    try:
        if request.POST.get("action") == "return":
            services.return_account(request.user, account_obj, comment)
            messages.success(request, _("The account was returned to the unit."))
        else:
            services.approve_account(request.user, account_obj, comment)
            messages.success(request, _("The account was approved."))
    except REFUSALS as exc:
        _show_errors(request, exc)
    return redirect("grants:account", grant_id=grant.pk, unit_id=unit.pk)


@login_required
@require_POST
def attachment_add(request, grant_id: int, unit_id: int):
    grant = queries.get_grant(request.user, grant_id)
    unit = queries.get_account_unit(request.user, grant, unit_id)
    if not access.grant_reporting_units(request.user).filter(pk=unit.pk).exists():
        raise PermissionDenied("not your unit")
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, _("Choose a file to attach."))
    else:
        try:
            services.add_attachment(request.user, grant, unit, upload)
        except REFUSALS as exc:
            _show_errors(request, exc)
        else:
            messages.success(request, _("The file was attached."))
    return redirect("grants:account", grant_id=grant.pk, unit_id=unit.pk)


@login_required
@require_GET
def attachment(request, grant_id: int, unit_id: int, attachment_id: int):
    """Download an attachment (only through this view, with the account's access rules)."""
    grant = queries.get_grant(request.user, grant_id)
    unit = queries.get_account_unit(request.user, grant, unit_id)
    found = queries.get_attachment(request.user, grant, unit, attachment_id)
    try:
        handle = found.file.open("rb")
    except FileNotFoundError:
        raise Http404("file missing")
    return FileResponse(
        handle, as_attachment=True, filename=found.name, content_type=found.content_type
    )


@login_required
@require_POST
def attachment_delete(request, grant_id: int, unit_id: int, attachment_id: int):
    grant = queries.get_grant(request.user, grant_id)
    unit = queries.get_account_unit(request.user, grant, unit_id)
    if not access.grant_reporting_units(request.user).filter(pk=unit.pk).exists():
        raise PermissionDenied("not your unit")
    found = queries.get_attachment(request.user, grant, unit, attachment_id)
    try:
        services.remove_attachment(request.user, found)
    except REFUSALS as exc:
        _show_errors(request, exc)
    else:
        messages.success(request, _("The attachment was removed."))
    return redirect("grants:account", grant_id=grant.pk, unit_id=unit.pk)


# ------------------------------------------------------------------------------------------
# Repayment


@login_required
@require_http_methods(["GET", "POST"])
def repayment(request, grant_id: int):
    """Unused money per unit and central effort, over-use flagged (never netted), and what the
    region repays by the deadline; the analyst enters the central spending here."""
    access.require(request.user, "review_grants")
    grant = queries.get_grant(request.user, grant_id)
    plan = grant.decided_plan()
    errors: list[str] = []
    if request.method == "POST":
        access.require(request.user, "manage_grants")
        rows = []
        index = 0
        while f"central-{index}-name" in request.POST:
            rows.append(
                {
                    key: request.POST.get(f"central-{index}-{key}", "")
                    for key in ("name", "used", "persons", "fte_added", "measures")
                }
            )
            index += 1
        try:
            services.save_central_spending(request.user, grant, rows)
        except REFUSALS as exc:
            errors = services.describe_error(exc)
        else:
            messages.success(request, _("The central spending was saved."))
            return redirect("grants:repayment", grant_id=grant.pk)
    result, facts = services.repayment_of(grant)
    spending = {s.name: s for s in grant.central_spending.all()}
    central = []
    for line in result.central:
        spent = spending.get(line.key)
        central.append({"line": line, "spent": spent})
    units = [{"line": line, **facts.get(line.key, {})} for line in result.units]
    return render(
        request,
        "grants/repayment.html",
        {
            "grant": grant,
            "plan": plan,
            "result": result,
            "units": units,
            "central": central,
            "errors": errors,
            "can_manage": _can_manage(request.user),
        },
    )


# ------------------------------------------------------------------------------------------
# Report to the state


@login_required
@require_http_methods(["GET", "POST"])
def report(request, grant_id: int):
    """The latest report version (redirect), or the start of the first; POST starts the draft
    or a correcting version (analyst)."""
    access.require(request.user, "view_grant_report")
    grant = queries.get_grant(request.user, grant_id)
    if request.method == "POST":
        access.require(request.user, "manage_grants")
        draft = services.start_report(
            request.user, grant, correction_reason=request.POST.get("correction_reason", "")
        )
        return redirect("grants:report_version", grant_id=grant.pk, version=draft.version)
    latest = grant.reports.order_by("-version").first()
    if latest is not None:
        return redirect("grants:report_version", grant_id=grant.pk, version=latest.version)
    return render(
        request,
        "grants/report_start.html",
        {"grant": grant, "can_manage": _can_manage(request.user)},
    )


@login_required
@require_http_methods(["GET", "POST"])
def report_version(request, grant_id: int, version: int):
    """One version: figures (frozen once submitted), texts, what changed since the previous
    version; the analyst edits a draft's texts and submits it."""
    grant = queries.get_grant(request.user, grant_id)
    report_obj = queries.get_report(request.user, grant, version)
    errors: list[str] = []
    form = ReportTextsForm(
        request.POST or None,
        initial={f: getattr(report_obj, f) for f in services.REPORT_TEXT_FIELDS},
    )
    if request.method == "POST":
        access.require(request.user, "manage_grants")
        if form.is_valid():
            try:
                with transaction.atomic():
                    services.update_report(request.user, report_obj, **form.cleaned_data)
                    if request.POST.get("action") == "submit":
                        services.submit_report(request.user, report_obj)
            except REFUSALS as exc:
                errors = services.describe_error(exc)
            else:
                if request.POST.get("action") == "submit":
                    messages.success(request, _("The report was submitted and is now frozen."))
                else:
                    messages.success(request, _("The report was saved."))
                return redirect("grants:report_version", grant_id=grant.pk, version=version)
        report_obj.refresh_from_db()
    context = exports.report_context(report_obj)
    previous = (
        StateReport.objects.filter(
            grant=grant, version__lt=report_obj.version, submitted_at__isnull=False
        )
        .order_by("-version")
        .first()
    )
    changes = (
        services.diff_reports(services.report_data(previous), context["data"])
        if (previous)
        else None
    )
    context.update(
        {
            "form": form,
            "errors": errors,
            "previous": previous,
            "changes": changes,
            "versions": grant.reports.order_by("version"),
            "can_manage": _can_manage(request.user),
            "editable": _can_manage(request.user) and not report_obj.is_submitted,
        }
    )
    return render(request, "grants/report.html", context)


@login_required
@require_GET
def report_pdf(request, grant_id: int, version: int):
    grant = queries.get_grant(request.user, grant_id)
    report_obj = queries.get_report(request.user, grant, version)
    response = HttpResponse(exports.render_report_pdf(report_obj), content_type="application/pdf")
    response["Content-Disposition"] = (
        f'attachment; filename="{exports.report_filename(report_obj, "pdf")}"'
    )
    return response


@login_required
@require_GET
def report_xlsx(request, grant_id: int, version: int):
    grant = queries.get_grant(request.user, grant_id)
    report_obj = queries.get_report(request.user, grant, version)
    response = HttpResponse(
        exports.render_report_xlsx(report_obj),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    response["Content-Disposition"] = (
        f'attachment; filename="{exports.report_filename(report_obj, "xlsx")}"'
    )
    return response
