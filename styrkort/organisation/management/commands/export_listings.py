from styrkort.organisation.management.commands._tabular_commands import ExportCommand


class Command(ExportCommand):
    help = "Export the region's listings as CSV or XLSX, in the columns import-listings reads."
    kind = "listings"
