from styrkort.organisation.management.commands._tabular_commands import ExportCommand


class Command(ExportCommand):
    help = "Export the region's staffing as CSV or XLSX, in the columns import-staffing reads."
    kind = "staffing"
