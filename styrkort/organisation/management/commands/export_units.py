from styrkort.organisation.management.commands._tabular_commands import ExportCommand


class Command(ExportCommand):
    help = "Export the region's units as CSV or XLSX, in the columns import-units reads."
    kind = "units"
