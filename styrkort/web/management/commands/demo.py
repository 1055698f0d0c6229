"""`styrkort demo`: migrate, build the demo region idempotently, print the users, serve."""

from __future__ import annotations

import time

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from styrkort.organisation.demo import DEFAULT_SEED, LAST_MONTH
from styrkort.web.demo import DemoError, build_demo, users_table


class Command(BaseCommand):
    help = (
        "Build the demo region (Region Exempel) and serve it on http://127.0.0.1:8000/.\n"
        "30 care units, 24 months of listings, staffing and a user per role, generated from a "
        "seed; running it again changes nothing unless the seed changes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--no-serve", action="store_true", help="build the demo database and stop"
        )
        parser.add_argument(
            "--seed", type=int, default=DEFAULT_SEED,
            help=f"seed of the generated data and passwords (default {DEFAULT_SEED})",
        )  # fmt: skip
        parser.add_argument("--port", type=int, default=8000, help="port to serve on (8000)")
        parser.add_argument(
            "--wait", action="store_true",
            help="load the extracts and compute the indicators before serving (about a "
            "minute more); by default that runs in the background once the demo serves",
        )  # fmt: skip

    def handle(
        self, *args, no_serve: bool, seed: int, port: int, wait: bool = False, **options
    ) -> None:
        if seed < 0:
            raise CommandError("--seed must be zero or a positive whole number")
        if not 0 < port < 65536:
            raise CommandError("--port must be between 1 and 65535")
        started = time.perf_counter()
        self.stdout.write(f"Building the demo region (seed {seed}) …")
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write(f"  {'migrate':<12} {time.perf_counter() - started:6.1f} s  done")
        try:
            defer = not (no_serve or wait)
            ctx = build_demo(seed, write=self.stdout.write, defer_background=defer)
        except DemoError as exc:
            raise CommandError(f"the demo cannot be built here: {exc}")
        listed = f"{sum(ctx.registry.listed_in(LAST_MONTH).values()):,}".replace(",", " ")
        self.stdout.write(
            f"Demo built in {time.perf_counter() - started:.1f} s: {ctx.registry.region.name}, "
            f"{len(ctx.registry.units)} care units, {listed} listed in {LAST_MONTH}."
        )
        if "background_job" in ctx.data:
            self.stdout.write(
                "Extracts and indicators are loading in the background (about a minute): the "
                "indicator pages fill in when they are done; the catalogue shows the latest "
                "computation."
            )
        self.stdout.write("")
        self.stdout.write(users_table(ctx, port=port))
        if no_serve:
            return
        call_command("serve", host="127.0.0.1", port=port)
