from styrkort.organisation.management.commands._tabular_commands import ImportCommand


class Command(ImportCommand):
    help = "Import units from a CSV or XLSX file (a dry run first with --dry-run)."
    kind = "units"
