"""``seed_demo`` creates SIG cases in every state, through the services and the flow."""

from __future__ import annotations

import pytest
from django.utils import timezone
from viewflow.workflow.models import Task
from viewflow.workflow.status import PROCESS, STATUS

from audit.models import AccessEvent
from casework.models import Case, CaseEvent, Guardian, Person
from casework.selectors.cases import list_cases
from casework.selectors.persons import person_age
from tests.conftest import DEMO_CASES, committed_seed, seed_demo
from tests.workflows.conftest import BOTH_DATABASES
from workflows.sig.demo import SLOTS, person_id
from workflows.sig.flow import SigFlow
from workflows.sig.models import SigCase, SigProcess, Status

pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)


@pytest.fixture(scope="class")
def committed_demo_cases(django_db_setup, django_db_blocker):
    """The demo with its cases, committed once for ``TestSeeded`` (a class, so that
    ``test_off_in_tests_unless_asked`` never runs on top of it): ``tests.conftest``'s
    fixture of that name, at class scope (the same seed, copied in after a worker's first)."""
    with committed_seed(django_db_blocker, seed_demo, copy_as=DEMO_CASES, DEMO_SIG_CASES=True):
        yield


@pytest.fixture
def seeded(demo_cases):
    return demo_cases


def _case(slot_key: str) -> SigCase:
    slot = next(s for s in SLOTS if s.key == slot_key)
    return SigCase.objects.get(person_id=person_id(slot))


def _open_tasks(case: SigCase):
    process = SigProcess.objects.get(case=case)
    return process.task_set.exclude(status__in=[STATUS.DONE, STATUS.CANCELED])


def test_off_in_tests_unless_asked(demo):
    assert not SigCase.objects.exists()


def _every_state_is_present():
    statuses = set(SigCase.objects.values_list("status", flat=True))
    assert statuses == set(Status.values) - {Status.CONSENT_REFUSED}
    # consent_refused is passed through on the way to closed (the consent step closes at once).
    refused = _case("consent-refused")
    assert refused.status == Status.CLOSED
    assert CaseEvent.objects.filter(case=refused, to_state=Status.CONSENT_REFUSED).exists()
    reasons = set(
        SigCase.objects.filter(status=Status.CLOSED).values_list("close_reason", flat=True)
    )
    assert reasons == {
        Case.CloseReason.NOT_ELIGIBLE,
        Case.CloseReason.CONSENT_REFUSED,
        Case.CloseReason.NOT_STARTED,
        Case.CloseReason.GOALS_MET,
        Case.CloseReason.ENDED_BY_PERSON,
        Case.CloseReason.CONSENT_WITHDRAWN,
        Case.CloseReason.MOVED,
    }
    # Every case has its process; a closed case's process is finished.
    assert SigProcess.objects.filter(case__isnull=False).count() == len(SLOTS)
    for case in SigCase.objects.filter(status=Status.CLOSED):
        process = SigProcess.objects.get(case=case)
        assert process.finished is not None
        assert process.status in (PROCESS.DONE, PROCESS.CANCELED)
        assert not _open_tasks(case).exists()


def _persons_are_of_age_with_guardians_under_18():
    today = timezone.localdate()
    before_consent = {Status.REFERRED, Status.SCREENING}
    minors = 0
    for case in SigCase.objects.select_related("person"):
        age = person_age(case.person, on=today)
        assert 15 <= age <= 25
        if age < 18 and case.status not in before_consent:
            # Guardians are registered at the consent step, as the consent view does.
            minors += 1
            assert Guardian.objects.filter(person=case.person).exists()
    assert minors >= 4


def _tasks_sit_in_the_right_inboxes(seeded):
    """The querysets behind viewflow's inbox and queue pages."""
    anna, per, sara = seeded["anna.social"], seeded["per.polis"], seeded["sara.samordnare"]
    flows = [SigFlow]

    def inbox(user):
        return {(t.process.coerced.case_id, t.flow_task) for t in Task.objects.inbox(flows, user)}

    def queue(user):
        return {(t.process.coerced.case_id, t.flow_task) for t in Task.objects.queue(flows, user)}

    assert (_case("referred").pk, SigFlow.screen) in queue(sara)
    assert (_case("screening").pk, SigFlow.screen) in inbox(sara)
    assert (_case("plan-for-approval").pk, SigFlow.approve) in queue(sara)
    assert (_case("consent-pending").pk, SigFlow.consent) in inbox(anna)
    assert (_case("planning").pk, SigFlow.draft_plan) in inbox(anna)
    assert (_case("review-overdue").pk, SigFlow.follow_up) in inbox(anna)
    assert (_case("follow-up").pk, SigFlow.follow_up) in inbox(anna)
    assert (_case("decision-pending").pk, SigFlow.decide_police) in inbox(per)
    # Nobody else's inbox holds them.
    assert not queue(anna) and not queue(per)
    assert {task for _case_id, task in inbox(per)} == {SigFlow.decide_police}

    # An active case waits for its review date on the flow's timer.
    active = _case("active")
    (timer,) = _open_tasks(active)
    assert timer.flow_task == SigFlow.wait_for_review
    assert timer.status == STATUS.SCHEDULED
    assert timezone.localtime(timer.scheduled).date() == active.review_date > timezone.localdate()

    # The review that has come is overdue on the case page too.
    overdue = _case("review-overdue")
    assert overdue.status == Status.ACTIVE and overdue.review_date < timezone.localdate()


class TestSeeded:
    """One committed seed of the demo with its cases for the class; each test reads it (or
    seeds again) in its own rolled-back transaction."""

    def test_every_state_with_its_tasks_in_the_right_inboxes(self, seeded):
        """One seeding, several looks (seeding takes a few seconds)."""
        _every_state_is_present()
        _persons_are_of_age_with_guardians_under_18()
        _tasks_sit_in_the_right_inboxes(seeded)

    def test_seed_demo_twice_adds_nothing(self, seeded):
        counts = (
            Person.objects.count(),
            SigCase.objects.count(),
            Task.objects.count(),
            CaseEvent.objects.count(),
        )
        seed_demo()
        assert (
            Person.objects.count(),
            SigCase.objects.count(),
            Task.objects.count(),
            CaseEvent.objects.count(),
        ) == counts

    def test_the_coordinator_sees_every_case_police_what_consent_covers(self, seeded, client):
        sara = seeded["sara.samordnare"]
        assert len(list_cases(user=sara, model=SigCase)) == len(SLOTS)
        client.force_login(sara)
        for case in SigCase.objects.all():
            assert client.get(f"/arenden/fall/{case.pk}/").status_code == 200
        client.force_login(seeded["per.polis"])
        assert client.get(f"/arenden/fall/{_case('active').pk}/").status_code == 200
        assert client.get(f"/arenden/fall/{_case('consent-withdrawn').pk}/").status_code == 404
        assert AccessEvent.objects.filter(action="disclose", user=seeded["per.polis"]).exists()

    def test_the_menu_counts_are_the_task_lists_inbox_and_queue(self, seeded, client):
        """The side menu reads both counts in one query; they are exactly the inbox's (viewflow's)
        and the queue's (``casework.policy.task_queue``)."""
        from casework.menu_counts import MenuCounts
        from casework.views import CaseworkApp, user_queue
        from config.urls import site

        app = next(app for app in site.viewsets if isinstance(app, CaseworkApp))
        flows = app.flow_classes
        seen = set()
        for username in (
            "anna.social",
            "per.polis",
            "sara.samordnare",
            "alex.avhopp",
            "lisa.skola",
        ):
            user = seeded[username]
            counts = MenuCounts(flows, user)
            inbox = Task.objects.inbox(flows, user).count()
            queue = user_queue(flows, user).count()
            assert (counts.inbox, counts.queue) == (inbox, queue), username
            seen.add((inbox > 0, queue > 0))
            # And the menu shows them.
            client.force_login(user)
            page = client.get("/arenden/paminnelser/").content.decode()
            assert f'<span class="mdc-list-item__meta">{inbox}</span>' in page
            assert f'<span class="mdc-list-item__meta">{queue}</span>' in page
        assert (True, True) in seen or {(True, False), (False, True)} <= seen

    def test_the_task_lists_read_a_page_of_tasks_in_a_few_queries(self, seeded, client):
        """Each flow's processes and subjects are read once for the shown page (one query a
        flow), not in one query joining every flow's tables, nor once a row."""
        from django.db import connections
        from django.test.utils import CaptureQueriesContext

        from casework.views import CaseworkApp, user_queue
        from config.urls import site

        app = next(app for app in site.viewsets if isinstance(app, CaseworkApp))
        sara = seeded["sara.samordnare"]
        client.force_login(sara)
        queue = user_queue(app.flow_classes, sara)
        shown = list(queue.order_by("-created", "-pk")[:25])
        assert len(shown) > 5
        client.get("/arenden/queue/")  # warm the per-process caches
        with CaptureQueriesContext(connections["default"]) as queries:
            page = client.get("/arenden/queue/").content.decode()
        flows = {task.process.flow_class for task in shown}
        # +2: the new, unowned tasks of steps whose queue is decided per task (a team role, a
        # step's rule: ``casework.policy.task_queue``), read once for the list and once for
        # the menu's count — a fixed number, never a query a row.
        assert len(queries.captured_queries) <= 12 + 2 + len(flows), "\n".join(
            q["sql"][:300] for q in queries.captured_queries
        )
        for task in shown:
            case = getattr(task.process.coerced, "case", None)
            if case is not None:
                assert case.reference in page

    def test_the_task_lists_filter_drawer_offers_what_viewflows_did(self, seeded):
        """``casework.views.TaskListFilter`` reads the drawer's choices and the list's
        length in one statement: the same processes (labelled and ordered as viewflow's
        model choice field lists them), the same steps and the same count as viewflow's
        ``FlowUserTaskListFilter`` and the paginator's ``count()``."""
        from django.db import connections
        from django.test.utils import CaptureQueriesContext
        from viewflow.workflow.flow.views.filters import FlowUserTaskListFilter

        from casework.views import CaseworkApp, TaskListFilter, user_inbox, user_queue
        from config.urls import site

        flows = next(app for app in site.viewsets if isinstance(app, CaseworkApp)).flow_classes
        seen = 0
        for username in ("anna.social", "sara.samordnare", "alex.avhopp", "lisa.skola"):
            user = seeded[username]
            for tasks in (user_inbox(flows, user), user_queue(flows, user)):
                tasks = tasks.select_related("process", "owner").order_by("-created", "-pk")
                theirs = FlowUserTaskListFilter(queryset=tasks)
                with CaptureQueriesContext(connections["default"]) as queries:
                    ours = TaskListFilter(queryset=tasks)
                assert len(queries.captured_queries) == 1
                for name in ("process", "flow_task"):
                    expected = theirs.form.fields[name].choices
                    got = ours.form.fields[name].choices
                    assert [(str(v), str(label)) for v, label in got] == [
                        (str(v), str(label)) for v, label in expected
                    ], (username, name)
                assert ours.unfiltered_count == tasks.count()
                seen += ours.unfiltered_count
        assert seen > 10

    def test_a_filtered_task_list_counts_what_the_filter_keeps(self, seeded, client):
        """The drawer's count serves the paginator only while no filter narrows the list."""
        from viewflow.workflow.fields import get_task_ref

        from casework.views import CaseworkApp, user_inbox
        from config.urls import site

        flows = next(app for app in site.viewsets if isinstance(app, CaseworkApp)).flow_classes
        user = seeded["anna.social"]
        tasks = user_inbox(flows, user)
        steps = {task.flow_task for task in tasks}
        assert len(steps) > 1
        step = next(iter(steps))
        client.force_login(user)
        whole = client.get("/arenden/inbox/")
        assert whole.context["paginator"].count == tasks.count()
        ref = get_task_ref(step)
        narrowed = client.get("/arenden/inbox/", {"flow_task": ref})
        assert narrowed.context["paginator"].count == tasks.filter(flow_task=step).count()
        assert narrowed.context["paginator"].count < tasks.count()
        # A process not among the list's tasks is refused, as viewflow's filter refused it.
        other = Task.objects.exclude(process__in=tasks.values("process")).first()
        refused = client.get("/arenden/inbox/", {"process": other.process_id})
        assert refused.context["view"].filterset.errors["process"]
        assert refused.context["paginator"].count == tasks.count()
