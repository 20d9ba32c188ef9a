"""SIG end to end through the real views: referral to active, then consent withdrawn."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from audit.models import AccessEvent
from casework.models import Case, Consent, Organisation
from tests.workflows.conftest import BOTH_DATABASES, born_years_ago, personnummer
from workflows.sig.flow import SigFlow
from workflows.sig.models import SigCase, SigProcess, Status

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)


def _errors(response) -> str:
    """The form errors and banners of a page (for assertion messages)."""
    import re

    html = response.content.decode()
    found = re.findall(
        r'class="(?:errorlist|vf-form__error|samverkan-banner[^"]*)"[^>]*>(.*?)</', html, re.S
    )
    return " | ".join(text.strip() for text in found) or html[:500]


def _task(case, name):
    process = SigProcess.objects.get(case=case)
    return process.task_set.exclude(status__in=["DONE", "CANCELED"]).get(
        flow_task=getattr(SigFlow, name)
    )


def _execute(client, user, task, data, sig_url):
    client.force_login(user)
    if task.owner_id is None:
        response = client.post(sig_url("assign", task))
        assert response.status_code == 302, response
        task.refresh_from_db()
    return client.post(sig_url("execute", task), data)


def _refer(client, user, *, years=16):
    client.force_login(user)
    response = client.post(
        SigFlow.start.reverse("execute"),
        {
            "personnummer": personnummer(born_years_ago(years)),
            "name": "Testa Provsson",
            "area": "vivalla_baronbackarna",
            "phone": "070-174 06 11",
            "address": "Provgatan 1",
            "reason": "Orosanmälan: umgås med äldre kriminella.",
        },
    )
    # The receipt: what was typed and the case number; the referrer is not on the team.
    assert response.status_code == 200, _errors(response)
    assert response.templates[0].name == "workflows/referral_receipt.html"
    case = SigCase.objects.get()
    assert case.reference in response.content.decode()
    assert not case.memberships.exists()
    return case


def test_sig_from_referral_to_active_and_consent_withdrawal(client, users, sig_url):
    anna, sara, per = users["anna.social"], users["sara.samordnare"], users["per.polis"]
    case = _refer(client, anna)
    assert case.status == Status.REFERRED
    assert case.reference.startswith("SIG-")

    # Screening: the coordinator takes it up, forms the team, accepts.
    task = _task(case, "screen")
    response = _execute(client, sara, task, {"_action": "begin", "version": case.version}, sig_url)
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.status == Status.SCREENING
    task = _task(case, "screen")
    response = _execute(
        client,
        sara,
        task,
        {
            "_action": "screen",
            "version": case.version,
            "outcome": "accept",
            "lead": anna.pk,
            "police_contact": per.pk,
            "note": "Uppfyller kriterierna.",
        },
        sig_url,
    )
    assert response.status_code == 302, _errors(response)
    case.refresh_from_db()
    assert case.status == Status.CONSENT_PENDING

    # Consent: a guardian (the person is 16), then both consents, covering police.
    task = _task(case, "consent")
    orgs = [case.owner_organisation_id, per.organisation_id]
    response = _execute(
        client,
        anna,
        task,
        {"_action": "guardian", "version": case.version, "guardian_name": "Vera Provsson"},
        sig_url,
    )
    assert response.status_code == 302
    case.refresh_from_db()
    guardian = case.person.guardians.get()
    for giver, extra in (("self", {}), ("guardian", {"guardian": str(guardian.pk)})):
        response = client.post(
            sig_url("execute", task),
            {
                "_action": "consent",
                "version": case.version,
                "giver": giver,
                "decision": "given",
                "form": "written",
                "organisations": orgs,
                "purposes": ["coordination", "hand_over"],
                **extra,
            },
        )
        assert response.status_code == 302, _errors(response)
        case.refresh_from_db()
    response = client.post(
        sig_url("execute", task), {"_action": "complete", "version": case.version}
    )
    assert response.status_code == 302, _errors(response)
    case.refresh_from_db()
    assert case.status == Status.DECISION_PENDING

    # Decisions by both agencies.
    response = _execute(
        client,
        anna,
        _task(case, "decide_social"),
        {"_action": "decide", "version": case.version, "decision": "start"},
        sig_url,
    )
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.status == Status.DECISION_PENDING
    response = _execute(
        client,
        per,
        _task(case, "decide_police"),
        {"_action": "decide", "version": case.version, "decision": "start"},
        sig_url,
    )
    assert response.status_code == 302, _errors(response)
    case.refresh_from_db()
    assert case.status == Status.PLANNING

    # Plan: one action per agency, the plan text and a review date.
    task = _task(case, "draft_plan")
    police = Organisation.objects.get(kind="police")
    social = case.owner_organisation
    today = timezone.localdate()
    for org in (social, police):
        response = _execute(
            client,
            anna,
            task,
            {
                "_action": "action",
                "version": case.version,
                "kind": "support_talks",
                "organisation": org.pk,
                "status": "planned",
                "date": today.isoformat(),
                "visibility": "team",
            },
            sig_url,
        )
        assert response.status_code == 302, _errors(response)
        case.refresh_from_db()
    review = today + datetime.timedelta(days=60)
    response = client.post(
        sig_url("execute", task),
        {
            "_action": "plan",
            "version": case.version,
            "plan": "Mål: skolgång.",
            "review_date": review.isoformat(),
        },
    )
    assert response.status_code == 302, _errors(response)
    case.refresh_from_db()

    # Approval by the coordinator: active.
    response = _execute(
        client,
        sara,
        _task(case, "approve"),
        {"_action": "review", "version": case.version, "outcome": "approve"},
        sig_url,
    )
    assert response.status_code == 302, _errors(response)
    case.refresh_from_db()
    assert case.status == Status.ACTIVE

    # Police add an action from the case page, and can read the case.
    client.force_login(per)
    page = f"/arenden/fall/{case.pk}/"
    assert client.get(page).status_code == 200
    response = client.post(
        page,
        {
            "_action": "action",
            "version": case.version,
            "kind": "police_talk",
            "status": "done",
            "date": today.isoformat(),
            "visibility": "team",
            "note": "Samtal på stationen.",
        },
    )
    assert response.status_code == 302, _errors(response)
    assert AccessEvent.objects.filter(action="disclose", user=per).exists()

    # The person withdraws consent: the case closes and police lose access at once.
    client.force_login(anna)
    own = case.consents.get(giver=Consent.Giver.SELF)
    response = client.post(page, {"_action": "withdraw", "consent": str(own.pk)})
    assert response.status_code == 302, _errors(response)
    case.refresh_from_db()
    assert case.status == Status.CLOSED
    assert case.close_reason == Case.CloseReason.CONSENT_WITHDRAWN
    process = SigProcess.objects.get(case=case)
    assert (
        not process.task_set.exclude(status__in=["DONE", "CANCELED"])
        .filter(flow_task_type="HUMAN")
        .exists()
    )
    client.force_login(per)
    assert client.get(page).status_code == 404
    assert AccessEvent.objects.filter(action="access_denied", user=per).exists()
