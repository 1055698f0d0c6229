"""State grants: the register, the national split, the region's allocation plans, the units'
accounts of use and the region's report to the state.

Money is whole kronor (``BigIntegerField``) throughout: the state pays, the region allocates and
the units account in whole kronor, and whole kronor add up exactly (see allocation.py).

States that matter for audit (a grant's status, a plan's decision, an account's submission and
approval) are kept as rows that are only ever added (GrantTransition, PlanDecision,
AccountEvent), never as a status field that is overwritten; the current state is the latest
row. Decided plans and submitted reports are frozen: the services refuse to change them and the
models' ``save``/``delete`` refuse as a second line of defence.
"""

from __future__ import annotations

import os
from datetime import date

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from styrkort.organisation.models import CareUnit, Region, _month_validator


class FrozenError(Exception):
    """A write to a decided plan, a submitted report or an append-only state row."""


# ------------------------------------------------------------------------------------------
# The grant register


class GrantState(models.TextChoices):
    DECIDED = "decided", _("Decided")
    ALLOCATED = "allocated", _("Allocated")
    PAID = "paid", _("Paid out")
    ACCOUNTING = "accounting", _("Accounting")
    REPORTED = "reported", _("Reported")
    CLOSED = "closed", _("Closed")


# The order a grant moves through; services allow only the next step (see services.transition).
STATE_ORDER = [s.value for s in GrantState]

# The cost categories of seed 003 (names are data, editable per grant; codes are stable).
DEFAULT_CATEGORIES = (
    ("psykolog", "Psykolog"),
    ("ptp_psykolog", "PTP-psykolog"),
    ("vardsamordnare", "Vårdsamordnare"),
    ("rehabkoordinator", "Rehabkoordinator"),
    ("kurator", "Kurator"),
    ("utbildning", "Utbildning"),
    ("ovrigt", "Övrigt"),
)


class Grant(models.Model):
    """A state grant to the region: the decision (Dnr, authority, purpose, conditions), the
    region's total in whole kronor, the years it covers and its three deadlines.

    The status is not a field: it is the latest :class:`GrantTransition`.
    """

    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="grants")
    name = models.CharField(_("name"), max_length=200)
    dnr = models.CharField(_("decision reference (Dnr)"), max_length=60, blank=True)
    authority = models.CharField(_("granting authority"), max_length=200, default="Socialstyrelsen")
    purpose = models.TextField(_("purpose"), blank=True)
    conditions = models.TextField(_("conditions"), blank=True)
    total = models.BigIntegerField(_("region's amount (kr)"), validators=[MinValueValidator(0)])
    national_total = models.BigIntegerField(
        _("national total (kr)"), null=True, blank=True, validators=[MinValueValidator(0)]
    )
    national_distribution = models.ForeignKey(
        "NationalDistribution",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="grants",
        verbose_name=_("national distribution"),
    )
    first_year = models.PositiveSmallIntegerField(_("first year"))
    last_year = models.PositiveSmallIntegerField(_("last year"))
    accounts_deadline = models.DateField(_("deadline for the units' accounts"))
    report_deadline = models.DateField(_("deadline for the region's report"))
    repayment_deadline = models.DateField(_("deadline for repayment"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-first_year", "name"]
        verbose_name = _("state grant")
        verbose_name_plural = _("state grants")

    def __str__(self) -> str:
        return self.name

    @property
    def years(self) -> str:
        if self.first_year == self.last_year:
            return str(self.first_year)
        return f"{self.first_year}–{self.last_year}"

    @property
    def latest_transition(self) -> GrantTransition | None:
        return self.transitions.order_by("-id").first()

    @property
    def state(self) -> str | None:
        latest = self.latest_transition
        return latest.state if latest else None

    def get_state_display(self) -> str:
        state = self.state
        return str(GrantState(state).label) if state else "–"

    def allowed_categories(self):
        return self.categories.filter(allowed=True)

    def decided_plan(self) -> AllocationPlan | None:
        """The plan in force: the latest plan whose latest decision is 'decided'."""
        for plan in self.plans.order_by("-version"):
            if plan.status == PlanStatus.DECIDED:
                return plan
        return None


class GrantCategory(models.Model):
    """A cost category the units may account under (psykolog, kurator, utbildning, …).

    Editable per grant; a category is never deleted once used, only disallowed.
    """

    grant = models.ForeignKey(Grant, on_delete=models.CASCADE, related_name="categories")
    code = models.SlugField(_("code"), max_length=40)
    name = models.CharField(_("name"), max_length=100)
    allowed = models.BooleanField(_("allowed"), default=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["grant", "position", "id"]
        verbose_name = _("cost category")
        verbose_name_plural = _("cost categories")
        constraints = [
            models.UniqueConstraint(fields=["grant", "code"], name="grant_category_unique_code")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def region_id(self) -> int:
        return self.grant.region_id


class GrantTransition(models.Model):
    """One step in a grant's life (decided → allocated → paid → accounting → reported →
    closed): who, when, why. Rows are only added; the latest is the current state."""

    grant = models.ForeignKey(Grant, on_delete=models.CASCADE, related_name="transitions")
    state = models.CharField(_("state"), max_length=12, choices=GrantState.choices)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    at = models.DateTimeField(_("time"), default=timezone.now)
    note = models.TextField(_("note"), blank=True)

    class Meta:
        ordering = ["grant", "id"]
        verbose_name = _("grant state change")
        verbose_name_plural = _("grant state changes")

    def __str__(self) -> str:
        return f"{self.grant}: {self.get_state_display()}"

    def save(self, *args, **kwargs) -> None:
        if self.pk:
            raise FrozenError("a state change is never altered")
        super().save(*args, **kwargs)

    @property
    def region_id(self) -> int:
        return self.grant.region_id


# ------------------------------------------------------------------------------------------
# National distribution


class NationalDistribution(models.Model):
    """A stored split of a national total over the 21 regions by an imported SCB population
    file at a reference date, so the region can check its share and plan ahead.

    ``rows`` is a list of ``{lan_code, lan_name, population, amount, share_percent}`` (share as
    a string with 4 decimals); ``populations`` is the file as read (lan code -> population).
    """

    region = models.ForeignKey(Region, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(_("name"), max_length=200)
    total = models.BigIntegerField(_("national total (kr)"), validators=[MinValueValidator(0)])
    reference_date = models.DateField(_("population reference date"))
    source_name = models.CharField(_("source file"), max_length=255, blank=True)
    populations = models.JSONField(default=dict)
    rows = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("national distribution")
        verbose_name_plural = _("national distributions")

    def __str__(self) -> str:
        return f"{self.name} ({self.reference_date:%Y-%m-%d})"

    def row_for(self, lan_code: str) -> dict | None:
        return next((r for r in self.rows if r["lan_code"] == lan_code), None)

    @property
    def national_population(self) -> int:
        return sum(r["population"] for r in self.rows)


# ------------------------------------------------------------------------------------------
# Allocation plans


class PlanStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    DECIDED = "decided", _("Decided")
    SUPERSEDED = "superseded", _("Superseded")


class Weighting(models.TextChoices):
    NONE = "none", _("Listed patients only")
    NEED_INDEX = "need_index", _("Listed patients × need index (e.g. CNI)")
    AGE_SEX = "age_sex", _("Listed patients weighted by age and sex")


class AllocationPlan(models.Model):
    """One version of the region's plan: central efforts first, the rest to every active unit
    by listed patients at the reference month (optionally weighted), with an optional floor
    and cap per unit. A draft until a :class:`PlanDecision` decides it; then frozen.

    ``need_index`` maps HSA-id -> index (string decimal); ``age_sex_weights`` maps
    ``"K:0-4"`` -> weight (string decimal; a missing cell weighs 1).
    """

    grant = models.ForeignKey(Grant, on_delete=models.CASCADE, related_name="plans")
    version = models.PositiveIntegerField(_("version"))
    reference_month = models.CharField(
        _("reference month"), max_length=7, validators=[_month_validator]
    )
    weighting = models.CharField(
        _("weighting"), max_length=12, choices=Weighting.choices, default=Weighting.NONE
    )
    need_index = models.JSONField(default=dict, blank=True)
    age_sex_weights = models.JSONField(default=dict, blank=True)
    floor = models.BigIntegerField(
        _("floor per unit (kr)"), null=True, blank=True, validators=[MinValueValidator(0)]
    )
    cap = models.BigIntegerField(
        _("cap per unit (kr)"), null=True, blank=True, validators=[MinValueValidator(0)]
    )
    region_total = models.BigIntegerField(_("amount to allocate (kr)"))
    note = models.TextField(_("note"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["grant", "-version"]
        verbose_name = _("allocation plan")
        verbose_name_plural = _("allocation plans")
        constraints = [
            models.UniqueConstraint(fields=["grant", "version"], name="plan_unique_version")
        ]

    def __str__(self) -> str:
        return f"{self.grant} v{self.version}"

    def save(self, *args, **kwargs) -> None:
        if self.is_frozen:
            raise FrozenError("a decided plan cannot be changed; make a new version")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if self.is_frozen:
            raise FrozenError("a decided plan cannot be deleted")
        return super().delete(*args, **kwargs)

    @property
    def region_id(self) -> int:
        return self.grant.region_id

    @property
    def latest_decision(self) -> PlanDecision | None:
        return self.decisions.order_by("-id").first() if self.pk else None

    @property
    def status(self) -> str:
        latest = self.latest_decision
        return latest.kind if latest else PlanStatus.DRAFT

    def get_status_display(self) -> str:
        return str(PlanStatus(self.status).label)

    @property
    def is_frozen(self) -> bool:
        return bool(self.pk) and self.decisions.exists()

    @property
    def decision(self) -> PlanDecision | None:
        return self.decisions.filter(kind=PlanStatus.DECIDED).first() if self.pk else None


class PlanDecision(models.Model):
    """A decision about a plan version: 'decided' (by whom, when, under which Dnr) or
    'superseded' (by which newer version, and why). Rows are only added."""

    plan = models.ForeignKey(AllocationPlan, on_delete=models.CASCADE, related_name="decisions")
    kind = models.CharField(
        _("decision"),
        max_length=12,
        choices=[
            (PlanStatus.DECIDED, PlanStatus.DECIDED.label),
            (PlanStatus.SUPERSEDED, PlanStatus.SUPERSEDED.label),
        ],
    )
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    at = models.DateTimeField(_("time"), default=timezone.now)
    dnr = models.CharField(_("decision reference (Dnr)"), max_length=60, blank=True)
    reason = models.TextField(_("reason"), blank=True)
    superseded_by = models.ForeignKey(
        AllocationPlan, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["plan", "id"]
        verbose_name = _("plan decision")
        verbose_name_plural = _("plan decisions")

    def __str__(self) -> str:
        return f"{self.plan}: {self.get_kind_display()}"

    def save(self, *args, **kwargs) -> None:
        if self.pk:
            raise FrozenError("a decision is never altered")
        super().save(*args, **kwargs)

    @property
    def region_id(self) -> int:
        return self.plan.grant.region_id


class _PlanPart(models.Model):
    """A row belonging to a plan: writable only while the plan is a draft."""

    # Declared by every concrete part's ``plan`` foreign key (unset on a new row).
    plan_id: int | None

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:
        self._check_draft()
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        self._check_draft()
        return super().delete(*args, **kwargs)

    def _check_draft(self) -> None:
        if self.plan_id and PlanDecision.objects.filter(plan_id=self.plan_id).exists():
            raise FrozenError("a decided plan cannot be changed; make a new version")


class PlanCentralItem(_PlanPart):
    """A central effort taken off the top (e.g. training offered to every care centre): a fixed
    amount in kronor or a share of the region's total; ``amount`` is the computed kronor."""

    plan = models.ForeignKey(AllocationPlan, on_delete=models.CASCADE, related_name="central_items")
    position = models.PositiveSmallIntegerField(default=0)
    name = models.CharField(_("name"), max_length=200)
    category = models.ForeignKey(
        GrantCategory, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    fixed_amount = models.BigIntegerField(
        _("fixed amount (kr)"), null=True, blank=True, validators=[MinValueValidator(0)]
    )
    share = models.DecimalField(
        _("share of the total"), max_digits=9, decimal_places=6, null=True, blank=True
    )
    amount = models.BigIntegerField(_("amount (kr)"), default=0)

    class Meta:
        ordering = ["plan", "position", "id"]
        verbose_name = _("central effort")
        verbose_name_plural = _("central efforts")
        constraints = [
            models.UniqueConstraint(fields=["plan", "name"], name="plan_central_unique_name")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def region_id(self) -> int:
        return self.plan.grant.region_id


class PlanUnitAmount(_PlanPart):
    """A unit's amount in a plan: its listed patients at the reference month, the weight used
    (listed × need), the amount in whole kronor and kronor per listed patient."""

    plan = models.ForeignKey(AllocationPlan, on_delete=models.CASCADE, related_name="unit_amounts")
    unit = models.ForeignKey(CareUnit, on_delete=models.PROTECT, related_name="+")
    listed = models.PositiveIntegerField(_("listed"))
    weight = models.DecimalField(_("weight"), max_digits=24, decimal_places=6)
    amount = models.BigIntegerField(_("amount (kr)"))
    per_listed = models.DecimalField(
        _("kr per listed patient"), max_digits=14, decimal_places=2, null=True, blank=True
    )

    class Meta:
        ordering = ["plan", "unit__name"]
        verbose_name = _("unit amount")
        verbose_name_plural = _("unit amounts")
        constraints = [models.UniqueConstraint(fields=["plan", "unit"], name="plan_unit_unique")]

    def __str__(self) -> str:
        return f"{self.unit}: {self.amount}"

    @property
    def region_id(self) -> int:
        return self.unit.region_id


# ------------------------------------------------------------------------------------------
# Units' accounts of use


class AccountStatus(models.TextChoices):
    NOT_STARTED = "not_started", _("Not started")
    DRAFT = "saved", _("Draft saved")
    SUBMITTED = "submitted", _("Submitted")
    RETURNED = "returned", _("Returned")
    APPROVED = "approved", _("Approved")


EDITABLE_ACCOUNT_STATUSES = (
    AccountStatus.NOT_STARTED,
    AccountStatus.DRAFT,
    AccountStatus.RETURNED,
)


class UnitAccount(models.Model):
    """A unit's account of what it did with its share of a grant: one line per cost category
    plus attachments. Its status is the latest :class:`AccountEvent`."""

    grant = models.ForeignKey(Grant, on_delete=models.CASCADE, related_name="accounts")
    unit = models.ForeignKey(CareUnit, on_delete=models.PROTECT, related_name="grant_accounts")
    comment = models.TextField(_("comment"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["grant", "unit__name"]
        verbose_name = _("account of use")
        verbose_name_plural = _("accounts of use")
        constraints = [
            models.UniqueConstraint(fields=["grant", "unit"], name="account_unique_unit")
        ]

    def __str__(self) -> str:
        return f"{self.grant} – {self.unit}"

    @property
    def region_id(self) -> int:
        return self.unit.region_id

    @property
    def latest_event(self) -> AccountEvent | None:
        return self.events.order_by("-id").first() if self.pk else None

    @property
    def status(self) -> str:
        latest = self.latest_event
        return latest.kind if latest else AccountStatus.NOT_STARTED

    def get_status_display(self) -> str:
        return str(AccountStatus(self.status).label)

    @property
    def editable(self) -> bool:
        return self.status in EDITABLE_ACCOUNT_STATUSES

    @property
    def submission(self) -> AccountEvent | None:
        """The latest submission (its ``late`` flag says whether it came after the deadline)."""
        return self.events.filter(kind=AccountStatus.SUBMITTED).order_by("-id").first()

    @property
    def used_total(self) -> int:
        return sum(line.used for line in self.lines.all())


class AccountLine(models.Model):
    """What a unit used under one category: kronor, persons and FTE added, measures taken."""

    account = models.ForeignKey(UnitAccount, on_delete=models.CASCADE, related_name="lines")
    category = models.ForeignKey(GrantCategory, on_delete=models.PROTECT, related_name="+")
    used = models.BigIntegerField(_("used (kr)"), default=0, validators=[MinValueValidator(0)])
    persons = models.PositiveIntegerField(_("persons"), default=0)
    fte_added = models.DecimalField(
        _("full-time equivalents added"),
        max_digits=7,
        decimal_places=2,
        default=0,
        validators=[MinValueValidator(0)],
    )
    measures = models.TextField(_("measures taken"), blank=True)

    class Meta:
        ordering = ["account", "category__position", "category_id"]
        verbose_name = _("account line")
        verbose_name_plural = _("account lines")
        constraints = [
            models.UniqueConstraint(fields=["account", "category"], name="account_line_unique")
        ]

    def __str__(self) -> str:
        return f"{self.account}: {self.category} {self.used}"

    @property
    def region_id(self) -> int:
        return self.account.unit.region_id


def _attachment_path(instance: AccountAttachment, filename: str) -> str:
    # Under MEDIA_ROOT, one folder per grant and unit; the file is served only through a view
    # that checks access, never from a public media URL.
    base = os.path.basename(filename)[-100:]
    return f"grants/{instance.account.grant_id}/{instance.account.unit_id}/{base}"


class AccountAttachment(models.Model):
    """A document attached to an account (invoice summary, staffing decision, …)."""

    account = models.ForeignKey(UnitAccount, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to=_attachment_path, max_length=255)
    name = models.CharField(_("file name"), max_length=255)
    size = models.PositiveIntegerField(_("size (bytes)"))
    content_type = models.CharField(max_length=100)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["account", "uploaded_at", "id"]
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")

    def __str__(self) -> str:
        return self.name

    @property
    def region_id(self) -> int:
        return self.account.unit.region_id


class AccountEvent(models.Model):
    """A step in an account's review: draft saved, submitted (late if after the deadline),
    returned with a comment, approved. Rows are only added; a submission keeps a snapshot of
    the figures as submitted."""

    account = models.ForeignKey(UnitAccount, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(
        _("event"),
        max_length=12,
        choices=[c for c in AccountStatus.choices if c[0] != AccountStatus.NOT_STARTED],
    )
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    at = models.DateTimeField(_("time"), default=timezone.now)
    comment = models.TextField(_("comment"), blank=True)
    late = models.BooleanField(_("late"), default=False)
    snapshot = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["account", "id"]
        verbose_name = _("account event")
        verbose_name_plural = _("account events")

    def __str__(self) -> str:
        return f"{self.account}: {self.get_kind_display()}"

    def save(self, *args, **kwargs) -> None:
        if self.pk:
            raise FrozenError("an account event is never altered")
        super().save(*args, **kwargs)

    @property
    def region_id(self) -> int:
        return self.account.unit.region_id


class CentralSpending(models.Model):
    """What the region itself spent on a central effort of the plan in force (e.g. training),
    entered by the analyst for the repayment and the report."""

    grant = models.ForeignKey(Grant, on_delete=models.CASCADE, related_name="central_spending")
    name = models.CharField(_("central effort"), max_length=200)
    category = models.ForeignKey(
        GrantCategory, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    used = models.BigIntegerField(_("used (kr)"), default=0, validators=[MinValueValidator(0)])
    persons = models.PositiveIntegerField(_("persons"), default=0)
    fte_added = models.DecimalField(
        _("full-time equivalents added"), max_digits=7, decimal_places=2, default=0
    )
    measures = models.TextField(_("measures taken"), blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["grant", "name"]
        verbose_name = _("central spending")
        verbose_name_plural = _("central spending")
        constraints = [
            models.UniqueConstraint(fields=["grant", "name"], name="central_spending_unique")
        ]

    def __str__(self) -> str:
        return f"{self.grant}: {self.name}"

    @property
    def region_id(self) -> int:
        return self.grant.region_id


# ------------------------------------------------------------------------------------------
# Report to the state


class StateReport(models.Model):
    """One version of the region's report to the granting authority. While a draft its figures
    are computed live; at submission every figure and text is frozen in ``snapshot`` and the
    row can no longer change. A correction is a new version."""

    grant = models.ForeignKey(Grant, on_delete=models.CASCADE, related_name="reports")
    version = models.PositiveIntegerField(_("version"))
    measures_summary = models.TextField(_("measures taken (summary)"), blank=True)
    gender_equality = models.TextField(_("gender-equality perspective"), blank=True)
    childrens_rights = models.TextField(_("children's-rights perspective"), blank=True)
    disability = models.TextField(_("disability perspective"), blank=True)
    other_comments = models.TextField(_("other comments"), blank=True)
    correction_reason = models.TextField(_("reason for the correction"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    submitted_at = models.DateTimeField(_("submitted"), null=True, blank=True)
    snapshot = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["grant", "-version"]
        verbose_name = _("report to the state")
        verbose_name_plural = _("reports to the state")
        constraints = [
            models.UniqueConstraint(fields=["grant", "version"], name="report_unique_version")
        ]

    def __str__(self) -> str:
        return f"{self.grant} – {_('report')} v{self.version}"

    def save(self, *args, **kwargs) -> None:
        if self.pk and StateReport.objects.filter(pk=self.pk, submitted_at__isnull=False).exists():
            raise FrozenError("a submitted report cannot be changed; make a new version")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if self.is_submitted:
            raise FrozenError("a submitted report cannot be deleted")
        return super().delete(*args, **kwargs)

    @property
    def region_id(self) -> int:
        return self.grant.region_id

    @property
    def is_submitted(self) -> bool:
        return self.submitted_at is not None


def deadline_passed(deadline: date, at) -> bool:
    """Whether a moment is after a deadline day (the whole deadline day counts as in time)."""
    return timezone.localdate(at) > deadline
