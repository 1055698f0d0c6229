"""The Swedish catalogue is complete and the compiled .mo is the one built from the .po."""

from __future__ import annotations

import re
from pathlib import Path

import polib

LOCALE = Path(__file__).resolve().parents[2] / "locale" / "sv" / "LC_MESSAGES"
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%[sd]|\{\w*\}")


def _catalogue(entries) -> dict:
    out = {}
    for e in entries:
        if e.obsolete or not e.msgid:
            continue
        key = (e.msgctxt, e.msgid)
        out[key] = tuple(e.msgstr_plural[k] for k in sorted(e.msgstr_plural)) or e.msgstr
    return out


def test_it_translates_every_message_to_swedish():
    po = polib.pofile(str(LOCALE / "django.po"))
    untranslated = [e.msgid for e in po.untranslated_entries()]
    fuzzy = [e.msgid for e in po.fuzzy_entries()]
    assert not untranslated, untranslated[:10]
    assert not fuzzy, fuzzy[:10]


def test_it_keeps_every_placeholder_in_the_translation():
    po = polib.pofile(str(LOCALE / "django.po"))
    for e in po.translated_entries():
        if e.msgid_plural:
            # Swedish has the same two forms as English: singular to singular, plural to plural.
            pairs = [(e.msgid, e.msgstr_plural[0]), (e.msgid_plural, e.msgstr_plural[1])]
        else:
            pairs = [(e.msgid, e.msgstr)]
        for source, target in pairs:
            assert sorted(PLACEHOLDER.findall(source)) == sorted(PLACEHOLDER.findall(target)), (
                source
            )


def test_it_ships_a_compiled_catalogue_in_step_with_the_source():
    po = polib.pofile(str(LOCALE / "django.po"))
    mo = polib.mofile(str(LOCALE / "django.mo"))
    assert _catalogue(po) == _catalogue(mo), "run `make messages` and commit django.mo"


def test_it_speaks_swedish_by_default_and_english_on_request(client):
    from django.utils import translation

    with translation.override("sv"):
        assert translation.gettext("Change log") == "Ändringslogg"
    with translation.override("en"):
        assert translation.gettext("Change log") == "Change log"
