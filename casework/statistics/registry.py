"""The programmes whose statistics the steering group sees, in the order shown.

Each programme describes its measures in one ``ProgrammeStatistics`` (see
``workflows/sig_statistics.py``) and hands it to the programme registry
(``casework.programmes``, its ``statistics`` hook). Nothing else changes: tables,
suppression, trends, charts, CSV, report and PDF follow from the description.
"""

from __future__ import annotations

from functools import cache

from casework import programmes as programme_registry
from casework.statistics.spec import ProgrammeStatistics


@cache
def programmes() -> dict[str, ProgrammeStatistics]:
    found = {}
    for programme in programme_registry.registered():
        if programme.statistics is not None:
            spec = programme.statistics()
            found[spec.code] = spec
    return found


def get(code: str) -> ProgrammeStatistics | None:
    return programmes().get(code)
