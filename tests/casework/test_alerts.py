"""Alerts reach the right people in the app and by e-mail, without case data
(``casework.services.alerts``; docs/adr/0029)."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.test import Client
from django.utils import translation
from viewflow.workflow.models import Task

from audit.models import AccessEvent
from casework import roles
from casework.models import Reminder, User
from casework.services import cases as case_services
from tests.workflows.conftest import BOTH_DATABASES
from workflows.common.demo import surname
from workflows.defector import demo as defector_demo
from workflows.sig import demo as sig_demo
from workflows.sig.flow import SigFlow
from workflows.sig.models import SigProcess

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)
REASON = "Akut hot mot personen i natt, teamet nås inte."
Kind = Reminder.Kind


@pytest.fixture
def email(settings):
    settings.EMAIL_ENABLED = True
    mail.outbox.clear()


ALLOWED_LINES = [
    re.compile(r"^$"),
    re.compile(r"^Du har påminnelser i Samverkan:$"),
    re.compile(r"^- (?P<label>[^:]+): \d+$"),
    re.compile(
        r"^Logga in för att se dem: http://127\.0\.0\.1:8000/(granskning|arenden)/paminnelser/$"
    ),
    re.compile(r"^Meddelandet innehåller inga ärendeuppgifter\. Svara inte på det\.$"),
]


def _assert_no_case_data(message, case, slot, *extra: str) -> None:
    """The e-mail is counts per kind and a link, line by line, and nothing else: no name,
    no personnummer, no case number or id, no reason or note."""
    with translation.override("sv"):
        labels = {str(label) for label in Kind.labels}
    for line in message.body.splitlines():
        match = next((p.match(line) for p in ALLOWED_LINES if p.match(line)), None)
        assert match is not None, line
        if match.groupdict().get("label"):
            assert match["label"] in labels
    text = message.subject + message.body
    assert not re.search(r"\d{6}", text)  # no personnummer (nor any other long number)
    for value in [surname(slot), case.reference, str(case.pk), str(case.person_id), REASON]:
        assert value not in text
    for value in extra:
        assert value not in text


def _inbox(username: str) -> list[Reminder]:
    return list(Reminder.objects.filter(recipient__username=username))


def test_break_the_glass_alerts_every_auditor_but_the_breaker(
    demo, email, django_capture_on_commit_callbacks
):
    greta = demo["greta.granskare"]
    second = User.objects.create_user(
        "gunnar.granskare", email="gunnar@demo.invalid", organisation=greta.organisation
    )
    second.groups.add(Group.objects.get(name=roles.AUDITOR))
    slot = sig_demo.Slot("alert-glass", 20, "refer")
    case = sig_demo.build_case(slot, index=3)
    breaker = demo["sara.samordnare"]
    breaker.groups.add(Group.objects.get(name=roles.AUDITOR))  # an auditor too: not alerted
    with django_capture_on_commit_callbacks(execute=True):
        access = case_services.break_glass(
            user=User.objects.get(pk=breaker.pk), case=case, reason=REASON
        )
    alerts = Reminder.objects.filter(kind=Kind.BREAK_GLASS_OPENED, object_id=str(access.pk))
    assert sorted(alerts.values_list("recipient__username", flat=True)) == [
        "greta.granskare",
        "gunnar.granskare",
    ]
    assert sorted(m.to[0] for m in mail.outbox) == ["greta.granskare@demo.invalid", second.email]
    for message in mail.outbox:
        assert "/granskning/paminnelser/" in message.body
        _assert_no_case_data(message, case, slot)
    assert all(r.delivered_at is not None for r in alerts)
    # In the app: the auditor's reminders page.
    client = Client()
    client.force_login(greta)
    page = client.get("/granskning/paminnelser/")
    assert page.status_code == 200
    assert f"/granskning/brutet-glas/{access.pk}/".encode() in page.content


def test_a_lowering_awaiting_approval_alerts_the_police_defector_coordinators(
    demo, email, django_capture_on_commit_callbacks
):
    slot = next(s for s in defector_demo.SLOTS if s.key == "lowering-pending")
    with django_capture_on_commit_callbacks(execute=True):
        case = defector_demo.build_case(slot, index=defector_demo.SLOTS.index(slot))
    alerts = Reminder.objects.filter(kind=Kind.LOWERING_AWAITS_APPROVAL)
    # Maja: defector coordinator of the police. Not Alex (social services), not the assessor.
    assert list(alerts.values_list("recipient__username", flat=True)) == ["maja.avhopp"]
    assert alerts.get().case_id == case.pk
    sent = [m for m in mail.outbox if m.to == [demo["maja.avhopp"].email]]
    assert len(sent) == 1
    assert "/arenden/paminnelser/" in sent[0].body
    _assert_no_case_data(sent[0], case, slot)
    # In the app: her reminders page, linked to the case she coordinates.
    client = Client()
    client.force_login(demo["maja.avhopp"])
    page = client.get("/arenden/paminnelser/")
    assert page.status_code == 200
    assert "Sänkt hotnivå väntar på godkännande".encode() in page.content


def test_a_new_task_alerts_its_owner_only_when_they_asked(
    demo, email, django_capture_on_commit_callbacks
):
    anna = demo["anna.social"]
    slot = sig_demo.Slot("alert-task-off", 20, "decide_police")
    with django_capture_on_commit_callbacks(execute=True):
        quiet = sig_demo.build_case(slot, index=1)
    assert not Reminder.objects.filter(kind=Kind.TASK_ASSIGNED).exists()
    assert mail.outbox == []

    User.objects.filter(pk=anna.pk).update(alert_new_tasks=True)
    slot = sig_demo.Slot("alert-task-on", 20, "decide_police")
    with django_capture_on_commit_callbacks(execute=True):
        case = sig_demo.build_case(slot, index=2)
    plan_task = SigProcess.objects.get(case=case).task_set.get(flow_task=SigFlow.draft_plan)
    alerts = Reminder.objects.filter(kind=Kind.TASK_ASSIGNED)
    # Each step the flow gave her on the way, once, with its case; one e-mail for them all.
    owned = Task.objects.filter(
        process__in=SigProcess.objects.filter(case=case), owner=anna, flow_task_type="HUMAN"
    )
    assert sorted(alerts.values_list("object_id", flat=True)) == sorted(
        str(pk) for pk in owned.values_list("pk", flat=True)
    )
    assert str(plan_task.pk) in set(alerts.values_list("object_id", flat=True))
    assert {(r.recipient_id, r.case_id) for r in alerts} == {(anna.pk, case.pk)}
    assert [m.to for m in mail.outbox] == [[anna.email]]
    _assert_no_case_data(mail.outbox[0], case, slot, quiet.reference)
    # Saving the task again alerts nobody again.
    with django_capture_on_commit_callbacks(execute=True):
        plan_task.save()
    assert alerts.count() == owned.count() and len(mail.outbox) == 1


def test_the_user_turns_task_alerts_on_and_off_on_the_settings_page(demo, client):
    anna = demo["anna.social"]
    client.force_login(anna)
    page = client.get("/konto/installningar/")
    assert page.status_code == 200
    assert "Avisera mig när någon ger mig en uppgift" in page.content.decode()
    assert client.post("/konto/installningar/", {"alert_new_tasks": "on"}).status_code == 302
    anna.refresh_from_db()
    assert anna.alert_new_tasks is True
    logged = AccessEvent.objects.filter(
        action=AccessEvent.Action.ACCOUNT_CHANGE, user=anna, fields=["alert_new_tasks"]
    )
    assert logged.count() == 1
    client.post("/konto/installningar/", {})
    anna.refresh_from_db()
    assert anna.alert_new_tasks is False
    client.logout()
    assert client.get("/konto/installningar/").status_code == 302  # to the login page
