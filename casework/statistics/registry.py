"""The programmes whose statistics the steering group sees, in the order shown.

To add a programme: write ``casework/statistics/programmes/<code>.py`` with one
``ProgrammeStatistics`` named ``STATISTICS`` (see ``programmes/sig.py``) and add
its module path here. Nothing else changes: tables, suppression, trends, charts,
CSV, report and PDF follow from the description.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module

from casework.statistics.spec import ProgrammeStatistics

PROGRAMME_MODULES = [
    "casework.statistics.programmes.sig",
    "casework.statistics.programmes.sspf",
    "casework.statistics.programmes.gvi",
    "casework.statistics.programmes.defector",
]


@cache
def programmes() -> dict[str, ProgrammeStatistics]:
    found = {}
    for path in PROGRAMME_MODULES:
        spec = import_module(path).STATISTICS
        found[spec.code] = spec
    return found


def get(code: str) -> ProgrammeStatistics | None:
    return programmes().get(code)
