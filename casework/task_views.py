"""The coordinators' page of their programme's open tasks: release and reassign (thin;
``casework.services.tasks`` decides and writes, ``casework.policy`` says who may)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.generic import View
from viewflow.workflow.models import Task
from viewflow.workflow.status import STATUS

from casework import policy, programmes
from casework.services import tasks as task_services

PURPOSE = _("Coordination: releasing and reassigning tasks")


def _row(task) -> dict:
    process = task.coerced_process
    case = getattr(process, "case", None)
    return {
        "task": task,
        "case": case,
        "title": task.flow_task.task_title or task.flow_task.name,
        "owner": task.owner,
        "url": reverse("arenden:task_manage", args=[task.pk]),
    }


class TasksToManageView(View):
    """Open tasks of the flows the user coordinates: the unowned first."""

    def get(self, request):
        user = request.user
        flows = [f for f in programmes.flow_classes() if policy.coordinates_flow(user, f)]
        if not flows:
            raise PermissionDenied
        tasks = (
            Task.objects.filter(
                process__flow_class__in=flows,
                flow_task_type="HUMAN",
                status__in=[STATUS.NEW, STATUS.ASSIGNED],
            )
            .select_related("process", "owner")
            .order_by("owner_id", "-created", "-pk")[:500]
        )
        rows = [_row(task) for task in tasks if policy.may_manage_task(user, task)]
        rows.sort(key=lambda row: row["owner"] is not None)
        return TemplateResponse(request, "workflows/tasks_to_manage.html", {"rows": rows})


class ReassignForm(forms.Form):
    owner = forms.TypedChoiceField(
        label=_("Give the task to"),
        coerce=int,
        error_messages={"required": _("Choose who gets the task.")},
    )

    def __init__(self, *args, candidates=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.candidates = {user.pk: user for user in candidates}
        self.fields["owner"].choices = [("", "—")] + [
            (user.pk, f"{user.get_full_name() or user.username} ({user.organisation})")
            for user in candidates
        ]


class TaskManageView(View):
    """One task: who has it, release it, give it to someone who may do the step."""

    def dispatch(self, request, task_pk):
        self.task = get_object_or_404(Task.objects.select_related("process", "owner"), pk=task_pk)
        if not policy.may_manage_task(request.user, self.task):
            raise PermissionDenied
        return super().dispatch(request, task_pk)

    def render(self, form, status=200):
        task = self.task
        open_ = task.status in (STATUS.NEW, STATUS.ASSIGNED)
        return TemplateResponse(
            self.request,
            "workflows/task_manage.html",
            {
                "row": _row(task),
                "form": form if open_ else None,
                "may_release": open_ and task.status == STATUS.ASSIGNED,
            },
            status=status,
        )

    def form(self, data=None):
        return ReassignForm(data, candidates=policy.task_candidates(self.task))

    def get(self, request, task_pk):
        return self.render(self.form())

    def post(self, request, task_pk):
        action = request.POST.get("_action", "")
        form = self.form(request.POST if action == "reassign" else None)
        try:
            if action == "release":
                task_services.release_task(user=request.user, task=self.task, purpose=str(PURPOSE))
                messages.success(request, _("The task was released."))
                return HttpResponseRedirect(request.path)
            if action == "reassign" and form.is_valid():
                owner = form.candidates[form.cleaned_data["owner"]]
                task_services.reassign_task(
                    user=request.user, task=self.task, owner=owner, purpose=str(PURPOSE)
                )
                messages.success(request, _("The task was reassigned."))
                return HttpResponseRedirect(request.path)
            if action not in ("release", "reassign"):
                messages.error(request, _("That step is not available now."))
        except task_services.TaskDenied as denied:
            raise PermissionDenied from denied
        except ValidationError as error:
            if hasattr(error, "error_dict"):
                for name, errors in error.error_dict.items():
                    form.add_error(name if name in form.fields else None, errors)
            else:
                form.add_error(None, error)
        self.task.refresh_from_db()
        return self.render(form)
