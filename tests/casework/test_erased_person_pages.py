"""Erased persons are shown as erased ("(raderad)") wherever they appear; no page fails.

The demo (all four programmes) is seeded, then the person of a case of each programme
(and a GVI group member) is erased with ``manage.py erase_person``. Every page that
shows them is fetched as every demo user: the start pages (case lists, inbox, queue,
archive, reminders, SSPF meetings, GVI overview, statistics) and every link on them
that leads to the erased person's case, process, tasks, meetings, group, member,
call-ins or notifications. No page answers 500; whoever could open the case before
the erasure opens it after, sees "(raderad)" and never the old name; the access log
records each reading (and each refusal) as usual.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pytest
from django.core.management import call_command
from django.test import Client

from audit.models import AccessEvent
from casework import policy
from casework.models import CaseMembership, User
from casework.selectors import get_person_details

BOTH_DATABASES = ["default", "keystore"]
pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)

ERASED = "(raderad)"
START_PAGES = (
    "/arenden/fall/",
    "/arenden/avhoppare/",
    "/arenden/sspf/",
    "/arenden/sspf/moten/",
    "/arenden/inbox/",
    "/arenden/queue/",
    "/arenden/archive/",
    "/arenden/paminnelser/",
    "/gvi/",
    "/statistik/",
    "/statistik/rapport/",
)
# Links not followed: they change things on POST and show a confirmation on GET
# (fetched for the task itself through its index and detail pages).
SKIPPED = re.compile(r"/(cancel|undo|revive|assign|unassign)/$|logga-ut")


@pytest.fixture
def seeded(demo_cases):
    """The demo with every programme's cases, committed once for the module
    (``tests.conftest.committed_demo_cases``); each test erases in its own transaction."""
    return demo_cases


def _name(users, person_id) -> str:
    """The person's name before the erasure (read as the coordinator)."""
    return get_person_details(
        user=users["sara.samordnare"], purpose="Test", person_id=person_id, fields=["name"]
    ).name


def _erase(person_id) -> None:
    with open("/dev/null", "w") as out:
        call_command("erase_person", str(person_id), reason="Begäran om radering", stdout=out)


def _links(html: str) -> set[str]:
    return {
        url
        for url in re.findall(r'href="(/[^"#?]*)', html)
        if url.startswith(("/arenden/", "/gvi/", "/statistik/")) and not SKIPPED.search(url)
    }


def _crawl(user, roots: Iterable[str], marks: Iterable[str], depth: int = 3) -> dict:
    """GET ``roots`` and, ``depth`` links deep, every link whose URL holds one of ``marks``
    (the erased person's case, process, group …) or a statistics page. URL -> response."""
    client = Client(raise_request_exception=False)
    client.force_login(user)
    marks = tuple(marks)
    fetched: dict = {}
    todo = list(roots)
    for _level in range(depth):
        found = []
        for url in todo:
            if url in fetched:
                continue
            response = client.get(url)
            fetched[url] = response
            if response.status_code == 200 and "html" in response.get("Content-Type", ""):
                found += [
                    link
                    for link in _links(response.content.decode())
                    if link.startswith("/statistik/") or any(m in link for m in marks)
                ]
        todo = found
    return fetched


def _case_marks(case) -> list[str]:
    marks = [str(case.pk)]
    process = getattr(case, "process", None)
    if process is not None:
        marks.append(f"/{process.pk}/")
    return marks


def _task_pages(case) -> list[str]:
    """The index and detail pages of every task of the case's process, open or done."""
    process = getattr(case, "process", None)
    if process is None:
        return []
    pages = []
    for task in process.task_set.all():
        names = ["index", "detail"]
        if task.finished is None and task.flow_task_type == "HUMAN":
            names.append("execute")  # the step's form, with the case summary
        pages += [task.flow_task.reverse(name, args=[process.pk, task.pk]) for name in names]
    return pages


def _check_case(users, case, *, extra_roots=(), extra_marks=()) -> dict:
    """Erase the person of ``case``; fetch every page as every user; return the crawl."""
    name = _name(users, case.person_id)
    viewers = {u for u, user in users.items() if policy.case_access(user, case)}
    assert viewers, "the case must have someone who may see it"
    last_before = AccessEvent.objects.order_by("-pk").values_list("pk", flat=True).first()
    _erase(case.person_id)
    case_url = f"/arenden/fall/{case.pk}/"
    crawled = {}
    for username, user in users.items():
        crawled[username] = _crawl(
            User.objects.get(pk=user.pk),
            [*START_PAGES, case_url, *_task_pages(case), *extra_roots],
            [*_case_marks(case), *extra_marks],
        )
    failures = [
        (username, url, response.status_code)
        for username, pages in crawled.items()
        for url, response in pages.items()
        if response.status_code >= 500
    ]
    assert not failures
    for username, pages in crawled.items():
        for url, response in pages.items():
            assert name.encode() not in response.content, (username, url)
    for username in users:
        page = crawled[username][case_url]
        if username in viewers:
            # Whoever could see the case before the erasure still can: as erased.
            assert page.status_code == 200, username
            assert ERASED in page.content.decode(), username
            # Logged as any reading: the case, the person, no field decrypted.
            consults = list(
                AccessEvent.objects.filter(
                    pk__gt=last_before,
                    object_id=str(case.pk),
                    user__username=username,
                    action="consult",
                )
            )
            assert consults, username
            assert all(event.fields == [] for event in consults), username
            assert all(event.person_id == case.person_id for event in consults), username
            assert any(event.details.get("person_erased") for event in consults), username
        else:
            assert page.status_code in (302, 403, 404), username
    # Each case-role user kept out of the case left a refusal in the log, as before.
    for username in users:
        if username in viewers or not policy.can_use_task_inbox(users[username]):
            continue
        assert AccessEvent.objects.filter(
            user__username=username,
            object_id=str(case.pk),
            action="access_denied",
            pk__gt=last_before,
        ).exists(), username
    return crawled


def _reference_listed(crawled, username: str, list_url: str, case) -> None:
    page = crawled[username][list_url]
    assert page.status_code == 200
    assert case.reference in page.content.decode()


def test_sig_case_of_an_erased_person(seeded):
    from workflows.sig.demo import SLOTS, person_id
    from workflows.sig.models import SigCase

    # Decisions pending: the police contact is on the team, the police decision is open.
    case = SigCase.objects.get(
        person_id=person_id(next(s for s in SLOTS if s.key == "decision-pending"))
    )
    team = set(CaseMembership.objects.filter(case=case).values_list("user__username", flat=True))
    assert "per.polis" in team and policy.case_access(seeded["per.polis"], case)
    crawled = _check_case(seeded, case)
    # The police contact's case list (a 500 before) and the coordinator's.
    for username in ("per.polis", "sara.samordnare", "anna.social"):
        _reference_listed(crawled, username, "/arenden/fall/", case)
    # The task pages of the case's process were reached and show the person as erased.
    task_pages = [
        (username, url)
        for username, pages in crawled.items()
        for url, response in pages.items()
        if f"/flows/sig/{case.process.pk}/" in url
        and url.endswith("/execute/")
        and response.status_code == 200
    ]
    assert task_pages
    assert any(ERASED in crawled[username][url].content.decode() for username, url in task_pages)


def test_sspf_case_of_an_erased_person(seeded):
    from workflows.sspf.demo import SLOTS
    from workflows.sspf.demo import person_id as sspf_person_id
    from workflows.sspf.models import OperationalMeeting, SspfCase

    slot = next(s for s in SLOTS if s.key == "sspf-plan")
    case = SspfCase.objects.get(person_id=sspf_person_id(slot))
    meetings = [
        str(pk)
        for pk in OperationalMeeting.objects.filter(items__case=case).values_list("pk", flat=True)
    ]
    crawled = _check_case(seeded, case, extra_marks=meetings)
    _reference_listed(crawled, "sara.samordnare", "/arenden/sspf/", case)


def test_defector_case_of_an_erased_person(seeded):
    from workflows.defector.demo import SLOTS, person_id
    from workflows.defector.models import DefectorCase

    for key in ("review", "active-protected"):
        case = DefectorCase.objects.get(person_id=person_id(next(s for s in SLOTS if s.key == key)))
        crawled = _check_case(seeded, case)
        _reference_listed(crawled, "alex.avhopp", "/arenden/avhoppare/", case)


def test_gvi_member_erased(seeded):
    from workflows.gvi import models as gvi

    # The north group's second member: at the held call-in, with a delivered notification.
    member = (
        gvi.GroupMember.objects.filter(notifications__status="delivered")
        .select_related("group")
        .first()
    )
    assert member is not None
    users = seeded
    name = _name(users, member.person_id)
    _erase(member.person_id)
    marks = [str(member.pk), str(member.group_id)]
    marks += [str(pk) for pk in member.notifications.values_list("pk", flat=True)]
    marks += [
        str(pk)
        for pk in gvi.CallIn.objects.filter(attendees__member=member).values_list("pk", flat=True)
    ]
    member_url = f"/gvi/medlemmar/{member.pk}/"
    shown = 0
    for username, user in users.items():
        pages = _crawl(user, [*START_PAGES, member_url], marks)
        for url, response in pages.items():
            assert response.status_code < 500, (username, url)
            assert name.encode() not in response.content, (username, url)
        if pages[member_url].status_code == 200:
            shown += 1
            assert ERASED in pages[member_url].content.decode(), username
            group = pages[f"/gvi/grupper/{member.group_id}/"]
            assert group.status_code == 200 and ERASED in group.content.decode(), username
            for url, response in pages.items():
                if (
                    "/underrattelser/" in url or "/call-in/" in url
                ) and response.status_code == 200:
                    assert ERASED in response.content.decode(), (username, url)
    assert shown >= 2  # the GVI coordinator and the police
