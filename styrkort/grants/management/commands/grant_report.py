"""styrkort grant-report --grant ID --format pdf|xlsx --output FILE --user USER"""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError
from django.http import Http404

from styrkort.grants import exports, queries
from styrkort.grants.management.commands._common import acting_user


class Command(BaseCommand):
    help = "Write a grant's report to the state (latest version, or --version) as PDF or XLSX."

    def add_arguments(self, parser):
        parser.add_argument("--grant", required=True, type=int, help="Grant id")
        parser.add_argument("--format", required=True, choices=["pdf", "xlsx"])
        parser.add_argument("--output", required=True, help="File to write")
        parser.add_argument("--user", required=True, help="Acting user (who may read reports)")
        parser.add_argument("--report-version", type=int, help="Report version (default: latest)")

    def handle(self, *args, **opts):
        user = acting_user(opts["user"])
        output = Path(opts["output"])
        if not output.parent.is_dir():
            raise CommandError(f"no such directory: {output.parent}")
        try:
            grant = queries.get_grant(user, opts["grant"])
            report = queries.get_report(user, grant, opts["report_version"])
        except PermissionDenied:
            raise CommandError(f"the user {user.username!r} may not read grant reports")
        except Http404:
            raise CommandError(
                f"no grant {opts['grant']} with a report"
                + (f" version {opts['report_version']}" if opts["report_version"] else "")
                + f" in {user.username}'s region"
            )
        render = (
            exports.render_report_pdf if opts["format"] == "pdf" else exports.render_report_xlsx
        )
        content = render(report)
        output.write_bytes(content)
        state = "submitted" if report.is_submitted else "draft"
        self.stdout.write(
            f"Wrote {output} ({opts['format'].upper()}, {len(content)} bytes): {grant.name}, "
            f"report v{report.version} ({state})"
        )
