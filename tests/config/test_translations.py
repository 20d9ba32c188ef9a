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
