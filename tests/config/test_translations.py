"""Swedish is the default language: every catalogue entry is translated."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
CATALOGUES = sorted(ROOT.glob("locale*/sv/LC_MESSAGES/django.po"))


def test_there_are_swedish_catalogues():
    assert {path.parts[-4] for path in CATALOGUES} == {"locale", "locale_vendor"}


@pytest.mark.parametrize("path", CATALOGUES, ids=lambda p: p.parts[-4])
def test_every_entry_is_translated(path):
    with path.open("rb") as handle:
        catalogue = read_po(handle, locale="sv")
    untranslated = [
        message.id
        for message in catalogue
        if message.id
        and (
            not message.string
            or (isinstance(message.string, tuple) and not all(message.string))
            or message.fuzzy
        )
    ]
    assert untranslated == []


def test_swedish_is_shown_whatever_the_browser_asks_for(db, client):
    response = client.get("/konto/logga-in/", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert b'lang="sv"' in response.content
    assert b"Logga in" in response.content


def test_the_language_the_user_chose_is_kept(db, client):
    client.post("/i18n/setlang/", {"language": "en", "next": "/konto/logga-in/"})
    response = client.get("/konto/logga-in/", headers={"Accept-Language": "sv"})
    assert b'lang="en"' in response.content


def test_every_model_and_field_name_is_in_the_swedish_catalogue():
    """A model's or field's name marked for translation shows in Swedish: it is in a
    Swedish catalogue of the project's, or Django's own translates it (the test above
    checks only the entries there: a name added to the code and not to the catalogue
    showed in English)."""
    from django.apps import apps
    from django.utils import translation
    from django.utils.functional import Promise

    known = set()
    for path in CATALOGUES:
        with path.open("rb") as handle:
            for message in read_po(handle, locale="sv"):
                known.add(message.id[0] if isinstance(message.id, tuple) else message.id)
    names = []
    for model in apps.get_models():
        if not model.__module__.startswith(("audit.", "casework.", "workflows.")):
            continue
        meta = model._meta
        given = [meta.original_attrs.get(key) for key in ("verbose_name", "verbose_name_plural")]
        fields = [getattr(field, "verbose_name", None) for field in meta.local_fields]
        names += [(model.__name__, name) for name in given + fields if isinstance(name, Promise)]
    with translation.override("en"):
        english = [str(name) for _model, name in names]
    with translation.override("sv"):
        swedish = [str(name) for _model, name in names]
    untranslated = {
        (model, text)
        for (model, _name), text, shown in zip(names, english, swedish, strict=True)
        if text == shown and text not in known
    }
    assert sorted(untranslated) == []
