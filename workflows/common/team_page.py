"""The case team page, for every programme: replace the lead social worker or the police
contact officer, add a member, end a membership — each with a reason, each one service
call (``casework.services.team_changes``). Who may is the policy's
(``casework.policy.may_change_team``); anyone else gets 404, logged."""

from __future__ import annotations

from functools import partial

from django.contrib import messages
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.generic import View

from casework import policy
from casework.models import Case
from casework.selectors.cases import CaseNotFound
from casework.selectors.teams import team_for_change
from casework.services import team_changes
from workflows.common import forms
from workflows.common.case_page import CaseworkerRequiredMixin
from workflows.common.responses import ActionForms, CaseCalls, form_values

FORMS = {
    "replace": forms.ReplaceMemberForm,
    "add": forms.AddMemberForm,
    "end": forms.EndMembershipForm,
}
# Each form's service and the fields it passes on (besides the reason).
SERVICES = {
    "replace": (team_changes.replace_member, ("role", "member")),
    "add": (team_changes.add_team_member, ("member", "role")),
    "end": (team_changes.end_team_membership, ("membership_id",)),
}
DONE = {
    "replace": _("The role has a new holder; the open tasks followed."),
    "add": _("The member is on the team."),
    "end": _("The membership has ended; the member's open tasks followed."),
}


class TeamPageView(CaseCalls, CaseworkerRequiredMixin, ActionForms, View):
    template_name = "workflows/team.html"
    purpose = _("Change the case's team")
    actions = FORMS

    def setup(self, request, *args, **kwargs):
        super().setup(request, *args, **kwargs)
        self.case = get_object_or_404(Case.objects.select_related("person"), pk=kwargs["case_id"])

    def team(self):
        try:
            return team_for_change(
                user=self.request.user, case=self.case, purpose=str(self.purpose)
            )
        except CaseNotFound:
            raise Http404 from None

    def form_kwargs(self, name: str) -> dict:
        return {"team": self.team_rows} if name == "end" else {}

    def initial(self, name: str) -> dict:
        return {"version": self.case.version}

    def render(self, built: dict, status: int = 200):
        bound = next((name for name, form in built.items() if form.is_bound), "")
        context = {"case": self.case, "team": self.team_rows, "forms": built, "open_form": bound}
        return TemplateResponse(self.request, self.template_name, context, status=status)

    def get(self, request, case_id):
        self.team_rows = self.team()
        return self.render(self.build_forms())

    def post(self, request, case_id):
        self.team_rows = self.team()
        action = request.POST.get("_action", "")
        if not self.offers(action):
            messages.error(request, _("That is not available."))
            return HttpResponseRedirect(reverse("arenden:case_team", args=[self.case.pk]))
        return self.post_action(
            request, action, partial(self.act, action), case=self.case, then=self.next_url
        )

    def next_url(self) -> str:
        """Where a change leads: the team page again, or, for a user who left the team (a
        lead who handed the seat on), their start page."""
        if policy.may_change_team(self.request.user, self.case):
            return reverse("arenden:case_team", args=[self.case.pk])
        return policy.start_url(self.request.user) or "/"

    def act(self, action: str, form):
        """The form's one service call (``SERVICES``), with its reason and the version the
        form saw."""
        service, names = SERVICES[action]
        self.call(service, form, **form_values(form, "reason", *names))
        return str(DONE[action])
