"""``styrkort compute``: compute the indicators of a region and store the results."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser

from styrkort.indicators import services
from styrkort.indicators.catalogue import CatalogueError, load_catalogue
from styrkort.organisation.models import Region
from styrkort.periods import Period, PeriodError


class Command(BaseCommand):
    help = (
        "Compute every indicator for every unit and the region (or only what depends on the "
        "given periods' data) and store the results."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--period",
            action="append",
            dest="periods",
            metavar="P",
            help="the data of period P (2025, 2025Q1, 2025-03) changed: recompute only the "
            "results that depend on it (repeatable; default: everything)",
        )
        parser.add_argument(
            "--table",
            action="append",
            dest="tables",
            metavar="T",
            help="with --period: only this extract table changed (repeatable)",
        )
        parser.add_argument(
            "--stale",
            action="store_true",
            help="recompute what the extract versions in force changed since the last run",
        )
        parser.add_argument(
            "--region", help="county code (län) of the region; default: the only region"
        )
        parser.add_argument(
            "--user", help="username to record as the one who ran it (needs compute rights)"
        )

    def handle(self, *args, **options) -> None:
        try:
            load_catalogue()
        except CatalogueError as exc:
            raise CommandError(str(exc))
        periods = options["periods"]
        try:
            periods = [str(Period.parse(p)) for p in periods] if periods else None
        except PeriodError as exc:
            raise CommandError(str(exc))
        if options["tables"] and not periods:
            raise CommandError("--table needs --period")
        if options["stale"] and periods:
            raise CommandError("give --stale or --period, not both")
        actor = None
        if options["user"]:
            actor = get_user_model().objects.filter(username=options["user"]).first()
            if actor is None:
                raise CommandError(f"no user {options['user']!r}")
        region = self._region(options["region"], actor)
        verbosity = options["verbosity"]

        def progress(done: int, total: int, message: str) -> None:
            if verbosity >= 1 and message:
                self.stderr.write(f"[{done + 1}/{total}] {message}")

        try:
            run = services.compute(
                region,
                periods,
                tables=options["tables"],
                stale=options["stale"],
                actor=actor,
                progress=progress,
            )
        except PermissionDenied:
            raise CommandError(f"{actor} may not compute indicators for {region}")
        except services.RegionBusy as exc:
            raise CommandError(str(exc))
        self.stdout.write(services.summarise(run))

    def _region(self, lan: str | None, actor) -> Region:
        if lan:
            region = Region.objects.filter(lan_code=lan).first()
            if region is None:
                raise CommandError(f"no region with county code {lan!r}")
            return region
        if actor is not None:
            from styrkort.accounts import access

            region = access.region_of(actor)
            if region is not None:
                return region
        regions = list(Region.objects.all()[:2])
        if len(regions) != 1:
            raise CommandError("give --region (the county code) when there is not exactly one")
        return regions[0]
