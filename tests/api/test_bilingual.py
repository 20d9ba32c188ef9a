"""A bad input's messages, rendered once in Swedish and once in English and paired
(``casework.api.views.Bilingual.paired``): the serializers' errors and the statistics
form's errors are paired by this one rule."""

from __future__ import annotations

import pytest
from django.utils import translation

from casework.api.views import Bilingual


def test_the_messages_of_a_field_are_paired_in_order_and_shown_in_the_active_language():
    paired = Bilingual.paired(
        {"period": ["Ogiltig period.", "För tidig."], "selection": ["Okänt urval."]},
        {"period": ["Invalid period.", "Too early."], "selection": ["Unknown selection."]},
    )
    assert list(paired) == ["period", "selection"]
    with translation.override("sv"):
        assert [str(message) for message in paired["period"]] == ["Ogiltig period.", "För tidig."]
    with translation.override("en"):
        assert [str(message) for message in paired["period"]] == ["Invalid period.", "Too early."]
        assert [str(message) for message in paired["selection"]] == ["Unknown selection."]


def test_a_field_the_english_rendering_lacks_keeps_its_swedish_messages():
    paired = Bilingual.paired({"period": ["Ogiltig period."]}, {})
    with translation.override("en"):
        assert [str(message) for message in paired["period"]] == ["Ogiltig period."]


@pytest.mark.django_db(databases=["default", "keystore", "audit"])
def test_the_statistics_forms_errors_are_in_both_languages(api_for, demo):
    steering = api_for(demo["stig.styrgrupp"].organisation.name)
    response = steering.http.get(
        "/api/v1/statistics/", {"period": "2024-13"}, **steering.headers("stig.styrgrupp")
    )
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["field"] == "period"
    assert error["detail"] and error["detail_en"] and error["detail"] != error["detail_en"]
