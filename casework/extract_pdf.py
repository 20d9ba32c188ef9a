"""The released register extract as a PDF (fpdf2, pure Python) and as JSON.

Renders the released document (``casework.services.extracts.release_extract``) as it was
sealed; nothing is decrypted or looked up here. See docs/adr/0025-register-extract.md.
"""

from __future__ import annotations

import datetime
import json

from django.utils import timezone
from django.utils.translation import gettext as _
from fpdf import FPDF

from casework.statistics.pdf import _FONT
from casework.statistics.pdf import _text as latin1

FORMATS = ("pdf", "json")


def _when(value: str) -> str:
    return timezone.localtime(datetime.datetime.fromisoformat(value)).strftime("%Y-%m-%d %H:%M")


def render_json(document: dict) -> bytes:
    return json.dumps(document, ensure_ascii=False, indent=2).encode()


def render_pdf(document: dict) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_title(latin1(document["title"]))
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font(_FONT, "B", 16)
    pdf.cell(0, 10, latin1(document["title"]), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(_FONT, size=9)
    for line in (
        document["law"],
        _("Responsible organisation: %(organisation)s")
        % {"organisation": document["organisation"]},
        _("Requested %(requested)s, released %(released)s")
        % {
            "requested": _when(document["requested_at"]),
            "released": _when(document["released_at"]),
        },
        document["withheld"]["statement"],
    ):
        pdf.multi_cell(0, 5, latin1(line), new_x="LMARGIN", new_y="NEXT")
    for section in document["sections"]:
        pdf.ln(3)
        pdf.set_font(_FONT, "B", 12)
        pdf.multi_cell(0, 7, latin1(section["title"]), new_x="LMARGIN", new_y="NEXT")
        for item in section["items"]:
            pdf.set_font(_FONT, "B", 10)
            pdf.multi_cell(0, 6, latin1(item["title"]), new_x="LMARGIN", new_y="NEXT")
            pdf.set_font(_FONT, size=9)
            for entry in item["fields"]:
                pdf.multi_cell(
                    0,
                    5,
                    latin1(f"{entry['label']}: {entry['value']}"),
                    new_x="LMARGIN",
                    new_y="NEXT",
                )
    return bytes(pdf.output())


def render(document: dict, format: str) -> bytes:
    return render_pdf(document) if format == "pdf" else render_json(document)
