"""The follow-up report as a PDF (fpdf2, pure Python): the same suppressed numbers as the page."""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext as _
from fpdf import FPDF

from casework.statistics.disclosure import SECONDARY_MARK
from casework.statistics.periods import YEAR
from casework.statistics.tables import ProgrammeReport

_FONT = "Helvetica"  # the PDF core font: Latin-1, enough for Swedish


def _text(value) -> str:
    """Core fonts are Latin-1: the few other characters get a Latin-1 stand-in."""
    return (
        str(value)
        .replace("\u2013", "-")
        .replace("\u2014", "-")
        .encode("latin-1", "replace")
        .decode("latin-1")
    )


def render(*, reports: list[ProgrammeReport], period_label: str, preliminary: bool) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_title(_text(_("Follow-up report")))
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font(_FONT, "B", 16)
    pdf.cell(
        0,
        10,
        _text(_("Follow-up report: %(period)s") % {"period": period_label}),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.set_font(_FONT, size=9)
    limit = reports[0].threshold if reports else 5
    notes = [
        _("Anonymised statistics from Samverkan, produced %(date)s.")
        % {"date": timezone.localdate().isoformat()},
        _(
            'Counts from 1 to %(last)d are shown as "<%(limit)d"; "%(mark)s" marks a count '
            "hidden so that another cannot be worked out. Persons with protected identity are "
            "never counted by area."
        )
        % {"last": limit - 1, "limit": limit, "mark": SECONDARY_MARK},
    ]
    if preliminary:
        notes.append(_("The period has not ended: the figures are preliminary."))
    if reports and reports[0].period.kind != YEAR:
        notes.append(
            _(
                "A month or a quarter shows its totals; the breakdowns are published for the "
                "whole year, protected together with its quarters and months so that no month "
                "can be worked out from the year."
            )
        )
        notes.append(
            _(
                '".." marks a month or a quarter not published because its year holds too few '
                "cases to protect it."
            )
        )
    for note in notes:
        pdf.multi_cell(0, 5, _text(note), new_x="LMARGIN", new_y="NEXT")
    for report in reports:
        pdf.ln(4)
        pdf.set_font(_FONT, "B", 13)
        pdf.cell(0, 8, _text(report.spec.label), new_x="LMARGIN", new_y="NEXT")
        _table(pdf, _("Overview"), [(row.label, row.display) for row in report.overview])
        if report.medians:
            _table(pdf, _("Medians"), [(m.label, m.display) for m in report.medians])
        for trend in report.trends:
            _table(
                pdf,
                _("Trend: %(measure)s") % {"measure": trend.label},
                [(pt.period.label, pt.row.display) for pt in trend.points],
            )
        for table in report.tables:
            if table.withheld:
                _table(pdf, table.title, [(_("Withheld to protect other cells"), "")])
                continue
            rows = [(row.label, row.display) for row in table.rows]
            rows.append((table.total.label, table.total.display))
            _table(pdf, table.title, rows)
    return bytes(pdf.output())


def _table(pdf: FPDF, title, rows) -> None:
    pdf.set_font(_FONT, "B", 10)
    pdf.cell(0, 7, _text(title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(_FONT, size=9)
    with pdf.table(
        col_widths=(120, 40),
        text_align=("LEFT", "RIGHT"),
        first_row_as_headings=False,
        line_height=5,
    ) as table:
        for label, value in rows:
            row = table.row()
            row.cell(_text(label))
            row.cell(_text(value))
    pdf.ln(2)
