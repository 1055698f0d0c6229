"""Forms of the extract pages (the files themselves arrive through
:class:`styrkort.extracts.uploads.PrivateUploadHandler`)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from styrkort.extracts import services
from styrkort.extracts.models import ExtractVersion
from styrkort.extracts.schema import TABLE_NAMES, TABLES

ACCEPT = ".csv,.txt,.parquet,text/csv,application/vnd.apache.parquet,application/octet-stream"


class UploadForm(forms.Form):
    """A declared period and one file per table (any subset), CSV or Parquet."""

    period = forms.CharField(
        label=_("Period"),
        max_length=7,
        help_text=_(
            "The period the files cover: a year (2025), a quarter (2025Q1) or a month (2025-03)."
        ),
        widget=forms.TextInput(attrs={"size": 8, "autocomplete": "off"}),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name in TABLE_NAMES:
            # Empty files are let through so that the validator reports them like the API does.
            self.fields[name] = forms.FileField(
                label=name,
                required=False,
                allow_empty_file=True,
                help_text=TABLES[name].description,
                widget=forms.ClearableFileInput(attrs={"accept": ACCEPT}),
            )

    def table_fields(self):
        return [self[name] for name in TABLE_NAMES]

    def clean_period(self) -> str:
        try:
            return services.parse_period(self.cleaned_data["period"])
        except services.UploadError as exc:
            raise forms.ValidationError(str(exc))

    def clean(self):
        cleaned = super().clean()
        if not self.files_by_table():
            raise forms.ValidationError(_("Choose at least one file."))
        return cleaned

    def files_by_table(self) -> dict:
        return {
            name: self.cleaned_data[name] for name in TABLE_NAMES if self.cleaned_data.get(name)
        }


class VersionFilterForm(forms.Form):
    """Filters of the version list."""

    period = forms.CharField(label=_("Period"), required=False, max_length=7)
    table = forms.ChoiceField(
        label=_("Table"),
        required=False,
        choices=[("", _("All tables"))] + [(t, t) for t in TABLE_NAMES],
    )
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[("", _("All"))] + list(ExtractVersion.Status.choices),
    )

    def filters(self) -> dict:
        if not self.is_valid():
            return {}
        period = self.cleaned_data.get("period") or None
        if period:
            try:
                period = services.parse_period(period)
            except services.UploadError:
                period = None
        return {
            "period": period,
            "table": self.cleaned_data.get("table") or None,
            "status": self.cleaned_data.get("status") or None,
        }
