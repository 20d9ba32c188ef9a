"""The user's own settings page: which alerts they get (docs/adr/0029)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.shortcuts import redirect
from django.utils.translation import gettext_lazy as _
from django.views.generic import FormView

from casework.services import alerts


class AlertSettingsForm(forms.Form):
    alert_new_tasks = forms.BooleanField(
        label=_("Alert me when someone gives me a task"),
        required=False,
        help_text=_(
            "A reminder in the app and, where e-mail is set up, an e-mail without case data. "
            "Not when you take a task yourself."
        ),
    )


class SettingsView(FormView):
    template_name = "samverkan/settings.html"
    form_class = AlertSettingsForm

    def get_initial(self):
        return {"alert_new_tasks": self.request.user.alert_new_tasks}

    def form_valid(self, form):
        alerts.set_task_alerts(user=self.request.user, enabled=form.cleaned_data["alert_new_tasks"])
        messages.success(self.request, _("Your settings are saved."))
        return redirect("account_settings")
