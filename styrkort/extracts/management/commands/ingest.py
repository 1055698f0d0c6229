"""``styrkort ingest``: validate and store an extract from the command line."""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser

from styrkort.accounts import access
from styrkort.extracts import services
from styrkort.extracts.schema import TABLE_NAMES
from styrkort.extracts.validation import ExtractProcessingError
from styrkort.indicators import services as indicator_services

SHOWN_ERRORS = 20
SUFFIXES = (".csv", ".parquet")


class Command(BaseCommand):
    help = (
        "Validate an extract (one CSV or Parquet file per table) for a declared period and store "
        "it as new versions, all or nothing; then recompute the indicators that depend on it.\n\n"
        "  styrkort ingest --period 2025-03 --user analys contacts=c.csv diagnoses=d.csv\n"
        "  styrkort ingest --period 2025Q1 --user analys --dir extract/   (<table>.csv|parquet)\n\n"
        "Progress goes to stderr, a one-line summary to stdout. A refused extract stores "
        "nothing, prints its first errors (identifiers masked) and exits with status 1."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "files", nargs="*", metavar="TABLE=FILE", help=f"tables: {', '.join(TABLE_NAMES)}"
        )
        parser.add_argument("--period", required=True, help="2025, 2025Q1 or 2025-03")
        parser.add_argument("--user", required=True, help="the analyst who uploads (username)")
        parser.add_argument(
            "--dir", type=Path, help="a directory holding <table>.csv or <table>.parquet files"
        )
        parser.add_argument(
            "--no-compute",
            action="store_true",
            help="do not recompute the indicators afterwards",
        )

    def handle(self, *args, **options) -> None:
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"no user {options['user']!r}")
        if not access.can(user, "handle_extracts"):
            raise CommandError(f"{user.username} may not upload extracts (analysts only)")
        region = access.get_region_for_user(user)
        files = self._files(options["files"], options["dir"])
        verbosity = options["verbosity"]

        def progress(done: int, total: int, message: str) -> None:
            if verbosity >= 1 and message:
                self.stderr.write(f"[{done}/{total}] {message}")

        try:
            result = services.ingest(
                user, region, options["period"], files, progress=progress, recompute=False
            )
        except services.UploadError as exc:
            raise CommandError(str(exc))
        except PermissionDenied:
            raise CommandError(f"{user.username} may not upload extracts")
        except ExtractProcessingError as exc:
            raise CommandError(f"the extract could not be checked: {exc}")
        if not result.ok:
            upload = result.upload
            for e in upload.errors[:SHOWN_ERRORS]:
                where = ", ".join(
                    part
                    for part in (
                        e["table"],
                        f"row {e['row']}" if e["row"] is not None else "",
                        e["column"] or "",
                    )
                    if part
                )
                value = f" {e['value']!r}" if e["value"] else ""
                self.stderr.write(f"  {where}:{value} [{e['rule']}] {e['message']}")
            if upload.error_count > SHOWN_ERRORS:
                self.stderr.write(f"  … and {upload.error_count - SHOWN_ERRORS} more")
            if upload.report_full_path:
                self.stderr.write(f"Error report: {upload.report_full_path}")
            raise CommandError(result.summary())
        self.stdout.write(result.summary())
        if not options["no_compute"]:
            self._compute(user, region, result)

    def _compute(self, user, region, result: services.IngestResult) -> None:
        tables = [v.table for v in result.versions]
        try:
            run = indicator_services.compute(
                region, [result.upload.period], tables=tables, actor=user
            )
        except PermissionDenied:
            self.stderr.write("The indicators were not recomputed: the user may not compute.")
            return
        except Exception as exc:  # noqa: BLE001 - the extract is stored; say how to redo it
            self.stderr.write(
                f"The extract is stored, but recomputing the indicators failed "
                f"({type(exc).__name__}); run `styrkort compute --period {result.upload.period}`."
            )
            return
        self.stdout.write(indicator_services.summarise(run))

    def _files(self, pairs: list[str], folder: Path | None) -> dict[str, Path]:
        files: dict[str, Path] = {}
        if folder is not None:
            if not folder.is_dir():
                raise CommandError(f"{folder} is not a directory")
            for table in TABLE_NAMES:
                found = [
                    folder / f"{table}{s}" for s in SUFFIXES if (folder / f"{table}{s}").is_file()
                ]
                if len(found) > 1:
                    raise CommandError(f"{folder} holds both {table}.csv and {table}.parquet")
                if found:
                    files[table] = found[0]
        for pair in pairs:
            table, sep, path = pair.partition("=")
            if not sep or not path:
                raise CommandError(f"give files as TABLE=FILE, not {pair!r}")
            if table not in TABLE_NAMES:
                raise CommandError(
                    f"unknown table {table!r}; the tables are {', '.join(TABLE_NAMES)}"
                )
            if table in files:
                raise CommandError(f"{table} is given twice")
            files[table] = Path(path)
        if not files:
            raise CommandError("no files: give TABLE=FILE arguments or --dir")
        missing = [str(p) for p in files.values() if not p.is_file()]
        if missing:
            raise CommandError(f"not a file: {', '.join(missing)}")
        return files
