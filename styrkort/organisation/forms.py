"""Forms of the organisation pages: the unit list's filters and the two edit forms."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from styrkort.organisation.models import CareUnit, Profession, Provider
from styrkort.periods import Period, PeriodError

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class UnitFilterForm(forms.Form):
    """Search and filters of the unit list (a GET form; invalid values are ignored)."""

    q = forms.CharField(label=_("Search"), required=False, max_length=100)
    provider = forms.ChoiceField(label=_("Provider"), required=False)
    kind = forms.ChoiceField(label=_("Kind"), required=False)
    municipality = forms.ChoiceField(label=_("Municipality"), required=False)
    active = forms.ChoiceField(
        label=_("Active"),
        required=False,
        choices=[("all", _("All")), ("yes", _("Yes")), ("no", _("No"))],
    )

    def __init__(self, data, *, providers: QuerySet[Provider], municipalities: list[str]):
        super().__init__(data)
        choices: dict[str, list[tuple[str, Any]]] = {
            "provider": [("", _("All"))] + [(str(p.pk), p.name) for p in providers],
            "kind": [("", _("All")), *Provider.Kind.choices],
            "municipality": [("", _("All"))] + [(m, m) for m in municipalities],
        }
        for name, options in choices.items():
            cast(forms.ChoiceField, self.fields[name]).choices = options
        self.fields["q"].widget.attrs.update(
            {"type": "search", "placeholder": _("Name, HSA-id or municipality")}
        )

    def filters(self) -> dict:
        """The valid filters as keyword arguments for `queries.filter_units`."""
        # An invalid field (e.g. a stale provider id) is dropped; the valid ones still apply.
        self.is_valid()
        cleaned = self.cleaned_data
        return {
            "q": cleaned.get("q") or "",
            "provider": cleaned.get("provider") or None,
            "kind": cleaned.get("kind") or "",
            "municipality": cleaned.get("municipality") or "",
            "active": cleaned.get("active") or "all",
        }


class UnitEditForm(forms.Form):
    """A unit's registry fields; saved through services.update_unit."""

    name = forms.CharField(label=_("Name"), max_length=200)
    municipality = forms.CharField(label=_("Municipality"), max_length=100)
    provider = forms.ModelChoiceField(label=_("Provider"), queryset=Provider.objects.none())
    opened = forms.DateField(label=_("Opened"), required=False, widget=DATE_INPUT)
    closed = forms.DateField(
        label=_("Closed"),
        required=False,
        widget=DATE_INPUT,
        help_text=_("Leave empty while the unit is open."),
    )

    def __init__(self, *args, unit: CareUnit, providers: QuerySet[Provider], **kwargs):
        kwargs.setdefault(
            "initial",
            {
                "name": unit.name,
                "municipality": unit.municipality,
                "provider": unit.provider_id,
                "opened": unit.opened,
                "closed": unit.closed,
            },
        )
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["provider"]).queryset = providers

    def clean(self):
        data = super().clean()
        opened, closed = data.get("opened"), data.get("closed")
        if opened and closed and closed <= opened:
            self.add_error("closed", _("A unit must close after it opened."))
        return data


class StaffingForm(forms.Form):
    """Full-time equivalents per profession for one period; empty fields are left unchanged."""

    period = forms.CharField(
        label=_("Period"),
        max_length=7,
        help_text=_("A year (2025), a quarter (2025Q1) or a month (2025-03)."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for code, label in Profession.choices:
            self.fields[f"fte_{code}"] = forms.DecimalField(
                label=label,
                required=False,
                min_value=Decimal("0"),
                max_digits=7,
                decimal_places=2,
                localize=True,
                widget=forms.TextInput(attrs={"inputmode": "decimal", "size": 8}),
            )

    def clean_period(self) -> str:
        try:
            return str(Period.parse(self.cleaned_data["period"]))
        except PeriodError:
            raise forms.ValidationError(
                _("Write a year (2025), a quarter (2025Q1) or a month (2025-03).")
            )

    def profession_fields(self):
        return [self[f"fte_{code}"] for code in Profession.values]

    def values(self) -> dict[str, Decimal]:
        """{profession: fte} for the fields that were filled in, to two decimals (as stored, so
        the history shows 1.50 rather than 1.5)."""
        return {
            code: self.cleaned_data[f"fte_{code}"].quantize(Decimal("0.01"))
            for code in Profession.values
            if self.cleaned_data.get(f"fte_{code}") is not None
        }
