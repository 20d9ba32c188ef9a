"""A timeline line's markup made in Python (``TimelineRow.html``) is what the template's
tags made of the row: each text escaped, the same parts in the same order."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.template import Context, Template
from django.utils.translation import gettext_lazy

from casework.selectors.cases import Opened
from workflows.common.case_page import TimelineRow

# ``templates/workflows/_timeline.html``'s line before the markup was made in Python.
BY_TAGS = Template(
    '<time datetime="{{ row.at_iso }}">{{ row.at_text }}</time> · {{ row.kind }}'
    '{% if row.event.obj.to_state %}: {{ row.from_state|default:"—" }} → {{ row.to_state }}'
    "{% endif %}{% if row.gap %} ({{ row.gap }}){% endif %}{% if row.note %} ({{ row.note }})"
    "{% endif %}{% if row.actor %} · {{ row.actor }}{% endif %}{% if row.event.reason %} — "
    "{{ row.event.reason }}{% endif %}"
)


def _row(*, to_state="active", from_state="", reason=None, **texts) -> TimelineRow:
    entry = SimpleNamespace(to_state=to_state)
    return TimelineRow(
        event=Opened(entry, {"reason": reason}),
        kind=texts.get("kind", gettext_lazy("Status change")),
        from_state=from_state,
        to_state=texts.get("to_state", "Aktiv"),
        at_iso="2026-12-07T07:35:04.707087+01:00",
        at_text="2026-12-07 07:35",
        actor=texts.get("actor", ""),
        gap=texts.get("gap", ""),
        note=texts.get("note", ""),
    )


@pytest.mark.parametrize(
    "row",
    [
        _row(),
        _row(from_state="Ny <remiss>", actor="Anna O'Brien & co", reason='"Skäl" <b>x</b>'),
        _row(to_state="", actor="Per Polis"),
        _row(to_state=None, reason="", note=gettext_lazy("the consents needed are complete again")),
        _row(gap="utan samtycke från 2026-01-01 till 2026-02-01 (31 dagar)", kind="Samtycke"),
    ],
)
def test_a_timeline_line_is_what_the_tags_made(row):
    assert row.html == BY_TAGS.render(Context({"row": row}))
