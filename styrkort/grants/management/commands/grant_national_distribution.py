"""styrkort grant-national-distribution --total 496000000 --population FILE"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError
from django.utils import translation

from styrkort.grants import services
from styrkort.grants.allocation import AllocationError
from styrkort.grants.management.commands._common import acting_user, refusal
from styrkort.grants.population import PopulationFileError
from styrkort.money import format_kronor


class Command(BaseCommand):
    help = (
        "Split a national grant over the 21 regions by SCB's population per county (whole "
        "kronor, largest remainder); --save stores it for the user's region."
    )

    def add_arguments(self, parser):
        parser.add_argument("--total", required=True, help="National total in whole kronor")
        parser.add_argument("--population", required=True, help="SCB population CSV per county")
        parser.add_argument("--lan", default="18", help="County code to summarise (default 18)")
        parser.add_argument("--quiet", action="store_true", help="Only the one-line summary")
        parser.add_argument("--save", action="store_true", help="Store the distribution")
        parser.add_argument("--user", help="Acting user (an analyst) for --save")
        parser.add_argument("--name", default="", help="Name of the stored distribution")
        parser.add_argument("--reference-date", help="Population reference date (YYYY-MM-DD)")

    def handle(self, *args, **opts):
        translation.activate("en")
        path = Path(opts["population"])
        if not path.is_file():
            raise CommandError(f"no such population file: {path}")
        try:
            preview = services.preview_national_distribution(opts["total"], path)
            if opts["save"]:
                if not opts["user"] or not opts["reference_date"]:
                    raise CommandError("--save needs --user and --reference-date")
                services.save_national_distribution(
                    acting_user(opts["user"]),
                    name=opts["name"] or f"National distribution {opts['reference_date']}",
                    total=opts["total"],
                    population_file=path,
                    reference_date=opts["reference_date"],
                    source_name=path.name,
                )
        except (services.GrantError, AllocationError, PopulationFileError) as exc:
            raise refusal(exc)
        except PermissionDenied:
            raise CommandError(f"the user {opts['user']!r} may not manage grants")
        if not opts["quiet"]:
            for r in preview.rows:
                self.stdout.write(
                    f"{r['lan_code']}  {r['lan_name']:<24} {r['population']:>10}  "
                    f"{Decimal(r['share_percent']):>8} %  {format_kronor(r['amount']):>18}"
                )
        own = preview.row_for(opts["lan"])
        summary = (
            f"{len(preview.rows)} regions, {format_kronor(preview.total)} over "
            f"{preview.national_population} inhabitants"
        )
        if own:
            summary += (
                f"; {own['lan_name']} {format_kronor(own['amount'])} ({own['share_percent']} %)"
            )
        if opts["save"]:
            summary += "; saved"
        self.stdout.write(summary.replace("\xa0", " "))
