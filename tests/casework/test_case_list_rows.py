"""The case list's row texts (``casework.selectors.cases.CaseRow``) are what the template's
filters and translation tags gave before they were made once a row in Python."""

from __future__ import annotations

import datetime

import pytest
from django.template.defaultfilters import date as date_filter
from django.utils import timezone, translation

from casework.models import Case
from casework.selectors.cases import CaseRow


@pytest.mark.parametrize(
    "opened_at",
    [
        datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC),
        # 23:30 UTC is already the next day in Stockholm: the local day is shown.
        datetime.datetime(2026, 6, 30, 23, 30, tzinfo=datetime.UTC),
        datetime.datetime(2026, 12, 31, 23, 30, tzinfo=datetime.UTC),
    ],
)
def test_the_opening_day_is_the_date_filters(opened_at):
    row = CaseRow(case=Case(opened_at=opened_at), via="team")
    assert row.opened_on == date_filter(timezone.localtime(opened_at), "Y-m-d")


def test_the_review_day_or_a_dash():
    assert CaseRow(case=Case(review_date=None), via="team").review_on == "—"
    day = datetime.date(2027, 1, 5)
    assert CaseRow(case=Case(review_date=day), via="team").review_on == "2027-01-05"


@pytest.mark.parametrize(
    ("via", "english", "swedish"),
    [
        ("team", "Case team", "Ärendeteam"),
        ("coordinator", "Coordinator", "Samordnare"),
        ("break_glass", "Break-the-glass", "Nödåtkomst"),
    ],
)
def test_the_ground_is_named_in_the_users_language(via, english, swedish):
    row = CaseRow(case=Case(), via=via)
    with translation.override("en"):
        assert row.via_label == english
    with translation.override("sv"):
        assert row.via_label == swedish


# The loop ``workflows/case_list.html`` rendered the rows with before ``{% case_list_rows %}``.
_LOOP = """{% load i18n samverkan %}{% for row in rows %}
        <tr{% if row.case.pk in overdue %} class="samverkan-row--overdue"{% endif %}>
          <td><a href="{% case_url row.case.pk %}" data-turbo="false">{{ row.case.reference }}</a>{% if row.case.culled_at %} {% translate "(culled)" %}{% endif %}</td>
          <td><span class="samverkan-status samverkan-status--{{ row.case.status }}">{{ row.status_label }}</span></td>
          <td>{{ row.opened_on }}</td>
          <td>{{ row.review_on }}{% if row.case.pk in overdue %} <span class="samverkan-overdue">{% translate "overdue" %}</span>{% endif %}</td>
          <td>{{ row.via_label }}</td>
        </tr>
      {% endfor %}"""  # noqa: E501


@pytest.mark.parametrize("language", ["sv", "en"])
def test_the_case_list_rows_tag_writes_what_the_loop_wrote(language):
    """``{% case_list_rows %}`` (ADR 0036, session 17): the same markup as the template's
    loop, for culled, overdue and plain rows, every ground of access, and texts that need
    escaping."""
    import uuid

    from django.template import Context, Template

    from workflows.sig.models import SigCase

    opened = datetime.datetime(2026, 6, 30, 23, 30, tzinfo=datetime.UTC)
    cases = [
        SigCase(pk=uuid.uuid4(), reference="SIG-2026-0001", opened_at=opened, status="active"),
        SigCase(
            pk=uuid.uuid4(),
            reference="SIG-<2026>&\"0002'",
            opened_at=opened,
            status="closed",
            culled_at=opened,
            review_date=datetime.date(2026, 7, 1),
        ),
        SigCase(pk=uuid.uuid4(), reference="SIG-2026-0003", opened_at=opened, status="referred"),
    ]
    rows = [
        CaseRow(case=case, via=via)
        for case, via in zip(cases, ("team", "coordinator", "glass"), strict=True)
    ]
    overdue = {cases[1].pk, cases[2].pk}
    with translation.override(language):
        expected = Template(_LOOP).render(Context({"rows": rows, "overdue": overdue}))
        got = Template("{% load samverkan %}{% case_list_rows rows overdue %}").render(
            Context({"rows": rows, "overdue": overdue})
        )
        none = Template("{% load samverkan %}{% case_list_rows rows overdue %}").render(
            Context({"rows": [], "overdue": set()})
        )
    assert got == expected
    assert "&lt;2026&gt;&amp;&quot;0002&#x27;" in got
    assert got.count("samverkan-row--overdue") == 2
    assert none == ""
