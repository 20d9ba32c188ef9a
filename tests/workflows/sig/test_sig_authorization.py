"""The authorisation matrix of SIG: every SIG page by every role → the expected answer.

Columns are the roles: anonymous, a user with no role, the demo users, and
``bo.social`` — a social worker of the case's own office who is *not* on its
team. Cells:

* ``200``, ``403``, ``404`` — the status code;
* ``LOGIN`` — a redirect to the login page (anonymous);
* ``EXE``, ``ASG``, ``DET`` — viewflow's task index redirecting to
  what this user may do with the task; a user who may not see the task's case
  gets 403 there (issue 14: viewflow mounted the index without a check). viewflow's
  cancel pages are not mounted at all (``test_viewflow_pages.py``).

The case is walked through the flow's own views (``FlowDriver``) to each
state, with anna.social as lead, per.polis as police contact officer and
sara.samordnare coordinating; the consents cover social services and police.
Nobody but those three ever gets the person's name in a response.

The POSTs of the case page are in a transactional test at the end: a refusal
there happens inside the view's transaction, and its access-log event goes out
on the separate ``audit`` connection, which needs committed users to refer to
(docs/adr/0005-audit-log.md).
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import AccessEvent
from casework.models import Consent, LegalBasis, User
from casework.services.cases import withdraw_consent
from tests.conftest import COMMITTED_DB
from tests.workflows.conftest import BOTH_DATABASES, colleague
from tests.workflows.sig.factories import (
    PERSON_NAME,
    FlowDriver,
    record_full_consent,
    record_statute,
    sig_case,
)
from workflows.sig.flow import SigFlow
from workflows.sig.models import Status

ROLES = (
    "anonymous",
    "no_role",
    "anna.social",
    "bo.social",
    "per.polis",
    "sara.samordnare",
    "alex.avhopp",
    "lisa.skola",
    "fredrik.fritid",
    "stig.styrgrupp",
    "greta.granskare",
    "adam.admin",
)
# Who may ever see the person of the matrix's case (lead, police contact with
# consent, coordinator). The name must not appear in any other response.
MAY_SEE_THE_PERSON = {"anna.social", "per.polis", "sara.samordnare"}

LOGIN, HOME = "login", "home"
EXE, ASG, DET = "→execute", "→assign", "→detail"
L = LOGIN

# fmt: off
#                       anon  nrol  anna    bo   per  sara  alex  lisa  fred  stig  gret  adam
START_PAGES = {
    "case list":       (   L,  403,  200,  200,  200,  200,  200,  200,  200,  403,  403,  403),
    "new referral":    (   L,  403,  200,  200,  200,  200,  200,  200,  200,  403,  403,  403),
    "break the glass": (   L,  403,  403,  403,  200,  200,  200,  403,  403,  403,  403,  403),
    "inbox":           (   L,  403,  200,  200,  200,  200,  200,  200,  200,  403,  403,  403),
    "queue":           (   L,  403,  200,  200,  200,  200,  200,  200,  200,  403,  403,  403),
    "archive":         (   L,  403,  200,  200,  200,  200,  200,  200,  200,  403,  403,  403),
    "flow dashboard":  (   L,  403,  403,  403,  403,  200,  403,  403,  403,  403,  403,  403),
    "process list":    (   L,  403,  403,  403,  403,  200,  403,  403,  403,  403,  403,  403),
    "task list":       (   L,  403,  403,  403,  403,  200,  403,  403,  403,  403,  403,  403),
    "flow chart":      (   L,  403,  200,  200,  200,  200,  200,  200,  200,  403,  403,  403),
}

# Before consent the police contact officer is on the team but may not see the case.
WITHOUT_CONSENT = {
    "case page":       (   L,  403,  200,  404,  404,  200,  404,  404,  404,  403,  403,  403),
    "process page":    (   L,  403,  200,  403,  403,  200,  403,  403,  403,  403,  403,  403),
    "process chart":   (   L,  403,  200,  403,  403,  200,  403,  403,  403,  403,  403,  403),
}
# Before screening the referrer (anna.social) is on no team: she sees nothing (ADR 0012).
REFERRED = {
    "case page":       (   L,  403,  404,  404,  404,  200,  404,  404,  404,  403,  403,  403),
    "process page":    (   L,  403,  403,  403,  403,  200,  403,  403,  403,  403,  403,  403),
    "process chart":   (   L,  403,  403,  403,  403,  200,  403,  403,  403,  403,  403,  403),
}
WITH_CONSENT = {
    "case page":       (   L,  403,  200,  404,  200,  200,  404,  404,  404,  403,  403,  403),
    "process page":    (   L,  403,  200,  403,  200,  200,  403,  403,  403,  403,  403,  403),
    "process chart":   (   L,  403,  200,  403,  200,  200,  403,  403,  403,  403,  403,  403),
}


def task(index, detail, assign, execute, post):
    return {"index": index, "detail": detail, "assign": assign, "execute": execute,
            "POST execute": post}


#             anon  nrol  anna    bo   per  sara  alex  lisa  fred  stig  gret  adam
# A task the coordinators' queue offers (no owner yet; the referrer sees nothing of it).
QUEUED_FOR_COORDINATORS = task(
    index=   (   L,  403,  403,  403,  403,  ASG,  403,  403,  403,  403,  403,  403),
    detail=  (   L,  403,  403,  403,  403,  200,  403,  403,  403,  403,  403,  403),
    assign=  (   L,  403,  403,  403,  403,  200,  403,  403,  403,  403,  403,  403),
    execute= (   L,  403,  403,  403,  403,  403,  403,  403,  403,  403,  403,  403),
    post=    (   L,  403,  403,  403,  403,  403,  403,  403,  403,  403,  403,  403),
)
# The same task once the coordinator has taken it (before screening: the referrer and the
# police see nothing).
TAKEN_BY_COORDINATOR = task(
    index=   (   L,  403,  403,  403,  403,  EXE,  403,  403,  403,  403,  403,  403),
    detail=  (   L,  403,  403,  403,  403,  200,  403,  403,  403,  403,  403,  403),
    assign=  (   L,  403,  403,  403,  403,  403,  403,  403,  403,  403,  403,  403),
    execute= (   L,  403,  403,  403,  403,  200,  403,  403,  403,  403,  403,  403),
    post=    (   L,  403,  403,  403,  403,  EXE,  403,  403,  403,  403,  403,  403),
)
# Assigned to the lead social worker, before consent.
LEADS_BEFORE_CONSENT = task(
    index=   (   L,  403,  EXE,  403,  403,  DET,  403,  403,  403,  403,  403,  403),
    detail=  (   L,  403,  200,  403,  403,  200,  403,  403,  403,  403,  403,  403),
    assign=  (   L,  403,  403,  403,  403,  403,  403,  403,  403,  403,  403,  403),
    execute= (   L,  403,  200,  403,  403,  403,  403,  403,  403,  403,  403,  403),
    post=    (   L,  403,  EXE,  403,  403,  403,  403,  403,  403,  403,  403,  403),
)
# Assigned to the lead social worker, with consent covering the police.
LEADS = task(
    index=   (   L,  403,  EXE,  403,  DET,  DET,  403,  403,  403,  403,  403,  403),
    detail=  (   L,  403,  200,  403,  200,  200,  403,  403,  403,  403,  403,  403),
    assign=  (   L,  403,  403,  403,  403,  403,  403,  403,  403,  403,  403,  403),
    execute= (   L,  403,  200,  403,  403,  403,  403,  403,  403,  403,  403,  403),
    post=    (   L,  403,  EXE,  403,  403,  403,  403,  403,  403,  403,  403,  403),
)
# Assigned to the police contact officer.
POLICE_DECIDES = task(
    index=   (   L,  403,  DET,  403,  EXE,  DET,  403,  403,  403,  403,  403,  403),
    detail=  (   L,  403,  200,  403,  200,  200,  403,  403,  403,  403,  403,  403),
    assign=  (   L,  403,  403,  403,  403,  403,  403,  403,  403,  403,  403,  403),
    execute= (   L,  403,  403,  403,  200,  403,  403,  403,  403,  403,  403,  403),
    post=    (   L,  403,  403,  403,  EXE,  403,  403,  403,  403,  403,  403,  403),
)
# The plan, waiting in the coordinators' queue for approval.
APPROVAL_QUEUED = task(
    index=   (   L,  403,  DET,  403,  DET,  ASG,  403,  403,  403,  403,  403,  403),
    detail=  (   L,  403,  200,  403,  200,  200,  403,  403,  403,  403,  403,  403),
    assign=  (   L,  403,  403,  403,  403,  200,  403,  403,  403,  403,  403,  403),
    execute= (   L,  403,  403,  403,  403,  403,  403,  403,  403,  403,  403,  403),
    post=    (   L,  403,  403,  403,  403,  403,  403,  403,  403,  403,  403,  403),
)
# fmt: on

# stop of the FlowDriver → (case and process rows, {flow node: task rows})
MATRIX = {
    "screen:new": (REFERRED, {"screen": QUEUED_FOR_COORDINATORS}),
    "screen": (REFERRED, {"screen": TAKEN_BY_COORDINATOR}),
    "consent": (WITHOUT_CONSENT, {"consent": LEADS_BEFORE_CONSENT}),
    "decide": (WITH_CONSENT, {"decide_social": LEADS, "decide_police": POLICE_DECIDES}),
    "draft_plan": (WITH_CONSENT, {"draft_plan": LEADS}),
    "approve": (WITH_CONSENT, {"approve": APPROVAL_QUEUED}),
    "follow_up": (WITH_CONSENT, {"follow_up": LEADS}),
    "follow_up:begun": (WITH_CONSENT, {"follow_up": LEADS}),
}
STATES = {
    "screen:new": Status.REFERRED,
    "screen": Status.SCREENING,
    "consent": Status.CONSENT_PENDING,
    "decide": Status.DECISION_PENDING,
    "draft_plan": Status.PLANNING,
    "approve": Status.PLANNING,
    "follow_up": Status.ACTIVE,
    "follow_up:begun": Status.FOLLOW_UP,
}


@pytest.fixture
def people(users):
    """The demo users, a social worker off the team and a user with no role."""
    people = {**users, "bo.social": colleague(users, "anna.social", "bo.social")}
    people["no_role"] = User.objects.create(
        username="utan.roll", organisation=users["anna.social"].organisation
    )
    return people


class Browser:
    """One logged-in client per role; answers reduced to a matrix cell."""

    def __init__(self, people):
        self.people = people
        self.clients: dict[str, Client] = {}

    def client(self, role: str) -> Client:
        if role not in self.clients:
            self.clients[role] = client = Client()
            if role != "anonymous":
                client.force_login(self.people[role])
        return self.clients[role]

    def cell(self, role: str, url: str, *, post: bool = False):
        client = self.client(role)
        response = client.post(url, {}) if post else client.get(url)
        body = response.content.decode()
        if role not in MAY_SEE_THE_PERSON:
            assert PERSON_NAME not in body, (role, url)
            assert "Provgatan" not in body, (role, url)
        if response.status_code != 302:
            return response.status_code
        location = response["Location"]
        if location.startswith("/konto/logga-in/"):
            return LOGIN
        if location == "/":
            return HOME
        for name, cell in (("execute", EXE), ("assign", ASG), ("detail", DET)):
            if location.rstrip("/").endswith(name):
                return cell
        return f"302 {location}"


def check(browser: Browser, rows: dict, urls: dict) -> None:
    """Every row by every role; all differences reported at once."""
    wrong = []
    for row, expected in rows.items():
        assert len(expected) == len(ROLES), row
        post = row.startswith("POST ")
        for role, cell in zip(ROLES, expected, strict=True):
            got = browser.cell(role, urls[row], post=post)
            if got != cell:
                wrong.append(f"{row} / {role}: expected {cell}, got {got}")
    assert not wrong, "\n".join(wrong)


pytestmark = pytest.mark.django_db(databases=BOTH_DATABASES)


def test_start_pages(people):
    """Pages that belong to no case (with a case in the system, whose name never shows)."""
    FlowDriver(people).build("decide")
    urls = {
        "case list": "/arenden/fall/",
        "new referral": SigFlow.start.reverse("execute"),
        "break the glass": "/arenden/bryt-glaset/",
        "inbox": "/arenden/inbox/",
        "queue": "/arenden/queue/",
        "archive": "/arenden/archive/",
        "flow dashboard": "/arenden/flows/sig/",
        "process list": "/arenden/flows/sig/flows/",
        "task list": "/arenden/flows/sig/tasks/",
        "flow chart": "/arenden/flows/sig/chart/",
    }
    check(Browser(people), START_PAGES, urls)


@pytest.mark.parametrize("stop", list(MATRIX))
def test_case_and_task_pages(people, stop):
    flow_case = FlowDriver(people).build(stop)
    assert flow_case.case.status == STATES[stop]
    case_rows, task_rows = MATRIX[stop]
    process = flow_case.process
    urls = {
        "case page": f"/arenden/fall/{flow_case.case.pk}/",
        "process page": f"/arenden/flows/sig/{process.pk}/",
        "process chart": f"/arenden/flows/sig/{process.pk}/chart/",
    }
    rows = dict(case_rows)
    for node, node_rows in task_rows.items():
        open_task = flow_case.task(node)
        for name, expected in node_rows.items():
            key = f"{node} {name}"
            view = name.removeprefix("POST ")
            urls[key] = open_task.flow_task.reverse(view, args=[open_task.process_id, open_task.pk])
            rows[key] = expected
            if name.startswith("POST"):
                # check() posts the rows whose name starts with "POST "
                rows[f"POST {key}"] = rows.pop(key)
                urls[f"POST {key}"] = urls.pop(key)
    check(Browser(people), rows, urls)
    flow_case.refresh()
    assert flow_case.case.status == STATES[stop]  # nothing above changed the case


@pytest.mark.parametrize(
    "node", ["screen", "decide_social", "decide_police", "draft_plan", "approve", "follow_up"]
)
def test_a_task_is_served_only_at_its_own_step_and_process(people, node):
    """viewflow finds a task by its id; its owner must not run another step's view with it."""
    flow_case = FlowDriver(people).build("consent")
    consent = flow_case.task("consent")
    before = (flow_case.case.version, flow_case.case.status, flow_case.case.actions.count())
    anna = Browser(people).client("anna.social")
    for url in (
        f"/arenden/flows/sig/{consent.process_id}/{node}/{consent.pk}/execute/",
        f"/arenden/flows/sig/{consent.process_id + 1000}/consent/{consent.pk}/execute/",
    ):
        assert anna.get(url).status_code == 404
        response = anna.post(
            url,
            {
                "_action": "action",
                "version": flow_case.case.version,
                "kind": "support_talks",
                "status": "planned",
                "date": timezone.localdate().isoformat(),
                "visibility": "team",
            },
        )
        assert response.status_code == 404
    flow_case.refresh()
    assert (flow_case.case.version, flow_case.case.status, flow_case.case.actions.count()) == before
    consent.refresh_from_db()
    assert consent.status == "ASSIGNED"


def test_police_without_consent_get_404_and_the_refusal_is_logged(people):
    flow_case = FlowDriver(people).build("consent")  # per.polis is on the team already
    per = people["per.polis"]
    client = Browser(people).client("per.polis")
    before = AccessEvent.objects.filter(user=per, action=AccessEvent.Action.ACCESS_DENIED).count()
    response = client.get(f"/arenden/fall/{flow_case.case.pk}/")
    assert response.status_code == 404
    assert PERSON_NAME not in response.content.decode()
    denied = AccessEvent.objects.filter(user=per, action=AccessEvent.Action.ACCESS_DENIED)
    assert denied.count() > before
    assert denied.filter(object_id=str(flow_case.case.pk)).exists()
    assert not AccessEvent.objects.filter(
        user=per, object_id=str(flow_case.case.pk), action=AccessEvent.Action.CONSULT
    ).exists()


@pytest.mark.parametrize("role", ["bo.social", "lisa.skola", "fredrik.fritid", "alex.avhopp"])
def test_case_roles_off_the_team_get_404_and_the_refusal_is_logged(people, role):
    case = sig_case(people, Status.ACTIVE)
    user = people[role]
    response = Browser(people).client(role).get(f"/arenden/fall/{case.pk}/")
    assert response.status_code == 404
    assert AccessEvent.objects.filter(
        user=user, action=AccessEvent.Action.ACCESS_DENIED, object_id=str(case.pk)
    ).exists()


def test_unknown_case_is_404_like_a_forbidden_one(people):
    response = (
        Browser(people)
        .client("sara.samordnare")
        .get("/arenden/fall/00000000-0000-4000-8000-000000000000/")
    )
    assert response.status_code == 404


def test_school_and_leisure_on_the_team_see_the_case_only_under_consent(people):
    """Team members from school and leisure: the consent decides, organisation by organisation."""
    lisa = people["lisa.skola"]
    case = sig_case(
        people,
        Status.CONSENT_PENDING,
        members=(("lisa.skola", "school"), ("fredrik.fritid", "leisure")),
    )
    browser = Browser(people)
    url = f"/arenden/fall/{case.pk}/"
    assert browser.client("lisa.skola").get(url).status_code == 404
    record_full_consent(people, case, covering=("social", "police", "school"))
    response = browser.client("lisa.skola").get(url)
    assert response.status_code == 200
    assert PERSON_NAME in response.content.decode()
    assert AccessEvent.objects.filter(
        user=lisa, action=AccessEvent.Action.DISCLOSE, legal_basis="consent"
    ).exists()
    assert browser.client("fredrik.fritid").get(url).status_code == 404


def test_break_the_glass_opens_a_case_outside_the_team_and_is_logged(people):
    """The defector coordinator (social services, not on the team) breaks the glass; the
    police contact officer cannot break through the missing legal basis."""
    case = sig_case(people, Status.CONSENT_PENDING)  # no consent yet: none for the police
    browser = Browser(people)
    url = f"/arenden/fall/{case.pk}/"
    reason = {"reference": case.reference, "reason": "Akut hot mot personen, måste ringa nu."}
    alex = browser.client("alex.avhopp")
    assert alex.get(url).status_code == 404
    response = alex.post("/arenden/bryt-glaset/", reason)
    assert response.status_code == 302
    assert response["Location"] == url
    response = alex.get(url)
    assert response.status_code == 200
    assert PERSON_NAME in response.content.decode()
    assert AccessEvent.objects.filter(
        user=people["alex.avhopp"], action=AccessEvent.Action.BREAK_GLASS
    ).exists()

    per = browser.client("per.polis")  # on the team, but without a legal basis
    assert per.get(url).status_code == 404
    response = per.post("/arenden/bryt-glaset/", reason)
    assert response.status_code == 200
    assert response.context["form"].errors  # told why, on the form
    assert per.get(url).status_code == 404
    assert not AccessEvent.objects.filter(
        user=people["per.polis"], action=AccessEvent.Action.BREAK_GLASS
    ).exists()
    assert AccessEvent.objects.filter(
        user=people["per.polis"], action=AccessEvent.Action.ACCESS_DENIED, object_id=str(case.pk)
    ).exists()


# --- POSTs of the case page (transactional: see the module docstring) ------------------------

# fmt: off
#                       anon  nrol  anna    bo   per  sara  alex  lisa  fred  stig  gret  adam
CASE_PAGE_POSTS = {
    "action":          (   L,  403,  302,  403,  302,  302,  403,  403,  403,  403,  403,  403),
    "close":           (   L,  403,  302,  403,  403,  302,  403,  403,  403,  403,  403,  403),
    "legal_basis":     (   L,  403,  302,  403,  403,  302,  403,  403,  403,  403,  403,  403),
    "withdraw":        (   L,  403,  302,  403,  403,  302,  403,  403,  403,  403,  403,  403),
    "renew":           (   L,  403,  302,  403,  403,  302,  403,  403,  403,  403,  403,  403),
}
# fmt: on


def _post_data(action: str, case) -> dict:
    today = timezone.localdate().isoformat()
    if action == "action":
        return {
            "_action": "action",
            "version": case.version,
            "kind": "support_talks",
            "status": "done",
            "date": today,
            "visibility": "team",
            "note": "Samtal.",
        }
    if action == "close":
        return {"_action": "close", "version": case.version, "close_reason": "goals_met"}
    if action == "legal_basis":
        return {
            "_action": "legal_basis",
            "version": case.version,
            "legal_basis": LegalBasis.objects.get(code="osl-10-18a").pk,
            "justification": "Särskilda omständigheter.",
        }
    if action == "renew":
        return {
            "_action": "renew",
            "version": case.version,
            "giver": "self",
            "decision": "given",
            "form": "written",
            "organisations": [case.owner_organisation_id],
            "purposes": ["coordination"],
        }
    consent = case.consents.get(giver=Consent.Giver.SELF, withdrawn_at__isnull=True)
    return {"_action": "withdraw", "consent": str(consent.pk)}


def _active_case(people, action: str):
    """An active case for ``action``; for a renewal, one whose person withdrew their
    consent while a statute kept the case open (ADR 0028)."""
    case = sig_case(people, Status.ACTIVE, years=19 if action == "renew" else 16)
    if action == "renew":
        record_statute(people, case)
        own = case.consents.get(giver=Consent.Giver.SELF)
        withdraw_consent(user=people["anna.social"], case=case, purpose="Test", consent=own)
    return case


@COMMITTED_DB
@pytest.mark.parametrize("action", list(CASE_PAGE_POSTS))
def test_case_page_posts(people, action):
    """Each action of the case page by every role, on an active case.

    A refusal changes nothing and is in the access log; a success that ends the
    case (close, withdrawal) gets a fresh case for the next role.
    """
    browser = Browser(people)
    case = _active_case(people, action)
    wrong = []
    for role, expected in zip(ROLES, CASE_PAGE_POSTS[action], strict=True):
        client = browser.client(role)  # logged in before: the login is an event too
        case.refresh_from_db()
        version, status = case.version, case.status
        last_event = AccessEvent.objects.order_by("-id").values_list("id", flat=True).first()
        response = client.post(f"/arenden/fall/{case.pk}/", _post_data(action, case))
        got = response.status_code
        if got == 302 and response["Location"].startswith("/konto/logga-in/"):
            got = LOGIN
        if got != expected:
            wrong.append(f"{action} / {role}: expected {expected}, got {got}")
            continue
        case.refresh_from_db()
        if got == 302:
            assert response["Location"] == f"/arenden/fall/{case.pk}/"
            assert case.version > version
            if case.status == Status.CLOSED:
                case = sig_case(people, Status.ACTIVE)
        else:
            assert (case.version, case.status) == (version, status), role
            new = set(
                AccessEvent.objects.filter(id__gt=last_event).values_list("action", flat=True)
            )
            if role != "anonymous":
                assert new == {AccessEvent.Action.ACCESS_DENIED}, (role, new)
    assert not wrong, "\n".join(wrong)


@COMMITTED_DB
def test_withdrawal_is_registered_by_social_services_and_ends_sharing_at_once(people):
    """The case's own organisation registers a withdrawal (a school member on the team is
    neither offered the form nor allowed to post it); police and school lose access at once."""
    case = sig_case(
        people,
        Status.ACTIVE,
        covering=("social", "police", "school"),
        members=(("lisa.skola", "school"),),
    )
    browser = Browser(people)
    url = f"/arenden/fall/{case.pk}/"
    lisa = browser.client("lisa.skola")
    page = lisa.get(url)
    assert page.status_code == 200
    assert 'value="withdraw"' not in page.content.decode()
    assert 'value="withdraw"' in browser.client("anna.social").get(url).content.decode()
    version = case.version
    response = lisa.post(url, _post_data("withdraw", case))
    assert response.status_code == 403
    case.refresh_from_db()
    assert (case.version, case.status) == (version, Status.ACTIVE)
    assert not case.consents.filter(withdrawn_at__isnull=False).exists()

    response = browser.client("anna.social").post(url, _post_data("withdraw", case))
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.status == Status.CLOSED
    assert browser.client("per.polis").get(url).status_code == 404
    assert lisa.get(url).status_code == 404
