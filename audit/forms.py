"""Forms of the auditor's pages: search filter, log-review period, a finding's outcome and
a break-the-glass review."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from audit.models import AccessEvent, FindingOutcome
from audit.selectors import EventFilter, PersonLookupUnavailable, person_ids_for
from casework.models import BreakGlassAccess, Organisation

MAX_PERSON_IDS = 50


def _start_of_day(day: dt.date) -> dt.datetime:
    """Midnight of ``day`` in the local time zone (periods are local calendar days)."""
    return dt.datetime.combine(day, dt.time.min, tzinfo=ZoneInfo(settings.TIME_ZONE))


class _PeriodMixin:
    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and end < start:
            raise forms.ValidationError(_("The period ends before it starts."))
        return cleaned

    def period(self) -> tuple[dt.datetime | None, dt.datetime | None]:
        start, end = self.cleaned_data.get("date_from"), self.cleaned_data.get("date_to")
        return (
            _start_of_day(start) if start else None,
            _start_of_day(end + dt.timedelta(days=1)) if end else None,
        )


class SearchForm(_PeriodMixin, forms.Form):
    username = forms.CharField(label=_("User (username)"), max_length=150, required=False)
    organisation = forms.ChoiceField(label=_("Organisation"), required=False)
    date_from = forms.DateField(
        label=_("From (date)"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=_("To (date)"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    action = forms.ChoiceField(
        label=_("Action"), required=False, choices=[("", "—"), *AccessEvent.Action.choices]
    )
    outcome = forms.ChoiceField(
        label=_("Outcome"), required=False, choices=[("", "—"), *AccessEvent.Outcome.choices]
    )
    person = forms.CharField(
        label=_("Person (person id or personnummer)"), max_length=64, required=False
    )

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        names = Organisation.objects.order_by("name").values_list("name", flat=True)
        self.fields["organisation"].choices = [("", "—"), *((name, name) for name in names)]

    def clean_person(self) -> tuple:
        query = self.cleaned_data.get("person", "").strip()
        if not query:
            return ()
        try:
            person_ids = person_ids_for(query, user=self.user)
        except PersonLookupUnavailable:
            raise forms.ValidationError(
                _(
                    "Search by personnummer is not available yet: enter the person id "
                    "(a UUID) instead."
                )
            ) from None
        except ValueError:
            raise forms.ValidationError(_("Enter a person id or a valid personnummer.")) from None
        if not person_ids:
            # Nobody has that number: the search must find nothing, not everything.
            return (uuid.UUID(int=0),)
        return tuple(person_ids[:MAX_PERSON_IDS])

    def event_filter(self) -> EventFilter:
        data = self.cleaned_data
        start, end = self.period()
        return EventFilter(
            username=data.get("username", "").strip(),
            organisation=data.get("organisation", ""),
            start=start,
            end=end,
            action=data.get("action", ""),
            outcome=data.get("outcome", ""),
            person_ids=tuple(data.get("person") or ()),
        )


class ReviewForm(_PeriodMixin, forms.Form):
    date_from = forms.DateField(
        label=_("From (date)"), widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(label=_("To (date)"), widget=forms.DateInput(attrs={"type": "date"}))
    seed = forms.IntegerField(
        label=_("Sample seed"),
        required=False,
        min_value=0,
        max_value=2**31 - 1,
        help_text=_(
            "Leave empty for a new random sample; enter a seed to draw the same one again."
        ),
    )

    MAX_DAYS = 366

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and (end - start).days >= self.MAX_DAYS:
            raise forms.ValidationError(_("Review at most one year at a time."))
        if cleaned.get("seed") is None:
            cleaned["seed"] = secrets.randbelow(2**31)
        return cleaned

    @staticmethod
    def default_period() -> tuple[dt.date, dt.date]:
        """The last calendar month: log review is monthly."""
        today = timezone.localdate()
        last = today.replace(day=1) - dt.timedelta(days=1)
        return last.replace(day=1), last


class FindingOutcomeForm(ReviewForm):
    """The outcome of one finding of the review of a period (drawn with its seed)."""

    rule = forms.CharField(max_length=40, widget=forms.HiddenInput)
    key = forms.CharField(max_length=300, widget=forms.HiddenInput)
    outcome = forms.ChoiceField(label=_("Outcome"), choices=FindingOutcome.Outcome.choices)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["seed"].required = True


class BreakGlassReviewForm(forms.Form):
    verdict = forms.ChoiceField(
        label=_("Verdict"),
        choices=BreakGlassAccess.Verdict.choices,
        widget=forms.RadioSelect,
    )
    note = forms.CharField(
        label=_("Comment"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_(
            "Why the access was or was not justified. Write no names or other personal data: "
            "the comment is kept in plain text beside the access."
        ),
    )
