"""``styrkort extracts-cleanup``: remove what an interrupted upload or purge left behind."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from styrkort.extracts import services


class Command(BaseCommand):
    help = (
        "Remove extract files without a version record, and staging and upload directories of "
        "uploads that are no longer running (after a crash or restart). Safe to run at any time."
    )

    def handle(self, *args, **options) -> None:
        self.stdout.write(services.cleanup().summary())
