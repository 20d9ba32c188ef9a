"""An auditor reviews a break-the-glass access: justified or not, with a comment, never the
breaker, written once; unreviewed accesses are listed and reminded (docs/adr/0029)."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone, translation

from audit.models import AccessEvent
from casework import roles
from casework.models import BreakGlassAccess, Reminder, User
from casework.services import cases as case_services
from casework.services.case_changes import CaseDenied
from tests.workflows.conftest import BOTH_DATABASES, PURPOSE
from workflows.sig.demo import Slot, build_case

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)
REASON = "Akut hot mot personen i natt, teamet nås inte."


def _auditor(username: str, organisation) -> User:
    user = User.objects.create_user(
        username, email=f"{username}@demo.invalid", organisation=organisation
    )
    user.groups.add(Group.objects.get(name=roles.AUDITOR))
    return user


@pytest.fixture
def access(demo):
    case = build_case(Slot("glass-review", 20, "refer"), index=4)
    return case_services.break_glass(user=demo["sara.samordnare"], case=case, reason=REASON)


@pytest.fixture
def breaking_auditor(demo, access):
    """An auditor who also holds a role that breaks the glass, and did so."""
    sara = demo["sara.samordnare"]
    sara.groups.add(Group.objects.get(name=roles.AUDITOR))
    return User.objects.get(pk=sara.pk)  # her permissions read anew


def _review(user, access, verdict="justified", note="Befogat: akut läge."):
    return case_services.review_break_glass(
        user=user, access=access, verdict=verdict, note=note, purpose=PURPOSE
    )


def test_another_auditor_reviews_the_access_once(demo, access):
    greta = demo["greta.granskare"]
    reviewed = _review(greta, access, verdict="not_justified", note="Inget akut läge.")
    assert (reviewed.reviewed_by, reviewed.verdict, reviewed.review_note) == (
        greta,
        BreakGlassAccess.Verdict.NOT_JUSTIFIED,
        "Inget akut läge.",
    )
    assert reviewed.reviewed_at is not None
    event = AccessEvent.objects.filter(
        action=AccessEvent.Action.CHANGE, object_id=str(access.pk)
    ).get()
    assert event.user == greta and event.details["verdict"] == "not_justified"
    # A second review, by anyone, is refused and changes nothing.
    other = _auditor("gunnar.granskare", greta.organisation)
    with pytest.raises(ValidationError):
        _review(other, access, verdict="justified")
    access.refresh_from_db()
    assert (access.reviewed_by, access.verdict) == (greta, "not_justified")


def test_the_breaker_may_not_review_their_own_access(demo, breaking_auditor, access):
    with pytest.raises(ValidationError) as refused:
        _review(breaking_auditor, access)
    assert "another auditor" in str(refused.value) or "annan granskare" in str(refused.value)
    access.refresh_from_db()
    assert access.reviewed_at is None
    denial = AccessEvent.objects.filter(
        action=AccessEvent.Action.ACCESS_DENIED, object_id=str(access.pk)
    ).get()
    assert denial.details["own_access"] is True
    # Nor a user who is no auditor.
    with pytest.raises(CaseDenied):
        _review(demo["anna.social"], access)


def test_bad_input_is_refused_with_nothing_written(demo, access):
    with pytest.raises(ValidationError) as refused:
        _review(demo["greta.granskare"], access, verdict="maybe", note="  ")
    assert set(refused.value.message_dict) == {"verdict", "review_note"}
    access.refresh_from_db()
    assert access.reviewed_at is None


def test_the_database_keeps_a_review_unchanged_and_refuses_the_breaker(demo, access):
    greta = demo["greta.granskare"]
    _review(greta, access)
    for change in ({"verdict": "not_justified"}, {"review_note": "Ändrat."}, {"reviewed_at": None}):
        with pytest.raises(DatabaseError), transaction.atomic():
            BreakGlassAccess.objects.filter(pk=access.pk).update(**change)
    # Other columns of a reviewed access may still change (nothing of the review).
    BreakGlassAccess.objects.filter(pk=access.pk).update(expires_at=timezone.now())
    fresh = case_services.break_glass(user=demo["sara.samordnare"], case=access.case, reason=REASON)
    with pytest.raises(IntegrityError), transaction.atomic():
        BreakGlassAccess.objects.filter(pk=fresh.pk).update(
            reviewed_by=fresh.user, reviewed_at=timezone.now(), verdict="justified"
        )


def test_the_pages_list_review_and_refuse(demo, client, access, breaking_auditor):
    client.force_login(demo["greta.granskare"])
    listing = client.get("/granskning/brutet-glas/")
    assert listing.status_code == 200
    assert f'data-break-glass="{access.pk}"'.encode() in listing.content
    assert access.case.reference.encode() in listing.content
    page = client.get(f"/granskning/brutet-glas/{access.pk}/")
    assert page.status_code == 200
    assert REASON.encode() in page.content  # the reason as the access log holds it
    # Bad input: Swedish errors, 400, nothing written.
    bad = client.post(f"/granskning/brutet-glas/{access.pk}/", {"verdict": "", "note": ""})
    assert bad.status_code == 400
    assert "Detta fält måste fyllas i." in bad.content.decode()
    saved = client.post(
        f"/granskning/brutet-glas/{access.pk}/", {"verdict": "justified", "note": "Befogat."}
    )
    assert saved.status_code == 302
    access.refresh_from_db()
    assert access.verdict == "justified"
    assert client.get("/granskning/brutet-glas/").content.count(b'data-reviewed="no"') == 0
    shown = client.get("/granskning/brutet-glas/?visa=alla")
    assert b'data-reviewed="yes"' in shown.content
    again = client.post(
        f"/granskning/brutet-glas/{access.pk}/", {"verdict": "not_justified", "note": "Nej."}
    )
    assert again.status_code == 400
    access.refresh_from_db()
    assert access.verdict == "justified"
    # The breaker, an auditor too, gets a form error on an access of her own.
    own = case_services.break_glass(user=breaking_auditor, case=access.case, reason=REASON)
    client.force_login(breaking_auditor)
    refused = client.post(
        f"/granskning/brutet-glas/{own.pk}/", {"verdict": "justified", "note": "Befogat."}
    )
    assert refused.status_code == 400
    assert "annan granskare" in refused.content.decode()
    # Nobody else sees the pages.
    client.force_login(demo["anna.social"])
    assert client.get(f"/granskning/brutet-glas/{access.pk}/").status_code == 403
    assert client.get("/granskning/brutet-glas/").status_code == 403


def _send() -> str:
    out = io.StringIO()
    with translation.override("en"):
        call_command("send_reminders", stdout=out)
    return out.getvalue()


def test_unreviewed_accesses_are_reminded_once_a_day_to_every_auditor_but_the_breaker(
    demo, settings, access, breaking_auditor
):
    settings.EMAIL_ENABLED = True
    greta = demo["greta.granskare"]
    gunnar = _auditor("gunnar.granskare", greta.organisation)
    Reminder.objects.all().delete()  # the alerts of the break-the-glass itself
    mail.outbox.clear()
    output = _send()
    assert "Break-the-glass access not reviewed: 2 due, 2 new reminders" in output
    reminded = Reminder.objects.filter(kind=Reminder.Kind.BREAK_GLASS_UNREVIEWED)
    assert sorted(reminded.values_list("recipient__username", flat=True)) == [
        "greta.granskare",
        "gunnar.granskare",
    ]
    assert sorted(m.to[0] for m in mail.outbox) == [greta.email, gunnar.email]
    body = mail.outbox[0].body
    assert "/granskning/paminnelser/" in body
    assert access.case.reference not in body and REASON not in body
    # The same day again: nothing new, no e-mail.
    assert "Break-the-glass access not reviewed: 2 due, 0 new reminders" in _send()
    assert len(mail.outbox) == 2
    # The auditor sees it on her reminders page, linked to the review.
    from django.test import Client

    client = Client()
    client.force_login(greta)
    page = client.get("/granskning/paminnelser/")
    assert f"/granskning/brutet-glas/{access.pk}/".encode() in page.content
    # Reviewed: no longer reminded.
    _review(greta, access)
    assert "Break-the-glass access not reviewed: 0 due, 0 new reminders" in _send()
