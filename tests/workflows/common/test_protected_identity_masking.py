"""A person with protected identity, walked through every page and API answer that can show
them, as every role: the address, phone and guardians' contact details reach only the named
handlers, the name only those with access to the case (ADR 0027). And the case worker's
search of their own cases."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AccessEvent
from casework.models import CaseMembership, Person
from casework.selectors.person_search import search_own_cases
from casework.services import person_corrections as corrections
from tests.api.conftest import Api, get_token, make_client
from tests.conftest import DEMO_USERS
from tests.workflows.conftest import BOTH_DATABASES, colleague
from tests.workflows.sig.factories import PERSON_NAME, PURPOSE, sig_case
from workflows.sig.models import Status

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)

ADDRESS = "Provgatan 1"
PHONE = "070-174 06 11"
GUARDIAN = "Vera Provsson"
GUARDIAN_PHONE = "070-555 00 02"
# The named handlers of the case (lead, police contact) and the programme's coordinator.
HANDLERS = {"anna.social", "per.polis", "sara.samordnare"}
# On the team, not named handlers: they see who the person is, not where they live.
MEMBERS = {"siv.social", "fredrik.fritid"}


@pytest.fixture
def protected(users):
    siv = colleague(users, "anna.social", "siv.social")
    users = {**users, "siv.social": siv}
    case = sig_case(
        users,
        Status.ACTIVE,
        covering=("social", "police", "leisure"),
        members=(
            ("siv.social", CaseMembership.Role.SOCIAL_WORKER),
            ("fredrik.fritid", CaseMembership.Role.LEISURE),
        ),
    )
    corrections.correct_guardian(
        user=users["anna.social"],
        case=case,
        purpose=PURPOSE,
        reason="Nytt nummer.",
        guardian_id=case.person.guardians.get().pk,
        name=GUARDIAN,
        phone=GUARDIAN_PHONE,
    )
    corrections.set_protected_identity(
        user=users["per.polis"],
        case=case,
        purpose=PURPOSE,
        level=Person.ProtectedIdentity.CONFIDENTIALITY_MARKING,
    )
    case.refresh_from_db()
    return users, case


def _pages(case) -> list[str]:
    process = getattr(case, "process", None)
    open_tasks = process.task_set.exclude(status__in=["DONE", "CANCELED"]) if process else []
    tasks = [
        task.flow_task.reverse(view, args=[task.process_id, task.pk])
        for task in open_tasks
        for view in ("index", "execute")
        if task.flow_task_type == "HUMAN"
    ]
    return [
        reverse("arenden:case", args=[case.pk]),
        reverse("arenden:record", args=[case.pk]),
        reverse("arenden:person_search") + "?q=" + PERSON_NAME.split()[0],
        reverse("arenden:person_search") + "?q=" + str(case.person.birth_year),
        reverse("arenden:inbox"),
        reverse("arenden:queue"),
        reverse("arenden:cases"),
        reverse("arenden:archive"),
        reverse("arenden:reminders"),
        reverse("statistik:index"),
        reverse("granskning:index"),
        *tasks,
    ]


def _api(users, client) -> Api:
    api_client, client_id, secret = make_client(users["anna.social"].organisation)
    response = get_token(client, client_id, secret)
    return Api(client, response.json()["access_token"], api_client)


def test_a_protected_person_leaks_nowhere(protected, client):
    users, case = protected
    api = _api(users, client)
    api_answers = {
        username: [
            api.get(f"/api/v1/cases/{case.pk}/", acting=username).content.decode(),
            api.get("/api/v1/tasks/?box=all", acting=username).content.decode(),
            api.get("/api/v1/statistics/", acting=username).content.decode(),
        ]
        for username in DEMO_USERS
    }
    problems = []
    for username in (*DEMO_USERS, "siv.social"):
        client.force_login(users[username])
        seen = [client.get(url).content.decode() for url in _pages(case)]
        seen += api_answers.get(username, [])
        everything = "\n".join(seen)
        contact = username in HANDLERS
        for value in (ADDRESS, PHONE, GUARDIAN, GUARDIAN_PHONE):
            if (value in everything) != contact:
                problems.append((username, value, value in everything))
        if (PERSON_NAME in everything) != (username in HANDLERS | MEMBERS):
            problems.append((username, "name", PERSON_NAME in everything))
    assert not problems


def test_the_handlers_see_it_and_the_reading_says_so(protected, client):
    users, case = protected
    for username, sees in (("anna.social", True), ("siv.social", False)):
        client.force_login(users[username])
        content = client.get(reverse("arenden:case", args=[case.pk])).content.decode()
        assert (ADDRESS in content) == sees
        assert "Sekretessmarkering" in content
        consult = AccessEvent.objects.filter(
            user_id=users[username].pk,
            action=AccessEvent.Action.CONSULT,
            object_id=str(case.pk),
        ).latest("id")
        assert ("person.address" in consult.fields) == sees
        assert ("guardian.name" in consult.fields) == sees


# --- Own-case search ------------------------------------------------------------------------


def test_the_search_finds_only_own_cases_and_logs(users):
    anna, sara = users["anna.social"], users["sara.samordnare"]
    mine = sig_case(users, Status.ACTIVE)
    other_colleague = colleague(users, "anna.social", "siv.social")
    for text in ("testa prov", "  TESTA   provsson ", str(_born(users, mine))):
        found = search_own_cases(user=anna, purpose=PURPOSE, text=text)
        assert [row.case.pk for row in found] == [mine.pk]
        assert found[0].name == PERSON_NAME
    # Not on the team: the coordinator of the programme, a colleague - nothing.
    for user in (sara, other_colleague, users["lisa.skola"]):
        assert search_own_cases(user=user, purpose=PURPOSE, text="Testa") == []
    events = list(
        AccessEvent.objects.filter(user_id=anna.pk, details__lookup="own_cases").order_by("id")
    )
    searches = [e for e in events if not e.object_id]
    shown = [e for e in events if e.object_id == str(mine.pk)]
    assert len(searches) == 3 and len(shown) == 3
    assert searches[0].details["by"] == "name" and searches[-1].details["by"] == "birth_date"
    assert searches[0].details["cases_compared"] == [str(mine.pk)]
    assert set(shown[0].fields) == {"person.name", "person.birth_date"}
    # The typed text is never in the log.
    assert all("testa" not in str(e.details).lower() for e in events)


def _born(users, case):
    from casework.selectors import get_person_details

    return get_person_details(
        user=users["anna.social"], purpose=PURPOSE, person_id=case.person_id, fields=["birth_date"]
    ).birth_date


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a", "Ange minst 2 bokstäver"),
        ("2001-13-45", "Ange ett födelsedatum"),
        ("", "Detta fält måste fyllas i."),
    ],
)
def test_bad_search_input_gives_swedish_errors(users, client, text, message):
    client.force_login(users["anna.social"])
    response = client.get(reverse("arenden:person_search"), {"q": text})
    assert response.status_code == 400
    assert message in response.content.decode()


@pytest.mark.parametrize("username", ["stig.styrgrupp", "greta.granskare", "adam.admin"])
def test_roles_without_cases_do_not_search(users, client, username):
    client.force_login(users[username])
    assert client.get(reverse("arenden:person_search"), {"q": "Testa"}).status_code == 403
