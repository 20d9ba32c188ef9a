"""Delivering reminders by e-mail: a count per kind and a link, never case data.

``manage.py send_reminders`` records the reminders (``casework.Reminder``) and
then calls :func:`deliver_reminders`. The app shows every reminder on the
reminders page; the e-mail only tells its recipient that there are some, as an
e-mail may travel and be kept where the case data must not. Alerts
(``casework.services.alerts``) are reminders recorded when something happens and
delivered the same way at once.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from casework.models import Reminder

# The kinds an auditor is reminded or alerted of: shown on the audit app's page.
AUDITOR_KINDS = frozenset({Reminder.Kind.BREAK_GLASS_UNREVIEWED, Reminder.Kind.BREAK_GLASS_OPENED})


def page_name(kind: str) -> str:
    """The URL name of the page that shows reminders of ``kind`` to their recipient."""
    return "granskning:reminders" if kind in AUDITOR_KINDS else "arenden:reminders"


def _message(reminders: list[Reminder]) -> tuple[str, str]:
    counts: dict[str, int] = defaultdict(int)
    for reminder in reminders:
        counts[reminder.get_kind_display()] += 1
    total = len(reminders)
    subject = ngettext("Samverkan: %(count)d reminder", "Samverkan: %(count)d reminders", total) % {
        "count": total
    }
    lines = [_("You have reminders in Samverkan:"), ""]
    lines += [f"- {label}: {count}" for label, count in sorted(counts.items())]
    pages = sorted({page_name(reminder.kind) for reminder in reminders})
    lines += [""]
    lines += [
        _("Log in to see them: %(url)s") % {"url": settings.SITE_URL + reverse(page)}
        for page in pages
    ]
    lines += ["", _("This message holds no case data. Do not reply to it.")]
    return subject, "\n".join(lines)


def deliver_reminders(*, today: datetime.date, recipients: Iterable[int] | None = None) -> int:
    """E-mail each recipient once about the reminders of ``today`` not yet delivered.

    Returns how many e-mails were sent. Idempotent: a delivered reminder is
    marked, and a second run the same day sends nothing. Recipients without an
    e-mail address, or inactive, get none (the app still shows the reminders).
    A failed send leaves the recipient's reminders undelivered for the next run.
    Does nothing when e-mail is not configured (``EMAIL_URL`` unset). ``recipients``:
    only these users' (a reminder recorded outside ``send_reminders``, told at once).
    """
    selection = Q(date=today)
    if recipients is not None:
        selection &= Q(recipient_id__in=list(recipients))
    return deliver(selection)


def deliver(selection: Q) -> int:
    """E-mail each recipient once about the undelivered reminders of ``selection`` (the
    day's, for :func:`deliver_reminders`; the ones just recorded, for an alert); see
    :func:`deliver_reminders`."""
    if not settings.EMAIL_ENABLED:
        return 0
    recipients = (
        Reminder.objects.filter(selection, delivered_at__isnull=True, recipient__isnull=False)
        .exclude(recipient__email="")
        .filter(recipient__is_active=True)
    )
    sent = 0
    for recipient_id in list(recipients.values_list("recipient_id", flat=True).distinct()):
        with transaction.atomic():
            # Locked and skipped when another run is delivering the same ones.
            reminders = list(
                Reminder.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(selection, delivered_at__isnull=True, recipient_id=recipient_id)
                .select_related("recipient")
            )
            if not reminders:
                continue
            with translation.override(settings.LANGUAGE_CODE):
                subject, body = _message(reminders)
            send_mail(subject, body, None, [reminders[0].recipient.email])
            Reminder.objects.filter(pk__in=[r.pk for r in reminders]).update(
                delivered_at=timezone.now()
            )
        sent += 1
    return sent
