"""Forms of the grant pages. They only collect and lay out input: amounts are kept as text and
parsed by the services (so "14 446 372" and "14446372" both work and a float never appears),
and every rule is checked there, once, for the pages, the API and the command line alike."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django import forms
from django.utils.translation import gettext_lazy as _

from styrkort.grants.models import GrantState, Weighting

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
AMOUNT_ATTRS = {"inputmode": "numeric", "autocomplete": "off"}


def _amount(label, required: bool = True, help_text: StrOrPromise = "") -> forms.CharField:
    return forms.CharField(
        label=label,
        required=required,
        max_length=30,
        help_text=help_text,
        widget=forms.TextInput(attrs=AMOUNT_ATTRS),
    )


class GrantForm(forms.Form):
    """The register fields of a grant (create and edit)."""

    name = forms.CharField(label=_("Name"), max_length=200)
    dnr = forms.CharField(label=_("Decision reference (Dnr)"), max_length=60, required=False)
    authority = forms.CharField(label=_("Granting authority"), max_length=200)
    purpose = forms.CharField(
        label=_("Purpose"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    conditions = forms.CharField(
        label=_("Conditions"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            "E.g. that the gender-equality, children's-rights and disability "
            "perspectives are to be considered."
        ),
    )
    total = _amount(_("The region's amount (kr)"), help_text=_("Whole kronor, e.g. 14 446 372."))
    national_total = _amount(_("National total (kr)"), required=False)
    national_distribution = forms.ChoiceField(
        label=_("National distribution"), required=False, choices=()
    )
    first_year = forms.IntegerField(label=_("First year"), min_value=2000, max_value=2100)
    last_year = forms.IntegerField(
        label=_("Last year"), min_value=2000, max_value=2100, required=False
    )
    accounts_deadline = forms.DateField(
        label=_("Deadline for the units' accounts"), widget=DATE_INPUT
    )
    report_deadline = forms.DateField(
        label=_("Deadline for the region's report"), widget=DATE_INPUT
    )
    repayment_deadline = forms.DateField(label=_("Deadline for repayment"), widget=DATE_INPUT)

    def __init__(self, *args, distributions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["national_distribution"].choices = [("", "–")] + [
            (str(d.pk), str(d)) for d in distributions
        ]
        self.distributions = {str(d.pk): d for d in distributions}

    def values(self) -> dict:
        data = dict(self.cleaned_data)
        data["national_distribution"] = self.distributions.get(data["national_distribution"])
        if data.get("last_year") is None:
            data["last_year"] = data["first_year"]
        return data


class TransitionForm(forms.Form):
    state = forms.ChoiceField(label=_("Next state"), choices=GrantState.choices)
    note = forms.CharField(label=_("Note"), required=False, max_length=500)


class DistributionForm(forms.Form):
    """Upload of SCB's population per county, or the text of a previewed upload."""

    name = forms.CharField(label=_("Name"), max_length=200, initial=_("State grant"))
    total = _amount(_("National total (kr)"), help_text=_("Whole kronor, e.g. 496 000 000."))
    reference_date = forms.DateField(label=_("Population reference date"), widget=DATE_INPUT)
    population_file = forms.FileField(
        label=_("Population file (CSV)"),
        required=False,
        help_text=_("SCB's population per county: columns lan_code and population."),
    )
    population_text = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean(self):
        data = super().clean()
        upload = data.get("population_file")
        if upload:
            if upload.size > 1024 * 1024:
                raise forms.ValidationError(_("The population file is larger than 1 MB."))
            data["population"] = upload.read()
        elif data.get("population_text"):
            data["population"] = data["population_text"].encode("utf-8")
        else:
            self.add_error("population_file", _("Choose the population file."))
        return data


class PlanForm(forms.Form):
    """A plan version's parameters; central efforts are rows central-N-* (see views)."""

    reference_month = forms.CharField(
        label=_("Reference month"),
        max_length=7,
        help_text=_("Listed patients in this month decide the units' shares, e.g. 2025-10."),
    )
    weighting = forms.ChoiceField(
        label=_("Weighting"), choices=Weighting.choices, widget=forms.RadioSelect
    )
    need_index = forms.CharField(
        label=_("Need index per unit"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("One line per unit: HSA-id;index (e.g. a CNI of 1,08)."),
    )
    age_sex_weights = forms.CharField(
        label=_("Age and sex weights"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_(
            "One line per cell: sex;age band;weight, e.g. K;20-24;1,3. Cells not given weigh 1."
        ),
    )
    floor = _amount(_("Floor per unit (kr)"), required=False)
    cap = _amount(_("Cap per unit (kr)"), required=False)
    note = forms.CharField(
        label=_("Note"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


class DecideForm(forms.Form):
    dnr = forms.CharField(label=_("Decision reference (Dnr)"), max_length=60)
    reason = forms.CharField(
        label=_("Reason for superseding the plan in force"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class ReviewForm(forms.Form):
    comment = forms.CharField(
        label=_("Comment to the unit"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Required when returning the account."),
    )


class ReportTextsForm(forms.Form):
    measures_summary = forms.CharField(
        label=_("Measures taken (summary)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    gender_equality = forms.CharField(
        label=_("Gender-equality perspective"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("In particular the sub-goal of gender-equal health."),
    )
    childrens_rights = forms.CharField(
        label=_("Children's-rights perspective"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    disability = forms.CharField(
        label=_("Disability perspective"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    other_comments = forms.CharField(
        label=_("Other comments"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
