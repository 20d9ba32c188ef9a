"""Stored flow references follow the programmes' packages (migration 0010, ADR 0020):
a process started before the move is found again after it, and the move can be undone."""

from __future__ import annotations

import importlib

import pytest
from django.db import connection

from tests.workflows.conftest import BOTH_DATABASES
from tests.workflows.sig.factories import FlowDriver
from workflows.sig.flow import SigFlow
from workflows.sig.models import SigProcess

MIGRATION = importlib.import_module(
    "workflows.migrations.0010_flow_references_follow_the_programme_packages"
)

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)


def stored(process_id: int) -> tuple[str, set[str]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT flow_class FROM viewflow_process WHERE id = %s", [process_id])
        (flow_class,) = cursor.fetchone()
        cursor.execute("SELECT flow_task FROM viewflow_task WHERE process_id = %s", [process_id])
        tasks = {row[0] for row in cursor.fetchall()}
    return flow_class, tasks


def test_every_moved_flow_is_where_the_migration_says():
    from django.utils.module_loading import import_string
    from viewflow.workflow.flow import Flow

    for new in MIGRATION.MOVED.values():
        assert issubclass(import_string(f"workflows.{new}"), Flow)


def test_a_process_stored_under_the_old_path_is_found_after_the_migration(users):
    flow_case = FlowDriver(users).build("consent")
    process_id = flow_case.process.pk
    with connection.schema_editor() as editor:
        MIGRATION.backwards(None, editor)
    flow_class, tasks = stored(process_id)
    assert flow_class == "workflows/sig.SigFlow"
    assert tasks and all(task.startswith("workflows/sig.SigFlow.") for task in tasks)

    with connection.schema_editor() as editor:
        MIGRATION.forwards(None, editor)
    flow_class, tasks = stored(process_id)
    assert flow_class == "workflows/sig.flow.SigFlow"
    assert {task.rsplit(".", 1)[0] for task in tasks} == {"workflows/sig.flow.SigFlow"}
    process = SigProcess.objects.get(pk=process_id)
    assert process.flow_class is SigFlow
    assert process.task_set.get(flow_task=SigFlow.consent).flow_task is SigFlow.consent
