"""Write the API's OpenAPI document to docs/openapi.json (committed; a test fails on drift)."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import translation

DEFAULT_PATH = Path(settings.BASE_DIR) / "docs" / "openapi.json"


def openapi_text() -> str:
    """The OpenAPI document as committed: English, sorted keys, two-space indent."""
    from styrkort.api import api

    # Descriptions may be lazy translations; the committed document is the English one.
    with translation.override("en"):
        schema = api.get_openapi_schema(path_prefix="/api/")
        text = json.dumps(schema, sort_keys=True, indent=2, ensure_ascii=False, default=str)
    return text + "\n"


class Command(BaseCommand):
    help = "Write the API's OpenAPI document (docs/openapi.json by default)."

    def add_arguments(self, parser):
        parser.add_argument("--output", "-o", type=Path, default=DEFAULT_PATH)
        parser.add_argument(
            "--check", action="store_true", help="Exit non-zero if the file is out of date."
        )

    def handle(self, *args, output: Path, check: bool, **options):
        text = openapi_text()
        if check:
            current = output.read_text(encoding="utf-8") if output.exists() else ""
            if current != text:
                self.stderr.write(f"{output} is out of date: run `styrkort export-openapi`")
                raise SystemExit(1)
            self.stdout.write(f"{output} is up to date")
            return
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        paths = len(json.loads(text).get("paths", {}))
        self.stdout.write(f"Wrote {output} ({paths} paths)")
