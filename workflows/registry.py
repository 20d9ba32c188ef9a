"""The flows Samverkan runs, in the order their menus appear.

Each process module (``workflows/sig.py`` …) adds its ``FlowViewset`` here; the
shared task inbox, queue and archive list the tasks of all of them.
"""

from __future__ import annotations

from viewflow.workflow.flow import FlowViewset


def flow_viewsets() -> list[FlowViewset]:
    from workflows.sig import SigFlow

    return [FlowViewset(SigFlow, icon="groups")]
