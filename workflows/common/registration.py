"""A case programme's entry in the core's programme registry (``casework.programmes``).

SIG, SSPF and the defector programme register the same way: their label is their
``Case.Programme`` choice's, each of their flows gets the programme flow viewset under
its menu icon, each of their processes works on one case, and the rows their register
extract adds hang off their cases. :func:`register_case_programme` derives those hooks
once; the rest of a registration is the programme's own.
"""

from __future__ import annotations

from casework import programmes
from casework.models import Case
from workflows.common.viewsets import ProgrammeFlowViewset


def register_case_programme(
    code: str, *, flows: dict[type, str], process: type, **hooks
) -> programmes.Programme:
    """Register the case programme ``code`` (a ``Case.Programme`` value) and return it.

    ``flows`` maps each flow class to its menu icon (in menu order); ``process`` is the
    process model whose every process works on one case (its ``case`` field), which
    gives the task lists their cases; the rows of ``extract_models`` (in ``hooks``), each
    with a ``case``, are the register extract's rows of the programme's cases. ``hooks``
    are the other fields of :class:`casework.programmes.Programme`.
    """
    extract_models = hooks.get("extract_models", ())
    programme = programmes.Programme(
        code=code,
        label=Case.Programme(code).label,
        flow_viewsets=lambda: [
            ProgrammeFlowViewset(flow_class, icon=icon) for flow_class, icon in flows.items()
        ],
        task_cases=programmes.process_cases(process),
        extract_rows=programmes.case_rows(*extract_models) if extract_models else None,
        **hooks,
    )
    programmes.register(programme)
    return programme
