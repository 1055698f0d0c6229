"""``styrkort synth``: generate synthetic visit-level extracts for the demo region."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from styrkort.extracts.synth import FORMATS, MAX_SCALE, SynthError, generate, parse_months
from styrkort.organisation.demo import DEFAULT_SEED, MONTHS


class Command(BaseCommand):
    help = (
        "Generate synthetic extracts (all six tables, one directory per month) for the demo "
        "region.\n"
        "Deterministic from the seed; --scale 1 is the demo region's realistic volume (about "
        "300,000 listed, 1.5 million contacts in two years) and multiplies patients and events "
        "(about 6.6 for 10 million contacts). Writes OUT/YYYY-MM/<table>.<format> and "
        "OUT/manifest.json with the seed, scale and a SHA-256 per file."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", required=True, help="directory to write into")
        parser.add_argument(
            "--seed", type=int, default=DEFAULT_SEED,
            help=f"seed of the demo registry and the data (default {DEFAULT_SEED})",
        )  # fmt: skip
        parser.add_argument(
            "--scale", type=float, default=1.0,
            help=f"volume relative to the demo region (default 1; above 0, at most {MAX_SCALE:g})",
        )  # fmt: skip
        parser.add_argument(
            "--months", default=f"{MONTHS[0]}:{MONTHS[-1]}",
            help=f"FIRST:LAST months, or one month (default {MONTHS[0]}:{MONTHS[-1]})",
        )  # fmt: skip
        parser.add_argument(
            "--format", dest="fmt", choices=FORMATS, default="parquet",
            help="file format (default parquet)",
        )  # fmt: skip

    def handle(self, *args, out: str, seed: int, scale: float, months: str, fmt: str, **options):
        if seed < 0:
            raise CommandError("--seed must be zero or a positive whole number")
        try:
            result = generate(
                Path(out), seed=seed, scale=scale, months=parse_months(months), fmt=fmt
            )
        except SynthError as exc:
            raise CommandError(str(exc))
        self.stdout.write(f"Generated {result.summary()}")
