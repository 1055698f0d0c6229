"""The committed OpenAPI document must match the API: a drift fails here."""

import json

from styrkort.web.management.commands.export_openapi import DEFAULT_PATH, openapi_text

FIX = "run `.venv/bin/python manage.py export_openapi` and commit docs/openapi.json"


def test_it_has_a_committed_openapi_document():
    assert DEFAULT_PATH.exists(), f"docs/openapi.json is missing: {FIX}"


def test_it_fails_when_the_committed_openapi_document_drifts():
    committed = DEFAULT_PATH.read_text(encoding="utf-8")
    generated = openapi_text()
    if committed != generated:
        old, new = json.loads(committed), json.loads(generated)
        gone = sorted(set(old.get("paths", {})) - set(new.get("paths", {})))
        added = sorted(set(new.get("paths", {})) - set(old.get("paths", {})))
        raise AssertionError(
            f"docs/openapi.json differs from the API ({FIX}); paths added: {added}, removed: {gone}"
        )


def test_it_writes_the_document_with_the_command(tmp_path):
    from django.core.management import call_command

    out = tmp_path / "openapi.json"
    call_command("export_openapi", output=out)
    schema = json.loads(out.read_text(encoding="utf-8"))
    assert "/api/organisation/units" in schema["paths"]
    assert out.read_text(encoding="utf-8") == openapi_text()


def test_it_serves_the_interactive_docs_from_its_own_static_files(client, db):
    import re

    page = client.get("/api/docs").content.decode()
    urls = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert any(u.endswith("swagger-ui-bundle.js") for u in urls)
    assert [u for u in urls if "//" in u] == [], "users' networks are closed: no CDN"
