"""Who sees what of a defector case: every role before and after the hand-over, protected
identity, the police check before consent, every defector URL by role, bad input."""

from __future__ import annotations

import pytest

from audit.models import AccessEvent
from casework.models import Person
from casework.services import cases as case_services
from tests.conftest import DEMO_USERS
from tests.workflows.conftest import BOTH_DATABASES
from tests.workflows.defector.factories import (
    ADDRESS,
    PHONE,
    PURPOSE,
    assessment,
    defector_case,
    reassess_data,
)
from tests.workflows.sig.factories import PERSON_NAME
from workflows.defector import intake, services
from workflows.defector.flow import DefectorFlow
from workflows.defector.models import DefectorCase, DefectorSupportCase, Level, Status

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)

ROLES = DEMO_USERS
NO_CASE_ROLE = {"stig.styrgrupp", "greta.granskare", "dina.dataskydd", "adam.admin"}
CASE_PAGE = "workflows/defector/case_page.html"
NOTICE = "workflows/defector/handed_over.html"


def _get(client, user, url):
    client.force_login(user)
    response = client.get(url)
    template = response.templates[0].name if response.templates else None
    return response.status_code, template, response


# Before the hand-over: the team, the coordinators (police only with the consent), nobody else.
LOCAL_ACCESS = {
    "anna.social": (200, CASE_PAGE),
    "per.polis": (200, CASE_PAGE),
    "alex.avhopp": (200, CASE_PAGE),
    "maja.avhopp": (200, CASE_PAGE),
    "sara.samordnare": (404, None),
    "lisa.skola": (404, None),
    "fredrik.fritid": (404, None),
}
# After: police handlers only; the local team and coordinator keep the fact; nobody else.
HANDED_OVER_ACCESS = {
    "anna.social": (200, NOTICE),
    "per.polis": (200, CASE_PAGE),
    "alex.avhopp": (200, NOTICE),
    "maja.avhopp": (200, CASE_PAGE),
    "sara.samordnare": (404, None),
    "lisa.skola": (404, None),
    "fredrik.fritid": (404, None),
}


def _status(expected, username):
    if username in NO_CASE_ROLE:
        return 403
    return expected[username][0]


def test_access_before_and_after_the_hand_over_for_every_role(users, client):
    case = defector_case(users, "activate")
    url = f"/arenden/fall/{case.pk}/"
    for username in ROLES:
        status, template, _response = _get(client, users[username], url)
        assert status == _status(LOCAL_ACCESS, username), username
        if status == 200:
            assert template == LOCAL_ACCESS[username][1], username
    services.reassess_threat(
        user=users["per.polis"],
        case=case,
        purpose=PURPOSE,
        **assessment(Level.HIGH),
    )
    support = DefectorSupportCase.objects.get(links_in__from_case=case)
    for username in ROLES:
        status, template, response = _get(client, users[username], url)
        assert status == _status(HANDED_OVER_ACCESS, username), username
        if status == 200:
            assert template == HANDED_OVER_ACCESS[username][1], username
        if template == NOTICE:
            # The fact and the support case; nothing of the person or the threat.
            assert PERSON_NAME.encode() not in response.content
            assert b"Hot fr" not in response.content
            assert support.reference.encode() in response.content
    # Local users are refused (and logged) when they try to read or change it.
    denied = AccessEvent.objects.filter(
        action=AccessEvent.Action.ACCESS_DENIED,
        object_id=str(case.pk),
        details__reason="handed over from the local programme",
    )
    assert denied.filter(user_id=users["anna.social"].pk).exists()
    with pytest.raises(case_services.CaseDenied):
        case_services.add_action(
            user=users["anna.social"],
            case=case,
            purpose=PURPOSE,
            kind="housing",
            status="planned",
            date=case.opened_at.date(),
        )
    # The support case stays with social services.
    for username in ("anna.social", "alex.avhopp"):
        status, template, response = _get(client, users[username], f"/arenden/fall/{support.pk}/")
        assert (status, template) == (200, "workflows/defector/support_case_page.html")
        assert b"Hot fr" not in response.content
    # The case lists: the handed-over case is gone for local users, kept by police.
    status, _t, response = _get(client, users["anna.social"], "/arenden/avhoppare/")
    assert case.reference.encode() not in response.content
    assert support.reference.encode() in response.content
    status, _t, response = _get(client, users["per.polis"], "/arenden/avhoppare/")
    assert case.reference.encode() in response.content


def test_protected_identity_is_hidden_from_everyone_but_the_named_handlers(users, client):
    case = defector_case(
        users, "activate", protected=Person.ProtectedIdentity.PROTECTED_REGISTRATION
    )
    url = f"/arenden/fall/{case.pk}/"
    for username, handler in (
        ("anna.social", True),  # lead
        ("per.polis", True),  # police contact
        ("alex.avhopp", False),  # coordinator by role only
        ("maja.avhopp", False),
    ):
        status, _template, response = _get(client, users[username], url)
        assert status == 200
        content = response.content.decode()
        assert (ADDRESS in content) == handler, username
        assert (PHONE in content) == handler, username
        assert ("Vivalla/Baronbackarna" in content) == handler, username
        consult = next(
            event
            for event in AccessEvent.objects.filter(
                action=AccessEvent.Action.CONSULT,
                user_id=users[username].pk,
                object_id=str(case.pk),
            ).order_by("-id")
            if "person.name" in event.fields
        )
        assert ("person.address" in consult.fields) == handler
        assert ("person.phone" in consult.fields) == handler
    # The auditors' log review lists every access to the protected person.
    import datetime

    from django.utils import timezone

    from audit import review

    now = timezone.now()
    flagged = review.protected_identity(now - datetime.timedelta(hours=1), now)
    readers = {event.user_id for event in flagged.events}
    assert {users[name].pk for name in ("anna.social", "alex.avhopp", "maja.avhopp")} <= readers


def test_a_handler_records_protected_identity(users, client):
    case = defector_case(users, "activate")
    client.force_login(users["alex.avhopp"])
    response = client.post(
        f"/arenden/fall/{case.pk}/",
        {"_action": "protected_identity", "level": "3", "version": case.version},
    )
    assert response.status_code == 302
    case.person.refresh_from_db()
    assert case.person.protected_identity == 3
    # A police officer not on this case's team cannot (no access at all).
    with pytest.raises(case_services.CaseDenied):
        intake.set_protected_identity(user=users["lisa.skola"], case=case, purpose=PURPOSE, level=0)


def test_police_may_not_search_their_systems_before_consent(users):
    case = defector_case(users, "accept")
    with pytest.raises(case_services.CaseDenied):
        services.record_police_check(
            user=users["per.polis"], case=case, purpose=PURPOSE, note="Slagning."
        )
    assert DefectorCase.objects.get(pk=case.pk).police_checked_at is None
    # Not even a police coordinator, who may see the case by role.
    with pytest.raises(case_services.CaseDenied):
        services.record_police_check(
            user=users["maja.avhopp"], case=case, purpose=PURPOSE, note="Slagning."
        )
    assert AccessEvent.objects.filter(
        action=AccessEvent.Action.ACCESS_DENIED,
        object_id=str(case.pk),
        details__operation="police_check",
    ).exists()


def test_social_services_do_not_assess_the_threat(users):
    case = defector_case(users, "police_check")
    for username in ("anna.social", "alex.avhopp"):
        with pytest.raises(case_services.CaseDenied):
            services.assess_threat(
                user=users[username],
                case=case,
                purpose=PURPOSE,
                **assessment(),
            )


# --- Every defector URL by role ------------------------------------------------------------------


def test_the_list_and_the_referral_page_by_role(users, client):
    start = DefectorFlow.start.reverse("execute")
    for username in ROLES:
        client.force_login(users[username])
        expected = 403 if username in NO_CASE_ROLE else 200
        assert client.get("/arenden/avhoppare/").status_code == expected, username
        assert client.get(start).status_code == expected, username


def test_flow_overviews_are_for_defector_coordinators(users, client):
    for username in ROLES:
        client.force_login(users[username])
        # Not the police defector coordinator: the overviews list every case of the flow,
        # and the police may open a local case only once consent covers them (ADR 0013).
        expected = 200 if username == "alex.avhopp" else 403
        for overview in ("/arenden/flows/defector/flows/", "/arenden/flows/threatreview/flows/"):
            assert client.get(overview).status_code == expected, (overview, username)


@pytest.mark.parametrize(
    ("node", "target", "allowed"),
    [
        # The initial check is the local programme's: the police coordinator may not open
        # the case before consent covers the police (ADR 0013).
        ("check", "refer", {"alex.avhopp"}),
        ("assess_threat", "consents_given", {"per.polis"}),
        ("intake", "assess", {"alex.avhopp", "maja.avhopp"}),
    ],
)
def test_task_pages_by_role(users, client, node, target, allowed):
    case = defector_case(users, target)
    task = (
        case.processes.get(flow_class=DefectorFlow, finished__isnull=True)
        .task_set.exclude(status__in=["DONE", "CANCELED"])
        .get(flow_task=getattr(DefectorFlow, node))
    )
    for username in ROLES:
        client.force_login(users[username])
        if task.owner_id is None:
            url = task.flow_task.reverse("assign", args=[task.process_id, task.pk])
            response = client.post(url)
            task.refresh_from_db()
            ok = response.status_code == 302 and task.owner_id == users[username].pk
            if ok:
                type(task).objects.filter(pk=task.pk).update(owner=None, status="NEW")
                task.refresh_from_db()
        else:
            url = task.flow_task.reverse("execute", args=[task.process_id, task.pk])
            ok = client.get(url).status_code == 200
        assert ok == (username in allowed), (node, username)


@pytest.mark.parametrize(
    ("action", "allowed"),
    [
        ("reassess", {"per.polis", "maja.avhopp"}),
        ("close", {"anna.social", "alex.avhopp", "maja.avhopp"}),
        ("protected_identity", {"anna.social", "per.polis", "alex.avhopp", "maja.avhopp"}),
        ("lowering", set()),  # nothing pending
    ],
)
def test_case_page_actions_by_role(users, client, action, allowed):
    case = defector_case(users, "activate")
    data = {
        "reassess": reassess_data(case, Level.LOW),
        "close": {"_action": "close", "close_reason": "moved", "version": case.version},
        "protected_identity": {
            "_action": "protected_identity",
            "level": "1",
            "version": case.version,
        },
        "lowering": {"_action": "lowering", "outcome": "approve", "version": case.version},
    }[action]
    for username in ROLES:
        case.refresh_from_db()
        data["version"] = case.version
        client.force_login(users[username])
        response = client.post(f"/arenden/fall/{case.pk}/", data)
        changed = DefectorCase.objects.get(pk=case.pk).version != case.version
        assert changed == (username in allowed), (action, username, response.status_code)
        if username in NO_CASE_ROLE:
            assert response.status_code == 403
        elif username in ("sara.samordnare", "lisa.skola", "fredrik.fritid"):
            assert response.status_code == 404
        if action == "close" and changed:
            return


# --- Bad input -----------------------------------------------------------------------------------


def _post(client, user, case, data):
    client.force_login(user)
    return client.post(f"/arenden/fall/{case.pk}/", data)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"level": "extreme"}, "level"),
        ({"basis": ""}, "basis"),
        ({"valid_until": "2001-01-01"}, "valid_until"),
        ({"next_review": "not a date"}, "next_review"),
        ({"next_review": "2999-01-01"}, "next_review"),
    ],
)
def test_bad_reassessments_are_refused_with_form_errors(users, client, overrides, field):
    case = defector_case(users, "activate")
    before = case.assessments.count()
    data = {**reassess_data(case), **overrides}
    response = _post(client, users["per.polis"], case, data)
    assert response.status_code == 200
    assert field in response.context["forms"]["reassess"].errors
    assert case.assessments.count() == before
    assert DefectorCase.objects.get(pk=case.pk).version == case.version


def test_a_stale_reassessment_is_refused(users, client):
    case = defector_case(users, "activate")
    data = reassess_data(case, Level.HIGH)
    data["version"] = case.version - 1
    response = _post(client, users["per.polis"], case, data)
    assert response.status_code == 200
    assert b"Ladda om sidan" in response.content
    assert DefectorCase.objects.get(pk=case.pk).status == Status.ACTIVE


def test_other_bad_input_on_the_case_page(users, client):
    case = defector_case(users, "activate")
    for user, data, field in (
        ("alex.avhopp", {"_action": "close", "close_reason": "goals_met"}, "close_reason"),
        ("alex.avhopp", {"_action": "protected_identity", "level": "9"}, "level"),
        ("alex.avhopp", {"_action": "action", "kind": "housing", "status": "planned"}, "date"),
    ):
        data = {**data, "version": case.version}
        response = _post(client, users[user], case, data)
        assert response.status_code == 200, data
        assert field in response.context["forms"][data["_action"]].errors
    assert DefectorCase.objects.get(pk=case.pk).version == case.version
    response = _post(client, users["alex.avhopp"], case, {"_action": "nonsense"})
    assert response.status_code == 302


def test_a_bad_referral_writes_nothing(users, client):
    client.force_login(users["anna.social"])
    response = client.post(
        DefectorFlow.start.reverse("execute"),
        {"personnummer": "12345", "name": "", "area": "x", "source": "mars", "reason": ""},
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert {"personnummer", "name", "area", "source", "reason"} <= set(errors)
    assert not DefectorCase.objects.exists()
