"""The user's own absences (under their account's settings): name a deputy for a period,
cancel an absence, see whom they stand in for. One service call a form
(``casework.services.absences``); case workers only."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views import View

from casework import policy
from casework.forms import put_errors
from casework.models import User
from casework.selectors.absences import absences_not_over
from casework.services import absences as services


class AbsenceForm(forms.Form):
    deputy = forms.ModelChoiceField(label=_("Deputy"), queryset=User.objects.none())
    starts_on = forms.DateField(
        label=_("First day"), widget=forms.DateInput(attrs={"type": "date"})
    )
    ends_on = forms.DateField(label=_("Last day"), widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        # Colleagues of the same organisation; the service checks their roles.
        self.fields["deputy"].queryset = (
            User.objects.filter(is_active=True, organisation_id=user.organisation_id)
            .exclude(pk=user.pk)
            .order_by("first_name", "last_name", "username")
        )
        self.fields["deputy"].label_from_instance = lambda u: u.get_full_name() or u.username


class AbsenceView(View):
    template_name = "samverkan/absence.html"

    def dispatch(self, request, *args, **kwargs):
        if not policy.can_use_task_inbox(request.user):
            return TemplateResponse(request, "403.html", status=403)
        return super().dispatch(request, *args, **kwargs)

    def render(self, form):
        own, standing_in = absences_not_over(user=self.request.user)
        context = {"form": form, "absences": own, "deputyships": standing_in}
        return TemplateResponse(self.request, self.template_name, context)

    def get(self, request):
        return self.render(AbsenceForm(user=request.user, auto_id="id_absence-%s"))

    def post(self, request):
        if request.POST.get("_action") == "cancel":
            try:
                services.cancel_absence(user=request.user, absence_id=_int(request.POST))
            except ValidationError as error:
                messages.error(request, " ".join(error.messages))
            else:
                messages.success(request, _("The absence is cancelled."))
            return HttpResponseRedirect(reverse("absence"))
        form = AbsenceForm(request.POST, user=request.user, auto_id="id_absence-%s")
        if form.is_valid():
            try:
                services.name_deputy(user=request.user, **form.cleaned_data)
            except ValidationError as error:
                put_errors(form, error)
            else:
                messages.success(request, _("Your deputy is named for the period."))
                return HttpResponseRedirect(reverse("absence"))
        return self.render(form)


def _int(data) -> int | None:
    try:
        return int(data.get("absence", ""))
    except ValueError:
        return None
