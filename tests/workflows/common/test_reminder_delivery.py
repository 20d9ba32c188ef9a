"""Reminders reach people: the reminders page, and one e-mail a day with counts only."""

from __future__ import annotations

import datetime
import io

import pytest
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.utils import timezone, translation

from casework.models import Reminder
from tests.workflows.common.test_send_reminders import _active_case, _review_came
from tests.workflows.conftest import BOTH_DATABASES

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)


def _run() -> str:
    out = io.StringIO()
    with translation.override("en"):
        call_command("send_reminders", stdout=out)
    return out.getvalue()


@pytest.fixture
def overdue(users, settings):
    settings.EMAIL_ENABLED = True
    case = _active_case("delivery-overdue", index=1)
    _review_came(case, days_ago=3)
    return case


def test_each_recipient_gets_one_email_a_day_with_counts_and_a_link_only(users, overdue):
    output = _run()
    assert "E-mails sent: 1" in output
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [users["anna.social"].email]
    assert message.subject == "Samverkan: 1 påminnelse"
    assert "http://127.0.0.1:8000/arenden/paminnelser/" in message.body
    assert overdue.reference not in message.body and overdue.reference not in message.subject
    assert str(overdue.pk) not in message.body
    assert Reminder.objects.filter(delivered_at__isnull=False).count() == 1

    _run()  # the same day again: nothing new to say
    assert len(mail.outbox) == 1


def test_no_email_without_an_address_or_without_email_configured(users, overdue, settings):
    anna = users["anna.social"]
    anna.email = ""
    anna.save(update_fields=["email"])
    assert "E-mails sent: 0" in _run()
    assert mail.outbox == []
    Reminder.objects.all().delete()
    anna.email = "anna@demo.invalid"
    anna.save(update_fields=["email"])
    settings.EMAIL_ENABLED = False
    assert "E-mail is not configured" in _run()
    assert mail.outbox == []
    assert Reminder.objects.filter(delivered_at__isnull=True).exists()  # shown in the app


def test_a_failed_send_leaves_the_reminders_for_the_next_run(users, overdue, monkeypatch):
    from casework.services import reminders

    def broken(*args, **kwargs):
        raise OSError("mail server down")

    monkeypatch.setattr(reminders, "send_mail", broken)
    with pytest.raises(OSError):
        _run()
    assert Reminder.objects.filter(delivered_at__isnull=True).exists()
    monkeypatch.undo()
    _run()
    assert len(mail.outbox) == 1


def test_the_reminders_page_lists_the_users_own_reminders_with_links(users, overdue):
    _run()
    client = Client()
    client.force_login(users["anna.social"])
    page = client.get("/arenden/paminnelser/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f"/arenden/fall/{overdue.pk}/" in html and overdue.reference in html
    with translation.override("sv"):
        assert str(Reminder.Kind.REVIEW_OVERDUE.label) in html

    client.force_login(users["per.polis"])  # reminded of nothing
    html = client.get("/arenden/paminnelser/").content.decode()
    assert overdue.reference not in html


def test_old_reminders_leave_the_page(users, overdue):
    _run()
    Reminder.objects.update(date=timezone.localdate() - datetime.timedelta(days=8))
    client = Client()
    client.force_login(users["anna.social"])
    assert overdue.reference not in client.get("/arenden/paminnelser/").content.decode()


@pytest.mark.parametrize(
    ("username", "status"),
    [
        ("anna.social", 200),
        ("sara.samordnare", 200),
        ("stig.styrgrupp", 403),
        ("greta.granskare", 403),
        ("adam.admin", 403),
        (None, 302),
    ],
)
def test_who_may_open_the_reminders_page(users, username, status):
    client = Client()
    if username:
        client.force_login(users[username])
    assert client.get("/arenden/paminnelser/").status_code == status


def test_the_menu_links_the_reminders_page(users):
    client = Client()
    client.force_login(users["anna.social"])
    assert "/arenden/paminnelser/" in client.get("/arenden/fall/").content.decode()
