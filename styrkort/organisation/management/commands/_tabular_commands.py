"""The shared parts of the import-… and export-… commands (one module per command name)."""

from __future__ import annotations

import sys
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser, no_translations

from styrkort.organisation import exports, imports
from styrkort.organisation.models import Region

NOUNS = {"units": "units", "listings": "listing rows", "staffing": "staffing rows"}


def _user(username: str):
    try:
        return get_user_model().objects.get(username=username)
    except get_user_model().DoesNotExist:
        raise CommandError(f"there is no user {username!r}")


class ImportCommand(BaseCommand):
    kind = ""

    def add_arguments(self, parser: CommandParser) -> None:
        columns = ", ".join(imports.column_names(self.kind))
        parser.epilog = (
            f"Columns: {columns}. CSV (UTF-8, ; or ,) or XLSX with one sheet. All rows are "
            "written or none; refused rows are listed with row number, column, value and rule "
            "and the exit status is 1."
        )
        parser.add_argument("file", type=Path, help="the CSV or XLSX file")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="check and report what would change; write nothing",
        )
        parser.add_argument(
            "--user", required=True, metavar="USERNAME",
            help="the user the import is made as (its rights apply; history names it)",
        )  # fmt: skip
        parser.add_argument("--quiet", action="store_true", help="no progress on stderr")

    @no_translations
    def handle(self, *args, file: Path, dry_run: bool, user: str, quiet: bool, **options) -> None:
        actor = _user(user)
        if not file.is_file():
            raise CommandError(f"no such file: {file}")
        progress = None if quiet else self._progress_printer()
        try:
            result = imports.apply_import(actor, self.kind, file, dry_run, progress=progress)
        except PermissionDenied:
            raise CommandError(f"{user} may not import {self.kind}")
        finally:
            if progress is not None:
                self.stderr.write("")
        plan = result.plan
        if not plan.ok:
            for error in plan.errors:
                self.stderr.write(str(error))
            if plan.error_count > len(plan.errors):
                self.stderr.write(f"… and {plan.error_count - len(plan.errors)} more")
            raise CommandError(result.summary())
        if result.applied:
            self.stderr.write(f"History batch {result.batch} ({result.history_records} records)")
        self.stdout.write(result.summary())

    def _progress_printer(self):
        stderr = self.stderr
        label = f"Reading {NOUNS[self.kind]}"
        last = [-1]

        def show(done: int, total: int) -> None:
            percent = int(100 * done / total) if total else 0
            if percent != last[0]:
                last[0] = percent
                stderr.write(f"\r{label}: {percent:3d} %", ending="")
                stderr.flush()

        return show


class ExportCommand(BaseCommand):
    kind = ""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--format", choices=exports.FORMATS, default=None,
            help="csv (UTF-8 with BOM, ;) or xlsx; by default from the output file's name",
        )  # fmt: skip
        parser.add_argument(
            "--output", required=True, metavar="FILE", help="file to write; - for standard output"
        )
        parser.add_argument(
            "--user", metavar="USERNAME", help="export the region of this user (its rights apply)"
        )
        parser.add_argument(
            "--region",
            metavar="LAN_CODE",
            help="export this region (by county code) without a user",
        )

    def _region(self, user: str | None, lan_code: str | None) -> Region:
        if user:
            try:
                region = exports.export_region(_user(user))
            except PermissionDenied:
                raise CommandError(f"{user} has no role in any region")
            if lan_code and region.lan_code != lan_code:
                raise CommandError(f"{user} belongs to {region.name}, not region {lan_code}")
            return region
        if lan_code:
            found = Region.objects.filter(lan_code=lan_code).first()
            if found is None:
                raise CommandError(f"no region with county code {lan_code}")
            return found
        regions = list(Region.objects.all()[:2])
        if len(regions) != 1:
            raise CommandError("give --user or --region: there is not exactly one region")
        return regions[0]

    @no_translations
    def handle(self, *args, output: str, user: str | None, region: str | None, **options) -> None:
        fmt = options["format"] or ("xlsx" if output.lower().endswith(".xlsx") else "csv")
        target = self._region(user, region)
        if output == "-":
            if fmt != "csv":
                raise CommandError("only CSV can be written to standard output")
            count = exports.write_csv(self.kind, target, sys.stdout.buffer)
            sys.stdout.flush()
            self.stderr.write(f"Wrote {count} {NOUNS[self.kind]} of {target.name}")
            return
        path = Path(output)
        if not path.parent.is_dir():
            raise CommandError(f"no such directory: {path.parent}")
        try:
            if fmt == "csv":
                with path.open("wb") as out:
                    count = exports.write_csv(self.kind, target, out)
            else:
                count = exports.write_xlsx(self.kind, target, path)
        except exports.ExportTooLarge as exc:
            raise CommandError(str(exc))
        self.stdout.write(f"Wrote {count} {NOUNS[self.kind]} of {target.name} to {path}")
